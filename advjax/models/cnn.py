"""Small convolutional networks from the adversarial-robustness literature.

Each model maps a float NHWC batch `[B, H, W, C]` to logits `[B, num_classes]`
and works at any resolution from the 8x8 scikit-learn digits upwards (28x28
MNIST, 32x32 CIFAR-10/GTSRB): convolutions keep or halve the spatial size
without collapsing it, and the first dense layer takes whatever spatial size
is left after flattening.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from advjax.models._layers import check_nhwc
from advjax.models._layers import conv
from advjax.models._layers import flatten
from advjax.models._layers import layers

__all__ = [
    "WongCNN",
    "MadryCNN",
    "CarliniCNN",
    "CarliniMNIST",
    "CarliniCIFAR",
    "GTSRBCNN",
    "MetzenDetector",
]


def _max_pool(x: jax.Array) -> jax.Array:
  # 'SAME' so odd sizes (7x7 after two MNIST halvings) round up, never to 0.
  return nn.max_pool(x, (2, 2), strides=(2, 2), padding="SAME")


class WongCNN(nn.Module):
  """The small MNIST CNN of Wong & Kolter (2018) and Wong et al. (2020).

  conv16 4x4 stride 2 pad 1, relu, conv32 4x4 stride 2 pad 1, relu, flatten,
  dense100, relu, dense `num_classes`. At 28x28x1 it has 166,406 parameters
  (10 classes), as in the reference PyTorch code.

  Attributes:
    num_classes: number of output logits K.
    dtype: compute dtype (`jnp.bfloat16` for mixed precision): inputs and
      weights are cast to it in the convolutions and dense layers; the
      parameters stay float32 and the logits are returned as float32.

  References:
    Wong & Kolter, "Provable defenses against adversarial examples via the
    convex outer adversarial polytope", ICML 2018.
    Wong, Rice & Kolter, "Fast is better than free: Revisiting adversarial
    training", ICLR 2020.
  """
  num_classes: int = 10
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Computes logits.

    Args:
      x: float images `[B, H, W, C]` (H, W >= 3).
      train: unused (no batch norm or dropout); kept for a uniform signature.

    Returns:
      Logits `[B, num_classes]`.
    """
    del train
    check_nhwc(x, type(self).__name__)
    Conv, Dense = layers(self.dtype)  # pylint: disable=invalid-name
    for features in (16, 32):
      x = Conv(features, (4, 4), strides=(2, 2), padding=((1, 1), (1, 1)),
               conv_general_dilated=conv)(x)
      x = nn.relu(x)
    x = nn.relu(Dense(100)(flatten(x)))
    return Dense(self.num_classes)(x).astype(jnp.float32)


class MadryCNN(nn.Module):
  """The MNIST CNN of Madry et al. (2018).

  conv32 5x5 SAME, relu, maxpool 2x2, conv64 5x5 SAME, relu, maxpool 2x2,
  dense1024, relu, dense `num_classes`. At 28x28x1 it has 3,274,634 parameters
  (10 classes), as in the MNIST challenge model.

  Attributes:
    num_classes: number of output logits K.
    dtype: compute dtype (`jnp.bfloat16` for mixed precision): inputs and
      weights are cast to it in the convolutions and dense layers; the
      parameters stay float32 and the logits are returned as float32.

  References:
    Madry, Makelov, Schmidt, Tsipras & Vladu, "Towards deep learning models
    resistant to adversarial attacks", ICLR 2018.
  """
  num_classes: int = 10
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Computes logits.

    Args:
      x: float images `[B, H, W, C]`.
      train: unused (no batch norm or dropout); kept for a uniform signature.

    Returns:
      Logits `[B, num_classes]`.
    """
    del train
    check_nhwc(x, type(self).__name__)
    Conv, Dense = layers(self.dtype)  # pylint: disable=invalid-name
    x = _max_pool(nn.relu(Conv(32, (5, 5), padding="SAME")(x)))
    x = _max_pool(nn.relu(Conv(64, (5, 5), padding="SAME")(x)))
    x = nn.relu(Dense(1024)(flatten(x)))
    return Dense(self.num_classes)(x).astype(jnp.float32)


class CarliniCNN(nn.Module):
  """The Carlini & Wagner (2017) CNN family: 2x2 convs, 2 pools, 3 dense.

  conv f0 3x3, relu, conv f1 3x3, relu, maxpool 2x2, conv f2 3x3, relu,
  conv f3 3x3, relu, maxpool 2x2, flatten, dense h0, relu, dropout,
  dense h1, relu, dense `num_classes`. Use `CarliniMNIST` or `CarliniCIFAR`
  for the published widths.

  Attributes:
    num_classes: number of output logits K.
    features: filters of the four convolutions.
    hidden: widths of the two hidden dense layers.
    dropout_rate: dropout after the first hidden dense layer (train only).
    padding: convolution padding. 'SAME' (default) works down to 8x8 inputs;
      'VALID' reproduces the paper's layer sizes at 28x28 and 32x32 but needs
      inputs of at least 16x16.
    dtype: compute dtype (`jnp.bfloat16` for mixed precision): inputs and
      weights are cast to it in the convolutions and dense layers; the
      parameters stay float32 and the logits are returned as float32.

  References:
    Carlini & Wagner, "Towards evaluating the robustness of neural networks",
    IEEE S&P 2017.
  """
  num_classes: int = 10
  features: tuple[int, int, int, int] = (32, 32, 64, 64)
  hidden: tuple[int, int] = (200, 200)
  dropout_rate: float = 0.5
  padding: str = "SAME"
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Computes logits.

    Args:
      x: float images `[B, H, W, C]`.
      train: if True, applies dropout (needs the 'dropout' rng).

    Returns:
      Logits `[B, num_classes]`.
    """
    check_nhwc(x, type(self).__name__)
    Conv, Dense = layers(self.dtype)  # pylint: disable=invalid-name
    f0, f1, f2, f3 = self.features
    x = nn.relu(Conv(f0, (3, 3), padding=self.padding)(x))
    x = nn.relu(Conv(f1, (3, 3), padding=self.padding)(x))
    x = _max_pool(x)
    x = nn.relu(Conv(f2, (3, 3), padding=self.padding)(x))
    x = nn.relu(Conv(f3, (3, 3), padding=self.padding)(x))
    x = _max_pool(x)
    x = nn.relu(Dense(self.hidden[0])(flatten(x)))
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    x = nn.relu(Dense(self.hidden[1])(x))
    return Dense(self.num_classes)(x).astype(jnp.float32)


