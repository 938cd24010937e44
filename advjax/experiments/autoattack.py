"""AutoAttack benchmark: per-stage robust accuracy, time, diagnostics, peers.

`run(AutoAttackConfig(dataset=...))` trains (or reloads from the workdir) a
standard and a Madry-trained model with the dataset's `benchmarks.madry`
preset, or loads the model of a training workdir (`checkpoint`), and for
each model measures:

- clean accuracy and PGD accuracy at eps (the preset's PGD with restarts),
  beside AutoAttack's (the strongest standard evaluation);
- advjax's AutoAttack (`evaluation.autoattack`): per-stage robust accuracy
  and time, run twice in the process (the first call compiles, the second
  reuses the compilation: the per-example results are checked identical),
  once more with survivors masked instead of compacted (same results,
  timed), and with `seeds` keys for the spread a seed makes;
- the gradient-masking diagnostics (`evaluation.diagnostics`);
- with the peers installed (torch, pyautoattack, torchattacks) and a
  Wong CNN: the reference AutoAttack (fra31/auto-attack) with `seeds` seeds
  and torchattacks' AutoAttack on a PyTorch replica with the same weights,
  and the speed ratios;
- a synthetic 28x28 case (Wong's CNN with random weights on uniform random
  images, labels = its predictions) for the same parity check at MNIST's
  size.

Writes `results.json`, `results.md` (beside the published AutoAttack
numbers of DESIGN.md section 5) and `autoattack.png` to the workdir.
"""
import dataclasses
import functools
import json
import os
import time
from typing import Optional

import jax
import numpy as np

from advjax import checkpoint, evaluation, models, report, training
from advjax import run as runner
from advjax.attacks import gradient
from advjax.experiments import torch_peers

__all__ = ["AutoAttackConfig", "PRESETS", "PUBLISHED", "resolve", "run"]

# DESIGN.md section 5 (RobustBench / fra31 README): clean %, AutoAttack %.
PUBLISHED = {
    "mnist": [("Madry et al. 2018", 98.53, 88.50),
              ("Wong et al. 2020 (FGSM-RS)", 98.50, 82.93),
              ("TRADES (Zhang et al. 2019)", 99.48, 92.81)],
    "cifar10": [("Madry et al. 2018, WRN-34-10", 87.14, 44.04),
                ("Wong et al. 2020 fast, PreAct ResNet-18", 83.34, 43.21),
                ("Carmon et al. 2019", 89.69, 59.53),
                ("standard training, WRN-28-10", 94.78, 0.00)],
}


@dataclasses.dataclass(frozen=True)
class AutoAttackConfig(runner.Config):
  """Settings; None fields take the dataset's preset (`PRESETS`: the
  training of `benchmarks.madry`).

  Attributes (beyond `advjax.runner.Config`'s training ones):
    method: 'madry' (PGD training) or 'standard' (the standard model only).
    eps: the radius of training and evaluation.
    train_steps, train_step_size: the PGD of Madry training.
    eval_steps, eval_restarts: the PGD evaluation beside AutoAttack.
    autoattack_steps, autoattack_queries: APGD/FAB iterations, Square's
      queries.
    norm, version: AutoAttack's threat model and version.
    checkpoint: a `training.fit` workdir whose model is evaluated instead of
      training the two models (its run.json names the model, or `model`).
    eval_batch_size: examples per evaluation step.
    device_batch_size: examples per device per call (the compiled shape).
    seeds: AutoAttack runs with keys (and reference seeds) 0..seeds-1.
    peers: run the reference and torchattacks when installed.
    compare_masking: also time survivors='mask'.
    diagnostics_examples: examples the masking diagnostics look at.
    synthetic_examples, synthetic_eps: the 28x28 parity case (0: skip).
  """
  method: str = "madry"
  eps: Optional[float] = None
  train_steps: Optional[int] = None
  train_step_size: Optional[float] = None
  eval_steps: Optional[int] = None
  eval_restarts: Optional[int] = None
  autoattack_steps: int = 100
  autoattack_queries: int = 5000
  norm: str = "linf"
  version: str = "standard"
  checkpoint: Optional[str] = None
  eval_batch_size: int = 512
  device_batch_size: Optional[int] = None
  seeds: int = 3
  peers: bool = True
  compare_masking: bool = True
  diagnostics_examples: int = 256
  synthetic_examples: int = 256
  synthetic_eps: float = 0.005


