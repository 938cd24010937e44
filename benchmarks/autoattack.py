"""AutoAttack in JAX: per-stage robust accuracy and time, diagnostics, peers.

    python -m benchmarks.autoattack --dataset digits   # ~6 min, 2 CPU cores

Trains (or reloads) a standard and a Madry PGD-trained model with
`benchmarks.madry`'s recipe (digits: Wong's CNN, eps 0.2), or evaluates a
training workdir's model (--checkpoint DIR) or a released PyTorch model
(--zoo-arch: a RobustBench entry, or an `advjax.zoo` architecture with
--zoo-kwargs depth=28,widen_factor=10; --checkpoint FILE), and reports per
AutoAttack stage the robust accuracy and time, PGD beside it, the
gradient-masking diagnostics and, with the peers installed (pip install
'advjax[peers]' && pip install --no-deps pyautoattack torchattacks), the
reference AutoAttack and torchattacks' on the same weights; plus a 28x28
parity case. Expected on digits: AutoAttack below PGD-20 x 4, the
reference's accuracy within a seed's spread, ~3x its speed once compiled.
"""
import dataclasses
import functools
from typing import Optional

import jax
import numpy as np

from advjax import (analysis, checkpoint, data, evaluation, models, report,
                    run, sharding, training, zoo)
from advjax.attacks import gradient
from benchmarks.peers import torch_peers

sharding.split_host_cpu()  # before JAX starts: one device per CPU core


@dataclasses.dataclass(frozen=True)
class AutoAttackConfig(run.Config):
  """Settings; None fields take the dataset's preset (`benchmarks.madry`'s
  training)."""
  method: str = run.field("madry", "'standard': the standard model only",
                          choices=("madry", "standard"))
  eps: Optional[float] = run.field(None, "the radius (training, attacks)",
                                   ge=0)
  train_steps: Optional[int] = run.field(None, "PGD steps of training", ge=1)
  train_step_size: Optional[float] = run.field(None, "their size", ge=0)
  eval_steps: Optional[int] = run.field(None, "PGD steps (evaluation)", ge=1)
  eval_restarts: Optional[int] = run.field(None, "its restarts", ge=1)
  autoattack_steps: int = run.field(100, "APGD/FAB iterations", ge=1)
  autoattack_queries: int = run.field(5000, "Square's queries", ge=1)
  norm: str = run.field("linf", "the threat model", choices=("linf", "l2"))
  version: str = run.field("standard", "AutoAttack's version",
                           choices=("standard", "plus", "rand"))
  checkpoint: Optional[str] = run.field(None, "a training workdir; with "
                                        "--zoo-arch a PyTorch file")
  zoo_arch: Optional[str] = run.field(None, "a RobustBench entry or an "
                                      "advjax.zoo architecture")
  zoo_kwargs: str = run.field("", "its keywords, 'depth=28,widen_factor=10'")
  eval_batch_size: int = run.field(512, "examples per evaluation step", ge=1)
  device_batch_size: Optional[int] = run.field(None, "per device, per call",
                                               ge=1)
  seeds: int = run.field(3, "AutoAttack keys, reference seeds 0..seeds-1",
                         ge=1)
  peers: bool = run.field(True, "run the reference and torchattacks")
  compare_masking: bool = run.field(True, "also time survivors='mask'")
  diagnostics_examples: int = run.field(256, "of the diagnostics", ge=1)
  synthetic_examples: int = run.field(256, "of the 28x28 parity case", ge=0)
  synthetic_eps: float = run.field(0.005, "its eps", ge=0)
  split_cpu: bool = run.field(True, "one XLA device per CPU core")


# Image sets of varying size: a converted checkpoint on the validation
# split only (RobustBench's ImageNet threat model: Linf 4/255).
_EVAL_ONLY = dict(model=None, eps=4 / 255, eval_steps=10, eval_restarts=1,
                  epochs=0, batch_size=1, optimizer="sgd", learning_rate=0.,
                  weight_decay=0., schedule="constant")
