"""`load`: a registered dataset by name, its arguments checked, dispatched to
its source (`embedded`; raw files, else a tfds copy; tfds images; `folder`;
`gtsrb`) and returned in host memory, or with `lazy=True` as `Records` read
on access.
"""
import os
from typing import Any, Optional, Union

import numpy as np

from advjax.data.core import DATASETS, Dataset, DatasetSpec
from advjax.data.embedded import _load_digits, _load_synthetic
from advjax.data.folder import _open_folder
from advjax.data.gtsrb import _open_gtsrb
from advjax.data.raw import _CifarReader, _find_raw_files, _IdxReader
from advjax.data.records import Records, _read_all, _Reader
from advjax.data.tfds_source import _open_tfds, _open_tfds_images, _searched_raw

__all__ = ["load"]


_TFDS_KWARGS = frozenset({"download"})
# Images of varying size, decoded and cropped one by one.
_CROP_KWARGS = frozenset({"size", "resize", "classes", "per_class"})
_LOADER_KWARGS = {
    "digits": frozenset(),
    "synthetic": frozenset({"shape", "num_classes", "size", "seed", "noise"}),
    "imagenet2012": _CROP_KWARGS | _TFDS_KWARGS,
    "imagenette": _CROP_KWARGS | _TFDS_KWARGS,
    "folder": _CROP_KWARGS | {"class_index"},
    "gtsrb": frozenset({"size", "roi"}),
}
# Read lazily unless `lazy=False` is passed: too large for host memory.
_LAZY_BY_DEFAULT = frozenset({"imagenet2012", "imagenette", "folder"})


