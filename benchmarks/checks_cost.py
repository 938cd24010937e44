"""What the run-time input checks cost: PGD-k and AutoAttack, with and without.

    python -m benchmarks.checks_cost      # ~7.5 min on 2 CPU cores

advjax checks eps, labels, NaN pixels and the box inside compiled programs
too (`advjax.checks`: under a user's `jax.jit` a traced bad value stops
with a clear message). A random Wong CNN and batch, labels its predictions:
PGD-k jitted on the batch, and `evaluation.autoattack` (standard) on its
first images, each compiled with the checks and without
(`checks.without_runtime_checks`), in alternating rounds
(`throughput.check_cost`).
"""
import dataclasses
from typing import Tuple

import jax
import jax.numpy as jnp

from advjax import evaluation, models, report, run
from advjax.attacks import gradient
from advjax.evaluation import throughput

TARGET = 1.02  # time with the checks / without, each call


@dataclasses.dataclass(frozen=True)
class ChecksCostConfig(run.TimingConfig):
  model: str = run.field("wong_mnist", "registered model name")
  image_shape: Tuple[int, ...] = run.field((28, 28, 1), "(H, W, C)", ge=1)
  batch: int = run.field(256, "PGD's images", ge=1)
  steps: int = run.field(10, "PGD iterations k (step 2.5 eps / k)", ge=1)
  eps: float = run.field(0.3, "PGD's Linf eps", ge=0)
  autoattack_examples: int = run.field(32, "AutoAttack's images", ge=1)
  autoattack_eps: float = run.field(0.02, "its Linf eps (some images "
                                    "survive every stage)", ge=0)
  autoattack_steps: int = run.field(100, "its APGD/FAB iterations", ge=1)
  autoattack_queries: int = run.field(5000, "its Square queries", ge=1)
  repeats: int = run.field(5, "timed calls per setting, each after a "
                           "warm-up call (median)", ge=1)


def measure(cfg):
  k_params, k_x, key = jax.random.split(jax.random.key(cfg.seed), 3)
  model = models.get_model(cfg.model, num_classes=10)
  variables = models.init_model(model, k_params, cfg.image_shape)
  x = jax.random.uniform(k_x, (cfg.batch, *cfg.image_shape), jnp.float32)
  apply_fn = models.apply_fn(model)
  y = jnp.argmax(jax.jit(apply_fn)(variables, x), -1)
  n = min(cfg.autoattack_examples, cfg.batch)
  aa = lambda: evaluation.autoattack(
      apply_fn, variables, x[:n], y[:n], eps=cfg.autoattack_eps, key=key,
      steps=cfg.autoattack_steps, queries=cfg.autoattack_queries)
  calls = {f"PGD-{cfg.steps}, batch {cfg.batch}": throughput.attack_call(
      model, variables, gradient.pgd, x, y, {"eps": cfg.eps, "key": key},
      steps=cfg.steps), f"AutoAttack, {n} images": aa}
  robust = float(aa().robust_accuracy)
  return {"config": dataclasses.asdict(cfg), "machine": throughput.machine(),
          "autoattack_robust_accuracy": robust,
          "calls": throughput.check_cost(calls, cfg.repeats, cfg.progress)}


def body(cfg, res):
  return [throughput.machine_line(res["machine"]), report.records_table(
      res["calls"], [("with checks (s)", "checked_s", ".4f"),
                     ("without (s)", "unchecked_s", ".4f"),
                     ("ratio", "ratio", ".3f")], first="call",
      caption=f"Medians of {cfg.repeats} alternating rounds, each setting "
      f"compiled anew; PGD at eps {cfg.eps:g}; AutoAttack (standard) at eps "
      f"{cfg.autoattack_eps:g}, robust accuracy "
      f"{report.cell(res['autoattack_robust_accuracy'], '%')}:")]


REPORT = report.Report(
    title=lambda cfg: f"advjax's run-time input checks: cost on {cfg.model}",
    body=body, claims=[report.Claim(
        "the run-time input checks cost under 2 %", lambda cfg, res: {
            name: report.Measured(c["ratio"], f"{c['checked_s']:.4f} vs "
                                  f"{c['unchecked_s']:.4f} s")
            for name, c in res["calls"].items()}, report.at_most(TARGET),
        quantity="time with / without the checks")])
BENCHMARK = run.Timing("checks_cost", ChecksCostConfig, measure, REPORT,
                       doc=__doc__, requires=[(
                           lambda c: len(c.image_shape) == 3,
                           "image_shape must be (H, W, C)")])

if __name__ == "__main__":
  run.timing_main(BENCHMARK)
