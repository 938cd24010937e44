"""Attack throughput of advjax (images/s) vs gradient passes and torchattacks.

    python -m benchmarks.speed --sinkhorn-reference DIR   # ~2.5 min, 2 cores
    python -m benchmarks.speed            # no reference comparison, ~2.5 min
    python -m benchmarks.speed --no-minimal   # no DeepFool / CW / JSMA

Measured (2026-12-02, 2-core CPU, busier than the run before; jax 0.10.2;
torch 2.13 + torchattacks 3.5.1, foolbox 3.3.4; benchmarks/results/speed):
one forward+backward of Wong's CNN at batch 256 11.6 ms; PGD-10 105-109 ms
in Linf and L2, an overhead of 0.90-0.93 against 10 forward+backward passes
(target <= 1.15); advjax / torchattacks 1.61x (Linf) and 1.57x (L2).
DeepFool-L2 (50 steps, all classes; random weights, so it stops after 1-3
steps) 9.6x torchattacks.DeepFool (a Python loop over images, timed on 16);
CW-L2 at one fixed c (1 x 100 Adam steps, torchattacks.CW's algorithm)
with each library's early abort 1.46x on 64 images (the same quality),
0.90x with advjax's abort off (all 100 steps against torchattacks' 61);
JSMA-Z 2.7x torchattacks.JSMA; CW-L2 at the paper's 9 x 1000, advjax only,
0.16 s per image. Foolbox's LinfPGD / L2PGD on the same JAX model: advjax
3.6x / 4.1x at batch 32, 1.50x / 1.46x at 256. Wasserstein projection
(batch 100 MNIST-like 28x28, eps 0.5, lam 1000, k 5, float32), each row
scored by its distance to the converged projection: advjax 601 images/s at
its default tol 1e-6 (median 18 iterations, error 7.8e-4); the reference
projected_sinkhorn (DIR: a checkout of locuslab/projected_sinkhorn) at 56
iterations (error 6.1e-4): 8.1x at matched accuracy; run to convergence in
float64 the two agree to 4e-7. The machine is shared: read the min-max
columns.
Writes runs/speed/{results.json, results.md}. One flag per `SpeedConfig`
field (`--batch 64`, `--image-shape 28,28,1`, `--no-peers`, `--no-sinkhorn`,
`--sinkhorn-tols 1e-4,1e-7 --sinkhorn-relaxations 1.5,1.5`).

`run(SpeedConfig())` times, on one batch of random images and a randomly
initialised model (timing does not depend on the weights' values): one
forward+backward pass (the input gradient of the summed cross-entropy, the
unit every attack is made of); FGSM / FGM, PGD-k and PGD-k with R vmapped
restarts, in Linf and L2, jitted here (the library never jits) with eps
traced. Overhead = `time(attack) / (n * time(forward+backward))`, `n` its
gradient passes (`k`, or `k R`): 1.0 means the loop costs nothing beyond
its gradients. Protocol (`advjax.evaluation.throughput`): a warm-up call
per item (compilation), then `repeats` interleaved rounds, each timing
every item once to completion (`block_until_ready`), so drifts in machine
load hit all items alike and their ratios stay meaningful on a shared
machine; the median is reported with the min and max. With the `peers`
extra, the same network and weights rebuilt in PyTorch
(`torch_peers.wong_cnn_from_flax`, logits checked within 1e-4) run
torchattacks' FGSM, PGD and PGDL2 under the same protocol, after advjax's
calls (the two runtimes' thread pools never overlap).

`minimal` times DeepFool-L2, CW-L2 (one fixed c: torchattacks.CW's
algorithm, with and without advjax's early abort; and the paper's binary
search, advjax only) and JSMA-Z (against torchattacks.JSMA) against the
model's predictions at x, each speed beside the quality of the
adversarials; `foolbox` times Foolbox 3's PGD on the same JAX model;
`sinkhorn` times `project_wasserstein` (jitted; eps, lam, tol traced) at
several tolerances, each row scored by its distance to the converged
projection so speeds are compared at a stated accuracy, and, with
`sinkhorn_reference`, Wong et al.'s `projected_sinkhorn` loaded from there
at run time (`benchmarks.peers.projected_sinkhorn`). results.md says how
each section is measured.
"""
import dataclasses
import functools
import os
import time
from typing import Any, Callable, NamedTuple, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from advjax.report import legacy
from advjax import attacks, data, losses, models, report, sinkhorn
from advjax.attacks import gradient
from advjax.evaluation import throughput
from advjax.run import parse_config
from benchmarks.peers import foolbox_peer, projected_sinkhorn, torch_peers

__all__ = ["SpeedConfig", "OVERHEAD_TARGET", "LOGIT_TOLERANCE",
           "SINKHORN_SPEEDUP_TARGET", "SINKHORN_AGREEMENT_TARGET", "run",
           "format_table", "main"]

