"""Attack throughput: images per second, loop overhead, and a torchattacks peer.

`run(SpeedConfig())` times, on one batch of random images and a randomly
initialised model (timing does not depend on the weights' values):

- one forward+backward pass: the jitted gradient of the summed cross-entropy
  with respect to the input, the unit every attack is made of;
- FGSM (Linf) and FGM (L2), PGD-k, and PGD-k with R vmapped random restarts,
  each for Linf and L2, jitted here (the library never jits) with eps passed
  as a traced argument.

Protocol: one warm-up call per item (compilation), then `repeats` timed
calls per item, each ended with `block_until_ready`; the median is reported
with the min and max so noise is visible. The timed calls are interleaved
(each round times every item once) so drifts in machine load hit all items
alike and the ratios between items stay meaningful on a shared machine.

The overhead ratio of an attack is `time(attack) / (n * time(forward+
backward))` with `n` its gradient passes (`k` for PGD-k, `k R` with
restarts): 1.0 means the loop costs nothing beyond its gradients.

When torch and torchattacks import (the `peers` extra), the same network
with the same weights is rebuilt in PyTorch (`torch_peers.wong_cnn_from_flax`,
checked to reproduce the logits within 1e-4) and `torchattacks.FGSM`, `PGD`
and `PGDL2` are timed under the same protocol with
`torch.set_num_threads(os.cpu_count())`.

The minimal-perturbation section (`minimal=True`) times DeepFool (L2) and
Carlini-Wagner L2 against the model's own predictions at x (every input
starts correctly classified), each over `minimal_repeats` interleaved calls
on the first images of the batch: DeepFool with `deepfool_steps` steps,
overshoot 0.02 and every other class a candidate (torchattacks' defaults);
CW-L2 at one fixed c without binary search (`cw_steps` Adam steps on
`cw_batch` images, early abort off: the algorithm torchattacks.CW runs);
and CW-L2 at the paper's setting (`cw_paper_search_steps` x
`cw_paper_steps`, binary search over c, early abort on; advjax only, as
torchattacks has no binary search), reported per image on `cw_paper_batch`
images. Speeds are given with the quality of the adversarials each library
returns, scored alike with the Flax model: the success rate (prediction !=
label) and the mean L2 distance of the successful ones. With the peers,
`torchattacks.DeepFool` (a Python loop over images) is timed on the first
`deepfool_peer_batch` images, beside advjax's quality on those images, and
`torchattacks.CW` on the same images as advjax; how often each called the
network is reported, since torchattacks.CW may stop the batch early. The
weights are random, so decision boundaries lie near the inputs and the
early-stopping attacks stop sooner than on a trained model.

The Wasserstein section (`sinkhorn=True`) times `sinkhorn.project_wasserstein`
(jitted here; eps, lam and tol traced) on MNIST-like images: sklearn's 8x8
digits upsampled bilinearly into the image with a zero border (many pixels
exactly 0, as in MNIST), projected from `w = x + noise` (Gaussian, std
`sinkhorn_noise`), at several stopping tolerances and relaxations; each row
reports images/s, the median `n_iters`, how many examples converged, and its
error: the max distance of z to the converged projection z* (advjax in
float64 at tol 1e-13), so speeds are compared at a stated accuracy. With
`sinkhorn_reference`, a directory holding the reference `projected_sinkhorn`
package (Wong et al., locuslab/projected_sinkhorn), that code is imported
from there at run time and timed in the same interleaved rounds on the same
inputs (NCHW, per unit mass; its output times the mass m), and scored against
the same z*. The speed ratio is given at each solver's default stopping rule
and at matched accuracy (the fastest advjax row at least as accurate as the
reference). Whether both converge to the same point is checked by running
the reference in float64 with its stopping rule tightened at run time (its
source is read and executed with one line replaced; nothing is written).

Writes `results.json` and `results.md` to `out_dir`.
"""
import contextlib
import dataclasses
import io
import json
import os
import re
import sys
import time
import types
from typing import Callable, NamedTuple, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from advjax import attacks, data, losses, models, sinkhorn
from advjax.attacks import gradient
from advjax.experiments import timing, torch_peers
from advjax.experiments.timing import Timing, time_calls

__all__ = [
    "SpeedConfig",
    "Timing",
    "OVERHEAD_TARGET",
    "LOGIT_TOLERANCE",
    "SINKHORN_SPEEDUP_TARGET",
    "SINKHORN_AGREEMENT_TARGET",
    "time_calls",
    "mnist_like_images",
    "run",
    "format_table",
]

OVERHEAD_TARGET = 1.15  # time(PGD-k) / (k * time(forward+backward)), CPU
LOGIT_TOLERANCE = 1e-4  # Flax vs PyTorch replica, max |logit difference|
SINKHORN_SPEEDUP_TARGET = 5.  # advjax / reference projected_sinkhorn, images/s
SINKHORN_AGREEMENT_TARGET = 1e-4  # max |reference - advjax|, both converged
# The converged projection every solver is scored against: advjax, float64.
_CONVERGED_TOL = 1e-13
_CONVERGED_MAX_ITERATIONS = 5000


@dataclasses.dataclass(frozen=True)
class SpeedConfig:
  """Settings of the speed benchmark.

  Attributes:
    model: registered model name (the PyTorch peer exists for 'wong_mnist').
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
    peers: time torchattacks too when torch and torchattacks import; False
      skips them.
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
    sinkhorn_settings: further `(tol, relaxation)` rows; each is timed and
      scored by its distance to the converged projection, and the fastest
      row at least as accurate as the reference gives the matched ratio.
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
    All minimal-perturbation batches are capped at `batch`.
  """
  model: str = "wong_mnist"
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
  sinkhorn_settings: Tuple[Tuple[float, float], ...] = (
      (1e-4, 1.5), (1e-7, 1.5), (1e-8, 1.5), (1e-6, 1.), (1e-4, 1.))
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


