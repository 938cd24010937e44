"""Spatial robustness: rotations and translations vs seven training methods.

    python -m benchmarks.spatial --dataset digits   # ~5 minutes, 2 CPU cores

Engstrom et al.'s attacks at 30 degrees / 3 px and D'Costa & Sriramanan's
20 / 3, 10 / 3, 5 / 1 (`evaluation.SpatialRanges`) on standard, random-crop,
Linf, Aug. 30, Aug. 40, Wasserstein and worst-of-10 trained models. Digits
(shifts x 8/28): the grid brings the standard, Linf and Wasserstein models
to ~0 % at 30 / 3, Aug. 30 to 12.5 % (91.9 % under one random transform),
Aug. 40 to 40.8 %, worst-of-10 training to 45.3 %; at 5 / 1 the Wasserstein
net is less robust than the vanilla one (65.0 vs 77.5 %; published 90 vs
83 %). Presets: digits, mnist, cifar10. Writes results.json, results.md
and two figures to --workdir.
"""
import dataclasses
from typing import Optional, Tuple

import jax
import numpy as np

from advjax import analysis, evaluation, report, run, training, transforms
from advjax.evaluation.spatial import ATTACKS

MODELS = ("standard", "crop", "linf", "augment", "augment40", "wasserstein",
          "spatial")


@dataclasses.dataclass(frozen=True)
class SpatialConfig(run.Config):
  """Settings (training: the Wasserstein preset's); None: the preset's."""
  models: Tuple[str, ...] = run.field(MODELS, "models to train", choices=MODELS)
  shift_scale: Optional[float] = run.field(None, "px per nominal px", gt=0)
  train_range: Tuple[float, ...] = run.field(
      (30., 3.), "augment's and spatial's (degrees, nominal px)", ge=0)
  train_k: int = run.field(10, "draws of worst-of-k training", ge=1)
  aug40_range: Tuple[float, ...] = run.field((40., 4.), "augment40's", ge=0)
  crop_pad: float = run.field(4., "crop's pad, nominal px (>= 1 px)", ge=0)
  threat_models: Tuple[Tuple[float, ...], ...] = run.field(
      ((30., 3.), (20., 3.), (10., 3.), (5., 1.)), "ranges: '30:3,5:1'", ge=0)
  eval_k: int = run.field(10, "draws of the worst-of-k attack", ge=1)
  pgd_steps: Optional[int] = run.field(None, "first-order attack steps", ge=0)
  grid_angle_step: Optional[float] = run.field(None, "grid step, deg", gt=0)
  grid_shift_step: Optional[float] = run.field(None, "grid step, px", gt=0)
  eval_batch_size: int = run.field(200, "evaluation batch size", ge=1)
  figure_examples: int = run.field(6, "images in worst_transforms.png", ge=0)


PRESETS = training.recipes.ENGSTROM


def refine(cfg, preset):
  """The structural checks a field check cannot state."""
  pairs = (*cfg.threat_models, cfg.train_range, cfg.aug40_range)
  if not (cfg.models and cfg.threat_models) or {len(p) for p in pairs} != {2}:
    raise run.ConfigError("SpatialConfig: empty models or threat_models, or "
                          f"a range not (degrees, px): {pairs}.")
  return preset


def models(cfg, env):
  """Wasserstein's (standard, linf, wasserstein) and Engstrom's recipes."""
  del env
  w, scale = training.recipes.WASSERSTEIN[cfg.dataset], cfg.shift_scale
  specs = {**training.recipes.wasserstein_methods(
      {k: w[k] for k in training.recipes.WASSERSTEIN_TRAINING if k in w}),
           **training.recipes.engstrom_methods(
               (cfg.train_range[0], cfg.train_range[1] * scale),
               (cfg.aug40_range[0], cfg.aug40_range[1] * scale),
               k=cfg.train_k, crop_pad=max(1, round(cfg.crop_pad * scale)))}
  return {n: run.TrainSpec(*specs[n]) for n in cfg.models}


