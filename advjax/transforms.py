"""Differentiable, batch-native image transforms (`[B, H, W, C]`, NHWC).

Geometric: `rotate_translate` (bilinear, zero fill, about the image centre),
the threat model of Engstrom et al.'s spatial attacks. Photometric, the
"physical world" transforms of Kurakin et al. whose destruction rate the
universality study measures: `brightness` (X + delta), `contrast`
(X * mu), `gaussian_blur`, `gaussian_noise`; each result is clipped to the
box as Kurakin et al.'s images are to [0, 255]. Every parameter may be a
scalar or one value per example, and every transform is differentiable in
the image and in its parameters (the spatial PGD attack ascends on angle
and shifts).

Written on `jax.scipy.ndimage.map_coordinates` and `lax.conv` rather than
on dm-pix: the few lines needed here keep the per-example parameters
traced and vmapped without another dependency.
"""
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from advjax.attacks.base import concrete
from advjax.projections import per_example
from advjax.types import Array, Bounds, PRNGKey

__all__ = ["rotate_translate", "brightness", "contrast", "gaussian_blur",
           "gaussian_noise"]


def _check_images(x: Array, name: str) -> None:
  if x.ndim != 4:
    raise ValueError(f"{name}: images must be [B, H, W, C], got shape "
                     f"{x.shape}.")
  if not jnp.issubdtype(x.dtype, jnp.floating):
    raise TypeError(f"{name}: images must be floating point, got {x.dtype}.")


def _check_positive(v, what: str, strict: bool = False) -> None:
  vc = concrete(v)
  if vc is not None and ((vc <= 0) if strict else (vc < 0)).any():
    raise ValueError(f"{what} must be {'>' if strict else '>='} 0, got {vc}.")


def _per_example(v, batch: int, dtype) -> Array:
  """A scalar or `[B]` parameter as `[B]`."""
  v = jnp.asarray(v, dtype)
  if v.ndim == 0:
    return jnp.full((batch,), v)
  if v.shape != (batch,):
    raise ValueError(f"a per-example parameter must be a scalar or [{batch}], "
                     f"got shape {v.shape}.")
  return v


def rotate_translate(x: Array, angle, tx=0., ty=0.) -> Array:
  """Rotates each image about its centre, then translates it.

  Output pixel `p` takes the bilinear interpolation of the input at
  `R(-angle) (p - c - t) + c` (c the centre `((H-1)/2, (W-1)/2)`, t the
  shift); samples outside the image are 0 (zero fill).

  Args:
    x: `[B, H, W, C]` float images.
    angle: degrees, counter-clockwise as displayed (rows down); scalar or
      `[B]`.
    tx, ty: shifts in pixels, right and down; scalars or `[B]`.

  Returns:
    `[B, H, W, C]`, x's dtype. Differentiable in x, angle, tx and ty.
  """
  _check_images(x, "rotate_translate")
  b, h, w, _ = x.shape
  dtype = jnp.promote_types(x.dtype, jnp.float32)
  theta = jnp.deg2rad(_per_example(angle, b, dtype))
  tx, ty = _per_example(tx, b, dtype), _per_example(ty, b, dtype)
  rows, cols = jnp.meshgrid(jnp.arange(h, dtype=dtype),
                            jnp.arange(w, dtype=dtype), indexing="ij")
  cy, cx = (h - 1) / 2., (w - 1) / 2.

  def one(img, theta, tx, ty):
    dx, dy = cols - tx - cx, rows - ty - cy
    cos, sin = jnp.cos(theta), jnp.sin(theta)
    src_x = cos * dx - sin * dy + cx
    src_y = sin * dx + cos * dy + cy

    def channel(c):
      return jax.scipy.ndimage.map_coordinates(c, [src_y, src_x], order=1,
                                               mode="constant", cval=0.)

    return jax.vmap(channel, in_axes=-1, out_axes=-1)(img.astype(dtype))

  return jax.vmap(one)(x, theta, tx, ty).astype(x.dtype)


def brightness(x: Array, delta, bounds: Bounds = (0., 1.)) -> Array:
  """`clip(x + delta)`: Kurakin et al.'s brightness change (delta in image
  units, scalar or `[B]`)."""
  _check_images(x, "brightness")
  d = _per_example(delta, x.shape[0], x.dtype)
  return jnp.clip(x + per_example(d, 4), *bounds)


def contrast(x: Array, mu, bounds: Bounds = (0., 1.)) -> Array:
  """`clip(x * mu)`: Kurakin et al.'s contrast change (mu > 0, scalar or
  `[B]`)."""
  _check_images(x, "contrast")
  _check_positive(mu, "contrast: mu")
  m = _per_example(mu, x.shape[0], x.dtype)
  return jnp.clip(x * per_example(m, 4), *bounds)


def gaussian_blur(x: Array, sigma, kernel_size: Optional[int] = None,
                  bounds: Bounds = (0., 1.)) -> Array:
  """Separable Gaussian blur with reflected borders (OpenCV's default).

  Args:
    x: `[B, H, W, C]` float images.
    sigma: standard deviation in pixels, > 0; scalar or `[B]`.
    kernel_size: odd taps (static); default `2 ceil(3 max sigma) + 1` when
      sigma is concrete, else 7. Capped so the reflection fits the image.
    bounds: the box the result is clipped to.

  Returns:
    `[B, H, W, C]`, x's dtype.
  """
  _check_images(x, "gaussian_blur")
  b, h, w, c = x.shape
  dtype = jnp.promote_types(x.dtype, jnp.float32)
  s = _per_example(sigma, b, dtype)
  _check_positive(sigma, "gaussian_blur: sigma", strict=True)
  if kernel_size is None:
    sc = concrete(sigma)
    kernel_size = 7 if sc is None else 2 * int(np.ceil(3. * sc.max())) + 1
  if kernel_size < 1 or kernel_size % 2 == 0:
    raise ValueError("gaussian_blur: kernel_size must be a positive odd int, "
                     f"got {kernel_size}.")
  half = min(kernel_size // 2, h - 1, w - 1)
  taps = jnp.arange(-half, half + 1, dtype=dtype)
  k = jnp.exp(-0.5 * (taps[None, :] / s[:, None]) ** 2)
  k = k / jnp.sum(k, axis=1, keepdims=True)  # [B, taps]

  def one(img, k1):
    img = jnp.pad(img.astype(dtype), ((half, half), (half, half), (0, 0)),
                  mode="reflect")
    kh = jnp.tile(k1[:, None, None, None], (1, 1, 1, c))  # HWIO, depthwise
    kw = jnp.tile(k1[None, :, None, None], (1, 1, 1, c))
    out = img[None]
    for kern in (kh, kw):
      out = lax.conv_general_dilated(
          out, kern, (1, 1), "VALID", feature_group_count=c,
          dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return out[0]

  return jnp.clip(jax.vmap(one)(x, k), *bounds).astype(x.dtype)


def gaussian_noise(x: Array, sigma, *, key: PRNGKey,
                   bounds: Bounds = (0., 1.)) -> Array:
  """`clip(x + N(0, sigma^2))`, independent per pixel (sigma in image
  units, scalar or `[B]`)."""
  _check_images(x, "gaussian_noise")
  _check_positive(sigma, "gaussian_noise: sigma")
  s = _per_example(sigma, x.shape[0], x.dtype)
  noise = jax.random.normal(key, x.shape, x.dtype)
  return jnp.clip(x + per_example(s, 4) * noise, *bounds)