class _Item(NamedTuple):
  attack: str
  norm: str
  steps: int
  restarts: int
  passes: int  # forward+backward passes the attack is made of
  call: Callable[[], object]  # runs the advjax item to completion
  peer: Optional[str]  # name of the torch equivalent, None if there is none
  peer_call: Optional[Callable[[], object]]


class _MinimalItem(NamedTuple):
  attack: str
  setting: str  # the attack's parameters, for the report
  steps: int
  search_steps: int  # CW's binary-search steps; 0 for DeepFool
  batch: int
  call: Callable[[], object]  # runs advjax's attack to a MinimalResult
  peer: Optional[str]
  peer_batch: Optional[int]
  peer_call: Optional[Callable[[], object]]  # torch NCHW adversarials


def _check_config(config: SpeedConfig) -> None:
  for name in ("batch", "steps", "restarts", "repeats"):
    if getattr(config, name) < 1:
      raise ValueError(f"SpeedConfig.{name} must be >= 1, got "
                       f"{getattr(config, name)}.")
  if len(config.image_shape) != 3 or min(config.image_shape) < 1:
    raise ValueError("SpeedConfig.image_shape must be (H, W, C), got "
                     f"{config.image_shape}.")
  if config.sinkhorn:
    for name in ("sinkhorn_batch", "sinkhorn_max_iterations"):
      if getattr(config, name) < 1:
        raise ValueError(f"SpeedConfig.{name} must be >= 1, got "
                         f"{getattr(config, name)}.")
    if len(config.sinkhorn_shape) != 3 or min(config.sinkhorn_shape) < 1:
      raise ValueError("SpeedConfig.sinkhorn_shape must be (H, W, C), got "
                       f"{config.sinkhorn_shape}.")
    for tol, r in ((config.sinkhorn_tol, config.sinkhorn_relaxation),
                   *config.sinkhorn_settings):
      if not (tol > 0 and 0 < r < 2):
        raise ValueError("SpeedConfig Sinkhorn settings need tol > 0 and "
                         f"relaxation in (0, 2), got ({tol}, {r}).")
  if config.eps_linf < 0 or config.eps_l2 < 0:
    raise ValueError("SpeedConfig eps must be >= 0, got "
                     f"{config.eps_linf}, {config.eps_l2}.")
  if config.minimal:
    for name in ("minimal_repeats", "deepfool_steps", "deepfool_peer_batch",
                 "cw_batch", "cw_steps", "cw_paper_batch", "cw_paper_steps",
                 "cw_paper_search_steps"):
      if getattr(config, name) < 1:
        raise ValueError(f"SpeedConfig.{name} must be >= 1, got "
                         f"{getattr(config, name)}.")
    if (config.deepfool_overshoot < 0 or config.cw_const < 0
        or config.cw_lr <= 0):
      raise ValueError(
          "SpeedConfig needs deepfool_overshoot >= 0, cw_const >= 0 and "
          f"cw_lr > 0, got {config.deepfool_overshoot}, {config.cw_const}, "
          f"{config.cw_lr}.")
    if (config.cw_paper_search_steps, config.cw_paper_steps) == (
        1, config.cw_steps):
      raise ValueError(
          "SpeedConfig: the paper-setting CW-L2 row (cw_paper_search_steps x "
          "cw_paper_steps) must differ from the fixed-c row (1 x cw_steps); "
          "the two rows are named by their setting.")


def _jit_call(fn, *args):
  """`fn` jitted, as a call on `args` that runs it to completion."""
  jitted = jax.jit(fn)
  return lambda: jax.block_until_ready(jitted(*args))


def _jax_items(config, model, variables, x, y, key):
  """The advjax measurements: (attack, norm, steps, restarts, passes, call)."""

  def forward_backward(variables, x, y):
    apply = models.model_fn(model, variables)
    return jax.grad(lambda z: jnp.sum(losses.cross_entropy(apply(z), y)))(x)

  def fgm(norm):
    def attack(variables, x, y, eps):
      return gradient.fgm(models.model_fn(model, variables), x, y, eps=eps,
                          norm=norm)
    return attack

  def pgd(norm, restarts):
    def attack(variables, x, y, eps, key):
      return gradient.pgd(models.model_fn(model, variables), x, y, eps=eps,
                          key=key, norm=norm, steps=config.steps,
                          restarts=restarts)
    return attack

  k, r = config.steps, config.restarts
  items = [("fwd+bwd", "-", 0, 1, 1,
            _jit_call(forward_backward, variables, x, y))]
  for norm, eps in (("linf", config.eps_linf), ("l2", config.eps_l2)):
    eps = jnp.asarray(eps, jnp.float32)
    items += [
        ("FGSM" if norm == "linf" else "FGM", norm, 1, 1, 1,
         _jit_call(fgm(norm), variables, x, y, eps)),
        (f"PGD-{k}", norm, k, 1, k,
         _jit_call(pgd(norm, 1), variables, x, y, eps, key)),
        (f"PGD-{k}x{r}", norm, k, r, k * r,
         _jit_call(pgd(norm, r), variables, x, y, eps, key)),
    ]
  return items


def _torch_inputs(x_nhwc, y):
  """`(x NCHW float32, y int64)` as torch tensors."""
  import torch  # pylint: disable=import-outside-toplevel
  return (torch_peers.to_nchw(x_nhwc),
          torch.from_numpy(np.asarray(y).astype(np.int64)))


def _attack_call(atk, xt, yt):
  """A torchattacks attack as a call on `(xt, yt)`."""
  return lambda: atk(xt, yt)


