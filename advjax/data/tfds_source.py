"""Copies prepared by tensorflow_datasets, in array_record format, read through
`tfds.data_source`'s random access (no TensorFlow needed): `_TfdsReader` for
the sets of fixed image shape, `_TfdsImageReader` for ImageNet's images of
varying size (decoded and cropped as read, by `images`), and `_not_found`, the
error that says how to get a dataset that is missing. Nothing is downloaded
unless `download=True`.

Named `tfds_source` rather than `tfds`, so that `advjax.data.tfds` is not
mistaken for tensorflow_datasets (imported as `tfds` here).
"""
import hashlib
import os
from collections.abc import Sequence
from typing import Any, Optional, Tuple

import numpy as np

from advjax.data.core import (_RAW_SUBDIRS, DatasetNotFoundError, DatasetSpec,
                              _raw_names)
from advjax.data.images import _crop_geometry, _decode_many, _select
from advjax.data.records import _check_labels, _Reader

__all__ = []


_EXTRAS_HINT = "pip install 'advjax[datasets]'"


class _TfdsReader(_Reader):
  """A prepared tfds copy through `tfds.data_source` (array_record, random
  access, no TensorFlow)."""

  def __init__(self, spec: DatasetSpec, split: str, source,
               limit: Optional[int], data_dir, *,
               n: Optional[int] = None, image_shape=None):
    self._source, self._spec, self._split = source, spec, split
    self._data_dir = data_dir
    super().__init__(len(source) if n is None else n,
                     image_shape or spec.image_shape, spec.num_classes,
                     f"tfds {spec.name}/{split}", limit)

  @property
  def fingerprint(self) -> str:
    info = getattr(self._source, "dataset_info", None)
    version = getattr(info, "version", "")
    return (f"tfds:{self._spec.name}:{self._split}:{version}:"
            f"{len(self._source)}:{self.n}:{self._data_dir}")

  def _read(self, idx):
    spec = self._spec
    images = np.empty((idx.shape[0], *spec.image_shape), np.uint8)
    labels = np.empty((idx.shape[0],), np.int64)
    try:
      for j, example in enumerate(_get_many(self._source, idx.tolist())):
        image = np.asarray(example["image"])
        if image.shape != spec.image_shape:
          raise ValueError(f"example {idx[j]} has image shape {image.shape}, "
                           f"expected {spec.image_shape}.")
        images[j] = image
        labels[j] = int(example["label"])
    except (KeyError, OSError, ValueError) as e:
      raise ValueError(
          f"Cannot read the tensorflow_datasets copy of {spec.name!r} split "
          f"{self._split!r} (corrupt or incomplete?): {type(e).__name__}: "
          f"{e}") from e
    return images, labels


def _searched_raw(spec: DatasetSpec, data_dir) -> bool:
  return data_dir is not None and bool(spec.raw_files)


def _default_tfds_dir() -> str:
  return os.environ.get(
      "TFDS_DATA_DIR", os.path.join(os.path.expanduser("~"),
                                    "tensorflow_datasets"))


# tfds datasets downloaded by hand: (files for the manual dir, where to get).
_MANUAL_DOWNLOADS = {
    "imagenet2012": (("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar"),
                     "https://image-net.org/download-images"),
}


