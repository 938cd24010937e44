"""Spatial robustness: rotations and translations (Engstrom et al. 2019).

`run(SpatialConfig(dataset=...))` trains (or reloads from the workdir) five
models (or the subset `models`) of one architecture with the same
optimizer and epochs:

| model | `training` method | |
|---|---|---|
| `standard` | `standard` | cross-entropy |
| `linf` | `madry` | Linf PGD adversarial training |
| `augment` | `spatial_augment` | one random rotation + translation |
| `wasserstein` | `wasserstein_adaptive` | Wasserstein, adaptive radius |
| `spatial` | `spatial` | worst-of-10 spatial adversarial training |

`standard`, `linf` and `wasserstein` are the three models of
`benchmarks.wasserstein`, trained with its recipe
(`advjax.training.recipes.wasserstein_methods` and the WASSERSTEIN preset:
architecture, optimizer, epochs, Linf and Wasserstein training attacks);
`augment` and `spatial` get the same architecture, optimizer and epochs.
Each model is evaluated on the test set, for every threat model
`(max_angle degrees, max_shift pixels)`, with

- natural accuracy (no transform);
- random: one uniformly drawn transform per example (`spatial_random`);
- worst-of-10: the worst of 10 uniform draws (`spatial_worst_of_k`);
- first-order: projected sign ascent on (angle, tx, ty) from a uniform
  start (`spatial_pgd`);
- grid: the exhaustive search (`spatial_grid`) over angles every
  `grid_angle_step` degrees and shifts every `grid_shift_step` pixels
  (0.5 degrees and 1 px by default: finer than Engstrom et al.'s 31 x 5 x 5
  on their 30 degrees / 3 px range).

Accuracy under an attack is the accuracy on the transformed images it
returns (as the reference code's evaluation). What holds by construction:
the grid's point counts are odd, so the identity is on the grid and grid
accuracy <= natural accuracy; random, worst-of-10 and first-order draw
from the same key per batch, so the random transform is the first of the
ten (jax's partitionable threefry, the default, draws the first row of a
`[10, B]` sample as the `[1, B]` one) and the first-order attack's start,
and worst-of-10 <= random and first-order <= random per example. Grid vs
worst-of-10 and random vs natural are not ordered by construction: the
grid misses off-grid transforms, and a transform can correct a
misclassified image.

Threat models (`THREAT_MODELS`, nominal pixels on 28-px MNIST / 32-px
CIFAR-10 images): Engstrom et al.'s 30 degrees / 3 px, and D'Costa &
Sriramanan's Table 2 ranges 20 degrees / 3 px, 10 degrees / 3 px and 5
degrees / 1 px. Shifts are multiplied by the preset's `shift_scale`: on the
8x8 digits a 3 px shift would move the digit mostly out of the image, so
the digits preset scales them by 8 / 28 (3 px -> 0.857 px, 1 px -> 0.286
px); results.md reports the nominal and the used values. The spatially
trained models train at Engstrom et al.'s range (30 degrees, 3 nominal
px).

It writes `results.json`, `results.md` (a table per threat model),
`spatial_accuracy.png` (accuracy per attack and model, one panel per threat
model) and `worst_transforms.png` (test images and, for each model, the
worst transform the grid attack found for them) to the workdir.

Presets (`PRESETS`): `digits` runs offline in ~6 minutes on 2 CPU cores;
`mnist` and `cifar10` take the Wasserstein benchmark's training settings
and unscaled shifts, and need the data prepared with tensorflow-datasets.

References:
  Engstrom, Tran, Tsipras, Schmidt, Madry. Exploring the landscape of
  spatial robustness. ICML 2019 (arXiv:1712.02779); reference code
  MadryLab/adversarial_spatial (limits 3 px, 3 px, 30 degrees; grid 5 x 5 x
  31; worst of 10 random tries).
"""
import dataclasses
import functools
import json
import os
import time
from typing import Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from advjax import evaluation, report, training
from advjax import run as runner
from advjax.attacks import spatial as spatial_attacks
from advjax.transforms import rotate_translate

__all__ = ["SpatialConfig", "PRESETS", "MODELS", "METHODS", "ATTACKS",
           "THREAT_MODELS", "resolve", "grid_points", "used_shift", "run"]

MODELS = ("standard", "linf", "augment", "wasserstein", "spatial")
METHODS = {"standard": "standard", "linf": "madry",
           "augment": "spatial_augment",
           "wasserstein": "wasserstein_adaptive", "spatial": "spatial"}
