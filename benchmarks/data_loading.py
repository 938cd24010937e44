"""Host memory and read time of one epoch per process: in memory vs lazy.

    python -m benchmarks.data_loading      # ~1 min on 2 CPU cores

Measured (2026-12-02, 2-core CPU; benchmarks/results/data_loading): see
README, "Data at scale".

What `run(DataLoadingConfig())` measures, for one process of a
`processes`-process run (its rows of every global batch,
`sharding.process_slice`), on CIFAR-10 binary batches (`--data-dir` with
the real files, else `records` random records written in CIFAR-10's format
to a temporary directory: five training files, as the real ones):

* in memory: `data.load('cifar10', 'train')` (what every process did
  before `lazy=True`), then one shuffled epoch of its rows
  (`data.iterate_batches(..., rows=...)`);
* lazy: `data.load(..., lazy=True)` (`data.Records`), then the same epoch
  through `data.prefetch` (what `training.fit` does): only this process's
  rows are read, record by record, two batches ahead.

Reported per mode: the peak host memory allocated while loading and
reading the epoch (Python and numpy allocations, `tracemalloc`; device
buffers are not involved), the examples read from the files, and the
seconds of the epoch (median of `repeats`, measured without tracemalloc).
The batches are identical in both modes (checked). ImageNet has no reader
in advjax (its variable-size JPEGs need decoding and cropping); its figures
in the report are computed from the same accounting, not measured.

Writes runs/data_loading/{results.json, results.md}. One flag per
`DataLoadingConfig` field.
"""
import dataclasses
import os
import statistics
import tempfile
import time
import tracemalloc
from typing import Optional, Sequence

import numpy as np

from advjax.report import legacy
from advjax import data, report
from advjax.run import parse_config

__all__ = ["DataLoadingConfig", "run", "main", "per_process_bytes"]

_PREFETCH = 2  # data.prefetch's default: batches read ahead


@dataclasses.dataclass(frozen=True)
class DataLoadingConfig:
  """Settings of `benchmarks.data_loading`.

  Attributes:
    data_dir: directory with the real CIFAR-10 binary batches (empty:
      write `records` random records in their format to a temporary
      directory).
    records: training records written when there is no data_dir.
    batch_size: global batch size.
    processes: processes sharing every batch (this measures process 0).
    repeats: timed epochs per mode (the median is reported).
    workdir: where results.json and results.md go.
  """
  data_dir: str = ""
  records: int = 50000
  batch_size: int = 512
  processes: int = 2
  repeats: int = 3
  workdir: str = "runs/data_loading"


def per_process_bytes(example_bytes: int, n: int, batch_size: int,
                      processes: int, lazy: bool) -> int:
  """Host bytes one process holds for an epoch: in memory, the float32
  dataset plus the batch at hand; lazily, the batch in use, the
  `_PREFETCH` batches queued and the one being read, plus the epoch's
  permutation (int64 per example)."""
  rows = batch_size // processes
  if not lazy:
    return n * example_bytes + rows * example_bytes + 8 * n
  return (_PREFETCH + 2) * rows * example_bytes + 8 * n


def _write_cifar(directory: str, records: int) -> None:
  rng = np.random.default_rng(0)
  names = data.DATASETS["cifar10"].raw_files["train"]
  per = -(-records // len(names))
  for i, name in enumerate(names):
    n = min(per, records - i * per)
    rows = rng.integers(0, 256, (n, 3073), dtype=np.uint8)
    rows[:, 0] %= 10
    rows.tofile(os.path.join(directory, name))


def _epoch(ds, cfg: DataLoadingConfig, lazy: bool):
  rows = slice(0, cfg.batch_size // cfg.processes)
  batches = data.iterate_batches(ds, cfg.batch_size, shuffle=True, seed=0,
                                 drop_remainder=True, rows=rows)
  if lazy:
    batches = data.prefetch(batches)
  checksum = 0
  for xb, yb in batches:
    checksum += int(yb.sum()) + int(xb[:, 0, 0, 0].sum() * 255)
  return checksum


def _measure(data_dir: str, cfg: DataLoadingConfig, lazy: bool) -> dict:
  def once():
    ds = data.load("cifar10", "train", data_dir=data_dir, lazy=lazy)
    return ds, _epoch(ds, cfg, lazy)

  tracemalloc.start()
  tracemalloc.reset_peak()
  ds, checksum = once()
  peak = tracemalloc.get_traced_memory()[1]
  tracemalloc.stop()
  read = ds.images.rows_read if lazy else ds.size
  del ds
  seconds = []
  for _ in range(cfg.repeats):
    t0 = time.perf_counter()
    once()
    seconds.append(time.perf_counter() - t0)
  return {"peak_bytes": peak, "examples_read": int(read),
          "seconds": statistics.median(seconds), "checksum": checksum}


def run(cfg: DataLoadingConfig = DataLoadingConfig()) -> dict:
  """Measures both modes; returns the results (with a markdown table)."""
  if cfg.batch_size % cfg.processes:
    raise ValueError(f"batch_size {cfg.batch_size} is not divisible by "
                     f"{cfg.processes} processes.")
  with tempfile.TemporaryDirectory() as tmp:
    data_dir = cfg.data_dir
    if not data_dir:
      _write_cifar(tmp, cfg.records)
      data_dir = tmp
    n = data.load("cifar10", "train", data_dir=data_dir, lazy=True).size
    modes = {name: _measure(data_dir, cfg, lazy)
             for name, lazy in (("in memory", False), ("lazy", True))}
  if modes["in memory"]["checksum"] != modes["lazy"]["checksum"]:
    raise AssertionError("the two modes read different batches")
  mib = lambda b: b / 2**20
  rows = []
  for name, m in modes.items():
    lazy = name == "lazy"
    model = per_process_bytes(32 * 32 * 3 * 4, n, cfg.batch_size,
                              cfg.processes, lazy)
    rows.append([f"CIFAR-10 ({n} train), {name}", f"{m['examples_read']}",
                 f"{mib(m['peak_bytes']):.1f}", f"{mib(model):.1f}",
                 f"{m['seconds']:.2f}"])
  imagenet = 1281167
  for name, lazy in (("in memory", False), ("lazy", True)):
    model = per_process_bytes(224 * 224 * 3 * 4, imagenet, cfg.batch_size,
                              cfg.processes, lazy)
    read = imagenet if not lazy else (imagenet // cfg.batch_size
                                      * (cfg.batch_size // cfg.processes))
    rows.append([f"ImageNet 224x224 ({imagenet}), {name}", f"{read}",
                 "not measured", f"{mib(model):,.0f}", "-"])
  table = report.table(
      ["one epoch, one of "
       f"{cfg.processes} processes, batch {cfg.batch_size}",
       "examples read", "peak MiB (measured)", "MiB (accounting)",
       "seconds"], rows)
  results = {"config": dataclasses.asdict(cfg), "n": n, "modes": modes}
  report.write(cfg.workdir, results, legacy.Report(table))
  return {**results, "table": table}


def main(argv: Optional[Sequence[str]] = None) -> dict:
  """`python -m benchmarks.data_loading [--field value ...]`."""
  config = parse_config(DataLoadingConfig, argv,
                        prog="python -m benchmarks.data_loading", doc=__doc__)
  results = run(config)
  print(results["table"])
  return results


if __name__ == "__main__":
  main()