def _peer_calls(config, net, x_nhwc, y):
  """torch equivalents keyed by (attack, norm): (peer name, call)."""
  import torch  # pylint: disable=import-outside-toplevel
  import torchattacks  # pylint: disable=import-outside-toplevel

  xt, yt = _torch_inputs(x_nhwc, y)
  k = config.steps

  def forward_backward():
    z = xt.clone().requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(net(z), yt, reduction="sum")
    return torch.autograd.grad(loss, z)[0]

  def attack_call(atk):
    return _attack_call(atk, xt, yt)

  calls = {
      ("fwd+bwd", "-"): ("torch autograd", forward_backward),
      ("FGSM", "linf"): ("torchattacks.FGSM",
                         attack_call(torchattacks.FGSM(net,
                                                       eps=config.eps_linf))),
      (f"PGD-{k}", "linf"): ("torchattacks.PGD", attack_call(torchattacks.PGD(
          net, eps=config.eps_linf, alpha=2.5 * config.eps_linf / k, steps=k,
          random_start=True))),
  }
  if hasattr(torchattacks, "PGDL2"):
    calls[(f"PGD-{k}", "l2")] = ("torchattacks.PGDL2", attack_call(
        torchattacks.PGDL2(net, eps=config.eps_l2,
                           alpha=2.5 * config.eps_l2 / k, steps=k,
                           random_start=True)))
  return calls


def _setup_peers(config, variables, x, logits):
  """Builds the torch replica; returns (status dict, the net or None)."""
  if not config.peers:
    return {"status": "off (peers=False)"}, None
  reason = torch_peers.unavailable_reason()
  if reason is not None:
    return {"status": reason}, None
  if config.model != "wong_mnist":
    return {"status": f"no PyTorch replica of {config.model!r}"}, None
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
  status = {"status": "ok", "logit_max_abs_diff": diff,
            **torch_peers.versions()}
  return status, net


def _minimal_batches(config):
  """Images per call of each minimal-perturbation measurement (the first
  ones of the batch): advjax's DeepFool, torchattacks' DeepFool, the fixed-c
  CW-L2 (both libraries) and the paper-setting CW-L2."""
  return {name: min(n, config.batch) for name, n in (
      ("deepfool", config.batch), ("deepfool_peer", config.deepfool_peer_batch),
      ("cw", config.cw_batch), ("cw_paper", config.cw_paper_batch))}


def _minimal_peer_calls(config, net, x_nhwc, y, batches):
  """torchattacks' DeepFool and CW keyed by the advjax row they pair with:
  (peer name, batch, call returning the NCHW adversarials)."""
  import torchattacks  # pylint: disable=import-outside-toplevel
  xt, yt = _torch_inputs(x_nhwc, y)

  def attack_call(atk, n):
    return _attack_call(atk, xt[:n], yt[:n])

  b_df, b_cw = batches["deepfool_peer"], batches["cw"]
  return {
      "DeepFool": ("torchattacks.DeepFool", b_df, attack_call(
          torchattacks.DeepFool(net, steps=config.deepfool_steps,
                                overshoot=config.deepfool_overshoot), b_df)),
      f"CW-L2 1x{config.cw_steps}": ("torchattacks.CW", b_cw, attack_call(
          torchattacks.CW(net, c=config.cw_const, kappa=0,
                          steps=config.cw_steps, lr=config.cw_lr), b_cw)),
  }


def _minimal_items(config, model, variables, x, y, net):
  """The minimal-perturbation measurements, with their torch peers when
  `net` (the replica) is given; `y` are the model's predictions at x."""
  b = _minimal_batches(config)
  peer_calls = ({} if net is None
                else _minimal_peer_calls(config, net, x, y, b))

  def deepfool(variables, x, y, overshoot):
    return attacks.deepfool(
        models.model_fn(model, variables), x, y, norm="l2",
        steps=config.deepfool_steps, overshoot=overshoot,
        num_candidates=config.num_classes, return_result=True)

  def cw(steps, search_steps, abort_early):
    def attack(variables, x, y, const, learning_rate):
      return attacks.carlini_wagner_l2(
          models.model_fn(model, variables), x, y, steps=steps,
          binary_search_steps=search_steps, initial_const=const,
          learning_rate=learning_rate, abort_early=abort_early,
          return_result=True)
    return attack

  def call(fn, n, *args):
    return _jit_call(fn, variables, x[:n], y[:n],
                     *(jnp.asarray(a, jnp.float32) for a in args))

  k, lr = config.cw_steps, config.cw_lr
  s, kp = config.cw_paper_search_steps, config.cw_paper_steps
  paper_const = 1e-3  # the paper's initial c (and advjax's default)
  items = [
      ("DeepFool", f"L2, {config.deepfool_steps} steps, overshoot "
       f"{config.deepfool_overshoot:g}, all classes", config.deepfool_steps, 0,
       b["deepfool"], call(deepfool, b["deepfool"],
                           config.deepfool_overshoot)),
      (f"CW-L2 1x{k}", f"c {config.cw_const:g} fixed, {k} Adam steps, lr "
       f"{lr:g}, no early abort", k, 1, b["cw"],
       call(cw(k, 1, False), b["cw"], config.cw_const, lr)),
      (f"CW-L2 {s}x{kp}", f"binary search from c {paper_const:g}, {s} x "
       f"{kp} Adam steps, lr {lr:g}, early abort", kp, s, b["cw_paper"],
       call(cw(kp, s, True), b["cw_paper"], paper_const, lr)),
  ]
  return [_MinimalItem(*item, *peer_calls.get(item[0], (None, None, None)))
          for item in items]


