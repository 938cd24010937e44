"""Robust and non-robust features (Ilyas et al. 2019).

Ilyas et al. argue that adversarial examples exploit *non-robust features*:
patterns of the data that predict the label well but that a small
perturbation can flip. They separate the two kinds by building datasets:

- `robust_dataset`: every training image re-synthesised from another start
  (a random other training image, or noise) so that a model's penultimate
  `representation` matches the original's, with the original label. Built
  from an adversarially trained model, it keeps the features that model
  uses (robust ones: D_R); built from a standard model, the control D_NR.
  A standard model trained on D_R is somewhat robust on the true test set.
- `non_robust_dataset`: every training image moved by a small targeted
  attack on a standard model until it predicts the target, relabelled with
  the target (`target_labels`: random, D_rand, or `y + 1 mod K`, D_det).
  The images still look like their old class; a standard model trained on
  them still generalises to the true test set (through the non-robust
  features alone).
- `construct`: one of these datasets from its settings (a `Construction`:
  D_R / D_NR, D_rand or D_det), cached in a directory by the source
  model's weights, the data and the settings; `RobustDataset.stats` and
  `NonRobustDataset.stats` measure how well a construction did.
- `RobustFeatureToy`: the toy study's settings, its two models (a robust
  linear classifier and a noise-memorising MLP) and their evaluation: the
  Linf eps at which each falls to 50 % test accuracy.
- `robust_feature_toy`: a dataset with one robust feature (the image is
  dark or light) plus random noise and label noise, on which a linear
  classifier is robust and a network that memorises the noise is not (the
  seed's "Are adversarial examples always features?").

The two constructions are host-level drivers like the evaluators: they run
on the shared batch iterator (`evaluation.batching.map_examples`: fixed
calls, every example counted, sharded over every device, per-example keys
`fold_in(key, global_index)`), jit their per-call function and show a
progress bar when asked.

References:
  Ilyas, Santurkar, Tsipras, Engstrom, Tran, Madry, "Adversarial examples
  are not bugs, they are features", NeurIPS 2019.
"""
import functools
import hashlib
import json
import os
from typing import (Any, Callable, Dict, NamedTuple, Optional, Sequence,
                    Tuple, Union)

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from advjax import checks, data, models, projections, rng, training
from advjax.attacks import base, gradient
from advjax.evaluation import batching
from advjax.evaluation.curves import eps_at_accuracy
from advjax.evaluation.predict import accuracy
from advjax.evaluation.robust_accuracy import robust_accuracy
from advjax.training import methods
from advjax.types import Array, Bounds, PRNGKey

__all__ = ["representation", "representation_fn", "RobustDataset",
           "robust_dataset", "NonRobustDataset", "non_robust_dataset",
           "TARGETS", "target_labels", "robust_feature_toy", "STARTS",
           "KINDS", "Construction", "construct", "median_l2", "TOY_MODELS",
           "RobustFeatureToy"]

STARTS = ("other", "noise")
TARGETS = ("random", "deterministic")
KINDS = ("robust",) + TARGETS


# --------------------------------------------------------------------------
# The penultimate representation.
# --------------------------------------------------------------------------
def representation(model: nn.Module, variables, x: Array,
                   **kwargs: Any) -> Array:
  """The input of the model's last dense layer: its penultimate
  representation, `[B, D]`.

  The model runs in inference mode (`train=False`) with
  `flax.linen.intercept_methods` recording the input of every
  `nn.Dense.__call__`; the last one recorded is returned, flattened per
  example. For every model of `advjax.models` with a dense head (WongCNN,
  MadryCNN, CarliniCNN, GTSRBCNN, PreActResNet18, WideResNet) that is the
  input of the logit layer: after the last hidden layer's relu, or the
  global average pool of a ResNet. Pure: works under `jit`, `grad` and
  `vmap` (under jit the unused logit layer is removed by XLA).

  Args:
    model: a flax module, `__call__(x, train=False)` or `__call__(x)`.
    variables: its variables.
    x: `[B, H, W, C]` float inputs.
    **kwargs: more keywords of the model's `__call__`.

  Returns:
    `[B, D]` float32.

  Raises:
    ValueError: the model calls no `nn.Dense` (e.g. MetzenDetector, whose
      head is a 1x1 convolution and a mean).
  """
  seen = []

  def record(next_fun, args, kw, context):
    if (isinstance(context.module, nn.Dense)
        and context.method_name == "__call__"):
      seen.append(args[0] if args else kw["inputs"])
    return next_fun(*args, **kw)

  with nn.intercept_methods(record):
    model.apply(variables, x, **models.apply_kwargs(model, False, variables),
                **kwargs)
  if not seen:
    raise ValueError(f"representation: {type(model).__name__} calls no "
                     "flax.linen.Dense layer; its penultimate representation "
                     "is undefined here.")
  r = seen[-1]
  return r.reshape((r.shape[0], -1)).astype(jnp.float32)