OVERHEAD_TARGET = 1.15  # time(PGD-k) / (k * time(forward+backward)), CPU
LOGIT_TOLERANCE = 1e-4  # Flax vs PyTorch replica, max |logit difference|
SINKHORN_SPEEDUP_TARGET = 5.  # advjax / reference projected_sinkhorn, images/s
SINKHORN_AGREEMENT_TARGET = 1e-4  # max |reference - advjax|, both converged
# The converged projection every solver is scored against: advjax, float64.
_CONVERGED_TOL = 1e-13
_CONVERGED_MAX_ITERATIONS = 5000
@dataclasses.dataclass(frozen=True)
class SpeedConfig:
  """Settings of the speed benchmark. All minimal-perturbation batches are
  capped at `batch`.

  Attributes:
    model: registered model name (the PyTorch peer exists for 'wong_mnist').
    dtype: the model's compute dtype, 'float32' or 'bfloat16' (float32
      parameters and logits; the torch peers stay float32).
    image_shape: per-example `(H, W, C)`.
    num_classes: logits K.
    batch: images per batch B.
    steps: PGD iterations k.
    restarts: random restarts R of the restart variant.
    repeats: timed calls per item (after one warm-up call); median reported.
    eps_linf: Linf radius (FGSM and PGD Linf).
    eps_l2: L2 radius (FGM and PGD L2).
    seed: seeds the weights, the batch and the attacks' random starts.
    out_dir: where results.json and results.md go.
    peers: time torchattacks too when torch and torchattacks import.
    progress: show a tqdm bar over the measured items.
    sinkhorn: time `project_wasserstein` too.
    sinkhorn_batch: images per projection batch.
    sinkhorn_shape: per-example `(H, W, C)` of the projected images.
    sinkhorn_lam: entropy regularisation lam.
    sinkhorn_kernel: transport window k (odd).
    sinkhorn_eps: Wasserstein radius, cost per unit mass.
    sinkhorn_max_iterations: iteration bound of both solvers.
    sinkhorn_tol: advjax's relative tolerance on the dual objective (the
      first row, compared with the reference at each one's default).
    sinkhorn_relaxation: advjax's over-relaxation of that row.
    sinkhorn_tols: the tolerances of further rows, each timed and scored by
      its distance to the converged projection; the fastest row at least as
      accurate as the reference gives the matched ratio.
    sinkhorn_relaxations: the over-relaxation of each of those rows (as
      many as `sinkhorn_tols`).
    sinkhorn_noise: std of the Gaussian noise in `w = x + noise`.
    sinkhorn_reference: directory holding the reference `projected_sinkhorn`
      package; None skips the comparison.
    minimal: time the minimal-perturbation attacks (DeepFool, CW-L2).
    minimal_repeats: timed calls per minimal-perturbation row (after one
      warm-up call); median reported.
    deepfool_steps: DeepFool's iteration bound (50: the paper's and
      torchattacks').
    deepfool_overshoot: DeepFool's overshoot (0.02).
    deepfool_peer_batch: images `torchattacks.DeepFool` is timed on (it
      loops over images in Python); the first ones of the batch.
    cw_batch: images of the fixed-c CW-L2 row (both libraries).
    cw_steps: Adam steps of the fixed-c CW-L2 row.
    cw_const: its constant c (torchattacks.CW's default 1).
    cw_lr: Adam's step size of both CW-L2 rows (0.01, the paper's).
    cw_paper_batch: images of the paper-setting CW-L2 row.
    cw_paper_steps: Adam steps per binary-search step of that row (1000).
    cw_paper_search_steps: its binary-search steps over c (9).
    jsma_batch: images of the JSMA row (targets: label + 1 mod K, as
      torchattacks.JSMA's default).
    jsma_peer_batch: images `torchattacks.JSMA` is timed on (it loops over
      images in Python, 10 backward passes per pixel pair).
    jsma_theta: JSMA's change per feature (1: set to the upper bound).
    jsma_gamma: JSMA's largest fraction of features changed.
    foolbox: time Foolbox 3's LinfPGD and L2PGD on the same JAX model
      against advjax's PGD (when foolbox imports).
    foolbox_batches: batch sizes of the Foolbox comparison (the first
      images of the batch).
  """
  model: str = "wong_mnist"
  dtype: str = "float32"
  image_shape: Tuple[int, int, int] = (28, 28, 1)
  num_classes: int = 10
  batch: int = 256
  steps: int = 10
  restarts: int = 4
  repeats: int = 7
  eps_linf: float = 0.3
  eps_l2: float = 2.0
  seed: int = 0
  out_dir: str = "runs/speed"
  peers: bool = True
  progress: bool = True
  sinkhorn: bool = True
  sinkhorn_batch: int = 100
  sinkhorn_shape: Tuple[int, int, int] = (28, 28, 1)
  sinkhorn_lam: float = 1000.
  sinkhorn_kernel: int = 5
  sinkhorn_eps: float = 0.5
  sinkhorn_max_iterations: int = 400
  sinkhorn_tol: float = 1e-6
  sinkhorn_relaxation: float = 1.5
  sinkhorn_tols: Tuple[float, ...] = (1e-4, 1e-7, 1e-8, 1e-6, 1e-4)
  sinkhorn_relaxations: Tuple[float, ...] = (1.5, 1.5, 1.5, 1., 1.)
  sinkhorn_noise: float = 0.1
  sinkhorn_reference: Optional[str] = None
  minimal: bool = True
  minimal_repeats: int = 3
  deepfool_steps: int = 50
  deepfool_overshoot: float = 0.02
  deepfool_peer_batch: int = 16
  cw_batch: int = 64
  cw_steps: int = 100
  cw_const: float = 1.
  cw_lr: float = 0.01
  cw_paper_batch: int = 16
  cw_paper_steps: int = 1000
  cw_paper_search_steps: int = 9
  jsma_batch: int = 64
  jsma_peer_batch: int = 4
  jsma_theta: float = 1.
  jsma_gamma: float = 0.1
  foolbox: bool = True
  foolbox_batches: Tuple[int, ...] = (256, 32)


class _Item(NamedTuple):
  """One measured row: advjax's call and its torch peer's, if any."""
  fields: dict  # the row's description: attack, norm, steps, ...
  batch: int  # images per call
  call: Callable[[], Any]  # runs advjax's item to completion
  peer: Optional[Tuple[str, int, Callable[[], Any]]]  # name, batch, call


def _sinkhorn_settings(config: SpeedConfig) -> list:
  """The `(tol, relaxation)` rows, each once: the default first."""
  return list(dict.fromkeys([
      (config.sinkhorn_tol, config.sinkhorn_relaxation),
      *zip(config.sinkhorn_tols, config.sinkhorn_relaxations)]))


def _check_config(c: SpeedConfig) -> None:
  """Raises ValueError for the first setting out of range."""

  def need(ok, message):
    if not ok:
      raise ValueError("SpeedConfig" + message)

  def positive(*names):
    for name in names:
      need(getattr(c, name) >= 1,
           f".{name} must be >= 1, got {getattr(c, name)}.")

  def shape(name):
    s = getattr(c, name)
    need(len(s) == 3 and min(s) >= 1, f".{name} must be (H, W, C), got {s}.")

  positive("batch", "steps", "restarts", "repeats")
  shape("image_shape")
  if c.sinkhorn:
    positive("sinkhorn_batch", "sinkhorn_max_iterations")
    shape("sinkhorn_shape")
    need(len(c.sinkhorn_tols) == len(c.sinkhorn_relaxations),
         ".sinkhorn_tols and sinkhorn_relaxations must be as long, got "
         f"{c.sinkhorn_tols} and {c.sinkhorn_relaxations}.")
    for tol, r in _sinkhorn_settings(c):
      need(tol > 0 and 0 < r < 2, " Sinkhorn settings need tol > 0 and "
           f"relaxation in (0, 2), got ({tol}, {r}).")
  need(all(b >= 1 for b in c.foolbox_batches),
       f".foolbox_batches must be >= 1, got {c.foolbox_batches}.")
  need(c.eps_linf >= 0 and c.eps_l2 >= 0,
       f" eps must be >= 0, got {c.eps_linf}, {c.eps_l2}.")
  if c.minimal:
    positive("minimal_repeats", "deepfool_steps", "deepfool_peer_batch",
             "cw_batch", "cw_steps", "cw_paper_batch", "cw_paper_steps",
             "cw_paper_search_steps", "jsma_batch", "jsma_peer_batch")
    need(0 < c.jsma_gamma <= 1, f".jsma_gamma must be in (0, 1], got "
         f"{c.jsma_gamma}.")
    need(c.deepfool_overshoot >= 0 and c.cw_const >= 0 and c.cw_lr > 0,
         " needs deepfool_overshoot >= 0, cw_const >= 0 and cw_lr > 0, got "
         f"{c.deepfool_overshoot}, {c.cw_const}, {c.cw_lr}.")
    need((c.cw_paper_search_steps, c.cw_paper_steps) != (1, c.cw_steps),
         ": the paper-setting CW-L2 row (cw_paper_search_steps x "
         "cw_paper_steps) must differ from the fixed-c row (1 x cw_steps); "
         "the two rows are named by their setting.")