def _calls_counted(net, call):
  """Runs `call` once; returns its output and how often it called `net`."""
  count = [0]
  handle = net.register_forward_pre_hook(
      lambda *_: count.__setitem__(0, count[0] + 1))
  try:
    out = call()
  finally:
    handle.remove()
  return out, count[0]


def _quality(predict, x_adv, x, y, prefix=""):
  """Adversarials `x_adv` of `x` (labels `y`) scored by the model's
  predictions: success_rate (prediction != y) and mean_l2 (the mean L2
  distance of the successful ones; None if none), each after `prefix`."""
  x_adv, x = np.asarray(x_adv), np.asarray(x)
  success = np.asarray(predict(x_adv)) != np.asarray(y)
  l2 = np.sqrt(np.sum((x_adv - x).reshape(len(x), -1) ** 2, axis=1))
  return {prefix + "success_rate": float(np.mean(success)),
          prefix + "mean_l2": float(np.mean(l2[success])) if success.any()
                              else None}


def _minimal_section(config, model, variables, x, y, net):
  """Times DeepFool and CW-L2 (and torchattacks' when `net` is given) and
  scores their adversarials; returns {'status', 'rows'}. `y`: the model's
  predictions at x, so every input starts correctly classified."""
  if not config.minimal:
    return {"status": "off (minimal=False)", "rows": []}
  items = _minimal_items(config, model, variables, x, y, net)
  groups = [[((item.attack, "advjax"), item.call) for item in items],
            [((item.attack, "peer"), item.peer_call) for item in items
             if item.peer_call is not None]]
  timings = _time_groups(groups, config.minimal_repeats, "minimal",
                         config.progress)
  predict = jax.jit(
      lambda x: jnp.argmax(model.apply(variables, x, train=False), axis=-1))
  rows = []
  for item in items:
    t, n = timings[(item.attack, "advjax")], item.batch
    out = item.call()
    row = {
        "attack": item.attack, "norm": "l2", "setting": item.setting,
        "steps": item.steps, "search_steps": item.search_steps, "batch": n,
        **timing.timing_fields(t, n), "ms_per_image": 1e3 * t.median / n,
        "median_iters": float(np.median(np.asarray(out.n_iters))),
        **_quality(predict, out.x_adv, x[:n], y[:n]),
        "peer_batch": item.peer_batch, "peer_ms_per_image": None,
        "peer_forward_calls": None, "peer_success_rate": None,
        "peer_mean_l2": None, "matched_success_rate": None,
        "matched_mean_l2": None}
    tp = timings.get((item.attack, "peer"))
    row.update(_peer_fields(item.peer, tp, item.peer_batch,
                            row["images_per_s"]))
    if tp is not None:
      m = item.peer_batch
      adv, calls = _calls_counted(net, item.peer_call)
      row.update(
          peer_ms_per_image=1e3 * tp.median / m, peer_forward_calls=calls,
          **_quality(predict, adv.detach().numpy().transpose(0, 2, 3, 1),
                     x[:m], y[:m], prefix="peer_"),
          **_quality(predict, out.x_adv[:m], x[:m], y[:m],
                     prefix="matched_"))
    rows.append(row)
  return {"status": "ok", "rows": rows}


def _peer_fields(peer, t, batch, images_per_s):
  """A row's peer columns: the peer's name, its timing of `batch` images
  (prefix peer_) and `peer_ratio` = advjax images/s / the peer's; None where
  the peer did not run (`t` None)."""
  fields = {"peer": peer, "peer_images_per_s": None, "peer_ms_per_batch": None,
            "peer_ms_min": None, "peer_ms_max": None, "peer_ratio": None}
  if t is not None:
    fields.update(timing.timing_fields(t, batch, prefix="peer_"))
    fields["peer_ratio"] = _ratio(images_per_s, fields["peer_images_per_s"])
  return fields


def _time_groups(groups, repeats, desc, progress):
  """Times groups of `(key, call)`, one group after the other, each with
  `time_calls` (advjax first, then torch: the two runtimes' thread pools
  never overlap); returns {key: Timing}."""
  bar = tqdm(total=sum(len(g) for g in groups) * (repeats + 1), desc=desc,
             disable=not progress)
  timings = {}
  for group in groups:

    def on_call(i, group=group):
      bar.set_postfix_str(" ".join(group[i][0]), refresh=False)
      bar.update()

    measured = time_calls([call for _, call in group], repeats, on_call)
    timings.update(zip([key for key, _ in group], measured))
  bar.close()
  return timings


def mnist_like_images(batch: int, image_shape: Sequence[int]) -> np.ndarray:
  """Deterministic MNIST-like images `[B, H, W, C]` float32 in [0, 1].

  sklearn's 8x8 digits (test split, in order, cycled), upsampled bilinearly
  to the inner `(H - 2r) x (W - 2r)` of the image, `r = round(H / 7)` (the
  4-pixel border of MNIST at 28), values below 0.05 set to 0, and copied to
  every channel; most pixels are exactly 0, as in MNIST.
  """
  h, w, c = (int(d) for d in image_shape)
  r = int(round(h / 7))
  inner = (max(h - 2 * r, 1), max(w - 2 * r, 1))
  digits = data.load("digits", "test").images
  digits = digits[np.arange(batch) % digits.shape[0]]
  up = np.asarray(jax.image.resize(jnp.asarray(digits),
                                   (batch,) + inner + (1,), "bilinear"))
  up = np.where(up < 0.05, 0., np.clip(up, 0., 1.)).astype(np.float32)
  x = np.zeros((batch, h, w, 1), np.float32)
  x[:, r:r + inner[0], r:r + inner[1]] = up
  return np.repeat(x, c, axis=-1)


