"""Carlini & Wagner's comparison of targeted attacks (IEEE S&P 2017, Table IV).

`run(CarliniConfig(dataset=...))` trains (or reloads from the workdir) a
model and its defensively distilled twin (a teacher trained at temperature
T, a student trained on its soft labels at T, both deployed at T = 1), picks
`n_images` test images every model classifies correctly (the first of
each class first, for the grid figure), and attacks every one towards
each of the other classes with

| attack | metric | |
|---|---|---|
| `cw_l0` | pixels changed | `carlini_wagner_l0` |
| `jsma_z`, `jsma_f` | pixels changed | `jsma` on logits / on probabilities |
| `cw_l2` | L2 | `carlini_wagner_l2` |
| `deepfool` | L2 | `deepfool` (untargeted: best case only, as the paper) |
| `cw_linf` | Linf | `carlini_wagner_linf` |
| `fgsm` | Linf | targeted FGSM, smallest eps on a grid that succeeds |
| `fgsm_untargeted` | Linf | the same away from the label (best case only) |
| `igs` | Linf | targeted iterative gradient sign (BIM), eps bisected |

For each image the best case is its easiest target (smallest distortion
among the targets reached; a success if any target was reached), the worst
case its hardest (a success only if every target was reached), the average
case a target drawn uniformly (so: every (image, target) pair). Mean
distortions are over successes, as the paper. Success is checked here from
the model's prediction on the returned image, never from an attack's own
flag.

It writes `results.json`, `results.md` (the tables beside the published
numbers), `grid_<attack>.png` (every source/target pair of the first image
of each class for the CW attacks: the paper's Figures 3-5) and
`distortion.png` (average-case distortion per attack, standard vs
distilled) to the workdir.

Presets (`PRESETS`): `digits` runs offline on 2 CPU cores in about 20
minutes with shortened attack schedules (recorded in the table); `mnist`
and `cifar10` take the paper's models, training and the authors' attack
defaults, and need the data prepared with tensorflow-datasets.
"""
import dataclasses
import functools
import json
import os
import time
from typing import Callable, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from advjax import data, evaluation, models, report, sharding, training
from advjax import run as runner
from advjax.attacks import (carlini_wagner_l0, carlini_wagner_l2,
                            carlini_wagner_linf, deepfool, gradient, jsma)
from advjax.projections import lp_norm

__all__ = ["CarliniConfig", "PRESETS", "PUBLISHED", "ATTACKS", "METRIC",
           "resolve", "run", "case_summary"]

ATTACKS = ("cw_l0", "jsma_z", "jsma_f", "cw_l2", "deepfool", "cw_linf",
           "fgsm", "fgsm_untargeted", "igs")
METRIC = {"cw_l0": "l0", "jsma_z": "l0", "jsma_f": "l0", "cw_l2": "l2",
          "deepfool": "l2", "cw_linf": "linf", "fgsm": "linf",
          "fgsm_untargeted": "linf", "igs": "linf"}
UNTARGETED = ("deepfool", "fgsm_untargeted")
MODELS = ("standard", "distilled")


@dataclasses.dataclass(frozen=True)
class CarliniConfig(runner.Config):
  """Settings of a run; None fields take the dataset's preset (`PRESETS`).

  Attributes:
    dataset: a name `advjax.data.load` knows with a preset here.
    model: architecture (`advjax.models.get_model` name).
    epochs, batch_size, optimizer, learning_rate, weight_decay, schedule:
      training of the standard model, the teacher and the student (as
      `advjax.runner.Config`).
    temperature: the distillation temperature T.
    n_images: source images (each attacked towards every other class).
    attacks: which of `ATTACKS` to run.
    distilled: also attack the distilled model.
    cw_l2_steps, cw_l2_search_steps, cw_l2_learning_rate: Adam steps per c,
      values of c, Adam's step size. CW-L2 restarts from x for every c,
      and a pixel at the box's face sits at tanh coordinate 7.25 (the
      authors' 0.999999), which Adam leaves at about `learning_rate` per
      step: `steps x learning_rate` must reach ~6 for black pixels to move
      (the paper's 1000 x 0.01 does; digits' 200 steps need 0.05).
    cw_linf_steps, cw_linf_learning_rate: Adam steps per c and step size.
    cw_l0_steps: Adam steps per c of each restricted L2 attack.
    jsma_gamma: the largest fraction of features JSMA may change.
    fgsm_grid: eps values tried by FGSM (evenly spaced up to the range).
    igs_steps, igs_bisections: BIM steps (step 1.25 eps / steps, Kurakin's
      total movement) and bisections of eps on (0, range].
    eval_batch_size: (image, target) pairs per attack call.
    workdir, data_dir, seed, save_every, progress: as `advjax.runner.Config`.
  """
  temperature: Optional[float] = None
  n_images: Optional[int] = None
  attacks: Tuple[str, ...] = ATTACKS
  distilled: bool = True
  cw_l2_steps: Optional[int] = None
  cw_l2_search_steps: Optional[int] = None
  cw_l2_learning_rate: Optional[float] = None
  cw_linf_steps: Optional[int] = None
  cw_linf_learning_rate: Optional[float] = None
  cw_l0_steps: Optional[int] = None
  jsma_gamma: float = 1.0
  fgsm_grid: int = 256
  igs_steps: int = 40
  igs_bisections: int = 10
  eval_batch_size: int = 200