def _jit_call(fn, *args):
  """`fn` jitted, as a call on `args` that runs it to completion."""
  jitted = jax.jit(fn)
  return lambda: jax.block_until_ready(jitted(*args))


def _torch_call(fn, x_nhwc, y, n):
  """`fn(x, y)` on the first `n` images as torch tensors (x NCHW float32,
  y int64), converted once, as a call."""
  import torch  # pylint: disable=import-outside-toplevel
  xt = torch_peers.to_nchw(x_nhwc[:n])
  yt = torch.from_numpy(np.asarray(y[:n]).astype(np.int64))
  return lambda: fn(xt, yt)


def _attack_items(config, model, variables, x, y, key, peers):
  """The advjax attack rows, with their torch peers from `peers` (keyed by
  (attack, norm): (name, batch, call))."""

  def forward_backward(variables, x, y):
    apply = models.model_fn(model, variables)
    return jax.grad(lambda z: jnp.sum(losses.cross_entropy(apply(z), y)))(x)

  def fgm(variables, x, y, eps, norm):
    return gradient.fgm(models.model_fn(model, variables), x, y, eps=eps,
                        norm=norm)

  def pgd(variables, x, y, eps, key, norm, restarts):
    return gradient.pgd(models.model_fn(model, variables), x, y, eps=eps,
                        key=key, norm=norm, steps=config.steps,
                        restarts=restarts)

  def item(attack, norm, steps, restarts, fn, *args):
    fields = {"attack": attack, "norm": norm, "steps": steps,
              "restarts": restarts, "gradient_passes": max(steps, 1) * restarts}
    return _Item(fields, config.batch, _jit_call(fn, variables, x, y, *args),
                 peers.get((attack, norm)))

  k, r = config.steps, config.restarts
  items = [item("fwd+bwd", "-", 0, 1, forward_backward)]
  for norm, eps in (("linf", config.eps_linf), ("l2", config.eps_l2)):
    eps = jnp.asarray(eps, jnp.float32)
    items.append(item("FGSM" if norm == "linf" else "FGM", norm, 1, 1,
                      functools.partial(fgm, norm=norm), eps))
    for name, n in ((f"PGD-{k}", 1), (f"PGD-{k}x{r}", r)):
      items.append(item(name, norm, k, n, functools.partial(
          pgd, norm=norm, restarts=n), eps, key))
  return items


def _peer_calls(config, net, x, y):
  """torch equivalents of the attack rows, keyed by (attack, norm):
  (peer name, batch, call)."""
  import torch  # pylint: disable=import-outside-toplevel
  import torchattacks  # pylint: disable=import-outside-toplevel
  k = config.steps

  def forward_backward(x, y):
    z = x.clone().requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(net(z), y, reduction="sum")
    return torch.autograd.grad(loss, z)[0]

  def pgd(cls, eps):
    return cls(net, eps=eps, alpha=2.5 * eps / k, steps=k, random_start=True)

  calls = {("fwd+bwd", "-"): ("torch autograd", forward_backward),
           ("FGSM", "linf"): ("torchattacks.FGSM",
                              torchattacks.FGSM(net, eps=config.eps_linf)),
           (f"PGD-{k}", "linf"): ("torchattacks.PGD",
                                  pgd(torchattacks.PGD, config.eps_linf))}
  if hasattr(torchattacks, "PGDL2"):
    calls[(f"PGD-{k}", "l2")] = ("torchattacks.PGDL2",
                                 pgd(torchattacks.PGDL2, config.eps_l2))
  return {key: (name, config.batch, _torch_call(fn, x, y, config.batch))
          for key, (name, fn) in calls.items()}


def _setup_peers(config, variables, x, logits):
  """Builds the torch replica; returns (status dict, the net or None)."""
  reason = ("off (peers=False)" if not config.peers
            else torch_peers.unavailable_reason())
  if reason is None and config.model != "wong_mnist":
    reason = f"no PyTorch replica of {config.model!r}"
  if reason is not None:
    return {"status": reason}, None
  import torch  # pylint: disable=import-outside-toplevel
  torch.set_num_threads(os.cpu_count() or 1)
  torch.manual_seed(config.seed)
  net = torch_peers.wong_cnn_from_flax(variables["params"], config.image_shape)
  with torch.no_grad():
    torch_logits = net(torch_peers.to_nchw(x)).numpy()
  diff = float(np.max(np.abs(torch_logits - np.asarray(logits))))
  if not diff <= LOGIT_TOLERANCE:
    raise RuntimeError(
        f"The PyTorch replica's logits differ from Flax's by {diff:.3g} > "
        f"{LOGIT_TOLERANCE}; the weight conversion is wrong, timings would "
        "compare different networks.")
  return {"status": "ok", "logit_max_abs_diff": diff,
          **torch_peers.versions()}, net