def representation_fn(model: nn.Module) -> Callable[[Any, Array], Array]:
  """`(variables, x) -> representation(model, variables, x)`: the form
  `robust_dataset` takes (variables traced, not baked in)."""
  return lambda variables, x: representation(model, variables, x)


# --------------------------------------------------------------------------
# Shared checks and the driver.
# --------------------------------------------------------------------------
def _check_data(name: str, x, y) -> tuple:
  x = np.asarray(x)
  y = np.asarray(y)
  if x.ndim < 2 or not np.issubdtype(x.dtype, np.floating):
    raise ValueError(f"{name}: x must be float images [N, H, W, C]; got "
                     f"{x.dtype} of shape {x.shape}.")
  if y.shape != (x.shape[0],) or not np.issubdtype(y.dtype, np.integer):
    raise ValueError(f"{name}: y must be [N] = [{x.shape[0]}] int labels; "
                     f"got {y.dtype} of shape {y.shape}.")
  if x.shape[0] == 0:
    raise ValueError(f"{name}: x is empty.")
  if not np.all(np.isfinite(x)):
    raise ValueError(f"{name}: x holds NaN or inf.")
  return x, y.astype(np.int32)


def _check_budget(name: str, steps: int, **positive) -> None:
  if int(steps) != steps or steps < 1:
    raise ValueError(f"{name}: steps must be an integer >= 1, got {steps}.")
  for k, v in positive.items():
    if v is not None and not (np.isfinite(v) and v > 0):
      raise ValueError(f"{name}: {k} must be finite and > 0, got {v}.")


def _check_bounds(name: str, x: np.ndarray, bounds: Bounds) -> None:
  lo, hi = bounds
  if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
    raise ValueError(f"{name}: bounds must be finite with lo < hi, got "
                     f"{tuple(bounds)}.")
  if x.min() < lo or x.max() > hi:
    raise ValueError(f"{name}: x must lie in bounds {tuple(bounds)}; got "
                     f"values in [{x.min():.4g}, {x.max():.4g}].")


def median_l2(a, b) -> float:
  """The median over examples of the L2 distance between two image
  batches `[N, ...]` (host arrays)."""
  a, b = np.asarray(a), np.asarray(b)
  return float(np.median(np.linalg.norm((a - b).reshape(len(a), -1),
                                        axis=1)))


def _relative_distance(r: Array, target: Array) -> Array:
  """`|r - target|_2 / |target|_2` per example (`[B]`)."""
  scale = jnp.maximum(jnp.linalg.norm(target, axis=-1), 1e-12)
  return jnp.linalg.norm(r - target, axis=-1) / scale


# --------------------------------------------------------------------------
# The robust dataset.
# --------------------------------------------------------------------------
class RobustDataset(NamedTuple):
  """Images re-synthesised to match a model's representation.

  Attributes:
    images: `[N, H, W, C]` the synthesised images, inside the bounds.
    labels: `[N]` int32, the original labels.
    start_index: `[N]` int32, the training image each one started from
      (-1 for a noise start).
    initial_distance: `[N]` relative representation distance
      `|g(x0) - g(x)| / |g(x)|` at the start.
    distance: `[N]` the same at the end.
  """
  images: np.ndarray
  labels: np.ndarray
  start_index: np.ndarray
  initial_distance: np.ndarray
  distance: np.ndarray

  @property
  def reduction(self) -> float:
    """Median of `distance / initial_distance` (below 1: the optimisation
    brought the representations closer)."""
    return float(np.median(self.distance / np.maximum(
        self.initial_distance, 1e-12)))

  def dataset(self, num_classes: int, name: str = "robust",
              split: str = "train") -> data.Dataset:
    """The images and labels as a `data.Dataset`."""
    return data.Dataset(self.images, self.labels, int(num_classes), name,
                        split)

  def stats(self, originals) -> Dict[str, float]:
    """How the construction did, given the original images `[N, ...]`:
    the median relative representation distance at the start and the
    end, their `reduction`, and the median L2 distance of the images to
    the originals (`to_original`) and to their start images (`to_start`,
    for starts from other images)."""
    x = np.asarray(originals)
    out = {"size": int(self.labels.shape[0]),
           "to_original": median_l2(self.images, x),
           "initial_distance": float(np.median(self.initial_distance)),
           "distance": float(np.median(self.distance)),
           "reduction": self.reduction}
    if np.all(self.start_index >= 0):
      out["to_start"] = median_l2(self.images, x[self.start_index])
    return out