# The paper's models and training (section IV: SGD 0.01, momentum 0.9,
# batch 128, 50 epochs; distillation at T = 100) and the authors' attack
# defaults (l2_attack.py 9 x 1000, li_attack.py 1000 at Adam 5e-3,
# l0_attack.py 1000); 1000 test images as the paper.
_PAPER_ATTACKS = dict(cw_l2_steps=1000, cw_l2_search_steps=9,
                      cw_l2_learning_rate=1e-2,
                      cw_linf_steps=1000, cw_linf_learning_rate=5e-3,
                      cw_l0_steps=1000, n_images=1000)
_PAPER_TRAINING = dict(epochs=50, batch_size=128, optimizer="sgd",
                       learning_rate=0.01, weight_decay=0.,
                       schedule="constant", temperature=100.)
PRESETS = {
    # Embedded 8x8 digits on 2 CPU cores: 20 images x 9 targets; the CW
    # schedules shortened (L2 9 x 200 at Adam 0.05; Linf and L0 100 steps
    # per c, Linf at Adam 0.02), which on Wong's digits CNN costs CW-Linf
    # 1.3 % (mean Linf 0.1727 vs 0.1719 at the authors' 1000 steps and Adam
    # 5e-3) and CW-L0 nothing (3.75 pixels either way) on 32 images x 1
    # target.
    "digits": dict(model="carlini_mnist", epochs=30, batch_size=64,
                   optimizer="adam", learning_rate=1e-3, weight_decay=0.,
                   schedule="cosine", temperature=100., n_images=20,
                   cw_l2_steps=200, cw_l2_search_steps=9,
                   cw_l2_learning_rate=0.05, cw_linf_steps=100,
                   cw_linf_learning_rate=0.02, cw_l0_steps=100),
    # Seconds: a smoke test of the whole pipeline, not a result.
    "synthetic": dict(model="carlini_mnist", epochs=1, batch_size=32,
                      optimizer="adam", learning_rate=2e-3, weight_decay=0.,
                      schedule="constant", temperature=20., n_images=10,
                      cw_l2_steps=10, cw_l2_search_steps=2,
                      cw_l2_learning_rate=0.05, cw_linf_steps=5,
                      cw_linf_learning_rate=0.05, cw_l0_steps=5),
    "mnist": dict(model="carlini_mnist", **_PAPER_TRAINING, **_PAPER_ATTACKS),
    "cifar10": dict(model="carlini_cifar", **_PAPER_TRAINING,
                    **_PAPER_ATTACKS),
}

# Table IV of the paper, best case (mean distortion, success), the values
# this project could check against a second source offline; the average
# and worst cases and the other attacks' rows are in the paper.
PUBLISHED = {
    "mnist": {"cw_l0": (8.5, 1.), "cw_l2": (1.36, 1.), "cw_linf": (0.13, 1.)},
    "cifar10": {"cw_l0": (5.9, 1.), "cw_l2": (0.17, 1.),
                "cw_linf": (0.0092, 1.)},
}


