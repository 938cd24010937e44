"""Tests for benchmarks.checks_cost and throughput.check_cost (tiny sizes)."""
import math

import jax
import jax.numpy as jnp
import pytest

from advjax import checks, run
from advjax.evaluation import throughput
from benchmarks import checks_cost


def test_check_cost_times_each_call_with_and_without_the_checks():
  """The unchecked setting really traces without the checks: a program
  traced inside `without_runtime_checks` lets a bad eps through, the
  checked one stops it; both settings are timed per round."""
  seen = []

  def call():
    f = jax.jit(lambda x, e: checks.runtime_check(x * e, e < 0, "e >= 0"))
    seen.append(checks._RUNTIME_CHECKS[0])  # pylint: disable=protected-access
    return jax.block_until_ready(f(jnp.ones(3), -1.)) if not seen[-1] else 0

  out = throughput.check_cost({"call": call}, rounds=2)["call"]
  assert seen == [True, True, False, False] * 2  # warm-up + timed, each
  assert len(out["checked_times"]) == len(out["unchecked_times"]) == 2
  assert math.isfinite(out["ratio"]) and out["ratio"] > 0
  with checks.without_runtime_checks():
    jax.block_until_ready(jax.jit(lambda e: checks.runtime_check(
        e, e < 0, "e >= 0"))(-1.))
  with pytest.raises(Exception, match="e >= 0"):
    jax.block_until_ready(jax.jit(lambda e: checks.runtime_check(
        e, e < 0, "e >= 0"))(-1.))


@pytest.mark.slow  # an end-to-end benchmark run (tiny); CI runs it (README)
def test_checks_cost_benchmark_runs_and_reports(tmp_path):
  cfg = checks_cost.ChecksCostConfig(
      workdir=str(tmp_path), image_shape=(8, 8, 1), batch=8, steps=2,
      autoattack_examples=4, autoattack_steps=2, autoattack_queries=4,
      repeats=1, progress=False)
  res = run.run_timing(checks_cost.BENCHMARK, cfg)
  assert set(res["calls"]) == {"PGD-2, batch 8", "AutoAttack, 4 images"}
  for c in res["calls"].values():
    assert c["checked_s"] > 0 and c["unchecked_s"] > 0
  assert (tmp_path / "results.md").read_text().count("input checks") >= 2
