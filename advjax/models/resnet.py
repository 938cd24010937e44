"""Pre-activation residual networks: PreAct ResNet-18 and Wide ResNets.

Both follow the PyTorch reference implementations used in adversarial
training (Wong et al. 2020 for PreAct ResNet-18; Zagoruyko & Komodakis and
the RobustBench/TRADES code for WRN): 3x3 convolutions without bias padded by
1 (so stride 2 maps H to ceil(H / 2) and never to zero), batch norm with
PyTorch's momentum 0.1 (Flax `momentum=0.9`) and epsilon 1e-5, 1x1 projection
shortcuts only where the shape changes, a final BN + relu, global average
pooling and a dense classifier. Any input resolution works: 8x8 digits,
28x28 MNIST, 32x32 CIFAR-10.
"""

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from advjax.models._layers import check_nhwc

__all__ = ["PreActBlock", "PreActResNet18", "WideResNet"]

# He et al. (2015) init: untruncated normal over fan-out, as in the WRN code.
_conv_init = nn.initializers.variance_scaling(
    2.0, "fan_out", "normal")


def _batch_norm(train: bool, axis_name: str | None, dtype) -> nn.BatchNorm:
  # Statistics are reduced in float32 whatever `dtype` (Flax's default).
  return nn.BatchNorm(
      use_running_average=not train,
      momentum=0.9,
      epsilon=1e-5,
      axis_name=axis_name,
      dtype=dtype)


def _conv3x3(features: int, strides: int = 1, dtype=jnp.float32) -> nn.Conv:
  return nn.Conv(
      features, (3, 3),
      strides=(strides, strides),
      padding=((1, 1), (1, 1)),
      use_bias=False,
      kernel_init=_conv_init,
      dtype=dtype)


class PreActBlock(nn.Module):
  """A pre-activation basic block: BN-relu-conv3x3-BN-relu-(dropout)-conv3x3.

  The shortcut is the identity when the shape is unchanged, else a strided
  1x1 convolution: of the pre-activated input (He et al. 2016, the WRN code)
  or, with `preact_shortcut=False`, of the raw input (the PreAct ResNet-18 of
  Wong et al. 2020).

  Attributes:
    features: output channels.
    strides: stride of the first convolution and of the shortcut.
    preact_shortcut: whether a projection shortcut sees BN-relu(x) or x.
    dropout_rate: dropout between the two convolutions (train only; WRN).
    axis_name: batch-norm reduction axis under `shard_map`; None for
      per-device statistics (or under plain `jit`, where the batch is global).
    dtype: compute dtype of the block's layers (see `PreActResNet18`).

  References:
    He, Zhang, Ren & Sun, "Identity mappings in deep residual networks",
    ECCV 2016.
  """
  features: int
  strides: int = 1
  preact_shortcut: bool = True
  dropout_rate: float = 0.0
  axis_name: str | None = None
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Applies the block.

    Args:
      x: features `[B, H, W, C_in]`.
      train: batch statistics and dropout if True, running averages if False.

    Returns:
      Features `[B, ceil(H / strides), ceil(W / strides), features]`.
    """
    out = nn.relu(_batch_norm(train, self.axis_name, self.dtype)(x))
    if self.strides != 1 or x.shape[-1] != self.features:
      shortcut = nn.Conv(
          self.features, (1, 1),
          strides=(self.strides, self.strides),
          padding="VALID",
          use_bias=False,
          kernel_init=_conv_init,
          dtype=self.dtype)(out if self.preact_shortcut else x)
    else:
      shortcut = x
    y = _conv3x3(self.features, self.strides, self.dtype)(out)
    y = nn.relu(_batch_norm(train, self.axis_name, self.dtype)(y))
    y = nn.Dropout(self.dropout_rate, deterministic=not train)(y)
    y = _conv3x3(self.features, dtype=self.dtype)(y)
    return y + shortcut


class PreActResNet18(nn.Module):
  """Pre-activation ResNet-18 as used in fast adversarial training.

  conv3x3 `width`, four stages of two `PreActBlock`s with `width` x
  (1, 2, 4, 8) channels and strides (1, 2, 2, 2), BN + relu, global average
  pool, dense `num_classes`. As in the reference code, projection shortcuts
  take the raw block input, and with `width=64` and 10 classes there are
  11,172,170 trainable parameters.

  Attributes:
    num_classes: number of output logits K.
    width: channels of the stem and first stage (64 in the paper; small
      values such as 8 make fast tests).
    axis_name: batch-norm reduction axis under `shard_map` (see
      `PreActBlock`).
    dtype: compute dtype (`jnp.bfloat16` for mixed precision): inputs and
      weights are cast to it in the convolutions, batch norms and dense
      layer; parameters and batch statistics stay float32 and the logits
      are returned as float32.

  References:
    He, Zhang, Ren & Sun, "Identity mappings in deep residual networks",
    ECCV 2016.
    Wong, Rice & Kolter, "Fast is better than free: Revisiting adversarial
    training", ICLR 2020.
  """
  num_classes: int = 10
  width: int = 64
  axis_name: str | None = None
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Computes logits.

    Args:
      x: float images `[B, H, W, C]`.
      train: batch statistics if True (pass `mutable=['batch_stats']`),
        running averages if False.

    Returns:
      Logits `[B, num_classes]`.
    """
    check_nhwc(x, type(self).__name__)
    x = _conv3x3(self.width, dtype=self.dtype)(x)
    for stage, strides in enumerate((1, 2, 2, 2)):
      for block in range(2):
        x = PreActBlock(
            self.width * 2**stage,
            strides=strides if block == 0 else 1,
            preact_shortcut=False,
            axis_name=self.axis_name,
            dtype=self.dtype)(x, train=train)
    x = nn.relu(_batch_norm(train, self.axis_name, self.dtype)(x))
    x = jnp.mean(x, axis=(1, 2))
    return nn.Dense(self.num_classes, dtype=self.dtype)(x).astype(jnp.float32)


