"""Madry et al. adversarial training vs standard training, under PGD and AutoAttack.

    python -m benchmarks.madry --dataset digits   # 77 s, 2 CPU cores

Measured on digits (eps 0.2, Wong's CNN, 360 test images): standard 97.5 %
clean, 0.3 % under PGD-20 x 4 and AutoAttack; Madry-trained 98.1 % clean,
58.6 % under PGD-20 x 4 and 53.3 % under AutoAttack, which breaks 19
examples PGD calls robust. Also Madry et al.'s loss concentration and
D'Costa & Sriramanan's claims (Adam vs SGD, the drop past the training
eps). Presets: digits, mnist (Madry's CNN), cifar10 (PreAct ResNet-18),
fashion_mnist, cifar100, svhn_cropped; --method picks the training method.
Writes results.json, results.md and three figures to --workdir (default
runs/madry-<dataset>), where trained models are checkpointed.
"""
import dataclasses
import functools
from typing import Optional

import jax
import numpy as np

from advjax import evaluation, report, run, training
from advjax.attacks import gradient
from advjax.training import methods, recipes

METHODS = ("madry", "fgsm_mix", "fgsm_rs", "trades", "mart", "standard")


@dataclasses.dataclass(frozen=True)
class MadryConfig(run.Config):
  """Settings of a run; None fields take the dataset's preset."""
  method: str = run.field("madry", "the adversarial training method (a "
                          "training preset)", choices=METHODS)
  eps: Optional[float] = run.field(None, "the Linf radius of training and "
                                   "evaluation (e.g. 0.3, 8/255)", ge=0)
  eps_warmup_epochs: int = run.field(0, "ramp the training eps linearly "
                                     "from 0 over this many epochs", ge=0)
  train_steps: Optional[int] = run.field(None, "PGD steps of training", ge=1)
  train_step_size: Optional[float] = run.field(None, "PGD step size of "
                                               "training", ge=0)
  eval_steps: Optional[int] = run.field(None, "PGD steps of the evaluation",
                                        ge=1)
  eval_restarts: Optional[int] = run.field(None, "PGD random restarts of "
                                           "the evaluation", ge=1)
  eps_grid_points: int = run.field(17, "points of the evaluation eps grid, "
                                   "0 .. 2 eps", ge=2)
  sigma: float = run.field(0.5, "fgsm_mix's clean weight", ge=0, le=1)
  predicted_labels: bool = run.field(True, "fgsm_mix attacks the predicted "
                                     "labels")
  beta: float = run.field(6.0, "the robustness weight of trades and mart",
                          ge=0)
  convergence_steps: int = run.field(100, "PGD steps of the attack-"
                                     "convergence curves", ge=1)
  convergence_examples: int = run.field(256, "test examples of the "
                                        "convergence curves", ge=1)
  autoattack: bool = run.field(True, "run AutoAttack (standard) at eps on "
                               "each model")
  autoattack_steps: int = run.field(100, "APGD/FAB iterations", ge=1)
  autoattack_queries: int = run.field(5000, "Square's queries", ge=1)
  concentration_examples: int = run.field(5, "test images (the first ones)"
                                          " of the loss concentration", ge=1)
  concentration_restarts: int = run.field(1000, "random restarts per image "
                                          "(Madry et al.: 10^5)", ge=1)
  concentration_steps: int = run.field(100, "PGD steps of each restart "
                                       "(step 2.5 eps / steps)", ge=1)
  concentration_bins: int = run.field(40, "histogram bins of the final "
                                      "losses", ge=1)


PRESETS = recipes.MADRY


def refine(cfg, preset):
  return {**preset, **recipes.METHOD_RECIPES.get((cfg.dataset, cfg.method),
                                                 {})}


def train_method(cfg, env):
  """The config's adversarial training method, its eps ramped up over
  `eps_warmup_epochs` when set."""
  eps = training.eps_warmup(cfg.eps, cfg.eps_warmup_epochs, env.train.size,
                            cfg.batch_size)
  return methods.from_settings(
      cfg.method, eps=eps, steps=cfg.train_steps,
      step_size=cfg.train_step_size, beta=cfg.beta, sigma=cfg.sigma,
      predicted_labels=cfg.predicted_labels)


def models(cfg, env):
  specs = {"standard": run.TrainSpec(methods.standard())}
  if cfg.method != "standard":
    specs[cfg.method] = run.TrainSpec(train_method(cfg, env), settings={
        k: getattr(cfg, k) for k in ("method", "eps", "eps_warmup_epochs",
                                     "train_steps", "train_step_size",
                                     "sigma", "predicted_labels", "beta")})
  return specs


eps_grid = lambda cfg: np.linspace(0., 2. * cfg.eps, cfg.eps_grid_points)


