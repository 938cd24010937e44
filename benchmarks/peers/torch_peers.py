"""PyTorch peers: a weight-exact replica of Wong's CNN, the reference
AutoAttack and torchattacks' AutoAttack, for `benchmarks.speed`,
`benchmarks.autoattack` and the parity tests.

The replica lets `torchattacks` and the reference attack the very network
advjax attacks, so the libraries are timed and compared on identical
arithmetic. Everything here is optional: `unavailable_reason()` and
`autoattack_unavailable_reason()` say why the peers cannot run (the `peers`
extra, `pip install advjax[peers]`, is not installed) and nothing imports
torch at module import time.
"""
import importlib
import os
import re
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from advjax.evaluation import throughput

__all__ = [
    "unavailable_reason",
    "versions",
    "conv_out_size",
    "wong_cnn_from_flax",
    "to_nchw",
    "torch_call",
    "replica",
    "replica_if_available",
    "count_forward_calls",
    "torchattacks_peers",
    "minimal_peers",
    "run_counted",
    "LOGIT_TOLERANCE",
    "autoattack_unavailable_reason",
    "reference_autoattack",
    "torchattacks_autoattack",
    "autoattack_peers",
]


def unavailable_reason() -> Optional[str]:
  """Why the PyTorch peers cannot run; None when torch and torchattacks import.

  Returns:
    None if both import, else a short message naming what is missing.
  """
  missing = []
  for name in ("torch", "torchattacks"):
    try:
      importlib.import_module(name)
    except Exception as e:  # pylint: disable=broad-except
      missing.append(f"{name} ({type(e).__name__}: {e})")
  if missing:
    return ("peers not installed: " + "; ".join(missing) +
            ". Install the extra: pip install 'advjax[peers]'.")
  return None


def versions() -> dict:
  """torch / torchattacks versions and torch's intra-op thread count."""
  import torch  # pylint: disable=import-outside-toplevel
  import torchattacks  # pylint: disable=import-outside-toplevel
  return {"torch": torch.__version__,
          "torchattacks": getattr(torchattacks, "__version__", "unknown"),
          "torch_num_threads": torch.get_num_threads(),
          "cpu_count": os.cpu_count()}


def conv_out_size(n: int, kernel: int = 4, stride: int = 2,
                  pad: int = 1) -> int:
  """Spatial output size of a convolution (PyTorch/Flax explicit padding)."""
  return (n + 2 * pad - kernel) // stride + 1