# Result keys; `worst_of_10` is the worst of `eval_k` draws (10 by default).
ATTACKS = ("natural", "random", "worst_of_10", "first_order", "grid")
# (max_angle degrees, max_shift nominal pixels, source).
THREAT_MODELS = ((30., 3., "Engstrom et al."),
                 (20., 3., "D'Costa & Sriramanan, Table 2"),
                 (10., 3., "D'Costa & Sriramanan, Table 2"),
                 (5., 1., "D'Costa & Sriramanan, Table 2"))

_TRAINING = ("model", "epochs", "batch_size", "optimizer", "learning_rate",
             "weight_decay", "schedule")


@dataclasses.dataclass(frozen=True)
class SpatialConfig(runner.Config):
  """Settings of a run; None fields take the dataset's preset (`PRESETS`).

  Attributes:
    dataset: a name `advjax.data.load` knows with a preset here.
    models: the models to train and evaluate, a subset of `MODELS`.
    model, epochs, batch_size, optimizer, learning_rate, weight_decay,
      schedule: training of every model (default: the Wasserstein
      benchmark's preset; its Linf and Wasserstein training attacks are
      taken from that preset too).
    shift_scale: pixels used per nominal pixel (digits: 8 / 28).
    train_max_angle, train_max_shift, train_k: the range (degrees, nominal
      pixels) of the `augment` and `spatial` models' training transforms
      and the draws of worst-of-k training.
    threat_models: `(max_angle, max_shift)` pairs (degrees, nominal pixels)
      or `(max_angle, max_shift, source)` triples.
    eval_k: draws of the worst-of-k evaluation (10).
    pgd_steps: steps of the first-order attack.
    grid_angle_step, grid_shift_step: grid spacing (degrees, nominal
      pixels); each axis gets the odd number of points `2 round(max /
      step) + 1`, evenly spaced over `[-max, max]`.
    eval_batch_size, eval_limit, train_limit: batching and subsets (0: all).
    figure_examples: test images in `worst_transforms.png`.
    workdir, data_dir, seed, save_every, progress: as `advjax.runner.Config`.
  """
  models: Tuple[str, ...] = MODELS
  shift_scale: Optional[float] = None
  train_max_angle: float = 30.
  train_max_shift: float = 3.
  train_k: int = 10
  threat_models: Tuple[tuple, ...] = THREAT_MODELS
  eval_k: int = 10
  pgd_steps: Optional[int] = None
  grid_angle_step: Optional[float] = None
  grid_shift_step: Optional[float] = None
  eval_batch_size: int = 200
  eval_limit: int = 0
  train_limit: int = 0
  figure_examples: int = 6


def _preset(dataset: str, **spatial) -> dict:
  """The Wasserstein benchmark's training settings and the spatial ones."""
  w = training.recipes.WASSERSTEIN[dataset]
  return {**{k: w[k] for k in _TRAINING}, **spatial}


PRESETS = {
    # 8x8 digits: shifts scaled by 8/28; grid 0.5 degrees x 1 nominal px
    # (0.286 px): 121 x 7 x 7 transforms at 30 degrees / 3 px. ~6 minutes
    # on 2 CPU cores, half of it the Wasserstein model's training.
    "digits": _preset("digits", shift_scale=8 / 28, pgd_steps=200,
                      grid_angle_step=0.5, grid_shift_step=1.),
    # Seconds: a smoke test of the whole pipeline, not a result.
    "synthetic": _preset("synthetic", shift_scale=8 / 28, pgd_steps=5,
                         grid_angle_step=10., grid_shift_step=3.),
    "mnist": _preset("mnist", shift_scale=1., pgd_steps=200,
                     grid_angle_step=0.5, grid_shift_step=1.),
    # Engstrom et al. shift CIFAR-10's 32-px images by 3 px as well.
    "cifar10": _preset("cifar10", shift_scale=1., pgd_steps=200,
                       grid_angle_step=0.5, grid_shift_step=1.),
}


def _threat_models(tms) -> Tuple[Tuple[float, float, str], ...]:
  out = []
  for tm in tms:
    if len(tm) not in (2, 3):
      raise ValueError("SpatialConfig.threat_models: each must be (max_angle,"
                       f" max_shift[, source]), got {tm}.")
    out.append((float(tm[0]), float(tm[1]), str(tm[2]) if len(tm) == 3
                else ""))
  return tuple(out)


