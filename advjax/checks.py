"""Input checks at the public boundary, shared by every layer.

Low level: it imports only jax, numpy and `advjax.types`, so transforms,
Sinkhorn and the attacks above them all validate inputs the same way.
Shapes, ranks and dtypes are checked at trace time; values only where they
are concrete (traced values pass unchecked).
"""
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from advjax.types import Bounds, ModelFn

__all__ = ["concrete", "check_nonnegative", "looks_nchw",
           "check_attack_inputs"]


def concrete(v) -> Optional[np.ndarray]:
  """`np.asarray(v)` if v holds concrete values, None under tracing and for
  data read on access (`data.Records`, whose reads check their values)."""
  if isinstance(v, jax.core.Tracer) or getattr(v, "read_on_access", False):
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
  return num_classes
