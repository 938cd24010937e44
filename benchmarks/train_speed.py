"""Training throughput of advjax: standard vs Madry PGD-k steps and epochs.

    python -m benchmarks.train_speed      # ~30 s on 2 CPU cores

1. `training.make_train_step` steps on one device (`throughput.StepCall`):
   images/s, time(madry) / time(standard) beside the ideal 1 + k; 2. on N
   simulated CPU devices (same process, shared cores: a check of the
   sharded step's loss, not scaling); 3. digits epochs of `training.fit`.
N CPU devices need `XLA_FLAGS=--xla_force_host_platform_device_count=N`
before JAX is imported: imported first, this module sets N = 8.
"""
import os
import sys

DEVICES = 8  # the default `devices`: simulated CPU devices of part 2
_FLAG = "--xla_force_host_platform_device_count"
if "jax" not in sys.modules and _FLAG not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                             + f" {_FLAG}={DEVICES}").strip()

import dataclasses  # noqa: E402
from typing import Tuple  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from advjax import data, models, report, run, sharding, training  # noqa: E402
from advjax.evaluation import throughput as tp  # noqa: E402

METHODS = ("standard", "madry")
LOSS_TOLERANCE = 1e-5  # |loss(N devices) - loss(1 device)|, same batch/state


@dataclasses.dataclass(frozen=True)
class TrainSpeedConfig(run.TimingConfig):
  model: str = run.field("wong_mnist", "the architecture, an "
                         "`advjax.models.get_model` name: "
                         + ", ".join(models.list_models()))
  dtype: str = run.field("float32", "compute dtype",
                         choices=("float32", "bfloat16"))
  image_shape: Tuple[int, ...] = run.field((28, 28, 1), "(H, W, C) of the "
                                           "random step batch", ge=1)
  num_classes: int = run.field(10, "logits K", ge=1)
  batch: int = run.field(256, "global batch of the timed steps", ge=1)
  pgd_steps: int = run.field(7, "PGD iterations k of the Madry step", ge=1)
  eps: float = run.field(0.3, "Linf radius of the Madry step", ge=0)
  learning_rate: float = run.field(1e-3, "Adam's learning rate", gt=0)
  devices: int = run.field(DEVICES, "simulated CPU devices N (0: skip)", ge=0)
  digits_epochs: int = run.field(3, "epochs per digits run (the first "
                                 "compiles)", ge=2)
  digits_batch: int = run.field(64, "batch size of the digits runs", ge=1)
  digits_limit: int = run.field(0, "first N digits images (0: all)", ge=0)


def _cpus():
  try:
    return len(jax.devices("cpu"))
  except RuntimeError:  # no CPU backend (JAX_PLATFORMS without cpu)
    return 0


REQUIRES = [
    (lambda c: len(c.image_shape) == 3, "image_shape must be (H, W, C)"),
    (lambda c: not c.devices or c.batch % c.devices == 0,
     "batch must be divisible by devices"),
    (lambda c: _cpus() >= c.devices, lambda c: (
        f"the multi-device part needs {c.devices} CPU devices but JAX has "
        f"{_cpus()} ({_FLAG} works only before JAX is imported); run\n  "
        f"XLA_FLAGS={_FLAG}={c.devices} python -m benchmarks.train_speed\n"
        "or pass --devices 0."))]


def _steps(cfg, devices):
  """(method, devices) -> a `StepCall` from the same state and batch."""
  model = models.get_model(cfg.model, num_classes=cfg.num_classes,
                           dtype=cfg.dtype)
  opt = optax.adam(cfg.learning_rate)
  state = jax.device_get(training.create_train_state(
      model, opt, jax.random.key(cfg.seed), cfg.image_shape))
  rng = np.random.default_rng(cfg.seed)
  x = rng.uniform(0., 1., (cfg.batch, *cfg.image_shape)).astype(np.float32)
  y = rng.integers(0, cfg.num_classes, cfg.batch).astype(np.int32)
  attack = training.default_attack("madry", steps=cfg.pgd_steps)
  fns = {"standard": training.make_train_step(model, opt, "standard"),
         "madry": training.make_train_step(model, opt, "madry", eps=cfg.eps,
                                           attack=attack)}
  return {(m, len(d)): tp.StepCall(fns[m], state, x, y, sharding.make_mesh(d))
          for m in METHODS for d in devices}


def _multi_device(cfg):
  n = cfg.devices
  steps = _steps(cfg, [jax.devices("cpu")[:1], jax.devices("cpu")[:n]])
  first = {k: tp.time_once(s) for k, s in steps.items()}  # checked below
  check = {m: tp.step_agreement(steps[m, 1], steps[m, n], (
      "1_device", f"{n}_devices")) for m in METHODS}
  [timings] = tp.time_groups([[(f"{m} {d} dev", s) for (m, d), s in
                               steps.items()]], cfg.repeats, "steps",
                             cfg.progress)
  return {"devices": n, "device_kind": jax.devices("cpu")[0].device_kind,
          "jax_device_count": _cpus(), "check": check, "loss_max_abs_diff": max(
              c["loss_abs_diff"] for c in check.values()),
          "loss_tolerance": LOSS_TOLERANCE, "rows": [
              {"method": m, "devices": d, **tp.timing_fields(
                  t, cfg.batch, per="step"), "first_call_s": first[m, d]}
              for (m, d), t in zip(steps, timings)]}