def resolve(config: SpatialConfig) -> SpatialConfig:
  """Fills None fields from the dataset's preset; checks the settings."""
  cfg = runner.fill_preset(
      config, PRESETS, "spatial")
  cfg = dataclasses.replace(cfg, models=tuple(cfg.models),
                            threat_models=_threat_models(cfg.threat_models))
  unknown = [m for m in cfg.models if m not in MODELS]
  if unknown or not cfg.models or len(set(cfg.models)) < len(cfg.models):
    raise ValueError("SpatialConfig.models must be distinct names of "
                     f"{MODELS}, got {cfg.models}.")
  if not cfg.threat_models:
    raise ValueError("SpatialConfig.threat_models must not be empty.")
  for angle, shift, _ in cfg.threat_models:
    if not (angle >= 0 and shift >= 0):
      raise ValueError("SpatialConfig.threat_models: max_angle and max_shift "
                       f"must be >= 0, got ({angle}, {shift}).")
  for name in ("shift_scale", "grid_angle_step", "grid_shift_step"):
    if not getattr(cfg, name) > 0:
      raise ValueError(f"SpatialConfig.{name} must be > 0, got "
                       f"{getattr(cfg, name)}.")
  for name in ("train_max_angle", "train_max_shift"):
    if not getattr(cfg, name) >= 0:
      raise ValueError(f"SpatialConfig.{name} must be >= 0, got "
                       f"{getattr(cfg, name)}.")
  for name in ("epochs", "batch_size", "train_k", "eval_k",
               "eval_batch_size"):
    if getattr(cfg, name) < 1:
      raise ValueError(f"SpatialConfig.{name} must be >= 1, got "
                       f"{getattr(cfg, name)}.")
  if cfg.pgd_steps < 0:
    raise ValueError(f"SpatialConfig.pgd_steps must be >= 0, got "
                     f"{cfg.pgd_steps}.")
  return cfg


def grid_points(max_value: float, step: float) -> int:
  """Points per grid axis: `2 round(max / step) + 1` (odd: 0 included)."""
  return 2 * int(round(max_value / step)) + 1


def used_shift(cfg: SpatialConfig, nominal: float) -> float:
  """The shift in pixels of the dataset's images for a nominal shift."""
  return nominal * cfg.shift_scale


def _train(cfg, name, model, train, mesh):
  """Trains (or resumes, or reloads) one of the five models: `standard`,
  `linf` and `wasserstein` with the Wasserstein recipe
  (`training.recipes.wasserstein_methods`, the dataset's preset), `augment`
  and `spatial` over the config's training range."""
  env = runner.Env(train, None, model, None, mesh)
  w = training.recipes.WASSERSTEIN[cfg.dataset]
  recipe = training.recipes.wasserstein_methods(
      {k: w[k] for k in training.recipes.WASSERSTEIN_TRAINING if k in w})
  if name in recipe:
    return runner.train(cfg, env, name, runner.TrainSpec(*recipe[name]))
  shift = used_shift(cfg, cfg.train_max_shift)
  settings = dict(train_max_angle=cfg.train_max_angle, train_max_shift=shift,
                  train_k=cfg.train_k)
  rng = dict(max_angle=cfg.train_max_angle, max_shift=shift)
  method = (training.methods.spatial(k=cfg.train_k, **rng) if name == "spatial"
            else training.methods.spatial_augment(**rng))
  return runner.train(cfg, env, name, runner.TrainSpec(method, settings))


def _make_eval(cfg, apply_fn):
  """`evaluate(variables, x, y, mask, max_angle, max_shift, key, *, angles,
  shifts) -> dict`, jitted; variables and the range are arguments, so one
  compilation per grid size serves every model."""

  @functools.partial(jax.jit, static_argnames=("angles", "shifts"))
  def evaluate(variables, x, y, mask, max_angle, max_shift, key, *, angles,
               shifts):
    model_fn = lambda z: apply_fn(variables, z)
    kw = dict(max_angle=max_angle, max_shift=max_shift, return_result=True)
    # One key: the random draw is worst-of-k's first and PGD's start.
    rand = spatial_attacks.spatial_random(model_fn, x, y, key=key, **kw)
    worst = spatial_attacks.spatial_worst_of_k(model_fn, x, y, key=key,
                                               k=cfg.eval_k, **kw)
    first = spatial_attacks.spatial_pgd(model_fn, x, y, key=key,
                                        steps=cfg.pgd_steps, **kw)
    grid = spatial_attacks.spatial_grid(model_fn, x, y, angles=angles,
                                        shifts=shifts, **kw)
    correct = {"natural": jnp.argmax(model_fn(x), -1) == y,
               "random": ~rand.fooled, "worst_of_10": ~worst.fooled,
               "first_order": ~first.fooled, "grid": ~grid.fooled}
    out = {a: c & mask for a, c in correct.items()}
    out.update(grid_angle=grid.angle, grid_tx=grid.tx, grid_ty=grid.ty,
               grid_pred=jnp.argmax(model_fn(grid.x_adv), -1))
    return out

  return evaluate