def _other_index(key: PRNGKey, n: int) -> np.ndarray:
  """Per example i a uniformly random index j != i of `n` (from i's key)."""
  keys = rng.example_keys(key, jnp.arange(n, dtype=jnp.int32))
  j = jax.vmap(lambda k: jax.random.randint(k, (), 0, n - 1))(keys)
  j = np.asarray(j)
  return (j + (j >= np.arange(n))).astype(np.int32)


def robust_dataset(rep_fn: Callable[[Any, Array], Array], variables, x, y,
                   *, key: PRNGKey, steps: int = 1000,
                   step_size: float = 0.1, start: str = "other",
                   bounds: Bounds = (0., 1.), batch_size: int = 256,
                   mesh=None, device_batch_size: Optional[int] = None,
                   unroll=None, progress: bool = False) -> RobustDataset:
  """Re-synthesises every image from another start so that its
  representation matches the original's (Ilyas et al.'s D_R / D_NR).

  For each example `x_i`, from a start `x0` (a uniformly random other
  image `x_j`, j != i, or uniform noise in the box), `steps` normalised
  L2 gradient steps of length `step_size` on the relative distance

      |g(z) - g(x_i)|_2 / |g(x_i)|_2,    z in the box,

  with `g = rep_fn(variables, .)` (the penultimate layer of an
  adversarially trained model for D_R, of a standard one for D_NR). The
  label stays `y_i`. Each example's start depends only on `key`, its index
  and N; its result does not depend on the batch size or the devices.

  Args:
    rep_fn: `(variables, x [B, ...]) -> [B, D]`, e.g.
      `representation_fn(model)`.
    variables: the model's variables.
    x: `[N, H, W, C]` float images inside `bounds` (the training set).
    y: `[N]` int labels.
    key: `jax.random.key`: the starts.
    steps: gradient steps, >= 1 (static; Ilyas et al.: 1000).
    step_size: L2 length of each step, > 0 (traced; Ilyas et al.: 0.1).
    start: 'other' (a random other image of x; Ilyas et al.'s choice) or
      'noise' (uniform in the box).
    bounds: the box the images stay in.
    batch_size: examples per progress step (not the compiled shape).
    mesh, device_batch_size: as `evaluation.robust_accuracy`.
    unroll: the loop's `lax.scan` unroll (see `attacks.base.resolve_unroll`).
    progress: show a progress bar.

  Returns:
    `RobustDataset`.

  Raises:
    ValueError: bad shapes or dtypes, non-finite or out-of-box images,
      steps < 1, step_size <= 0, an unknown start, or 'other' with N < 2.

  Note:
    The optimisation is non-convex; it is run for a fixed number of steps
    and reports the distance it reached per example (`distance`,
    `reduction`): check it before trusting the dataset.

  References:
    Ilyas et al. 2019, Section 3.1 (the settings quoted as Ilyas et
    al.'s are from their appendix as recalled, not checked against a copy).
  """
  name = "robust_dataset"
  x, y = _check_data(name, x, y)
  _check_budget(name, steps, step_size=step_size)
  _check_bounds(name, x, bounds)
  if start not in STARTS:
    raise ValueError(f"{name}: unknown start {start!r}; use one of {STARTS}.")
  n = x.shape[0]
  if start == "other" and n < 2:
    raise ValueError(f"{name}: start='other' needs at least 2 images.")
  key = rng.as_key(key)
  lo, hi = bounds
  columns = {"x": x}
  if start == "other":
    start_index = _other_index(jax.random.fold_in(key, 0), n)
    columns["x0"] = x[start_index]
  else:
    start_index = np.full((n,), -1, np.int32)
  steps = int(steps)

  def batch_fn(consts, batch):
    v, k, size = consts
    g = lambda z: rep_fn(v, z)
    target = jax.lax.stop_gradient(g(batch["x"]))
    if start == "noise":
      keys = rng.example_keys(jax.random.fold_in(k, 1), batch["index"])
      x0 = rng.draw(lambda kk, shape: jax.random.uniform(
          kk, shape, batch["x"].dtype, lo, hi), keys, batch["x"].shape)
    else:
      x0 = batch["x0"]
    out = base.attack_loop(
        lambda z: -_relative_distance(g(z), target), x0, jnp.zeros_like(x0),
        steps=steps, optimizer=base.steepest_ascent("l2", size),
        project=lambda d, z: projections.project_box(d, z, bounds),
        bounds=bounds, unroll=unroll, project_start=False)
    xr = x0 + out.delta
    return {"images": xr, "initial": _relative_distance(g(x0), target),
            "final": _relative_distance(g(xr), target)}

  out = batching.map_batched(
      batch_fn, columns, (variables, key, jnp.float32(step_size)),
      batch_size=batch_size, mesh=mesh, device_batch_size=device_batch_size,
      progress=progress, desc=name)
  return RobustDataset(out["images"].astype(x.dtype), y, start_index,
                       out["initial"], out["final"])


