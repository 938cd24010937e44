"""Host memory and read time of one epoch per process: in memory vs lazy.

    python -m benchmarks.data_loading      # ~1 min on 2 CPU cores

Process 0 of `processes` reads its rows of every batch of CIFAR-10 files
(`--data-dir`, else `records` random ones) in memory or lazily (`lazy=True`,
`data.prefetch`): peak host memory, examples read, seconds per epoch (the
batches must agree). ImageNet: `data.epoch_host_bytes`' accounting.
"""
import dataclasses
import tempfile

from advjax import data, report, run
from advjax.evaluation import throughput

IMAGENET = 1281167  # training images


@dataclasses.dataclass(frozen=True)
class DataLoadingConfig(run.TimingConfig):
  data_dir: str = run.field("", "the real CIFAR-10 binary batches ('': "
                            "write `records` random ones)")
  records: int = run.field(50000, "records written without data_dir", ge=1)
  batch_size: int = run.field(512, "global batch size", ge=1)
  processes: int = run.field(2, "processes sharing a batch", ge=1)
  repeats: int = run.field(3, "timed epochs per mode (median)", ge=1)


def _epoch(cfg, data_dir, lazy):
  ds = data.load("cifar10", "train", data_dir=data_dir, lazy=lazy)
  batches = data.iterate_batches(
      ds, cfg.batch_size, shuffle=True, seed=cfg.seed, drop_remainder=True,
      rows=slice(0, cfg.batch_size // cfg.processes))
  checksum = sum(int(yb.sum()) + int(xb[:, 0, 0, 0].sum() * 255) for xb, yb
                 in (data.prefetch(batches) if lazy else batches))
  return ds.images.rows_read if lazy else ds.size, checksum


def measure(cfg):
  with tempfile.TemporaryDirectory() as tmp:
    if not cfg.data_dir:
      data.write_random_cifar10(tmp, cfg.records, cfg.seed)
    where = cfg.data_dir or tmp
    n = data.load("cifar10", "train", data_dir=where, lazy=True).size
    modes = {}
    for name, lazy in (("in memory", False), ("lazy", True)):
      once = lambda lazy=lazy: _epoch(cfg, where, lazy)
      (read, checksum), peak = throughput.peak_host_bytes(once)
      modes[name] = {"peak_bytes": peak, "examples_read": int(read), "seconds":
                     throughput.time_calls([once], cfg.repeats)[0].median,
                     "checksum": checksum}
  if modes["lazy"]["checksum"] != modes["in memory"]["checksum"]:
    raise AssertionError("the two modes read different batches")
  return {"config": dataclasses.asdict(cfg), "n": n, "modes": modes}


def body(cfg, res):
  mib = lambda lazy, n, pixels, spec=".1f": format(data.epoch_host_bytes(
      4 * pixels, n, cfg.batch_size, cfg.processes, lazy) / 2**20, spec)
  rows = [(f"CIFAR-10 ({res['n']} train), {k}", m["examples_read"],
           f"{m['peak_bytes'] / 2**20:.1f}", mib(k == "lazy", res["n"], 3072),
           f"{m['seconds']:.2f}") for k, m in res["modes"].items()]
  lazy_rows = IMAGENET // cfg.batch_size * (cfg.batch_size // cfg.processes)
  rows += [(f"ImageNet 224x224 ({IMAGENET}), {k}", lazy_rows if lazy
            else IMAGENET, "not measured",
            mib(lazy, IMAGENET, 224 * 224 * 3, ",.0f"), "-")
           for k, lazy in (("in memory", False), ("lazy", True))]
  return [report.Table((f"one epoch, one of {cfg.processes} processes, batch "
                        f"{cfg.batch_size}", "examples read", "peak MiB "
                        "(measured)", "MiB (accounting)", "seconds"), rows)]


BENCHMARK = run.Timing("data_loading", DataLoadingConfig, measure,
                       report.Report(body=body), doc=__doc__, requires=[(
                           lambda c: c.batch_size % c.processes == 0,
                           "batch_size must be divisible by processes")])

if __name__ == "__main__":
  run.timing_main(BENCHMARK)