def _threat_info(cfg):
  info = []
  for angle, shift, source in cfg.threat_models:
    info.append({
        "max_angle": angle, "max_shift_nominal": shift,
        "max_shift": used_shift(cfg, shift), "source": source,
        "grid": [grid_points(angle, cfg.grid_angle_step),
                 grid_points(shift, cfg.grid_shift_step),
                 grid_points(shift, cfg.grid_shift_step)]})
  return info


def run(config: SpatialConfig) -> dict:
  """Runs the benchmark; returns the results dict (also written to disk).

  Args:
    config: a `SpatialConfig`; None fields take the dataset's preset.

  Returns:
    'config', 'threat_models' (per threat model: max_angle, nominal and
    used max_shift, source, grid points per axis), 'models' (per model:
    method, accuracy[threat index][attack] for the attacks of `ATTACKS`,
    train_seconds, eval_seconds, resumed_from), 'seconds', 'table'
    (markdown).

  Raises:
    ValueError: for bad settings; `data.DatasetNotFoundError` when the
    dataset is not prepared.
  """
  cfg = resolve(config)
  t_start = time.time()
  train, test, model, apply_fn, mesh = runner.setup(cfg)
  evaluate = _make_eval(cfg, apply_fn)
  threats = _threat_info(cfg)
  n = test.images.shape[0]
  b = min(cfg.eval_batch_size, n)
  starts = list(range(0, n, b))
  results = {"config": dataclasses.asdict(cfg), "threat_models": threats,
             "attacks": list(ATTACKS), "test_examples": n,
             "devices": [str(d) for d in jax.devices()], "models": {}}
  worst, clean_correct = {}, None
  for name in cfg.models:
    fit, train_seconds = _train(cfg, name, model, train, mesh)
    variables = jax.device_get(fit.state.variables)
    t0 = time.time()
    accuracy = []
    bar = tqdm(total=len(threats) * len(starts), desc=f"spatial eval {name}",
               disable=not cfg.progress)
    for t, tm in enumerate(threats):
      correct = {a: [] for a in ATTACKS}
      grid = {k: [] for k in ("angle", "tx", "ty", "pred")}
      for i, s in enumerate(starts):
        x, y, mask = evaluation.pad_batch(test.images[s:s + b],
                                          test.labels[s:s + b], b)
        key = jax.random.fold_in(jax.random.fold_in(
            jax.random.key(cfg.seed + 1), t), i)
        out = evaluate(variables, x, y, mask, np.float32(tm["max_angle"]),
                       np.float32(tm["max_shift"]), key,
                       angles=tm["grid"][0], shifts=tm["grid"][1])
        out = jax.device_get(out)
        m = int(mask.sum())
        for a in ATTACKS:
          correct[a].append(out[a][:m])
        for k in grid:
          grid[k].append(out[f"grid_{k}"][:m])
        bar.set_postfix(threat=f"{tm['max_angle']:g}deg/"
                        f"{tm['max_shift_nominal']:g}px")
        bar.update()
      accuracy.append({a: float(np.mean(np.concatenate(c)))
                       for a, c in correct.items()})
      if t == 0:
        worst[name] = {k: np.concatenate(v) for k, v in grid.items()}
        if clean_correct is None:  # the first model's
          clean_correct = np.concatenate(correct["natural"])
    bar.close()
    results["models"][name] = {
        "method": METHODS[name], "accuracy": accuracy,
        "train_seconds": train_seconds, "eval_seconds": time.time() - t0,
        "resumed_from": fit.resumed_from}
  results["seconds"] = time.time() - t_start
  results["table"] = _table(cfg, results)
  with open(os.path.join(cfg.workdir, "results.json"), "w") as f:
    json.dump(results, f, indent=2)
  with open(os.path.join(cfg.workdir, "results.md"), "w") as f:
    f.write(results["table"] + "\n")
  _plot_accuracy(cfg, results,
                 os.path.join(cfg.workdir, "spatial_accuracy.png"))
  idx = np.flatnonzero(clean_correct)[:cfg.figure_examples]
  _plot_worst(cfg, results, test, idx, worst,
              os.path.join(cfg.workdir, "worst_transforms.png"))
  return results


