"""Madry et al. adversarial training vs standard training, evaluated under PGD.

    python -m benchmarks.madry --dataset digits      # ~4 minutes on 2 CPU cores

Expected on digits (eps 0.2, Wong's CNN): the standard model's PGD-20 x 4
accuracy collapses to ~1 % at the training eps while the PGD-trained model
keeps ~50 %. Other presets: --dataset mnist (eps 0.3, PGD-40 step 0.01,
Madry's CNN), cifar10 (eps 8/255, PGD-7 step 2/255, PreAct ResNet-18, SGD
piecewise), fashion_mnist, cifar100, svhn_cropped; --method madry | fgsm_mix |
fgsm_rs | trades | standard. Writes results.json, results.md,
robust_accuracy_vs_eps.png and attack_convergence.png to --workdir
(default runs/madry-<dataset>); trained models are checkpointed there and a
rerun resumes or reloads them.
"""
import argparse

from advjax import data, sharding
from benchmarks import _args
from advjax.experiments import madry


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--dataset", default="digits", choices=sorted(madry.PRESETS))
  p.add_argument("--method", default="madry",
                 choices=["madry", "fgsm_mix", "fgsm_rs", "trades", "standard"])
  p.add_argument("--model", help="a registered model (default: preset)")
  p.add_argument("--epochs", type=int)
  p.add_argument("--batch-size", type=int)
  p.add_argument("--eps", type=float, help="Linf radius (e.g. 0.3, 0.0314)")
  p.add_argument("--train-steps", type=int)
  p.add_argument("--train-step-size", type=float)
  p.add_argument("--eval-steps", type=int)
  p.add_argument("--eval-restarts", type=int)
  p.add_argument("--optimizer", choices=["sgd", "adam"])
  p.add_argument("--learning-rate", type=float)
  p.add_argument("--schedule",
                 choices=["constant", "piecewise", "cyclic", "cosine"])
  _args.add_run_args(p)
  a = p.parse_args(argv)
  sharding.initialize_distributed(a.distributed)
  cfg = madry.MadryConfig(
      dataset=a.dataset, method=a.method, model=a.model, epochs=a.epochs,
      batch_size=a.batch_size, eps=a.eps, train_steps=a.train_steps,
      train_step_size=a.train_step_size, eval_steps=a.eval_steps,
      eval_restarts=a.eval_restarts, optimizer=a.optimizer,
      learning_rate=a.learning_rate, schedule=a.schedule,
      eval_limit=a.eval_limit, workdir=a.workdir, data_dir=a.data_dir,
      seed=a.seed)
  try:
    res = madry.run(cfg)
  except data.DatasetNotFoundError as e:
    raise SystemExit(f"error: {e}") from None
  print(res["table"])


if __name__ == "__main__":
  main()
