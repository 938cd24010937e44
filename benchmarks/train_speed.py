"""Training throughput of advjax: standard vs Madry PGD-7 steps and epochs.

    python -m benchmarks.train_speed      # ~30 s on 2 CPU cores

Measured (2026-12-02, 2-core CPU, jax 0.10.2, Wong's MNIST CNN;
benchmarks/results/train_speed): one device at 28x28x1 batch 256 (random
data) -- a standard step 16 ms (~15.7k images/s), a Madry PGD-7 step 89 ms
(~2.9k images/s), time(madry) / time(standard) 5.5 against the ideal 1 + 7
= 8 (the attack's passes need no weight gradients); 8 simulated CPU
devices (in the same process) run the sharded step with the same
first-step loss (difference 2.4e-7, within 1e-5); they share the 2 cores,
so their images/s is no scaling result; digits epochs (1408 8x8 images,
batch 64) ~0.04 s standard and ~0.11 s Madry after a first epoch with
compilation (~0.8 s / ~1.9 s). The CIFAR-10 PreAct ResNet-18 PGD-7 epoch
time needs a GPU; not measured on CPU.
Writes runs/train_speed/{results.json, results.md}. One flag per
`TrainSpeedConfig` field (`--batch 64`, `--devices 0`, `--no-progress`).

Devices: XLA simulates N CPU devices only when
`XLA_FLAGS=--xla_force_host_platform_device_count=N` is set before JAX is
imported. Imported before JAX (as `python -m benchmarks.train_speed` is),
this module sets N = 8, the default `--devices`, unless XLA_FLAGS already
sets a count. With fewer CPU devices than `--devices` (JAX imported first,
or more devices asked for) `run` stops before measuring and says to run
`XLA_FLAGS=--xla_force_host_platform_device_count=N python -m
benchmarks.train_speed` (`--devices 0` skips part 2).

What `run(TrainSpeedConfig())` measures:

1. One device. The training step of `advjax.training.make_train_step`,
   jitted with `advjax.sharding.jit_sharded` on a 1-device `('data',)` mesh
   (state replicated and donated), for method 'standard' and for method
   'madry' with PGD-k (`training.default_attack('madry', steps=k)`), on one
   batch of uniform random images and labels drawn with numpy (timing does
   not depend on the pixel values or the weights). Reported: images/s per
   step and the ratio time(madry) / time(standard), whose ideal is `1 + k`
   (k attack gradient passes plus the training pass, each costing as much
   as the training pass). The attack's passes differentiate with respect to
   the input only (no weight gradients, no optimizer update), so the
   measured ratio can be lower; the Madry step also runs one extra clean
   forward pass for its accuracy metric.
2. N simulated CPU devices, in the same process: the same step on an
   N-device `('data',)` mesh with the batch sharded: that it runs, its
   images/s next to the 1-device step, and the difference between its loss
   and the 1-device step's loss on the same batch and state. The simulated
   devices share the host's cores, so this checks correctness, not scaling
   (any change in images/s comes from how XLA:CPU keeps the cores busy).
3. Epochs on the embedded digits (1437 8x8 training images): seconds per
   epoch of `training.fit` (batch 64, last partial batch dropped, one
   device) for both methods; the first epoch includes compilation and is
   reported separately, the rest as their median.

Timing protocol (`advjax.evaluation.throughput.time_calls`, shared with
`benchmarks.speed`): one warm-up call per item, then `repeats` interleaved
timed calls per item, each ended with `jax.block_until_ready`; the median is
reported with the min and max.
"""
import os
import sys

