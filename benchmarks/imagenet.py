"""FGSM, BIM, PGD and CW-L2 on a pretrained VGG11 over an ImageNet subset.

    python -m benchmarks.imagenet --data-dir DIR --checkpoint vgg11.pth \
        --class-index imagenet_class_index.json   # GPU; ~7 h on 2 CPU cores

The fourth source study (seed 004): torchvision's VGG11 (the user's
download, converted by `advjax.zoo`), 30 classes x 5 validation images it
classifies correctly, attacked with untargeted FGSM, BIM and PGD at eps 0.1
and 0.6 (Tables 1-2, their step counts), targeted FGSM and BIM towards a
random other class over an eps grid (Figure 6) and targeted CW-L2 (Table
3); eps in [0, 1] pixel units (the paper does not say). `DIR`: an
ImageFolder (`DIR/validation/<wnid>/*` or `DIR/val/<wnid>/*`) or, with
`--dataset imagenet2012`, a prepared tfds copy. ~600 input gradients per
image (CW-L2's 5 x 100 steps most), 0.28 s each for VGG11 at 224x224 on 2
CPU cores: ~7 hours for the 150 images, minutes on a GPU. Not run here (no
ImageNet images or VGG11 weights can be downloaded on this machine).
"""
import dataclasses
import functools
import os
from typing import Optional, Tuple

import jax
import numpy as np

from advjax import data, evaluation, report, run
from advjax.attacks import Unbounded, carlini_wagner_l2, gradient

TOP_K = (1, 5)


@dataclasses.dataclass(frozen=True)
class ImageNetConfig(run.Config):
  """Settings (`dataset`: 'folder', 'imagenet2012' or 'imagenette')."""
  dataset: str = "folder"
  checkpoint: Optional[str] = run.field(None, "the PyTorch checkpoint "
                                        "(torchvision's vgg11 for the study)")
  arch: str = run.field("vgg11", "its advjax.zoo architecture")
  class_index: Optional[str] = run.field(
      None, "imagenet_class_index.json (or a file of wnids) for a folder "
      "dataset, so labels are ImageNet's")
  split: str = run.field("validation", "the split the images come from")
  classes: int = run.field(30, "the first classes of the index (0: all)",
                           ge=0)
  per_class: int = run.field(5, "images per class", ge=1)
  only_correct: bool = run.field(True, "only images the model classifies "
                                 "correctly (the study's choice)")
  candidates_per_class: int = run.field(20, "images per class looked at to "
                                        "find them", ge=1)
  size: int = run.field(224, "the centre crop", ge=1)
  eps: Tuple[float, ...] = run.field((0.1, 0.6), "the untargeted radii "
                                     "(Tables 1-2)", ge=0)
  bim_steps: Tuple[int, ...] = run.field((1, 2), "BIM's steps at each eps",
                                         ge=1)
  pgd_steps: int = run.field(6, "PGD's steps", ge=1)
  targeted_eps: Tuple[float, ...] = run.field(
      (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.3, 0.6), "the eps grid of the "
      "targeted FGSM / BIM (Figure 6)", ge=0)
  targeted_bim_steps: int = run.field(10, "the targeted BIM's steps", ge=1)
  cw_steps: int = run.field(100, "CW-L2's Adam steps", ge=1)
  cw_search_steps: int = run.field(5, "its binary search steps", ge=1)
  cw_learning_rate: float = run.field(0.01, "its step size", gt=0)
  examples: int = run.field(4, "images in examples.png", ge=0)
  eval_batch_size: int = run.field(32, "examples per evaluation step", ge=1)
  device_batch_size: Optional[int] = run.field(None, "per device, per call",
                                               ge=1)


_PRESET = dict(model=None, epochs=0, batch_size=1, optimizer="sgd",
               learning_rate=0.0, weight_decay=0.0, schedule="constant")
PRESETS = {"folder": _PRESET, "imagenet2012": _PRESET, "imagenette": _PRESET}


