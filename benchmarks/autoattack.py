"""AutoAttack in JAX: per-stage robust accuracy and time, diagnostics, peers.

    python -m benchmarks.autoattack --dataset digits   # ~6 minutes on 2 CPU cores

Trains (or reloads) a standard and a Madry PGD-trained model with
`benchmarks.madry`'s recipe (digits: Wong's CNN, eps 0.2), or evaluates the
model of an advjax training workdir (--checkpoint DIR), and reports for each
the robust accuracy after every AutoAttack stage, the time per stage, PGD
beside it, the gradient-masking diagnostics, and, with the peers installed
(pip install 'advjax[peers]' && pip install --no-deps pyautoattack
torchattacks), the reference AutoAttack and torchattacks' AutoAttack on the
same weights with the speed ratio; plus a synthetic 28x28 parity case.
Expected on digits: AutoAttack below PGD-20 x 4, the same robust accuracy as
the reference within a seed's spread, about 3x its speed once compiled.
Writes results.json, results.md and autoattack.png to --workdir (default
runs/autoattack-<dataset>).

A released PyTorch model (a RobustBench download; nothing is downloaded
here) is evaluated with its architecture from `advjax.zoo`:

    python -m benchmarks.autoattack --zoo-arch Wong2020Fast \
        --checkpoint models/cifar10/Linf/Wong2020Fast.pt --dataset cifar10 \
        --data-dir DIR --norm linf --eps 8/255

(`--zoo-arch` a RobustBench entry of `zoo.robustbench.ENTRIES`, with its
published numbers in the report, or an architecture with `--zoo-kwargs
depth=28,widen_factor=10`).

On a CPU-only host the process is split into one XLA device per core (as
`XLA_FLAGS=--xla_force_host_platform_device_count=<cores>`, unless XLA_FLAGS
already sets it), so the evaluation runs on every core the way it runs on
every GPU of a multi-GPU host; results do not depend on it.
"""
import os
import sys

if "xla_force_host_platform_device_count" not in os.environ.get(
    "XLA_FLAGS", "") and "--no-split-cpu" not in sys.argv:
  os.environ["XLA_FLAGS"] = (
      os.environ.get("XLA_FLAGS", "") +
      f" --xla_force_host_platform_device_count={os.cpu_count() or 1}"
  ).strip()

import ast  # noqa: E402
import dataclasses  # noqa: E402
import functools  # noqa: E402
import time  # noqa: E402
from typing import Optional  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402