def _name(cfg, attack):
  """The display name of an attack (`worst_of_10` holds worst-of-eval_k)."""
  return {"worst_of_10": f"worst-of-{cfg.eval_k}",
          "first_order": "first-order"}.get(attack, attack)


def _training_desc(cfg, name):
  shift = used_shift(cfg, cfg.train_max_shift)
  rng = (f"{cfg.train_max_angle:g} deg, {cfg.train_max_shift:g} px "
         f"({shift:.3g} px used)")
  w = training.recipes.WASSERSTEIN[cfg.dataset]
  return {
      "standard": "cross-entropy",
      "linf": f"Madry PGD-{w['linf_steps']}, Linf eps {w['linf_eps']:.4g}",
      "augment": f"random rotation + translation, {rng}",
      "wasserstein": (f"Wasserstein PGD-{w['train_steps']}, adaptive "
                      f"radius {w['train_eps0']:g} x {w['train_factor']:g} "
                      f"every {w['train_grow_every']}"),
      "spatial": f"worst-of-{cfg.train_k}, {rng}"}[name]


def _threat_title(tm, html=False):
  deg = "°" if html else " deg"
  return (f"{tm['max_angle']:g}{deg} / {tm['max_shift_nominal']:g} px "
          f"({tm['max_shift']:.3g} px used)")


def _table(cfg, results) -> str:
  k = cfg.eval_k
  rows = [
      f"# {cfg.dataset}: spatial robustness (Engstrom et al. 2019), "
      f"{cfg.model}",
      "",
      f"{results['test_examples']} test images. Threat model: rotation in "
      "[-max_angle, max_angle] degrees about the centre, then translation "
      "by up to max_shift pixels in x and y (bilinear, zero fill). Shifts "
      "are nominal pixels of 28-px MNIST / 32-px CIFAR-10 images times "
      f"{cfg.shift_scale:.4g}"
      + (" (image width 8 / 28: a 3 px shift on an 8x8 digit would move "
         "most of it out of the image)" if cfg.dataset == "digits" else "")
      + f". Attacks: natural (none); random (one uniform draw); worst-of-{k}"
      f" (the worst of {k} uniform draws; the random draw is the first of "
      f"them); first-order (PGD-{cfg.pgd_steps} sign steps on angle and "
      "shifts from the random draw); grid (every transform of a grid with "
      f"{cfg.grid_angle_step:g} degree and {cfg.grid_shift_step:g} nominal px"
      " spacing, the identity included). Accuracy = fraction of test images "
      "classified correctly after the attack's transform.",
      "",
      "Training (all models: "
      f"{cfg.epochs} epochs of {cfg.optimizer} {cfg.learning_rate:g}, "
      f"{cfg.schedule}, batch {cfg.batch_size}): "
      + "; ".join(f"{n}: {_training_desc(cfg, n)}" for n in results["models"])
      + ".", ""]
  for t, tm in enumerate(results["threat_models"]):
    g = tm["grid"]
    rows += [f"## {_threat_title(tm)}"
             + (f" - {tm['source']}" if tm["source"] else ""), "",
             f"Grid: {g[0]} angles x {g[1]} x {g[2]} shifts = "
             f"{g[0] * g[1] * g[2]} transforms.", "",
             "| model | " + " | ".join(_name(cfg, a) for a in ATTACKS) + " |",
             "|---|" + "---:|" * len(ATTACKS)]
    for name, r in results["models"].items():
      rows.append(f"| {name} | " + " | ".join(
          f"{100 * r['accuracy'][t][a]:.1f} %" for a in ATTACKS) + " |")
    rows.append("")
  names = list(results["models"])
  rows += ["## Grid accuracy per threat model", "",
           "| threat model | " + " | ".join(names) + " |",
           "|---|" + "---:|" * len(names)]
  for t, tm in enumerate(results["threat_models"]):
    rows.append(f"| {_threat_title(tm)} | " + " | ".join(
        f"{100 * results['models'][n]['accuracy'][t]['grid']:.1f}"
        for n in names) + " |")
  rows += ["", "Published numbers: none shown. Engstrom et al.'s and D'Costa "
           "& Sriramanan's tables could not be checked against a copy of the "
           "papers offline, and are not quoted from memory. The threat model, "
           "worst-of-10 and the selection rule (a misclassifying transform "
           "of highest loss, else the highest loss) follow the reference "
           "code (MadryLab/adversarial_spatial: 30 degrees, 3 px, worst of 10 "
           "tries; its grid is 31 x 5 x 5, the one here finer).",
           "", "Time (s): " + ", ".join(
               f"{n} train {r['train_seconds']:.0f} / eval "
               f"{r['eval_seconds']:.0f}"
               for n, r in results["models"].items())
           + f"; total {results['seconds']:.0f}"]
  return "\n".join(rows)