def evaluate(cfg, env, name, variables):
  """PGD over the eps grid; AutoAttack at eps, with the examples PGD calls
  robust that it breaks."""
  del name
  i_eps = int(np.argmin(np.abs(eps_grid(cfg) - cfg.eps)))
  kw = dict(batch_size=cfg.eval_batch_size, progress=cfg.progress)
  ra = evaluation.robust_accuracy(
      env.apply_fn, variables, env.test.images, env.test.labels,
      attack=functools.partial(gradient.pgd, steps=cfg.eval_steps,
                               restarts=cfg.eval_restarts),
      eps=eps_grid(cfg), key=jax.random.key(cfg.seed + 1), **kw)
  out = {"pgd": ra.summary(), "clean_accuracy": ra.clean_accuracy,
         "robust_accuracy": float(ra.accuracy[i_eps]), "autoattack": None}
  if cfg.autoattack:
    aa = evaluation.autoattack(
        env.apply_fn, variables, env.test.images, env.test.labels,
        eps=cfg.eps, key=jax.random.key(cfg.seed + 2),
        steps=cfg.autoattack_steps, queries=cfg.autoattack_queries, **kw)
    out["autoattack"] = {**aa.summary(), "pgd_robust_broken": int(
        np.sum(ra.correct[i_eps] & ~aa.robust))}
  return out


def evals(cfg, env):
  del env
  return {"convergence": evaluation.AttackConvergenceEvaluator(
      cfg.eps, jax.random.key(cfg.seed + 7), cfg.convergence_examples,
      cfg.convergence_steps, progress=cfg.progress),
          "concentration": evaluation.LossConcentrationEvaluator(
              cfg.eps, jax.random.key(cfg.seed + 8),
              cfg.concentration_examples, cfg.concentration_restarts,
              cfg.concentration_steps, cfg.concentration_bins,
              progress=cfg.progress)}


def body(cfg, results):
  ms = results["models"]
  attack = f"PGD-{cfg.eval_steps} x {cfg.eval_restarts}"
  aas = {n: r for n, r in ms.items() if r["autoattack"]}
  stages = next(iter(aas.values()))["autoattack"]["stages"] if aas else []
  at = f"at eps {cfg.eps:.4g}"
  concentration = {f"{n}, image {c['index']} ({c['label']})": c
                   for n, r in ms.items() for c in r["concentration"]}
  return [
      report.records_table(ms, [
          ("clean", "clean_accuracy", "%"),
          (f"{attack} {at}", "robust_accuracy", "%"),
          (f"AutoAttack {at}", "autoattack.robust_accuracy", "%"),
          ("training (s)", "train_seconds", ".0f")]),
      report.records_table(aas, [
          *((s, f"autoattack.stages.{s}", "%") for s in stages),
          ("broken PGD-robust", "autoattack.pgd_robust_broken", "")],
          caption="AutoAttack (standard) robust accuracy after each stage, "
                  "and the examples PGD calls robust that it breaks:"),
      report.curve_table(eps_grid(cfg), {n: r["pgd"]["accuracy"]
                                         for n, r in ms.items()},
                         caption=f"Accuracy under {attack} vs eps:"),
      report.records_table(concentration, [
          *((k, f"quantiles.{k}", ".3f") for k in ("min", "median", "max")),
          ("excess", "excess", ".2f"), ("restarts fooling", "fooled", "%")],
          first="model, test image (label)",
          caption=f"Loss concentration (Madry et al.): per test image, the "
                  f"cross-entropy after each of {cfg.concentration_restarts}"
                  f" PGD-{cfg.concentration_steps} runs {at}, each from its "
                  "own random start; excess = (max - median) / max(median, "
                  "0.5 nats). Madry et al. ran 10^5 restarts.")]


PUBLISHED = [
    report.Published(src, setting, value, f"{what} accuracy", dataset=d,
                     ours=report.value_of(f"models.{method}.{what}_accuracy"))
    for src, setting, d, method, clean, robust in (
        ("Madry et al. 2018", "MNIST, eps 0.3, PGD-100 x 50", "mnist",
         "madry", 98.5, 89.6),
        ("Madry et al. 2018", "CIFAR-10, eps 8/255, PGD-20", "cifar10",
         "madry", 87.3, 45.8),
        ("Wong et al. 2020", "CIFAR-10, FGSM-RS, PGD-50 x 10", "cifar10",
         "fgsm_rs", 86.0, 46.0))
    for what, value in (("clean", clean), ("robust", robust))] + [
    report.Published("D'Costa & Sriramanan (quoting Madry et al.)", setting,
                     finding)
    for setting, finding in (
        ("MNIST; CIFAR-10", "Linf-trained nets: 89 % (Figure 4); 45 % under "
         "PGD, no challenge attack below 41 %"),
        ("MNIST, CIFAR-10", "PGD from 10^5 random starts reaches similar "
         "losses, no point of much higher loss (qualitative)"),
        ("MNIST, CIFAR-10", "Figure 6: Linf-trained nets keep their accuracy "
         "up to the training eps; a sharp drop after (qualitative)"),
        ("ImageNet", "Figure 18: at a fixed eps Adam (lr 1e-3) is a much "
         "better PGD optimiser than SGD (lr 0.07) (qualitative)"))]


def _same_maximum(cfg, results):
  final = {k: round(c[-1], 3) for k, c in results["models"][cfg.method][
      "convergence"].items()}
  return report.Measured(max(final.values()) / min(final.values()), str(final))