def _project_call(config):
  """The jitted projection: `(x, w, eps, lam, tol, relaxation) -> output`."""
  def project(x, w, eps, lam, tol, relaxation, max_iterations):
    return sinkhorn.project_wasserstein(
        x, w, eps=eps, lam=lam, kernel_size=config.sinkhorn_kernel,
        max_iterations=max_iterations, tol=tol, relaxation=relaxation)
  return jax.jit(project, static_argnames="max_iterations")


# The reference's stopping rule, and the tight one `_import_reference(...,
# tight=True)` puts in its place (for the converged comparison only).
_REFERENCE_RULE = "allclose = lambda x,y: (x-y).abs() <= 1e-4 + 1e-4*y.abs()"
_TIGHT_RULE = "allclose = lambda x,y: (x-y).abs() <= 1e-13*(1 + y.abs())"


def _import_reference(directory, tight=False):
  """The reference module, or (None, reason).

  With `tight`, the module's source is read from `directory` and its
  stopping rule (`_REFERENCE_RULE`) replaced by `_TIGHT_RULE` before it is
  executed as a separate module: nothing is written, and without that exact
  line the tight run is reported as unavailable.
  """
  if not os.path.isdir(directory):
    return None, f"reference: no directory {directory!r}"
  try:
    import torch  # pylint: disable=import-outside-toplevel,unused-import
  except ImportError as e:
    return None, f"reference: torch not installed ({type(e).__name__})"
  # The package imports its `lambertw` module as a top-level one.
  for path in (os.path.join(directory, "projected_sinkhorn"), directory):
    if path not in sys.path:
      sys.path.insert(0, path)
  try:
    if tight:
      path = os.path.join(directory, "projected_sinkhorn",
                          "projected_sinkhorn.py")
      with open(path, encoding="utf-8") as f:
        source = f.read()
      if source.count(_REFERENCE_RULE) != 1:
        return None, (f"reference: {path} does not hold its stopping rule "
                      f"{_REFERENCE_RULE!r} once; cannot tighten it")
      module = types.ModuleType("projected_sinkhorn_tight")
      module.__file__ = path
      exec(compile(source.replace(_REFERENCE_RULE, _TIGHT_RULE), path,  # pylint: disable=exec-used
                   "exec"), module.__dict__)
    else:
      import projected_sinkhorn as module  # pylint: disable=import-outside-toplevel
    module.projected_sinkhorn  # pylint: disable=pointless-statement
    module.wasserstein_cost  # pylint: disable=pointless-statement
  except Exception as e:  # pylint: disable=broad-except
    return None, (f"reference: import from {directory!r} failed "
                  f"({type(e).__name__}: {e})")
  return module, None


def _reference_call(ref, config, x, w, dtype, maxiters):
  """`(call, run_once)` of the reference on `(x, w)` in `dtype`.

  Inputs go per unit mass, NCHW; `run_once() -> (z [B, H, W, C] numpy in
  image units, iterations)`. The reference stops after `maxiters + 1`
  iterations, or when the whole batch's objective changes by at most
  `1e-4 + 1e-4 |obj|` (its `allclose`).
  """
  import torch  # pylint: disable=import-outside-toplevel
  mass = x.sum(axis=(1, 2, 3), keepdims=True)
  nchw = lambda a: torch.from_numpy(  # pylint: disable=g-long-lambda
      np.ascontiguousarray((a / mass).transpose(0, 3, 1, 2).astype(dtype)))
  xt, wt = nchw(x), nchw(w)
  cost = ref.wasserstein_cost(xt, p=2, kernel_size=config.sinkhorn_kernel)

  def call(verbose=False):
    return ref.projected_sinkhorn(xt, wt, cost, config.sinkhorn_eps,
                                  config.sinkhorn_lam, maxiters=maxiters,
                                  verbose=verbose)

  def run_once():
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
      z = call(verbose=True)
    found = re.findall(r"terminate at iteration (\d+)", log.getvalue())
    iters = int(found[-1]) if found else None
    return z.numpy().transpose(0, 2, 3, 1) * mass, iters

  return call, run_once