# --------------------------------------------------------------------------
# The non-robust dataset.
# --------------------------------------------------------------------------
class NonRobustDataset(NamedTuple):
  """Images moved by a targeted attack and relabelled with the target.

  Attributes:
    images: `[N, H, W, C]` the attacked images, within eps of the originals
      and inside the bounds.
    labels: `[N]` int32, the targets (the new labels).
    source_labels: `[N]` int32, the original labels.
    success: `[N]` bool, the source model predicts the target.
    distance: `[N]` the perturbation's size in the attack's norm.
  """
  images: np.ndarray
  labels: np.ndarray
  source_labels: np.ndarray
  success: np.ndarray
  distance: np.ndarray

  @property
  def success_rate(self) -> float:
    """Fraction of images the source model classifies as their target."""
    return float(np.mean(self.success))

  def dataset(self, num_classes: int, name: str = "non_robust",
              split: str = "train") -> data.Dataset:
    """The images and (new) labels as a `data.Dataset`."""
    return data.Dataset(self.images, self.labels, int(num_classes), name,
                        split)

  def stats(self, originals) -> Dict[str, float]:
    """How the construction did, given the original images `[N, ...]`:
    the fraction that reached its target, the mean and largest
    perturbation (in the attack's norm) and the median L2 distance to the
    originals."""
    return {"size": int(self.labels.shape[0]),
            "to_original": median_l2(self.images, originals),
            "success_rate": self.success_rate,
            "mean_distance": float(np.mean(self.distance)),
            "max_distance": float(np.max(self.distance))}


def target_labels(y, num_classes: int, kind: str,
                  key: Optional[PRNGKey] = None) -> np.ndarray:
  """The targets of Ilyas et al.'s non-robust datasets.

  Args:
    y: `[N]` int labels in `[0, num_classes)`.
    num_classes: K >= 2.
    kind: 'random' (D_rand: per example uniform over the K - 1 other
      classes, from `fold_in(key, i)`) or 'deterministic' (D_det:
      `(y + 1) mod K`).
    key: `jax.random.key`, needed for 'random'.

  Returns:
    `[N]` int32 targets, each different from its label.

  Raises:
    ValueError: an unknown kind, K < 2, labels out of range, or 'random'
      without a key.
  """
  y = np.asarray(y)
  if kind not in TARGETS:
    raise ValueError(f"target_labels: unknown kind {kind!r}; use one of "
                     f"{TARGETS}.")
  if num_classes < 2:
    raise ValueError(f"target_labels: need num_classes >= 2, got "
                     f"{num_classes}.")
  if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
    raise ValueError(f"target_labels: y must be [N] int labels, got "
                     f"{y.dtype} of shape {y.shape}.")
  if y.size and (y.min() < 0 or y.max() >= num_classes):
    raise ValueError(f"target_labels: labels must lie in [0, {num_classes}),"
                     f" got [{y.min()}, {y.max()}].")
  if kind == "deterministic":
    return ((y + 1) % num_classes).astype(np.int32)
  if key is None:
    raise ValueError("target_labels: kind='random' needs key=jax.random.key"
                     "(seed).")
  keys = rng.example_keys(rng.as_key(key), jnp.arange(y.size, dtype=jnp.int32))
  shift = np.asarray(jax.vmap(lambda k: jax.random.randint(
      k, (), 1, num_classes))(keys))
  return ((y + shift) % num_classes).astype(np.int32)