def _digits(cfg):
  train = data.load("digits", "train")
  xs, ys = train.images[:cfg.digits_limit or None], train.labels[
      :cfg.digits_limit or None]
  model = models.get_model(cfg.model, num_classes=train.num_classes,
                           dtype=cfg.dtype)
  kwargs = {"standard": {}, "madry": dict(eps=cfg.eps, attack=(
      training.default_attack("madry", steps=cfg.pgd_steps)))}
  per_epoch = len(xs) // cfg.digits_batch * cfg.digits_batch
  rows = {}
  for m in METHODS:
    res = training.fit(model, optax.adam(cfg.learning_rate), (xs, ys),
                       method=m, epochs=cfg.digits_epochs,
                       batch_size=cfg.digits_batch, seed=cfg.seed,
                       mesh=sharding.make_mesh(jax.devices()[:1]),
                       progress=False, **kwargs[m])
    rows[m] = {"method": m, **tp.epoch_fields(
        [h["seconds"] for h in res.history], per_epoch),
               "final_loss": res.history[-1]["loss"]}
  return {"train_images": len(xs), "images_per_epoch": per_epoch,
          "image_shape": list(xs.shape[1:]), "batch": cfg.digits_batch,
          "epochs": cfg.digits_epochs, "rows": rows, "madry_over_standard":
          rows["madry"]["epoch_s"] / rows["standard"]["epoch_s"]}


def measure(cfg):
  steps = _steps(cfg, [jax.devices()[:1]])
  [timings] = tp.time_groups([[(m, steps[m, 1]) for m in METHODS]],
                             cfg.repeats, "1-device steps", cfg.progress)
  rows = {m: {"method": m, "gradient_passes": 1 + (m == "madry") *
              cfg.pgd_steps, **tp.timing_fields(t, cfg.batch, per="step")}
          for m, t in zip(METHODS, timings)}
  return {"config": dataclasses.asdict(cfg), "machine": tp.machine(),
          "one_device": {"device": str(jax.devices()[0]), "rows": rows,
                         "madry_over_standard": rows["madry"]["ms_per_step"]
                         / rows["standard"]["ms_per_step"],
                         "ideal_ratio": 1 + cfg.pgd_steps},
          "multi_device": _multi_device(cfg) if cfg.devices else None,
          "digits": _digits(cfg)}


STEP = [("images/s", "images_per_s", ".0f"), ("ms/step", "ms_per_step", ".1f"),
        ("ms min-max", tp.span_cell, ""), ("first call s", "first_call_s",
                                           ".2f")]
EPOCH = [("compile + first epoch s", "compile_plus_epoch_s", ".2f"),
         ("epoch s (median of later)", "epoch_s", ".3f"), ("min-max", lambda r:
         f"{r['epoch_s_min']:.3f}-{r['epoch_s_max']:.3f}", ""),
         ("images/s", "images_per_s", ".0f"), ("final loss", "final_loss",
                                                ".3f")]
CHECK = [("loss 1 device", "loss_1_device", ".7f"), ("loss {n} devices",
         "loss_{n}_devices", ".7f"), ("abs diff", "loss_abs_diff", ".2e"),
         ("params max abs diff", "params_max_abs_diff", ".2e")]


def body(cfg, res):
  one, multi, dg, k = (res["one_device"], res["multi_device"], res["digits"],
                       cfg.pgd_steps)
  name = lambda rows: {f"madry (PGD-{k})" if m == "madry" else m: r
                       for m, r in rows.items()}
  out = [tp.machine_line(res["machine"]) + "\nprotocol: median of "
         f"{cfg.repeats} interleaved steps after a warm-up step, each ended "
         f"with block_until_ready; state donated; Adam lr {cfg.learning_rate}; "
         f"PGD eps {cfg.eps}, step 2.5 eps / {k}, random start",
         f"## 1. One device ({one['device']}): "
         f"{'x'.join(map(str, cfg.image_shape))}, batch {cfg.batch}, random "
         "data", report.records_table(name(one["rows"]), [(
             "gradient passes", "gradient_passes", "")] + STEP, first="method"),
         f"time(madry) / time(standard) = {one['madry_over_standard']:.2f} "
         f"(ideal 1 + {k} = {one['ideal_ratio']})"]
  if multi:
    n = multi["devices"]
    out += [f"## 2. {n} simulated CPU devices (same process, ('data',) mesh, "
            f"batch sharded {cfg.batch // n} per device; they share the "
            "host's cores: a check, not scaling)", report.rows_table(
                multi["rows"], [("method", "method", ""), ("devices",
                                                           "devices", "")]
                + STEP),
            report.records_table(multi["check"], [
                (h.format(n=n), p.format(n=n), u) for h, p, u in CHECK],
                                 first="method")]
  return out + [
      f"## 3. Digits epochs: training.fit, {dg['train_images']} images "
      f"{'x'.join(map(str, dg['image_shape']))}, batch {dg['batch']} "
      f"({dg['images_per_epoch']} images/epoch), {dg['epochs']} epochs, one "
      "device", report.records_table(name(dg["rows"]), EPOCH, first="method"),
      f"epoch time(madry) / time(standard) = {dg['madry_over_standard']:.2f} "
      f"(ideal {1 + k})", "" if res["machine"]["gpu_used"] else "- CIFAR-10 "
      "PreAct ResNet-18 PGD-7 epoch time: not measured (needs a GPU)."]


REPORT = report.Report(
    title=lambda cfg: f"advjax training throughput: {cfg.model}, standard vs "
    f"Madry PGD-{cfg.pgd_steps}", body=body, claims=[report.Claim(
        "the sharded step's first loss matches one device's", report.present(
            "multi_device.loss_max_abs_diff"), report.at_most(LOSS_TOLERANCE),
        quantity="max abs first-step loss difference, N devices vs 1")])
BENCHMARK = run.Timing("train_speed", TrainSpeedConfig, measure, REPORT,
                       doc=__doc__, requires=REQUIRES)

if __name__ == "__main__":
  run.timing_main(BENCHMARK)