def evals(cfg, env):
  """The attacks at every range (keeping the figure's worst transforms)."""
  del env
  return {"spatial": evaluation.SpatialRanges(
      cfg.threat_models, cfg.shift_scale, cfg.grid_angle_step,
      cfg.grid_shift_step, cfg.eval_k, cfg.pgd_steps,
      jax.random.key(cfg.seed + 1), cfg.eval_batch_size, cfg.progress,
      cfg.figure_examples)}


def extra(cfg, env, trained):
  """The figure's test images."""
  del trained
  return {"x": env.test.images[:cfg.figure_examples],
          "y": env.test.labels[:cfg.figure_examples]}


# Engstrom et al.'s table (D'Costa & Sriramanan's Figure 10; 30 deg / 3 px):
# (dataset, row, our model; natural, worst-of-10, first-order, grid %).
ENGSTROM = [
    ("MNIST", "Standard", "standard", 99.31, 73.32, 79.84, 26.02),
    ("MNIST", "Linf-trained", "linf", 98.65, 51.18, 81.23, 1.20),
    ("MNIST", "Aug. 30", "augment", 99.53, 98.33, 98.78, 95.79),
    ("MNIST", "Aug. 40", "augment40", 99.34, 98.49, 98.74, 96.95),
    ("CIFAR-10", "Standard", "crop", 92.62, 20.13, 62.69, 2.80),
    ("CIFAR-10", "No crop", "standard", 90.34, 15.04, 52.27, 1.86),
    ("CIFAR-10", "Linf-trained", "linf", 80.21, 19.38, 33.24, 6.02),
    ("CIFAR-10", "Aug. 30", "augment", 90.02, 79.92, 85.92, 58.92),
    ("CIFAR-10", "Aug. 40", "augment40", 88.83, 80.47, 85.48, 61.69),
    ("ImageNet", "Standard", "crop", 75.96, 47.83, 63.12, 31.42),
    ("ImageNet", "No crop", "standard", 70.81, 35.52, 55.93, 16.52),
    ("ImageNet", "Aug. 30", "augment", 65.96, 50.62, 66.05, 32.90),
    ("ImageNet", "Aug. 40", "augment40", 66.19, 51.11, 66.14, 33.86)]
# D'Costa & Sriramanan's Table 2: range -> (Wasserstein, vanilla grid %).
DCOSTA_GRID = {"20:3": (32., 25.), "10:3": (42., 32.), "5:1": (90., 83.)}
NAMES = dict(zip(ATTACKS, ("natural", "random", "worst-of-k", "first-order",
                          "grid")))
_pc = lambda v: report.cell(v, "%")
_vs = lambda u, v, value: report.Measured(value, f"{_pc(u)} vs {_pc(v)}")
_at = lambda model, tm="30:3": f"models.{model}.spatial.accuracy.{tm}"


def disagreements(results):
  """Per range, `analysis.disagreement` of the vanilla (standard) and the
  Wasserstein net under the grid ({} without both)."""
  bits = {n: m["spatial"]["grid_correct"] for n, m in results[
      "models"].items() if n in ("standard", "wasserstein")}
  return analysis.disagreement(bits["standard"], bits[
      "wasserstein"]) if len(bits) == 2 else {}


def _over(reduce, attack=None, names=MODELS):
  """Measure `reduce({model: grid accuracy at 30:3})` over the `names` the
  run has (`attack`'s accuracy minus the grid's when given)."""
  def measure(cfg, r):
    v = {n: (a[attack] - a["grid"] if attack else a["grid"]) for n, a in (
        (n, report.get_path(r, _at(n))) for n in names if n in r["models"])}
    return report.Measured(reduce(v), ", ".join(
        f"{n} {_pc(x)}" for n, x in v.items())) if v else None
  return report.present(measure)


