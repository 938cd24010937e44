"""Differentiable, batch-native image transforms (`[B, H, W, C]`, NHWC).

Geometric: `rotate_translate` (bilinear, zero fill, about the image centre),
the threat model of Engstrom et al.'s spatial attacks; `perspective` (a
projective warp given by the displacement of the four corners, as a
photograph taken off-axis), the geometric step of a simulated print and
photograph of Kurakin et al.'s adversarial images (`print_photo`, whose
strengths are a `PhotoChain`, chains it with the photometric transforms
below). Photometric, the
"physical world" transforms of Kurakin et al. whose destruction rate the
universality study measures: `brightness` (X + delta), `contrast`
(X * mu), `gaussian_blur`, `gaussian_noise`; each result is clipped to the
box as Kurakin et al.'s images are to [0, 255]. Every parameter may be a
scalar or one value per example, and every transform is differentiable in
the image and in its parameters (the spatial PGD attack ascends on angle
and shifts) -- except `jpeg`'s quality, in which the quantisation tables
are piecewise constant, and `binarize` (pixels to the box's ends, Wong et
al.'s binarised-MNIST inputs), whose gradient is zero unless
`straight_through`.

Written on `jax.scipy.ndimage.map_coordinates` and `lax.conv` rather than
on dm-pix: the few lines needed here keep the per-example parameters
traced and vmapped without another dependency.

`jpeg` (compress, then decompress) is baseline JPEG written in JAX -- 8x8
DCTs and quantisation as matrix products -- rather than a call to a codec:
Pillow/libjpeg is neither differentiable nor jittable and runs on the host
one image at a time, and dm-pix has no JPEG. It models every lossy step of
libjpeg (what Pillow uses) at its defaults: JFIF YCbCr, 4:2:0 chroma (2x2
means) with libjpeg's "fancy" triangle upsampling on decode, edge-replicated
padding to whole blocks, the quality-scaled IJG tables, rounding of the
coefficients, and 8-bit samples between stages rounded as libjpeg rounds
them. It leaves out entropy coding (Huffman; lossless, so irrelevant) and
uses the exact DCT where libjpeg uses its integer "islow" one, which is off
by about a unit and so flips the odd rounding. Measured against Pillow 13
(libjpeg-turbo 3.2) on 32x48 photo crops (RGB 4:2:0 and 4:4:4, greyscale):
mean absolute differences of 0.01 levels (of 255) at quality 10 and at most
0.52 at 25, 0.23 at 50, 0.31 at 75 and 0.70 at 95, with isolated pixels off
by up to 15 levels where a rounding flipped; the mean error the codec adds
agrees to 0.03 levels. The tables equal Pillow's at every quality. For
attacks through it, `rounding="straight_through"` (the default) keeps the
codec's output and passes gradients (BPDA); "cubic" is Shin & Song's smooth
approximation.
"""
import functools
from typing import NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from advjax import rng
from advjax.checks import concrete
from advjax.projections import per_example
from advjax.types import Array, Bounds, PRNGKey

__all__ = ["rotate_translate", "perspective", "brightness", "contrast",
           "gaussian_blur", "gaussian_noise", "binarize", "jpeg",
           "PHOTOMETRIC_KINDS", "Transform", "transform_grid", "apply",
           "PhotoChain", "print_photo"]


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


def _homography(src: Array, dst: Array) -> Array:
  """`[3, 3]` projective map taking the four points `src` `[4, 2]` to `dst`
  `[4, 2]` (each `(x, y)`), its last entry fixed to 1 (the 8 x 8 linear
  system of the direct linear transform)."""
  u, v = src[:, 0], src[:, 1]
  px, py = dst[:, 0], dst[:, 1]
  one, zero = jnp.ones_like(u), jnp.zeros_like(u)
  rows_x = jnp.stack([u, v, one, zero, zero, zero, -u * px, -v * px], -1)
  rows_y = jnp.stack([zero, zero, zero, u, v, one, -u * py, -v * py], -1)
  a = jnp.concatenate([rows_x, rows_y])
  b = jnp.concatenate([px, py])
  h = jnp.linalg.solve(a, b)
  return jnp.append(h, 1.).reshape(3, 3)