def _sinkhorn_section(config, key, bar_desc="sinkhorn"):
  """Times the projection (and the reference); returns the results dict.

  Every solver is scored by its distance to the converged projection z*
  (advjax in float64 at tol `_CONVERGED_TOL`), so speeds are compared at a
  known accuracy, not at two unrelated stopping rules.
  """
  if not config.sinkhorn:
    return {"status": "off (sinkhorn=False)"}
  b = config.sinkhorn_batch
  x = mnist_like_images(b, config.sinkhorn_shape)
  noise = config.sinkhorn_noise * jax.random.normal(key, x.shape, jnp.float32)
  w = x + np.asarray(noise)
  project = _project_call(config)
  settings = [(config.sinkhorn_tol, config.sinkhorn_relaxation)] + [
      s for s in config.sinkhorn_settings
      if s != (config.sinkhorn_tol, config.sinkhorn_relaxation)]

  def advjax_call(tol, relaxation, dtype=jnp.float32,
                  max_iterations=config.sinkhorn_max_iterations):
    args = [jnp.asarray(v, dtype) for v in (
        x, w, config.sinkhorn_eps, config.sinkhorn_lam, tol, relaxation)]
    return lambda: jax.block_until_ready(
        project(*args, max_iterations=max_iterations))

  with jax.enable_x64(True):
    star = advjax_call(_CONVERGED_TOL, config.sinkhorn_relaxation,
                       jnp.float64, _CONVERGED_MAX_ITERATIONS)()
    z_star = np.asarray(star.z)
  converged_point = {
      "tol": _CONVERGED_TOL, "dtype": "float64",
      "median_iters": float(np.median(np.asarray(star.n_iters))),
      "converged": int(np.sum(np.asarray(star.converged)))}

  ref, reason = (None, "reference: off (no --sinkhorn-reference)")
  if config.sinkhorn_reference is not None:
    ref, reason = _import_reference(config.sinkhorn_reference)
  calls = [advjax_call(*s) for s in settings]
  if ref is not None:
    import torch  # pylint: disable=import-outside-toplevel
    torch.set_num_threads(os.cpu_count() or 1)
    ref_call, ref_once = _reference_call(
        ref, config, x, w, np.float32, config.sinkhorn_max_iterations - 1)
    calls.append(ref_call)
  bar = tqdm(total=(config.repeats + 1) * len(calls), desc=bar_desc,
             disable=not config.progress)
  timings = time_calls(calls, config.repeats, lambda _: bar.update())
  bar.close()

  rows = []
  for (tol, relaxation), call, t in zip(settings, calls, timings):
    out = call()
    n_iters = np.asarray(out.n_iters)
    rows.append({
        "tol": tol, "relaxation": relaxation,
        **timing.timing_fields(t, b),
        "median_iters": float(np.median(n_iters)),
        "max_iters": int(np.max(n_iters)),
        "converged": int(np.sum(np.asarray(out.converged))),
        "max_abs_error": float(np.max(np.abs(np.asarray(out.z) - z_star))),
        "max_cost_minus_eps": float(np.max(np.asarray(out.cost))
                                    - config.sinkhorn_eps)})
  result = {
      "status": "ok", "batch": b, "image_shape": list(config.sinkhorn_shape),
      "zero_pixel_fraction": float(np.mean(x == 0)),
      "converged_point": converged_point, "rows": rows,
      **rows[0],  # the default setting, for a quick look
      "reference": {"status": reason},
  }
  if ref is None:
    return result
  ref_z, ref_iters = ref_once()
  ref_err = float(np.max(np.abs(ref_z - z_star)))
  reference = {
      "status": "ok", "directory": config.sinkhorn_reference,
      "maxiters": config.sinkhorn_max_iterations - 1,
      "iterations": ref_iters, **timing.timing_fields(timings[-1], b),
      "max_abs_error": ref_err}
  # The same fixed point: both solvers run to convergence in float64.
  tight, why = _import_reference(config.sinkhorn_reference, tight=True)
  if tight is None:
    reference["converged_agreement"] = {"status": why}
  else:
    _, tight_once = _reference_call(tight, config, x, w, np.float64,
                                    _CONVERGED_MAX_ITERATIONS)
    z_tight, tight_iters = tight_once()
    reference["converged_agreement"] = {
        "status": "ok", "reference_iters": tight_iters,
        "max_abs_diff": float(np.max(np.abs(z_tight - z_star)))}
  reference["speed_ratio"] = _ratio(rows[0]["images_per_s"],
                                    reference["images_per_s"])
  as_accurate = [r for r in rows if r["max_abs_error"] <= ref_err]
  best = max(as_accurate, key=lambda r: r["images_per_s"], default=None)
  reference["matched"] = None if best is None else {
      "tol": best["tol"], "relaxation": best["relaxation"],
      "speed_ratio": _ratio(best["images_per_s"], reference["images_per_s"])}
  result["reference"] = reference
  return result


def _ratio(a, b):
  return a / b if a is not None and b else None


def run(config: SpeedConfig) -> dict:
  """Runs the speed benchmark and writes results.json and results.md.

  Args:
    config: a `SpeedConfig`.

  Returns:
    The results: 'config', 'machine', 'peers' (status, versions, logit
    check), 'rows' (one per attack and norm: images_per_s, ms_per_batch,
    ms_min, ms_max, ms_all, first_call_s, overhead, and the peer's
    figures and `peer_ratio` = advjax images/s / peer images/s), 'overhead'
    and 'peer_ratio' of PGD-k per norm, 'minimal' (status and rows of
    DeepFool and CW-L2: attack, setting, steps, search_steps, batch, the
    timing fields, ms_per_image, median_iters, success_rate, mean_l2, the
    peer's timing fields, peer_batch, peer_ms_per_image,
    peer_forward_calls, peer_success_rate, peer_mean_l2, peer_ratio, and
    matched_success_rate / matched_mean_l2: advjax on the peer's images),
    'sinkhorn' (the projection's images/s, iterations, and the reference's
    figures, speed ratio and agreement when run), 'seconds', and 'table'
    (markdown).

  Raises:
    ValueError: for a bad config.
    RuntimeError: if the PyTorch replica does not reproduce the logits.
  """
  _check_config(config)
  t_start = time.time()
  k_params, k_x, k_y, k_attack = jax.random.split(
      jax.random.key(config.seed), 4)
  model = models.get_model(config.model, num_classes=config.num_classes)
  variables = models.init_model(model, k_params, config.image_shape)
  x = jax.random.uniform(k_x, (config.batch,) + tuple(config.image_shape),
                         jnp.float32)
  y = jax.random.randint(k_y, (config.batch,), 0, config.num_classes,
                         jnp.int32)

  logits = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, x)
  peers, net = _setup_peers(config, variables, x, logits)
  peer_calls = {}
  if peers["status"] == "ok":
    peer_calls = _peer_calls(config, net, x, y)

  items = [
      _Item(a, n, s, r, p, c, *peer_calls.get((a, n), (None, None)))
      for a, n, s, r, p, c in _jax_items(config, model, variables, x, y,
                                         k_attack)]
  groups = [[((item.attack, item.norm, "advjax"), item.call) for item in items],
            [((item.attack, item.norm, "peer"), item.peer_call)
             for item in items if item.peer_call is not None]]
  timings = _time_groups(groups, config.repeats, "speed", config.progress)
  minimal = _minimal_section(config, model, variables, x,
                             jnp.argmax(logits, axis=-1), net)
  wasserstein = _sinkhorn_section(
      config, jax.random.fold_in(jax.random.key(config.seed), 1))

  t_fb = timings[("fwd+bwd", "-", "advjax")].median
  rows = []
  for item in items:
    t = timings[(item.attack, item.norm, "advjax")]
    row = {
        "attack": item.attack, "norm": item.norm, "steps": item.steps,
        "restarts": item.restarts, "gradient_passes": item.passes,
        **timing.timing_fields(t, config.batch),
        "overhead": t.median / (item.passes * t_fb),
    }
    row.update(_peer_fields(item.peer, timings.get((item.attack, item.norm,
                                                    "peer")),
                            config.batch, row["images_per_s"]))
    rows.append(row)

  pgd_name = f"PGD-{config.steps}"
  pgd_rows = {r["norm"]: r for r in rows if r["attack"] == pgd_name}
  results = {
      "config": dataclasses.asdict(config),
      "machine": timing.machine(),
      "peers": peers,
      "rows": rows,
      "overhead": {n: r["overhead"] for n, r in pgd_rows.items()},
      "overhead_target": OVERHEAD_TARGET,
      "peer_ratio": {n: r["peer_ratio"] for n, r in pgd_rows.items()},
      "minimal": minimal,
      "sinkhorn": wasserstein,
      "seconds": time.time() - t_start,
  }
  table = format_table(results)
  os.makedirs(config.out_dir, exist_ok=True)
  with open(os.path.join(config.out_dir, "results.json"), "w") as f:
    json.dump(results, f, indent=2)
  with open(os.path.join(config.out_dir, "results.md"), "w") as f:
    f.write(table + "\n")
  results["table"] = table
  return results


