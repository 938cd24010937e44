"""The main benchmark: standard vs adversarial training, evaluated under PGD.

`run(MadryConfig(dataset=...))` trains (or loads from the workdir) a standard
model and a model trained with `method` (Madry PGD training by default),
evaluates both under PGD with restarts over a fine eps grid, measures how the
attack converges with sign, SGD and Adam inner steps, and writes
`results.json`, `results.md` (beside the published numbers of DESIGN.md
section 5), `robust_accuracy_vs_eps.png` and `attack_convergence.png`.
"""
import dataclasses
import functools
import json
import os
import time
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from advjax import data, evaluation, losses, models, sharding, training
from advjax.attacks import gradient
from advjax.experiments import plots

__all__ = ["RunConfig", "MadryConfig", "PRESETS", "PUBLISHED", "resolve",
           "run", "make_optimizer", "dataset_preset", "fill_preset", "fit_run",
           "TRAINING_SETTINGS", "Setup", "setup", "train_model"]


@dataclasses.dataclass(frozen=True)
class RunConfig:
  """The settings every training benchmark shares (`fill_preset`, `setup`
  and `fit_run` read them); each benchmark's config extends it. None
  fields take the dataset's preset.

  Attributes:
    dataset: a name `advjax.data.load` knows with a preset.
    model: architecture (`advjax.models.get_model` name).
    epochs, batch_size: training length and global batch size.
    optimizer: 'sgd' (momentum 0.9) or 'adam'.
    learning_rate, weight_decay: of the optimizer.
    schedule: 'constant', 'piecewise', 'cyclic' or 'cosine' (see
      `make_optimizer`).
    workdir: checkpoints and reports (default `runs/<benchmark>-<dataset>`).
    data_dir: tfds data_dir or raw files.
    seed: seeds init, data order and attacks.
    save_every: checkpoint period in steps.
    progress: show progress bars.
  """
  dataset: str = "digits"
  model: Optional[str] = None
  epochs: Optional[int] = None
  batch_size: Optional[int] = None
  optimizer: Optional[str] = None
  learning_rate: Optional[float] = None
  weight_decay: Optional[float] = None
  schedule: Optional[str] = None
  workdir: Optional[str] = None
  data_dir: Optional[str] = None
  seed: int = 0
  save_every: int = 500
  progress: bool = True


@dataclasses.dataclass(frozen=True)
class MadryConfig(RunConfig):
  """Settings of a run; None fields take the dataset's preset (`PRESETS`)."""
  method: str = "madry"
  eps: Optional[float] = None
  train_steps: Optional[int] = None
  train_step_size: Optional[float] = None
  eval_steps: Optional[int] = None
  eval_restarts: Optional[int] = None
  eps_grid_points: int = 17  # 0 .. 2 eps
  sigma: float = 0.5  # fgsm_mix
  predicted_labels: bool = True  # fgsm_mix
  beta: float = 6.0  # trades
  convergence_steps: int = 100
  convergence_examples: int = 256
  eval_batch_size: int = 256
  eval_limit: int = 0  # 0: every test example
  autoattack: bool = True  # AutoAttack (standard) at eps for each model
  autoattack_steps: int = 100
  autoattack_queries: int = 5000
  train_limit: int = 0  # 0: every training example


_MNIST = dict(model="madry_mnist", epochs=100, batch_size=50, eps=0.3,
              train_steps=40, train_step_size=0.01, eval_steps=100,
              eval_restarts=10, optimizer="adam", learning_rate=1e-4,
              weight_decay=0., schedule="constant")
_CIFAR = dict(model="preact_resnet18", epochs=100, batch_size=128,
              eps=8 / 255, train_steps=7, train_step_size=2 / 255,
              eval_steps=20, eval_restarts=5, optimizer="sgd",
              learning_rate=0.1, weight_decay=5e-4, schedule="piecewise")