IMAGE_SETS = ("imagenet2012", "imagenette", "folder")
PRESETS = {**training.recipes.MADRY, **{d: _EVAL_ONLY for d in IMAGE_SETS}}


def refine(cfg, preset):
  if cfg.dataset in IMAGE_SETS and not cfg.zoo_arch:
    raise run.ConfigError(f"{cfg.dataset}: a converted checkpoint only "
                          "(--zoo-arch and --checkpoint).")
  if cfg.zoo_arch:
    if not cfg.checkpoint:
      raise run.ConfigError("--zoo-arch needs --checkpoint FILE.")
    zoo.resolve(cfg.zoo_arch, cfg.zoo_kwargs)  # fails early on bad names
    entry = zoo.robustbench.ENTRIES.get(cfg.zoo_arch)  # its eps below
    return {**preset, "lazy_data": True, **({"eps": entry.eps} if entry
                                             else {})}
  if cfg.checkpoint and cfg.model is None:  # the workdir names its model
    return {**preset, "model": checkpoint.run_settings(cfg.checkpoint).get(
        "model", preset["model"])}
  return preset


def load_data(cfg):
  """An image set's validation split (`eval_limit` images); None (the
  runner's splits) for the other datasets."""
  if cfg.dataset in IMAGE_SETS:
    return None, data.load(cfg.dataset, "validation", data_dir=cfg.data_dir,
                           limit=cfg.eval_limit or None, lazy=False)


def models_to_evaluate(cfg, env):
  if cfg.zoo_arch:
    arch, kwargs = zoo.resolve(cfg.zoo_arch, cfg.zoo_kwargs)
    return {cfg.zoo_arch: run.LoadTorch(arch, cfg.checkpoint, kwargs)}
  if cfg.checkpoint:
    return {"checkpoint": run.Load(cfg.checkpoint)}
  specs = {"standard": run.TrainSpec(training.methods.standard())}
  if cfg.method == "madry":
    specs["madry"] = run.TrainSpec(training.methods.madry(
        cfg.eps, steps=cfg.train_steps, step_size=cfg.train_step_size), {
            k: getattr(cfg, k) for k in ("eps", "train_steps",
                                         "train_step_size")})
  return specs


def _case(cfg, apply_fn, variables, x, y, eps, wong, pgd=True):
  """advjax's AutoAttack over `seeds` keys, timed; PGD; the peers."""
  out = {"eps": float(eps), "n": len(y), "autoattack": evaluation.
         autoattack_repeats(apply_fn, variables, x, y, keys=[
             jax.random.key(s) for s in range(cfg.seeds)],
             compare_masking=cfg.compare_masking, norm=cfg.norm, eps=eps,
             version=cfg.version, steps=cfg.autoattack_steps,
             queries=cfg.autoattack_queries, batch_size=cfg.eval_batch_size,
             device_batch_size=cfg.device_batch_size,
             progress=cfg.progress).summary()}
  out["peers"] = (torch_peers.autoattack_peers(
      variables["params"], x.shape[1:], x, y, eps=eps, norm=cfg.norm,
      version=cfg.version, seeds=cfg.seeds, batch_size=cfg.eval_batch_size,
      ours=out["autoattack"]) if wong and cfg.peers else {
          "skipped": "--no-peers" if wong else "the replica is Wong's CNN"})
  if pgd:
    r = evaluation.robust_accuracy(
        apply_fn, variables, x, y, attack=functools.partial(
            gradient.pgd, steps=cfg.eval_steps, restarts=cfg.eval_restarts),
        eps=[eps], batch_size=cfg.eval_batch_size, key=jax.random.key(1),
        device_batch_size=cfg.device_batch_size)
    out["pgd"] = {**r.summary(), "robust": evaluation.to_bits(r.correct[0])}
  return out


evaluate = lambda cfg, env, name, variables: _case(
    cfg, env.apply_fn, variables, env.test.images, env.test.labels, cfg.eps,
    cfg.model == "wong_mnist")