def non_robust_dataset(apply_fn: Callable[[Any, Array], Array], variables,
                       x, y, targets, *, eps: float, steps: int = 100,
                       step_size: Optional[float] = None, norm: str = "l2",
                       key: Optional[PRNGKey] = None,
                       random_start: bool = False,
                       bounds: Bounds = (0., 1.), batch_size: int = 256,
                       mesh=None, device_batch_size: Optional[int] = None,
                       progress: bool = False) -> NonRobustDataset:
  """Moves every image towards its target with targeted PGD on a (standard)
  model and relabels it with the target (Ilyas et al.'s D_rand / D_det).

  `x_adv_i = argmin_{|d| <= eps} CE(f(x_i + d), t_i)` by `gradient.pgd`
  (targeted, `norm`, `steps` steps of `step_size`), inside the box; the new
  label is `t_i`. To a human (and to a robust model) the images still show
  their old class: what links them to the new label are the non-robust
  features the attack added.

  Args:
    apply_fn: `(variables, x) -> logits [B, K]`, inference mode.
    variables: the model's variables.
    x: `[N, H, W, C]` float images inside `bounds` (the training set).
    y: `[N]` int labels (kept as `source_labels`).
    targets: `[N]` int targets in `[0, K)` (`target_labels`).
    eps: the attack's radius, > 0 (Ilyas et al., CIFAR-10: L2 0.5).
    steps: PGD steps, >= 1 (Ilyas et al.: 100).
    step_size: > 0; default `2.5 eps / steps` (Ilyas et al.: 0.1).
    norm: 'l2' (the paper), 'linf' or 'l1'.
    key: `jax.random.key`, needed with `random_start`.
    random_start: start PGD uniformly in the ball (the paper: no).
    bounds: the box.
    batch_size, mesh, device_batch_size, progress: as `robust_dataset`.

  Returns:
    `NonRobustDataset`.

  Raises:
    ValueError: bad shapes or dtypes, out-of-box images, eps <= 0, steps <
      1, step_size <= 0, targets out of range, an unknown norm, or
      `random_start` without a key.

  References:
    Ilyas et al. 2019, Section 3.2 (settings: as `robust_dataset`).
  """
  name = "non_robust_dataset"
  x, y = _check_data(name, x, y)
  _check_budget(name, steps, eps=eps, step_size=step_size)
  _check_bounds(name, x, bounds)
  projections.check_norm(norm)
  k = checks.check_attack_inputs(lambda z: apply_fn(variables, z), x[:1],
                                 y[:1], bounds=bounds, name=name).num_classes
  t = np.asarray(targets)
  if t.shape != y.shape or not np.issubdtype(t.dtype, np.integer):
    raise ValueError(f"{name}: targets must be [N] = [{y.shape[0]}] int "
                     f"labels; got {t.dtype} of shape {t.shape}.")
  if t.min() < 0 or t.max() >= k:
    raise ValueError(f"{name}: targets must lie in [0, {k}) (the model's "
                     f"classes), got [{t.min()}, {t.max()}].")
  if random_start and key is None:
    raise ValueError(f"{name}: random_start needs key=jax.random.key(seed).")
  key = rng.as_key(jax.random.key(0) if key is None else key)
  steps = int(steps)

  def batch_fn(consts, batch):
    v, kk, e, size = consts
    model_fn = lambda z: apply_fn(v, z)
    keys = rng.example_keys(kk, batch["index"])
    xa = gradient.pgd(model_fn, batch["x"], batch["t"], eps=e, key=keys,
                      norm=norm, steps=steps, step_size=size,
                      random_start=random_start, targeted=True,
                      bounds=bounds)
    pred = jnp.argmax(model_fn(xa), axis=-1)
    return {"images": xa, "success": pred == batch["t"],
            "distance": projections.lp_norm(xa - batch["x"], norm)}

  size = 2.5 * eps / steps if step_size is None else step_size
  out = batching.map_batched(
      batch_fn, {"x": x, "t": t.astype(np.int32)},
      (variables, key, jnp.float32(eps), jnp.float32(size)),
      batch_size=batch_size, mesh=mesh, device_batch_size=device_batch_size,
      progress=progress, desc=name)
  return NonRobustDataset(out["images"].astype(x.dtype), t.astype(np.int32),
                          y, out["success"], out["distance"])


