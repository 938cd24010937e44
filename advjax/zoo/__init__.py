"""Released PyTorch classifiers as advjax models: RobustBench and torchvision.

  model, variables = zoo.load_torch("WideResNet", "Carmon2019Unlabeled.pt",
                                    depth=28, widen_factor=10,
                                    sub_block1=True)
  logits = model.apply(variables, x, train=False)  # x: NHWC in [0, 1]

`arch` is spelled as the source spells its class or constructor
(`ARCHITECTURES`: RobustBench's `PreActResNet18`, `ResNet18`, `ResNet50`,
`WideResNet`, `DMWideResNet`; torchvision's `resnet18` ... `resnet152`,
`wide_resnet50_2`, `vgg11` ... `vgg19_bn`), and the keywords are the
constructor's own (`depth`, `widen_factor`, `num_classes`, `activation_fn`,
...) plus `mean`/`std`, the input normalisation the model applies first.
Nothing is downloaded and no pickled code is executed (`convert`).
`robustbench.ENTRIES` maps RobustBench leaderboard entries to the
architecture and keywords their files fit, with the published numbers
(`load_entry('Wong2020Fast', path)`).
"""

import ast
import dataclasses
import difflib
import os
from collections.abc import Mapping, Sequence
from typing import Any, Optional

import flax.linen as nn
import numpy as np

from advjax.zoo import architectures
from advjax.zoo import convert
from advjax.zoo import robustbench
from advjax.zoo.architectures import ARCHITECTURES
from advjax.zoo.architectures import CIFAR10_MEAN
from advjax.zoo.architectures import CIFAR10_STD
from advjax.zoo.architectures import CIFAR100_MEAN
from advjax.zoo.architectures import CIFAR100_STD
from advjax.zoo.architectures import IMAGENET_MEAN
from advjax.zoo.architectures import IMAGENET_STD
from advjax.zoo.convert import CheckpointError
from advjax.zoo.convert import convert_state_dict
from advjax.zoo.convert import read_state_dict
from advjax.zoo.robustbench import load_entry

__all__ = [
    "ARCHITECTURES", "CheckpointError", "load_torch", "build",
    "parse_kwargs", "resolve",
    "read_state_dict", "convert_state_dict", "load_entry", "architectures",
    "convert", "robustbench",
    "IMAGENET_MEAN", "IMAGENET_STD", "CIFAR10_MEAN", "CIFAR10_STD",
    "CIFAR100_MEAN", "CIFAR100_STD",
]


def _fields(cls) -> list[str]:
  return [f.name for f in dataclasses.fields(cls)
          if f.name not in ("parent", "name")]


def build(arch: str, **kwargs: Any) -> nn.Module:
  """The Flax twin `arch` with the PyTorch constructor's keywords.

  Raises:
    ValueError: an unknown `arch` (with the closest names) or a keyword the
      constructor does not take (with those it takes).
  """
  if arch not in ARCHITECTURES:
    close = difflib.get_close_matches(arch, list(ARCHITECTURES), n=3,
                                      cutoff=0.4)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise ValueError(f"Unknown architecture {arch!r}.{hint} Known: "
                     f"{', '.join(ARCHITECTURES)}.")
  cls = ARCHITECTURES[arch]
  bad = sorted(set(kwargs) - set(_fields(cls)))
  if bad:
    raise ValueError(f"{arch} takes no keyword {', '.join(bad)}; it takes "
                     f"{', '.join(_fields(cls))}.")
  for k in ("mean", "std"):
    if kwargs.get(k) is not None:
      kwargs[k] = tuple(float(v) for v in np.ravel(kwargs[k]))
  return cls(**kwargs)


def parse_kwargs(text: str) -> dict[str, Any]:
  """Constructor keywords from a command line: `'depth=28, widen_factor=10,
  activation_fn=swish'` -> `{'depth': 28, 'widen_factor': 10,
  'activation_fn': 'swish'}`; values are Python literals without commas,
  a bare word a string; '' gives {}.

  Raises:
    ValueError: an item without '='.
  """
  kwargs = {}
  for item in filter(None, (p.strip() for p in text.split(","))):
    key, sep, value = item.partition("=")
    if not sep:
      raise ValueError(f"Keywords are key=value pairs separated by commas; "
                       f"got {item!r}.")
    try:
      kwargs[key.strip()] = ast.literal_eval(value.strip())
    except (ValueError, SyntaxError):
      kwargs[key.strip()] = value.strip()
  return kwargs