def _table2(f):
  """Measure per Table 2 range: `f(range, grid accuracies, disagreement)`."""
  grid = lambda r, n, tm: report.get_path(r, _at(n, tm) + ".grid")
  return lambda cfg, r: {tm: f(tm, grid(r, "wasserstein", tm), grid(
      r, "standard", tm), d) for tm, d in disagreements(r).items()
                         if tm in DCOSTA_GRID}


# Engstrom et al. at 30 deg / 3 px: (claim, 'model.attack' a, b, a - b's).
ORDERINGS = [
    ("augmentation resists random transforms, not the worst case: the grid"
     " 50 points lower", "augment.random", "augment.grid", report.above(.5)),
    ("Linf adversarial training does not help against the grid",
     "linf.grid", "standard.grid", report.at_most(0.)),
    ("on MNIST Aug. 30 keeps most of its accuracy under the grid: within 10"
     " points", "augment.natural", "augment.grid", report.at_most(0.1)),
    ("Aug. 40 is at least as robust to the grid as Aug. 30",
     "augment40.grid", "augment.grid", report.at_least(0.)),
    ("random crops help against the grid ('Standard' above 'No crop')",
     "crop.grid", "standard.grid", report.above(0.))]
_path = lambda a: "models." + a.replace(".", ".spatial.accuracy.30:3.")
CLAIMS = [report.Claim(f"Engstrom et al.: {text}", report.present(
    report.difference(_path(a), _path(b), "%")), holds, quantity=f"{a} - {b}")
          for text, a, b, holds in ORDERINGS] + [
    report.Claim(text, measure, holds, quantity=quantity)
    for text, measure, holds, quantity in (
        ("Engstrom et al.: the grid defeats standard and Linf-robust models:"
         " under 5 %", _over(lambda v: max(v.values()), names=(
             "standard", "linf", "wasserstein")),
         report.below(0.05), "their highest grid accuracy"),
        ("Engstrom et al.: worst-of-10 training is the most robust to the "
         "grid", _over(lambda v: v["spatial"] - max(v.values())),
         report.at_least(0.), "spatial's - the highest grid accuracy"),
        ("Engstrom et al.: a first-order attack is far weaker than the grid",
         _over(lambda v: min(v.values()), "first_order"), report.above(0.),
         "min over models of first-order - grid accuracy"),
        ("D'Costa & Sriramanan: at 3 px the grid is effective on the vanilla"
         " and the Wasserstein-trained net: under 50 %", _table2(
             lambda tm, w, v, d: _vs(w, v, max(w, v)) if tm.endswith(":3")
             else None), report.below(0.5), "the higher grid accuracy"),
        ("D'Costa & Sriramanan, Table 2: the Wasserstein-trained net is "
         "more robust to the grid than the vanilla one", _table2(
             lambda tm, w, v, d: _vs(w, v, w - v)), report.above(0.),
         "wasserstein - vanilla grid accuracy"),
        ("D'Costa & Sriramanan: not a single image the vanilla net gets "
         "right under the grid and the Wasserstein-trained net wrong",
         _table2(lambda tm, w, v, d: d.only_a), report.at_most(0),
         "such test images"))]
PUBLISHED = [report.Published(
    "Engstrom et al. 2019 (D'Costa & Sriramanan, Fig. 10)", f"{d} '{row}' ("
    f"{name} here), 30 deg / 3 px", " / ".join(f"{v:.2f}" for v in pub),
    "natural / worst-of-10 / first-order / grid %", ours=lambda cfg, r,
    n=name: " / ".join(report.percent(report.get_path(r, _at(n))[a])
                       for a in ATTACKS if a != "random"),
    dataset=d.lower().replace("-", ""))  # cifar10, imagenet
             for d, row, name, *pub in ENGSTROM] + [report.Published(
    "D'Costa & Sriramanan, Table 2", f"MNIST, {tm} (deg:px), {who}", pub,
    "grid accuracy", ours=report.value_of(_at(n, tm) + ".grid"),
    dataset="mnist") for tm, pubs in DCOSTA_GRID.items()
    for who, n, pub in zip(("Wasserstein-trained", "vanilla"),
                           ("wasserstein", "standard"), pubs)]