PRESETS = {
    # Embedded digits (8x8): a few minutes on 2 CPU cores.
    "digits": dict(model="wong_mnist", epochs=100, batch_size=64, eps=0.2,
                   train_steps=10, train_step_size=0.05, eval_steps=20,
                   eval_restarts=4, optimizer="adam", learning_rate=5e-3,
                   weight_decay=0., schedule="cosine"),
    "synthetic": dict(model="wong_mnist", epochs=2, batch_size=32, eps=0.1,
                      train_steps=3, train_step_size=0.05, eval_steps=5,
                      eval_restarts=1, optimizer="adam", learning_rate=2e-3,
                      weight_decay=0., schedule="constant"),
    "mnist": _MNIST,
    "fashion_mnist": {**_MNIST, "eps": 0.1, "train_step_size": 0.01},
    "cifar10": _CIFAR,
    "cifar100": _CIFAR,
    "svhn_cropped": {**_CIFAR, "learning_rate": 0.01, "epochs": 40},
}
# Wong, Rice, Kolter 2020: FGSM-RS with a cyclic schedule, 15 epochs.
METHOD_PRESETS = {("cifar10", "fgsm_rs"): dict(epochs=15, schedule="cyclic",
                                                learning_rate=0.2)}

# DESIGN.md section 5: (clean %, robust %, setting).
PUBLISHED = {
    ("mnist", "madry"): (98.5, 89.6, "Madry et al. 2018, PGD-100 x 50 restarts"),
    ("cifar10", "madry"): (87.3, 45.8, "Madry et al. 2018, PGD-20"),
    ("cifar10", "fgsm_rs"): (86.0, 46.0, "Wong et al. 2020, PGD-50 x 10"),
}


def resolve(config: MadryConfig) -> MadryConfig:
  """Fills None fields from the dataset's (and method's) preset."""
  preset = dataset_preset(PRESETS, config.dataset)
  if config.method not in training.METHODS:
    raise ValueError(f"Unknown method {config.method!r}; use one of "
                     f"{training.METHODS}.")
  preset = {**preset,
            **METHOD_PRESETS.get((config.dataset, config.method), {})}
  return fill_preset(config, preset, "madry")


def dataset_preset(presets: dict, dataset: str, name: str = "") -> dict:
  """`presets[dataset]`, or a ValueError naming the known datasets."""
  if dataset not in presets:
    raise ValueError(f"No {name + ' ' if name else ''}preset for dataset "
                     f"{dataset!r}; known: {sorted(presets)}.")
  return presets[dataset]


def fill_preset(config, preset: dict, benchmark: str):
  """A copy of the dataclass `config` whose None fields take `preset`'s
  values and whose None `workdir` is `runs/<benchmark>-<dataset>`."""
  fields = {k: (preset[k] if v is None and k in preset else v)
            for k, v in dataclasses.asdict(config).items()}
  if fields["workdir"] is None:
    fields["workdir"] = os.path.join("runs", f"{benchmark}-{config.dataset}")
  return type(config)(**fields)


def make_optimizer(cfg, steps_per_epoch: int):
  """The optax optimizer of a config with epochs, optimizer, learning_rate,
  weight_decay and schedule fields ('constant', 'piecewise' /10 at 50 % and
  75 %, 'cyclic' one-cycle peaking at 40 %, 'cosine')."""
  total = cfg.epochs * steps_per_epoch
  lr = cfg.learning_rate
  if cfg.schedule == "constant":
    schedule = lr
  elif cfg.schedule == "piecewise":  # /10 at 50 % and 75 % of training
    schedule = optax.piecewise_constant_schedule(
        lr, {int(0.5 * total): 0.1, int(0.75 * total): 0.1})
  elif cfg.schedule == "cyclic":  # 0 -> lr at 40 %, -> 0 at the end
    schedule = optax.linear_onecycle_schedule(total, lr, pct_start=0.4,
                                              div_factor=1e4,
                                              final_div_factor=1e4)
  elif cfg.schedule == "cosine":
    schedule = optax.cosine_decay_schedule(lr, total)
  else:
    raise ValueError(f"Unknown schedule {cfg.schedule!r}.")
  if cfg.optimizer == "sgd":
    opt = optax.sgd(schedule, momentum=0.9, nesterov=False)
  elif cfg.optimizer == "adam":
    opt = optax.adam(schedule)
  else:
    raise ValueError(f"Unknown optimizer {cfg.optimizer!r}; use sgd or adam.")
  if cfg.weight_decay:
    opt = optax.chain(optax.add_decayed_weights(cfg.weight_decay), opt)
  return opt