def resolve(config: CarliniConfig) -> CarliniConfig:
  """Fills None fields from the dataset's preset; checks the settings."""
  cfg = runner.fill_preset(
      config, PRESETS, "carlini")
  cfg = dataclasses.replace(cfg, attacks=tuple(cfg.attacks))
  unknown = set(cfg.attacks) - set(ATTACKS)
  if unknown or not cfg.attacks:
    raise ValueError(f"CarliniConfig.attacks: unknown {sorted(unknown)}; "
                     f"choose from {ATTACKS}.")
  for name in ("epochs", "batch_size", "n_images", "cw_l2_steps",
               "cw_l2_search_steps", "cw_linf_steps", "cw_l0_steps",
               "fgsm_grid", "igs_steps", "igs_bisections", "eval_batch_size"):
    if getattr(cfg, name) < 1:
      raise ValueError(f"CarliniConfig.{name} must be >= 1, got "
                       f"{getattr(cfg, name)}.")
  for name in ("temperature", "cw_l2_learning_rate", "cw_linf_learning_rate",
               "jsma_gamma"):
    if not getattr(cfg, name) > 0:
      raise ValueError(f"CarliniConfig.{name} must be > 0, got "
                       f"{getattr(cfg, name)}.")
  if cfg.jsma_gamma > 1:
    raise ValueError(f"CarliniConfig.jsma_gamma must be <= 1, got "
                     f"{cfg.jsma_gamma}.")
  return cfg


def _attack_fn(cfg, name: str) -> Callable:
  """`(model_fn, x, t) -> x_adv` for one attack of the table (targeted
  except DeepFool)."""
  if name == "cw_l2":
    return functools.partial(carlini_wagner_l2, targeted=True,
                             steps=cfg.cw_l2_steps,
                             binary_search_steps=cfg.cw_l2_search_steps,
                             learning_rate=cfg.cw_l2_learning_rate)
  if name == "cw_linf":
    return functools.partial(carlini_wagner_linf, targeted=True,
                             steps=cfg.cw_linf_steps,
                             learning_rate=cfg.cw_linf_learning_rate)
  if name == "cw_l0":
    return functools.partial(carlini_wagner_l0, targeted=True,
                             steps=cfg.cw_l0_steps)
  if name in ("jsma_z", "jsma_f"):
    return functools.partial(jsma, gamma=cfg.jsma_gamma,
                             on="logits" if name == "jsma_z" else "probs")
  if name == "deepfool":
    return deepfool
  if name in ("fgsm", "fgsm_untargeted"):
    return functools.partial(gradient.fgsm_search, grid=cfg.fgsm_grid,
                             targeted=name == "fgsm")
  return functools.partial(gradient.igs_search, steps=cfg.igs_steps,
                           bisections=cfg.igs_bisections)


def _distortion(metric: str, delta: np.ndarray) -> np.ndarray:
  """Per example: pixels changed (channels together), L2 or Linf."""
  if metric == "l0":
    changed = np.abs(delta) > 0
    if changed.ndim == 4:
      changed = changed.any(-1)
    return changed.reshape(len(delta), -1).sum(1).astype(float)
  return np.asarray(lp_norm(jnp.asarray(delta), metric), float)


def case_summary(distance: np.ndarray, success: np.ndarray) -> dict:
  """Best, average and worst case of `[images, targets]` distortions.

  Returns per case the success probability and the mean distortion over
  the successes (None where there are none): best = each image's easiest
  reached target, worst = its hardest (success only if all were reached),
  average = all pairs.
  """
  dist = np.where(success, distance, np.nan)
  any_ok, all_ok = success.any(1), success.all(1)
  best = np.where(any_ok, np.nanmin(np.where(any_ok[:, None], dist, 0.), 1),
                  np.nan)
  worst = np.where(all_ok, np.max(np.where(success, distance, 0.), 1), np.nan)

  def case(values, ok):
    return {"success": float(np.mean(ok)),
            "distortion": float(np.nanmean(values)) if ok.any() else None}

  return {"best": case(best, any_ok), "average": case(dist, success),
          "worst": case(worst, all_ok)}


def _select_images(cfg, correct, labels, num_classes):
  """Indices of `n_images` test images every model classifies correctly
  (`correct` [N] bool): the first of each class first (the grid figure's
  sources), then in order."""
  ok = np.flatnonzero(correct)
  firsts = [int(ok[labels[ok] == k][0]) for k in range(num_classes)
            if (labels[ok] == k).any()]
  chosen = set(firsts)
  rest = [int(i) for i in ok if i not in chosen]
  return np.asarray((firsts + rest)[:cfg.n_images], np.int64)


def _pairs(x, y, num_classes):
  """Every (image, other class) pair: `(x [N*(K-1)], target, image index)`."""
  n = len(y)
  targets = (y[:, None] + np.arange(1, num_classes)[None, :]) % num_classes
  idx = np.repeat(np.arange(n), num_classes - 1)
  return x[idx], targets.reshape(-1).astype(np.int32), idx


