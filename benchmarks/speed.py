"""Attack throughput of advjax (images/s) vs gradient passes and torchattacks.

    python -m benchmarks.speed --sinkhorn-reference DIR   # ~3 min, 2 cores
    python -m benchmarks.speed            # no reference comparison, ~2.5 min
    python -m benchmarks.speed --no-minimal   # no DeepFool / CW, ~1.5 min

Expected (2-core CPU, jax 0.10.2; torch 2.13 + torchattacks from the `peers`
extra): one forward+backward of Wong's CNN at batch 256 ~15-20 ms; PGD-10
~160-170 ms (~1.5k images/s) in Linf and L2, an overhead ratio of ~0.85-0.9
against 10 forward+backward passes (target <= 1.15; attack loops are
unrolled on CPU because XLA:CPU runs input-gradient convolutions slowly
inside loop bodies, jax-ml/jax#12868); advjax / torchattacks ~0.8-0.9 (XLA:CPU
convolutions are slower than PyTorch's oneDNN). The machine is shared: read
the min-max column.
Wasserstein projection (batch 100 MNIST-like 28x28, eps 0.5, lam 1000, k 5,
float32), each row scored by its distance to the converged projection:
advjax ~600 images/s at its default tol 1e-6 (median 18 iterations, error
~8e-4), ~900 at tol 1e-4; the reference projected_sinkhorn (DIR holds its
package, e.g. a checkout of locuslab/projected_sinkhorn) ~80 images/s at 56
iterations (error ~6e-4): ~8x at matched accuracy. Run to convergence in
float64, the two agree to ~4e-7.
Minimal-perturbation attacks, against the model's predictions (random
weights, so boundaries are near: DeepFool stops after 1-3 steps): advjax's
DeepFool-L2 (50 steps, all classes) on the batch of 256 vs
torchattacks.DeepFool, a Python loop over images, on 16; CW-L2 at one fixed
c (1 x 100 Adam steps: torchattacks.CW's algorithm) on 64 images in both
libraries, which find the same adversarials (success ~80 %, mean L2 ~0.11);
CW-L2 at the paper's 9 x 1000 with early abort, advjax only, on 16 images
(~0.8 s per image). Measured: DeepFool ~1.6x torchattacks; CW-L2 fixed c
~0.35x (a while loop, which XLA:CPU runs slowly; see the README).
Writes runs/speed/{results.json, results.md}.
"""
import argparse

from advjax.experiments import speed
from benchmarks import _args


def main(argv=None):
  d = speed.SpeedConfig()
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--model", default=d.model)
  p.add_argument("--image-shape", type=_args.shape, default=d.image_shape,
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
  p.add_argument("--no-sinkhorn", action="store_true",
                 help="skip the Wasserstein projection")
  p.add_argument("--sinkhorn-batch", type=int, default=d.sinkhorn_batch)
  p.add_argument("--sinkhorn-lam", type=float, default=d.sinkhorn_lam)
  p.add_argument("--sinkhorn-eps", type=float, default=d.sinkhorn_eps)
  p.add_argument("--sinkhorn-max-iterations", type=int,
                 default=d.sinkhorn_max_iterations)
  p.add_argument("--sinkhorn-reference", metavar="DIR", default=None,
                 help="directory holding the reference projected_sinkhorn "
                 "package (locuslab/projected_sinkhorn), imported at run "
                 "time; without it the comparison is skipped")
  p.add_argument("--no-minimal", action="store_true",
                 help="skip DeepFool and CW-L2")
  p.add_argument("--minimal-repeats", type=int, default=d.minimal_repeats)
  p.add_argument("--deepfool-steps", type=int, default=d.deepfool_steps)
  p.add_argument("--deepfool-peer-batch", type=int,
                 default=d.deepfool_peer_batch,
                 help="images torchattacks.DeepFool is timed on")
  p.add_argument("--cw-batch", type=int, default=d.cw_batch,
                 help="images of the fixed-c CW-L2 row")
  p.add_argument("--cw-steps", type=int, default=d.cw_steps,
                 help="Adam steps of the fixed-c CW-L2 row")
  p.add_argument("--cw-const", type=float, default=d.cw_const,
                 help="c of the fixed-c CW-L2 row")
  p.add_argument("--cw-paper-batch", type=int, default=d.cw_paper_batch,
                 help="images of the paper-setting CW-L2 row")
  p.add_argument("--cw-paper-steps", type=int, default=d.cw_paper_steps,
                 help="Adam steps per binary-search step (paper: 1000)")
  p.add_argument("--cw-paper-search-steps", type=int,
                 default=d.cw_paper_search_steps,
                 help="binary-search steps over c (paper: 9)")
  a = p.parse_args(argv)
  cfg = speed.SpeedConfig(
      model=a.model, image_shape=a.image_shape, num_classes=a.num_classes,
      batch=a.batch, steps=a.steps, restarts=a.restarts, repeats=a.repeats,
      eps_linf=a.eps_linf, eps_l2=a.eps_l2, seed=a.seed, out_dir=a.out_dir,
      peers=not a.no_peers, sinkhorn=not a.no_sinkhorn,
      sinkhorn_batch=a.sinkhorn_batch, sinkhorn_lam=a.sinkhorn_lam,
      sinkhorn_eps=a.sinkhorn_eps,
      sinkhorn_max_iterations=a.sinkhorn_max_iterations,
      sinkhorn_reference=a.sinkhorn_reference, minimal=not a.no_minimal,
      minimal_repeats=a.minimal_repeats, deepfool_steps=a.deepfool_steps,
      deepfool_peer_batch=a.deepfool_peer_batch, cw_batch=a.cw_batch,
      cw_steps=a.cw_steps, cw_const=a.cw_const,
      cw_paper_batch=a.cw_paper_batch, cw_paper_steps=a.cw_paper_steps,
      cw_paper_search_steps=a.cw_paper_search_steps)
  print(speed.run(cfg)["table"])


if __name__ == "__main__":
  main()