evals = lambda cfg, env: {"diagnostics": evaluation.DiagnosticsEvaluator(
    cfg.eps, cfg.norm, n=cfg.diagnostics_examples, steps=cfg.autoattack_steps,
    square_queries=min(1000, cfg.autoattack_queries),
    batch_size=cfg.eval_batch_size, device_batch_size=cfg.device_batch_size)}


def extra(cfg, env, trained):
  """Wong's CNN, random weights, uniform images labelled by it: parity."""
  del env, trained
  if not cfg.synthetic_examples:
    return {}
  case = models.random_case("wong_mnist", cfg.synthetic_examples, (28, 28, 1))
  return {"synthetic-28x28": _case(cfg, *case, cfg.synthetic_eps, True,
                                   pgd=False)}


cases = lambda results: {**results["models"], **results.get("extra", {})}
reference = lambda c: c["peers"].get("reference")


def body(cfg, results):
  out = [f"Devices: {', '.join(results['devices'])}."]
  for name, c in cases(results).items():
    aa, ref, k = c["autoattack"], reference(c), cfg.seeds
    series = {"advjax (key 0)": aa["stages"], f"advjax, mean of {k} keys":
              aa["stages_mean"], **({"reference (seed 0)": ref[
                  "stages_per_seed"][0], f"reference, mean of {k}": ref[
                      "stages_mean"]} if ref else {})}
    times = {"advjax (warm)": aa["warm_stage_seconds"], **(
        {"reference": ref["stage_seconds"]} if ref else {})}
    out += [f"## {name}: eps {c['eps']:.4g}, {c['n']} examples", *(
        report.curve_table(list(aa["stages"]), {n: [v.get(s) for s in aa[
            "stages"]] for n, v in d.items()}, first="stage", unit=u,
                           caption=t) for d, u, t in (
            (series, "%", "Robust accuracy after each stage:"),
            (times, ".2f", "Seconds per stage:")))]
    if "diagnostics" in c:
      out.append(f"Gradient-masking diagnostics (flags: "
                 f"{', '.join(c['diagnostics']['flags']) or 'none'}):\n\n"
                 + c["diagnostics"]["table"])
  return out + [report.records_table(cases(results), [
      ("AutoAttack", "autoattack.robust_accuracy", "%"),
      (f"PGD-{cfg.eval_steps} x {cfg.eval_restarts}", "pgd.accuracy.0", "%"),
      ("s, 1st call", "autoattack.seconds_cold", ".1f"),
      ("s, 2nd", "autoattack.seconds_warm", ".1f"),
      ("same", "autoattack.warm_identical", ""),
      ("s, masked", "autoattack.seconds_masked", ".1f"),
      ("same", "autoattack.masked_identical", ""),
      ("reference s (median)", "peers.reference.median_seconds", ".1f"),
      ("speed-up warm", "peers.speedup_warm", ".2f"),
      ("cold", "peers.speedup_cold", ".2f"),
      ("robust bits agree", "peers.agreement", "%"),
      ("torchattacks robust", "peers.torchattacks.robust_accuracy", "%"),
      ("s", "peers.torchattacks.seconds", ".1f"),
      ("peers skipped", "peers.skipped", "")], first="case",
      caption="Robust accuracy; advjax's time (the first call compiles), "
              "the reference (fra31/auto-attack) and torchattacks on the same"
              " weights:")]


def _entry_rows(cfg):
  """A RobustBench entry's published numbers beside this run's."""
  entry = zoo.robustbench.ENTRIES.get(cfg.zoo_arch or "")
  return [report.Published(
      "RobustBench leaderboard", f"{cfg.zoo_arch} ({entry.arch}), Linf "
      f"{entry.eps:.4g}", value, f"{w} accuracy", ours=lambda cfg, r, w=w: r[
          "models"][cfg.zoo_arch]["autoattack"][f"{w}_accuracy"])
          for w, value in (("clean", entry.clean),
                           ("robust", entry.autoattack))] if entry else []