def _fmt(v, spec, missing):
  return missing if v is None else format(v, spec)


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
  peer_cols = ("torch images/s", "advjax / torch")
  lines = [
      "| attack | norm | images/s | ms/batch | ms min-max | overhead | "
      f"{peer_cols[0]} | {peer_cols[1]} |",
      "|---|---|---:|---:|---:|---:|---:|---:|",
  ]
  for r in results["rows"]:
    overhead = ("1 (ref)" if r["attack"] == "fwd+bwd"
                else f"{r['overhead']:.2f}")
    missing = _missing_peer(peers, r)
    if missing is not None:
      peer_cells = (missing, "-")
    else:
      peer_cells = (f"{r['peer_images_per_s']:.0f}", f"{r['peer_ratio']:.2f}")
    lines.append(
        f"| {r['attack']} | {r['norm']} | {r['images_per_s']:.0f} | "
        f"{r['ms_per_batch']:.1f} | {r['ms_min']:.1f}-{r['ms_max']:.1f} | "
        f"{overhead} | {peer_cells[0]} | {peer_cells[1]} |")
  steps = cfg["steps"]
  tail = ["", "overhead = time(attack) / (gradient passes x time(fwd+bwd)); "
          f"target for PGD-{steps}: <= {results['overhead_target']}"]
  for norm in ("linf", "l2"):
    ov = results["overhead"].get(norm)
    pr = results["peer_ratio"].get(norm)
    meets = ov is not None and ov <= results["overhead_target"]
    tail.append(
        f"- PGD-{steps} {norm}: overhead {_fmt(ov, '.2f', 'n/a')} "
        f"({'meets' if meets else 'misses'} target); advjax / torchattacks "
        f"{_fmt(pr, '.2f', 'n/a')}"
        + ("" if pr is None else
           f" ({'at least as fast' if pr >= 1 else 'slower'})"))
  if peer_ok:
    tail.append("- torch rows: plain autograd for fwd+bwd; torchattacks has "
                "no L2 FGM and no PGD restarts (n/a).")
  return "\n".join(head + lines + tail + _minimal_table(results)
                   + _sinkhorn_table(results))


def _missing_peer(peers: dict, row: dict) -> Optional[str]:
  """Why a row has no peer figures ('not installed', 'off' or 'n/a'); None
  when it has them."""
  if peers["status"] != "ok":
    return "not installed" if "not installed" in peers["status"] else "off"
  return "n/a" if row["peer"] is None else None


def _rate(images_per_s: float) -> str:
  """Images/s to 3 significant digits, without exponents."""
  return (f"{images_per_s:.0f}" if images_per_s >= 100
          else f"{images_per_s:.3g}")