def refine(cfg, preset):
  if not cfg.checkpoint:
    raise run.ConfigError("benchmarks.imagenet needs --checkpoint FILE (the "
                          "study: torchvision's vgg11-8a719046.pth).")
  if len(cfg.bim_steps) != len(cfg.eps):
    raise run.ConfigError(f"--bim-steps needs one step count per eps "
                          f"({len(cfg.eps)}); got {cfg.bim_steps}.")
  return preset


def load_data(cfg):
  """The candidates: per class of the first `classes`, the first
  `candidates_per_class` images (`per_class` without `only_correct`)."""
  index = ({"class_index": cfg.class_index}
           if cfg.dataset == "folder" and cfg.class_index else {})
  pool = data.load(cfg.dataset, cfg.split, data_dir=cfg.data_dir,
                   size=cfg.size, classes=cfg.classes or None, per_class=None,
                   **index)
  rows, _ = data.first_per_class(pool.labels, cfg.candidates_per_class
                                 if cfg.only_correct else cfg.per_class)
  return None, data.Dataset(np.asarray(pool.images[rows]), np.asarray(
      pool.labels)[rows].astype(np.int32), pool.num_classes, pool.name,
                            pool.split, pool.class_names)


def models_to_evaluate(cfg, env):
  del env
  return {cfg.arch: run.LoadTorch(cfg.arch, cfg.checkpoint, {})}


def attacks(cfg, bim_steps):
  """The untargeted attacks at an eps of BIM's `bim_steps` steps."""
  return {"fgsm": gradient.fgsm, "bim": functools.partial(
      gradient.bim, steps=bim_steps, relative_step=1.),
          "pgd": functools.partial(gradient.pgd, steps=cfg.pgd_steps)}


def evaluate(cfg, env, name, variables):
  """Tables 1-3 and Figure 6 of the study on one model."""
  del name
  kw = dict(batch_size=cfg.eval_batch_size, progress=cfg.progress,
            device_batch_size=cfg.device_batch_size)
  pred = evaluation.predict(env.apply_fn, variables, env.test.images, **kw)
  rows, short = data.first_per_class(env.test.labels, cfg.per_class, (
      pred == env.test.labels) if cfg.only_correct else None)
  x, y, k = env.test.images[rows], env.test.labels[rows], env.test.num_classes
  targets = ((y + 1 + np.random.default_rng(cfg.seed).integers(
      0, k - 1, len(y))) % k).astype(np.int32)
  ra = lambda attack, eps, t=None: evaluation.robust_accuracy(
      env.apply_fn, variables, x, y, attack=attack, eps=eps, targets=t,
      key=jax.random.key(0), top_k=TOP_K, **kw).summary()
  cw = Unbounded(functools.partial(
      carlini_wagner_l2, targeted=True, steps=cfg.cw_steps,
      binary_search_steps=cfg.cw_search_steps,
      learning_rate=cfg.cw_learning_rate))
  # A few images and their adversarial versions, beside the results.
  n, eps = min(cfg.examples, len(y)), cfg.eps[0]
  shown = {f"FGSM eps {eps:g}": (gradient.fgsm, y),
           f"PGD-{cfg.pgd_steps} eps {eps:g}": (attacks(cfg, 1)["pgd"], y),
           "CW-L2 (targeted)": (cw, targets)}
  advs = [evaluation.adversarial_examples(
      env.apply_fn, variables, x[:n], t[:n], attack=a, eps=eps,
      key=jax.random.key(cfg.seed), **kw) for a, t in shown.values() if n]
  np.savez_compressed(os.path.join(cfg.workdir, "examples.npz"), x=x[:n],
                      **{f"adv{i}": a for i, a in enumerate(advs)})
  return {
      "n": len(y), "selection": {
          "candidates": len(pred), "classes_short": short,
          "candidate_top1": float(np.mean(pred == env.test.labels))},
      "class_names": [env.test.class_names[c] if env.test.class_names
                      else str(c) for c in np.unique(y)],
      "untargeted": [{"eps": e, "bim_steps": s, **{
          m: ra(a, [e]) for m, a in attacks(cfg, s).items()}}
                     for e, s in zip(cfg.eps, cfg.bim_steps)],
      "targeted": {m: ra(a, list(cfg.targeted_eps), targets) for m, a in (
          ("fgsm", functools.partial(gradient.fgsm, targeted=True)),
          ("bim", functools.partial(gradient.bim, targeted=True,
                                    steps=cfg.targeted_bim_steps,
                                    relative_step=1.)))},
      "cw": ra(cw, [0.], targets),
      "examples": {"attacks": list(shown), "y": y[:n].tolist(),
                   "targets": targets[:n].tolist(),
                   "clean_pred": pred[rows][:n].tolist(),
                   "pred": {s: evaluation.predict(
                       env.apply_fn, variables, a, **kw).tolist()
                            for s, a in zip(shown, advs)}}}


