"""Adversarial examples in the physical world (Kurakin et al. 2017).

    python -m benchmarks.physical --dataset digits   # ~2 min, 2 CPU cores

Measured on digits (benchmarks/results/physical-digits): at eps 16 FGSM /
BIM / ILLC leave 81.7 / 80.6 / 96.4 % of 97.5 %; mean destruction rate of 25
transforms 20.3 / 21.2 % (random), 10.5 / 10.8 % (prefiltered); a SIMULATED
photo's 24.6 / 21.3 and 12.8 / 10.0 % (printed photos, published: 0.0 %); 1
of 7 claims holds, 1 partly. Figures 2, 6, Tables 1-3; eps and strengths in
levels of 255. Writes results.json, results.md, three PNGs to --workdir
(runs/physical-<dataset>). Presets: digits, synthetic, mnist, cifar10.
"""
import dataclasses
import functools
from typing import Optional, Tuple

import jax
import numpy as np

from advjax import analysis, evaluation, report, run, training, transforms
from advjax.attacks import gradient

LEVELS = 255.  # eps, brightness and noise are in levels of 255
METHODS = ("fgsm", "bim", "illc")  # fast, basic iterative, least-likely class
MIN_FOOLED = 20  # a rate on fewer fooled images is shown, not compared
SETS = ("random", "prefiltered")
KINDS = transforms.PHOTOMETRIC_KINDS
Floats = Optional[Tuple[float, ...]]
grid = lambda cfg: transforms.transform_grid(
    LEVELS, **{k: getattr(cfg, k) for k in KINDS})
chain = lambda cfg: transforms.PhotoChain(*cfg.photo, scale=LEVELS)
rows = lambda cfg: [t.name for t in grid(cfg)] + ["mean", "simulated photo"]


@dataclasses.dataclass(frozen=True)
class PhysicalConfig(run.Config):
  """Settings (the model's training from `run.Config`); None: preset."""
  methods: Tuple[str, ...] = run.field(METHODS, "the attacks", choices=METHODS)
  eps: Tuple[float, ...] = run.field((2., 4., 8., 16., 32., 64., 128.),
                                     "the accuracy sweep (levels)", ge=0)
  destruction_eps: float = run.field(16., "eps of the rates (levels)", gt=0)
  prefilter_confidence: float = run.field(
      0.8, "Kurakin's prefilter's top-1 probability", gt=0, lt=1)
  random_examples: Optional[int] = run.field(
      None, "size of the random set (0: every test image)", ge=0)
  brightness: Floats = run.field(None, "brightness changes (levels)")
  contrast: Floats = run.field(None, "contrast factors", gt=0)
  blur: Floats = run.field(None, "blur sigmas (pixels)", gt=0)
  noise: Floats = run.field(None, "noise stds (levels)", ge=0)
  jpeg: Floats = run.field(None, "JPEG qualities", ge=1, le=100)
  photo: Floats = run.field(None, "the simulated photo, `transforms."
                            "PhotoChain`'s 6 strengths (0 skips)", ge=0)
  figure_examples: int = run.field(4, "images shown in photo.png", ge=0)


def _preset(dataset: str, **settings) -> dict:
  """The standard recipe; the paper's transform ranges (Figure 6)."""
  return {**{k: v for k, v in training.recipes.MADRY[dataset].items()
             if k in run.TRAINING_SETTINGS},
          "brightness": (-30., -20., -10., 10., 20., 30.), "contrast": (
              0.7, 0.8, 0.9, 1.1, 1.2, 1.3), "noise": (5., 10., 15., 20.),
          "jpeg": (10., 30., 50., 70., 90.), "random_examples": 0,
          "photo": (0.03, 0.5, 4., 0.1, 10., 75.), **settings}


PRESETS = {  # digits: 8-px images; synthetic: seconds, a smoke test
    "digits": _preset("digits", blur=(0.4, 0.6, 0.8, 1.)),
    "synthetic": _preset("synthetic", blur=(0.5,), brightness=(20.,),
                         contrast=(0.8,), noise=(10.,), jpeg=(50.,)),
    **{d: _preset(d, random_examples=1000, blur=(0.5, 1., 1.5, 2.),
                  photo=(0.03, 0.7, 4., 0.1, 10., 75.))
       for d in ("mnist", "cifar10")}}


def refine(cfg, preset):
  """The checks beyond each field's own."""
  g = {**preset, **{k: v for k, v in vars(cfg).items() if v is not None}}
  p, ms = g["photo"], cfg.methods
  if (not ms or len(set(ms)) < len(ms) or not cfg.eps or not any(
      g[k] for k in KINDS) or len(p) != 6 or p[0] >= .25 or p[3] >= 1):
    raise run.ConfigError(f"PhysicalConfig: methods distinct, eps and one of "
                          f"{KINDS} set, photo 6 (warp < .25, contrast < 1).")
  return preset


def attack(method: str, eps: float):
  """FGSM, or BIM / ILLC with Kurakin's alpha and steps at `eps` levels."""
  return gradient.fgsm if method == "fgsm" else functools.partial(
      getattr(gradient, method), step_size=1. / LEVELS,
      steps=gradient.kurakin_steps(eps / LEVELS))


