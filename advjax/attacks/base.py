"""The pieces every iterative attack is built from, and the one loop that runs them.

An attack is `loop(objective, x, delta0, optimizer, project)`:
- `objective(x_adv) -> [B]`: the per-example quantity to maximise (a loss of
  the model's logits, see `advjax.losses.attack_objective`);
- `delta0`: the start (zero, or a random point of the ball);
- `optimizer`: any `optax.GradientTransformation`, fed the gradient of the
  *negated* objective as optax minimises: `steepest_ascent(norm, step_size)` (the
  normalised steepest step of a norm: sign for Linf), Adam, SGD, ...;
- `project(delta, x) -> delta`: back into the threat model and the box.

PGD, BIM/ILLC, Wasserstein PGD and universal perturbations are this loop with
other pieces.
"""
import inspect
from typing import Callable, NamedTuple, Optional, Union

import jax
import jax.numpy as jnp
import numpy as np
import optax

from advjax import projections
from advjax.types import Array, Bounds, ModelFn

__all__ = [
    "call_attack", "takes_key", "AttackResult", "MinimalResult", "LoopOutput",
    "steepest_direction", "normalized_steepest", "scale_per_example",
    "steepest_ascent", "make_optimizer", "mask_box_gradient", "attack_loop",
    "resolve_unroll", "check_attack_inputs", "concrete", "looks_nchw",
]


class AttackResult(NamedTuple):
  """Result of an attack asked for more than `x_adv`.

  Attributes:
    x_adv: `[B, ...]` adversarial examples (same shape and dtype as x).
    loss_history: `[steps, B]` objective at each iterate before its step.
    loss: `[B]` objective at `x_adv`.
  """
  x_adv: Array
  loss_history: Array
  loss: Array


class MinimalResult(NamedTuple):
  """Result of a minimal-perturbation attack (DeepFool, Carlini-Wagner, ...).

  Attributes:
    x_adv: `[B, ...]` the smallest adversarial example found per example
      (x itself where none was found; x's shape and dtype, inside bounds).
    success: `[B]` bool, x_adv is misclassified (reaches the target when
      targeted).
    distance: `[B]` the perturbation's size in the attack's norm (0 where
      not successful).
    n_iters: `[B]` int32 iterations (gradient evaluations) the example used.
  """
  x_adv: Array
  success: Array
  distance: Array
  n_iters: Array


class LoopOutput(NamedTuple):
  """Output of `attack_loop`.

  Attributes:
    delta: `[B, ...]` final feasible perturbation.
    loss_history: `[steps, B]` objective before each step.
  """
  delta: Array
  loss_history: Array


# --------------------------------------------------------------------------
# Steps (optax transformations acting on a batch of per-example gradients).
# --------------------------------------------------------------------------
def steepest_direction(g: Array, norm: str, l1_sparsity: float = 0.) -> Array:
  """Unit-norm steepest-ascent direction of each example's gradient.

  `argmax_{|e| <= 1} <g, e>` for the norm: linf -> `sign(g)`; l2 -> `g / |g|_2`;
  l1 -> the signs of the largest-|g| coordinates spread evenly so `|e|_1 = 1`:
  with `l1_sparsity = 0` one coordinate (the exact L1 steepest direction),
  otherwise the top `ceil(l1_sparsity * D)` coordinates (Tramer & Boneh's
  sparse L1 descent, which makes L1 PGD progress on many pixels per step).
  A zero gradient gives a zero direction.

  Args:
    g: `[B, ...]` gradients.
    norm: 'linf', 'l2' or 'l1'.
    l1_sparsity: fraction of coordinates moved by an L1 step (static).

  Returns:
    `[B, ...]` directions, zero where g is zero.
  """
  projections.check_norm(norm)
  if norm == "linf":
    return jnp.sign(g)
  if norm == "l2":
    n = projections.lp_norm(g, "l2")
    n = projections.per_example(jnp.where(n > 0, n, 1.), g.ndim)
    return g / n
  flat = g.reshape(g.shape[0], -1)
  dim = flat.shape[1]
  k = max(1, int(np.ceil(l1_sparsity * dim)))
  a = jnp.abs(flat)
  thr = jax.lax.top_k(a, k)[0][:, -1:]
  mask = (a >= thr) & (a > 0)
  count = jnp.maximum(jnp.sum(mask, axis=1, keepdims=True), 1)
  return (jnp.sign(flat) * mask / count).astype(g.dtype).reshape(g.shape)


