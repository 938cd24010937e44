"""Wasserstein adversarial examples: standard, Linf, Wasserstein, binarised.

    python -m benchmarks.wasserstein --dataset digits   # ~6 min, 2 CPU cores

Wong, Schmidt, Kolter 2019's table (minimal-radius search at MNIST 1.0,
CIFAR-10 0.1, digits 0.2; a binarised-input model) and D'Costa &
Sriramanan's directed PGD (Adam): accuracy vs eps, Table 1's epsilon cliff,
Figures 12-16. Digits (benchmarks/results/wasserstein-digits): standard
97.2 % clean / 4.4 % at 0.2, Linf 95.0 / 51.7 %, Wasserstein 94.7 / 70.6 %,
binarised 94.2 / 13.6 % (MNIST: 99/4, 98/48, 97/86, 99/14); no epsilon
cliff. Presets: digits, mnist, cifar10; output in runs/wasserstein-<dataset>.
"""
import dataclasses
import functools
from typing import Optional, Tuple

import jax
import numpy as np

from advjax import analysis, evaluation, report, run, training, transforms
from advjax.attacks import gradient, wasserstein_search

MODELS = ("standard", "linf", "wasserstein", "binarized")  # the recipe's
CLIFF_MODELS = ("standard", "wasserstein")  # D'Costa & Sriramanan's nets
DIRECTED_ATTACKS = ("adam", "sign")  # their optimizer; Madry's sign steps
F, I, Radii = Optional[float], Optional[int], Tuple[float, ...]


@dataclasses.dataclass(frozen=True)
class WassersteinConfig(run.Config):
  """Settings of a run; None fields take the dataset's preset (`PRESETS`)."""
  eps: F = run.field(None, "the table's Wasserstein radius", gt=0)
  lam: F = run.field(None, "the projection's entropy regularisation", gt=0)
  kernel_size: int = run.field(5, "the transport window (odd)", ge=1)
  search_eps0: F = run.field(None, "evaluation search: first radius", gt=0)
  search_factor: F = run.field(None, "... its growth factor", gt=1)
  search_grow_every: I = run.field(None, "... steps per growth", ge=1)
  search_steps: I = run.field(None, "... its steps", ge=1)
  eps_grid_points: int = run.field(41, "radii 0 .. 2 eps of the curve", ge=1)
  linf_eval_eps: Optional[Radii] = run.field(None, "Linf PGD radii", ge=0)
  linf_eval_steps: I = run.field(None, "... its PGD steps", ge=1)
  linf_eval_restarts: I = run.field(None, "... its PGD restarts", ge=1)
  figure_examples: int = run.field(6, "images in perturbations.png", ge=0)
  binarize_threshold: float = run.field(0.5, "binarized input", gt=0, lt=1)
  directed_target: int = run.field(5, "directed attacks' target", ge=0)
  directed_eps: Radii = run.field(tuple(k / 255 for k in (
      4, 8, 12, 16, 24, 32, 40, 48, 64)), "their Linf radii", ge=0)
  directed_steps: int = run.field(100, "their PGD steps", ge=1)
  directed_lr: float = run.field(1e-3, "their Adam's lr", gt=0)
  cliff_label: int = run.field(7, "the class of the cliff image", ge=0)
  cliff_levels: int = run.field(64, "sweeps of eps k/255 to this k", ge=1)
  transfer_steps: int = run.field(50, "PGD steps in Figures 12-16", ge=1)
  noise_factor: float = run.field(7., "Figure 14: U[0, this eps]", ge=0)
  noise_draws: int = run.field(100, "Figure 14's noise draws", ge=1)


PRESETS = training.recipes.WASSERSTEIN


def refine(cfg, preset):  # the checks no field's declaration covers
  if cfg.kernel_size % 2 == 0 or cfg.directed_target == cfg.cliff_label:
    raise run.ConfigError("WassersteinConfig: kernel_size must be odd, "
                          "directed_target and cliff_label distinct.")
  return preset


