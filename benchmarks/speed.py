"""Attack throughput of advjax (images/s) vs gradient passes and torchattacks.

    python -m benchmarks.speed            # ~1.5 minutes on 2 CPU cores

Expected (2-core CPU, jax 0.10.2; torch 2.13 + torchattacks from the `peers`
extra): one forward+backward of Wong's CNN at batch 256 ~15-20 ms; PGD-10
~160-170 ms (~1.5k images/s) in Linf and L2, an overhead ratio of ~0.85-0.9
against 10 forward+backward passes (target <= 1.15; attack loops are
unrolled on CPU because XLA:CPU runs input-gradient convolutions slowly
inside loop bodies, jax-ml/jax#12868); advjax / torchattacks ~0.77 (XLA:CPU
convolutions are slower than PyTorch's oneDNN). The machine is shared: read
the min-max column.
Writes runs/speed/{results.json, results.md}.
"""
import argparse

from advjax.experiments import speed


def _shape(text):
  return tuple(int(d) for d in text.split(","))


def main(argv=None):
  d = speed.SpeedConfig()
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--model", default=d.model)
  p.add_argument("--image-shape", type=_shape, default=d.image_shape,
                 help="H,W,C (default 28,28,1)")
  p.add_argument("--num-classes", type=int, default=d.num_classes)
  p.add_argument("--batch", type=int, default=d.batch)
  p.add_argument("--steps", type=int, default=d.steps)
  p.add_argument("--restarts", type=int, default=d.restarts)
  p.add_argument("--repeats", type=int, default=d.repeats)
  p.add_argument("--eps-linf", type=float, default=d.eps_linf)
  p.add_argument("--eps-l2", type=float, default=d.eps_l2)
  p.add_argument("--seed", type=int, default=d.seed)
  p.add_argument("--out-dir", default=d.out_dir)
  p.add_argument("--no-peers", action="store_true",
                 help="skip the torch/torchattacks comparison")
  a = p.parse_args(argv)
  cfg = speed.SpeedConfig(
      model=a.model, image_shape=a.image_shape, num_classes=a.num_classes,
      batch=a.batch, steps=a.steps, restarts=a.restarts, repeats=a.repeats,
      eps_linf=a.eps_linf, eps_l2=a.eps_l2, seed=a.seed, out_dir=a.out_dir,
      peers=not a.no_peers)
  print(speed.run(cfg)["table"])


if __name__ == "__main__":
  main()