def normalized_steepest(norm: str,
                        l1_sparsity: float = 0.) -> optax.GradientTransformation:
  """optax transformation: updates -> their unit steepest direction in `norm`."""
  return optax.stateless(lambda updates, params: jax.tree.map(
      lambda u: steepest_direction(u, norm, l1_sparsity), updates))


def scale_per_example(scale) -> optax.GradientTransformation:
  """optax transformation: multiply each example's update by `scale` (scalar or [B])."""
  return optax.stateless(lambda updates, params: jax.tree.map(
      lambda u: u * projections.per_example(scale, u.ndim).astype(u.dtype),
      updates))


def steepest_ascent(norm: str, step_size,
                    l1_sparsity: float = 0.) -> optax.GradientTransformation:
  """The default PGD step: `step_size` times the unit steepest direction.

  As every optax optimizer it expects the gradient of a quantity to
  *minimise* (the negated attack objective) and returns updates to add.
  """
  return optax.chain(normalized_steepest(norm, l1_sparsity),
                     scale_per_example(-jnp.asarray(step_size)))


def make_optimizer(optimizer: Union[None, str, optax.GradientTransformation],
                   norm: str, step_size,
                   l1_sparsity: float = 0.) -> optax.GradientTransformation:
  """Builds the inner optimizer of an attack.

  Args:
    optimizer: None or 'steepest' (the normalised steepest step of `norm`),
      'adam' (Adam moments, scaled by `step_size` per example), 'sgd' (the raw
      gradient times `step_size`), or any `optax.GradientTransformation`
      (used as given; `step_size` is then ignored).
    norm: the threat model's norm.
    step_size: scalar or `[B]` step size (learning rate).
    l1_sparsity: see `steepest_direction`.

  Returns:
    An `optax.GradientTransformation`.
  """
  if isinstance(optimizer, optax.GradientTransformation):
    return optimizer
  if optimizer is None or optimizer == "steepest":
    return steepest_ascent(norm, step_size, l1_sparsity)
  if optimizer == "adam":
    return optax.chain(optax.scale_by_adam(),
                       scale_per_example(-jnp.asarray(step_size)))
  if optimizer == "sgd":
    return scale_per_example(-jnp.asarray(step_size))
  raise ValueError(
      f"Unknown optimizer {optimizer!r}; use 'steepest', 'adam', 'sgd' or an "
      "optax.GradientTransformation.")


def mask_box_gradient(g: Array, x_adv: Array, bounds: Bounds) -> Array:
  """Zeroes gradient entries that push a pixel already on the box outward.

  Such a coordinate cannot move, so for the L1/L2 steepest step the budget is
  spent on pixels that can (for Linf the result is the same as clipping).
  """
  lo, hi = bounds
  blocked = ((x_adv >= hi) & (g > 0)) | ((x_adv <= lo) & (g < 0))
  return jnp.where(blocked, jnp.zeros_like(g), g)


# --------------------------------------------------------------------------
# The loop.
# --------------------------------------------------------------------------
# Up to this many steps are unrolled on CPU by default (see resolve_unroll).
CPU_UNROLL_MAX_STEPS = 64


def resolve_unroll(steps: int, unroll: Union[None, bool, int] = None):
  """The `lax.scan` unroll used for an attack of `steps` steps.

  On CPU, XLA rewrites the input-gradient convolutions of a model into its
  fast kernel layout only outside loop bodies (jax-ml/jax#12868): inside a
  rolled `scan` they run as naive loops, 3-4x slower. So on CPU attacks of
  up to `CPU_UNROLL_MAX_STEPS` steps are fully unrolled (PGD-10 on Wong's
  CNN: 754 ms -> 199 ms per batch of 256; compile time grows with steps).
  Elsewhere (GPU/TPU) the loop stays rolled. An explicit `unroll` wins.
  """
  if unroll is not None:
    return unroll
  if jax.default_backend() == "cpu" and steps <= CPU_UNROLL_MAX_STEPS:
    return True
  return 1


