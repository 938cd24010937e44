"""Ilyas et al. 2019: adversarial examples are not bugs, they are features.

    python -m benchmarks.features --dataset digits   # ~1.5-3 min, 2 CPU cores

Standard models trained on Ilyas et al.'s D_R / D_NR (matching an L2-robust
/ a standard model's representation) and D_rand / D_det (targeted L2 PGD,
relabelled), built by `analysis.construct`; the slides' robust-feature toy
(`features.RobustFeatureToy`). Measured on digits (L2 eps 1): standard
97.8 % clean / 0.8 % PGD, robust 82.2 % / 49.2 %, D_R 98.1 % / 1.7 % (its
images stay within L2 0.56 of the originals), D_NR 97.5 % / 0.3 %, D_rand
89.4 % and D_det 47.5 % clean; toy eps at 50 %: 0.386 linear vs 0.0133 MLP.
Presets: mnist, cifar10. Writes results.json, results.md, three figures.
"""
import dataclasses
import functools
import os
from typing import Optional

import jax
import numpy as np

from advjax import analysis, evaluation, report, run, training
from advjax.analysis import features
from advjax.attacks import gradient
from advjax.training import methods

# The constructed datasets: name -> (source model, kind of construction).
DATASETS = {"d_r": ("robust", "robust"), "d_nr": ("standard", "robust"),
            "d_rand": ("standard", "random"),
            "d_det": ("standard", "deterministic")}
TOY = features.RobustFeatureToy()  # the slides' settings


@dataclasses.dataclass(frozen=True)
class FeaturesConfig(run.Config):
  """Settings (training: the Madry recipe's); None: the dataset's preset."""
  robust_eps: Optional[float] = run.field(None, "robust model's L2 eps", gt=0)
  robust_steps: Optional[int] = run.field(
      None, "the robust model's training PGD steps", ge=1)
  robust_warmup_epochs: Optional[int] = run.field(
      None, "epochs over which the robust model's eps ramps up", ge=0)
  eval_eps: Optional[float] = run.field(None, "test PGD's L2 eps", gt=0)
  eval_steps: Optional[int] = run.field(None, "test PGD's steps", ge=1)
  eval_restarts: Optional[int] = run.field(None, "test PGD's restarts",
                                           ge=1)
  eps_grid_points: int = run.field(9, "test grid 0 .. 2 eval_eps", ge=2)
  robust_dataset_steps: Optional[int] = run.field(None, "D_R's steps", ge=1)
  robust_dataset_step_size: Optional[float] = run.field(
      None, "D_R's L2 step size", gt=0)
  robust_dataset_start: str = run.field("other", "D_R's start images",
                                        choices=features.STARTS)
  non_robust_eps: Optional[float] = run.field(None, "D_rand's L2 eps", gt=0)
  non_robust_steps: Optional[int] = run.field(None, "D_rand's PGD steps",
                                              ge=1)
  non_robust_step_size: Optional[float] = run.field(
      None, "D_rand's L2 step size", gt=0)
  toy: bool = run.field(True, "also run the robust-feature toy (TOY)")
  figure_examples: int = run.field(8, "images in examples.png", ge=0)


_PAPER = dict(robust_warmup_epochs=0, robust_dataset_steps=1000,
              robust_dataset_step_size=0.1, non_robust_steps=100,
              non_robust_step_size=0.1)  # their appendix, as recalled
_preset = lambda dataset, **kw: {**{  # the Madry recipe's training
    k: v for k, v in training.recipes.MADRY[dataset].items()
    if k in run.TRAINING_SETTINGS}, **_PAPER, **kw}
PRESETS = {  # digits: standard at ~0 % at eval_eps; cifar10: the paper's
    "digits": _preset("digits", epochs=60, robust_eps=1.5, robust_steps=10,
                      robust_warmup_epochs=10, eval_eps=1., eval_steps=20,
                      eval_restarts=2, robust_dataset_steps=200,
                      non_robust_eps=1., non_robust_steps=50),
    "synthetic": _preset("synthetic", robust_eps=0.5, robust_steps=2,
                         eval_eps=0.25, eval_steps=2, eval_restarts=1,
                         robust_dataset_steps=3, non_robust_eps=0.5,
                         non_robust_steps=3, non_robust_step_size=0.2),
    "mnist": _preset("mnist", robust_eps=2.0, robust_steps=40, eval_eps=1.0,
                     eval_steps=100, eval_restarts=1, non_robust_eps=2.0),
    "cifar10": _preset("cifar10", robust_eps=.5, robust_steps=7, eval_eps=.25,
                       eval_steps=20, eval_restarts=1, non_robust_eps=.5)}