# --------------------------------------------------------------------------
# A construction from its settings, cached.
# --------------------------------------------------------------------------
class Construction(NamedTuple):
  """How one of Ilyas et al.'s datasets is built from a source model.

  Attributes:
    kind: 'robust' (`robust_dataset`: D_R from an adversarially trained
      source, D_NR from a standard one), 'random' (D_rand) or
      'deterministic' (D_det) (`non_robust_dataset` towards
      `target_labels` of that kind).
    steps: gradient steps (robust) or PGD steps (non-robust).
    step_size: their length.
    eps: the targeted attack's radius (non-robust kinds only).
    start: the robust kind's start ('other' or 'noise').
    norm: the targeted attack's norm (non-robust kinds).
  """
  kind: str
  steps: int
  step_size: float
  eps: Optional[float] = None
  start: str = "other"
  norm: str = "l2"


def _digest(construction: Construction, key: PRNGKey, variables, x, y,
            num_classes: int) -> str:
  return hashlib.sha256(json.dumps([
      construction._asdict(), np.asarray(jax.random.key_data(
          rng.as_key(key))).tolist(), batching.fingerprint_tree(variables),
      batching.fingerprint_arrays(x, y), int(num_classes)],
                                   sort_keys=True).encode()).hexdigest()


def construct(construction: Construction, model: nn.Module, variables, x, y,
              num_classes: int, *, key: PRNGKey,
              cache_dir: Optional[str] = None, name: str = "dataset",
              **map_kwargs) -> Union[RobustDataset, NonRobustDataset]:
  """One of Ilyas et al.'s datasets built from the data `(x, y)` with the
  source model `model` / `variables`, as `construction` says.

  The robust kind matches the model's penultimate `representation`
  (`robust_dataset`, starts drawn from `fold_in(key, 0)`); the others
  draw `target_labels` of their kind from `key` and move every image to
  its target (`non_robust_dataset`). With `cache_dir`, the dataset is
  saved there (`<name>-<digest>.npz`, written atomically by process 0)
  and read back by a later call with the same construction, key, weights,
  data and classes.

  Args:
    construction: the settings (`Construction`).
    model: the source model (a flax module; inference mode).
    variables: its variables.
    x: `[N, H, W, C]` float images in [0, 1]; y: `[N]` int labels.
    num_classes: K, the classes of the targets.
    key: `jax.random.key`.
    cache_dir: where built datasets are kept (None: not kept).
    name: the file name's prefix ('d_r').
    **map_kwargs: batch_size, mesh, device_batch_size, progress of the
      construction (they never change a result).

  Returns:
    `RobustDataset` (robust kind) or `NonRobustDataset`.

  Raises:
    ValueError: an unknown kind, a non-robust kind without eps, or the
      construction's own errors (`robust_dataset`, `non_robust_dataset`).
  """
  if construction.kind not in KINDS:
    raise ValueError(f"construct: unknown kind {construction.kind!r}; use "
                     f"one of {KINDS}.")
  robust = construction.kind == "robust"
  if not robust and construction.eps is None:
    raise ValueError(f"construct: kind {construction.kind!r} needs eps.")
  result = RobustDataset if robust else NonRobustDataset
  x, y = np.asarray(x), np.asarray(y)
  path = None
  if cache_dir is not None:
    digest = _digest(construction, key, variables, x, y, num_classes)
    path = os.path.join(cache_dir, f"{name}-{digest[:16]}.npz")
    if os.path.exists(path):
      with np.load(path) as z:
        return result(**{k: z[k] for k in result._fields})
  c = construction
  if robust:
    out = robust_dataset(representation_fn(model), variables, x, y, key=key,
                         steps=c.steps, step_size=c.step_size, start=c.start,
                         **map_kwargs)
  else:
    out = non_robust_dataset(
        models.apply_fn(model), variables, x, y,
        target_labels(y, num_classes, c.kind, key=key), eps=c.eps,
        steps=c.steps, step_size=c.step_size, norm=c.norm, **map_kwargs)
  if path is not None and jax.process_index() == 0:
    os.makedirs(cache_dir, exist_ok=True)
    tmp = path[:-len(".npz")] + ".tmp.npz"
    np.savez(tmp, **out._asdict())
    os.replace(tmp, path)
  return out