def _compile(attack):
  """`(variables, x, y) -> x_adv`, jitted once for every model."""
  return jax.jit(lambda v, x, y, apply_fn: attack(
      lambda z: apply_fn(v, z), x, y), static_argnums=3)


def _run_attack(cfg, apply_fn, variables, call, x, labels, desc):
  """A compiled attack over `(x, labels)` in padded batches."""
  out = []
  b = min(cfg.eval_batch_size, len(x))
  for s in tqdm(range(0, len(x), b), desc=desc, disable=not cfg.progress,
                leave=False):
    xb, yb, mask = evaluation.pad_batch(x[s:s + b], labels[s:s + b], b)
    out.append(np.asarray(call(variables, xb, yb, apply_fn))[mask])
  return np.concatenate(out)


def _predict(apply_fn, variables, x):
  return np.concatenate([
      np.asarray(jnp.argmax(apply_fn(variables, jnp.asarray(x[s:s + 500])),
                            -1)) for s in range(0, len(x), 500)])


def _evaluate(cfg, apply_fn, variables, x, y, num_classes, compiled,
              model_name, bar):
  """All attacks on one model: per attack the case summary, the per-pair
  distortions and successes, and the adversarials. `bar` advances by one
  per attack."""
  xp, tp, _ = _pairs(x, y, num_classes)
  n = len(y)
  out = {}
  for name in cfg.attacks:
    bar.set_postfix_str(f"{model_name} {name}")
    t0 = time.time()
    untargeted = name in UNTARGETED
    ref, labels = (x, y) if untargeted else (xp, tp)
    adv = _run_attack(cfg, apply_fn, variables, compiled[name], ref, labels,
                      f"{model_name} {name}")
    pred = _predict(apply_fn, variables, adv)
    dist = _distortion(METRIC[name], adv - ref)
    ok = pred != y if untargeted else pred == tp
    dist, ok = dist.reshape(n, -1), ok.reshape(n, -1)
    summary = case_summary(dist, ok)
    if untargeted:
      summary.update(average=None, worst=None)
    out[name] = {"metric": METRIC[name], **summary,
                 "seconds": time.time() - t0, "distance": dist,
                 "success": ok,
                 "x_adv": adv.reshape((n, -1) + x.shape[1:])}
    bar.update()
  return out


def _train(cfg, name, model, train, mesh, teacher=None):
  """The standard model, the teacher (standard at T) or the student."""
  settings = {k: getattr(cfg, k) for k in runner.TRAINING_SETTINGS}
  kwargs = {}
  method = "standard"
  if name in ("teacher", "distilled"):
    settings["temperature"] = cfg.temperature
    kwargs["temperature"] = cfg.temperature
  if name == "distilled":
    method, kwargs["teacher"] = "distillation", teacher
  env = runner.Env(train, None, model, None, mesh)
  res, seconds = runner.train(cfg, env, name, runner.TrainSpec(
      training.methods.get(method, **kwargs), settings))
  return jax.device_get(res.state.variables), seconds