def _adam_vs_sgd(cfg, results):
  ends = {n: {k: round(r["convergence"][k][-1], 3) for k in ("adam", "sgd")}
          for n, r in results["models"].items()}
  return report.Measured(min(e["adam"] - e["sgd"] for e in ends.values()),
                         str(ends))


def _drop_after_eps(cfg, results):
  grid = eps_grid(cfg)
  acc = results["models"][cfg.method]["pgd"]["accuracy"]
  at = lambda f: float(np.interp(f * cfg.eps, grid, acc))
  return report.Measured(
      (at(1.) - at(1.5)) - (at(0.5) - at(1.)),
      f"{report.cell(at(0.5), '%')} at 0.5 eps, {report.cell(at(1.), '%')} at"
      f" eps, {report.cell(at(1.5), '%')} at 1.5 eps")


def _concentrated(cfg, results):
  return {f"{n} model": report.Measured(
      max(c["excess"] for c in r["concentration"]), "excess per image: "
      + ", ".join(f"{c['excess']:.2f}" for c in r["concentration"]))
          for n, r in results["models"].items()}


ADVERSARIAL = lambda cfg, results: cfg.method != "standard"
CLAIMS = [
    report.Claim("adversarial training keeps robust accuracy at the training"
                 " eps far above standard training's", report.difference(
                     "models.{method}.robust_accuracy",
                     "models.standard.robust_accuracy", "%"),
                 report.above(0.2), report.above(0.05), "robust accuracy "
                 "gain", ADVERSARIAL),
    report.Claim("AutoAttack is at least as strong as PGD (per example the "
                 "worst case)", report.difference(
                     "models.{method}.autoattack.robust_accuracy",
                     "models.{method}.robust_accuracy", "%"),
                 report.at_most(1e-9), quantity="AutoAttack - PGD",
                 applies=lambda cfg, r: ADVERSARIAL(cfg, r) and cfg.autoattack),
    report.Claim("on the robust model PGD's loss reaches the same maximum "
                 "whichever first-order step it takes (sign, SGD, Adam)",
                 _same_maximum, report.at_most(1.1), report.at_most(1.5),
                 "largest / smallest final loss", ADVERSARIAL),
    report.Claim("D'Costa & Sriramanan: at a fixed eps Adam is a better PGD "
                 "optimiser than SGD (higher final loss on every model)",
                 _adam_vs_sgd, report.above(0),
                 quantity="min over models of Adam - SGD final loss"),
    report.Claim("D'Costa & Sriramanan, Figure 6: the adversarially trained "
                 "net keeps its accuracy up to the training eps, then drops "
                 "sharply", _drop_after_eps, report.above(0),
                 quantity="accuracy lost from eps to 1.5 eps - lost from 0.5 "
                          "eps to eps", applies=ADVERSARIAL),
    report.Claim("Madry et al.: PGD from random starts reaches similar "
                 "losses, none much higher", _concentrated,
                 report.at_most(0.1), report.at_most(0.5),
                 "max over images of the excess"),
]


def figures(cfg, results):
  ms = results["models"]
  attack = f"PGD-{cfg.eval_steps} x {cfg.eval_restarts}"
  concentration = [
      report.Histogram({n: report.Binned(c["counts"], c["edges"])},
                       xlabel="final loss (CE)", logy=True,
                       title=f"{n}, image {c['index']} ({c['label']})")
      for n, r in ms.items() for c in r["concentration"]]
  return {
      "robust_accuracy_vs_eps.png": report.Line(
          {n: r["pgd"]["accuracy"] for n, r in ms.items()}, x=eps_grid(cfg),
          xlabel="eps (Linf)", ylabel=f"accuracy under {attack} (%)",
          percent=True, marker=".", vlines=[(cfg.eps, "training eps")],
          title=f"{cfg.dataset}: robust accuracy vs eps"),
      "attack_convergence.png": report.Panels([report.Line(
          {k: (np.arange(1, len(c) + 1), c)
           for k, c in r["convergence"].items()}, xlabel="PGD iteration",
          ylabel="mean adversarial loss (CE)", title=f"{n} model",
          legend_title="inner step") for n, r in ms.items()],
          title=f"{cfg.dataset}: attack convergence at eps {cfg.eps:.4g}",
          panel_size=(5., 3.6)),
      "loss_concentration.png": report.Panels(
          concentration, ncols=cfg.concentration_examples,
          panel_size=(2.4, 2.1),
          title=f"{cfg.dataset}: final loss of {cfg.concentration_restarts} "
                f"PGD-{cfg.concentration_steps} restarts at eps "
                f"{cfg.eps:.4g}")}


REPORT = report.Report(
    title="{dataset}: standard vs {method} training, eps {eps:.4g} (Linf), "
          "{model}", body=body, published=PUBLISHED, claims=CLAIMS,
    figures=figures)

BENCHMARK = run.Benchmark("madry", MadryConfig, PRESETS, models, evaluate,
                          REPORT, doc=__doc__, refine=refine, evals=evals)

if __name__ == "__main__":
  run.main(BENCHMARK)