# --------------------------------------------------------------------------
# The robust-feature toy.
# --------------------------------------------------------------------------
def robust_feature_toy(key: PRNGKey, size: int,
                       image_shape: Sequence[int] = (32, 32, 1), *,
                       noise: float = 0.05, label_noise: float = 0.1,
                       name: str = "robust_feature_toy",
                       split: str = "train") -> data.Dataset:
  """A two-class dataset whose only feature is robust, plus noise.

  Class 0 images are dark, class 1 light: every pixel is `noise` (class 0)
  or `1 - noise` (class 1) plus independent uniform noise in
  `[-noise, noise]`, so the images fill `[0, 2 noise]` or
  `[1 - 2 noise, 1]`. A fraction `label_noise` of the labels is then
  flipped at random. The mean pixel separates the classes with margin
  `0.5 - noise` in Linf: a linear classifier that thresholds it needs an
  Linf perturbation of about 0.45 (noise 0.05) to be fooled, while a
  network that memorises the flipped labels through the noise can be
  fooled by far less.

  Args:
    key: `jax.random.key`.
    size: N examples, >= 1 (balanced classes, shuffled).
    image_shape: `(H, W, C)`.
    noise: the half-width of the pixel noise, in `[0, 0.25)`.
    label_noise: fraction of flipped labels, in `[0, 0.5)` (0 for a test
      set with the true classes).
    name, split: the `data.Dataset`'s name and split.

  Returns:
    A `data.Dataset` with 2 classes.

  Raises:
    ValueError: size < 1, a bad shape, or noise / label_noise out of range.
  """
  image_shape = tuple(int(s) for s in image_shape)
  if size < 1 or len(image_shape) != 3 or min(image_shape) < 1:
    raise ValueError(f"robust_feature_toy: need size >= 1 and an (H, W, C) "
                     f"shape, got {size}, {image_shape}.")
  if not 0 <= noise < 0.25 or not 0 <= label_noise < 0.5:
    raise ValueError(f"robust_feature_toy: need 0 <= noise < 0.25 and "
                     f"0 <= label_noise < 0.5, got {noise}, {label_noise}.")
  k_order, k_noise, k_flip = jax.random.split(rng.as_key(key), 3)
  classes = jax.random.permutation(k_order, jnp.arange(size) % 2)
  level = jnp.where(classes == 1, 1. - noise, noise)
  u = jax.random.uniform(k_noise, (size,) + image_shape, jnp.float32,
                         -noise, noise)
  images = jnp.clip(level.reshape((size, 1, 1, 1)) + u, 0., 1.)
  flip = jax.random.uniform(k_flip, (size,)) < label_noise
  labels = jnp.where(flip, 1 - classes, classes)
  return data.Dataset(np.asarray(images, np.float32),
                      np.asarray(labels, np.int32), 2, name, split)


TOY_MODELS = ("toy_linear", "toy_mlp")


