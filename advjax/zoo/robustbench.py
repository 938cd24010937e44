"""RobustBench leaderboard entries whose released files load into advjax.

Each entry names the architecture and keywords its checkpoint fits (as
RobustBench's model zoo builds it: `robustbench/model_zoo/cifar10.py`,
`imagenet.py`) and the leaderboard's clean and AutoAttack accuracy
(`model_info/<dataset>/Linf/<name>.json`), so a run prints its numbers
beside the published ones:

  model, variables = zoo.load_entry("Wong2020Fast", "Wong2020Fast.pt")

The files themselves are the user's download (RobustBench's
`load_model(model_name=..., dataset=..., threat_model='Linf')` saves them
under `models/<dataset>/Linf/<name>.pt`); nothing is downloaded here.
"""
import os
from typing import Any, NamedTuple

from advjax.zoo.architectures import CIFAR10_MEAN
from advjax.zoo.architectures import CIFAR10_STD

__all__ = ["Entry", "ENTRIES", "entry", "load_entry"]


class Entry(NamedTuple):
  """One leaderboard model.

  Attributes:
    arch: the `advjax.zoo.ARCHITECTURES` name its file loads into.
    kwargs: the constructor keywords (and `mean`/`std`) RobustBench uses.
    dataset: 'cifar10' or 'imagenet'.
    eps: the Linf radius of the leaderboard (8/255 on CIFAR-10, 4/255 on
      ImageNet).
    clean: published clean accuracy, %.
    autoattack: published AutoAttack (standard) accuracy, %.
    preprocessing: RobustBench's test-time preprocessing ('' for none;
      'Res256Crop224': resize 256, centre crop 224; 'Crop288').
  """
  arch: str
  kwargs: dict[str, Any]
  dataset: str
  eps: float
  clean: float
  autoattack: float
  preprocessing: str = ""


_CIFAR_NORM = {"mean": CIFAR10_MEAN, "std": CIFAR10_STD}
_WRN = lambda depth, k, **kw: {"depth": depth, "widen_factor": k, **kw}
_DM = lambda depth, w: {"depth": depth, "width": w, "activation_fn": "swish"}
_IN = 4 / 255
_C10 = 8 / 255

ENTRIES: dict[str, Entry] = {
    # CIFAR-10, Linf 8/255.
    "Standard": Entry("WideResNet", _WRN(28, 10), "cifar10", _C10, 94.78,
                      0.0),
    "Wong2020Fast": Entry("PreActResNet18", dict(_CIFAR_NORM), "cifar10",
                          _C10, 83.34, 43.21),
    "Andriushchenko2020Understanding": Entry("PreActResNet18", {}, "cifar10",
                                             _C10, 79.84, 43.93),
    "Rice2020Overfitting": Entry("WideResNet", _WRN(34, 20, **_CIFAR_NORM),
                                 "cifar10", _C10, 85.34, 53.42),
    "Carmon2019Unlabeled": Entry("WideResNet", _WRN(28, 10, sub_block1=True),
                                 "cifar10", _C10, 89.69, 59.53),
    "Zhang2019Theoretically": Entry("WideResNet",
                                    _WRN(34, 10, sub_block1=True), "cifar10",
                                    0.031, 84.92, 53.08),
    "Engstrom2019Robustness": Entry(
        "ResNet50", {"mean": CIFAR10_MEAN, "std": (0.2023, 0.1994, 0.2010)},
        "cifar10", _C10, 87.03, 49.25),
    "Gowal2020Uncovering_28_10_extra": Entry("DMWideResNet", _DM(28, 10),
                                             "cifar10", _C10, 89.48, 62.76),
    "Gowal2020Uncovering_70_16_extra": Entry("DMWideResNet", _DM(70, 16),
                                             "cifar10", _C10, 91.10, 65.87),
    # ImageNet, Linf 4/255 (torchvision models, ImageNet normalisation).
    "imagenet/Standard_R50": Entry("resnet50", {}, "imagenet", _IN, 76.52,
                                   0.0, "Res256Crop224"),
    "imagenet/Salman2020Do_R18": Entry("resnet18", {}, "imagenet", _IN, 52.92,
                                       25.32, "Res256Crop224"),
    "imagenet/Salman2020Do_R50": Entry("resnet50", {}, "imagenet", _IN, 64.02,
                                       34.96, "Res256Crop224"),
    "imagenet/Salman2020Do_50_2": Entry("wide_resnet50_2", {}, "imagenet",
                                        _IN, 68.46, 38.14, "Res256Crop224"),
    "imagenet/Engstrom2019Robustness": Entry("resnet50", {}, "imagenet", _IN,
                                             62.56, 29.22, "Res256Crop224"),
    "imagenet/Wong2020Fast": Entry("resnet50", {}, "imagenet", _IN, 55.62,
                                   26.24, "Crop288"),
}


def entry(name: str) -> Entry:
  """The entry `name` (`'Wong2020Fast'`, `'imagenet/Salman2020Do_R50'`).

  Raises:
    ValueError: an unknown name (the message lists the known ones).
  """
  if name not in ENTRIES:
    raise ValueError(f"No RobustBench entry {name!r} in advjax.zoo; known: "
                     f"{', '.join(ENTRIES)}. Other entries load with "
                     "zoo.load_torch(arch, path, **kwargs) when their "
                     "architecture is in zoo.ARCHITECTURES.")
  return ENTRIES[name]


def load_entry(name: str, path: str | os.PathLike):
  """`zoo.load_torch` with the entry's architecture and keywords."""
  from advjax.zoo import load_torch  # pylint: disable=import-outside-toplevel
  e = entry(name)
  return load_torch(e.arch, path, **e.kwargs)
