"""Flax twins of the PyTorch classifiers that robustness papers release.

Each class computes what its PyTorch namesake computes, and its variables
sit at the same paths as the PyTorch `state_dict` keys, so a released
checkpoint loads by a mechanical rename (`advjax.zoo.convert`):
`layer1.0.conv1.weight` is `params['layer1']['0']['conv1']['kernel']`, a
batch norm's `running_mean` is `batch_stats[...]['mean']`. The layouts
follow the sources exactly:

* RobustBench's CIFAR architectures (`robustbench.model_zoo.architectures`):
  `PreActResNet18` (`resnet.py`, Wong et al.'s fast adversarial training
  network), `ResNet18`/`ResNet50` (`resnet.py`, CIFAR stems), `WideResNet`
  (`wide_resnet.py`, the TRADES layout) and `DMWideResNet`
  (`dm_wide_resnet.py`, DeepMind's: Swish, TF 'SAME' padding, input
  normalisation built in);
* torchvision's ImageNet classifiers: `resnet18` ... `resnet152`,
  `wide_resnet50_2`, `vgg11` ... `vgg19` and their `_bn` variants.

Every model maps float NHWC images in `[0, 1]` to logits, like the rest of
advjax (`model.apply(variables, x, train=False)`); the input normalisation
that PyTorch code puts in a wrapper (RobustBench's `mu`/`sigma` buffers,
torchvision's ImageNet mean and std) is the `mean`/`std` attributes, applied
first, so attacks keep their budgets in pixel space.

The final `F.avg_pool2d(out, 4 or 8).view(-1, C)` of the CIFAR networks is
computed exactly where PyTorch's gives one cell per image (32x32 inputs, and
up to 63x63), and as a global average at the sizes where the PyTorch code
fails; VGG's `AdaptiveAvgPool2d((7, 7))` is PyTorch's at any input size, and
VGG flattens its `[C, 7, 7]` features in PyTorch's NCHW order, so its first
classifier layer loads unpermuted.
"""

import functools
from collections.abc import Callable, Sequence
from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "ARCHITECTURES", "IMAGENET_MEAN", "IMAGENET_STD", "CIFAR10_MEAN",
    "CIFAR10_STD", "CIFAR100_MEAN", "CIFAR100_STD", "PreActResNet18",
    "ResNet18", "ResNet50", "WideResNet", "DMWideResNet", "resnet18",
    "resnet34", "resnet50", "resnet101", "resnet152", "wide_resnet50_2",
    "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19",
    "vgg19_bn",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2471, 0.2435, 0.2616)
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)

Floats = Optional[Sequence[float]]

# He et al. (2015) normal init, for models trained from scratch in advjax
# (a converted checkpoint overwrites it).
_he = nn.initializers.variance_scaling(2.0, "fan_out", "normal")


class _Scope(nn.Module):
  """One level of the variable tree: `fn`'s layers become its children.

  PyTorch names a layer by its attribute path (`layer1.0.shortcut.0`);
  nesting `_Scope`s named `layer1`, `0`, `shortcut` gives the Flax layer
  created inside as `0` the same path.
  """
  fn: Callable[..., Any]

  @nn.compact
  def __call__(self, *args):
    return self.fn(*args)


def _scope(name: str, fn: Callable[..., Any], *args):
  return _Scope(fn, name=name)(*args)


class _Net:
  """The layer constructors of one forward pass (train flag, dtype)."""

  def __init__(self, train: bool, dtype):
    self.train = train
    self.dtype = dtype

  def conv(self, name, features, kernel, stride=1, padding=0, bias=False,
           groups=1):
    pad = ((padding, padding),) * 2 if isinstance(padding, int) else padding
    return nn.Conv(features, (kernel, kernel), strides=(stride, stride),
                   padding=pad, use_bias=bias, feature_group_count=groups,
                   kernel_init=_he, dtype=self.dtype, name=name)

  def bn(self, name):
    # PyTorch's BatchNorm2d: momentum 0.1 (Flax 0.9), eps 1e-5.
    return nn.BatchNorm(use_running_average=not self.train, momentum=0.9,
                        epsilon=1e-5, dtype=self.dtype, name=name)

  def linear(self, name, features, bias=True):
    return nn.Dense(features, use_bias=bias, dtype=self.dtype, name=name)

  def dropout(self, rate):
    return nn.Dropout(rate, deterministic=not self.train)