def _minimal_items(config, model, variables, x, y, net):
  """DeepFool and CW-L2 on the first images of the batch, with
  torchattacks' DeepFool and CW when `net` (the replica) is given; `y` are
  the model's predictions at x."""
  c = config
  k, lr, s, kp = c.cw_steps, c.cw_lr, c.cw_paper_search_steps, c.cw_paper_steps
  peers = {}
  targets = (y + 1) % c.num_classes  # torchattacks.JSMA's default targets
  if net is not None:
    import torchattacks  # pylint: disable=import-outside-toplevel
    torch_cw = torchattacks.CW(net, c=c.cw_const, kappa=0, steps=k, lr=lr)
    for attack, name, atk, n in (
        ("DeepFool", "torchattacks.DeepFool", torchattacks.DeepFool(
            net, steps=c.deepfool_steps, overshoot=c.deepfool_overshoot),
         c.deepfool_peer_batch),
        (f"CW-L2 1x{k}", "torchattacks.CW", torch_cw, c.cw_batch),
        (f"CW-L2 1x{k} abort", "torchattacks.CW", torch_cw, c.cw_batch),
        ("JSMA", "torchattacks.JSMA", torchattacks.JSMA(
            net, theta=c.jsma_theta, gamma=c.jsma_gamma),
         c.jsma_peer_batch)):
      n = min(n, c.batch)
      # torchattacks.JSMA is given the labels and targets label + 1 itself.
      peers[attack] = (name, n, _torch_call(atk, x, y, n))

  def deepfool(variables, x, y, overshoot):
    return attacks.deepfool(
        models.model_fn(model, variables), x, y, norm="l2",
        steps=c.deepfool_steps, overshoot=overshoot,
        num_candidates=c.num_classes, return_result=True)

  def cw(variables, x, y, const, learning_rate, steps, search_steps,
         abort_early):
    return attacks.carlini_wagner_l2(
        models.model_fn(model, variables), x, y, steps=steps,
        binary_search_steps=search_steps, initial_const=const,
        learning_rate=learning_rate, abort_early=abort_early,
        return_result=True)

  def jsma(variables, x, t):
    return attacks.jsma(models.model_fn(model, variables), x, t,
                        theta=c.jsma_theta, gamma=c.jsma_gamma,
                        return_result=True)

  def item(attack, setting, steps, search_steps, n, fn, *args, norm="l2",
           labels=y):
    n, peer = min(n, c.batch), peers.get(attack)
    fields = {"attack": attack, "norm": norm, "setting": setting,
              "steps": steps, "search_steps": search_steps, "batch": n,
              "peer_batch": peer and peer[1],
              "targeted": labels is not y}
    call = _jit_call(fn, variables, x[:n], labels[:n],
                     *(jnp.asarray(a, jnp.float32) for a in args))
    return _Item(fields, n, call, peer)

  paper_const = 1e-3  # the paper's initial c (and advjax's default)
  return [
      item("DeepFool", f"L2, {c.deepfool_steps} steps, overshoot "
           f"{c.deepfool_overshoot:g}, all classes", c.deepfool_steps, 0,
           c.batch, deepfool, c.deepfool_overshoot),
      item(f"CW-L2 1x{k}", f"c {c.cw_const:g} fixed, {k} Adam steps, lr "
           f"{lr:g}, no early abort", k, 1, c.cw_batch, functools.partial(
               cw, steps=k, search_steps=1, abort_early=False),
           c.cw_const, lr),
      item(f"CW-L2 1x{k} abort", f"c {c.cw_const:g} fixed, {k} Adam steps, "
           f"lr {lr:g}, early abort (each library's)", k, 1, c.cw_batch,
           functools.partial(cw, steps=k, search_steps=1, abort_early=True),
           c.cw_const, lr),
      item("JSMA", f"theta {c.jsma_theta:g}, gamma {c.jsma_gamma:g}, "
           "logits (JSMA-Z), target label + 1", 0, 0, c.jsma_batch, jsma,
           norm="l0", labels=targets),
      item(f"CW-L2 {s}x{kp}", f"binary search from c {paper_const:g}, {s} x "
           f"{kp} Adam steps, lr {lr:g}, early abort", kp, s,
           c.cw_paper_batch, functools.partial(
               cw, steps=kp, search_steps=s, abort_early=True),
           paper_const, lr)]


def _quality(predict, x_adv, x, y, prefix="", targets=None):
  """Adversarials `x_adv` of `x` (labels `y`) scored by the model's
  predictions: success_rate (prediction != y; == `targets` when given),
  mean_l2 and mean_l0 (L2 distance, features changed) of the successful
  ones (None if none), each after `prefix`."""
  x_adv, x = np.asarray(x_adv), np.asarray(x)
  pred = np.asarray(predict(x_adv))
  success = (pred == np.asarray(targets) if targets is not None
             else pred != np.asarray(y))
  d = (x_adv - x).reshape(len(x), -1)
  l2, l0 = np.sqrt(np.sum(d ** 2, axis=1)), np.sum(np.abs(d) > 1e-6, axis=1)
  mean = lambda v: float(np.mean(v[success])) if success.any() else None
  return {prefix + "success_rate": float(np.mean(success)),
          prefix + "mean_l2": mean(l2), prefix + "mean_l0": mean(l0)}


def _minimal_section(config, model, variables, x, y, net):
  """Times DeepFool and CW-L2 (and torchattacks' when `net` is given) and
  scores their adversarials; returns {'status', 'rows'}. `y`: the model's
  predictions at x, so every input starts correctly classified."""
  if not config.minimal:
    return {"status": "off (minimal=False)", "rows": []}
  items = _minimal_items(config, model, variables, x, y, net)
  measured = _measure(items, config.minimal_repeats, "minimal",
                      config.progress)
  predict = jax.jit(
      lambda x: jnp.argmax(model.apply(variables, x, train=False), axis=-1))
  for item, (row, t, tp) in zip(items, measured):
    n, out = item.batch, item.call()
    targets = (y + 1) % config.num_classes if row["targeted"] else None
    tq = lambda m: None if targets is None else targets[:m]
    row.update(
        ms_per_image=1e3 * t.median / n,
        median_iters=float(np.median(np.asarray(out.n_iters))),
        **_quality(predict, out.x_adv, x[:n], y[:n], targets=tq(n)),
        **dict.fromkeys(("peer_ms_per_image", "peer_forward_calls",
                         "peer_success_rate", "peer_mean_l2", "peer_mean_l0",
                         "matched_success_rate", "matched_mean_l2",
                         "matched_mean_l0")))
    if tp is not None:
      _, m, peer_call = item.peer
      calls = []  # how often the peer calls the network
      handle = net.register_forward_pre_hook(lambda *_: calls.append(1))
      try:
        adv = peer_call()
      finally:
        handle.remove()
      row.update(
          peer_ms_per_image=1e3 * tp.median / m, peer_forward_calls=len(calls),
          **_quality(predict, adv.detach().numpy().transpose(0, 2, 3, 1),
                     x[:m], y[:m], prefix="peer_", targets=tq(m)),
          **_quality(predict, out.x_adv[:m], x[:m], y[:m],
                     prefix="matched_", targets=tq(m)))
  return {"status": "ok", "rows": [row for row, _, _ in measured]}


