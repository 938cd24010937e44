"""Training throughput of advjax: standard vs Madry PGD-7 steps and epochs.

    python -m benchmarks.train_speed      # ~30 s on 2 CPU cores

Expected (2-core CPU, jax 0.10.2, Wong's MNIST CNN, quiet machine): one
device at 28x28x1 batch 256 (random data) -- a standard step ~20 ms (~13k
images/s), a Madry PGD-7 step ~135 ms (~1.9k images/s), time(madry) /
time(standard) ~6.9 against the ideal 1 + 7 = 8 (the attack's passes need no
weight gradients); 8 simulated CPU devices (a subprocess) run the sharded
step with the same first-step loss (difference 0, within 1e-5); they share
the 2 cores, so their images/s (~14k standard, ~2.9k Madry) is no scaling
result; digits epochs (1408 8x8 images, batch 64) ~0.03 s standard and
~0.16 s Madry after a first epoch with compilation (~1 s / ~2 s). The
CIFAR-10 PreAct ResNet-18 PGD-7 epoch time needs a GPU; not measured on CPU.
Writes runs/train_speed/{results.json, results.md}.
"""
import argparse

from advjax.experiments import train_speed
from benchmarks import _args


def main(argv=None):
  d = train_speed.TrainSpeedConfig()
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--model", default=d.model)
  p.add_argument("--image-shape", type=_args.shape, default=d.image_shape,
                 help="H,W,C (default 28,28,1)")
  p.add_argument("--num-classes", type=int, default=d.num_classes)
  p.add_argument("--batch", type=int, default=d.batch)
  p.add_argument("--pgd-steps", type=int, default=d.pgd_steps)
  p.add_argument("--eps", type=float, default=d.eps)
  p.add_argument("--learning-rate", type=float, default=d.learning_rate)
  p.add_argument("--repeats", type=int, default=d.repeats)
  p.add_argument("--devices", type=int, default=d.devices,
                 help="simulated CPU devices of the sharded check (0: skip)")
  p.add_argument("--digits-epochs", type=int, default=d.digits_epochs)
  p.add_argument("--digits-batch", type=int, default=d.digits_batch)
  p.add_argument("--digits-limit", type=int, default=d.digits_limit,
                 help="first N digits training images (0: all)")
  p.add_argument("--seed", type=int, default=d.seed)
  p.add_argument("--out-dir", default=d.out_dir)
  p.add_argument("--no-progress", action="store_true")
  a = p.parse_args(argv)
  cfg = train_speed.TrainSpeedConfig(
      model=a.model, image_shape=a.image_shape, num_classes=a.num_classes,
      batch=a.batch, pgd_steps=a.pgd_steps, eps=a.eps,
      learning_rate=a.learning_rate, repeats=a.repeats, devices=a.devices,
      digits_epochs=a.digits_epochs, digits_batch=a.digits_batch,
      digits_limit=a.digits_limit, seed=a.seed, out_dir=a.out_dir,
      progress=not a.no_progress)
  print(train_speed.run(cfg)["table"])


if __name__ == "__main__":
  main()
