"""Fully connected networks of the early adversarial-examples papers.

Szegedy et al. (2014) attack softmax regressions (`FC10`), sigmoid
networks (`FC100_100_10`, `FC200_200_10`, `FC123_456_10`) and a softmax on
an autoencoder's features (`AE400_10`); Goodfellow et al. (2015) a shallow
softmax and a maxout network (`Maxout`). Each flattens a float NHWC batch
`[B, H, W, C]` of any size and returns logits `[B, num_classes]`, so they
run on the 8x8 digits as on 28x28 MNIST (the hidden widths are the
papers'; the input width is whatever the images have). A two-class `FC10`
is logistic regression (the logit difference is `w.x + b`).
"""

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from advjax.models._layers import check_nhwc
from advjax.models._layers import flatten
from advjax.models._layers import layers

__all__ = ["MLP", "FC10", "FC100_100_10", "FC200_200_10", "FC123_456_10",
           "AE400_10", "Maxout", "ACTIVATIONS"]

ACTIVATIONS = {"sigmoid": nn.sigmoid, "relu": nn.relu, "tanh": jnp.tanh}


def _activation(name: str):
  if name not in ACTIVATIONS:
    raise ValueError(f"Unknown activation {name!r}; use one of "
                     f"{sorted(ACTIVATIONS)}.")
  return ACTIVATIONS[name]


class MLP(nn.Module):
  """Dense layers of `hidden` widths with `activation`, then a softmax layer.

  Attributes:
    num_classes: number of output logits K.
    hidden: widths of the hidden layers (`()`: softmax regression).
    activation: 'sigmoid' (Szegedy et al.'s networks), 'relu' or 'tanh'.
    dtype: compute dtype (`jnp.bfloat16` for mixed precision); parameters
      and logits stay float32.

  References:
    Szegedy et al., "Intriguing properties of neural networks", ICLR 2014,
    section 4.3.
  """
  num_classes: int = 10
  hidden: Sequence[int] = (100, 100)
  activation: str = "sigmoid"
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Logits `[B, num_classes]` of float images `[B, H, W, C]` (`train`
    is unused: no batch norm or dropout)."""
    del train
    check_nhwc(x, type(self).__name__)
    act = _activation(self.activation)
    _, Dense = layers(self.dtype)  # pylint: disable=invalid-name
    h = flatten(x)
    for width in self.hidden:
      h = act(Dense(width)(h))
    return Dense(self.num_classes)(h).astype(jnp.float32)


class FC10(MLP):
  """Softmax regression (Szegedy's FC10(lambda): the weight decay lambda is
  a training setting; Goodfellow's shallow softmax). See `MLP`."""
  hidden: Sequence[int] = ()


class FC100_100_10(MLP):  # pylint: disable=invalid-name
  """Szegedy's 100-100-10 sigmoid network. See `MLP`."""
  hidden: Sequence[int] = (100, 100)


class FC200_200_10(MLP):  # pylint: disable=invalid-name
  """Szegedy's 200-200-10 sigmoid network. See `MLP`."""
  hidden: Sequence[int] = (200, 200)


class FC123_456_10(MLP):  # pylint: disable=invalid-name
  """Szegedy's 123-456-10 sigmoid network (the cross-training-set study's
  second architecture). See `MLP`."""
  hidden: Sequence[int] = (123, 456)


class AE400_10(nn.Module):  # pylint: disable=invalid-name
  """A softmax on the features of a one-layer autoencoder (Szegedy's
  AE400-10).

  `encoder` (dense `hidden`, sigmoid) feeds both `head` (dense
  `num_classes`: the logits) and `decoder` (dense H*W*C, sigmoid: the
  reconstruction, `__call__(x, reconstruct=True)`). `init` creates all
  three; `advjax.training.pretrain_autoencoder` trains encoder and decoder
  on reconstruction first, and classification training then starts from
  those weights (`training.fit(init_variables=...)`).

  Attributes:
    num_classes: number of output logits K.
    hidden: the autoencoder's code width (400).
    dtype: compute dtype; parameters and outputs stay float32.
  """
  num_classes: int = 10
  hidden: int = 400
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False,
               reconstruct: bool = False) -> jax.Array:
    """Logits `[B, num_classes]`, or with `reconstruct` the reconstruction
    `[B, H, W, C]` in [0, 1]."""
    del train
    check_nhwc(x, type(self).__name__)
    _, Dense = layers(self.dtype)  # pylint: disable=invalid-name
    code = nn.sigmoid(Dense(self.hidden, name="encoder")(flatten(x)))
    if reconstruct or self.is_initializing():
      size = x.shape[1] * x.shape[2] * x.shape[3]
      out = nn.sigmoid(Dense(size, name="decoder")(code))
      if reconstruct:
        return out.reshape(x.shape).astype(jnp.float32)
    return Dense(self.num_classes, name="head")(code).astype(jnp.float32)


class Maxout(nn.Module):
  """Goodfellow et al.'s maxout network for MNIST: `len(hidden)` maxout
  layers (each unit the max of `pieces` affine pieces) and a softmax layer.

  Attributes:
    num_classes: number of output logits K.
    hidden: maxout units per layer (240, 240 in the paper).
    pieces: affine pieces per unit (5).
    dropout_rate: dropout on the input of every layer in training (needs
      the 'dropout' rng; 0: none).
    dtype: compute dtype; parameters and logits stay float32.

  References:
    Goodfellow, Warde-Farley, Mirza, Courville, Bengio, "Maxout networks",
    ICML 2013; Goodfellow, Shlens, Szegedy, "Explaining and harnessing
    adversarial examples", ICLR 2015, section 6.
  """
  num_classes: int = 10
  hidden: Sequence[int] = (240, 240)
  pieces: int = 5
  dropout_rate: float = 0.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Logits `[B, num_classes]` of float images `[B, H, W, C]`."""
    check_nhwc(x, type(self).__name__)
    if self.pieces < 1:
      raise ValueError(f"Maxout: pieces must be >= 1, got {self.pieces}.")
    _, Dense = layers(self.dtype)  # pylint: disable=invalid-name
    drop = nn.Dropout(self.dropout_rate, deterministic=not train)
    h = flatten(x)
    for width in self.hidden:
      z = Dense(width * self.pieces)(drop(h))
      h = z.reshape(z.shape[0], width, self.pieces).max(-1)
    return Dense(self.num_classes)(drop(h)).astype(jnp.float32)