def _foolbox_section(config, model, variables, x, y, key):
  """advjax's PGD-k against Foolbox 3's LinfPGD / L2PGD on the same jitted
  JAX model and inputs, at each of `foolbox_batches`, timed interleaved in
  one group (one runtime); returns {'status', 'version', 'rows'}."""
  if not config.foolbox:
    return {"status": "off (foolbox=False)", "rows": []}
  reason = foolbox_peer.unavailable_reason()
  if reason is not None:
    return {"status": reason, "rows": []}
  k = config.steps
  model_fn = jax.jit(models.model_fn(model, variables))

  def ours(variables, x, y, eps, key, norm):
    return gradient.pgd(models.model_fn(model, variables), x, y, eps=eps,
                        key=key, norm=norm, steps=k)

  calls, rows = [], []
  for norm, eps in (("linf", config.eps_linf), ("l2", config.eps_l2)):
    theirs = foolbox_peer.pgd(model_fn, norm, eps, k)
    for b in config.foolbox_batches:
      b = min(b, config.batch)
      xb, yb = x[:b], y[:b]
      mine = _jit_call(functools.partial(ours, norm=norm), variables, xb, yb,
                       jnp.float32(eps), key)
      other = (lambda f=theirs, xb=xb, yb=yb:
               jax.block_until_ready(f(xb, yb)))
      calls += [(f"PGD-{k} {norm} {b}", mine),
                (f"foolbox PGD-{k} {norm} {b}", other)]
      rows.append({"attack": f"PGD-{k}", "norm": norm, "batch": b,
                   "eps": eps, "peer": f"foolbox {'LinfPGD' if norm == 'linf' else 'L2PGD'}"})
  (timings,) = _time_groups([calls], config.repeats, "foolbox",
                            config.progress)
  predict = jax.jit(lambda x: jnp.argmax(model_fn(x), axis=-1))
  for i, row in enumerate(rows):
    t_own, t_fb = timings[2 * i], timings[2 * i + 1]
    b = row["batch"]
    row.update(throughput.timing_fields(t_own, b))
    row.update(throughput.timing_fields(t_fb, b, prefix="peer_"))
    row["peer_ratio"] = _ratio(row["images_per_s"], row["peer_images_per_s"])
    own_adv, fb_adv = calls[2 * i][1](), calls[2 * i + 1][1]()
    row["success_rate"] = float(np.mean(
        np.asarray(predict(own_adv)) != np.asarray(y[:b])))
    row["peer_success_rate"] = float(np.mean(
        np.asarray(predict(fb_adv)) != np.asarray(y[:b])))
  return {"status": "ok", "version": foolbox_peer.version(), "rows": rows}


def _foolbox_table(results: dict) -> list[str]:
  fb = results.get("foolbox")
  if fb is None or fb["status"] != "ok":
    return [] if fb is None else ["", "Foolbox: " + fb["status"]]
  rows = [(r["attack"], r["norm"], r["batch"], f"{r['ms_per_batch']:.1f}",
           f"{r['peer_ms_per_batch']:.1f}", f"{r['peer_ratio']:.2f}",
           report.percent(r["success_rate"], 0) + " / "
           + report.percent(r["peer_success_rate"], 0))
          for r in fb["rows"]]
  return [
      "", f"## Foolbox {fb['version']} on the same JAX model", "",
      "Foolbox's LinfPGD / L2PGD (`foolbox.JAXModel` of the jitted model, "
      "steps and step size as advjax's, random start) and advjax's PGD, on "
      "the same inputs and labels; both use XLA's kernels, so the ratio is "
      "the attack machinery: one compiled loop against Foolbox's Python "
      "loop of dispatched steps. Timed interleaved in one group.", "",
      report.table(("attack", "norm", "batch", "advjax ms", "foolbox ms",
                    "advjax / foolbox", "success advjax / foolbox (%)"),
                   rows, "ll" + "r" * 5)]


def _ratio(a, b):
  return a / b if a is not None and b else None


def _time_groups(groups, repeats, desc, progress):
  """Times groups of `(label, call)` one group after the other, each with
  `throughput.time_calls`; returns each group's list of Timings."""
  bar = tqdm(total=sum(len(g) for g in groups) * (repeats + 1), desc=desc,
             disable=not progress)
  timings = []
  for group in groups:

    def on_call(i, group=group):
      bar.set_postfix_str(group[i][0], refresh=False)
      bar.update()

    timings.append(throughput.time_calls([call for _, call in group],
                                         repeats, on_call))
  bar.close()
  return timings


def _measure(items, repeats, desc, progress):
  """Times the items' advjax calls, then their peers' in a second group (the
  two runtimes' thread pools never overlap).

  Returns:
    Per item: its row (its fields, the timing of its batch, the peer's name
    and timing (prefix peer_; None where it did not run), `peer_ratio` =
    advjax images/s / the peer's), its Timing and the peer's (or None).
  """
  paired = [i for i in items if i.peer is not None]
  label = lambda i: f"{i.fields['attack']} {i.fields['norm']}"
  own, peer = _time_groups(
      [[(label(i), i.call) for i in items],
       [(label(i) + " torch", i.peer[2]) for i in paired]],
      repeats, desc, progress)
  peer = dict(zip(map(id, paired), peer))
  out = []
  for item, t in zip(items, own):
    tp = peer.get(id(item))
    row = {**item.fields, **throughput.timing_fields(t, item.batch),
           "peer": item.peer and item.peer[0], **dict.fromkeys(
               ("peer_images_per_s", "peer_ms_per_batch", "peer_ms_min",
                "peer_ms_max", "peer_ratio"))}
    if tp is not None:
      row.update(throughput.timing_fields(tp, item.peer[1], prefix="peer_"))
      row["peer_ratio"] = _ratio(row["images_per_s"],
                                 row["peer_images_per_s"])
    out.append((row, t, tp))
  return out