# The training of benchmarks.madry.
PRESETS = training.recipes.MADRY


def resolve(config: AutoAttackConfig) -> AutoAttackConfig:
  """Fills None fields from the dataset's preset; workdir
  `runs/autoattack-<dataset>`."""
  if config.norm not in ("linf", "l2"):
    raise ValueError(f"norm must be 'linf' or 'l2', got {config.norm!r}.")
  if config.seeds < 1:
    raise ValueError(f"seeds must be >= 1, got {config.seeds}.")
  if config.method not in ("madry", "standard"):
    raise ValueError(f"method must be 'madry' or 'standard', got "
                     f"{config.method!r}.")
  return runner.fill_preset(config, PRESETS, "autoattack")


def _models(cfg, setup):
  """`[(name, variables)]`: the checkpoint's model, or a standard and a
  Madry-trained model."""
  if cfg.checkpoint:
    return [("checkpoint", checkpoint.load_variables(cfg.checkpoint))]
  specs = {"standard": training.methods.standard()}
  if cfg.method == "madry":
    specs["madry"] = training.methods.madry(
        cfg.eps, steps=cfg.train_steps, step_size=cfg.train_step_size)
  out = []
  for name, method in specs.items():
    fit, _ = runner.train(cfg, setup, name, runner.TrainSpec(method, {
        "eps": cfg.eps, "train_steps": cfg.train_steps,
        "train_step_size": cfg.train_step_size}))
    out.append((name, jax.device_get(fit.state.variables)))
  return out


def _stages(r: evaluation.AutoAttackResult) -> dict:
  return {n: float(a) for n, a in zip(r.attacks, r.accuracy)}


def _ours(cfg, apply_fn, variables, x, y, eps):
  """advjax's AutoAttack: timed cold and warm, masked, and over seeds."""
  kw = dict(norm=cfg.norm, eps=eps, version=cfg.version,
            steps=cfg.autoattack_steps, queries=cfg.autoattack_queries,
            batch_size=cfg.eval_batch_size,
            device_batch_size=cfg.device_batch_size, progress=cfg.progress)
  t0 = time.perf_counter()
  cold = evaluation.autoattack(apply_fn, variables, x, y,
                               key=jax.random.key(0), **kw)
  cold_s = time.perf_counter() - t0
  t0 = time.perf_counter()
  warm = evaluation.autoattack(apply_fn, variables, x, y,
                               key=jax.random.key(0), **kw)
  warm_s = time.perf_counter() - t0
  same = bool(np.array_equal(cold.robust, warm.robust) and
              np.array_equal(cold.x_adv, warm.x_adv))
  out = {"robust_accuracy": cold.robust_accuracy,
         "clean_accuracy": cold.clean_accuracy,
         "stages": _stages(cold), "table": cold.table(),
         "seconds_cold": cold_s, "seconds_warm": warm_s,
         "stage_seconds_cold": dict(zip(cold.attacks, cold.seconds.tolist())),
         "stage_seconds_warm": dict(zip(warm.attacks, warm.seconds.tolist())),
         "warm_identical": same,
         "max_distance": float(cold.distance.max()),
         "robust": cold.robust}
  if cfg.compare_masking:
    t0 = time.perf_counter()
    masked = evaluation.autoattack(apply_fn, variables, x, y,
                                   key=jax.random.key(0), survivors="mask",
                                   **kw)
    out["seconds_masked"] = time.perf_counter() - t0
    out["masked_identical"] = bool(np.array_equal(masked.robust, cold.robust)
                                   and np.array_equal(masked.x_adv,
                                                      cold.x_adv))
  seeds = [out["stages"]]
  for s in range(1, cfg.seeds):
    seeds.append(_stages(evaluation.autoattack(
        apply_fn, variables, x, y, key=jax.random.key(s), **kw)))
  out["stages_per_seed"] = seeds
  out["stages_mean"] = {k: float(np.mean([d[k] for d in seeds]))
                        for k in seeds[0]}
  return out


