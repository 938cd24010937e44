"""Flags shared by the training benchmarks (data, output, seed, hosts)."""
import argparse

__all__ = ["add_run_args", "shape"]


def add_run_args(p: argparse.ArgumentParser, eval_limit: bool = True) -> None:
  """--eval-limit (unless `eval_limit` is False), --workdir, --data-dir,
  --seed, --distributed."""
  if eval_limit:
    p.add_argument("--eval-limit", type=int, default=0,
                   help="evaluate on the first N test examples (0: all)")
  p.add_argument("--workdir")
  p.add_argument("--data-dir", help="tfds data_dir or raw files (MNIST IDX, "
                 "CIFAR binary batches)")
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--distributed", action="store_true",
                 help="multi-host: call jax.distributed.initialize() first")


def shape(text: str) -> tuple:
  """'28,28,1' -> (28, 28, 1), for --image-shape."""
  return tuple(int(d) for d in text.split(","))