class WideResNet(nn.Module):
  """Wide residual network WRN-`depth`-`width` with pre-activation blocks.

  conv3x3 16, three groups of n = (depth - 4) / 6 `PreActBlock`s with
  16k, 32k, 64k channels (k = `width`) and strides (1, 2, 2), BN + relu,
  global average pool, dense `num_classes`. WRN-28-10 with 10 classes has
  36,479,194 trainable parameters; WRN-34-10 (Madry et al., TRADES) has
  46,160,474.

  Attributes:
    num_classes: number of output logits K.
    depth: total depth; (depth - 4) must be a positive multiple of 6.
    width: widening factor k.
    dropout_rate: dropout between the convolutions of each block (train only).
    axis_name: batch-norm reduction axis under `shard_map` (see
      `PreActBlock`).
    dtype: compute dtype (see `PreActResNet18`).

  Raises:
    ValueError: at construction, if `depth` or `width` is invalid.

  References:
    Zagoruyko & Komodakis, "Wide residual networks", BMVC 2016.
  """
  num_classes: int = 10
  depth: int = 28
  width: int = 10
  dropout_rate: float = 0.0
  axis_name: str | None = None
  dtype: Any = jnp.float32

  def __post_init__(self):
    if self.depth < 10 or (self.depth - 4) % 6 != 0:
      raise ValueError(
          f"WideResNet depth must satisfy (depth - 4) % 6 == 0 with at least "
          f"one block per group (depth = 10, 16, 22, 28, 34, 40, ...); got "
          f"depth={self.depth}.")
    if self.width < 1:
      raise ValueError(
          f"WideResNet width (widening factor) must be >= 1; got "
          f"width={self.width}.")
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Computes logits.

    Args:
      x: float images `[B, H, W, C]`.
      train: batch statistics and dropout if True (pass
        `mutable=['batch_stats']` and a 'dropout' rng when
        `dropout_rate > 0`), running averages if False.

    Returns:
      Logits `[B, num_classes]`.
    """
    check_nhwc(x, type(self).__name__)
    blocks_per_group = (self.depth - 4) // 6
    block = functools.partial(
        PreActBlock,
        dropout_rate=self.dropout_rate,
        axis_name=self.axis_name,
        dtype=self.dtype)
    x = _conv3x3(16, dtype=self.dtype)(x)
    for group, strides in enumerate((1, 2, 2)):
      for i in range(blocks_per_group):
        x = block(
            16 * self.width * 2**group,
            strides=strides if i == 0 else 1)(x, train=train)
    x = nn.relu(_batch_norm(train, self.axis_name, self.dtype)(x))
    x = jnp.mean(x, axis=(1, 2))
    return nn.Dense(self.num_classes, dtype=self.dtype)(x).astype(jnp.float32)