from advjax.report import legacy
from advjax import checkpoint, data, evaluation, models, report  # noqa: E402
from advjax import run  # noqa: E402
from advjax import zoo  # noqa: E402
from advjax import training  # noqa: E402
from advjax.attacks import gradient  # noqa: E402
from benchmarks.peers import torch_peers  # noqa: E402

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
class AutoAttackConfig(run.Config):
  """Settings; None fields take the dataset's preset (`PRESETS`: the
  training of `benchmarks.madry`).

  Attributes (beyond `advjax.run.Config`'s training ones):
    method: 'madry' (PGD training) or 'standard' (the standard model only).
    eps: the radius of training and evaluation.
    train_steps, train_step_size: the PGD of Madry training.
    eval_steps, eval_restarts: the PGD evaluation beside AutoAttack.
    autoattack_steps, autoattack_queries: APGD/FAB iterations, Square's
      queries.
    norm, version: AutoAttack's threat model and version.
    checkpoint: a `training.fit` workdir whose model is evaluated instead of
      training the two models (its run.json names the model, or `model`);
      with `zoo_arch`, a PyTorch checkpoint file (a RobustBench download).
    zoo_arch: evaluate the PyTorch checkpoint `checkpoint` converted by
      `advjax.zoo.load_torch`: an architecture name (`WideResNet`,
      `PreActResNet18`, `DMWideResNet`, `resnet50`, ...; keywords in
      `zoo_kwargs`), or a RobustBench entry of `zoo.robustbench.ENTRIES`
      (`Wong2020Fast`, `Carmon2019Unlabeled`, ...: its architecture,
      keywords, eps and published numbers filled in).
    zoo_kwargs: the architecture's keywords, comma-separated `key=value`
      (`depth=28,widen_factor=10,sub_block1=True`; Python literals), added
      to an entry's.
    eval_batch_size: examples per evaluation step.
    device_batch_size: examples per device per call (the compiled shape).
    seeds: AutoAttack runs with keys (and reference seeds) 0..seeds-1.
    peers: run the reference and torchattacks when installed.
    compare_masking: also time survivors='mask'.
    diagnostics_examples: examples the masking diagnostics look at.
    synthetic_examples, synthetic_eps: the 28x28 parity case (0: skip).
    split_cpu: on a CPU-only host, one XLA device per core (read before
      JAX starts; --no-split-cpu keeps one).
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
  zoo_arch: Optional[str] = None
  zoo_kwargs: str = ""
  eval_batch_size: int = 512
  device_batch_size: Optional[int] = None
  seeds: int = 3
  peers: bool = True
  compare_masking: bool = True
  diagnostics_examples: int = 256
  synthetic_examples: int = 256
  synthetic_eps: float = 0.005
  split_cpu: bool = True


# The image sets of varying size have no training recipe here: only a
# converted checkpoint is evaluated on them (--zoo-arch), on the validation
# split (RobustBench's ImageNet threat model: Linf 4/255).
_EVAL_ONLY = dict(model=None, eps=4 / 255, eval_steps=10, eval_restarts=1,
                  epochs=0, batch_size=1, optimizer="sgd", learning_rate=0.,
                  weight_decay=0., schedule="constant")
IMAGE_SETS = ("imagenet2012", "imagenette", "folder")
PRESETS = {**training.recipes.MADRY, **{d: _EVAL_ONLY for d in IMAGE_SETS}}


def _refine(cfg, preset):
  if cfg.norm not in ("linf", "l2"):
    raise ValueError(f"norm must be 'linf' or 'l2', got {cfg.norm!r}.")
  if cfg.seeds < 1:
    raise ValueError(f"seeds must be >= 1, got {cfg.seeds}.")
  if cfg.method not in ("madry", "standard"):
    raise ValueError(f"method must be 'madry' or 'standard', got "
                     f"{cfg.method!r}.")
  if cfg.dataset in IMAGE_SETS and not cfg.zoo_arch:
    raise ValueError(f"On {cfg.dataset}, benchmarks.autoattack evaluates a "
                     "converted checkpoint only: pass --zoo-arch and "
                     "--checkpoint.")
  if cfg.zoo_arch:
    if not cfg.checkpoint:
      raise ValueError("--zoo-arch needs --checkpoint FILE, the PyTorch "
                       "checkpoint to evaluate.")
    _zoo_spec(cfg)  # Validates the name and keywords before any work.
    entry = zoo.robustbench.ENTRIES.get(cfg.zoo_arch)
    # Only the test split is evaluated: leave the training split on disk.
    preset = {**preset, "lazy_data": True}
    if entry is not None:
      preset["eps"] = entry.eps
    return preset
  if cfg.checkpoint and cfg.model is None:  # the workdir names its model
    preset = {**preset, "model": checkpoint.run_settings(cfg.checkpoint).get(
        "model", preset["model"])}
  return preset


def _zoo_spec(cfg) -> run.LoadTorch:
  """The `LoadTorch` of `--zoo-arch` (an architecture or a RobustBench
  entry) and `--zoo-kwargs`."""
  kwargs = {}
  for item in filter(None, (p.strip() for p in cfg.zoo_kwargs.split(","))):
    key, sep, value = item.partition("=")
    if not sep:
      raise ValueError(f"--zoo-kwargs takes key=value pairs separated by "
                       f"commas; got {item!r}.")
    try:
      kwargs[key.strip()] = ast.literal_eval(value.strip())
    except (ValueError, SyntaxError):
      kwargs[key.strip()] = value.strip()  # a bare word: a string
  entry = zoo.robustbench.ENTRIES.get(cfg.zoo_arch)
  if entry is not None:
    return run.LoadTorch(entry.arch, cfg.checkpoint,
                         {**entry.kwargs, **kwargs})
  zoo.build(cfg.zoo_arch, **kwargs)  # Unknown names and keywords fail here.
  return run.LoadTorch(cfg.zoo_arch, cfg.checkpoint, kwargs)


def load_data(cfg):
  """The validation split of an image set (`eval_limit` images, decoded as
  RobustBench's 'Res256Crop224'); None (the runner's train and test) for
  the other datasets."""
  if cfg.dataset not in IMAGE_SETS:
    return None
  test = data.load(cfg.dataset, "validation", data_dir=cfg.data_dir,
                   limit=cfg.eval_limit or None, lazy=False)
  return None, test


def models_to_evaluate(cfg, env):
  """The checkpoint's model, or a standard and a Madry-trained model."""
  del env
  if cfg.zoo_arch:
    return {cfg.zoo_arch: _zoo_spec(cfg)}
  if cfg.checkpoint:
    return {"checkpoint": run.Load(cfg.checkpoint)}
  settings = {k: getattr(cfg, k) for k in ("eps", "train_steps",
                                           "train_step_size")}
  specs = {"standard": run.TrainSpec(training.methods.standard())}
  if cfg.method == "madry":
    specs["madry"] = run.TrainSpec(training.methods.madry(
        cfg.eps, steps=cfg.train_steps, step_size=cfg.train_step_size),
                                   settings)
  return specs


