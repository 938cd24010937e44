"""Universality, robustness and detectability of adversarial perturbations across the epochs of adversarial training.

    python -m benchmarks.universality --dataset digits   # minutes, 2 CPU cores

Reproduces the experiments of Metzen (2018) and D'Costa & Sriramanan's
reproducibility report: a standard model fine-tuned with BI adversarial
training (predicted labels), every epoch kept; per epoch the accuracy under a
universal perturbation and under per-input BI perturbations, the sharedness
and cost-change transfer of the per-input perturbations, their destruction
rate under brightness, contrast, blur, noise and JPEG (BI, FGSM, DeepFool), a
detector's accuracy; across epochs the temporal stability profile and the
detectors' transfer; the perturbations under uniform noise and flips. Writes
results.json, results.md (stating per claim of the paper whether the run
supports it) and PNG figures to --workdir (default runs/universality-<dataset>);
models are checkpointed there and a rerun resumes or reloads them. Other
presets: --dataset mnist, cifar10 (Metzen's CIFAR-10 setting; need the data
prepared with tensorflow-datasets, and a GPU).
"""
import argparse

from advjax import data, sharding
from advjax.experiments import universality
from benchmarks import _args


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--dataset", default="digits",
                 choices=sorted(universality.PRESETS))
  p.add_argument("--model", help="a registered model (default: preset)")
  p.add_argument("--epochs", type=int, help="standard training epochs")
  p.add_argument("--adv-epochs", type=int,
                 help="epochs of adversarial fine-tuning (each analysed)")
  p.add_argument("--eps", type=float, help="BI adversary's Linf radius")
  p.add_argument("--uni-eps", type=float,
                 help="universal perturbation's Linf radius")
  p.add_argument("--uni-iterations", type=int)
  p.add_argument("--analysis-examples", type=int,
                 help="test inputs analysed (0: all)")
  _args.add_run_args(p)
  a = p.parse_args(argv)
  sharding.initialize_distributed(a.distributed)
  cfg = universality.UniversalityConfig(
      dataset=a.dataset, model=a.model, epochs=a.epochs,
      adv_epochs=a.adv_epochs, eps=a.eps, uni_eps=a.uni_eps,
      uni_iterations=a.uni_iterations,
      analysis_examples=a.analysis_examples, eval_limit=a.eval_limit,
      workdir=a.workdir, data_dir=a.data_dir, seed=a.seed)
  try:
    res = universality.run(cfg)
  except data.DatasetNotFoundError as e:
    raise SystemExit(f"error: {e}") from None
  print(res["table"])


if __name__ == "__main__":
  main()