def _not_found(spec: DatasetSpec, split: str, data_dir, reason: str
               ) -> DatasetNotFoundError:
  """The error for a dataset that is not available, with how to get it."""
  where = os.fspath(data_dir) if data_dir is not None else _default_tfds_dir()
  shown_dir = where if data_dir is not None else "DIR"
  prepare = (
      "       python -c \"import tensorflow_datasets as tfds; "
      f"tfds.builder('{spec.name}', data_dir='{shown_dir}', "
      "file_format='array_record').download_and_prepare()\"")
  lines = [
      f"Dataset {spec.name!r} (split {split!r}) is not available in "
      f"{where}: {reason}",
      "Get it in one of these ways:",
  ]
  if spec.name in _MANUAL_DOWNLOADS:
    tars, url = _MANUAL_DOWNLOADS[spec.name]
    lines += [
        f"  1. tfds cannot download {spec.name!r}: it must be downloaded "
        f"manually. Register at {url}, download {' and '.join(tars)}, and "
        "place them (not extracted) in "
        f"{os.path.join(where, 'downloads', 'manual')}{os.sep} "
        "(<data_dir>/downloads/manual/); then, with "
        f"{_EXTRAS_HINT},",
        prepare,
        f"     builds {spec.name}/<version>/ there from the tars; pass that "
        "data_dir (--data-dir).",
        "  2. Or read an ImageNet directory in ImageFolder layout "
        "(train/ and val/ of wnid folders): load('folder', split, "
        "data_dir=..., class_index='imagenet_class_index.json').",
    ]
    return DatasetNotFoundError("\n".join(lines))
  lines += [
      f"  1. On a machine with internet: {_EXTRAS_HINT}, then",
      prepare,
      f"     and copy that directory (it holds {spec.name}/<version>/) here;"
      " pass it as data_dir (--data-dir).",
  ]
  if spec.raw_files:
    subdirs = [s for s in _RAW_SUBDIRS[spec.name] if s]
    names = dict.fromkeys(f for fs in spec.raw_files.values() for f in fs)
    lines.append(
        "  2. Put the raw files in data_dir (--data-dir) or in "
        f"data_dir/{{{','.join(subdirs)}}}/, named:")
    lines += [f"       {' or '.join(_raw_names(name))}" for name in names]
  return DatasetNotFoundError("\n".join(lines))


def _open_tfds(spec: DatasetSpec, split: str, data_dir, limit: Optional[int],
               download: bool) -> _Reader:
  """A prepared tfds copy through `tfds.data_source` (no TensorFlow)."""
  source = _tfds_source(spec, split, data_dir, download)
  return _TfdsReader(spec, split, source, limit,
                     None if data_dir is None else os.fspath(data_dir))


def _tfds_source(spec: DatasetSpec, split: str, data_dir, download: bool,
                 decoders=None):
  """`tfds.data_source` of a prepared copy, or `_not_found`'s error."""
  try:
    # pylint: disable=g-import-not-at-top
    import tensorflow_datasets as tfds
    from tensorflow_datasets.core import registered
    # pylint: enable=g-import-not-at-top
  except ImportError as e:
    raw = ", and no raw files" if _searched_raw(spec, data_dir) else ""
    raise _not_found(spec, split, data_dir,
                     f"tensorflow_datasets is not installed{raw} ({e}).") from e

  try:
    source = tfds.data_source(
        spec.name, split=split,
        data_dir=None if data_dir is None else os.fspath(data_dir),
        download=download, decoders=decoders,
        builder_kwargs={"file_format": "array_record"})
    len(source)
  except (registered.DatasetNotFoundError, KeyError, OSError, ValueError,
          NotImplementedError, AssertionError) as e:
    cause = str(e).strip().splitlines()[0] if str(e).strip() else ""
    raw = "no raw files, and " if _searched_raw(spec, data_dir) else ""
    raise _not_found(
        spec, split, data_dir,
        f"{raw}no tensorflow_datasets copy prepared in array_record format "
        f"(tfds: {type(e).__name__}: {cause}).") from e
  return source


def _get_many(source, keys: Sequence[int]) -> Sequence[Any]:
  """`source.__getitems__(keys)` (batched reads), else one by one."""
  getitems = getattr(source, "__getitems__", None)
  if getitems is not None:
    try:
      return getitems(keys)
    except TypeError:
      # tfds.testing.mock_data (tfds 4.9) installs an unbound __getitems__.
      pass
  return [source[k] for k in keys]


