"""Wasserstein adversarial examples: standard, Linf-trained and Wasserstein-trained models.

    python -m benchmarks.wasserstein --dataset digits   # ~10 minutes, 2 CPU cores

Reproduces the table of Wong, Schmidt, Kolter (ICML 2019): clean accuracy
and adversarial accuracy under the Wasserstein minimal-radius search at the
paper's radius (MNIST 1.0, CIFAR-10 0.1; digits 0.2), the fraction fooled vs
the radius, and the Linf robustness (PGD) of each model. Expected on digits:
the standard model is fooled almost always at radius 0.2 (as MNIST's at
1.0), the Wasserstein-trained one keeps most of its test images; see the
README for the measured numbers. Other presets: --dataset mnist (Wong's CNN,
SGD, adaptive radius 0.1 x 1.4), cifar10 (PreAct ResNet-18, lam 3000);
these need the data prepared with tensorflow-datasets. Writes results.json,
results.md, fooled_vs_eps.png, linf_accuracy_vs_eps.png and perturbations.png
to --workdir (default runs/wasserstein-<dataset>); trained models are
checkpointed there and a rerun resumes or reloads them.
"""
import argparse

from advjax import data, sharding
from benchmarks import _args
from advjax.experiments import wasserstein


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--dataset", default="digits",
                 choices=sorted(wasserstein.PRESETS))
  p.add_argument("--model", help="a registered model (default: preset)")
  p.add_argument("--epochs", type=int)
  p.add_argument("--batch-size", type=int)
  p.add_argument("--eps", type=float,
                 help="Wasserstein radius of the table (cost per unit mass)")
  p.add_argument("--lam", type=float, help="entropy regularisation")
  p.add_argument("--kernel-size", type=int, default=5)
  p.add_argument("--train-steps", type=int,
                 help="steps of the adaptive Wasserstein training attack")
  p.add_argument("--search-steps", type=int,
                 help="steps of the evaluation search")
  _args.add_run_args(p)
  a = p.parse_args(argv)
  sharding.initialize_distributed(a.distributed)
  cfg = wasserstein.WassersteinConfig(
      dataset=a.dataset, model=a.model, epochs=a.epochs,
      batch_size=a.batch_size, eps=a.eps, lam=a.lam,
      kernel_size=a.kernel_size, train_steps=a.train_steps,
      search_steps=a.search_steps, eval_limit=a.eval_limit,
      workdir=a.workdir, data_dir=a.data_dir, seed=a.seed)
  try:
    res = wasserstein.run(cfg)
  except data.DatasetNotFoundError as e:
    raise SystemExit(f"error: {e}") from None
  print(res["table"])


if __name__ == "__main__":
  main()