def _methods(cfg, t):
  """Rows of Table 1/2 at one eps: natural, FGSM, BIM, PGD."""
  topk = lambda r: dict(zip(("top1", "top5"), r["accuracy_topk"][0]))
  return {"Natural": {"steps": "-", **dict(zip(("top1", "top5"), t["fgsm"][
      "clean_accuracy_topk"]))}, "FGSM": {"steps": 1, **topk(t["fgsm"])},
          "BIM": {"steps": t["bim_steps"], **topk(t["bim"])},
          "PGD": {"steps": cfg.pgd_steps, **topk(t["pgd"])}}


def body(cfg, results):
  out = []
  for name, c in results["models"].items():
    sel, tg, cw = c["selection"], c["targeted"], c["cw"]
    out += [f"## {name}: {c['n']} images ({len(c['class_names'])} classes x"
            f" up to {cfg.per_class}; from {sel['candidates']} candidates, "
            f"top-1 {report.cell(sel['candidate_top1'], '%')} on them; "
            f"classes with too few correct: {sel['classes_short'] or 'none'})"
            ]
    out += [report.records_table(_methods(cfg, t), [
        ("steps", "steps", ""), ("top-1", "top1", "%"),
        ("top-5", "top5", "%")], first="method", caption=f"Untargeted, eps "
        f"{t['eps']:g} (the study's Tables 1-2; published below):")
            for t in c["untargeted"]]
    out.append(report.curve_table(tg["fgsm"]["eps"], {
        f"{m.upper()} {what}": [r[j] for r in tg[m][key]]
        for m in ("fgsm", "bim") for what, key, j in (
            ("top-5 accuracy", "accuracy_topk", 1),
            ("target in top-5", "target_success_topk", 1))},
        caption=f"Targeted FGSM and BIM-{cfg.targeted_bim_steps} (the "
                "study's Figure 6; targeted.png):"))
    topk = lambda values: dict(zip(("top1", "top5"), values))
    out.append(report.records_table({
        "target reached": topk(cw["target_success_topk"][0]),
        "misclassified after the attack": topk(
            1 - np.asarray(cw["accuracy_topk"][0]))}, [
                ("top-1", "top1", "%"), ("top-5", "top5", "%")], first="CW-L2",
        caption=f"Targeted CW-L2 ({cfg.cw_search_steps} x {cfg.cw_steps} "
                "steps; the study's Table 3, whose second row, printed as "
                "'Accuracy' 100 / 51.73, its caption calls the "
                "misclassification rate):"))
  return out


def _ours(eps, method, k):
  """This run's top-k accuracy of `method` at `eps` (None: not run)."""
  def ours(cfg, results):
    if eps not in cfg.eps:
      return None
    c = next(iter(results["models"].values()))
    return _methods(cfg, c["untargeted"][cfg.eps.index(eps)])[method][k]
  return ours