search_max_eps = lambda cfg: cfg.search_eps0 * cfg.search_factor ** (
    cfg.search_steps // cfg.search_grow_every)  # the search's largest radius
eps_grid = lambda cfg: np.linspace(0., 2. * cfg.eps, cfg.eps_grid_points)
levels = lambda cfg: np.arange(cfg.cliff_levels + 1)  # eps = level / 255


def models(cfg, env):  # the training attacks as the preset's recipe
  del env
  return {n: run.TrainSpec(*s) for n, s in training.recipes.wasserstein_methods(
      {**PRESETS[cfg.dataset], "lam": cfg.lam, "kernel_size": cfg.kernel_size},
      cfg.binarize_threshold).items()}


# Directed Linf PGD from the clean image: Adam at `directed_lr` (D'Costa &
# Sriramanan), or (optimizer None) Madry's sign steps of 2.5 eps / steps.
directed = lambda cfg, steps, optimizer="adam": functools.partial(
    gradient.pgd, steps=steps, targeted=True, random_start=False,
    optimizer=optimizer, step_size=cfg.directed_lr if optimizer else None)


def evaluate(cfg, env, name, variables):
  """The minimal-radius search, Linf PGD and the directed attacks."""
  kw = dict(batch_size=cfg.eval_batch_size, progress=cfg.progress)
  x, y, keep = *env.test[:2], env.test.labels != cfg.directed_target
  if name == "binarized":  # trained and tested on binarised inputs
    x = np.asarray(transforms.binarize(x, cfg.binarize_threshold))
  md = evaluation.minimal_distance(
      env.apply_fn, variables, x, y, norm="wasserstein", attack=
      functools.partial(wasserstein_search, eps0=cfg.search_eps0, lam=cfg.lam,
                        factor=cfg.search_factor, max_steps=cfg.search_steps,
                        grow_every=cfg.search_grow_every,
                        kernel_size=cfg.kernel_size), **kw)
  linf = evaluation.robust_accuracy(
      env.apply_fn, variables, x, y, eps=cfg.linf_eval_eps, attack=
      functools.partial(gradient.pgd, steps=cfg.linf_eval_steps,
                        restarts=cfg.linf_eval_restarts),
      key=jax.random.key(cfg.seed + 1), **kw)
  out = {"clean_accuracy": float(md.clean.mean()),
         "adversarial_accuracy": float(md.accuracy_at(cfg.eps)[0]),
         "fooled_vs_eps": 1 - md.accuracy_at(eps_grid(cfg)),
         "median_eps": md.median, "linf_accuracy": linf.accuracy,
         "directed": {"examples": int(keep.sum())}}
  for a, opt in zip(DIRECTED_ATTACKS, ("adam", None)):
    ra = evaluation.robust_accuracy(
        env.apply_fn, variables, x[keep], y[keep], eps=cfg.directed_eps,
        attack=directed(cfg, cfg.directed_steps, opt), top_k=(1,),
        targets=np.full(keep.sum(), cfg.directed_target, np.int32),
        key=jax.random.key(cfg.seed + 3), **kw)
    out["directed"][a] = {"accuracy": ra.accuracy,
                          "target_success": ra.target_success_topk[:, 0]}
  i = np.flatnonzero(md.clean & np.isfinite(md.distance))[
      :cfg.figure_examples * (name == "standard")]
  out["figure_examples"] = dict(x=x[i], adv=md.x_adv[i], eps=md.distance[i])
  return out


def extra(cfg, env, trained):
  """Table 1's epsilon cliff (both nets), Figures 12-16 (the vanilla one)."""
  kw = dict(target=cfg.directed_target, eps=levels(cfg) / 255.,
            batch_size=cfg.eval_batch_size, progress=cfg.progress)
  return {"cliff": analysis.cliff_study(
      env.apply_fn, {n: trained[n] for n in CLIFF_MODELS}, *env.test[:2],
      label=cfg.cliff_label, attack=directed(cfg, cfg.directed_steps), **kw),
          "stability": analysis.reused_perturbation(
      env.apply_fn, trained["standard"], *env.test[:2], draws=cfg.noise_draws,
      attack=directed(cfg, cfg.transfer_steps), noise_factor=cfg.noise_factor,
      key=jax.random.key(cfg.seed + 4), **kw)}


TABLE1 = {12: (7, 97.16), 13: (7, 76.24), 14: (5, 79.44), 15: (5, 97.75),
          16: (5, 99.64)}  # D'Costa & Sriramanan: level -> (pred, conf %)
WONG = {("mnist", 1.0): {"standard": (99, 4), "linf": (98, 48), "wasserstein":
                         (97, 86), "binarized": (99, 14)},
        ("cifar10", 0.1): {"standard": (95, 3), "linf": (66, 61),
                           "wasserstein": (81, 76)}}


def body(cfg, results):
  ms, (cl, st) = results["models"], results["extra"].values()
  nets = [n for n in CLIFF_MODELS if n in cl]
  return [
      report.records_table(ms, [
          ("clean", "clean_accuracy", "%"), (f"adversarial at {cfg.eps:g}",
                                             "adversarial_accuracy", "%"),
          ("median radius fooling", "median_eps", ".3g"),
          ("training (s)", "train_seconds", ".0f")], caption=f"The search "
          f"reaches radius {search_max_eps(cfg):.3g}; binarized: trained and"
          f" tested on inputs binarised at {cfg.binarize_threshold:g}."),
      report.curve_table(cfg.linf_eval_eps, {
          n: r["linf_accuracy"] for n, r in ms.items()}, first="Linf eps",
          caption=f"Accuracy under Linf PGD-{cfg.linf_eval_steps} x "
          f"{cfg.linf_eval_restarts}:"),
      *(report.curve_table([f"{e * 255:.0f}/255" for e in cfg.directed_eps],
                           {f"{m} ({a})": ms[m]["directed"][a][q]
                            for a in DIRECTED_ATTACKS for m in ms},
                           caption=f"Directed PGD-{cfg.directed_steps} "
                           f"towards '{cfg.directed_target}': {q}")
        for q in ("accuracy", "target_success")),
      report.fields_table({n: cl[n] for n in nets}, float_unit="%", units={
          "reach": ".4f"}, first="epsilon cliff", caption=f"Test image "
          f"{cl.get('index')}'s sweep, and over the images of its class:"),
      report.fields_table({"standard": st}, float_unit="%", units={
          "eps": ".4f"}, first="Figures 12-16")]


_ST, _CL, _DS = "extra.stability.", "extra.cliff.standard.", (
    "D'Costa & Sriramanan")
PUBLISHED = [report.Published(s, setting, v, q, u, report.value_of(
    path), d) for s, setting, v, q, u, path, d in (
        *(("Wong et al. 2019", f"{d}, eps {e}, {m}", v[j], f"{q} accuracy",
           "%", f"models.{m}.{q}_accuracy", d) for (d, e), row in WONG.items()
          for m, v in row.items()
          for j, q in enumerate(("clean", "adversarial"))),
        *((_DS, f"mnist, Wong et al.'s {m} net", v, "clean accuracy", "%",
           f"models.{m}.clean_accuracy", "mnist") for m, v in (
               ("standard", "98.90 %"), ("wasserstein", "96.95 %"))),
        *((_DS + ", Table 1", f"vanilla, '7' to '5', eps {k}/255 (confidence"
           f" {c:.2f} %)", p, "prediction", "", f"{_CL}pred.{k}", None)
          for k, (p, c) in TABLE1.items()),
        (_DS + ", Figure 12", "ImageNet, PGD-50 (Adam), eps 2/255", "99.97 %",
         "attack's confidence", "%", _ST + "adv_confidence", None),
        (_DS + ", Figure 14", "+ uniform noise in [0, 7 eps]", "wrong at "
         "94.2 %", "noise draws fooled", "%", _ST + "noise_fooled", None),
        (_DS + ", Figure 15", "mirror image + it", 74, "target probability",
         "%", _ST + "mirror_adv_target_prob", None),
        (_DS + ", Figure 16", "unsure image + it", "33 / 64 % -> 52 / 46 %",
         "top two swapped", "", _ST + "unsure_swapped", None))]


_adam = lambda r, n: r["models"][n]["directed"]["adam"]["accuracy"]
_acc = lambda r, *ms: min(r["models"][m]["adversarial_accuracy"] for m in ms)
_diff = lambda a, b, q="adversarial": report.difference(
    f"models.{a}.{q}_accuracy", f"models.{b}.{q}_accuracy", "%")
_BIN = lambda cfg, r: "binarized" in r["models"]
_FOUND = lambda cfg, r: r["extra"]["stability"]["found"]
CLAIMS = [report.Claim(*c) for c in (  # text, measure, holds, partly, ...
    ("standard models are fooled by small Wasserstein perturbations (MNIST "
     "4 %)", "models.standard.adversarial_accuracy", report.below(0.2)),
    ("Wasserstein training is the most robust, ahead of Linf training (86 vs"
     " 48 %)", _diff("wasserstein", "linf"), report.above(0)),
    ("Linf robustness transfers substantially to Wasserstein attacks (48 vs "
     "4 %)", _diff("linf", "standard"), report.at_least(0.2)),
    ("binarising costs little clean accuracy (99 vs 99 %)", _diff(
        "binarized", "standard", "clean"), report.between(-.02, .02), None,
     "", _BIN),
    ("binarisation defends little: below the Linf and Wasserstein models (14"
     " vs 48, 86 %)", lambda cfg, r: _acc(r, "linf", "wasserstein") - _acc(
         r, "binarized"), report.above(0), None, "", _BIN),
    (f"{_DS}: the vanilla net is more accurate on clean images than the "
     "Wasserstein one (98.90 vs 96.95 %)", _diff("standard", "wasserstein",
                                                 "clean"), report.above(0)),
    (f"{_DS}: directed PGD (Adam) leaves the vanilla net over 95 % accurate "
     "at 12/255", lambda cfg, r: np.interp(12 / 255, cfg.directed_eps, _adam(
         r, "standard")), report.above(0.95)),
    (f"{_DS}: ... and the Wasserstein net over 90 % up to 40/255", lambda cfg,
     r: min(a for e, a in zip(cfg.directed_eps, _adam(r, "wasserstein"))
            if e <= 40.5 / 255), report.at_least(0.9)),
    (f"{_DS}: Wasserstein robustness transfers to Linf attacks (at least the"
     " vanilla net's accuracy at every eps)", lambda cfg, r: min(np.subtract(
         *(r["models"][n]["linf_accuracy"] for n in CLIFF_MODELS[::-1]))),
     report.at_least(0), None, "min over eps of wasserstein - standard"),
    (f"{_DS}, Table 1: a sharp epsilon cliff on the vanilla net ('7' at 76.24"
     " % at 13/255, '5' at 79.44 % at 14/255)", _CL + "max_jump",
     report.at_least(0.5), None, "largest one-step rise of p(target)"),
    (f"{_DS}: a directed perturbation does not transfer to other images, "
     "even of the same label", lambda cfg, r: max(r["extra"]["stability"][
         k] or 0. for k in ("others_to_target", "same_label_to_target")),
     report.below(0.1), None, "share turned (all, same label)", _FOUND),
    (f"{_DS}, Figure 14: it still fools under uniform noise in [0, 7 eps]",
     _ST + "noise_fooled", report.at_least(0.5), None, "draws", _FOUND),
    (f"{_DS}, Figure 15: it crosses the decision boundary on the mirrored "
     "image", _ST + "mirror_fooled", None, None, "", _FOUND),
    (f"{_DS}, Figure 16: on an image the net is unsure of, it swaps the top "
     "two predictions", _ST + "unsure_swapped", None, None, "", _FOUND))]


def figures(cfg, results):
  ms, (cl, st) = results["models"], results["extra"].values()
  t = cfg.directed_target
  ex = ms.get("standard", {}).get("figure_examples", {"x": []})
  line = lambda series, y, title, x, xlabel="eps (of 255)", **kw: report.Line(
      series, x=x, xlabel=xlabel, ylabel=f"{y} (%)", percent=True,
      marker=".", title=f"{cfg.dataset}: {title}", **kw)
  out = {"fooled_vs_eps.png": line(
      {n: r["fooled_vs_eps"] for n, r in ms.items()}, "fooled", "the search",
      eps_grid(cfg), "Wasserstein radius", vlines=[(cfg.eps, "eps")]),
         "directed_accuracy_vs_eps.png": line(
      {f"{n} ({a})": r["directed"][a]["accuracy"] for a in DIRECTED_ATTACKS
       for n, r in ms.items()}, "accuracy", f"directed PGD towards '{t}'",
      [e * 255 for e in cfg.directed_eps], hlines=[
          (0.95, "source: vanilla > 95 % to 12/255"),
          (0.9, "source: W-net > 90 % to 40/255")])}
  if cl:
    out["epsilon_cliff.png"] = line({
        f"{n}: p('{k}')": cl[n][f"{w}_prob"] for n in CLIFF_MODELS
        for k, w in ((t, "target"), (cfg.cliff_label, "label"))},
        "probability", f"directed PGD (Adam), image {cl['index']}", levels(cfg))
  if len(ex["x"]):
    x, a = np.asarray(ex["x"]), np.asarray(ex["adv"])
    out["perturbations.png"] = report.image_grid(
        [im for i in range(len(x)) for im in (
            x[i], a[i], report.perturbation(a[i] - x[i]))],
        [s for e in ex["eps"] for s in ("clean", f"eps {e:.3g}", "delta")],
        ncols=3, size=1.5)
  if st["found"]:
    im = st["images"]
    out["perturbation_checks.png"] = report.image_grid(
        [report.perturbation(v) if k == "delta" else v for k, v in im.items()],
        [f"{k}: {st['preds'][k]}" if k in st["preds"] else k for k in im],
        size=1.5)
  return out


REPORT = report.Report(
    title="{dataset}: Wasserstein adversarial examples (Wong, Schmidt, Kolter"
          " 2019), {model}", body=body, published=PUBLISHED, claims=CLAIMS,
    figures=figures)
BENCHMARK = run.Benchmark("wasserstein", WassersteinConfig, PRESETS, models,
                          evaluate, REPORT, doc=__doc__, refine=refine,
                          extra=extra)

if __name__ == "__main__":
  run.main(BENCHMARK)