DEVICES = 8  # the default `devices`: simulated CPU devices of part 2
_COUNT_FLAG = "--xla_force_host_platform_device_count"
# The flag only works before JAX is imported (see the module docstring).
if "jax" not in sys.modules and _COUNT_FLAG not in os.environ.get(
    "XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                             + f" {_COUNT_FLAG}={DEVICES}").strip()

import dataclasses  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from typing import Optional, Sequence, Tuple  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from tqdm import tqdm  # noqa: E402

from advjax.report import legacy
from advjax import data, models, report, sharding, training  # noqa: E402
from advjax.evaluation import throughput  # noqa: E402
from advjax.run import parse_config  # noqa: E402

__all__ = ["TrainSpeedConfig", "DEVICES", "LOSS_TOLERANCE", "METHODS", "run",
           "format_table", "main"]

LOSS_TOLERANCE = 1e-5  # |loss(N devices) - loss(1 device)|, same batch/state
METHODS = ("standard", "madry")
_CIFAR_NOTE = (
    "CIFAR-10 PreAct ResNet-18 PGD-7 epoch time: not measured; it needs a "
    "GPU (hours per epoch on a few CPU cores) and this run had none.")


@dataclasses.dataclass(frozen=True)
class TrainSpeedConfig:
  """Settings of the training-throughput benchmark.

  Attributes:
    model: registered model name (Wong's MNIST CNN by default).
    dtype: the model's compute dtype, 'float32' or 'bfloat16' (float32
      parameters, optimizer state and losses).
    image_shape: per-example `(H, W, C)` of the random step batch.
    num_classes: logits K.
    batch: global batch B of the timed steps (divisible by `devices`).
    pgd_steps: PGD iterations k of the Madry step (step 2.5 eps / k, random
      start).
    eps: Linf radius of the Madry step.
    learning_rate: Adam's learning rate (steps and digits epochs).
    repeats: timed calls per item after one warm-up call; median reported.
    devices: simulated CPU devices N of part 2 (0 skips part 2; more than
      8 need XLA_FLAGS, see the module docstring).
    digits_epochs: epochs of each digits run (>= 2: the first compiles).
    digits_batch: batch size of the digits runs.
    digits_limit: use only the first this many digits training images (0:
      all 1437).
    seed: seeds the weights, the random batch and the digits runs.
    out_dir: where results.json and results.md go.
    progress: show tqdm bars.
  """
  model: str = "wong_mnist"
  dtype: str = "float32"
  image_shape: Tuple[int, int, int] = (28, 28, 1)
  num_classes: int = 10
  batch: int = 256
  pgd_steps: int = 7
  eps: float = 0.3
  learning_rate: float = 1e-3
  repeats: int = 7
  devices: int = DEVICES
  digits_epochs: int = 3
  digits_batch: int = 64
  digits_limit: int = 0
  seed: int = 0
  out_dir: str = "runs/train_speed"
  progress: bool = True


def _check_config(config: TrainSpeedConfig) -> None:
  for name in ("batch", "pgd_steps", "repeats", "digits_batch", "num_classes"):
    if getattr(config, name) < 1:
      raise ValueError(f"TrainSpeedConfig.{name} must be >= 1, got "
                       f"{getattr(config, name)}.")
  if len(config.image_shape) != 3 or min(config.image_shape) < 1:
    raise ValueError("TrainSpeedConfig.image_shape must be (H, W, C), got "
                     f"{config.image_shape}.")
  if config.eps < 0:
    raise ValueError(f"TrainSpeedConfig.eps must be >= 0, got {config.eps}.")
  if config.devices < 0 or (config.devices and config.batch % config.devices):
    raise ValueError(
        f"TrainSpeedConfig.batch {config.batch} must be divisible by devices "
        f"{config.devices} (devices >= 0; 0 skips the multi-device part).")
  if config.digits_epochs < 2:
    raise ValueError("TrainSpeedConfig.digits_epochs must be >= 2 (the first "
                     f"epoch includes compilation), got "
                     f"{config.digits_epochs}.")
  if config.digits_limit < 0:
    raise ValueError("TrainSpeedConfig.digits_limit must be >= 0, got "
                     f"{config.digits_limit}.")


def _cpu_devices(n: int) -> list:
  """The first `n` CPU devices of part 2; a RuntimeError saying how to run
  the benchmark when JAX has fewer."""
  try:
    devices = jax.devices("cpu")
  except RuntimeError:  # no CPU backend (JAX_PLATFORMS without cpu)
    devices = []
  if len(devices) < n:
    raise RuntimeError(
        f"The multi-device part needs {n} CPU devices but JAX has "
        f"{len(devices)}: {_COUNT_FLAG} only works when set before JAX is "
        f"imported (benchmarks.train_speed sets it to {DEVICES} only when "
        "imported first). Run it as\n"
        f"  XLA_FLAGS={_COUNT_FLAG}={n} python -m benchmarks.train_speed\n"
        "or pass --devices 0 (devices=0) to skip that part.")
  return devices[:n]


def _setup(config: TrainSpeedConfig):
  """The model, optimizer, host-side initial state and random batch."""
  model = models.get_model(config.model, num_classes=config.num_classes,
                           dtype=config.dtype)
  optimizer = optax.adam(config.learning_rate)
  state = training.create_train_state(model, optimizer,
                                      jax.random.key(config.seed),
                                      config.image_shape)
  rng = np.random.default_rng(config.seed)
  x = rng.uniform(0., 1., (config.batch,) + tuple(config.image_shape))
  y = rng.integers(0, config.num_classes, config.batch)
  # Host copies: every mesh gets fresh buffers, so donation never reaches
  # another mesh's state.
  return (model, optimizer, jax.device_get(state), x.astype(np.float32),
          y.astype(np.int32))


def _step_fns(config, model, optimizer):
  """method -> pure train step."""
  return {
      "standard": training.make_train_step(model, optimizer, "standard"),
      "madry": training.make_train_step(
          model, optimizer, "madry", eps=config.eps,
          attack=training.default_attack("madry", steps=config.pgd_steps)),
  }


class _Runner:
  """A jitted, donating step on one mesh that carries its state forward."""

  def __init__(self, step, host_state, x, y, mesh):
    self._step = sharding.jit_sharded(step, mesh, num_batch_args=2)
    self._state = sharding.replicate(host_state, mesh)
    self._x, self._y = sharding.shard_batch((x, y), mesh)
    self.metrics = None

  def __call__(self):
    self._state, self.metrics = self._step(self._state, self._x, self._y)
    jax.block_until_ready((self._state, self.metrics))

  @property
  def params(self):
    return jax.device_get(self._state.params)


def _time_items(names, calls, repeats, desc, progress):
  """`throughput.time_calls` under a tqdm bar named after the items."""
  with tqdm(total=len(calls) * (repeats + 1), desc=desc,
            disable=not progress) as bar:

    def on_call(i):
      bar.set_postfix_str(names[i], refresh=False)
      bar.update()

    return throughput.time_calls(calls, repeats, on_call)


def _step_fields(config, t):
  return throughput.timing_fields(t, config.batch, per="step")


def _one_device(config: TrainSpeedConfig) -> dict:
  """Part 1: step throughput of each method on one device."""
  model, optimizer, host_state, x, y = _setup(config)
  mesh = sharding.make_mesh(jax.devices()[:1])
  steps = _step_fns(config, model, optimizer)
  runners = [_Runner(steps[m], host_state, x, y, mesh) for m in METHODS]
  timings = _time_items(list(METHODS), runners, config.repeats,
                        "1-device steps", config.progress)
  rows = {m: {"method": m, "gradient_passes": 1 if m == "standard"
              else 1 + config.pgd_steps, **_step_fields(config, t)}
          for m, t in zip(METHODS, timings)}
  return {"device": str(mesh.devices.flat[0]), "rows": rows,
          "madry_over_standard": (rows["madry"]["ms_per_step"]
                                  / rows["standard"]["ms_per_step"]),
          "ideal_ratio": 1 + config.pgd_steps}


def _multi_device(config: TrainSpeedConfig, devices: list) -> dict:
  """Part 2: the step on 1 and on `len(devices)` CPU devices, same process."""
  n = len(devices)
  model, optimizer, host_state, x, y = _setup(config)
  meshes = {1: sharding.make_mesh(devices[:1]),
            n: sharding.make_mesh(devices)}
  steps = _step_fns(config, model, optimizer)
  runners = {(m, d): _Runner(steps[m], host_state, x, y, mesh)
             for m in METHODS for d, mesh in meshes.items()}
  keys = list(runners)
  check, first = {}, {}
  for m in METHODS:  # the first step of each runner: same batch, same state
    for d in meshes:
      t0 = time.perf_counter()
      runners[(m, d)]()
      first[(m, d)] = time.perf_counter() - t0
    loss_1 = float(runners[(m, 1)].metrics["loss"])
    loss_n = float(runners[(m, n)].metrics["loss"])
    param_diff = max(float(np.max(np.abs(a - b))) for a, b in zip(
        jax.tree.leaves(runners[(m, 1)].params),
        jax.tree.leaves(runners[(m, n)].params)))
    check[m] = {"loss_1_device": loss_1, f"loss_{n}_devices": loss_n,
                "loss_abs_diff": abs(loss_n - loss_1),
                "params_max_abs_diff": param_diff}
  timings = _time_items([f"{m} {d} dev" for m, d in keys],
                        [runners[k] for k in keys], config.repeats,
                        f"{n}-device steps", config.progress)
  # The compiling call is the checked first step, not time_calls' warm-up.
  rows = [{"method": m, "devices": d, **_step_fields(config, t),
           "first_call_s": first[(m, d)]}
          for (m, d), t in zip(keys, timings)]
  return {"devices": n, "device_kind": devices[0].device_kind,
          "jax_device_count": len(jax.devices("cpu")), "check": check,
          "loss_max_abs_diff": max(c["loss_abs_diff"] for c in check.values()),
          "loss_tolerance": LOSS_TOLERANCE, "rows": rows}


def _digits(config: TrainSpeedConfig) -> dict:
  """Part 3: seconds per epoch of `training.fit` on the digits."""
  train = data.load("digits", "train")
  images, labels = train.images, train.labels
  if config.digits_limit:
    images, labels = images[:config.digits_limit], labels[:config.digits_limit]
  model = models.get_model(config.model, num_classes=train.num_classes,
                           dtype=config.dtype)
  mesh = sharding.make_mesh(jax.devices()[:1])
  kwargs = {"standard": {}, "madry": dict(
      eps=config.eps,
      attack=training.default_attack("madry", steps=config.pgd_steps))}
  per_epoch = (len(images) // config.digits_batch) * config.digits_batch
  rows = {}
  for m in tqdm(METHODS, desc="digits epochs", disable=not config.progress):
    res = training.fit(model, optax.adam(config.learning_rate),
                       (images, labels), method=m,
                       epochs=config.digits_epochs,
                       batch_size=config.digits_batch, seed=config.seed,
                       mesh=mesh, progress=False, **kwargs[m])
    seconds = [h["seconds"] for h in res.history]
    steady = seconds[1:]
    epoch_s = statistics.median(steady)
    rows[m] = {"method": m, "compile_plus_epoch_s": seconds[0],
               "epoch_s": epoch_s, "epoch_s_min": min(steady),
               "epoch_s_max": max(steady), "epoch_s_all": seconds,
               "images_per_s": per_epoch / epoch_s,
               "final_loss": res.history[-1]["loss"]}
  return {"train_images": int(len(images)),
          "images_per_epoch": per_epoch,
          "image_shape": list(images.shape[1:]), "batch": config.digits_batch,
          "epochs": config.digits_epochs, "rows": rows,
          "madry_over_standard": (rows["madry"]["epoch_s"]
                                  / rows["standard"]["epoch_s"])}


def run(config: TrainSpeedConfig) -> dict:
  """Runs the training-throughput benchmark; writes results.json/.md.

  Args:
    config: a `TrainSpeedConfig`.

  Returns:
    The results: 'config', 'machine', 'one_device' (per-method rows with
    images_per_s, ms_per_step, ms_min, ms_max, ms_all, first_call_s, and
    'madry_over_standard' beside 'ideal_ratio' = 1 + pgd_steps),
    'multi_device' (None when `devices` is 0; else rows per method and
    device count, and 'check' with the 1- vs N-device loss difference per
    method), 'digits' (per-method compile_plus_epoch_s, epoch_s median of
    the later epochs with min/max, images_per_s), 'notes', 'seconds' and
    'table' (markdown).

  Raises:
    ValueError: for a bad config.
    RuntimeError: if JAX has fewer than `devices` CPU devices (checked
      before anything is measured; the message says how to run it).
  """
  _check_config(config)
  devices = _cpu_devices(config.devices) if config.devices else None
  t_start = time.time()
  results = {"config": dataclasses.asdict(config),
             "machine": throughput.machine()}
  results["one_device"] = _one_device(config)
  results["multi_device"] = (_multi_device(config, devices) if devices
                             else None)
  results["digits"] = _digits(config)
  notes = [
      "Steps (parts 1-2) run on uniform random numpy images/labels of the "
      "configured shape; timing does not depend on their values.",
      "The multi-device part runs on CPU devices simulated with "
      "--xla_force_host_platform_device_count; they share the host's cores, "
      "so it checks that the sharded step runs and agrees, not multi-device "
      "scaling.",
  ]
  if not results["machine"]["gpu_used"]:
    notes.append(_CIFAR_NOTE)
  results["notes"] = notes
  results["seconds"] = time.time() - t_start
  table = format_table(results)
  report.write(config.out_dir, results, legacy.Report(table))
  results["table"] = table
  return results


def _step_cells(r):
  return (f"{r['images_per_s']:.0f}", f"{r['ms_per_step']:.1f}",
          f"{r['ms_min']:.1f}-{r['ms_max']:.1f}", f"{r['first_call_s']:.2f}")


def format_table(results: dict) -> str:
  """The markdown report: machine, three tables and notes.

  Args:
    results: the dict `run` returns (without 'table').

  Returns:
    Markdown text.
  """
  cfg, mach = results["config"], results["machine"]
  shape = "x".join(str(d) for d in cfg["image_shape"])
  k = cfg["pgd_steps"]
  name = {"standard": "standard", "madry": f"madry (PGD-{k})"}.get
  one = results["one_device"]
  lines = [
      f"# advjax training throughput: {cfg['model']}, standard vs Madry "
      f"PGD-{k}",
      "",
      f"machine: {mach['device_kind']} ({mach['platform']}), "
      f"{mach['cpu_count']} CPUs, {mach['jax_devices']} JAX device(s), "
      f"jax {mach['jax']}, python {mach['python']}; GPU used: "
      f"{'yes' if mach['gpu_used'] else 'no'}",
      f"protocol: median of {cfg['repeats']} interleaved steps after a "
      "warm-up step, each ended with block_until_ready; state donated; "
      f"Adam lr {cfg['learning_rate']}; PGD eps {cfg['eps']}, step 2.5 eps / "
      f"{k}, random start",
      "",
      f"## 1. One device ({one['device']}): {shape}, batch {cfg['batch']}, "
      "random data",
      "",
      report.table(("method", "gradient passes", "images/s", "ms/step",
                    "ms min-max", "first call s"),
                   [(name(m), one["rows"][m]["gradient_passes"],
                     *_step_cells(one["rows"][m])) for m in METHODS]),
      "", f"time(madry) / time(standard) = "
      f"{one['madry_over_standard']:.2f} (ideal 1 + {k} = "
      f"{one['ideal_ratio']} if every pass cost a training pass; the "
      "attack's passes need no weight gradients (can be cheaper), the "
      "madry step adds one clean forward for its accuracy metric)"]
  multi = results["multi_device"]
  if multi is not None:
    n = multi["devices"]
    check = [(m, f"{c['loss_1_device']:.7f}", f"{c[f'loss_{n}_devices']:.7f}",
              f"{c['loss_abs_diff']:.2e}", f"{c['params_max_abs_diff']:.2e}")
             for m, c in ((m, multi["check"][m]) for m in METHODS)]
    ok = multi["loss_max_abs_diff"] <= multi["loss_tolerance"]
    lines += [
        "",
        f"## 2. {n} simulated CPU devices (same process, ('data',) mesh, "
        f"batch sharded {cfg['batch'] // n} per device)",
        "",
        report.table(("method", "devices", "images/s", "ms/step",
                      "ms min-max", "first call s"),
                     [(r["method"], r["devices"], *_step_cells(r))
                      for r in multi["rows"]]),
        "",
        report.table(("method", "loss 1 device", f"loss {n} devices",
                      "abs diff", "params max abs diff"), check),
        "", f"first-step loss, {n} devices vs 1, same batch and state: "
        f"max abs diff {multi['loss_max_abs_diff']:.2e} "
        f"({'within' if ok else 'OUTSIDE'} "
        f"{multi['loss_tolerance']:.0e}). The {n} devices are "
        f"simulated on the same {mach['cpu_count']} cores: a "
        "difference in images/s shows how XLA:CPU keeps the cores busy "
        "(one 1-device program may not), not added hardware."]
  dg = results["digits"]
  lines += [
      "",
      f"## 3. Digits epochs: training.fit, {dg['train_images']} images "
      f"{'x'.join(str(d) for d in dg['image_shape'])}, batch {dg['batch']} "
      f"({dg['images_per_epoch']} images/epoch), {dg['epochs']} epochs, "
      "one device",
      "",
      report.table(
          ("method", "compile + first epoch s", "epoch s (median of later)",
           "min-max", "images/s", "final loss"),
          [(name(m), f"{r['compile_plus_epoch_s']:.2f}", f"{r['epoch_s']:.3f}",
            f"{r['epoch_s_min']:.3f}-{r['epoch_s_max']:.3f}",
            f"{r['images_per_s']:.0f}", f"{r['final_loss']:.3f}")
           for m, r in ((m, dg["rows"][m]) for m in METHODS)]),
      "", f"epoch time(madry) / time(standard) = "
      f"{dg['madry_over_standard']:.2f} (ideal {1 + k})", ""]
  lines += [f"- {note}" for note in results["notes"]]
  return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> dict:
  """`python -m benchmarks.train_speed [--field value ...]`: one flag per
  `TrainSpeedConfig` field; runs the benchmark and prints its report."""
  config = parse_config(TrainSpeedConfig, argv,
                        prog="python -m benchmarks.train_speed", doc=__doc__)
  try:
    _cpu_devices(config.devices)
  except RuntimeError as e:
    raise SystemExit(f"error: {e}") from None
  results = run(config)
  print(results["table"])
  return results


if __name__ == "__main__":
  main()