def wong_cnn_from_flax(params: Mapping[str, Any],
                       image_shape: Sequence[int]) -> Any:
  """Builds `advjax.models.WongCNN` in PyTorch with the same weights.

  conv16 4x4 s2 p1, relu, conv32 4x4 s2 p1, relu, flatten, fc100, relu,
  fc K. Conv kernels go HWIO -> OIHW, dense kernels `[in, out]` ->
  `[out, in]`. Flax flattens NHWC activations and PyTorch NCHW ones, so the
  rows of the first dense kernel are permuted from `(h, w, c)` order to
  `(c, h, w)` order.

  Args:
    params: the Flax 'params' collection of a `WongCNN` (keys `Conv_0`,
      `Conv_1`, `Dense_0`, `Dense_1`).
    image_shape: per-example `(H, W, C)` the model is used at.

  Returns:
    A `torch.nn.Sequential` in eval mode, float32 on the CPU, with
    `requires_grad=False` parameters (attacks need input gradients only). It
    takes NCHW images `[B, C, H, W]`.

  Raises:
    ValueError: if `params` does not fit `image_shape`.
  """
  import torch  # pylint: disable=import-outside-toplevel
  from torch import nn  # pylint: disable=import-outside-toplevel

  h, w, c = (int(d) for d in image_shape)
  h2, w2 = (conv_out_size(conv_out_size(n)) for n in (h, w))
  k0 = np.asarray(params["Conv_0"]["kernel"], np.float32)
  k1 = np.asarray(params["Conv_1"]["kernel"], np.float32)
  d0 = np.asarray(params["Dense_0"]["kernel"], np.float32)
  d1 = np.asarray(params["Dense_1"]["kernel"], np.float32)
  if k0.shape[2] != c or d0.shape[0] != h2 * w2 * k1.shape[3]:
    raise ValueError(
        f"WongCNN params do not fit image shape {(h, w, c)}: conv_0 kernel "
        f"{k0.shape}, dense_0 kernel {d0.shape} (expected "
        f"{h2 * w2 * k1.shape[3]} input rows).")
  f0, f1, hidden, classes = k0.shape[3], k1.shape[3], d0.shape[1], d1.shape[1]
  net = nn.Sequential(
      nn.Conv2d(c, f0, 4, stride=2, padding=1), nn.ReLU(),
      nn.Conv2d(f0, f1, 4, stride=2, padding=1), nn.ReLU(),
      nn.Flatten(),
      nn.Linear(h2 * w2 * f1, hidden), nn.ReLU(),
      nn.Linear(hidden, classes))
  # (h, w, c) rows -> (c, h, w) rows.
  d0_nchw = d0.reshape(h2, w2, f1, hidden).transpose(2, 0, 1, 3).reshape(
      h2 * w2 * f1, hidden)
  weights = [
      (net[0], k0.transpose(3, 2, 0, 1), params["Conv_0"]["bias"]),
      (net[2], k1.transpose(3, 2, 0, 1), params["Conv_1"]["bias"]),
      (net[5], d0_nchw.T, params["Dense_0"]["bias"]),
      (net[7], d1.T, params["Dense_1"]["bias"]),
  ]
  with torch.no_grad():
    for layer, weight, bias in weights:
      layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(weight)))
      layer.bias.copy_(torch.from_numpy(np.array(bias, np.float32)))
  net.requires_grad_(False)
  return net.eval()


def to_nchw(x) -> Any:
  """NHWC array (JAX or NumPy) -> contiguous float32 NCHW torch tensor."""
  import torch  # pylint: disable=import-outside-toplevel
  nchw = np.asarray(x, np.float32).transpose(0, 3, 1, 2)
  return torch.from_numpy(np.array(nchw, order="C", copy=True))


LOGIT_TOLERANCE = 1e-4  # Flax vs PyTorch replica, max |logit difference|


def torch_call(fn, x_nhwc, y, n: int):
  """`fn(x, y)` on the first `n` images as torch tensors (x NCHW float32,
  y int64), converted once, as a call (a `throughput.Peer`'s)."""
  import torch  # pylint: disable=import-outside-toplevel
  xt = to_nchw(x_nhwc[:n])
  yt = torch.from_numpy(np.asarray(y[:n]).astype(np.int64))
  return lambda: fn(xt, yt)


def replica(params: Mapping[str, Any], image_shape: Sequence[int], x, logits,
            seed: int = 0) -> tuple:
  """The weight-exact torch replica of Wong's CNN, checked on `x` against
  the Flax `logits`, with torch on every core.

  Returns:
    `(status, net)`: status {'status': 'ok', 'logit_max_abs_diff', and
    `versions()`}.

  Raises:
    RuntimeError: the logits differ by more than `LOGIT_TOLERANCE` (the
      conversion is wrong; timings would compare different networks).
  """
  import torch  # pylint: disable=import-outside-toplevel
  torch.set_num_threads(os.cpu_count() or 1)
  torch.manual_seed(seed)
  net = wong_cnn_from_flax(params, image_shape)
  with torch.no_grad():
    torch_logits = net(to_nchw(x)).numpy()
  diff = float(np.max(np.abs(torch_logits - np.asarray(logits))))
  if not diff <= LOGIT_TOLERANCE:
    raise RuntimeError(
        f"The PyTorch replica's logits differ from Flax's by {diff:.3g} > "
        f"{LOGIT_TOLERANCE}; the weight conversion is wrong, timings would "
        "compare different networks.")
  return {"status": "ok", "logit_max_abs_diff": diff, **versions()}, net


