"""The throughput evaluator: interleaved timed calls, medians, min and max,
and the machine they ran on.

`time_calls(calls, repeats)` times each call once as a warm-up (for JAX:
compilation), then `repeats` rounds in which every call runs once, in
order, to completion (the calls end with `jax.block_until_ready`). Each
item's `Timing` holds the median with the min and max, so noise is
visible, and interleaving makes a change in machine load (a shared host)
hit all items alike, which keeps the ratios between them meaningful.
`timing_fields` turns a `Timing` of a batch into report fields (images/s,
ms per batch or step, min, max, every call); `machine()` records the
devices, versions and cores. Used by `benchmarks.speed` (attacks) and
`benchmarks.train_speed` (training steps).
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

  Args:
    t: a `Timing` (seconds).
    batch: images per call.
    per: what one call is, in the name of its field ('batch', 'step').
    prefix: put before every key (e.g. 'peer_').

  Returns:
    `{images_per_s, ms_per_<per>, ms_min, ms_max, ms_all, first_call_s}`,
    each key after `prefix`; the ms fields in milliseconds, first_call_s in
    seconds.
  """
  fields = {"images_per_s": batch / t.median, f"ms_per_{per}": 1e3 * t.median,
            "ms_min": 1e3 * t.min, "ms_max": 1e3 * t.max,
            "ms_all": [1e3 * s for s in t.times], "first_call_s": t.first_call}
  return {prefix + k: v for k, v in fields.items()}


def machine() -> dict:
  """What the numbers were measured on: the first JAX device's kind and
  platform, the backend, the device and CPU counts, the jax, jaxlib and
  python versions, the processor, and whether a GPU was used."""
  dev = jax.devices()[0]
  return {"device_kind": dev.device_kind, "platform": dev.platform,
          "jax_backend": jax.default_backend(),
          "jax_devices": jax.device_count(), "cpu_count": os.cpu_count(),
          "jax": jax.__version__, "jaxlib": jaxlib.__version__,
          "python": platform.python_version(),
          "processor": platform.processor() or platform.machine(),
          "gpu_used": jax.default_backend() == "gpu"}