def _peers(cfg, params, image_shape, x, y, eps, num_classes):
  """The reference (seeds 0..seeds-1) and torchattacks on a replica."""
  reason = torch_peers.autoattack_unavailable_reason()
  if reason is not None or not cfg.peers:
    return {"skipped": reason or "peers=False"}
  import torch  # pylint: disable=import-outside-toplevel
  torch.set_num_threads(os.cpu_count() or 1)
  net = torch_peers.wong_cnn_from_flax(params, image_shape)
  runs = [torch_peers.reference_autoattack(
      net, x, y, eps=eps, norm=cfg.norm, version=cfg.version, seed=s,
      batch_size=cfg.eval_batch_size) for s in range(cfg.seeds)]
  out = {"reference": {
      "seconds": [r["seconds"] for r in runs],
      "stages_per_seed": [r["stages"] for r in runs],
      "stages_mean": {k: float(np.mean([r["stages"][k] for r in runs]))
                      for k in runs[0]["stages"]},
      "stage_seconds": runs[0]["stage_seconds"],
      "robust_accuracy": float(runs[0]["robust"].mean()),
      "robust": runs[0]["robust"]}}
  if cfg.norm in ("linf", "l2") and cfg.version == "standard":
    try:
      ta = torch_peers.torchattacks_autoattack(net, x, y, eps=eps,
                                               norm=cfg.norm,
                                               num_classes=num_classes)
      out["torchattacks"] = {"seconds": ta["seconds"],
                             "robust_accuracy": float(ta["robust"].mean())}
    except ImportError as e:
      out["torchattacks"] = {"skipped": str(e)}
  out["versions"] = {"torch": torch.__version__,
                     "threads": torch.get_num_threads()}
  return out


def _case(cfg, apply_fn, variables, x, y, eps, image_shape, num_classes,
          is_wong, pgd=True):
  res = {"eps": eps, "n": int(x.shape[0])}
  if pgd:
    ra = evaluation.robust_accuracy(
        apply_fn, variables, x, y,
        attack=functools.partial(gradient.pgd, steps=cfg.eval_steps,
                                 restarts=cfg.eval_restarts),
        eps=[eps], batch_size=cfg.eval_batch_size,
        device_batch_size=cfg.device_batch_size, key=jax.random.key(1))
    res["pgd"] = {"attack": f"PGD-{cfg.eval_steps} x {cfg.eval_restarts}",
                  "robust_accuracy": float(ra.accuracy[0]),
                  "robust": ra.correct[0]}
  res["advjax"] = _ours(cfg, apply_fn, variables, x, y, eps)
  if pgd:
    res["pgd_not_robust_under_aa"] = int(np.sum(
        res["pgd"]["robust"] & ~res["advjax"]["robust"]))
    res["aa_not_robust_under_pgd"] = int(np.sum(
        ~res["pgd"]["robust"] & res["advjax"]["robust"]))
  res["peers"] = (_peers(cfg, variables["params"], image_shape, x, y, eps,
                         num_classes) if is_wong else
                  {"skipped": "the PyTorch replica covers Wong's CNN only"})
  ref = res["peers"].get("reference")
  if ref is not None:
    res["speedup_cold"] = float(np.median(ref["seconds"]) /
                                res["advjax"]["seconds_cold"])
    res["speedup_warm"] = float(np.median(ref["seconds"]) /
                                res["advjax"]["seconds_warm"])
    res["per_example_agreement"] = float(np.mean(
        ref["robust"] == res["advjax"]["robust"]))
  return res