def _plot_accuracy(cfg, results, path):
  """One panel per threat model: grouped bars, models x attacks."""
  plt = report.pyplot()
  threats = results["threat_models"]
  names = list(results["models"])
  cols = min(2, len(threats))
  rows = -(-len(threats) // cols)
  fig, axes = plt.subplots(rows, cols, figsize=(6.2 * cols, 3.6 * rows),
                           squeeze=False)
  width = 0.8 / len(ATTACKS)
  pos = np.arange(len(names))
  for t, tm in enumerate(threats):
    ax = axes[t // cols][t % cols]
    for j, a in enumerate(ATTACKS):
      vals = [100 * results["models"][n]["accuracy"][t][a] for n in names]
      ax.bar(pos + (j - (len(ATTACKS) - 1) / 2) * width, vals, width,
             label=_name(cfg, a), color=plt.cm.viridis(j / (len(ATTACKS) - 1)))
    ax.set_xticks(pos)
    ax.set_xticklabels(names)
    ax.set_ylim(0, 100)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(_threat_title(tm, html=True)
                 + (f"\n{tm['source']}" if tm["source"] else ""), fontsize=9)
    ax.grid(axis="y", alpha=0.3)
  for t in range(len(threats), rows * cols):
    axes[t // cols][t % cols].axis("off")
  axes[0][0].legend(fontsize=7, ncol=len(ATTACKS), loc="upper left",
                    bbox_to_anchor=(0., 1.3 if len(threats) > 1 else 1.25))
  fig.suptitle(f"{cfg.dataset}: test accuracy of each model (training "
               "method) under each spatial attack", fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def _plot_worst(cfg, results, test, idx, worst, path):
  """Row 0: clean test images; then per model the worst grid transform of
  the first threat model, titled with its angle, shifts and prediction
  (red: misclassified)."""
  plt = report.pyplot()
  names = list(worst)
  n = len(idx)
  if n == 0:
    fig, ax = plt.subplots(figsize=(4, 1))
    ax.axis("off")
    ax.text(0, 0.5, "no test image classified correctly")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return
  x = np.asarray(test.images[idx])
  y = np.asarray(test.labels[idx])
  fig, axes = plt.subplots(len(names) + 1, n,
                           figsize=(1.45 * n + 0.8, 1.55 * (len(names) + 1)),
                           squeeze=False)
  show = lambda a: a[..., 0] if a.shape[-1] == 1 else a
  for j in range(n):
    axes[0][j].imshow(show(x[j]), cmap="gray", vmin=0, vmax=1)
    axes[0][j].set_title(f"label {y[j]}", fontsize=7)
  for i, name in enumerate(names, start=1):
    w = worst[name]
    a, tx, ty, pred = (w[k][idx] for k in ("angle", "tx", "ty", "pred"))
    xt = np.asarray(rotate_translate(jnp.asarray(x), a, tx, ty))
    for j in range(n):
      ax = axes[i][j]
      ax.imshow(np.clip(show(xt[j]), 0, 1), cmap="gray", vmin=0, vmax=1)
      ax.set_title(f"{a[j]:+.1f}° ({tx[j]:+.2f}, {ty[j]:+.2f})\n"
                   f"-> {pred[j]}", fontsize=6.5,
                   color="red" if pred[j] != y[j] else "green")
  for i, row in enumerate(axes):
    for ax in row:
      ax.set_xticks([])
      ax.set_yticks([])
    row[0].set_ylabel("clean" if i == 0 else names[i - 1], fontsize=8)
  tm = results["threat_models"][0]
  fig.suptitle(f"{cfg.dataset}: worst grid transform per model, "
               f"{_threat_title(tm, html=True)}\n(angle, (tx, ty) px) -> "
               "prediction; red: fooled", fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