def _minimal_table(results: dict) -> list[str]:
  mn = results.get("minimal")
  if mn is None or mn["status"] != "ok":
    return [] if mn is None else ["", f"Minimal-perturbation attacks: "
                                  f"{mn['status']}"]
  cfg, peers = results["config"], results["peers"]

  def quality(r, prefix=""):
    return (f"{100 * r[prefix + 'success_rate']:.0f}%, "
            f"{_fmt(r[prefix + 'mean_l2'], '.3f', '-')}")

  lines = [
      "", "## Minimal-perturbation attacks (DeepFool, Carlini-Wagner L2)", "",
      "Labels: the model's predictions at x, so every input starts correctly "
      "classified; batch: the first images of the batch above. Quality of "
      "the adversarials each library returns, scored alike with the Flax "
      "model: success rate (prediction != label), mean L2 distance of the "
      f"successful ones. Median of {cfg['minimal_repeats']} interleaved "
      "calls after a warm-up call. iterations: advjax's median per example "
      "(DeepFool: steps taken; CW: Adam steps over the whole search); torch "
      "forward calls: how often torchattacks called the network in one "
      "attack.",
      "",
      "| attack | setting | batch | images/s | ms/image | ms/batch min-max | "
      "iterations | success, mean L2 | torch batch | torch images/s | "
      "torch forward calls | torch success, mean L2 (advjax on those "
      "images) | advjax / torch |",
      "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ]
  for r in mn["rows"]:
    missing = _missing_peer(peers, r)
    if missing is not None:
      peer_cells = ("-", missing, "-", "-", "-")
    else:
      peer_cells = (str(r["peer_batch"]), _rate(r["peer_images_per_s"]),
                    str(r["peer_forward_calls"]),
                    f"{quality(r, 'peer_')} ({quality(r, 'matched_')})",
                    f"{r['peer_ratio']:.2f}")
    lines.append(
        f"| {r['attack']} | {r['setting']} | {r['batch']} | "
        f"{_rate(r['images_per_s'])} | {r['ms_per_image']:.3g} | "
        f"{r['ms_min']:.1f}-{r['ms_max']:.1f} | {r['median_iters']:.0f} | "
        f"{quality(r)} | " + " | ".join(peer_cells) + " |")
  tail = [
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
      f"- CW-L2 {cfg['cw_paper_search_steps']}x{cfg['cw_paper_steps']}: the "
      "paper's setting, per-example binary search over c with early abort; "
      "advjax only (n/a: torchattacks.CW has no binary search).",
      "- the weights are random, so decision boundaries lie near the inputs: "
      "DeepFool and the early abort stop sooner than on a trained model.",
  ]
  return lines + tail


def _sinkhorn_table(results: dict) -> list[str]:
  sk = results.get("sinkhorn")
  if sk is None or sk["status"] != "ok":
    return [] if sk is None else ["", f"Wasserstein projection: {sk['status']}"]
  cfg = results["config"]
  ref = sk["reference"]
  star = sk["converged_point"]
  shape = "x".join(str(d) for d in sk["image_shape"])
  lines = [
      "", f"## Wasserstein projection (projected Sinkhorn), {shape}, batch "
      f"{sk['batch']}", "",
      f"MNIST-like inputs (sklearn digits upsampled, zero border, "
      f"{100 * sk['zero_pixel_fraction']:.0f}% zero pixels), w = x + "
      f"N(0, {cfg['sinkhorn_noise']}^2); eps {cfg['sinkhorn_eps']} per unit "
      f"mass, lam {cfg['sinkhorn_lam']:g}, kernel {cfg['sinkhorn_kernel']}, "
      f"float32. Error: max abs(z - z*) in image units, z* the converged "
      f"projection (advjax float64, tol {star['tol']:g}: median "
      f"{star['median_iters']:.0f} iterations, {star['converged']}/"
      f"{sk['batch']} converged).",
      "",
      "| solver | stopping rule | images/s | ms/batch | ms min-max | "
      "iterations | converged | error |",
      "|---|---|---:|---:|---:|---:|---:|---:|",
  ]
  for r in sk["rows"]:
    lines.append(
        f"| advjax project_wasserstein (jit), relaxation {r['relaxation']:g} "
        f"| per example, dual change < {r['tol']:g} (1 + abs g), max "
        f"{cfg['sinkhorn_max_iterations']} | {r['images_per_s']:.0f} | "
        f"{r['ms_per_batch']:.1f} | {r['ms_min']:.1f}-{r['ms_max']:.1f} | "
        f"median {r['median_iters']:.0f}, max {r['max_iters']} | "
        f"{r['converged']}/{sk['batch']} | {r['max_abs_error']:.1e} |")
  if ref["status"] != "ok":
    return lines + ["| reference projected_sinkhorn | - | "
                    f"skipped: {ref['status']} | - | - | - | - | - |"]
  it = ref["iterations"]
  lines.append(
      f"| reference projected_sinkhorn (torch) | whole batch, objective "
      f"change <= 1e-4 + 1e-4 abs obj, maxiters {ref['maxiters']} | "
      f"{ref['images_per_s']:.1f} | {ref['ms_per_batch']:.1f} | "
      f"{ref['ms_min']:.1f}-{ref['ms_max']:.1f} | {_fmt(it, 'd', '?')} "
      "(batch) | "
      + ("-" if it is None else
         f"{'no (hit maxiters)' if it > ref['maxiters'] else 'yes'}")
      + f" | {ref['max_abs_error']:.1e} |")
  target = SINKHORN_SPEEDUP_TARGET
  verdict = lambda v: "meets" if v >= target else "misses"  # pylint: disable=unnecessary-lambda-assignment
  ratio = ref["speed_ratio"]
  tail = ["", f"- each at its default stopping rule: advjax / reference "
          f"{ratio:.1f}x images/s (advjax's error "
          f"{sk['rows'][0]['max_abs_error']:.1e} vs the reference's "
          f"{ref['max_abs_error']:.1e})"]
  m = ref["matched"]
  if m is None:
    tail.append("- at matched accuracy: no advjax row is as accurate as the "
                "reference")
  else:
    tail.append(
        f"- at matched accuracy (the fastest advjax row with error <= the "
        f"reference's: tol {m['tol']:g}, relaxation {m['relaxation']:g}): "
        f"{m['speed_ratio']:.1f}x images/s (target >= {target:g}x: "
        f"{verdict(m['speed_ratio'])})")
  ca = ref["converged_agreement"]
  if ca["status"] != "ok":
    tail.append(f"- converged agreement: {ca['status']}")
  else:
    ok = ca["max_abs_diff"] <= SINKHORN_AGREEMENT_TARGET
    tail.append(
        f"- the same result: both run to convergence in float64 (reference "
        f"with its stopping rule tightened to 1e-13 at run time, "
        f"{_fmt(ca['reference_iters'], 'd', '?')} iterations), max abs("
        f"reference - z*) = {ca['max_abs_diff']:.1e} (target "
        f"{SINKHORN_AGREEMENT_TARGET:g}: {'meets' if ok else 'misses'})")
  return lines + tail