def _cw(path, k, flip):
  """This run's CW-L2 top-k (k an index of TOP_K) of `path` (1 - it)."""
  def ours(cfg, results):
    v = next(iter(results["models"].values()))["cw"][path][0][k]
    return 1 - v if flip else v
  return ours


PUBLISHED = [report.Published(
    f"Seed 004, Table {table} (VGG11, 150 images)", f"eps {eps:g}, {method}",
    value, f"top-{k} accuracy", ours=_ours(eps, method, f"top{k}"))
             for table, eps, rows in (
                 (1, 0.1, (("Natural", 100, 100), ("FGSM", 2.6, 19.3),
                           ("BIM", 2.6, 26), ("PGD", 30, 72.6))),
                 (2, 0.6, (("Natural", 100, 100), ("FGSM", 2, 7.9),
                           ("BIM", 0.6, 10.6), ("PGD", 12.6, 33.9))))
             for method, top1, top5 in rows
             for k, value in ((1, top1), (5, top5))] + [
    report.Published("Seed 004, Table 3 (VGG11, 150 images)", f"CW-L2, "
                     f"{what}", value, f"top-{TOP_K[k]}",
                     ours=_cw(path, k, flip))
    for what, path, flip, values in (
        ("target reached", "target_success_topk", False, (100, 100)),
        ("misclassified after the attack", "accuracy_topk", True,
         (100, 51.73)))
    for k, value in enumerate(values)]


def _attacks_lower_accuracy(cfg, results):
  """Per eps: the largest excess of an attack's top-1 over the natural
  top-1 or over its own top-5 (0 or below: the attacks only lower it)."""
  return {f"{name}, eps {t['eps']:g}": report.Measured(max(
      max(r["top1"] - ms["Natural"]["top1"], r["top1"] - r["top5"])
      for r in ms.values()), ", ".join(
          f"{m} {report.cell(r['top1'], '%')} / {report.cell(r['top5'], '%')}"
          for m, r in ms.items()))
          for name, c in results["models"].items() for t in c["untargeted"]
          for ms in [_methods(cfg, t)]}


def _examples_figure(cfg, results):
  ex = next(iter(results["models"].values()))["examples"]
  arrays = np.load(os.path.join(cfg.workdir, "examples.npz"))
  images, titles = [], []
  for i, x in enumerate(arrays["x"]):
    images.append(x)
    titles.append(f"clean: {ex['clean_pred'][i]}")
    for j, name in enumerate(ex["attacks"]):
      adv = arrays[f"adv{j}"][i]
      images += [report.perturbation(adv - x), adv]
      titles += [name, f"-> {ex['pred'][name][i]}"]
  return report.image_grid(images, titles, ncols=1 + 2 * len(ex["attacks"]))


REPORT = report.Report(
    title="Attacks on {arch} over an ImageNet subset ({dataset})", body=body,
    published=PUBLISHED, claims=[report.Claim(
        "every attack's top-1 accuracy is at most the natural one and at "
        "most its own top-5", _attacks_lower_accuracy, report.at_most(1e-9),
        quantity="largest excess")],
    figures=lambda cfg, results: {
        "targeted.png": report.Line({
            f"{name}, targeted {m.upper()}: {what}": (
                c["targeted"][m]["eps"], [r[1] for r in c["targeted"][m][key]])
            for name, c in results["models"].items() for m in ("fgsm", "bim")
            for what, key in (("top-5 accuracy", "accuracy_topk"),
                              ("target in top-5", "target_success_topk"))},
            xlabel="eps (Linf, [0, 1] pixels)", ylabel="%", percent=True,
            logx=True, marker="o"),
        **({"examples.png": _examples_figure(cfg, results)}
           if cfg.examples else {})})

BENCHMARK = run.Benchmark("imagenet", ImageNetConfig, PRESETS,
                          models_to_evaluate, evaluate, REPORT, doc=__doc__,
                          refine=refine, data=load_data)

if __name__ == "__main__":
  run.main(BENCHMARK)