def constructed(cfg, env, name: str, source):
  """Dataset `name` of the training split, by the source model `source`."""
  kind = DATASETS[name][1]
  c = features.Construction(kind, *((
      cfg.robust_dataset_steps, cfg.robust_dataset_step_size, None,
      cfg.robust_dataset_start) if kind == "robust" else (
          cfg.non_robust_steps, cfg.non_robust_step_size, cfg.non_robust_eps)))
  return analysis.construct(
      c, env.model, source, env.train.images, env.train.labels,
      env.train.num_classes, key=jax.random.fold_in(
          jax.random.key(cfg.seed), 10 + list(DATASETS).index(name)),
      cache_dir=os.path.join(cfg.workdir, "datasets"), name=name,
      batch_size=cfg.eval_batch_size, mesh=env.mesh, progress=cfg.progress)


def models_(cfg, env):
  """standard, robust (L2 Madry) and a standard model on each dataset."""
  eps = training.eps_warmup(cfg.robust_eps, cfg.robust_warmup_epochs,
                            env.train.size, cfg.batch_size)
  return {"standard": run.TrainSpec(methods.standard()),
          "robust": run.TrainSpec(methods.madry(eps, attack=functools.partial(
              gradient.pgd, norm="l2", steps=cfg.robust_steps)), {
                  k: getattr(cfg, k) for k in ("robust_eps", "robust_steps",
                                               "robust_warmup_epochs")}),
          **{name: lambda trained, name=name, source=source: run.TrainSpec(
              methods.standard(), {"trained_on": name}, train=constructed(
                  cfg, env, name, trained[source]).dataset(
                      env.test.num_classes, name))
             for name, (source, _) in DATASETS.items()}}


def evaluate(cfg, env, _, variables):
  """Clean and L2 PGD accuracy over the eps grid (the true test set)."""
  ra = evaluation.robust_accuracy(
      env.apply_fn, variables, env.test.images, env.test.labels,
      attack=functools.partial(gradient.pgd, norm="l2", steps=cfg.eval_steps,
                               restarts=cfg.eval_restarts), eps=np.linspace(
                                   0., 2 * cfg.eval_eps, cfg.eps_grid_points),
      batch_size=cfg.eval_batch_size, key=jax.random.key(cfg.seed + 1),
      progress=cfg.progress)
  return {**ra.summary(), "robust_accuracy": float(
      ra.accuracy[np.abs(ra.eps - cfg.eval_eps).argmin()])}


def extra(cfg, env, trained):
  """Per constructed dataset: its `stats`, how the standard and robust
  models classify it, the figure's images; the toy (`TOY.run`)."""
  n = min(cfg.figure_examples, env.train.size)
  acc = lambda m, x, y: evaluation.accuracy(env.apply_fn, trained[m], x, y,
                                            batch_size=cfg.eval_batch_size)
  out = {"num_classes": env.test.num_classes, "datasets": {}, "figure": {
      "D": {"images": env.train.images[:n], "labels": env.train.labels[:n]}}}
  for name, (source, kind) in DATASETS.items():
    ds = constructed(cfg, env, name, trained[source])
    s = out["datasets"][name] = {"source": source, **ds.stats(env.train.images)}
    for m in ("standard", "robust"):
      s[f"{m}_accuracy"] = acc(m, ds.images, ds.labels)
    if kind != "robust":
      s["robust_source_accuracy"] = acc("robust", ds.images, ds.source_labels)
    out["figure"][name] = {"images": ds.images[:n], "labels": ds.labels[:n]}
  if cfg.toy:
    out["toy"] = TOY.run(jax.random.key(cfg.seed), seed=cfg.seed, attack_key=(
        jax.random.key(cfg.seed + 3)), steps=cfg.eval_steps, mesh=env.mesh,
                         batch_size=cfg.eval_batch_size, progress=cfg.progress)
  return out


def body(cfg, results):
  ms, ex = results["models"], results["extra"]
  return [report.records_table(ms, [
      ("training", "method", ""), ("clean", "clean_accuracy", "%"),
      (f"L2 PGD-{cfg.eval_steps} x {cfg.eval_restarts} at {cfg.eval_eps:g}",
       "robust_accuracy", "%"), ("training (s)", "train_seconds", ".0f")]),
          report.records_table(ex["datasets"], [("source", "source", ""), *(
              (k.replace("_", " "), k, u) for k, u in (
                  ("initial_distance", ".3f"), ("distance", ".3f"),
                  ("to_original", ".3g"), ("to_start", ".3g"),
                  ("success_rate", "%"), ("robust_source_accuracy", "%"),
                  ("standard_accuracy", "%"), ("robust_accuracy", "%")))],
                               first="dataset", caption=(
              "## The constructed datasets\n\nDistance: of the penultimate "
              "representations (relative; medians); to original / start: L2 "
              "(median; under the eval eps: the image is reproduced); "
              "accuracy: against the dataset's labels.")),
          report.curve_table(ms["standard"]["eps"], {
              n: r["accuracy"] for n, r in ms.items()}, caption="PGD vs eps:"),
          "" if "toy" not in ex else report.records_table(ex["toy"], [
              ("train accuracy (noisy labels)", "train_accuracy", "%"),
              ("test accuracy", "clean_accuracy", "%"),
              ("Linf eps at 50 %", "eps_at_half", ".3g")],
              caption="## The robust-feature toy")]