def attack_loop(objective: Callable[[Array], Array], x: Array, delta0: Array, *,
                steps: int, optimizer: optax.GradientTransformation,
                project: Callable[[Array, Array], Array],
                bounds: Optional[Bounds] = (0., 1.),
                unroll: Union[None, bool, int] = None) -> LoopOutput:
  """Runs `steps` projected ascent steps on `objective(x + delta)`.

  Every iterate is feasible: `delta0` and each update go through `project`
  (ball, then box), and the gradient is always taken at the feasible point
  `x + delta`, so a start outside the box never freezes pixels at a clipped
  (zero-gradient) value.

  Args:
    objective: `x_adv [B, ...] -> [B]` per-example quantity to maximise.
    x: `[B, ...]` clean inputs (the centre of the threat model).
    delta0: `[B, ...]` initial perturbation (projected before use).
    steps: number of steps (static).
    optimizer: an optax transformation minimising `-objective`.
    project: `(delta, x) -> delta` onto the feasible set.
    bounds: the box, for masking gradients that point out of it (None: off).
    unroll: `lax.scan`'s unroll (static); None picks `resolve_unroll(steps)`.

  Returns:
    `LoopOutput(delta, loss_history)`.
  """

  def total(delta):
    values = objective(x + delta)
    return jnp.sum(values), values

  grad_fn = jax.grad(total, has_aux=True)

  def body(carry, _):
    delta, opt_state = carry
    g, values = grad_fn(delta)
    if bounds is not None:
      g = mask_box_gradient(g, x + delta, bounds)
    updates, opt_state = optimizer.update(-g, opt_state, delta)
    delta = project(delta + updates, x)
    return (delta, opt_state), values

  delta0 = project(delta0, x)
  (delta, _), history = jax.lax.scan(
      body, (delta0, optimizer.init(delta0)), None, length=steps,
      unroll=resolve_unroll(steps, unroll))
  return LoopOutput(delta, history)


def takes_key(attack: Callable) -> bool:
  """Whether `attack` accepts a `key` keyword (deterministic attacks do not)."""
  try:
    params = inspect.signature(attack).parameters
  except (TypeError, ValueError):
    return True
  return "key" in params or any(
      p.kind == inspect.Parameter.VAR_KEYWORD for p in params.values())


def call_attack(attack: Callable, model_fn: ModelFn, x, y, *, eps, key,
                **kwargs):
  """Calls any attack of the contract, passing `key` only if it takes one."""
  if takes_key(attack):
    kwargs["key"] = key
  return attack(model_fn, x, y, eps=eps, **kwargs)


# --------------------------------------------------------------------------
# Input checks at the public boundary.
# --------------------------------------------------------------------------
def concrete(v) -> Optional[np.ndarray]:
  """`np.asarray(v)` if v holds concrete values, None under tracing."""
  if isinstance(v, jax.core.Tracer):
    return None
  return np.asarray(v)


def check_nonnegative(name: str, **values) -> None:
  """Raises a ValueError naming the first of `values` that is concretely
  negative (traced values are not checked)."""
  for n, v in values.items():
    vc = concrete(v)
    if vc is not None and (vc < 0).any():
      raise ValueError(f"{name}: {n} must be >= 0, got {vc}.")


def looks_nchw(shape) -> bool:
  """Whether a rank-4 shape looks like channels-first images: few channels
  in axis 1, a square spatial extent in axes 2 and 3, and not a plausible
  channel count last."""
  return (len(shape) == 4 and shape[1] in (1, 2, 3, 4)
          and shape[2] == shape[3] and shape[3] not in (1, 2, 3, 4))