def _prepare(module: nn.Module, x: jax.Array, channels: int, mean: Floats,
             std: Floats) -> jax.Array:
  """Checks an NHWC batch and applies the built-in normalisation."""
  name = type(module).__name__
  if x.ndim != 4 or x.shape[-1] != channels:
    hint = ""
    if x.ndim == 4 and x.shape[1] == channels:
      hint = (f" It looks like NCHW (PyTorch's layout): pass "
              f"x.transpose(0, 2, 3, 1).")
    raise ValueError(
        f"{name} expects float NHWC images [B, H, W, {channels}] in [0, 1]; "
        f"got shape {tuple(x.shape)}.{hint}")
  x = x.astype(jnp.float32)
  for what, v in (("mean", mean), ("std", std)):
    if v is not None and len(v) not in (1, channels):
      raise ValueError(f"{name}.{what} needs 1 or {channels} values; got "
                       f"{tuple(v)}.")
  if mean is not None:
    x = x - jnp.asarray(mean, jnp.float32)
  if std is not None:
    x = x / jnp.asarray(std, jnp.float32)
  return x


def _logits(x: jax.Array) -> jax.Array:
  return x.astype(jnp.float32)


def _global_mean(x: jax.Array) -> jax.Array:
  return jnp.mean(x, axis=(1, 2))


def _final_pool(x: jax.Array, k: int) -> jax.Array:
  """The CIFAR networks' `F.avg_pool2d(out, k).view(-1, C)`: where PyTorch
  gives one cell (`k <= H, W < 2k`), the mean of the top-left `k x k`
  window; elsewhere, where the PyTorch code fails, the global mean."""
  h, w = x.shape[1:3]
  if k <= h < 2 * k and k <= w < 2 * k:
    return jnp.mean(x[:, :k, :k], axis=(1, 2))
  return _global_mean(x)


def _check_depth(name: str, depth: int) -> None:
  if depth < 10 or (depth - 4) % 6:
    raise ValueError(
        f"{name} depth must satisfy (depth - 4) % 6 == 0 with depth >= 10 "
        f"(10, 16, 22, 28, 34, 40, 70, ...); got depth={depth}.")


# --- RobustBench: PreActResNet18, ResNet18/50 (CIFAR stems) ---------------


def _preact_block(t: _Net, planes, stride, out_shortcut, x):
  out = nn.relu(t.bn("bn1")(x))
  shortcut = x
  if stride != 1 or x.shape[-1] != planes:
    shortcut = _scope("shortcut", lambda v: t.conv("0", planes, 1, stride)(v),
                      out if out_shortcut else x)
  out = t.conv("conv1", planes, 3, stride, 1)(out)
  out = t.conv("conv2", planes, 3, 1, 1)(nn.relu(t.bn("bn2")(out)))
  return out + shortcut