def load(name: str,
         split: str = "train",
         data_dir: Optional[Union[str, os.PathLike]] = None,
         *,
         limit: Optional[int] = None,
         lazy: Optional[bool] = None,
         **kwargs: Any) -> Dataset:
  """Loads one split of a registered dataset into host memory (or lazily).

  For the tfds-backed names, raw files under `data_dir` (see
  `DATASETS[name].raw_files`; MNIST IDX files may also be named with dots,
  `train-images.idx3-ubyte`, and be gzipped) are read first when present;
  otherwise the tensorflow_datasets copy prepared in `data_dir` (default:
  `$TFDS_DATA_DIR` or `~/tensorflow_datasets`) is read with
  `tfds.data_source`, which needs no TensorFlow. Nothing is downloaded unless
  `download=True` is passed (ImageNet never is: tfds builds it from the
  ILSVRC2012 tars placed by hand in `<data_dir>/downloads/manual/`), and
  nothing is written into `data_dir` unless tfds then downloads and
  prepares the copy there (`downloads/`, `<name>/<version>/`).

  `imagenet2012`, `imagenette` (tfds) and `folder` (a directory of image
  files) hold images of varying size: each is decoded when read, converted
  to RGB, its shorter side resized to `resize` (PIL bilinear, antialiased)
  and centre-cropped to `size x size`, as torchvision's `Resize(resize)`
  then `CenterCrop(size)`. `folder` reads the ImageFolder layout:
  `data_dir/<split>/<class_name>/<image>` (`validation` may be a folder
  named `val`); when `data_dir` has no such split folder (and no folder of
  another split), `data_dir/<class_name>/<image>` itself is the split, so
  a split folder wins over reading `data_dir` directly. Images are the
  files ending `.jpg`, `.jpeg`, `.png`, `.bmp`, `.ppm`, `.pgm`, `.tif`,
  `.tiff` or `.webp` (any case) in or below each class folder; names
  starting with `.` are skipped. Rows are grouped by class in increasing
  label order, each class's images sorted by path.

  Args:
    name: a name from `list_datasets()` (case-insensitive, `-` read as `_`).
    split: a split from `DATASETS[name].splits`.
    data_dir: directory holding raw files, prepared tfds data, or (for
      `folder`, required) the images.
    limit: keep only the first `limit` examples (all when `None`), after
      `classes`/`per_class`.
    lazy: return images and labels as `Records`, read from storage on
      access (raw files record by record, tfds random access, image files
      one by one), so a process reads only the rows it indexes; for
      `digits` and `synthetic`, which are generated in memory, this has no
      effect. Use it for data at scale and multi-process runs:
      `training.fit` and `evaluation.robust_accuracy` read only this
      process's rows of every batch. `None` (the default) is `True` for
      `imagenet2012`, `imagenette` and `folder` (ImageNet does not fit in
      memory) and `False` for the others; `lazy=False` reads everything.
    **kwargs: per dataset. `synthetic`: `shape=(8, 8, 1)`,
      `num_classes=10`, `size=512` (per split), `seed=0`, `noise=0.25` (std
      of the Gaussian noise around each class template). tfds-backed names:
      `download=False` (let tfds download and prepare when missing).
      `imagenet2012`, `imagenette` and `folder`: `size=224` (side of the
      square crop), `resize=256` (the shorter side before cropping, `>=
      size`; `None`: resize it to `size`), `classes=None` (an int `N`: the
      first `N` classes by label; or a list of labels and/or class names
      (tfds label names or folder names, e.g. wnids); `None`: all),
      `per_class=None` (keep the first `M` images of each kept class: by
      path for `folder`, by record index for tfds). The labels stay the
      dataset's own (a subset of ImageNet keeps labels in 0..999). To
      select, tfds copies read every record of the split once (images not
      decoded where tfds allows) for its label; `folder` selects from the
      paths, reading nothing. `folder` also takes `class_index=None`: a
      path to a Keras/torchvision `imagenet_class_index.json`
      (`{"0": ["n01440764", "tench"], ...}`, folder name = the wnid) or a
      text file of one folder name per line (line `k`, from 0, is label
      `k`). With it, labels follow the index, `num_classes` is its length
      and every class folder must be in it; without it the classes are the
      sorted subfolder names. `gtsrb`: `size=32` (the side each sign is
      resized to, PIL bilinear, aspect not kept), `roi=True` (crop to the
      annotated sign box of the csv first; False: the whole image).

  `gtsrb` reads the raw GTSRB folders in `data_dir` (or `data_dir/GTSRB`):
  `Final_Training/Images/<class>/*.ppm` with `GT-<class>.csv` for
  'train' (39209 images, by class, each class in its csv's order) and
  `Final_Test/Images/*.ppm` with `GT-final_test.csv` (the test labels,
  from `GTSRB_Final_Test_GT.zip`; looked for there, in `Final_Test/`, in
  the GTSRB folder, in `data_dir` and above the GTSRB folder) for 'test'
  (12630).

  Returns:
    A `Dataset`: images `[N, H, W, C]` float32 in `[0, 1]`, labels `[N]`
    int32, and (for `imagenet2012`, `imagenette`, `folder`) `class_names`:
    tfds label names (wnids), or for `folder` the human names of a json
    index, else the folder names (a text index's lines).

  Raises:
    ValueError: unknown name or split, bad `limit`, `size`, `resize`,
      `classes` or `per_class` (more than a class has), a class folder not
      in the class index, a malformed class index, or a corrupt raw file or
      image (an image when its row is read, naming the file).
    TypeError: a keyword argument the dataset does not take.
    DatasetNotFoundError: the data is not available locally (for `folder`:
      no `data_dir`, or no class folders or images in it; for `gtsrb`: no
      `data_dir`, no GTSRB folders, a csv or image it names missing).
  """
  key = str(name).lower().replace("-", "_")
  if key not in DATASETS:
    raise ValueError(
        f"Unknown dataset {name!r}; known: {', '.join(DATASETS)}.")
  spec = DATASETS[key]
  if split not in spec.splits:
    raise ValueError(f"Unknown split {split!r} for dataset {key!r}; "
                     f"known: {', '.join(spec.splits)}.")
  if limit is not None:
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)):
      raise TypeError(f"limit must be an int or None, got {limit!r}.")
    if limit < 0:
      raise ValueError(f"limit must be >= 0, got {limit}.")
    limit = int(limit)
  allowed = _LOADER_KWARGS.get(key, _TFDS_KWARGS)
  unexpected = sorted(set(kwargs) - allowed)
  if unexpected:
    raise TypeError(
        f"Dataset {key!r} got unexpected keyword arguments {unexpected}; "
        f"it takes {sorted(allowed) or 'none'}.")
  lazy = key in _LAZY_BY_DEFAULT if lazy is None else bool(lazy)

  if key == "digits":
    images, labels = _load_digits(split)
    return _take(Dataset(images, labels, spec.num_classes, key, split), limit)
  if key == "synthetic":
    return _take(_load_synthetic(split, **kwargs), limit)
  if key == "folder":
    reader = _open_folder(split, data_dir, limit, **kwargs)
  elif key == "gtsrb":
    reader = _open_gtsrb(split, data_dir, limit, **kwargs)
  elif key in _LAZY_BY_DEFAULT:
    reader = _open_tfds_images(spec, split, data_dir, limit, **kwargs)
  else:
    reader = _open_external(spec, split, data_dir, limit, **kwargs)
  if lazy:
    return Dataset(Records(reader, "images"), Records(reader, "labels"),
                   reader.num_classes, key, split, reader.class_names)
  images, labels = _read_all(reader)
  return _take(Dataset(images, labels, reader.num_classes, key, split,
                       reader.class_names), limit)


def _take(dataset: Dataset, limit: Optional[int]) -> Dataset:
  if limit is None or limit >= dataset.size:
    return dataset
  return dataset._replace(images=dataset.images[:limit].copy(),
                          labels=dataset.labels[:limit].copy())


def _open_external(spec: DatasetSpec, split: str, data_dir,
                   limit: Optional[int], download: bool = False) -> _Reader:
  """Raw files in `data_dir` when present, else tfds."""
  if _searched_raw(spec, data_dir):
    files = _find_raw_files(spec, split, os.fspath(data_dir))
    if files is not None:
      if spec.name in ("mnist", "fashion_mnist"):
        return _IdxReader(*files, num_classes=spec.num_classes, limit=limit)
      header = 2 if spec.name == "cifar100" else 1
      return _CifarReader(files, header=header, num_classes=spec.num_classes,
                          limit=limit)
  return _open_tfds(spec, split, data_dir, limit, download)