def _synthetic(cfg):
  """Wong's CNN at 28x28 with random weights, uniform images, labels = its
  predictions."""
  model = models.get_model("wong_mnist")
  variables = jax.device_get(models.init_model(model, jax.random.key(0),
                                               (28, 28, 1)))
  apply_fn = lambda v, z: model.apply(v, z, train=False)
  x = np.asarray(jax.random.uniform(jax.random.key(1),
                                    (cfg.synthetic_examples, 28, 28, 1)))
  y = np.asarray(apply_fn(variables, x).argmax(-1)).astype(np.int32)
  return _case(cfg, apply_fn, variables, x, y,
               cfg.synthetic_eps, (28, 28, 1), 10, True, pgd=False)


def run(config: AutoAttackConfig) -> dict:
  """Runs the benchmark; returns the results dict (also written to disk)."""
  cfg = resolve(config)
  setup = runner.setup(cfg)
  test = setup.test
  eps = float(cfg.eps)
  x, y = test.images, test.labels
  model_name = cfg.model
  if cfg.checkpoint:
    model_name = checkpoint.run_settings(cfg.checkpoint).get("model",
                                                             cfg.model)
  model = models.get_model(model_name, num_classes=test.num_classes)
  apply_fn = lambda v, z: model.apply(v, z, train=False)
  results = {"config": dataclasses.asdict(cfg), "model": model_name,
             "devices": [str(d) for d in jax.devices()],
             "platform": jax.default_backend(), "cases": {}}
  is_wong = model_name == "wong_mnist"
  for name, variables in _models(cfg, setup._replace(model=model)):
    diag = evaluation.diagnostics(
        apply_fn, variables, x, y, norm=cfg.norm, eps=eps,
        n=cfg.diagnostics_examples, steps=cfg.autoattack_steps,
        square_queries=min(1000, cfg.autoattack_queries),
        batch_size=cfg.eval_batch_size,
        device_batch_size=cfg.device_batch_size)
    case = _case(cfg, apply_fn, variables, x, y, eps, test.image_shape,
                 test.num_classes, is_wong)
    case["diagnostics"] = {
        **{k: (v.tolist() if isinstance(v, np.ndarray) else v)
           for k, v in diag._asdict().items()},
        "flags": list(diag.flags()), "table": diag.table()}
    results["cases"][name] = case
  if cfg.synthetic_examples:
    results["cases"]["synthetic-28x28"] = _synthetic(cfg)
  results["table"] = _table(cfg, results)
  os.makedirs(cfg.workdir, exist_ok=True)
  with open(os.path.join(cfg.workdir, "results.json"), "w") as f:
    json.dump(_jsonable(results), f, indent=1)
  with open(os.path.join(cfg.workdir, "results.md"), "w") as f:
    f.write(results["table"] + "\n")
  _plot(results, os.path.join(cfg.workdir, "autoattack.png"))
  return results


def _jsonable(tree):
  if isinstance(tree, dict):
    return {k: _jsonable(v) for k, v in tree.items()
            if k not in ("robust",)}
  if isinstance(tree, (list, tuple)):
    return [_jsonable(v) for v in tree]
  if isinstance(tree, np.ndarray):
    return tree.tolist()
  if isinstance(tree, (np.floating, np.integer, np.bool_)):
    return tree.item()
  return tree


def _pct(v) -> str:
  return "-" if v is None else f"{100 * v:.2f}"