def _sinkhorn_section(config, key):
  """Times the projection (and the reference); returns the results dict.

  Every solver is scored by its distance to the converged projection z*
  (advjax in float64 at tol `_CONVERGED_TOL`), so speeds are compared at a
  known accuracy, not at two unrelated stopping rules.
  """
  if not config.sinkhorn:
    return {"status": "off (sinkhorn=False)"}
  c = config
  b, eps, lam = c.sinkhorn_batch, c.sinkhorn_eps, c.sinkhorn_lam
  k = c.sinkhorn_kernel
  x = data.mnist_like_images(b, c.sinkhorn_shape)
  w = x + np.asarray(c.sinkhorn_noise
                     * jax.random.normal(key, x.shape, jnp.float32))

  @functools.partial(jax.jit, static_argnames="max_iterations")
  def project(x, w, eps, lam, tol, relaxation, max_iterations):
    return sinkhorn.project_wasserstein(
        x, w, eps=eps, lam=lam, kernel_size=k, max_iterations=max_iterations,
        tol=tol, relaxation=relaxation)

  def advjax_call(tol, relaxation, dtype=jnp.float32,
                  max_iterations=c.sinkhorn_max_iterations):
    args = [jnp.asarray(v, dtype) for v in (x, w, eps, lam, tol, relaxation)]
    return lambda: jax.block_until_ready(
        project(*args, max_iterations=max_iterations))

  reference_call = functools.partial(projected_sinkhorn.reference_call,
                                     x=x, w=w, eps=eps, lam=lam, kernel_size=k)

  with jax.enable_x64(True):
    star = advjax_call(_CONVERGED_TOL, c.sinkhorn_relaxation, jnp.float64,
                       _CONVERGED_MAX_ITERATIONS)()
    z_star = np.asarray(star.z)
  error = lambda z: float(np.max(np.abs(np.asarray(z) - z_star)))

  ref, reason = (None, "reference: off (no --sinkhorn-reference)")
  if c.sinkhorn_reference is not None:
    ref, reason = projected_sinkhorn.load(c.sinkhorn_reference)
  settings = _sinkhorn_settings(c)
  calls = [(f"tol {tol} relaxation {r}", advjax_call(tol, r))
           for tol, r in settings]
  if ref is not None:
    import torch  # pylint: disable=import-outside-toplevel
    torch.set_num_threads(os.cpu_count() or 1)
    ref_call, ref_once = reference_call(
        ref, dtype=np.float32, maxiters=c.sinkhorn_max_iterations - 1)
    calls.append(("reference", ref_call))
  # One group: advjax and the reference timed in the same rounds.
  [timings] = _time_groups([calls], c.repeats, "sinkhorn", c.progress)

  rows = []
  for (tol, relaxation), (_, call), t in zip(settings, calls, timings):
    out = call()
    n_iters = np.asarray(out.n_iters)
    rows.append({
        "tol": tol, "relaxation": relaxation,
        **throughput.timing_fields(t, b),
        "median_iters": float(np.median(n_iters)),
        "max_iters": int(np.max(n_iters)),
        "converged": int(np.sum(np.asarray(out.converged))),
        "max_abs_error": error(out.z),
        "max_cost_minus_eps": float(np.max(np.asarray(out.cost)) - eps)})
  result = {
      "status": "ok", "batch": b, "image_shape": list(c.sinkhorn_shape),
      "zero_pixel_fraction": float(np.mean(x == 0)),
      "converged_point": {
          "tol": _CONVERGED_TOL, "dtype": "float64",
          "median_iters": float(np.median(np.asarray(star.n_iters))),
          "converged": int(np.sum(np.asarray(star.converged)))},
      "rows": rows, **rows[0],  # the default setting, for a quick look
      "reference": {"status": reason}}
  if ref is None:
    return result
  ref_z, ref_iters = ref_once()
  reference = result["reference"] = {
      "status": "ok", "directory": c.sinkhorn_reference,
      "maxiters": c.sinkhorn_max_iterations - 1, "iterations": ref_iters,
      **throughput.timing_fields(timings[-1], b),
      "max_abs_error": error(ref_z)}
  # The same fixed point: both solvers run to convergence in float64.
  tight, why = projected_sinkhorn.load(c.sinkhorn_reference, tight=True)
  agreement = {"status": why}
  if tight is not None:
    z_tight, tight_iters = reference_call(
        tight, dtype=np.float64, maxiters=_CONVERGED_MAX_ITERATIONS)[1]()
    agreement = {"status": "ok", "reference_iters": tight_iters,
                 "max_abs_diff": error(z_tight)}
  reference["converged_agreement"] = agreement
  speed = lambda r: _ratio(r["images_per_s"], reference["images_per_s"])
  reference["speed_ratio"] = speed(rows[0])
  best = max((r for r in rows
              if r["max_abs_error"] <= reference["max_abs_error"]),
             key=lambda r: r["images_per_s"], default=None)
  reference["matched"] = None if best is None else {
      "tol": best["tol"], "relaxation": best["relaxation"],
      "speed_ratio": speed(best)}
  return result


def run(config: SpeedConfig) -> dict:
  """Runs the speed benchmark and writes results.json and results.md.

  Args:
    config: a `SpeedConfig`.

  Returns:
    The results: 'config', 'machine', 'peers' (status, versions, logit
    check), 'rows' (per attack and norm: `throughput.timing_fields`,
    overhead, the peer's fields (prefix peer_) and `peer_ratio` = advjax
    images/s / the peer's), 'overhead' and 'peer_ratio' of PGD-k per norm,
    'minimal' (status and rows of DeepFool, CW-L2 and JSMA: the same
    timing and peer fields, ms_per_image, median_iters, success_rate,
    mean_l2 and mean_l0, and for the peer peer_batch, peer_ms_per_image,
    peer_forward_calls, peer_success_rate, peer_mean_l2, peer_mean_l0 and
    matched_*: advjax on its images), 'foolbox' (status, version and rows
    per norm and batch: advjax's and Foolbox's timing, peer_ratio and
    success rates), 'sinkhorn' (the projection's rows, the reference's figures, speed
    ratios and agreement when run), 'seconds' and 'table' (markdown).

  Raises:
    ValueError: for a bad config.
    RuntimeError: if the PyTorch replica does not reproduce the logits.
  """
  _check_config(config)
  t_start = time.time()
  k_params, k_x, k_y, k_attack = jax.random.split(
      jax.random.key(config.seed), 4)
  model = models.get_model(config.model, num_classes=config.num_classes,
                           dtype=config.dtype)
  variables = models.init_model(model, k_params, config.image_shape)
  x = jax.random.uniform(k_x, (config.batch,) + tuple(config.image_shape),
                         jnp.float32)
  y = jax.random.randint(k_y, (config.batch,), 0, config.num_classes,
                         jnp.int32)
  logits = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, x)
  peers, net = _setup_peers(config, variables, x, logits)
  items = _attack_items(config, model, variables, x, y, k_attack,
                        {} if net is None else _peer_calls(config, net, x, y))
  measured = _measure(items, config.repeats, "speed", config.progress)
  minimal = _minimal_section(config, model, variables, x,
                             jnp.argmax(logits, axis=-1), net)
  fb = _foolbox_section(config, model, variables, x, y, k_attack)
  wasserstein = _sinkhorn_section(
      config, jax.random.fold_in(jax.random.key(config.seed), 1))

  t_fb = measured[0][1].median  # the forward+backward pass
  rows = [{**row, "overhead": t.median / (row["gradient_passes"] * t_fb)}
          for row, t, _ in measured]
  pgd = {r["norm"]: r for r in rows if r["attack"] == f"PGD-{config.steps}"}
  results = {
      "config": dataclasses.asdict(config), "machine": throughput.machine(),
      "peers": peers, "rows": rows,
      "overhead": {n: r["overhead"] for n, r in pgd.items()},
      "overhead_target": OVERHEAD_TARGET,
      "peer_ratio": {n: r["peer_ratio"] for n, r in pgd.items()},
      "minimal": minimal, "foolbox": fb, "sinkhorn": wasserstein,
      "seconds": time.time() - t_start}
  table = format_table(results)
  report.write(config.out_dir, results, legacy.Report(table))
  results["table"] = table
  return results