def _ranges(cfg):
  """Range label ('30:3') -> its title and grid points per axis."""
  return {evaluation.range_label(a, s): (
      f"{a:g} deg / {s:g} px ({s * cfg.shift_scale:.3g} px used)", g)
          for (a, s), g in zip(cfg.threat_models,
                               evals(cfg, None)["spatial"].grids())}


def body(cfg, results):
  ms, dis = results["models"], disagreements(results)
  blocks = [
      "A transform: a rotation about the centre, then a shift in x and y "
      f"(bilinear, zero fill) in nominal px x {cfg.shift_scale:.4g}. "
      f"Attacks: random (one draw), worst-of-k (k = {cfg.eval_k}, the random"
      f" one first), first-order (PGD-{cfg.pgd_steps} from the random draw),"
      " grid; as MadryLab/adversarial_spatial, a misclassifying transform of "
      f"highest loss, else the highest. Training: {cfg.epochs} epochs of "
      f"{cfg.optimizer} {cfg.learning_rate:g}, {cfg.schedule}, batch "
      f"{cfg.batch_size}; models (method): " + ", ".join(
          f"{n} ({m['method']})" for n, m in ms.items()) + "."]
  for tm, (title, grid) in _ranges(cfg).items():
    d = dis.get(tm)
    blocks += [f"## {title}", report.records_table(ms, [(
        NAMES[x], lambda m, x=x, tm=tm: m["spatial"]["accuracy"][tm][x], "%")
        for x in ATTACKS], caption=f"Grid: {' x '.join(map(str, grid))} "
        f"transforms, {cfg.grid_angle_step:g} deg and {cfg.grid_shift_step:g}"
        " px apart." + (f" Test images vanilla right, Wasserstein wrong: "
                        f"{d.only_a} ({d.only_b} the other way)." if d
                        else ""))]
  return blocks


def figures(cfg, results):
  ms, fig, ranges = results["models"], results["extra"], _ranges(cfg)
  out = {"spatial_accuracy.png": report.Panels([report.Bar(list(ms), {
      NAMES[x]: [m["spatial"]["accuracy"][tm][x] for m in ms.values()]
      for x in ATTACKS}, ylabel="test accuracy (%)", percent=True, title=t)
      for tm, (t, _) in ranges.items()], ncols=min(2, len(ranges)),
      panel_size=(6.2, 3.8), title=f"{cfg.dataset}: accuracy under attack")}
  x, y = np.asarray(fig["x"], np.float32), fig["y"]
  images, labels = list(x), [f"clean, label {label}" for label in y]
  for name, m in ms.items():
    w = m["spatial"]["worst"]
    images += list(np.clip(transforms.rotate_translate(x, *(np.asarray(
        w[k], np.float32) for k in ("angle", "tx", "ty"))), 0, 1))
    labels += [f"{name} -> {p}{' (fooled)' if p != label else ''}\n{a:+.1f}° ("
               f"{u:+.2f}, {v:+.2f})" for a, u, v, p, label in zip(
                   w["angle"], w["tx"], w["ty"], w["pred"], y)]
  if len(y):
    out["worst_transforms.png"] = report.image_grid(  # at the first range
        images, labels, ncols=len(y), size=2.1)
  return out


REPORT = report.Report(
    "{dataset}: spatial robustness (Engstrom et al. 2019), {model}", body,
    PUBLISHED, CLAIMS, figures, stand_ins={"digits": ("mnist", "cifar10")})
BENCHMARK = run.Benchmark("spatial", SpatialConfig, PRESETS, models, None,
                          REPORT, doc=__doc__, refine=refine, extra=extra,
                          evals=evals)

if __name__ == "__main__":
  run.main(BENCHMARK)