class PreActResNet18(nn.Module):
  """RobustBench's `PreActResNet18()`: `PreActResNet(PreActBlock, [2,2,2,2])`.

  conv3x3 64, four stages of two pre-activation blocks (64, 128, 256, 512
  channels, strides 1, 2, 2, 2), a projection shortcut of the raw block
  input (of BN-relu(x) with `out_shortcut=True`) where the shape changes, no
  final BN unless `bn_before_fc`, the final average pool and `linear`. Wong et
  al.'s fast-AT checkpoint (RobustBench `Wong2020Fast`) is this network with
  `mean=CIFAR10_MEAN, std=CIFAR10_STD`.

  Attributes:
    num_classes: logits K.
    bn_before_fc: a BN + relu (`bn`) before the classifier.
    out_shortcut: shortcuts see the pre-activated input.
    mean, std: per-channel input normalisation, or None for none.
    dtype: compute dtype (float32 parameters, float32 logits).
  """
  num_classes: int = 10
  bn_before_fc: bool = False
  out_shortcut: bool = False
  mean: Floats = None
  std: Floats = None
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Logits `[B, num_classes]` of images `[B, H, W, 3]` in [0, 1]."""
    t = _Net(train, self.dtype)
    x = _prepare(self, x, 3, self.mean, self.std)
    x = t.conv("conv1", 64, 3, 1, 1)(x)
    x = _resnet_stages(x, (2, 2, 2, 2), lambda planes, stride, x: (
        _preact_block(t, planes, stride, self.out_shortcut, x)))
    if self.bn_before_fc:
      x = nn.relu(t.bn("bn")(x))
    return _logits(t.linear("linear", self.num_classes)(_final_pool(x, 4)))


def _resnet_stages(x, blocks, block):
  """`layer1` ... `layer4`: `blocks[s]` blocks `block(planes, stride, x)`
  of 64, 128, 256, 512 planes, the first of stages 2-4 with stride 2."""
  for s, planes in enumerate((64, 128, 256, 512)):

    def layer(x, planes=planes, stride=1 if s == 0 else 2, n=blocks[s]):
      for i in range(n):
        x = _scope(str(i), functools.partial(block, planes,
                                             stride if i == 0 else 1), x)
      return x

    x = _scope(f"layer{s + 1}", layer, x)
  return x


def _basic_block(t: _Net, planes, stride, x, shortcut_name="shortcut"):
  out = nn.relu(t.bn("bn1")(t.conv("conv1", planes, 3, stride, 1)(x)))
  out = t.bn("bn2")(t.conv("conv2", planes, 3, 1, 1)(out))
  return nn.relu(out + _projection(t, shortcut_name, planes, stride, x))


def _bottleneck(t: _Net, planes, stride, x, width=None, groups=1,
                shortcut_name="shortcut"):
  width = planes if width is None else width
  out = nn.relu(t.bn("bn1")(t.conv("conv1", width, 1)(x)))
  out = nn.relu(t.bn("bn2")(t.conv("conv2", width, 3, stride, 1,
                                   groups=groups)(out)))
  out = t.bn("bn3")(t.conv("conv3", 4 * planes, 1)(out))
  return nn.relu(out + _projection(t, shortcut_name, 4 * planes, stride, x))


def _projection(t: _Net, name, features, stride, x):
  """Identity, or conv1x1 + BN as the Sequential `name` (`.0`, `.1`)."""
  if stride == 1 and x.shape[-1] == features:
    return x
  return _scope(name, lambda v: t.bn("1")(t.conv("0", features, 1, stride)(v)),
                x)


class _CifarResNet(nn.Module):
  """RobustBench's CIFAR `ResNet(block, num_blocks)`: conv3x3 64 + BN + relu
  stem, four stages, the final average pool, `linear`."""
  num_classes: int = 10
  mean: Floats = None
  std: Floats = None
  dtype: Any = jnp.float32
  _bottleneck = False
  _blocks = (2, 2, 2, 2)

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Logits `[B, num_classes]` of images `[B, H, W, 3]` in [0, 1]."""
    t = _Net(train, self.dtype)
    x = _prepare(self, x, 3, self.mean, self.std)
    x = nn.relu(t.bn("bn1")(t.conv("conv1", 64, 3, 1, 1)(x)))
    block = _bottleneck if self._bottleneck else _basic_block
    x = _resnet_stages(x, self._blocks, functools.partial(block, t))
    return _logits(t.linear("linear", self.num_classes)(_final_pool(x, 4)))


class ResNet18(_CifarResNet):
  """RobustBench's CIFAR `ResNet18()` (BasicBlock, [2, 2, 2, 2])."""


class ResNet50(_CifarResNet):
  """RobustBench's CIFAR `ResNet50()` (Bottleneck, [3, 4, 6, 3]); RobustBench
  `Engstrom2019Robustness` is this with `mean=(0.4914, 0.4822, 0.4465),
  std=(0.2023, 0.1994, 0.2010)`."""
  _bottleneck = True
  _blocks = (3, 4, 6, 3)


# --- RobustBench: WideResNet (TRADES layout), DMWideResNet ----------------


def _wrn_block(t: _Net, planes, stride, drop_rate, x):
  equal = x.shape[-1] == planes
  out = nn.relu(t.bn("bn1")(x))
  if not equal:  # The reference replaces x by BN-relu(x) here.
    x = out
  out = nn.relu(t.bn("bn2")(t.conv("conv1", planes, 3, stride, 1)(out)))
  out = t.dropout(drop_rate)(out)
  out = t.conv("conv2", planes, 3, 1, 1)(out)
  shortcut = x if equal else t.conv("convShortcut", planes, 1, stride)(x)
  return shortcut + out