# DESIGN.md section 5 (RobustBench / fra31 README): clean %, AutoAttack %.
PUBLISHED = [
    report.Published(src, {"mnist": "MNIST, AutoAttack at 0.3", "cifar10":
                           "CIFAR-10, AutoAttack at 8/255"}[dataset], value,
                     f"{what} accuracy", dataset=dataset,
                     ours=model and report.value_of(
                         f"models.{model}.autoattack.{what}_accuracy"))
    for dataset, src, model, clean, aa in (
        ("mnist", "Madry et al. 2018", "madry", 98.53, 88.50),
        ("mnist", "Wong et al. 2020 (FGSM-RS)", None, 98.50, 82.93),
        ("mnist", "TRADES (Zhang et al. 2019)", None, 99.48, 92.81),
        ("cifar10", "Madry et al. 2018, WRN-34-10", None, 87.14, 44.04),
        ("cifar10", "Wong et al. 2020 fast, PreAct ResNet-18", None, 83.34,
         43.21),
        ("cifar10", "Carmon et al. 2019", None, 89.69, 59.53),
        ("cifar10", "standard training, WRN-28-10", "standard", 94.78, 0.00))
    for what, value in (("clean", clean), ("robust", aa))]


def _stronger_than_pgd(cfg, results):
  """Per model: examples robust under AutoAttack that PGD breaks."""
  out = {}
  for name, c in results["models"].items():
    d = analysis.disagreement(c["autoattack"]["robust"], c["pgd"]["robust"])
    out[name] = report.Measured(d.only_a, f"{d.only_b} PGD-robust broken")
  return out


def _reference_gap(cfg, results):
  """Per case: advjax - the reference, robust accuracy (seed means)."""
  last = lambda stages: list(stages.values())[-1]
  return {n: report.difference(
      lambda *_, c=c: last(c["autoattack"]["stages_mean"]),
      lambda *_, c=c: last(reference(c)["stages_mean"]), "%")(cfg, results)
          for n, c in cases(results).items() if reference(c)}


REPORT = report.Report(
    title=lambda cfg: f"AutoAttack ({cfg.version}, {cfg.norm}) on "
                      f"{cfg.dataset}, {cfg.zoo_arch or cfg.model}",
    body=body, published=lambda cfg: PUBLISHED + _entry_rows(cfg),
    claims=[
        report.Claim("AutoAttack is at least as strong as PGD, per example",
                     _stronger_than_pgd, report.at_most(0), quantity="examples"
                     " robust under AutoAttack but not PGD"),
        report.Claim("the same robust accuracy as the reference within 0.5 "
                     "points (seed means)", _reference_gap, report.between(
                         -0.005 - 1e-9, 0.005 + 1e-9),
                     quantity="advjax - reference")],
    figures=lambda cfg, results: {"autoattack.png": report.Panels([
        report.Bar(list(c["autoattack"]["stages"]), {
            "advjax": list(c["autoattack"]["stages_mean"].values()),
            **({"reference": [ref["stages_mean"].get(s, np.nan) for s in c[
                "autoattack"]["stages"]]} if (ref := reference(c)) else {})},
            ylabel="robust accuracy after the stage (%)", percent=True,
            title=f"{name} (eps {c['eps']:.3g})" + (
                f"; dotted: PGD-{cfg.eval_steps} x {cfg.eval_restarts}"
                if "pgd" in c else ""), hlines=[(c["pgd"]["accuracy"][0], "")]
            if "pgd" in c else [])
        for name, c in cases(results).items()])})

BENCHMARK = run.Benchmark("autoattack", AutoAttackConfig, PRESETS,
                          models_to_evaluate, evaluate, REPORT, doc=__doc__,
                          refine=refine, extra=extra, data=load_data,
                          evals=evals)

if __name__ == "__main__":
  run.main(BENCHMARK)