class _TfdsImageReader(_TfdsReader):
  """A tfds copy of images of varying size (ImageNet), each decoded to
  `size x size` (`_decode_image`); only the records `keys`, in that order,
  when a subset was selected."""

  def __init__(self, spec: DatasetSpec, split: str, source,
               limit: Optional[int], data_dir, size: int, resize: int,
               keys: Optional[np.ndarray], class_names: Tuple[str, ...]):
    self._size, self._resize, self._keys = size, resize, keys
    self.class_names = class_names
    super().__init__(spec, split, source, limit, data_dir,
                     n=None if keys is None else keys.shape[0],
                     image_shape=(size, size, 3))

  @property
  def fingerprint(self) -> str:
    keys = ("all" if self._keys is None else hashlib.sha256(
        self._keys[:self.n].tobytes()).hexdigest()[:16])
    return f"{super().fingerprint}:crop{self._size}/{self._resize}:{keys}"

  def _read(self, idx):
    keys = idx if self._keys is None else self._keys[idx]
    try:
      examples = _get_many(self._source, keys.tolist())
      images = [np.asarray(example["image"]) for example in examples]
      labels = np.array([int(example["label"]) for example in examples],
                        np.int64)
    except (KeyError, OSError, ValueError) as e:
      raise ValueError(
          f"Cannot read the tensorflow_datasets copy of {self._spec.name!r} "
          f"split {self._split!r} (corrupt or incomplete?): "
          f"{type(e).__name__}: {e}") from e
    names = [f"{self.where} record {k}" for k in keys.tolist()]
    return _decode_many(images, self._size, self._resize, names), labels


def _tfds_labels(spec: DatasetSpec, split: str, data_dir,
                 source) -> np.ndarray:
  """The label of every record of a tfds split, in index order.

  Reads every record once, through a source that leaves the images encoded
  (`tfds.decode.SkipDecoding`); where that needs TensorFlow (a
  `tfds.testing.mock_data` source encodes its examples with it), through
  `source`, decoding them.
  """
  # pylint: disable-next=g-import-not-at-top
  import tensorflow_datasets as tfds
  fast = _tfds_source(spec, split, data_dir, False,
                      decoders={"image": tfds.decode.SkipDecoding()})
  n = len(source)
  labels = np.empty((n,), np.int64)
  try:
    for start in range(0, n, 4096):
      keys = list(range(start, min(start + 4096, n)))
      try:
        examples = _get_many(fast, keys)
      except ImportError:
        fast = source
        examples = _get_many(fast, keys)
      labels[start:start + len(keys)] = [int(ex["label"]) for ex in examples]
  except (KeyError, OSError, ValueError) as e:
    raise ValueError(
        f"Cannot read the labels of the tensorflow_datasets copy of "
        f"{spec.name!r} split {split!r} (corrupt or incomplete?): "
        f"{type(e).__name__}: {e}") from e
  return labels


def _open_tfds_images(spec: DatasetSpec, split: str, data_dir,
                      limit: Optional[int], *, size: int = 224,
                      resize: Optional[int] = 256, classes=None,
                      per_class: Optional[int] = None,
                      download: bool = False) -> _Reader:
  """`imagenet2012`/`imagenette` through `tfds.data_source`, cropped."""
  size, resize = _crop_geometry(size, resize)
  source = _tfds_source(spec, split, data_dir, download)
  data_dir = None if data_dir is None else os.fspath(data_dir)
  try:
    ids = tuple(source.dataset_info.features["label"].names)
  except (AttributeError, KeyError, TypeError):
    ids = ()
  if len(ids) != spec.num_classes:
    ids = ()
  keys = None
  if classes is not None or per_class is not None:
    where = f"tfds {spec.name}/{split}"
    labels = _tfds_labels(spec, split, data_dir, source)
    _check_labels(labels, spec.num_classes, where)
    keys = _select(labels, range(spec.num_classes), ids, classes, per_class,
                   where)
  return _TfdsImageReader(spec, split, source, limit, data_dir, size, resize,
                          keys, ids)