def resolve(name: str, kwargs: Mapping[str, Any] | str = ""
            ) -> tuple[str, dict[str, Any]]:
  """The architecture and keywords a model name stands for.

  Args:
    name: a RobustBench entry of `robustbench.ENTRIES` ('Wong2020Fast') or
      an architecture of `ARCHITECTURES` ('WideResNet').
    kwargs: keywords (a dict, or text for `parse_kwargs`), added to an
      entry's own.

  Returns:
    `(arch, kwargs)` for `load_torch` (an entry's keywords updated with
    `kwargs`).

  Raises:
    ValueError: an unknown name, a keyword the architecture does not take,
      or malformed text (checked by building the architecture; no weights
      are read).
  """
  if isinstance(kwargs, str):
    kwargs = parse_kwargs(kwargs)
  entry = robustbench.ENTRIES.get(name)
  arch, kwargs = ((entry.arch, {**entry.kwargs, **kwargs}) if entry
                  else (name, dict(kwargs)))
  build(arch, **kwargs)
  return arch, kwargs


def load_torch(
    arch: str,
    path: str | os.PathLike | Mapping[str, Any],
    *,
    input_shape: Optional[Sequence[int]] = None,
    **kwargs: Any,
) -> tuple[nn.Module, dict[str, Any]]:
  """Loads a PyTorch checkpoint into its advjax twin.

  Args:
    arch: a name from `ARCHITECTURES`, spelled as the PyTorch source spells
      the class or constructor.
    path: the checkpoint file (`torch.save` output or safetensors), or a
      state dict already in memory (a torch module's `state_dict()`).
    input_shape: `(H, W, C)` used to trace the model's shapes; any size the
      model accepts will do (default 32x32 with the model's channels).
    **kwargs: the constructor's keywords, and `mean`/`std` (per-channel,
      in [0, 1] pixel units; None for no normalisation). Normalisation
      buffers stored in the file (RobustBench's `mu`/`sigma`, a wrapper's
      `normalize.mean`/`std`) are used when `mean`/`std` are not given.

  Returns:
    `(model, variables)`: `model.apply(variables, x, train=False)` maps
    float NHWC images `[B, H, W, C]` in [0, 1] to logits.

  Raises:
    ValueError: an unknown architecture or keyword.
    FileNotFoundError: no such file.
    CheckpointError: the file is not a checkpoint (HTML page, truncated,
      pickled objects), or does not fit the architecture (the first
      missing, unexpected or mis-shaped key is named), or its normalisation
      buffers contradict the `mean`/`std` given.
    ImportError: a PyTorch file and no torch installed.
  """
  model = build(arch, **kwargs)  # Validates arch and keywords first.
  if isinstance(path, Mapping):
    state_dict, where = dict(path), "the state dict"
  else:
    state_dict, where = read_state_dict(path), os.fspath(path)
  stored = convert.normalization_from_state_dict(state_dict)
  if stored is not None:
    for name, value in zip(("mean", "std"), stored):
      if name not in kwargs:
        kwargs[name] = value
      elif kwargs[name] is None or not np.allclose(
          np.ravel(kwargs[name]), value, atol=1e-6):
        raise CheckpointError(
            f"{where} stores the input normalisation {name}={value}, but "
            f"{name}={kwargs[name]} was passed. Leave {name} out to use the "
            "stored one.")
    model = build(arch, **kwargs)
  if input_shape is None:
    input_shape = (32, 32, getattr(model, "num_input_channels", 3))
  ignore = ("sub_block1.",) if getattr(model, "sub_block1", False) else ()
  try:
    variables = convert_state_dict(state_dict, model, input_shape,
                                   ignore=ignore, arch=arch)
  except CheckpointError as e:
    raise CheckpointError(f"{where}: {e}") from None
  return model, variables