def check_attack_inputs(model_fn: ModelFn, x, y, *, eps=None,
                        bounds: Bounds = (0., 1.), name: str = "attack",
                        check_labels: bool = True) -> int:
  """Validates attack inputs with clear errors; returns the number of classes.

  Shape, rank and dtype are checked always (at trace time under jit); values
  (eps >= 0, labels in range, NaN, x inside bounds) when they are concrete.

  Raises:
    TypeError: non-float images or non-integer labels.
    ValueError: wrong ranks/shapes, bad bounds, negative or non-finite eps,
      labels out of range, NaN or out-of-box inputs.
  """
  if not hasattr(x, "shape") or not hasattr(x, "dtype"):
    raise TypeError(f"{name}: x must be an array, got {type(x).__name__}.")
  if not jnp.issubdtype(x.dtype, jnp.floating):
    raise TypeError(
        f"{name}: x must be a float array in bounds {tuple(bounds)}, got dtype "
        f"{x.dtype}. Convert images first, e.g. x.astype(jnp.float32) / 255.")
  if x.ndim < 2:
    raise ValueError(
        f"{name}: x must be a batch [B, H, W, C] (rank >= 2), got shape "
        f"{tuple(x.shape)}. Add a batch axis with x[None].")
  batch = x.shape[0]
  lo, hi = bounds
  if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
    raise ValueError(f"{name}: bounds must be finite with lo < hi, got "
                     f"{tuple(bounds)}.")
  if y is not None:
    if not hasattr(y, "dtype") or not jnp.issubdtype(y.dtype, jnp.integer):
      raise TypeError(f"{name}: labels y must be integer class indices [B], "
                      f"got {getattr(y, 'dtype', type(y).__name__)}.")
    if tuple(y.shape) != (batch,):
      raise ValueError(f"{name}: labels y must have shape ({batch},) to match "
                       f"x's batch, got {tuple(y.shape)}.")
  if eps is not None:
    eps_shape = tuple(jnp.shape(eps))
    if eps_shape not in ((), (batch,)):
      raise ValueError(f"{name}: eps must be a scalar or have shape ({batch},),"
                       f" got {eps_shape}.")
    e = concrete(eps)
    if e is not None:
      if not np.all(np.isfinite(e)):
        raise ValueError(f"{name}: eps must be finite, got {e}.")
      if np.any(e < 0):
        raise ValueError(f"{name}: eps must be >= 0, got {e}.")
  try:
    out = jax.eval_shape(model_fn, jax.ShapeDtypeStruct(x.shape, x.dtype))
  except Exception as e:  # the model's own error, made clearer for NCHW
    if looks_nchw(x.shape):
      raise ValueError(
          f"{name}: x has shape {tuple(x.shape)}, which looks like NCHW "
          "[B, C, H, W]; advjax models and attacks take NHWC [B, H, W, C]: "
          "use x.transpose(0, 2, 3, 1).") from e
    raise
  if len(out.shape) != 2 or out.shape[0] != batch:
    raise ValueError(f"{name}: model_fn must map [B, ...] to logits [B, K]; "
                     f"for x of shape {tuple(x.shape)} it returned "
                     f"{tuple(out.shape)}.")
  num_classes = out.shape[1]
  if y is not None and check_labels:
    yc = concrete(y)
    if yc is not None and yc.size and (yc.min() < 0 or yc.max() >= num_classes):
      bad = np.flatnonzero((yc < 0) | (yc >= num_classes))[:5]
      raise ValueError(f"{name}: labels must be in [0, {num_classes}), got "
                       f"{yc[bad].tolist()} at indices {bad.tolist()}.")
  xc = concrete(x)
  if xc is not None:
    nan = np.isnan(xc.reshape(batch, -1)).any(axis=1)
    if nan.any():
      raise ValueError(f"{name}: x contains NaN in examples "
                       f"{np.flatnonzero(nan)[:5].tolist()}; clean the input "
                       "(attacks would return NaN).")
    tol = 1e-6 * (hi - lo)
    if xc.size and (xc.min() < lo - tol or xc.max() > hi + tol):
      raise ValueError(f"{name}: x must lie inside bounds {tuple(bounds)}, got "
                       f"values in [{xc.min():.4g}, {xc.max():.4g}]. Rescale "
                       "the images or pass bounds=(lo, hi).")
  return num_classes