def _table(cfg, results) -> str:
  rows = [f"# AutoAttack ({cfg.version}, {cfg.norm}) on {cfg.dataset}, "
          f"{results['model']}, {results['platform']} "
          f"({len(results['devices'])} devices)", ""]
  for name, c in results["cases"].items():
    ours = c["advjax"]
    ref = c["peers"].get("reference")
    rows += [f"## {name}: eps {c['eps']:.4g}, {c['n']} examples", "",
             "| stage | advjax (key 0) | advjax mean of "
             f"{cfg.seeds} keys | reference (seed 0) | reference mean of "
             f"{cfg.seeds} seeds | advjax s (warm) | reference s |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    prev_ref = 0.
    for stage, acc in ours["stages"].items():
      ref0 = ref["stages_per_seed"][0].get(stage) if ref else None
      refm = ref["stages_mean"].get(stage) if ref else None
      t_ref = None
      if ref and stage in ref["stage_seconds"]:
        t_ref = ref["stage_seconds"][stage] - prev_ref
        prev_ref = ref["stage_seconds"][stage]
      rows.append(
          f"| {stage} | {_pct(acc)} | {_pct(ours['stages_mean'][stage])} | "
          f"{_pct(ref0)} | {_pct(refm)} | "
          f"{ours['stage_seconds_warm'][stage]:.2f} | "
          f"{'-' if t_ref is None else f'{t_ref:.2f}'} |")
    rows += ["", f"- advjax: {ours['seconds_cold']:.1f} s first call "
             f"(compilation included), {ours['seconds_warm']:.1f} s second "
             f"call (results identical: {ours['warm_identical']})"]
    if "seconds_masked" in ours:
      rows.append(f"- survivors masked instead of compacted: "
                  f"{ours['seconds_masked']:.1f} s (results identical: "
                  f"{ours['masked_identical']})")
    if ref:
      rows.append(f"- reference (fra31/auto-attack, pyautoattack): "
                  f"{np.median(ref['seconds']):.1f} s median of "
                  f"{len(ref['seconds'])}; advjax is {c['speedup_warm']:.2f}x "
                  f"faster warm, {c['speedup_cold']:.2f}x cold; per-example "
                  f"robust bits agree on {100 * c['per_example_agreement']:.1f}"
                  " % of examples (seed 0 vs key 0)")
      ta = c["peers"].get("torchattacks", {})
      if "seconds" in ta:
        rows.append(f"- torchattacks.AutoAttack: "
                    f"{100 * ta['robust_accuracy']:.2f} % robust in "
                    f"{ta['seconds']:.1f} s")
    else:
      rows.append(f"- peers: {c['peers'].get('skipped')}")
    if "pgd" in c:
      rows.append(f"- {c['pgd']['attack']}: "
                  f"{100 * c['pgd']['robust_accuracy']:.2f} % robust; "
                  f"{c['pgd_not_robust_under_aa']} examples PGD calls robust "
                  f"are broken by AutoAttack, {c['aa_not_robust_under_pgd']} "
                  "the other way")
    if "diagnostics" in c:
      d = c["diagnostics"]
      rows += ["", f"Gradient-masking diagnostics (flags: "
               f"{', '.join(d['flags']) or 'none'}):", "", d["table"]]
    rows.append("")
  pub = PUBLISHED.get(cfg.dataset)
  if pub:
    rows += [f"Published AutoAttack results on {cfg.dataset} (RobustBench / "
             "fra31 README, clean / AA %):", ""] + [
                 f"- {n}: {c:.2f} / {a:.2f}" for n, c, a in pub]
  return "\n".join(rows)


def _plot(results, path):
  plt = report.pyplot()
  cases = list(results["cases"].items())
  fig, axes = plt.subplots(1, len(cases), figsize=(4.6 * len(cases), 3.6),
                           squeeze=False)
  for ax, (name, c) in zip(axes[0], cases):
    stages = list(c["advjax"]["stages"])
    xs = np.arange(len(stages))
    ax.plot(xs, [100 * c["advjax"]["stages_mean"][s] for s in stages], "o-",
            label="advjax")
    ref = c["peers"].get("reference")
    if ref:
      ax.plot(xs, [100 * ref["stages_mean"].get(s, np.nan) for s in stages],
              "s--", label="reference")
    if "pgd" in c:
      ax.axhline(100 * c["pgd"]["robust_accuracy"], color="gray", ls=":",
                 label=c["pgd"]["attack"])
    ax.set_xticks(xs, stages, rotation=30)
    ax.set_ylabel("robust accuracy after the stage (%)")
    ax.set_title(f"{name} (eps {c['eps']:.3g})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
