"""Wall-clock timing shared by the speed benchmarks.

Protocol: one warm-up call per item (compilation), then `repeats` rounds in
which every item is called once, in order, each call run to completion
(`jax.block_until_ready` inside the call); medians are reported with the
min and max so noise is visible, and interleaving makes a change in machine
load hit all items alike.
"""
import os
import platform
import statistics
import time
from typing import Callable, NamedTuple, Optional, Sequence, Tuple

import jax
import jaxlib

__all__ = ["Timing", "time_calls", "timing_fields", "machine"]


class Timing(NamedTuple):
  """Wall-clock times of one measured item, in seconds.

  Attributes:
    median: median of the timed calls.
    min: fastest timed call.
    max: slowest timed call.
    first_call: the warm-up call (includes compilation for JAX).
    times: every timed call, in order.
  """
  median: float
  min: float
  max: float
  first_call: float
  times: Tuple[float, ...]


def _timed(call: Callable[[], object]) -> float:
  t0 = time.perf_counter()
  call()
  return time.perf_counter() - t0


def time_calls(calls: Sequence[Callable[[], object]], repeats: int,
               on_call: Optional[Callable[[int], None]] = None
               ) -> list[Timing]:
  """Times each call once as a warm-up, then `repeats` interleaved rounds.

  Every round calls each function once, in order, so a change in machine
  load during the measurement is shared by all of them.

  Args:
    calls: functions that run their work to completion (for JAX they must
      end with `jax.block_until_ready`).
    repeats: timed calls per function, >= 1.
    on_call: called with the index of each function before it runs (for a
      progress bar).

  Returns:
    One `Timing` per call, in order.
  """
  on_call = on_call or (lambda i: None)
  first = []
  for i, call in enumerate(calls):
    on_call(i)
    first.append(_timed(call))
  times = [[] for _ in calls]
  for _ in range(repeats):
    for i, call in enumerate(calls):
      on_call(i)
      times[i].append(_timed(call))
  return [Timing(statistics.median(t), min(t), max(t), f, tuple(t))
          for t, f in zip(times, first)]


def timing_fields(t: Timing, batch: int, *, per: str = "batch",
                  prefix: str = "") -> dict:
  """The report fields of a timing of `batch` images per call.

  Keys (each after `prefix`): images_per_s, ms_per_<per>, ms_min, ms_max,
  ms_all, first_call_s.
  """
  fields = {"images_per_s": batch / t.median, f"ms_per_{per}": 1e3 * t.median,
            "ms_min": 1e3 * t.min, "ms_max": 1e3 * t.max,
            "ms_all": [1e3 * s for s in t.times], "first_call_s": t.first_call}
  return {prefix + k: v for k, v in fields.items()}


def machine() -> dict:
  """What the numbers were measured on."""
  dev = jax.devices()[0]
  return {"device_kind": dev.device_kind, "platform": dev.platform,
          "jax_backend": jax.default_backend(),
          "jax_devices": jax.device_count(), "cpu_count": os.cpu_count(),
          "jax": jax.__version__, "jaxlib": jaxlib.__version__,
          "python": platform.python_version(),
          "processor": platform.processor() or platform.machine(),
          "gpu_used": jax.default_backend() == "gpu"}