_MODES = ("constant", "nearest", "mirror", "reflect", "wrap")


def perspective(x: Array, offsets, mode: str = "constant") -> Array:
  """Projective (perspective) warp given by the displacement of the corners.

  The image is warped so that each of its four corner pixels, top-left
  `(0, 0)`, top-right `(W-1, 0)`, bottom-right `(W-1, H-1)` and bottom-left
  `(0, H-1)` as `(x, y)` = (column, row), moves by its `offsets` row `(dx,
  dy)`: output pixel `p` takes the bilinear interpolation of the input at
  `M(p)`, with M the homography taking the displaced corners back to the
  original ones (solved per example in coordinates normalised to [-1, 1],
  so the 8 x 8 system stays well conditioned at any image size). Zero
  offsets give the identity; four equal offsets `(tx, ty)` a translation
  (`rotate_translate(x, 0, tx, ty)`). Random offsets per example, e.g.
  `s * jax.random.uniform(key, (B, 4, 2), minval=-1, maxval=1)`, model a
  photograph taken from a slightly different viewpoint each time.

  Args:
    x: `[B, H, W, C]` float images, H, W >= 2.
    offsets: `[B, 4, 2]` (or `[4, 2]`, for every example) corner
      displacements `(dx, dy)` in pixels, right and down, in the corner
      order above.
    mode: static, what is sampled outside the image: 'constant' (zero fill,
      as `rotate_translate`), 'nearest' (edge replication), 'mirror',
      'reflect' or 'wrap' (`jax.scipy.ndimage.map_coordinates` modes).

  Returns:
    `[B, H, W, C]`, x's dtype. Differentiable in x and in the offsets.

  Raises:
    ValueError: x not 4-D or smaller than 2 x 2, offsets of another shape,
      an unknown mode.
    TypeError: x not floating point.

  Note:
    The displaced corners must still form a convex quadrilateral in the
    same order (offsets well under half the image side do); otherwise the
    homography folds the image over itself and the result is meaningless.
  """
  _check_images(x, "perspective")
  b, h, w, _ = x.shape
  if h < 2 or w < 2:
    raise ValueError(f"perspective: images must be at least 2 x 2, got "
                     f"{h} x {w}.")
  if mode not in _MODES:
    raise ValueError(f"perspective: mode must be one of {_MODES}, got "
                     f"{mode!r}.")
  dtype = jnp.promote_types(x.dtype, jnp.float32)
  offsets = jnp.asarray(offsets, dtype)
  if offsets.shape == (4, 2):
    offsets = jnp.broadcast_to(offsets, (b, 4, 2))
  if offsets.shape != (b, 4, 2):
    raise ValueError(f"perspective: offsets must be [4, 2] or [B, 4, 2] = "
                     f"[{b}, 4, 2] corner displacements, got shape "
                     f"{offsets.shape}.")
  # Pixel (x, y) -> (2 x / (W-1) - 1, 2 y / (H-1) - 1).
  scale = jnp.asarray([2. / (w - 1), 2. / (h - 1)], dtype)
  corners = jnp.asarray([[-1., -1.], [1., -1.], [1., 1.], [-1., 1.]], dtype)
  rows, cols = jnp.meshgrid(jnp.arange(h, dtype=dtype),
                            jnp.arange(w, dtype=dtype), indexing="ij")
  grid = jnp.stack([cols * scale[0] - 1., rows * scale[1] - 1.,
                    jnp.ones_like(rows)])  # [3, H, W] homogeneous

  def one(img, off):
    m = _homography(corners + off * scale, corners)  # output -> input
    src = jnp.einsum("ij,jhw->ihw", m, grid,
                     precision=lax.Precision.HIGHEST)
    src_x = (src[0] / src[2] + 1.) / scale[0]
    src_y = (src[1] / src[2] + 1.) / scale[1]

    def channel(c):
      return jax.scipy.ndimage.map_coordinates(c, [src_y, src_x], order=1,
                                               mode=mode, cval=0.)

    return jax.vmap(channel, in_axes=-1, out_axes=-1)(img.astype(dtype))

  return jax.vmap(one)(x, offsets).astype(x.dtype)


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
  units, scalar or `[B]`); `key` one key or `[B]` per-example keys (an
  example's noise then does not depend on its batch)."""
  _check_images(x, "gaussian_noise")
  _check_positive(sigma, "gaussian_noise: sigma")
  s = _per_example(sigma, x.shape[0], x.dtype)
  noise = rng.draw(lambda k, shape: jax.random.normal(k, shape, x.dtype),
                   key, x.shape)
  return jnp.clip(x + per_example(s, 4) * noise, *bounds)


def binarize(x: Array, threshold=0.5, *, bounds: Bounds = (0., 1.),
             straight_through: bool = False) -> Array:
  """Thresholds every pixel to the box's ends: `hi` where `x >= threshold`,
  `lo` elsewhere.

  The binarised-input defence of Wong et al.'s Wasserstein table (MNIST at
  threshold 0.5: the reference binarises the test images before attacking
  them, and trains on binarised images).

  Args:
    x: `[B, H, W, C]` float images.
    threshold: scalar or `[B]`, inside the box (static or traced).
    bounds: `(lo, hi)`, the two output values.
    straight_through: keep the binarised values but pass the identity's
      gradient (BPDA, Athalye et al. 2018), for a model that binarises its
      own input; otherwise the gradient is zero almost everywhere (an
      attack through it sees no signal).

  Returns:
    `[B, H, W, C]`, x's dtype, every entry `lo` or `hi`.

  Raises:
    ValueError: bad shape, `lo >= hi`, or a concrete threshold outside the
      box.
  """
  _check_images(x, "binarize")
  lo, hi = bounds
  if not lo < hi:
    raise ValueError(f"binarize: bounds must be (lo, hi) with lo < hi, got "
                     f"{bounds}.")
  tc = concrete(threshold)
  if tc is not None and ((tc < lo) | (tc > hi) | ~np.isfinite(tc)).any():
    raise ValueError(f"binarize: threshold must lie in the box {bounds}, "
                     f"got {tc}.")
  t = per_example(_per_example(threshold, x.shape[0], x.dtype), 4)
  out = jnp.where(x >= t, hi, lo).astype(x.dtype)
  if straight_through:
    out = x + lax.stop_gradient(out - x)
  return out


# Annex K of the JPEG standard (ITU-T T.81) in natural (row-major) order, as
# in libjpeg's jcparam.c.
_LUMA_QTABLE = np.array([
    [16, 11, 10, 16, 24, 40, 51, 61],
    [12, 12, 14, 19, 26, 58, 60, 55],
    [14, 13, 16, 24, 40, 57, 69, 56],
    [14, 17, 22, 29, 51, 87, 80, 62],
    [18, 22, 37, 56, 68, 109, 103, 77],
    [24, 35, 55, 64, 81, 104, 113, 92],
    [49, 64, 78, 87, 103, 121, 120, 101],
    [72, 92, 95, 98, 112, 100, 103, 99]], np.float32)
_CHROMA_QTABLE = np.array([
    [17, 18, 24, 47, 99, 99, 99, 99],
    [18, 21, 26, 66, 99, 99, 99, 99],
    [24, 26, 56, 99, 99, 99, 99, 99],
    [47, 66, 99, 99, 99, 99, 99, 99],
    [99, 99, 99, 99, 99, 99, 99, 99],
    [99, 99, 99, 99, 99, 99, 99, 99],
    [99, 99, 99, 99, 99, 99, 99, 99],
    [99, 99, 99, 99, 99, 99, 99, 99]], np.float32)

# JFIF (ITU-R BT.601, full range) on the 0..255 scale; Cb and Cr carry an
# offset of 128. Rows: (Y, Cb, Cr) from (R, G, B), and back.
_RGB_TO_YCBCR = np.array([
    [0.299, 0.587, 0.114],
    [-0.168735892, -0.331264108, 0.5],
    [0.5, -0.418687589, -0.081312411]], np.float32)
_YCBCR_TO_RGB = np.array([
    [1., 0., 1.402],
    [1., -0.344136286, -0.714136286],
    [1., 1.772, 0.]], np.float32)
_CHROMA_OFFSET = np.array([0., 128., 128.], np.float32)

_ROUNDINGS = ("straight_through", "cubic", "exact")

# Full float32 products: what feeds a rounding must not go through the
# TF32/bfloat16 matmuls that GPUs and TPUs use by default.
_einsum = functools.partial(jnp.einsum, precision=lax.Precision.HIGHEST)


def _dct_matrix(dtype) -> Array:
  """The orthonormal 8-point DCT-II matrix `D` (`D @ D.T = I`)."""
  k, n = np.meshgrid(np.arange(8), np.arange(8), indexing="ij")
  d = np.sqrt(2. / 8) * np.cos((2 * n + 1) * k * np.pi / 16)
  d[0] /= np.sqrt(2.)
  return jnp.asarray(d, dtype)


def _quant_tables(quality: Array) -> Tuple[Array, Array]:
  """libjpeg's `jpeg_set_quality(q, force_baseline=TRUE)` tables for `[B]`
  qualities: `[B, 8, 8]` luminance and chrominance."""
  q = quality[:, None, None]
  scale = jnp.where(q < 50, jnp.floor(5000. / q), 200. - 2. * q)

  def table(base):
    t = jnp.floor((jnp.asarray(base, quality.dtype) * scale + 50.) / 100.)
    return jnp.clip(t, 1., 255.)

  return table(_LUMA_QTABLE), table(_CHROMA_QTABLE)


def _round(v: Array, rounding: str, offset=None) -> Array:
  """Rounds to nearest (`offset` None) or to `floor(v + offset)`, with the
  gradient `rounding` asks for."""
  r = jnp.round(v) if offset is None else jnp.floor(v + offset)
  if rounding == "exact":
    return r
  if rounding == "straight_through":
    return v + lax.stop_gradient(r - v)
  return r + (v - r) ** 3  # cubic (Shin & Song 2017)


def _to_8bit(v: Array, rounding: str, offset=0.5) -> Array:
  """libjpeg's integer samples: `floor(v + offset)`; left continuous by the
  smooth "cubic" approximation."""
  return v if rounding == "cubic" else _round(v, rounding, offset)


def _block_codec(v: Array, table: Array, dct: Array, rounding: str) -> Array:
  """Level shift, 8x8 DCT, quantise, round, dequantise, inverse DCT.

  Args:
    v: `[B, H, W, K]` planes on the 0..255 scale, H and W multiples of 8.
    table: `[B, 8, 8]` quantisation tables.
    dct: the 8x8 DCT matrix.
    rounding: as in `jpeg`.

  Returns:
    `[B, H, W, K]` decoded planes, 8-bit and clipped to [0, 255] as
    libjpeg's inverse DCT leaves them.
  """
  b, h, w, k = v.shape
  blocks = (v - 128.).reshape(b, h // 8, 8, w // 8, 8, k)
  coef = _einsum("uh,bihjwk,vw->biujvk", dct, blocks, dct)
  t = table[:, None, :, None, :, None]
  coef = _round(coef / t, rounding) * t
  blocks = _einsum("uh,biujvk,vw->bihjwk", dct, coef, dct)
  out = _to_8bit(blocks.reshape(b, h, w, k) + 128., rounding)
  return jnp.clip(out, 0., 255.)


def _edge_pad_matrix(n: int, m: int) -> np.ndarray:
  """`[n', n]`, n' = n rounded up to a multiple of m: copies n samples and
  repeats the last one (libjpeg's edge replication)."""
  return np.eye(n, dtype=np.float32)[np.minimum(np.arange(n + (-n % m)),
                                                n - 1)]


def _pair_mean_matrix(n: int) -> np.ndarray:
  """`[n / 2, n]`: the mean of each pair of samples (n even)."""
  return np.repeat(np.eye(n // 2, dtype=np.float32), 2, axis=1) / 2.


def _fancy_upsample_matrix(n: int) -> np.ndarray:
  """`[2n, n]`: libjpeg's "fancy" (triangle) upsampling, unrounded: output
  2i is 3/4 of sample i plus 1/4 of sample i - 1, output 2i + 1 3/4 of
  sample i plus 1/4 of sample i + 1, edges replicated."""
  i = np.arange(n)
  u = np.zeros((2 * n, n), np.float32)
  np.add.at(u, (2 * i, i), 0.75)
  np.add.at(u, (2 * i, np.maximum(i - 1, 0)), 0.25)
  np.add.at(u, (2 * i + 1, i), 0.75)
  np.add.at(u, (2 * i + 1, np.minimum(i + 1, n - 1)), 0.25)
  return u


def _pad_to(v: Array, mh: int, mw: int) -> Array:
  """Pads `[B, H, W, K]` at the bottom and right, by edge replication (as
  libjpeg does), to multiples of mh rows and mw columns."""
  h, w = v.shape[1:3]
  return jnp.pad(v, ((0, 0), (0, -h % mh), (0, -w % mw), (0, 0)),
                 mode="edge")


def jpeg(x: Array, quality=75, *, bounds: Bounds = (0., 1.),
         chroma_subsampling: bool = True,
         rounding: str = "straight_through") -> Array:
  """Baseline JPEG compression then decompression, as libjpeg (Pillow) does.

  Maps x to 0..255. C = 3: converts RGB to YCbCr (JFIF) and, with
  `chroma_subsampling`, averages Cb and Cr over 2x2 pixels (4:2:0); C = 1:
  one luminance plane. Pads each plane by edge replication to whole blocks;
  per 8x8 block subtracts 128, takes the orthonormal 2-D DCT-II, divides by
  the quantisation table for `quality`, rounds, multiplies back and inverts
  the DCT. Decoding clips the planes to [0, 255], upsamples the chroma with
  libjpeg's triangle ("fancy") filter, crops, converts back to RGB, clips
  to [0, 255] and maps back to `bounds`. Between stages samples are 8-bit,
  rounded as libjpeg's integer code rounds them (not under "cubic").

  The tables are the standard (Annex K) luminance and chrominance tables
  scaled as libjpeg's `jpeg_set_quality`: `s = floor(5000 / q)` for q < 50,
  else `200 - 2 q`; `table = clip(floor((base s + 50) / 100), 1, 255)`.
  They are computed in JAX, so quality may be traced (a sweep over quality
  compiles once). With "straight_through", the gradient is the codec's with
  every rounding removed: the identity for greyscale away from the clips,
  the linear colour conversion and chroma resampling for RGB.

  Args:
    x: `[B, H, W, C]` float images in `bounds`, C = 1 (greyscale) or 3
      (RGB); any H and W.
    quality: libjpeg quality in [1, 100], scalar or `[B]`. libjpeg takes
      integers; other values go through the same formula.
    bounds: `(lo, hi)`, the range mapped to 0..255; the result is clipped
      to it.
    chroma_subsampling: static. 4:2:0 chroma if True (libjpeg's and
      Pillow's default, Pillow's `subsampling=2`), else 4:4:4
      (`subsampling=0`). Ignored for C = 1.
    rounding: static, how the quantiser (and the 8-bit samples) round.
      "straight_through" (default): exact rounding forward, identity
      gradient backward (BPDA, Athalye et al. 2018), so the output is the
      codec's and gradients still flow to attacks and training.
      "cubic": `round(v) + (v - round(v))^3` forward and backward (Shin &
      Song 2017), a smooth approximation whose forward pass differs from a
      codec's by up to 1/8 of a quantisation step; samples stay continuous.
      "exact": `jnp.round`, zero gradient through the quantiser, as a real
      codec behaves (gradient masking).

  Returns:
    `[B, H, W, C]`, x's dtype, inside `bounds`; with "straight_through" or
    "exact", on the 8-bit grid `lo + k (hi - lo) / 255`.

  Raises:
    ValueError: x not 4-D, C not 1 or 3, a concrete quality outside
      [1, 100], bounds not increasing, or an unknown `rounding`.
    TypeError: x not floating point.

  References:
    Wallace, *The JPEG still picture compression standard*, 1992 (ITU-T
    T.81). Shin & Song, *JPEG-resistant adversarial images*, NIPS 2017
    Workshop on Machine Learning and Computer Security. Athalye, Carlini &
    Wagner, *Obfuscated gradients give a false sense of security*, ICML
    2018.
  """
  _check_images(x, "jpeg")
  b, h, w, c = x.shape
  if c not in (1, 3):
    raise ValueError(f"jpeg: images must have 1 or 3 channels, got {c}.")
  if rounding not in _ROUNDINGS:
    raise ValueError(f"jpeg: rounding must be one of {_ROUNDINGS}, got "
                     f"{rounding!r}.")
  qc = concrete(quality)
  if qc is not None and not ((qc >= 1) & (qc <= 100)).all():
    raise ValueError(f"jpeg: quality must be in [1, 100], got {qc}.")
  lo, hi = bounds
  lc, hc = concrete(lo), concrete(hi)
  if lc is not None and hc is not None and not lc < hc:
    raise ValueError(f"jpeg: bounds must satisfy lo < hi, got {bounds}.")
  dtype = jnp.promote_types(x.dtype, jnp.float32)
  luma_table, chroma_table = _quant_tables(_per_example(quality, b, dtype))
  dct = _dct_matrix(dtype)
  v = (x.astype(dtype) - lo) * (255. / (hi - lo))

  if c == 1:
    y = _pad_to(_to_8bit(v, rounding), 8, 8)
    out = _block_codec(y, luma_table, dct, rounding)[:, :h, :w]
  else:
    offset = jnp.asarray(_CHROMA_OFFSET, dtype)
    ycc = _einsum("bhwc,kc->bhwk", v, jnp.asarray(_RGB_TO_YCBCR, dtype))
    ycc = _to_8bit(ycc + offset, rounding)
    if chroma_subsampling:
      # As libjpeg: full-resolution rows padded to an even count and columns
      # to whole chroma blocks, 2x2 means taken as (sum + bias) >> 2 with
      # bias alternating 1, 2 along a row, then chroma rows padded to whole
      # blocks. Resampling is by small constant matrices, one per axis.
      ch, cw = -(-h // 2), -(-w // 2)  # the components' own size
      down_h = (_edge_pad_matrix(ch, 8) @ _pair_mean_matrix(2 * ch)
                @ _edge_pad_matrix(h, 2))
      down_w = _pair_mean_matrix(w + (-w % 16)) @ _edge_pad_matrix(w, 16)
      chroma = _einsum("ph,bhwk,qw->bpqk", jnp.asarray(down_h, dtype),
                          ycc[..., 1:], jnp.asarray(down_w, dtype))
      bias = np.tile(np.array([0.25, 0.5], np.float32), down_w.shape[0] // 2)
      chroma = _to_8bit(chroma, rounding, jnp.asarray(bias[:, None], dtype))
    else:
      chroma = ycc[..., 1:]
    y = _block_codec(_pad_to(ycc[..., :1], 8, 8), luma_table, dct,
                     rounding)[:, :h, :w]
    chroma = _block_codec(_pad_to(chroma, 8, 8), chroma_table, dct, rounding)
    if chroma_subsampling:
      # Upsample the component's own samples (not its padding); libjpeg
      # rounds with (sum + 8) >> 4 and (sum + 7) >> 4 alternating.
      up_h, up_w = (np.pad(_fancy_upsample_matrix(n)[:m],
                           ((0, 0), (0, p - n)))
                    for n, m, p in ((ch, h, chroma.shape[1]),
                                    (cw, w, chroma.shape[2])))
      chroma = _einsum("ph,bhwk,qw->bpqk", jnp.asarray(up_h, dtype),
                          chroma, jnp.asarray(up_w, dtype))
      bias = np.tile(np.array([0.5, 0.4375], np.float32), cw)[:w]
      chroma = _to_8bit(chroma, rounding, jnp.asarray(bias[:, None], dtype))
    ycc = jnp.concatenate([y, chroma[:, :h, :w]], axis=-1) - offset
    out = _einsum("bhwk,ck->bhwc", ycc, jnp.asarray(_YCBCR_TO_RGB, dtype))
    out = jnp.clip(_to_8bit(out, rounding), 0., 255.)
  out = out * ((hi - lo) / 255.) + lo
  return jnp.clip(out, lo, hi).astype(x.dtype)


# --------------------------------------------------------------------------
# The photometric transforms of a destruction study, as data.
# --------------------------------------------------------------------------
PHOTOMETRIC_KINDS = ("brightness", "contrast", "blur", "noise", "jpeg")
_LABELS = {"brightness": "brightness {:+g}", "contrast": "contrast x{:g}",
           "blur": "blur sigma {:g}", "noise": "noise std {:g}",
           "jpeg": "JPEG quality {:g}"}


class Transform(NamedTuple):
  """One photometric transform of a study (Kurakin et al.'s grid).

  Attributes:
    kind: one of `PHOTOMETRIC_KINDS`.
    value: its strength as the study states it: brightness delta and
      noise std in units of `1 / scale` of the box (levels of 255 when
      `scale` is 255), contrast factor, blur sigma in pixels, JPEG quality.
    scale: the unit of brightness and noise values (1: box units).
    taps: the blur's kernel size (static; 0: from the value).
  """
  kind: str
  value: float
  scale: float = 1.
  taps: int = 0

  @property
  def name(self) -> str:
    """'brightness +30', 'contrast x0.8', 'JPEG quality 75', ..."""
    return _LABELS[self.kind].format(self.value)


def transform_grid(scale: float = 1., **values) -> list:
  """The `Transform`s of a study, kinds in `PHOTOMETRIC_KINDS` order:
  `transform_grid(255, brightness=(-30, 30), jpeg=(75,))`. Every blur of
  the grid uses the taps of the largest sigma, so one compilation serves
  them (values may be traced).

  Raises:
    ValueError: an unknown kind.
  """
  unknown = sorted(set(values) - set(PHOTOMETRIC_KINDS))
  if unknown:
    raise ValueError(f"transform_grid: unknown kinds {unknown}; use "
                     f"{PHOTOMETRIC_KINDS}.")
  blur = values.get("blur") or (0.,)
  taps = 2 * int(np.ceil(3. * max(blur))) + 1
  return [Transform(k, float(v), float(scale), taps if k == "blur" else 0)
          for k in PHOTOMETRIC_KINDS for v in values.get(k, ())]


def apply(x: Array, t: Transform, key: Optional[PRNGKey] = None,
          value=None) -> Array:
  """`x` under the transform `t` (clipped to [0, 1]).

  Args:
    x: `[B, H, W, C]` images in [0, 1].
    t: the transform (or a `PhotoChain`: `print_photo`).
    key: the noise's key (one, or `[B]` per-example keys); noise only.
    value: a traced strength instead of `t.value` (same units), so that
      the strengths of one kind share a compilation.

  Raises:
    ValueError: noise without a key.
  """
  if isinstance(t, PhotoChain):  # the whole chain as one transform
    return print_photo(x, t, key=key)
  v = t.value if value is None else value
  if t.kind == "brightness":
    return brightness(x, v / t.scale)
  if t.kind == "contrast":
    return contrast(x, v)
  if t.kind == "blur":
    return gaussian_blur(x, v, kernel_size=t.taps or None)
  if t.kind == "noise":
    if key is None:
      raise ValueError("apply: a noise transform needs a key.")
    return gaussian_noise(x, v / t.scale, key=key)
  if t.kind == "jpeg":
    return jpeg(x, v)
  raise ValueError(f"apply: unknown kind {t.kind!r}; use "
                   f"{PHOTOMETRIC_KINDS}.")


# --------------------------------------------------------------------------
# A simulated print and photograph (Kurakin et al.'s physical chain).
# --------------------------------------------------------------------------
class PhotoChain(NamedTuple):
  """The strengths of a simulated print-and-photograph chain
  (`print_photo`); 0 skips a stage, every one 0 is the identity.

  Attributes:
    warp: each corner moves by up to `warp` times the image side in x and
      in y (uniform, per example): `perspective` with edge replication.
    blur: Gaussian blur sigma, pixels.
    noise: Gaussian noise std, in units of `1 / scale` of the box.
    contrast: contrast factor uniform in `[1 - contrast, 1 + contrast]`.
    brightness: brightness change uniform in `[-brightness, brightness]`,
      in units of `1 / scale`.
    jpeg: JPEG quality (0: no JPEG).
    scale: the unit of noise and brightness (255: levels of 255).
  """
  warp: float = 0.
  blur: float = 0.
  noise: float = 0.
  contrast: float = 0.
  brightness: float = 0.
  jpeg: float = 0.
  scale: float = 1.

  @property
  def name(self) -> str:
    """The chain as a transform of a grid (`apply`, `correct_under`)."""
    return "simulated photo"


def print_photo(x: Array, chain: PhotoChain, *, key: PRNGKey) -> Array:
  """A simulated print and photograph of images in [0, 1]: perspective
  warp, blur, noise, contrast and brightness change, JPEG, in that order;
  the stages of strength 0 are skipped. A stand-in for the printed and
  photographed pages of Kurakin et al. (2017), not a model of a printer.

  Args:
    x: `[B, H, W, C]` images in [0, 1] (C = 1 or 3 with JPEG).
    chain: the strengths (static).
    key: one key, or `[B]` per-example keys: an example's draws then do
      not depend on its batch; give an example's clean and adversarial
      image the same key for the same "photo".

  Returns:
    `[B, H, W, C]` in [0, 1].

  Raises:
    ValueError: a strength < 0, warp >= 0.25 (the image would fold),
      contrast >= 1, a JPEG quality outside {0} and [1, 100], scale <= 0.
  """
  _check_images(x, "print_photo")
  if (min(chain) < 0 or chain.warp >= 0.25 or chain.contrast >= 1 or
      0 < chain.jpeg < 1 or chain.jpeg > 100 or chain.scale <= 0):
    raise ValueError("print_photo: strengths must be >= 0, warp < 0.25, "
                     "contrast < 1, jpeg 0 or in [1, 100], scale > 0; got "
                     f"{chain}.")
  b, h, w, _ = x.shape
  key = rng.check_key(key, b, "print_photo")
  k_warp, k_noise, k_contrast, k_bright = rng.split(key, 4)
  uniform = lambda k, s: jax.random.uniform(k, s, x.dtype, -1., 1.)
  if chain.warp:
    side = jnp.asarray([w - 1, h - 1], x.dtype)
    offsets = chain.warp * side * rng.draw(uniform, k_warp, (b, 4, 2))
    x = jnp.clip(perspective(x, offsets, mode="nearest"), 0., 1.)
  if chain.blur:
    x = gaussian_blur(x, chain.blur)
  if chain.noise:
    x = gaussian_noise(x, chain.noise / chain.scale, key=k_noise)
  if chain.contrast:
    x = contrast(x, 1. + chain.contrast * rng.draw(uniform, k_contrast, (b,)))
  if chain.brightness:
    x = brightness(
        x, chain.brightness / chain.scale * rng.draw(uniform, k_bright, (b,)))
  if chain.jpeg:
    x = jpeg(x, chain.jpeg)
  return x