class WideResNet(nn.Module):
  """RobustBench's `WideResNet(depth, num_classes, widen_factor, ...)`.

  The TRADES/RST layout behind most WRN entries of RobustBench (Carmon2019
  Unlabeled, Zhang2019Theoretically, Rice2020Overfitting, Standard, ...):
  conv3x3 16, three groups `block{1,2,3}.layer.{i}` of (depth - 4) / 6
  pre-activation blocks with 16k, 32k, 64k channels, BN + relu (`bn1`),
  the final average pool, `fc`. A block whose width changes replaces its
  input by BN-relu(input) before both branches. `sub_block1` (an unused copy of the
  first group in some checkpoints) is accepted and its weights ignored, as
  the reference's forward pass ignores them.

  Attributes:
    depth: total depth; (depth - 4) % 6 == 0.
    num_classes: logits K.
    widen_factor: k.
    sub_block1: the checkpoint holds `sub_block1.*` (loaded, unused).
    dropRate: dropout between the block's convolutions (train only).
    bias_last: `fc` has a bias.
    mean, std: per-channel input normalisation, or None for none
      (Rice2020Overfitting: CIFAR10_MEAN/CIFAR10_STD).
    dtype: compute dtype.
  """
  depth: int = 28
  num_classes: int = 10
  widen_factor: int = 10
  sub_block1: bool = False
  dropRate: float = 0.0  # pylint: disable=invalid-name
  bias_last: bool = True
  mean: Floats = None
  std: Floats = None
  dtype: Any = jnp.float32

  def __post_init__(self):
    _check_depth("WideResNet", self.depth)
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Logits `[B, num_classes]` of images `[B, H, W, 3]` in [0, 1]."""
    t = _Net(train, self.dtype)
    n = (self.depth - 4) // 6
    x = _prepare(self, x, 3, self.mean, self.std)
    x = t.conv("conv1", 16, 3, 1, 1)(x)
    for g, stride in enumerate((1, 2, 2)):
      planes = 16 * self.widen_factor * 2**g

      def group(x, planes=planes, stride=stride):
        for i in range(n):
          x = _scope(str(i), functools.partial(
              _wrn_block, t, planes, stride if i == 0 else 1, self.dropRate),
                     x)
        return x

      x = _scope(f"block{g + 1}", lambda v, f=group: _scope("layer", f, v), x)
    x = nn.relu(t.bn("bn1")(x))
    return _logits(t.linear("fc", self.num_classes, self.bias_last)(
        _final_pool(x, 8)))


_ACTIVATIONS = {"relu": nn.relu, "swish": nn.swish, "silu": nn.swish}


def activation(fn) -> Callable[[jax.Array], jax.Array]:
  """A JAX activation from a name (`'relu'`, `'swish'`, `'silu'`), a PyTorch
  module class of that name (`nn.ReLU`, RobustBench's `Swish`, `nn.SiLU`),
  or a JAX function."""
  name = fn if isinstance(fn, str) else getattr(fn, "__name__", None)
  if isinstance(name, str) and name.lower() in _ACTIVATIONS:
    return _ACTIVATIONS[name.lower()]
  if callable(fn) and not isinstance(fn, type):
    return fn
  raise ValueError(f"Unknown activation {fn!r}; use 'relu' or 'swish' (or "
                   f"the PyTorch classes nn.ReLU, Swish, nn.SiLU).")


def _dm_block(t: _Net, act, planes, stride, x):
  has_shortcut = x.shape[-1] != planes
  out = act(t.bn("batchnorm_0")(x))
  if has_shortcut:
    x = out
  # TF 'SAME': pad (1, 1) at stride 1 and (0, 1) at stride 2, then VALID.
  pad = ((1, 1), (1, 1)) if stride == 1 else ((0, 1), (0, 1))
  out = t.conv("conv_0", planes, 3, stride, pad)(out)
  out = t.conv("conv_1", planes, 3, 1, 1)(act(t.bn("batchnorm_1")(out)))
  shortcut = t.conv("shortcut", planes, 1, stride)(x) if has_shortcut else x
  return shortcut + out


class DMWideResNet(nn.Module):
  """RobustBench's `DMWideResNet` (DeepMind's WRN of Gowal et al. 2020 and
  Rebuffi et al. 2021).

  `init_conv`, three groups `layer.{g}.block.{i}` of (depth - 4) / 6 blocks,
  `batchnorm` + activation, the final average pool, `logits`; the input is
  normalised by `mean`/`std` (CIFAR-10's by default, as in the reference)
  after zero `padding`.

  Attributes:
    num_classes: logits K.
    depth: total depth; (depth - 4) % 6 == 0 (28, 70, 106).
    width: widening factor (10, 16).
    activation_fn: `'relu'` or `'swish'` (RobustBench's `Swish` class, or
      `nn.ReLU`, is accepted too).
    mean, std: input normalisation (CIFAR10_MEAN/STD by default).
    padding: zero padding of the input on every side.
    num_input_channels: C.
    dtype: compute dtype.
  """
  num_classes: int = 10
  depth: int = 28
  width: int = 10
  activation_fn: Any = "relu"
  mean: Floats = CIFAR10_MEAN
  std: Floats = CIFAR10_STD
  padding: int = 0
  num_input_channels: int = 3
  dtype: Any = jnp.float32

  def __post_init__(self):
    _check_depth("DMWideResNet", self.depth)
    activation(self.activation_fn)
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Logits `[B, num_classes]` of images `[B, H, W, C]` in [0, 1]."""
    t = _Net(train, self.dtype)
    act = activation(self.activation_fn)
    n = (self.depth - 4) // 6
    if self.padding > 0:
      p = self.padding
      x = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    x = _prepare(self, x, self.num_input_channels, self.mean, self.std)
    x = t.conv("init_conv", 16, 3, 1, 1)(x)

    def layers(x):
      for g, stride in enumerate((1, 2, 2)):
        planes = 16 * self.width * 2**g

        def group(x, planes=planes, stride=stride):
          for i in range(n):
            x = _scope(str(i), functools.partial(
                _dm_block, t, act, planes, stride if i == 0 else 1), x)
          return x

        x = _scope(str(g), lambda v, f=group: _scope("block", f, v), x)
      return x

    x = _scope("layer", layers, x)
    x = act(t.bn("batchnorm")(x))
    return _logits(t.linear("logits", self.num_classes)(_final_pool(x, 8)))


# --- torchvision: ResNets ------------------------------------------------


class _TorchvisionResNet(nn.Module):
  """torchvision's `ResNet`: conv7x7/2 + BN + relu + maxpool3x3/2 stem, four
  stages (`layer1..4`, stride on the 3x3 convolution of a bottleneck,
  `downsample.{0,1}` projections), global average, `fc`."""
  num_classes: int = 1000
  groups: int = 1
  width_per_group: int = 64
  mean: Floats = IMAGENET_MEAN
  std: Floats = IMAGENET_STD
  dtype: Any = jnp.float32
  _bottleneck = False
  _blocks = (2, 2, 2, 2)

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Logits `[B, num_classes]` of images `[B, H, W, 3]` in [0, 1]."""
    if not self._bottleneck and (self.groups, self.width_per_group) != (1,
                                                                       64):
      raise ValueError(f"{type(self).__name__} (BasicBlock) supports only "
                       "groups=1 and width_per_group=64, as in torchvision.")
    t = _Net(train, self.dtype)
    x = _prepare(self, x, 3, self.mean, self.std)
    x = nn.relu(t.bn("bn1")(t.conv("conv1", 64, 7, 2, 3)(x)))
    x = nn.max_pool(x, (3, 3), (2, 2), ((1, 1), (1, 1)))
    def block(planes, stride, x):
      if not self._bottleneck:
        return _basic_block(t, planes, stride, x, shortcut_name="downsample")
      width = int(planes * self.width_per_group / 64) * self.groups
      return _bottleneck(t, planes, stride, x, width, self.groups,
                         shortcut_name="downsample")

    x = _resnet_stages(x, self._blocks, block)
    return _logits(t.linear("fc", self.num_classes)(_global_mean(x)))


def _resnet(name, bottleneck, blocks):
  return type(name, (_TorchvisionResNet,), {
      "_bottleneck": bottleneck, "_blocks": blocks,
      "__doc__": f"torchvision's `{name}()`; ImageNet mean/std built in (set "
                 "`mean=None, std=None` for none).",
      "__module__": __name__,
  })


resnet18 = _resnet("resnet18", False, (2, 2, 2, 2))
resnet34 = _resnet("resnet34", False, (3, 4, 6, 3))
resnet50 = _resnet("resnet50", True, (3, 4, 6, 3))
resnet101 = _resnet("resnet101", True, (3, 4, 23, 3))
resnet152 = _resnet("resnet152", True, (3, 8, 36, 3))


class wide_resnet50_2(_TorchvisionResNet):  # pylint: disable=invalid-name
  """torchvision's `wide_resnet50_2()` (RobustBench `Salman2020Do_50_2`):
  `resnet50` with bottlenecks twice as wide."""
  width_per_group: int = 128
  _bottleneck = True
  _blocks = (3, 4, 6, 3)


# --- torchvision: VGG ----------------------------------------------------

_VGG_CFGS = {
    11: (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    13: (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512,
         "M"),
    16: (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
         512, 512, 512, "M"),
    19: (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512,
         512, "M", 512, 512, 512, 512, "M"),
}


def adaptive_avg_pool(x: jax.Array, size: Sequence[int]) -> jax.Array:
  """PyTorch's `adaptive_avg_pool2d` on NHWC: output cell `i` of `n` averages
  input rows `floor(i H / n)` to `ceil((i + 1) H / n) - 1` (bins overlap
  when `n` does not divide `H`, and repeat rows when `n > H`)."""

  def weights(length, n):
    w = np.zeros((n, length), np.float32)
    for i in range(n):
      lo, hi = (i * length) // n, -((-(i + 1) * length) // n)
      w[i, lo:hi] = 1.0 / (hi - lo)
    return jnp.asarray(w)

  h, w = x.shape[1:3]
  if (h, w) == tuple(size):
    return x
  return jnp.einsum("ih,bhwc,jw->bijc", weights(h, size[0]), x,
                    weights(w, size[1]))


class _VGG(nn.Module):
  """torchvision's `VGG`: `features.{k}` (conv3x3 + [BN] + relu, max pools),
  `AdaptiveAvgPool2d((7, 7))`, NCHW flatten, `classifier.{0,3,6}` (4096,
  4096, K with relu and dropout between)."""
  num_classes: int = 1000
  dropout: float = 0.5
  mean: Floats = IMAGENET_MEAN
  std: Floats = IMAGENET_STD
  dtype: Any = jnp.float32
  _depth = 11
  _batch_norm = False

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Logits `[B, num_classes]` of images `[B, H, W, 3]` in [0, 1]."""
    t = _Net(train, self.dtype)
    x = _prepare(self, x, 3, self.mean, self.std)

    def features(x):
      k = 0
      for v in _VGG_CFGS[self._depth]:
        if v == "M":
          x = nn.max_pool(x, (2, 2), (2, 2))
          k += 1
          continue
        x = t.conv(str(k), v, 3, 1, 1, bias=True)(x)
        if self._batch_norm:
          x = t.bn(str(k + 1))(x)
        x = nn.relu(x)
        k += 3 if self._batch_norm else 2
      return x

    x = _scope("features", features, x)
    x = adaptive_avg_pool(x, (7, 7))
    x = x.transpose(0, 3, 1, 2).reshape(x.shape[0], -1)  # PyTorch's order.

    def classifier(x):
      x = t.dropout(self.dropout)(nn.relu(t.linear("0", 4096)(x)))
      x = t.dropout(self.dropout)(nn.relu(t.linear("3", 4096)(x)))
      return t.linear("6", self.num_classes)(x)

    return _logits(_scope("classifier", classifier, x))


def _vgg(depth, batch_norm):
  name = f"vgg{depth}{'_bn' if batch_norm else ''}"
  return type(name, (_VGG,), {
      "_depth": depth, "_batch_norm": batch_norm, "__module__": __name__,
      "__doc__": f"torchvision's `{name}()`; ImageNet mean/std built in "
                 "(set `mean=None, std=None` for none).",
  })


vgg11, vgg11_bn = _vgg(11, False), _vgg(11, True)
vgg13, vgg13_bn = _vgg(13, False), _vgg(13, True)
vgg16, vgg16_bn = _vgg(16, False), _vgg(16, True)
vgg19, vgg19_bn = _vgg(19, False), _vgg(19, True)

ARCHITECTURES: dict[str, type[nn.Module]] = {
    cls.__name__: cls for cls in (
        PreActResNet18, ResNet18, ResNet50, WideResNet, DMWideResNet,
        resnet18, resnet34, resnet50, resnet101, resnet152, wide_resnet50_2,
        vgg11, vgg11_bn, vgg13, vgg13_bn, vgg16, vgg16_bn, vgg19, vgg19_bn)
}