def run(config: CarliniConfig) -> dict:
  """Runs the benchmark; returns the results dict (also written to disk).

  Args:
    config: a `CarliniConfig`; None fields take the dataset's preset.

  Returns:
    'config', 'images' (test indices attacked), 'models' (per model:
    clean_accuracy, train_seconds, attacks: per attack metric, best /
    average / worst {success, distortion}, seconds), 'published',
    'seconds', 'table' (markdown).

  Raises:
    ValueError: bad settings; `data.DatasetNotFoundError` when the dataset
    is not prepared.
  """
  cfg = resolve(config)
  t_start = time.time()
  os.makedirs(cfg.workdir, exist_ok=True)
  train = data.load(cfg.dataset, "train", data_dir=cfg.data_dir)
  test = data.load(cfg.dataset, "test", data_dir=cfg.data_dir)
  model = models.get_model(cfg.model, num_classes=train.num_classes)
  apply_fn = lambda v, x: model.apply(v, x, train=False)
  mesh = sharding.make_mesh()
  trained = {}
  variables, seconds = _train(cfg, "standard", model, train, mesh)
  trained["standard"] = (variables, seconds)
  if cfg.distilled:
    t_vars, t_sec = _train(cfg, "teacher", model, train, mesh)
    teacher = lambda x: apply_fn(t_vars, x)
    s_vars, s_sec = _train(cfg, "distilled", model, train, mesh,
                           teacher=teacher)
    trained["distilled"] = (s_vars, t_sec + s_sec)
  preds = {n: _predict(apply_fn, v, test.images)
           for n, (v, _) in trained.items()}
  correct = np.all([p == test.labels for p in preds.values()], axis=0)
  idx = _select_images(cfg, correct, test.labels, train.num_classes)
  if idx.size == 0:
    raise ValueError("No test image is classified correctly by every model: "
                     "train longer (--epochs) before attacking.")
  x, y = test.images[idx], test.labels[idx].astype(np.int32)
  compiled = {a: _compile(_attack_fn(cfg, a)) for a in cfg.attacks}
  results = {"config": dataclasses.asdict(cfg), "images": idx.tolist(),
             "devices": [str(d) for d in jax.devices()], "models": {},
             "published": PUBLISHED.get(cfg.dataset)}
  evaluated = {}
  bar = tqdm(total=len(trained) * len(cfg.attacks), desc="attacks",
             disable=not cfg.progress)
  for name, (v, train_seconds) in trained.items():
    ev = _evaluate(cfg, apply_fn, v, x, y, train.num_classes, compiled,
                   name, bar)
    evaluated[name] = ev
    results["models"][name] = {
        "clean_accuracy": float(np.mean(preds[name] == test.labels)),
        "train_seconds": train_seconds,
        "attacks": {a: {k: r[k] for k in ("metric", "best", "average",
                                          "worst", "seconds")}
                    for a, r in ev.items()}}
  bar.close()
  results["seconds"] = time.time() - t_start
  results["table"] = _table(cfg, results)
  with open(os.path.join(cfg.workdir, "results.json"), "w") as f:
    json.dump(results, f, indent=2)
  with open(os.path.join(cfg.workdir, "results.md"), "w") as f:
    f.write(results["table"] + "\n")
  for name in ("cw_l2", "cw_l0", "cw_linf"):
    if name in evaluated["standard"]:
      _plot_grid(cfg, x, y, evaluated["standard"][name], name,
                 train.num_classes,
                 os.path.join(cfg.workdir, f"grid_{name}.png"))
  _plot_distortion(cfg, results, os.path.join(cfg.workdir,
                                              "distortion.png"))
  return results


_LABEL = {"cw_l0": "CW L0", "jsma_z": "JSMA-Z", "jsma_f": "JSMA-F",
          "cw_l2": "CW L2", "deepfool": "DeepFool", "cw_linf": "CW Linf",
          "fgsm": "FGSM", "fgsm_untargeted": "FGSM, untargeted",
          "igs": "Iterative gradient sign"}


def _cell(case, metric):
  if case is None:
    return "- | -"
  d = case["distortion"]
  spec = ".1f" if metric == "l0" else ".3g"
  return (f"{'-' if d is None else format(d, spec)} | "
          f"{100 * case['success']:.0f} %")