def _train_attack(cfg):
  if cfg.method in ("madry", "trades"):
    return training.default_attack(cfg.method, steps=cfg.train_steps,
                                   step_size=cfg.train_step_size)
  return None  # the method's default (FGSM, FGSM-RS)


def train_model(cfg, name, method, model, train, mesh):
  """Trains (or reloads) one of the config's models with `method` in
  `cfg.workdir/name`; returns `(FitResult, seconds)`."""
  settings = {"dataset": cfg.dataset, "model": cfg.model, "eps": cfg.eps,
              "train_steps": cfg.train_steps, "optimizer": cfg.optimizer,
              "learning_rate": cfg.learning_rate, "schedule": cfg.schedule}
  kwargs = {}
  if method != "standard":
    kwargs.update(eps=cfg.eps, attack=_train_attack(cfg))
  if method == "fgsm_mix":
    kwargs.update(sigma=cfg.sigma, predicted_labels=cfg.predicted_labels)
  if method == "trades":
    kwargs.update(beta=cfg.beta)
  return fit_run(cfg, name, method, model, train, mesh, settings, **kwargs)


# The settings every benchmark's trained model is checked against on reload.
TRAINING_SETTINGS = ("dataset", "model", "epochs", "batch_size", "optimizer",
                     "learning_rate", "weight_decay", "schedule", "seed")