class RobustFeatureToy(NamedTuple):
  """The robust-feature toy study (the seed's slides, "Are adversarial
  examples always features?"): on `robust_feature_toy` data, a linear
  classifier trained adversarially (Linf Madry) is robust -- it needs a
  large Linf eps to be fooled -- while an MLP that memorises the flipped
  labels through the pixel noise is fooled by a far smaller one.

  `data` builds the splits, `models` the two models and their training
  methods, `evaluate` one trained model: accuracy under Linf PGD over the
  geometric grid `eps` and the smallest eps at which it is at most 50 %
  (`evaluation.eps_at_accuracy`); `run` does all of it (`training.fit`
  with `optax.adam(learning_rate)`, `epochs`, `batch_size`).

  Attributes:
    size, test_size: training and test images.
    side: the images are `side x side x 1`.
    noise: half-width of the uniform pixel noise, in [0, 0.25).
    label_noise: fraction of flipped training labels, in [0, 0.5).
    hidden: the MLP's hidden widths (relu).
    epochs, batch_size, learning_rate: both models' training (Adam).
    linear_eps: Linf radius of the linear model's Madry training (PGD-10).
    eps_min, eps_max, eps_points: the evaluation's geometric Linf grid.
  """
  size: int = 500
  test_size: int = 500
  side: int = 32
  noise: float = 0.1
  label_noise: float = 0.1
  hidden: Tuple[int, ...] = (512, 512)
  epochs: int = 300
  batch_size: int = 50
  learning_rate: float = 1e-3
  linear_eps: float = 0.25
  eps_min: float = 1e-3
  eps_max: float = 0.5
  eps_points: int = 25

  @property
  def eps(self) -> np.ndarray:
    """`[eps_points]` the evaluation's Linf grid, `eps_min .. eps_max`."""
    if not 0 < self.eps_min < self.eps_max or self.eps_points < 2:
      raise ValueError(f"RobustFeatureToy: need 0 < eps_min < eps_max and "
                       f"eps_points >= 2, got {self.eps_min}, "
                       f"{self.eps_max}, {self.eps_points}.")
    return np.geomspace(self.eps_min, self.eps_max, self.eps_points)

  def data(self, key: PRNGKey, split: str) -> data.Dataset:
    """The 'train' split (noisy labels, from `fold_in(key, 1)`) or the
    'test' split (the true classes, from `fold_in(key, 2)`)."""
    train = split == "train"
    return robust_feature_toy(
        jax.random.fold_in(rng.as_key(key), 1 if train else 2),
        self.size if train else self.test_size, (self.side, self.side, 1),
        noise=self.noise, label_noise=self.label_noise if train else 0.,
        split=split)

  def models(self) -> Dict[str, Tuple[nn.Module, methods.Method]]:
    """`TOY_MODELS` -> (module, training method): logistic regression with
    Linf Madry training at `linear_eps`, and the relu MLP with standard
    training."""
    return {"toy_linear": (models.MLP(num_classes=2, hidden=()), methods.madry(
        self.linear_eps, attack=functools.partial(gradient.pgd, norm="linf",
                                                  steps=10))),
            "toy_mlp": (models.MLP(num_classes=2, hidden=tuple(self.hidden),
                                   activation="relu"), methods.standard())}

  def evaluate(self, apply_fn: Callable, variables, train, test, *,
               key: PRNGKey, steps: int = 20, **map_kwargs) -> Dict[str, Any]:
    """One trained model's numbers.

    Args:
      apply_fn, variables: the model.
      train, test: the splits (`data`).
      key: the PGD's random starts.
      steps: PGD steps.
      **map_kwargs: batch_size, mesh, device_batch_size, progress.

    Returns:
      `{'clean_accuracy', 'train_accuracy' (on the noisy labels),
      'eps' (the grid), 'accuracy' (under Linf PGD at each eps),
      'eps_at_half'}`.
    """
    ra = robust_accuracy(
        apply_fn, variables, test.images, test.labels, attack=(
            functools.partial(gradient.pgd, norm="linf", steps=steps)),
        eps=self.eps, key=key, **map_kwargs)
    map_kwargs.pop("progress", None)
    return {"clean_accuracy": ra.clean_accuracy,
            "train_accuracy": accuracy(apply_fn, variables, train.images,
                                       train.labels, **map_kwargs),
            "eps": self.eps.tolist(), "accuracy": ra.accuracy.tolist(),
            "eps_at_half": eps_at_accuracy(self.eps, ra.accuracy)}

  def run(self, key: PRNGKey, *, seed: int = 0,
          attack_key: Optional[PRNGKey] = None, steps: int = 20,
          mesh=None, progress: bool = False,
          **map_kwargs) -> Dict[str, Dict[str, Any]]:
    """Trains both models and evaluates them.

    Args:
      key: the data (`data`).
      seed: the training's seed (init and batch order, `training.fit`).
      attack_key: the evaluation's PGD starts (default `fold_in(key, 3)`).
      steps: the evaluation's PGD steps.
      mesh, progress: as `training.fit` and the evaluation.
      **map_kwargs: the evaluation's batch_size, device_batch_size.

    Returns:
      `TOY_MODELS` -> `evaluate`'s numbers.
    """
    train, test = self.data(key, "train"), self.data(key, "test")
    attack_key = (jax.random.fold_in(rng.as_key(key), 3) if attack_key is None
                  else attack_key)
    out = {}
    for name, (module, method) in self.models().items():
      fit = training.fit(module, optax.adam(self.learning_rate), train,
                         method=method, epochs=self.epochs,
                         batch_size=self.batch_size, seed=seed, mesh=mesh,
                         progress=progress, desc=f"train {name}")
      out[name] = self.evaluate(
          models.apply_fn(module),
          jax.device_get(fit.state.variables), train, test, key=attack_key,
          steps=steps, mesh=mesh, progress=progress, **map_kwargs)
    return out