def evaluate(cfg, env, name, variables):
  """Diagnostics, PGD, advjax's AutoAttack and the peers on one model."""
  del name
  x, y, eps = env.test.images, env.test.labels, float(cfg.eps)
  diag = evaluation.diagnostics(
      env.apply_fn, variables, x, y, norm=cfg.norm, eps=eps,
      n=cfg.diagnostics_examples, steps=cfg.autoattack_steps,
      square_queries=min(1000, cfg.autoattack_queries),
      batch_size=cfg.eval_batch_size, device_batch_size=cfg.device_batch_size)
  case = _case(cfg, env.apply_fn, variables, x, y, eps, env.test.image_shape,
               env.test.num_classes, cfg.model == "wong_mnist")
  case["diagnostics"] = {**diag._asdict(), "flags": list(diag.flags()),
                         "table": diag.table()}
  return case


def extra(cfg, env, trained):
  del env, trained
  if not cfg.synthetic_examples:
    return {}
  return {"synthetic-28x28": _synthetic(cfg)}


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


def _cases(results):
  return {**results["models"], **results.get("extra", {})}


def make_report(cfg, results) -> legacy.Report:
  return legacy.Report(
      _table(cfg, results),
      {"autoattack.png": functools.partial(_plot, results)},
      claims(results))


def claims(results):
  """AutoAttack's own claims, checked on the trained models."""
  out = []
  for name, c in results["models"].items():
    ours = c["advjax"]
    if "pgd" in c:
      out.append(legacy.Claim(
          f"{name}: AutoAttack is at least as strong as PGD, per example",
          c["aa_not_robust_under_pgd"] == 0,
          f"{report.percent(ours['robust_accuracy'], 2)} % vs "
          f"{report.percent(c['pgd']['robust_accuracy'], 2)} %, "
          f"{c['pgd_not_robust_under_aa']} PGD-robust examples broken"))
    ref = c["peers"].get("reference")
    if ref:
      gap = abs(ours["stages_mean"]["square"] - ref["stages_mean"]["square"])
      out.append(legacy.Claim(
          f"{name}: the same robust accuracy as the reference within 0.5 "
          "points (seed means)", gap <= 0.005 + 1e-9,
          f"{100 * gap:.2f} points"))
  return out


def _table(cfg, results) -> str:
  rows = [f"# AutoAttack ({cfg.version}, {cfg.norm}) on {cfg.dataset}, "
          f"{cfg.zoo_arch or cfg.model}, {jax.default_backend()} "
          f"({len(results['devices'])} devices)", ""]
  for name, c in _cases(results).items():
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
          f"| {stage} | {report.percent(acc, 2)} | "
          f"{report.percent(ours['stages_mean'][stage], 2)} | "
          f"{report.percent(ref0, 2)} | {report.percent(refm, 2)} | "
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
  entry = zoo.robustbench.ENTRIES.get(cfg.zoo_arch or "")
  if entry is not None:
    c = results["models"][cfg.zoo_arch]["advjax"]
    rows += [f"RobustBench's numbers for {cfg.zoo_arch} ({entry.arch}, Linf "
             f"{entry.eps:.4g}):", "",
             "| | clean % | AutoAttack % |", "|---|---:|---:|",
             f"| published (RobustBench leaderboard) | {entry.clean:.2f} | "
             f"{entry.autoattack:.2f} |",
             f"| advjax, these {results['models'][cfg.zoo_arch]['n']} test "
             f"examples | {report.percent(c['clean_accuracy'], 2)} | "
             f"{report.percent(c['robust_accuracy'], 2)} |", ""]
  pub = PUBLISHED.get(cfg.dataset)
  if pub:
    rows += [f"Published AutoAttack results on {cfg.dataset} (RobustBench / "
             "fra31 README, clean / AA %):", ""] + [
                 f"- {n}: {c:.2f} / {a:.2f}" for n, c, a in pub]
  return "\n".join(rows)


def _plot(results, path):
  plt = report.pyplot()
  cases = list(_cases(results).items())
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


BENCHMARK = run.Benchmark("autoattack", AutoAttackConfig, PRESETS,
                          models_to_evaluate, evaluate, make_report,
                          doc=__doc__, refine=_refine, extra=extra,
                          data=load_data)

if __name__ == "__main__":
  run.main(BENCHMARK)
