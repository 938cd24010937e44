"""Input checks at the public boundary, shared by every layer.

Low level: it imports only jax, numpy, equinox and `advjax.types`, so
transforms, Sinkhorn and the attacks above them all validate inputs the
same way.
Shapes, ranks and dtypes are checked at trace time. Values are checked in
Python where they are concrete (a `ValueError` with the offending values),
and inside the compiled program where they are traced, under a user's
`jax.jit`, `vmap` or `grad` (`runtime_check`): eps finite and >= 0, labels
in [0, K), no NaN pixels, pixels inside the bounds. A traced check that
fails stops the computation with a `JaxRuntimeError` whose message holds
the same text; it costs a reduction over the inputs and a branch, no host
round trip unless it fails (equinox's `error_if`; `EQX_ON_ERROR=off`
removes the checks, `EQX_ON_ERROR=nan` returns NaN instead of raising).
"""
import contextlib
from typing import Any, NamedTuple, Optional

import equinox
import jax
import jax.numpy as jnp
import numpy as np

from advjax.types import Array, Bounds, ModelFn

__all__ = ["concrete", "traced", "runtime_check", "without_runtime_checks",
           "check_nonnegative", "looks_nchw", "Checked",
           "check_attack_inputs"]

_RUNTIME_CHECKS = [True]  # read when a program is traced


def concrete(v) -> Optional[np.ndarray]:
  """`np.asarray(v)` if v holds concrete values, None under tracing and for
  data read on access (`data.Records`, whose reads check their values)."""
  if isinstance(v, jax.core.Tracer) or getattr(v, "read_on_access", False):
    return None
  return np.asarray(v)


def traced(v) -> bool:
  """Whether `v` is a tracer (under `jit`, `vmap`, `grad`): its values can
  only be checked inside the compiled program (`runtime_check`)."""
  return isinstance(v, jax.core.Tracer)


def runtime_check(value, bad, message: str):
  """`value`, with a check inside the compiled program: where `bad` (a
  boolean array; any True element) holds at run time, the computation
  stops with a `JaxRuntimeError` carrying `message`.

  Use the returned value: an unused one is dead code and its check goes
  with it. Built on `equinox.error_if` (one branch, a host call only on
  failure; under `vmap` the batch's predicates are reduced first).
  """
  if not _RUNTIME_CHECKS[0]:
    return value
  return equinox.error_if(value, bad, message)


@contextlib.contextmanager
def without_runtime_checks():
  """Programs traced inside the block carry no run-time checks (to measure
  their cost; `EQX_ON_ERROR=off` turns them off for a whole process).
  JAX's compilation caches are cleared on entry and exit, so a program
  compiled under one setting is not reused under the other."""
  jax.clear_caches()
  _RUNTIME_CHECKS[0] = False
  try:
    yield
  finally:
    _RUNTIME_CHECKS[0] = True
    jax.clear_caches()


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


class Checked(NamedTuple):
  """`check_attack_inputs`' result: the inputs to attack with (traced ones
  carry their run-time checks: use these, not the originals) and the
  model's number of classes."""
  x: Array
  y: Optional[Array]
  eps: Any
  num_classes: int


def check_attack_inputs(model_fn: ModelFn, x, y, *, eps=None,
                        bounds: Bounds = (0., 1.), name: str = "attack",
                        check_labels: bool = True) -> Checked:
  """Validates attack inputs with clear errors.

  Shape, rank and dtype are checked always (at trace time under jit); values
  (eps finite and >= 0, labels in range, NaN, x inside bounds) in Python
  when they are concrete, inside the compiled program when they are traced
  (`runtime_check`).

  Returns:
    `Checked(x, y, eps, num_classes)`: attack these x, y and eps, so that
    the run-time checks of traced values stay in the program.

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
      if x.ndim == 3 and y.ndim <= 1:  # [H, W, C] with its label
        raise ValueError(
            f"{name}: x of shape {tuple(x.shape)} looks like a single image "
            f"[H, W, C] (labels y have shape {tuple(y.shape)}); attacks take "
            "a batch [B, H, W, C]: add a batch axis with x[None] (and y[None] "
            "for a scalar label).")
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
  return Checked(*_traced_checks(x, y if check_labels else None, eps, bounds,
                                 num_classes, name), num_classes)


def _traced_checks(x, y, eps, bounds: Bounds, num_classes: int, name: str):
  """`(x, y, eps)`, x carrying `check_attack_inputs`' value checks of the
  traced ones (the same rules and words as its concrete checks). Every
  check rides on x, the one input every attack's output depends on, so
  none is dropped as dead code where an attack ignores y or eps."""
  if not (traced(x) or traced(y) or traced(eps)):
    return x, y, eps
  lo, hi = bounds
  where = " (a traced value, checked inside the compiled program)"
  tests = []
  if traced(eps):
    tests.append((~jnp.all(jnp.isfinite(eps) & (eps >= 0)),
                  f"{name}: eps must be finite and >= 0{where}."))
  if traced(y):
    tests.append((jnp.any((y < 0) | (y >= num_classes)),
                  f"{name}: labels must be in [0, {num_classes}){where}."))
  if traced(x):
    tol = 1e-6 * (hi - lo)
    tests += [(jnp.any(jnp.isnan(x)), f"{name}: x contains NaN{where}; clean "
               "the input (attacks would return NaN)."),
              ((jnp.min(x) < lo - tol) | (jnp.max(x) > hi + tol),
               f"{name}: x must lie inside bounds {tuple(bounds)}{where}. "
               "Rescale the images or pass bounds=(lo, hi).")]
  if not _RUNTIME_CHECKS[0]:
    return x, y, eps
  bad = jnp.stack([b for b, _ in tests])
  x = equinox.branched_error_if(jnp.asarray(x), jnp.any(bad),
                                jnp.argmax(bad), [m for _, m in tests])
  return x, y, eps