def replica_if_available(enabled: bool, model_name: str,
                         params: Mapping[str, Any], image_shape, x, logits,
                         seed: int = 0) -> tuple:
  """`replica(...)` when the peers are `enabled`, torch and torchattacks
  import and the model is Wong's CNN ('wong_mnist'); else `({'status':
  why not}, None)`."""
  why = ("off (peers=False)" if not enabled else unavailable_reason() or (
      model_name != "wong_mnist" and f"no PyTorch replica of {model_name!r}"))
  if why:
    return {"status": why}, None
  return replica(params, image_shape, x, logits, seed)


def count_forward_calls(net: Any, call) -> tuple:
  """`(call(), how often it called `net`'s forward)`."""
  calls = []
  handle = net.register_forward_pre_hook(lambda *_: calls.append(1))
  try:
    out = call()
  finally:
    handle.remove()
  return out, len(calls)


def run_counted(net: Any):
  """`peer -> (x_adv NHWC numpy, {'peer_forward_calls': n})`: a torch
  peer's adversarials and how often it called `net`
  (`throughput.score_adversarials`' `run_peer`)."""
  def run(peer):
    adv, calls = count_forward_calls(net, peer.call)
    return adv.detach().numpy().transpose(0, 2, 3, 1), {
        "peer_forward_calls": calls}
  return run


def torchattacks_peers(net: Any, x, y, *, batch: int, steps: int,
                       eps_linf: float, eps_l2: float) -> dict:
  """torch equivalents of the speed rows on `net`, keyed by (attack, norm):
  autograd's forward+backward, torchattacks' FGSM, PGD and PGDL2 (k
  `steps` of 2.5 eps / k, random start), each a `throughput.Peer`."""
  import torch  # pylint: disable=import-outside-toplevel
  import torchattacks  # pylint: disable=import-outside-toplevel
  pgd = lambda cls, eps: cls(net, eps=eps, alpha=2.5 * eps / steps,
                             steps=steps, random_start=True)

  def forward_backward(x, y):
    z = x.clone().requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(net(z), y, reduction="sum")
    return torch.autograd.grad(loss, z)[0]

  calls = {("fwd+bwd", "-"): ("torch autograd", forward_backward),
           ("FGSM", "linf"): ("torchattacks.FGSM",
                              torchattacks.FGSM(net, eps=eps_linf)),
           (f"PGD-{steps}", "linf"): ("torchattacks.PGD",
                                      pgd(torchattacks.PGD, eps_linf)),
           (f"PGD-{steps}", "l2"): ("torchattacks.PGDL2",
                                    pgd(torchattacks.PGDL2, eps_l2))}
  return {k: throughput.Peer(name, batch, torch_call(fn, x, y, batch))
          for k, (name, fn) in calls.items()}


def minimal_peers(net: Any, x, y, attacks: dict) -> dict:
  """torchattacks' minimal-perturbation attacks on `net` as
  `throughput.Peer`s: `attacks` maps a row name to (class name, keywords,
  images), e.g. {'DeepFool': ('DeepFool', {'steps': 50}, 16)}; each runs on
  the first images of `x` with labels `y` (torchattacks.JSMA targets
  label + 1 itself). Rows naming the same (class, keywords) share one
  attack object."""
  import torchattacks  # pylint: disable=import-outside-toplevel
  made = {}
  out = {}
  for row, (cls, kwargs, n) in attacks.items():
    key = (cls, tuple(sorted(kwargs.items())))
    atk = made.setdefault(key, getattr(torchattacks, cls)(net, **kwargs))
    out[row] = throughput.Peer(f"torchattacks.{cls}", n,
                               torch_call(atk, x, y, n))
  return out