def evals(cfg, env):
  """Accuracy vs eps (BIM's steps follow eps); the rates at one eps."""
  top_k = (1, 5) if env.test.num_classes > 5 else (1,)
  kw = dict(progress=cfg.progress, batch_size=cfg.eval_batch_size)
  return {**{f"{m} {e:g}": evaluation.RobustAccuracyEvaluator(
      attack(m, e), [e / LEVELS], top_k=top_k, **kw)
             for m in cfg.methods for e in cfg.eps},
          "physical": analysis.PhysicalWorldEvaluator(
              {m: attack(m, cfg.destruction_eps) for m in cfg.methods},
              cfg.destruction_eps / LEVELS, grid(cfg), chain(cfg),
              jax.random.key(cfg.seed + 2), top_k, cfg.prefilter_confidence,
              cfg.random_examples, cfg.figure_examples, **kw)}


# The report, from the results alone.
mean = lambda v: float(np.mean([u for u in v if u == u] or [np.nan]))
pct = lambda d: ", ".join(f"{k} {report.cell(v, '%')}" for k, v in d.items())
physical = lambda results: results["models"]["standard"]["physical"]
lowest = lambda d, key: d[key] - min(  # <= 0: d[key] is the lowest
    [v for k, v in d.items() if k != key and v == v] or [d[key]])


def curves(cfg, results):
  """'<METHOD> top-k' -> the clean top-k accuracy, then one per eps."""
  r = results["models"]["standard"]
  return {f"{m.upper()} top-{k}": [
      r[f"{m} {cfg.eps[0]:g}"]["clean_accuracy_topk"][j],
      *(r[f"{m} {e:g}"]["accuracy_topk"][0][j] for e in cfg.eps)]
          for j, k in enumerate(physical(results)["top_k"])
          for m in cfg.methods}


def rates(cfg, results, counted=False):
  """'<METHOD> <set>' -> the rate of each transform, their mean, the
  photo's; `counted`: NaN where fewer than MIN_FOOLED were fooled."""
  def row(r):
    t = [r["destruction"][name] for name in rows(cfg)[:-2]]
    return [np.nan if counted and r["fooled"] < MIN_FOOLED else v
            for v in (*t, mean(t), r["photo"]["destruction"][0])]
  return {f"{m.upper()} {s}": row(r) for s, d in physical(results)[
      "sets"].items() for m, r in d.items()}


def findings(cfg, results) -> dict:
  """Each claim's measured value and evidence (None: not checked here)."""
  ms, r = cfg.methods, rates(cfg, results, True)
  acc = {m: mean(curves(cfg, results)[f"{m.upper()} top-1"][1:]) for m in ms}
  at = lambda i, s: {m: r[f"{m.upper()} {s}"][i] for m in ms}
  fewest = lambda i: report.Measured(float(np.max([lowest(at(i, s), "fgsm")
                                                   for s in SETS])), "; ".join(
      f"{s}: {pct(at(i, s))}" for s in SETS))
  by = {k: mean([v[j] for v in r.values() for j, t in enumerate(grid(cfg))
                 if t.kind == k]) for k in KINDS}
  gap = {m: at(-1, "random")[m] - at(-1, "prefiltered")[m] for m in ms}
  gaps = lambda group: [v for m, v in gap.items() if m in group and v == v]
  fast = "fgsm" in ms and len(ms) > 1
  return {
      "illc": report.Measured(lowest(acc, "illc"), pct(acc))
              if "illc" in ms and len(ms) > 1 else None,
      "transforms": fewest(-2) if fast else None,
      "kinds": report.Measured(float(np.min([by["blur"], by["noise"], by[
          "jpeg"]]) - np.nanmax([by["brightness"], by["contrast"], -np.inf])),
                               pct(by)) if cfg.blur and cfg.noise and cfg.jpeg
               and (cfg.brightness or cfg.contrast) else None,
      "photo": fewest(-1) if fast else None,
      "published": report.Measured(at(-1, "prefiltered")["fgsm"], pct(at(
          -1, "prefiltered"))) if "fgsm" in ms and cfg.destruction_eps == 16
                   else None,
      "random": report.Measured(min(gaps(ms), default=np.nan), pct(gap)),
      "iterative": report.Measured(max(gaps(("bim", "illc")), default=np.nan),
                                   pct(gap)) if {"bim", "illc"} & set(ms)
                   else None}


FEW = f"(rates on fewer than {MIN_FOOLED} fooled images left out)"
FEWEST = (report.at_most(0.), report.at_most(0.05),
          f"FGSM's rate - the lowest other's, worse set {FEW}")
