"""Private helpers shared by the reference models."""
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

__all__ = ["check_nhwc", "flatten", "conv", "layers"]

_NHWC = ("NHWC", "HWIO", "NHWC")


def check_nhwc(x: jax.Array, model_name: str) -> None:
  """Raises a clear error unless `x` is a rank-4 NHWC batch.

  Args:
    x: the model input; expected `[B, H, W, C]`.
    model_name: the calling model's class name, for the message.

  Raises:
    ValueError: if `x` does not have rank 4.
  """
  if x.ndim != 4:
    raise ValueError(
        f"{model_name} expects a float NHWC batch [B, H, W, C]; got an array "
        f"of shape {tuple(x.shape)} (rank {x.ndim}). Add a batch axis with "
        "x[None] for a single example, or a channel axis with x[..., None] "
        "for grey images.")


def layers(dtype):
  """`(Conv, Dense)`: Flax's layers computing in `dtype` (float32
  parameters either way; the same parameter names and shapes)."""
  return (functools.partial(nn.Conv, dtype=dtype),
          functools.partial(nn.Dense, dtype=dtype))


def flatten(x: jax.Array) -> jax.Array:
  """Flattens `[B, ...]` to `[B, prod(...)]`."""
  return x.reshape((x.shape[0], -1))


def _s2d_kernel(kernel):
  """`[kh, kw, C, O] -> [kh / 2, kw / 2, 4 C, O]`: `K2[a, b, (r, s, c)] =
  K[2 a + r, 2 b + s, c]`."""
  kh, kw, c, o = kernel.shape
  return kernel.reshape(kh // 2, 2, kw // 2, 2, c, o).transpose(
      0, 2, 1, 3, 4, 5).reshape(kh // 2, kw // 2, 4 * c, o)


def _strided_conv_input_grad(g, kernel, x_shape, padding):
  """The input gradient of a stride-2 convolution with an even kernel.

  `y[i] = sum_u xp[2 i + u] K[u]` with `u = 2 a + r` is a VALID stride-1
  convolution of the space-to-depth input `X[m, (r, c)] = xp[2 m + r, c]`
  with `K2[a, (r, c)] = K[2 a + r, c]` (per spatial axis). Its input
  gradient is a full stride-1 correlation of the cotangent with the
  flipped, in/out-swapped `K2`, mapped back by depth-to-space: no dilated
  convolution, and a kernel in the standard layout.
  """
  b, h, w, c = x_shape
  (t, bot), (left, right) = padding
  ph, pw = h + t + bot, w + left + right
  h2, w2 = (ph + 1) // 2, (pw + 1) // 2  # the space-to-depth grid
  k2 = _s2d_kernel(kernel)
  kh2, kw2 = k2.shape[:2]
  g = jnp.pad(g, ((0, 0), (0, h2 - kh2 + 1 - g.shape[1]),
                  (0, w2 - kw2 + 1 - g.shape[2]), (0, 0)))
  k_t = jnp.flip(k2, (0, 1)).transpose(0, 1, 3, 2)
  dxs = lax.conv_general_dilated(g, k_t, (1, 1),
                                 ((kh2 - 1, kh2 - 1), (kw2 - 1, kw2 - 1)),
                                 dimension_numbers=_NHWC)
  dxp = dxs.reshape(b, h2, w2, 2, 2, c).transpose(0, 1, 3, 2, 4, 5).reshape(
      b, 2 * h2, 2 * w2, c)
  return dxp[:, t:t + h, left:left + w]


def _strided_conv_s2d_forward(x, kernel, padding, precision):
  """The stride-2 convolution as a VALID stride-1 one on the space-to-depth
  input (see `_strided_conv_input_grad`)."""
  b, h, w, c = x.shape
  kh, kw = kernel.shape[:2]
  (t, bot), (left, right) = padding
  ph, pw = h + t + bot, w + left + right
  xp = jnp.pad(x, ((0, 0), (t, bot + ph % 2), (left, right + pw % 2),
                   (0, 0)))
  h2, w2 = xp.shape[1] // 2, xp.shape[2] // 2
  xs = xp.reshape(b, h2, 2, w2, 2, c).transpose(0, 1, 3, 2, 4, 5).reshape(
      b, h2, w2, 4 * c)
  y = lax.conv_general_dilated(xs, _s2d_kernel(kernel), (1, 1), "VALID",
                               dimension_numbers=_NHWC, precision=precision)
  return y[:, :(ph - kh) // 2 + 1, :(pw - kw) // 2 + 1]


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _strided_conv(x, kernel, padding, precision, s2d_forward):
  if s2d_forward:
    return _strided_conv_s2d_forward(x, kernel, padding, precision)
  return lax.conv_general_dilated(x, kernel, (2, 2), padding,
                                  dimension_numbers=_NHWC,
                                  precision=precision)


def _strided_conv_fwd(x, kernel, padding, precision, s2d_forward):
  return _strided_conv(x, kernel, padding, precision, s2d_forward), (
      x, kernel)


def _strided_conv_bwd(padding, precision, s2d_forward, res, g):
  del s2d_forward
  x, kernel = res
  _, vjp_k = jax.vjp(lambda k: lax.conv_general_dilated(
      x, k, (2, 2), padding, dimension_numbers=_NHWC,
      precision=precision), kernel)
  return (_strided_conv_input_grad(g, kernel, x.shape, padding),
          vjp_k(g)[0])


_strided_conv.defvjp(_strided_conv_fwd, _strided_conv_bwd)


def _is_nhwc(lhs, rhs, dimension_numbers) -> bool:
  if dimension_numbers is None:
    return False
  ref = lax.conv_dimension_numbers(lhs.shape, rhs.shape, _NHWC)
  got = lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
  return tuple(got) == tuple(ref)


def conv(lhs, rhs, window_strides, padding, lhs_dilation=None,
         rhs_dilation=None, dimension_numbers=None, feature_group_count=1,
         precision=None, **kwargs):
  """`lax.conv_general_dilated`, with a faster input gradient for stride-2
  convolutions with even kernels (NHWC/HWIO, explicit padding).

  The forward pass is XLA's own convolution (on CPU, for layers with at
  most 4 input and 16 output channels, the equivalent space-to-depth one,
  which is faster there; equal up to float rounding). Its input gradient
  (what every attack computes) is the transpose of a strided convolution,
  which XLA:CPU runs as a slow dilated convolution; here it is taken through
  the equivalent space-to-depth stride-1 convolution instead (Wong's CNN at
  8x8, second layer, weights as inputs: 15.3 -> 1.6 us per example, and
  8.5 -> 1.0 inside a loop, on 2 CPU cores). The weight gradient is XLA's. Use as `nn.Conv(..., conv_general_dilated=conv)`.
  """
  fast = (tuple(window_strides) == (2, 2) and not kwargs
          and all(d in (None, 1, (1, 1)) for d in (lhs_dilation, rhs_dilation))
          and feature_group_count == 1 and rhs.shape[0] % 2 == 0
          and rhs.shape[1] % 2 == 0 and not isinstance(padding, str)
          and lhs.ndim == 4 and _is_nhwc(lhs, rhs, dimension_numbers))
  if not fast:
    return lax.conv_general_dilated(
        lhs, rhs, window_strides, padding, lhs_dilation=lhs_dilation,
        rhs_dilation=rhs_dilation, dimension_numbers=dimension_numbers,
        feature_group_count=feature_group_count, precision=precision,
        **kwargs)
  padding = tuple(tuple(int(v) for v in p) for p in padding)
  # On CPU the forward pass of a layer with few input and output channels
  # (the first layer of Wong's CNN: 1.36 -> 0.57 us per 8x8 example, 16.4
  # -> 9.0 at 32x32x3) is faster as the space-to-depth convolution too.
  s2d_forward = (jax.default_backend() == "cpu" and rhs.shape[2] <= 4
                 and rhs.shape[3] <= 16)
  return _strided_conv(lhs, rhs, padding, precision, s2d_forward)