def fit_run(cfg, name, method, model, train, mesh, settings, **kwargs):
  """`training.fit` of one of a benchmark's models in `cfg.workdir/name`
  (resumed or reloaded from there), with the config's optimizer (see
  `make_optimizer`), epochs, batch size, seed and checkpoint interval.
  Returns `(FitResult, seconds)`."""
  steps_per_epoch = max(train.images.shape[0] // cfg.batch_size, 1)
  t0 = time.time()
  res = training.fit(model, make_optimizer(cfg, steps_per_epoch), train,
                     method=method, epochs=cfg.epochs,
                     batch_size=cfg.batch_size, seed=cfg.seed,
                     workdir=os.path.join(cfg.workdir, name),
                     save_every=cfg.save_every, settings=settings, mesh=mesh,
                     progress=cfg.progress, desc=f"train {name}", **kwargs)
  return res, time.time() - t0


class Setup(NamedTuple):
  """What every benchmark's run starts from (see `setup`)."""
  train: Any
  test: Any
  model: Any
  apply_fn: Callable
  mesh: Any


def setup(cfg) -> Setup:
  """Loads the config's train and test splits (`train_limit`, `eval_limit`:
  0 for all), builds its model and the mesh of every device, after creating
  `cfg.workdir`."""
  os.makedirs(cfg.workdir, exist_ok=True)
  limit = lambda n: n or None
  train = data.load(cfg.dataset, "train", data_dir=cfg.data_dir,
                    limit=limit(cfg.train_limit))
  test = data.load(cfg.dataset, "test", data_dir=cfg.data_dir,
                   limit=limit(cfg.eval_limit))
  model = models.get_model(cfg.model, num_classes=train.num_classes)
  apply_fn = lambda v, x: model.apply(v, x, train=False)
  return Setup(train, test, model, apply_fn, sharding.make_mesh())


def _convergence(cfg, apply_fn, variables, x, y):
  """Mean adversarial loss per PGD iteration for sign, SGD and Adam steps."""
  model_fn = lambda z: apply_fn(variables, z)
  steps = cfg.convergence_steps
  step = 2.5 * cfg.eps / steps
  # SGD gets the learning rate whose first step moves pixels as far, on
  # average, as a sign step (its raw gradient has no natural scale).
  g = jax.grad(lambda z: jnp.sum(losses.cross_entropy(model_fn(z), y)))(x)
  sgd_lr = step / max(float(jnp.mean(jnp.abs(g))), 1e-12)
  curves = {}
  for name, optimizer, lr in (("sign", "steepest", step), ("sgd", "sgd", sgd_lr),
                              ("adam", "adam", step)):
    fn = jax.jit(lambda x, y, key, lr=lr, optimizer=optimizer: gradient.pgd(
        model_fn, x, y, eps=cfg.eps, key=key, steps=steps, step_size=lr,
        optimizer=optimizer, return_result=True, unroll=1))
    res = fn(x, y, jax.random.key(cfg.seed + 7))
    curves[name] = np.asarray(jnp.mean(res.loss_history, axis=1)).tolist()
  return curves


def run(config: MadryConfig) -> dict:
  """Runs the benchmark; returns the results dict (also written to disk)."""
  cfg = resolve(config)
  train, test, model, apply_fn, mesh = setup(cfg)
  eps_grid = np.linspace(0., 2. * cfg.eps, cfg.eps_grid_points)
  i_eps = int(np.argmin(np.abs(eps_grid - cfg.eps)))
  attack = functools.partial(gradient.pgd, steps=cfg.eval_steps,
                             restarts=cfg.eval_restarts)
  compiled = evaluation.make_robust_accuracy_fn(apply_fn, attack)
  results = {"config": dataclasses.asdict(cfg), "eps_grid": eps_grid.tolist(),
             "devices": [str(d) for d in jax.devices()], "models": {}}
  for name, method in (("standard", "standard"), (cfg.method, cfg.method)):
    fit, seconds = train_model(cfg, name, method, model, train, mesh)
    variables = jax.device_get(fit.state.variables)
    ra = evaluation.robust_accuracy(
        apply_fn, variables, test.images, test.labels, attack=attack,
        eps=eps_grid, batch_size=cfg.eval_batch_size,
        key=jax.random.key(cfg.seed + 1), progress=cfg.progress,
        compiled=compiled)
    n = min(cfg.convergence_examples, test.size)
    aa = None
    if cfg.autoattack:
      aa = evaluation.autoattack(
          apply_fn, variables, test.images, test.labels, eps=cfg.eps,
          key=jax.random.key(cfg.seed + 2), batch_size=cfg.eval_batch_size,
          steps=cfg.autoattack_steps, queries=cfg.autoattack_queries,
          progress=cfg.progress)
    results["models"][name] = {
        "method": method,
        "clean_accuracy": ra.clean_accuracy,
        "robust_accuracy": float(ra.accuracy[i_eps]),
        "accuracy_vs_eps": ra.accuracy.tolist(),
        "autoattack": None if aa is None else {
            "robust_accuracy": aa.robust_accuracy,
            "stages": dict(zip(aa.attacks, aa.accuracy.tolist())),
            "seconds": dict(zip(aa.attacks, aa.seconds.tolist())),
            "pgd_robust_broken": int(np.sum(ra.correct[i_eps] &
                                            ~aa.robust))},
        "train_seconds": seconds,
        "resumed_from": fit.resumed_from,
        "history": fit.history,
        "convergence": _convergence(cfg, apply_fn, variables,
                                    jnp.asarray(test.images[:n]),
                                    jnp.asarray(test.labels[:n])),
    }
    if cfg.method == "standard":
      break
  results["table"] = _table(cfg, results)
  with open(os.path.join(cfg.workdir, "results.json"), "w") as f:
    json.dump(results, f, indent=2)
  with open(os.path.join(cfg.workdir, "results.md"), "w") as f:
    f.write(results["table"] + "\n")
  _plot_eps(cfg, results, os.path.join(cfg.workdir,
                                       "robust_accuracy_vs_eps.png"))
  _plot_convergence(cfg, results, os.path.join(cfg.workdir,
                                               "attack_convergence.png"))
  return results


def _table(cfg, results) -> str:
  attack = f"PGD-{cfg.eval_steps} x {cfg.eval_restarts}"
  rows = [f"# {cfg.dataset}: standard vs {cfg.method} training, eps "
          f"{cfg.eps:.4g} (Linf), {cfg.model}",
          "",
          f"| model | clean | {attack} at eps {cfg.eps:.4g} | AutoAttack at "
          f"eps {cfg.eps:.4g} | published clean | published robust | "
          "published setting |",
          "|---|---:|---:|---:|---:|---:|---|"]
  for name, r in results["models"].items():
    pub = PUBLISHED.get((cfg.dataset, r["method"]))
    pub_cells = (f"{pub[0]:.1f} % | {pub[1]:.1f} % | {pub[2]}" if pub
                 else "- | - | -")
    aa = r.get("autoattack")
    aa_cell = "-" if aa is None else f"{100 * aa['robust_accuracy']:.1f} %"
    rows.append(f"| {name} | {100 * r['clean_accuracy']:.1f} % | "
                f"{100 * r['robust_accuracy']:.1f} % | {aa_cell} | "
                f"{pub_cells} |")
  aa_rows = [(n, r["autoattack"]) for n, r in results["models"].items()
             if r.get("autoattack")]
  if aa_rows:
    rows += ["", "AutoAttack (standard) robust accuracy (%) after each "
             "stage, and the examples PGD calls robust that it breaks:", "",
             "| model | " + " | ".join(aa_rows[0][1]["stages"]) +
             " | broken PGD-robust |",
             "|---|" + "---:|" * (len(aa_rows[0][1]["stages"]) + 1)]
    for n, a in aa_rows:
      rows.append(f"| {n} | " + " | ".join(
          f"{100 * v:.1f}" for v in a["stages"].values()) +
                  f" | {a['pgd_robust_broken']} |")
  rows += ["", "Training time (s): " + ", ".join(
      f"{n} {r['train_seconds']:.0f}" for n, r in results["models"].items()),
           "", f"Accuracy (%) under {attack} vs eps:", "",
           "| eps | " + " | ".join(results["models"]) + " |",
           "|---:|" + "---:|" * len(results["models"])]
  for i, e in enumerate(results["eps_grid"]):
    rows.append(f"| {e:.4g} | " + " | ".join(
        f"{100 * r['accuracy_vs_eps'][i]:.1f}"
        for r in results["models"].values()) + " |")
  return "\n".join(rows)


def _plot_eps(cfg, results, path):
  plots.line_plot(
      path, results["eps_grid"],
      {n: r["accuracy_vs_eps"] for n, r in results["models"].items()},
      xlabel="eps (Linf)",
      ylabel=f"accuracy under PGD-{cfg.eval_steps} x {cfg.eval_restarts} (%)",
      title=f"{cfg.dataset}: robust accuracy vs eps", marker=".",
      vline=cfg.eps, vline_label="training eps")


def _plot_convergence(cfg, results, path):
  plt = plots.pyplot()
  names = list(results["models"])
  fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.6),
                           squeeze=False)
  for ax, name in zip(axes[0], names):
    for opt, curve in results["models"][name]["convergence"].items():
      ax.plot(np.arange(1, len(curve) + 1), curve, label=opt)
    ax.set_title(f"{name} model")
    ax.set_xlabel("PGD iteration")
    ax.set_ylabel("mean adversarial loss (CE)")
    ax.grid(alpha=0.3)
    ax.legend(title="inner step")
  fig.suptitle(f"{cfg.dataset}: attack convergence at eps {cfg.eps:.4g}")
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