GAP = "random - prefiltered photo rate " + FEW
CLAIMS = [report.Claim(text, lambda cfg, r, k=k: findings(cfg, r)[k], *rule)
          for k, text, rule in (
    ("illc", "ILLC reduces accuracy most (Figure 2; mean top-1)",
     (*FEWEST[:2], "ILLC's - the lowest other's")),
    ("transforms", "FGSM loses the fewest adversarial examples under the "
     "transforms (Figure 6; their mean)", FEWEST),
    ("kinds", "The most effective transforms are blur, noise and JPEG",
     (report.above(0.), None, f"their lowest rate - the others' {FEW}")),
    ("photo", "FGSM loses the fewest adversarial examples in the photos "
     "(here simulated; top-1)", FEWEST),
    ("published", "Prefiltered FGSM images (eps 16) survive the photos: top-1"
     " destruction rate 0.0 % (published)", (report.at_most(0.05), None,
                                             f"the rate {FEW}")),
    ("random", "The destruction rate is sometimes lower for random images "
     "than prefiltered ones (photos)", (report.below(0.), None, "lowest "
                                        + GAP)),
    ("iterative", "Random BIM and ILLC images stay adversarial better than "
     "prefiltered ones (photos)", (report.below(0.), None, "BIM and ILLC's "
                                   "highest " + GAP)))]
PUBLISHED = [report.Published(
    "Kurakin et al. 2017, Inception v3 (ImageNet), photos of printed pages",
    "prefiltered fast (FGSM) images, eps 16 (ours: simulated photo)", 0.,
    "top-1 destruction rate", ours=lambda cfg, r: m.value if (
        m := findings(cfg, r)["published"]) else None)]


def body(cfg, results):
  sets, ks = (physical(results)[k] for k in ("sets", "top_k"))
  few = ", ".join(f"{m} {s} ({v['fooled']})" for s, d in sets.items()
                  for m, v in d.items() if v["fooled"] < MIN_FOOLED)
  steps = ", ".join(str(gradient.kurakin_steps(e / LEVELS)) for e in cfg.eps)
  return [
      "## Accuracy vs eps (the paper's Figure 2; accuracy.png)",
      report.curve_table(["clean", *cfg.eps], curves(cfg, results), x_format=
                         "g", caption=f"eps in levels of 255; BIM and ILLC: "
                         f"alpha one level and {steps} steps."),
      f"## Destruction rate at eps {cfg.destruction_eps:g} (the paper's "
      "Figure 6 and Tables 1-3; destruction.png)",
      report.curve_table(rows(cfg), rates(cfg, results), first="transform",
                         caption="Eq. (1): the fraction of the fooled images "
          "(clean right, adversarial wrong) the transform brings back to the "
          "true class ('-': none fooled), on a random set and a prefiltered "
          "one (clean right and adversarial wrong, both with top-1 "
          f"probability > {cfg.prefilter_confidence:g}). Left out of the "
          f"claims (fewer than {MIN_FOOLED} fooled): {few or '-'}."),
      report.records_table({f"{s}, {m.upper()}": v for s, d in sets.items()
                            for m, v in d.items()}, [
          ("images", "n", ""), ("fooled", "fooled", ""), *(
              (f"{h.replace('_', ' ')} top-{k}", f"photo.{h}.{j}", "%")
              for h in ("clean", "photo_clean", "adversarial",
                        "photo_adversarial", "destruction")
              for j, k in enumerate(ks))], first="set, method", caption=(
          f"**The photo is a SIMULATION** (`{chain(cfg)}`: a perspective "
          "warp, blur, noise, a random contrast and brightness change, "
          "JPEG); an example's clean and adversarial images get one draw:"))]


def figures(cfg, results):
  fig, acc, d = physical(results)["figure"], curves(cfg, results), rates(
      cfg, results)
  n, names = len(fig["y"]), list(fig["images"])
  return {"accuracy.png": report.Line(
      {k: v[1:] for k, v in acc.items()}, x=cfg.eps, percent=True,
      xlabel="eps (levels of 255)", ylabel="accuracy (%)", marker="o",
      logx=min(cfg.eps) > 0, title=f"{cfg.dataset}: Figure 2", hlines=[
          (v[0], "clean " + k.split()[1]) for k, v in acc.items()][
              ::len(cfg.methods)]), "destruction.png": report.Heatmap(
          np.array(list(d.values()), float).T, rows(cfg), list(d),
          percent=True, vmin=0, vmax=100, colorbar="destruction rate (%)",
          title=f"{cfg.dataset}: eps {cfg.destruction_eps:g} (Figure 6)"),
          **({"photo.png": report.image_grid(
              [fig["images"][k][i] for i in range(n) for k in names], [
                  f"{k}\n-> {fig['pred'][k][i]}" + " (wrong)" * int(
                      fig["pred"][k][i] != fig["y"][i])
                  for i in range(n) for k in names], ncols=len(names),
              size=1.4, title=f"{cfg.dataset}: eps {cfg.destruction_eps:g}, "
              "before and after the SIMULATED photo")} if n else {})}


REPORT = report.Report(
    "{dataset}: adversarial examples in the physical world (Kurakin, "
    "Goodfellow, Bengio 2017), {model}", body, PUBLISHED, CLAIMS, figures)
BENCHMARK = run.Benchmark(
    "physical", PhysicalConfig, PRESETS, lambda cfg, env: {
        "standard": run.TrainSpec(training.methods.standard())}, None,
    REPORT, doc=__doc__, refine=refine, evals=evals)

if __name__ == "__main__":
  run.main(BENCHMARK)
