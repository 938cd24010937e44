"""AutoAttack in JAX: per-stage robust accuracy and time, diagnostics, peers.

    python -m benchmarks.autoattack --dataset digits   # ~6 minutes on 2 CPU cores

Trains (or reloads) a standard and a Madry PGD-trained model with the
`benchmarks.madry` preset (digits: Wong's CNN, eps 0.2), or evaluates the
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

import argparse  # noqa: E402

from advjax import data, sharding  # noqa: E402
from advjax.experiments import autoattack  # noqa: E402
from benchmarks import _args  # noqa: E402


def _fraction(text: str) -> float:
  """'8/255' or '0.3' -> float."""
  if "/" in text:
    a, b = text.split("/")
    return float(a) / float(b)
  return float(text)


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--dataset", default="digits",
                 choices=sorted(autoattack.PRESETS))
  p.add_argument("--checkpoint", help="an advjax training workdir to evaluate")
  p.add_argument("--model", help="its architecture, if its run.json does not "
                 "name it")
  p.add_argument("--eps", type=_fraction, help="radius, e.g. 0.3 or 8/255")
  p.add_argument("--norm", default="linf", choices=["linf", "l2"])
  p.add_argument("--version", default="standard",
                 choices=["standard", "plus", "rand"])
  p.add_argument("--method", default="madry",
                 choices=["madry", "standard"])
  p.add_argument("--epochs", type=int)
  p.add_argument("--batch-size", type=int, default=512,
                 help="examples per evaluation step")
  p.add_argument("--device-batch-size", type=int,
                 help="examples per device per call (the compiled shape)")
  p.add_argument("--seeds", type=int, default=3)
  p.add_argument("--no-peers", action="store_true")
  p.add_argument("--synthetic-examples", type=int, default=256)
  p.add_argument("--no-split-cpu", action="store_true",
                 help="keep the CPU as one XLA device")
  _args.add_run_args(p)
  a = p.parse_args(argv)
  sharding.initialize_distributed(a.distributed)
  cfg = autoattack.AutoAttackConfig(
      dataset=a.dataset, checkpoint=a.checkpoint, model=a.model, eps=a.eps,
      norm=a.norm, version=a.version, method=a.method, epochs=a.epochs,
      eval_batch_size=a.batch_size, device_batch_size=a.device_batch_size,
      seeds=a.seeds, peers=not a.no_peers,
      synthetic_examples=a.synthetic_examples, eval_limit=a.eval_limit,
      workdir=a.workdir, data_dir=a.data_dir, seed=a.seed)
  try:
    res = autoattack.run(cfg)
  except data.DatasetNotFoundError as e:
    raise SystemExit(f"error: {e}") from None
  print(res["table"])


if __name__ == "__main__":
  main()
