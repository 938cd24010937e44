"""Quick start: train a small CNN on the embedded digits and attack it.

`run(QuickstartConfig())` trains Wong's CNN on scikit-learn's digits (offline),
then measures clean accuracy and robust accuracy under FGSM and PGD over an eps
sweep, and writes `results.json`, `results.md` and two figures to `out_dir`.
"""
import dataclasses
import functools
import json
import os
import time
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm import tqdm

from advjax import data, evaluation, losses, models
from advjax.attacks import gradient

__all__ = ["QuickstartConfig", "run"]


@dataclasses.dataclass(frozen=True)
class QuickstartConfig:
  dataset: str = "digits"
  model: str = "wong_mnist"
  epochs: int = 30
  batch_size: int = 128
  learning_rate: float = 3e-3
  eps: Sequence[float] = (0., 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3)
  pgd_steps: int = 20
  seed: int = 0
  out_dir: str = "runs/quickstart"
  limit: int = 0  # 0: every example (tests use a few)
  progress: bool = True


def _train(config, model, train):
  variables = models.init_model(model, jax.random.key(config.seed),
                                train.images.shape[1:])
  opt = optax.adam(config.learning_rate)
  params, opt_state = variables["params"], opt.init(variables["params"])

  @jax.jit
  def step(params, opt_state, x, y):
    def loss_fn(p):
      logits = model.apply({"params": p}, x, train=False)
      return jnp.mean(losses.cross_entropy(logits, y)), logits
    (loss, logits), g = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = opt.update(g, opt_state, params)
    acc = jnp.mean(jnp.argmax(logits, -1) == y)
    return optax.apply_updates(params, updates), opt_state, loss, acc

  bar = tqdm(range(config.epochs), desc="train", disable=not config.progress)
  for epoch in bar:
    for xb, yb in data.iterate_batches(train, config.batch_size, shuffle=True,
                                       seed=config.seed, epoch=epoch,
                                       drop_remainder=True):
      params, opt_state, loss, acc = step(params, opt_state, xb, yb)
    bar.set_postfix(loss=f"{float(loss):.3f}", acc=f"{float(acc):.3f}")
  return {"params": params}


def run(config: QuickstartConfig) -> dict:
  """Trains, attacks, and writes the report; returns the results dict."""
  t0 = time.time()
  limit = config.limit or None
  train = data.load(config.dataset, "train", limit=limit)
  test = data.load(config.dataset, "test", limit=limit)
  model = models.get_model(config.model, num_classes=train.num_classes)
  variables = _train(config, model, train)
  apply_fn = lambda v, x: model.apply(v, x, train=False)
  attacks = {
      "fgsm": gradient.fgsm,
      f"pgd{config.pgd_steps}": functools.partial(gradient.pgd,
                                                  steps=config.pgd_steps),
  }
  results = {"config": dataclasses.asdict(config), "attacks": {}}
  for name, attack in attacks.items():
    res = evaluation.robust_accuracy(
        apply_fn, variables, test.images, test.labels, attack=attack,
        eps=config.eps, key=jax.random.key(config.seed + 1),
        progress=config.progress)
    results["clean_accuracy"] = res.clean_accuracy
    results["attacks"][name] = [float(a) for a in res.accuracy]
  results["eps"] = [float(e) for e in config.eps]
  results["seconds"] = time.time() - t0
  os.makedirs(config.out_dir, exist_ok=True)
  with open(os.path.join(config.out_dir, "results.json"), "w") as f:
    json.dump(results, f, indent=2)
  table = _table(results)
  with open(os.path.join(config.out_dir, "results.md"), "w") as f:
    f.write(table + "\n")
  _plot(results, os.path.join(config.out_dir, "robust_accuracy.png"))
  results["table"] = table
  return results


def _table(results) -> str:
  names = list(results["attacks"])
  rows = ["| eps (Linf) | " + " | ".join(names) + " |",
          "|---:|" + "---:|" * len(names)]
  for i, e in enumerate(results["eps"]):
    cells = " | ".join(f"{100 * results['attacks'][n][i]:.1f} %" for n in names)
    rows.append(f"| {e:.3f} | {cells} |")
  return (f"clean accuracy: {100 * results['clean_accuracy']:.1f} %\n\n"
          + "\n".join(rows))


def _plot(results, path):
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(5, 3.5))
  for name, acc in results["attacks"].items():
    ax.plot(results["eps"], np.asarray(acc) * 100, marker="o", label=name)
  ax.set_xlabel("eps (Linf)")
  ax.set_ylabel("accuracy (%)")
  ax.set_ylim(0, 100)
  ax.grid(alpha=0.3)
  ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