def _fmt(v, spec, missing):
  return missing if v is None else format(v, spec)


def _span(r: dict) -> str:
  """A row's 'ms min-max' cell."""
  return f"{r['ms_min']:.1f}-{r['ms_max']:.1f}"


def _rate(images_per_s: float) -> str:
  """Images/s to 3 significant digits, without exponents."""
  return (f"{images_per_s:.0f}" if images_per_s >= 100
          else f"{images_per_s:.3g}")


def _missing_peer(peers: dict, row: dict) -> Optional[str]:
  """Why a row has no peer figures ('not installed', 'off' or 'n/a'); None
  when it has them."""
  if peers["status"] != "ok":
    return "not installed" if "not installed" in peers["status"] else "off"
  return "n/a" if row["peer"] is None else None


def format_table(results: dict) -> str:
  """The markdown report: a header, the table, and the targets.

  Args:
    results: the dict `run` returns (without 'table').

  Returns:
    Markdown text.
  """
  cfg, mach, peers = results["config"], results["machine"], results["peers"]
  peer_ok = peers["status"] == "ok"
  head = [
      f"# advjax attack throughput: {cfg['model']}, "
      f"{'x'.join(str(d) for d in cfg['image_shape'])}, batch {cfg['batch']}",
      "",
      f"machine: {mach['device_kind']} ({mach['platform']}), "
      f"{mach['cpu_count']} CPUs, {mach['jax_devices']} JAX device(s), "
      f"jax {mach['jax']}, python {mach['python']}",
      f"protocol: median of {cfg['repeats']} interleaved calls after a warm-up "
      "call, each ended with block_until_ready; eps "
      f"{cfg['eps_linf']} (Linf) / {cfg['eps_l2']} (L2), step 2.5 eps / k, "
      "random start",
      ("peers: torch {torch}, torchattacks {torchattacks}, "
       "{torch_num_threads} threads; replica logits within {d:.1e}".format(
           d=peers["logit_max_abs_diff"], **peers)) if peer_ok
      else f"peers: {peers['status']}",
      "",
  ]
  rows = []
  for r in results["rows"]:
    missing = _missing_peer(peers, r)
    rows.append((
        r["attack"], r["norm"], f"{r['images_per_s']:.0f}",
        f"{r['ms_per_batch']:.1f}", _span(r),
        "1 (ref)" if r["attack"] == "fwd+bwd" else f"{r['overhead']:.2f}",
        *((missing, "-") if missing else
          (f"{r['peer_images_per_s']:.0f}", f"{r['peer_ratio']:.2f}"))))
  table = report.table(
      ("attack", "norm", "images/s", "ms/batch", "ms min-max", "overhead",
       "torch images/s", "advjax / torch"), rows, "ll" + "r" * 6)
  steps, target = cfg["steps"], results["overhead_target"]
  tail = ["", "overhead = time(attack) / (gradient passes x time(fwd+bwd)); "
          f"target for PGD-{steps}: <= {target}"]
  for norm in ("linf", "l2"):
    ov = results["overhead"].get(norm)
    pr = results["peer_ratio"].get(norm)
    meets = ov is not None and ov <= target
    tail.append(
        f"- PGD-{steps} {norm}: overhead {_fmt(ov, '.2f', 'n/a')} "
        f"({'meets' if meets else 'misses'} target); advjax / torchattacks "
        f"{_fmt(pr, '.2f', 'n/a')}"
        + ("" if pr is None else
           f" ({'at least as fast' if pr >= 1 else 'slower'})"))
  if peer_ok:
    tail.append("- torch rows: plain autograd for fwd+bwd; torchattacks has "
                "no L2 FGM and no PGD restarts (n/a).")
  return "\n".join(head + [table] + tail + _minimal_table(results)
                   + _foolbox_table(results) + _sinkhorn_table(results))