def autoattack_unavailable_reason() -> Optional[str]:
  """Why the reference AutoAttack cannot run here; None when torch and
  `pyautoattack` (fra31/auto-attack on PyPI) import."""
  missing = []
  for name in ("torch", "pyautoattack"):
    try:
      importlib.import_module(name)
    except Exception as e:  # pylint: disable=broad-except
      missing.append(f"{name} ({type(e).__name__}: {e})")
  if missing:
    return ("reference AutoAttack not installed: " + "; ".join(missing) +
            ". Install: pip install 'advjax[peers]' && pip install --no-deps "
            "pyautoattack torchattacks.")
  return None


_STAGE_LOG = re.compile(r"robust accuracy after ([A-Z\-]+): ([0-9.]+)% "
                        r"\(total time ([0-9.]+) s\)")


def reference_autoattack(net: Any, x, y, *, eps: float, norm: str = "linf",
                         version: str = "standard", seed: int = 0,
                         batch_size: int = 500) -> dict:
  """Runs the reference AutoAttack (pyautoattack, fra31/auto-attack) on a
  PyTorch model.

  Args:
    net: a `torch.nn.Module` taking NCHW images (e.g. `wong_cnn_from_flax`).
    x: `[N, H, W, C]` NHWC images in [0, 1]; y: `[N]` labels.
    eps, norm, version: AutoAttack's threat model and version.
    seed: the reference's seed.
    batch_size: its batch size.

  Returns:
    `{'seconds', 'robust' [N] bool, 'stages': {name: robust accuracy},
    'stage_seconds': {name: cumulative seconds}, 'version'}`; stage names
    lower-case as advjax's ('apgd-ce', ...), with 'clean'.
  """
  import logging  # pylint: disable=import-outside-toplevel
  import time  # pylint: disable=import-outside-toplevel
  import torch  # pylint: disable=import-outside-toplevel
  from pyautoattack import AutoAttack  # pylint: disable=import-outside-toplevel

  records = []

  class _Grab(logging.Handler):
    def emit(self, record):
      records.append(record.getMessage())

  logger = logging.getLogger("auto-attack")
  handler = _Grab(level=logging.DEBUG)
  old = logger.level, logger.propagate
  logger.addHandler(handler)
  logger.setLevel(logging.DEBUG)
  logger.propagate = False
  try:
    xt = to_nchw(x)
    yt = torch.from_numpy(np.asarray(y, np.int64))
    with torch.no_grad():
      clean = (net(xt).argmax(1) == yt).numpy()
    aa = AutoAttack(net, eps=float(eps),
                    norm={"linf": "Linf", "l2": "L2"}[norm], version=version,
                    seed=seed)
    t0 = time.perf_counter()
    x_adv, _ = aa.run_standard_evaluation(xt, yt, batch_size=batch_size)
    seconds = time.perf_counter() - t0
  finally:
    logger.removeHandler(handler)
    logger.setLevel(old[0])
    logger.propagate = old[1]
  with torch.no_grad():
    robust = (net(x_adv).argmax(1) == yt).numpy() & clean
  stages = {"clean": float(clean.mean())}
  stage_seconds = {}
  for msg in records:
    m = _STAGE_LOG.search(msg)
    if m:
      stages[m.group(1).lower()] = float(m.group(2)) / 100
      stage_seconds[m.group(1).lower()] = float(m.group(3))
  return {"seconds": seconds, "robust": robust, "stages": stages,
          "stage_seconds": stage_seconds, "version": version}


def torchattacks_autoattack(net: Any, x, y, *, eps: float,
                            norm: str = "linf", seed: int = 0,
                            num_classes: int = 10) -> dict:
  """torchattacks' AutoAttack (its own port of the four attacks) on the same
  model; returns `{'seconds', 'robust' [N] bool}`."""
  import time  # pylint: disable=import-outside-toplevel
  import torch  # pylint: disable=import-outside-toplevel
  import torchattacks  # pylint: disable=import-outside-toplevel
  xt = to_nchw(x)
  yt = torch.from_numpy(np.asarray(y, np.int64))
  atk = torchattacks.AutoAttack(net, norm={"linf": "Linf", "l2": "L2"}[norm],
                                eps=float(eps), version="standard",
                                n_classes=num_classes, seed=seed)
  t0 = time.perf_counter()
  x_adv = atk(xt, yt)
  seconds = time.perf_counter() - t0
  with torch.no_grad():
    robust = (net(x_adv).argmax(1) == yt).numpy() & (
        net(xt).argmax(1) == yt).numpy()
  return {"seconds": seconds, "robust": robust}