def _table(cfg, results) -> str:
  pub = results["published"] or {}
  rows = [f"# {cfg.dataset}: Carlini & Wagner's targeted-attack comparison "
          f"(Table IV), {cfg.model}", "",
          f"{len(results['images'])} correctly classified test images, each "
          "attacked towards every other class. Distortion: pixels changed "
          "(L0 rows), L2 or Linf in [0, 1] units; the mean is over "
          "successes. Best / worst case: each image's easiest / hardest "
          "target; average: all pairs. DeepFool and untargeted FGSM have no "
          "target (best case only, as the paper's DeepFool row).", "",
          f"Settings: CW-L2 {cfg.cw_l2_search_steps} x {cfg.cw_l2_steps} "
          f"Adam steps at {cfg.cw_l2_learning_rate:g}; CW-Linf "
          f"{cfg.cw_linf_steps} steps per c at Adam "
          f"{cfg.cw_linf_learning_rate:g}; CW-L0 {cfg.cw_l0_steps} steps "
          f"per c; JSMA gamma {cfg.jsma_gamma:g}; FGSM eps on a "
          f"{cfg.fgsm_grid}-point grid; iterative gradient sign "
          f"{cfg.igs_steps} steps, eps bisected {cfg.igs_bisections} times."]
  for model_name, m in results["models"].items():
    rows += ["", f"## {model_name} model (clean accuracy "
             f"{100 * m['clean_accuracy']:.1f} %)", "",
             "| attack | best: distortion | success | average: distortion | "
             "success | worst: distortion | success | published best "
             f"({cfg.dataset if pub else 'MNIST'}) |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    ref = pub or PUBLISHED["mnist"]
    for name, r in m["attacks"].items():
      p = ref.get(name)
      rows.append(f"| {_LABEL[name]} | {_cell(r['best'], r['metric'])} | "
                  f"{_cell(r['average'], r['metric'])} | "
                  f"{_cell(r['worst'], r['metric'])} | "
                  + (f"{p[0]:g} / {100 * p[1]:.0f} % |" if p else "- |"))
  rows += ["", "Published: the paper's Table IV best case for its three "
           "attacks (the values checked against a second source offline; "
           "the other cells are in the paper). "
           + ("" if pub else f"No published numbers for {cfg.dataset}: "
              "MNIST's are shown for scale; distances at another resolution "
              "are not comparable in size.")]
  if "distilled" in results["models"]:
    ms = results["models"]

    def succ(model_name, a):
      r = ms[model_name]["attacks"][a]
      return 100 * (r["average"] or r["best"])["success"]

    rows += ["", f"Defensive distillation at T = {cfg.temperature:g} (the "
             "paper: the earlier attacks mostly fail on the distilled model, "
             "its own still succeed). Success, standard -> distilled "
             "(average case; best case for the untargeted rows): " + "; ".join(
                 f"{_LABEL[a]} {succ('standard', a):.0f} -> "
                 f"{succ('distilled', a):.0f} %"
                 for a in ms["standard"]["attacks"]) + "."]
  rows += ["", "Time (s): " + "; ".join(
      f"{n} train {m['train_seconds']:.0f}, attacks " + ", ".join(
          f"{a} {r['seconds']:.0f}" for a, r in m["attacks"].items())
      for n, m in results["models"].items())
           + f"; total {results['seconds']:.0f}"]
  return "\n".join(rows)


def _plot_grid(cfg, x, y, res, name, num_classes, path):
  """Rows: the first image of each class; columns: the target class; the
  diagonal is the original (the paper's Figures 3-5)."""
  plt = report.pyplot()
  firsts = [int(np.flatnonzero(y == k)[0]) if (y == k).any() else None
            for k in range(num_classes)]
  fig, axes = plt.subplots(num_classes, num_classes,
                           figsize=(num_classes * 0.8, num_classes * 0.8),
                           squeeze=False)
  image = lambda a: np.clip(a[..., 0] if a.shape[-1] == 1 else a, 0, 1)
  for k, i in enumerate(firsts):
    for t in range(num_classes):
      ax = axes[k][t]
      ax.set_xticks([])
      ax.set_yticks([])
      if i is None:
        ax.axis("off")
        continue
      if t == k:
        ax.imshow(image(x[i]), cmap="gray", vmin=0, vmax=1)
        continue
      j = (t - k) % num_classes - 1  # pair order of `_pairs`
      ax.imshow(image(res["x_adv"][i, j]), cmap="gray", vmin=0, vmax=1)
      if not res["success"][i, j]:
        ax.set_title("failed", fontsize=6, color="red")
    axes[k][0].set_ylabel(str(k), fontsize=7)
  for t in range(num_classes):
    axes[-1][t].set_xlabel(str(t), fontsize=7)
  fig.suptitle(f"{cfg.dataset}: {_LABEL[name]}, source (rows) to target "
               "(columns)", fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def _plot_distortion(cfg, results, path):
  """Average-case mean distortion per attack, relative to the standard
  model's, for each model (bars; missing where no success)."""
  plt = report.pyplot()
  names = list(results["models"]["standard"]["attacks"])
  fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
  width = 0.8 / len(results["models"])
  for k, (model_name, m) in enumerate(results["models"].items()):
    succ, dist = [], []
    for a in names:
      case = m["attacks"][a]["average"] or m["attacks"][a]["best"]
      succ.append(100 * case["success"])
      base = results["models"]["standard"]["attacks"][a]
      base = (base["average"] or base["best"])["distortion"]
      d = case["distortion"]
      dist.append(np.nan if d is None or not base else d / base)
    pos = np.arange(len(names)) + k * width
    axes[0].bar(pos, succ, width, label=model_name)
    axes[1].bar(pos, dist, width, label=model_name)
  for ax, label in ((axes[0], "success (%)"),
                    (axes[1], "mean distortion / standard model's")):
    ax.set_xticks(np.arange(len(names)) + width * (len(results["models"]) - 1)
                  / 2)
    ax.set_xticklabels([_LABEL[a] for a in names], rotation=45, ha="right",
                       fontsize=7)
    ax.set_ylabel(label)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=7)
  fig.suptitle(f"{cfg.dataset}: average case (DeepFool: untargeted), "
               f"standard vs distilled (T = {cfg.temperature:g})", fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