class CarliniMNIST(CarliniCNN):
  """Carlini & Wagner's MNIST model: filters 32/32/64/64, dense 200/200.

  See `CarliniCNN` for the layers and attributes.

  References:
    Carlini & Wagner, "Towards evaluating the robustness of neural networks",
    IEEE S&P 2017.
  """
  features: tuple[int, int, int, int] = (32, 32, 64, 64)
  hidden: tuple[int, int] = (200, 200)


class CarliniCIFAR(CarliniCNN):
  """Carlini & Wagner's CIFAR-10 model: filters 64/64/128/128, dense 256/256.

  See `CarliniCNN` for the layers and attributes.

  References:
    Carlini & Wagner, "Towards evaluating the robustness of neural networks",
    IEEE S&P 2017.
  """
  features: tuple[int, int, int, int] = (64, 64, 128, 128)
  hidden: tuple[int, int] = (256, 256)


class GTSRBCNN(nn.Module):
  """The GTSRB traffic-sign CNN of the adversarial-robustness benchmarks.

  C32-C32-MP-D0.2-C64-C64-MP-D0.2-C128-C128-MP-D0.2-L512-D0.5-L43: 3x3 SAME
  convolutions with relu, 2x2 max pools, dropout 0.2 after each pool, a
  512-unit relu dense layer, dropout 0.5, and a dense output layer.

  Attributes:
    num_classes: number of output logits K (43 GTSRB classes by default).
    dtype: compute dtype (`jnp.bfloat16` for mixed precision): inputs and
      weights are cast to it in the convolutions and dense layers; the
      parameters stay float32 and the logits are returned as float32.

  References:
    Stallkamp, Schlipsing, Salmen & Igel, "Man vs. computer: Benchmarking
    machine learning algorithms for traffic sign recognition", Neural
    Networks 32, 2012 (the dataset; the layer string is the one listed in
    DESIGN.md section 5).
  """
  num_classes: int = 43
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Computes logits.

    Args:
      x: float images `[B, H, W, C]`.
      train: if True, applies dropout (needs the 'dropout' rng).

    Returns:
      Logits `[B, num_classes]`.
    """
    check_nhwc(x, type(self).__name__)
    Conv, Dense = layers(self.dtype)  # pylint: disable=invalid-name
    for features in (32, 64, 128):
      x = nn.relu(Conv(features, (3, 3), padding="SAME")(x))
      x = nn.relu(Conv(features, (3, 3), padding="SAME")(x))
      x = _max_pool(x)
      x = nn.Dropout(0.2, deterministic=not train)(x)
    x = nn.relu(Dense(512)(flatten(x)))
    x = nn.Dropout(0.5, deterministic=not train)(x)
    return Dense(self.num_classes)(x).astype(jnp.float32)


class MetzenDetector(nn.Module):
  """The adversarial-example detector of Metzen et al. (2017).

  conv96 3x3, relu, maxpool 2x2, conv192 3x3, relu, maxpool 2x2, conv192
  3x3, relu, conv `num_classes` 1x1, global average pooling: two logits
  (clean, adversarial) by default. The paper attaches it to feature maps of
  the classifier; here it reads whatever it is given (the input image in
  `advjax.analysis.detection`, where the classifier is a different network
  at every epoch of the study).

  Attributes:
    num_classes: output logits (2: clean vs adversarial).
    features: filters of the three 3x3 convolutions.
    dtype: compute dtype (`jnp.bfloat16` for mixed precision): inputs and
      weights are cast to it in the convolutions and dense layers; the
      parameters stay float32 and the logits are returned as float32.

  References:
    Metzen, Genewein, Fischer, Bischoff, "On detecting adversarial
    perturbations", ICLR 2017.
  """
  num_classes: int = 2
  features: tuple[int, int, int] = (96, 192, 192)
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Computes logits `[B, num_classes]` from `[B, H, W, C]`."""
    del train
    check_nhwc(x, type(self).__name__)
    Conv, Dense = layers(self.dtype)  # pylint: disable=invalid-name
    f0, f1, f2 = self.features
    x = _max_pool(nn.relu(Conv(f0, (3, 3), padding="SAME")(x)))
    x = _max_pool(nn.relu(Conv(f1, (3, 3), padding="SAME")(x)))
    x = nn.relu(Conv(f2, (3, 3), padding="SAME")(x))
    x = Conv(self.num_classes, (1, 1))(x)
    return x.mean(axis=(1, 2)).astype(jnp.float32)