def autoattack_peers(params: Mapping[str, Any], image_shape: Sequence[int],
                     x, y, *, eps: float, norm: str = "linf",
                     version: str = "standard", seeds: int = 1,
                     batch_size: int = 500, num_classes: int = 10,
                     ours: Optional[Mapping[str, Any]] = None) -> dict:
  """The reference AutoAttack (seeds 0..seeds-1) and torchattacks' on the
  PyTorch replica of Wong's CNN `params` (`wong_cnn_from_flax`).

  Args:
    ours: advjax's `evaluation.autoattack_repeats(...).summary()` on the
      same inputs, to compare with (speed, per-example agreement).

  Returns:
    `{'skipped': why}` when the reference is not installed; else
    `{'reference': {'seconds' (per seed), 'median_seconds',
    'stages_per_seed', 'stages_mean', 'stage_seconds' (seed 0, per stage),
    'robust_accuracy', 'robust' (seed 0's outcomes as bits)},
    'torchattacks': {'seconds', 'robust_accuracy'} or {'skipped'},
    'versions'}`, and with `ours` 'speedup_warm' and 'speedup_cold' (the
    reference's median seconds over advjax's) and 'agreement' (the
    fraction of examples whose robust bit is the same, seed 0 vs advjax's
    first key).
  """
  from advjax.evaluation import to_bits  # pylint: disable=import-outside-toplevel
  reason = autoattack_unavailable_reason()
  if reason is not None:
    return {"skipped": reason}
  import torch  # pylint: disable=import-outside-toplevel
  torch.set_num_threads(os.cpu_count() or 1)
  net = wong_cnn_from_flax(params, image_shape)
  runs = [reference_autoattack(net, x, y, eps=eps, norm=norm,
                               version=version, seed=s,
                               batch_size=batch_size) for s in range(seeds)]
  cumulative = list(runs[0]["stage_seconds"].items())
  out = {"reference": {
      "seconds": [r["seconds"] for r in runs],
      "stages_per_seed": [r["stages"] for r in runs],
      "stages_mean": {k: float(np.mean([r["stages"][k] for r in runs]))
                      for k in runs[0]["stages"]},
      "stage_seconds": {k: t - (cumulative[i - 1][1] if i else 0.)
                        for i, (k, t) in enumerate(cumulative)},
      "robust_accuracy": float(runs[0]["robust"].mean()),
      "robust": to_bits(runs[0]["robust"])}}
  try:
    if version != "standard":
      raise ImportError(f"torchattacks has no AutoAttack {version!r}")
    ta = torchattacks_autoattack(net, x, y, eps=eps, norm=norm,
                                 num_classes=num_classes)
    out["torchattacks"] = {"seconds": ta["seconds"],
                           "robust_accuracy": float(ta["robust"].mean())}
  except ImportError as e:
    out["torchattacks"] = {"skipped": str(e)}
  out["versions"] = {"torch": torch.__version__,
                     "threads": torch.get_num_threads()}
  ref = out["reference"]
  ref["median_seconds"] = float(np.median(ref["seconds"]))
  if ours is not None:
    out["speedup_warm"] = ref["median_seconds"] / ours["seconds_warm"]
    out["speedup_cold"] = ref["median_seconds"] / ours["seconds_cold"]
    out["agreement"] = float(np.mean(np.asarray(list(ref["robust"])) ==
                                     np.asarray(list(ours["robust"]))))
  return out