def _minimal_table(results: dict) -> list[str]:
  mn = results.get("minimal")
  if mn is None or mn["status"] != "ok":
    return [] if mn is None else ["", "Minimal-perturbation attacks: "
                                  + mn["status"]]
  cfg, peers = results["config"], results["peers"]

  def quality(r, prefix=""):
    if r["norm"] == "l0":
      return (report.percent(r[prefix + "success_rate"], 0) + "%, L0 "
              + _fmt(r[prefix + "mean_l0"], ".1f", "-"))
    return (report.percent(r[prefix + "success_rate"], 0) + "%, "
            + _fmt(r[prefix + "mean_l2"], ".3f", "-"))

  rows = []
  for r in mn["rows"]:
    missing = _missing_peer(peers, r)
    rows.append((
        r["attack"], r["setting"], r["batch"], _rate(r["images_per_s"]),
        f"{r['ms_per_image']:.3g}", _span(r), f"{r['median_iters']:.0f}",
        quality(r),
        *(("-", missing, "-", "-", "-") if missing else
          (r["peer_batch"], _rate(r["peer_images_per_s"]),
           r["peer_forward_calls"],
           f"{quality(r, 'peer_')} ({quality(r, 'matched_')})",
           f"{r['peer_ratio']:.2f}"))))
  header = ("attack", "setting", "batch", "images/s", "ms/image",
            "ms/batch min-max", "iterations", "success, mean L2 (L0)",
            "torch batch", "torch images/s", "torch forward calls",
            "torch success, mean L2 or L0 (advjax on those images)",
            "advjax / torch")
  return [
      "", "## Minimal-perturbation attacks (DeepFool, Carlini-Wagner L2, "
      "JSMA)", "",
      "Labels: the model's predictions at x, so every input starts correctly "
      "classified; batch: the first images of the batch above. Quality of "
      "the adversarials each library returns, scored alike with the Flax "
      "model: success rate (prediction != label; JSMA: == its target), mean "
      "L2 distance (JSMA: L0, features changed) of the successful ones. "
      f"Median of {cfg['minimal_repeats']} interleaved "
      "calls after a warm-up call. iterations: advjax's median per example "
      "(DeepFool: steps taken; CW: Adam steps over the whole search); torch "
      "forward calls: how often torchattacks called the network in one "
      "attack.",
      "",
      report.table(header, rows, "ll" + "r" * 11),
      "",
      "- DeepFool: advjax runs the batch in one loop (candidates' gradients "
      "by vmapped VJPs); torchattacks.DeepFool loops over the images in "
      "Python (one forward and one backward pass per class, per image and "
      "step), hence its smaller batch.",
      "- CW-L2 1xk: one fixed c, no binary search: the algorithm "
      "torchattacks.CW runs (kappa 0); advjax's early abort is off, while "
      "torchattacks.CW stops the whole batch once its summed cost has risen "
      "since the previous check (every k/10 steps): its forward calls are "
      "the steps it ran.",
      f"- CW-L2 1x{cfg['cw_steps']} abort: the same with advjax's early "
      "abort on (per example: an example stops once its loss has not fallen "
      "by 0.01 % since the previous check, every k/10 steps), against the "
      "same torchattacks.CW (batch-level stop).",
      "- JSMA: torchattacks.JSMA loops over the images in Python, with one "
      "backward pass per class for each pixel pair it changes; advjax runs "
      "the batch in one loop. Targets: label + 1 (mod K), torchattacks' "
      "default.",
      f"- CW-L2 {cfg['cw_paper_search_steps']}x{cfg['cw_paper_steps']}: the "
      "paper's setting, per-example binary search over c with early abort; "
      "advjax only (n/a: torchattacks.CW has no binary search).",
      "- the weights are random, so decision boundaries lie near the inputs: "
      "DeepFool and the early abort stop sooner than on a trained model.",
  ]


def _sinkhorn_table(results: dict) -> list[str]:
  sk = results.get("sinkhorn")
  if sk is None or sk["status"] != "ok":
    return [] if sk is None else ["", f"Wasserstein projection: {sk['status']}"]
  cfg = results["config"]
  ref, star = sk["reference"], sk["converged_point"]
  rows = [(
      f"advjax project_wasserstein (jit), relaxation {r['relaxation']:g}",
      f"per example, dual change < {r['tol']:g} (1 + abs g), max "
      f"{cfg['sinkhorn_max_iterations']}", f"{r['images_per_s']:.0f}",
      f"{r['ms_per_batch']:.1f}", _span(r),
      f"median {r['median_iters']:.0f}, max {r['max_iters']}",
      f"{r['converged']}/{sk['batch']}", f"{r['max_abs_error']:.1e}")
          for r in sk["rows"]]
  if ref["status"] != "ok":
    rows.append(("reference projected_sinkhorn", "-",
                 f"skipped: {ref['status']}", "-", "-", "-", "-", "-"))
  else:
    it = ref["iterations"]
    rows.append((
        "reference projected_sinkhorn (torch)", "whole batch, objective "
        f"change <= 1e-4 + 1e-4 abs obj, maxiters {ref['maxiters']}",
        f"{ref['images_per_s']:.1f}", f"{ref['ms_per_batch']:.1f}",
        _span(ref), f"{_fmt(it, 'd', '?')} (batch)",
        "-" if it is None else
        ("no (hit maxiters)" if it > ref["maxiters"] else "yes"),
        f"{ref['max_abs_error']:.1e}"))
  lines = [
      "", "## Wasserstein projection (projected Sinkhorn), "
      f"{'x'.join(str(d) for d in sk['image_shape'])}, batch {sk['batch']}",
      "",
      f"MNIST-like inputs (sklearn digits upsampled, zero border, "
      f"{report.percent(sk['zero_pixel_fraction'], 0)}% zero pixels), w = x "
      f"+ N(0, {cfg['sinkhorn_noise']}^2); eps {cfg['sinkhorn_eps']} per "
      f"unit mass, lam {cfg['sinkhorn_lam']:g}, kernel "
      f"{cfg['sinkhorn_kernel']}, float32. Error: max abs(z - z*) in image "
      f"units, z* the converged projection (advjax float64, tol "
      f"{star['tol']:g}: median {star['median_iters']:.0f} iterations, "
      f"{star['converged']}/{sk['batch']} converged).",
      "",
      report.table(("solver", "stopping rule", "images/s", "ms/batch",
                    "ms min-max", "iterations", "converged", "error"), rows,
                   "ll" + "r" * 6),
  ]
  if ref["status"] != "ok":
    return lines
  lines += ["", f"- each at its default stopping rule: advjax / reference "
            f"{ref['speed_ratio']:.1f}x images/s (advjax's error "
            f"{sk['rows'][0]['max_abs_error']:.1e} vs the reference's "
            f"{ref['max_abs_error']:.1e})"]
  m, target = ref["matched"], SINKHORN_SPEEDUP_TARGET
  if m is None:
    lines.append("- at matched accuracy: no advjax row is as accurate as the "
                 "reference")
  else:
    lines.append(
        f"- at matched accuracy (the fastest advjax row with error <= the "
        f"reference's: tol {m['tol']:g}, relaxation {m['relaxation']:g}): "
        f"{m['speed_ratio']:.1f}x images/s (target >= {target:g}x: "
        f"{'meets' if m['speed_ratio'] >= target else 'misses'})")
  ca = ref["converged_agreement"]
  if ca["status"] != "ok":
    lines.append(f"- converged agreement: {ca['status']}")
  else:
    ok = ca["max_abs_diff"] <= SINKHORN_AGREEMENT_TARGET
    lines.append(
        f"- the same result: both run to convergence in float64 (reference "
        f"with its stopping rule tightened to 1e-13 at run time, "
        f"{_fmt(ca['reference_iters'], 'd', '?')} iterations), max abs("
        f"reference - z*) = {ca['max_abs_diff']:.1e} (target "
        f"{SINKHORN_AGREEMENT_TARGET:g}: {'meets' if ok else 'misses'})")
  return lines


def main(argv: Optional[Sequence[str]] = None) -> dict:
  """`python -m benchmarks.speed [--field value ...]`: one flag per
  `SpeedConfig` field; runs the benchmark and prints its report."""
  config = parse_config(SpeedConfig, argv, prog="python -m benchmarks.speed",
                        doc=__doc__)
  results = run(config)
  print(results["table"])
  return results


if __name__ == "__main__":
  main()