PUBLISHED = [report.Published(
    "Ilyas et al. 2019 (Table 1, Fig. 2)", f"{n}: CIFAR-10, ResNet-50, L2 "
    "eps 0.25", v, f"{k} accuracy", dataset="cifar10",
    ours=report.value_of(f"models.{n}.{k}_accuracy")) for n, k, v in (
        ("standard", "clean", 95.3), ("standard", "robust", 0.0),
        ("d_r", "clean", 85.4), ("d_r", "robust", 21.8),
        ("d_nr", "clean", 87.7), ("d_nr", "robust", 0.0),
        ("d_rand", "clean", 63.3), ("d_det", "clean", 43.7))] + [
            report.Published("the slides", f"{n}: robust-feature toy (pixel "
                             "range not stated)", v, "eps that fools it", "",
                             report.value_of(f"extra.toy.{n}.eps_at_half"))
            for n, v in (("toy_linear", 0.9), ("toy_mlp", 0.01))]


of = lambda f, *names: lambda cfg, r: {n: f(r, n) for n in names}
CLAIMS = [
    report.Claim("standard training on the robust dataset D_R gives "
                 "robustness on the true test set", report.difference(
                     "models.d_r.robust_accuracy", lambda cfg, r: max(
                         r["models"][n]["robust_accuracy"]
                         for n in ("standard", "d_nr")), "%"),
                 report.at_least(0.1), report.at_least(0.05),
                 "D_R - max(standard, D_NR)"),
    report.Claim("D_R and D_NR still generalise", of(
        lambda r, n: r["models"][n]["clean_accuracy"], "d_r", "d_nr"),
                 report.above(0.5), quantity="clean accuracy"),
    report.Claim("the construction matches the representations: the median "
                 "relative distance falls to under half its start", of(
                     lambda r, n: r["extra"]["datasets"][n]["reduction"],
                     "d_r", "d_nr"), report.below(0.5), quantity="end / start"),
    report.Claim("a standard model trained on a non-robust dataset (its "
                 "images still show their old class) is well above chance "
                 "on the true test set", of(
                     lambda r, n: r["models"][n]["clean_accuracy"] * r[
                         "extra"]["num_classes"], "d_rand", "d_det"),
                 report.above(2), quantity="accuracy / chance"),
    report.Claim("toy: the robust linear classifier needs a much larger eps "
                 "than the network to be fooled", report.ratio(
                     "extra.toy.toy_linear.eps_at_half",
                     "extra.toy.toy_mlp.eps_at_half"), report.at_least(5),
                 quantity="linear / MLP eps at 50 %",
                 applies=lambda cfg, r: "toy" in r["extra"])]


def figures(cfg, results):
  ms, ex, fig = results["models"], results["extra"], results["extra"]["figure"]
  out = {"examples.png": report.image_grid(
      [im for d in fig.values() for im in d["images"]],
      [f"{n}: {y}" for n, d in fig.items() for y in d["labels"]],
      ncols=len(fig["D"]["labels"]), size=1.3, title="D and its versions"),
         "accuracy_vs_eps.png": report.Line(
             {n: r["accuracy"] for n, r in ms.items()}, x=ms["standard"]["eps"],
             xlabel="eps (L2)", ylabel="test accuracy under PGD (%)",
             percent=True, marker=".", vlines=[(cfg.eval_eps, "eval eps")],
             title="standard models trained on each dataset")}
  if "toy" in ex:
    out["toy_accuracy_vs_eps.png"] = report.Line({
        f"{n} (50 % at {r['eps_at_half']:.3g})": (r["eps"], r["accuracy"])
        for n, r in ex["toy"].items()}, xlabel="eps (Linf)", logx=True,
        ylabel="toy test accuracy under PGD (%)", percent=True, marker=".",
        hlines=[(0.5, "")], title="robust-feature toy: linear vs MLP")
  return out


REPORT = report.Report("{dataset}: robust and non-robust features (Ilyas et "
                       "al. 2019), {model}", body, PUBLISHED, CLAIMS, figures,
                       stand_ins={"digits": ("cifar10",)})  # Ilyas's CIFAR

BENCHMARK = run.Benchmark("features", FeaturesConfig, PRESETS, models_,
                          evaluate, REPORT, doc=__doc__, extra=extra)

if __name__ == "__main__":
  run.main(BENCHMARK)
