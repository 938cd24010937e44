"""Dataset types and the registry: `Dataset` (one split, in host memory or read
on access), `DatasetSpec` (a registered dataset's static metadata),
`DatasetNotFoundError`, `DATASETS` (name -> spec, with the raw file names of
the sources that have a raw-file reader and the directories they may sit in)
and `list_datasets`.

The sources (`embedded`, `raw`, `tfds_source`, `folder`, `gtsrb`) build on
this module; `loading.load` dispatches a name to its source.
"""
from collections.abc import Mapping
from typing import NamedTuple, Tuple

import numpy as np

__all__ = [
    "Dataset", "DatasetSpec", "DatasetNotFoundError", "DATASETS",
    "list_datasets",
]


class DatasetNotFoundError(FileNotFoundError):
  """A dataset is not available locally (not prepared, no raw files)."""


class Dataset(NamedTuple):
  """One split of a dataset, held in host memory.

  Attributes:
    images: `[N, H, W, C]` float32 in `[0, 1]`.
    labels: `[N]` int32 in `[0, num_classes)`.
    num_classes: number of classes `K`.
    name: registry name of the dataset.
    split: split name (`'train'`, `'test'`, ...).
    class_names: `class_names[k]` names label `k` (`num_classes` entries);
      empty where the source has no names (all but `imagenet2012`,
      `imagenette` and `folder`).
  """
  images: np.ndarray
  labels: np.ndarray
  num_classes: int
  name: str
  split: str = ""
  class_names: Tuple[str, ...] = ()

  @property
  def size(self) -> int:
    """Number of examples `N`."""
    return int(self.labels.shape[0])

  @property
  def image_shape(self) -> Tuple[int, ...]:
    """Shape `(H, W, C)` of one image."""
    return tuple(self.images.shape[1:])


class DatasetSpec(NamedTuple):
  """Static metadata of a registered dataset.

  Attributes:
    name: registry name (also the tfds name for tfds-backed sets).
    num_classes: number of classes (the default, for `synthetic`; 0 for
      `folder`, whose classes are its subfolders or its class index).
    image_shape: `(H, W, C)` (the default, for `synthetic` and the
      variable-size image sets, whose `size=` sets it).
    splits: split names `load` accepts.
    source: `'embedded'`, `'generated'`, `'tfds'`, `'folder'` or `'raw'`
      (raw files only: `gtsrb`).
    raw_files: split -> raw file names `load` reads from `data_dir` instead
      of tfds (empty when there is no raw-file reader); the MNIST IDX names
      are also accepted dotted and gzipped (`_raw_names`).
    description: one line for CLI listings.
  """
  name: str
  num_classes: int
  image_shape: Tuple[int, int, int]
  splits: Tuple[str, ...]
  source: str
  raw_files: Mapping[str, Tuple[str, ...]]
  description: str


_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# The names each MNIST IDX file is accepted under, the first present read:
# uncompressed before gzipped, the hyphenated names (LeCun's, tfds',
# torchvision's) before the dotted ones of other mirrors
# (`train-images.idx3-ubyte`, e.g. Kaggle's).
_RAW_ALIASES = {
    name: (name, dotted, name + ".gz", dotted + ".gz")
    for names in _IDX_FILES.values() for name in names
    for dotted in [name.replace("-idx", ".idx")]
}
_CIFAR10_FILES = {
    "train": tuple(f"data_batch_{i}.bin" for i in range(1, 6)),
    "test": ("test_batch.bin",),
}
_CIFAR100_FILES = {"train": ("train.bin",), "test": ("test.bin",)}
# Directory names the raw files may sit in, below `data_dir` (`''` is
# `data_dir` itself), most specific first. torchvision's layout included.
_RAW_SUBDIRS = {
    "mnist": ("mnist", "MNIST/raw", ""),
    "fashion_mnist": ("fashion_mnist", "FashionMNIST/raw", ""),
    "cifar10": ("cifar-10-batches-bin", "cifar10/cifar-10-batches-bin",
                "cifar10", ""),
    "cifar100": ("cifar-100-binary", "cifar100/cifar-100-binary",
                 "cifar100", ""),
}


def _raw_names(name: str) -> Tuple[str, ...]:
  """The file names raw file `name` (of `DatasetSpec.raw_files`) is accepted
  under, most preferred first."""
  return _RAW_ALIASES.get(name, (name,))


DATASETS: Mapping[str, DatasetSpec] = {
    spec.name: spec for spec in (
        DatasetSpec("digits", 10, (8, 8, 1), ("train", "test"), "embedded",
                    {}, "scikit-learn 8x8 digits, 1437/360 stratified split"),
        DatasetSpec("synthetic", 10, (8, 8, 1), ("train", "test"),
                    "generated", {},
                    "class templates plus noise; shape/size configurable"),
        DatasetSpec("mnist", 10, (28, 28, 1), ("train", "test"), "tfds",
                    _IDX_FILES, "MNIST handwritten digits, 60000/10000"),
        DatasetSpec("fashion_mnist", 10, (28, 28, 1), ("train", "test"),
                    "tfds", _IDX_FILES, "Fashion-MNIST, 60000/10000"),
        DatasetSpec("cifar10", 10, (32, 32, 3), ("train", "test"), "tfds",
                    _CIFAR10_FILES, "CIFAR-10, 50000/10000"),
        DatasetSpec("cifar100", 100, (32, 32, 3), ("train", "test"), "tfds",
                    _CIFAR100_FILES, "CIFAR-100 fine labels, 50000/10000"),
        DatasetSpec("svhn_cropped", 10, (32, 32, 3),
                    ("train", "test", "extra"), "tfds", {},
                    "SVHN cropped digits, 73257/26032 (+531131 extra)"),
        DatasetSpec("gtsrb", 43, (32, 32, 3), ("train", "test"), "raw", {},
                    "German traffic signs (raw GTSRB folders), 39209/12630; "
                    "sign box cropped, resized to 32x32"),
        DatasetSpec("imagenet2012", 1000, (224, 224, 3),
                    ("train", "validation"), "tfds", {},
                    "ImageNet ILSVRC2012, 1281167/50000, tfds copy built "
                    "from the manually downloaded tars; centre-cropped"),
        DatasetSpec("imagenette", 10, (224, 224, 3), ("train", "validation"),
                    "tfds", {},
                    "Imagenette full-size (10 ImageNet classes), 9469/3925; "
                    "centre-cropped"),
        DatasetSpec("folder", 0, (224, 224, 3),
                    ("train", "validation", "test"), "folder", {},
                    "your images in ImageFolder layout, "
                    "<split>/<class>/*.jpg (class_index= for ImageNet "
                    "labels); centre-cropped"),
    )
}


def list_datasets() -> Tuple[str, ...]:
  """Returns the registered dataset names (the choices of `load`)."""
  return tuple(DATASETS)
