"""Raw files in `data_dir`: MNIST IDX files (`mnist`, `fashion_mnist`;
named with hyphens or dots, each may be gzipped) and CIFAR binary batches
(`cifar10`, `cifar100`), found below `data_dir` (`_find_raw_files`, the
directories of `core._RAW_SUBDIRS`) and read record by record (`_IdxReader`,
`_CifarReader`; a gzipped IDX file is decompressed into memory). Reading
writes nothing into `data_dir`.
"""
import gzip
import os
from collections.abc import Sequence
from typing import NamedTuple, Optional, Tuple, Union

import numpy as np

from advjax.data.core import (_RAW_SUBDIRS, DATASETS, DatasetNotFoundError,
                              DatasetSpec, _raw_names)
from advjax.data.records import _check_labels, _file_stamp, _pread_rows, _Reader

__all__ = ["write_random_cifar10"]


class _CifarReader(_Reader):
  """CIFAR binary batches, read record by record: `header` label bytes,
  then 3072 bytes of CHW pixels per record."""

  def __init__(self, paths: Sequence[str], header: int, num_classes: int,
               limit: Optional[int]):
    self.paths, self.header = tuple(paths), header
    self._record = record = header + 3072
    counts = []
    for path in self.paths:
      size = os.path.getsize(path)
      if size % record or size == 0:
        raise ValueError(
            f"{path}: {size} bytes is not a whole number of {record}-byte "
            "CIFAR records (truncated or wrong file?).")
      counts.append(size // record)
    self._starts = np.concatenate([[0], np.cumsum(counts)])
    super().__init__(self._starts[-1], (32, 32, 3), num_classes,
                     ", ".join(self.paths), limit)

  @property
  def fingerprint(self) -> str:
    return f"cifar:{self.n}:{_file_stamp(self.paths)}"

  def _read(self, idx):
    which = np.searchsorted(self._starts, idx, side="right") - 1
    rows = np.empty((idx.shape[0], self._record), np.uint8)
    for f in np.unique(which):
      sel = which == f
      rows[sel] = _pread_rows(self.paths[f], 0, self._record,
                              idx[sel] - self._starts[f])
    images = rows[:, self.header:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images, rows[:, self.header - 1]  # CIFAR-100: fine after coarse.

  def check_all_labels(self):
    """Eager loads check every label up front and name the file."""
    for path, start, stop in zip(self.paths, self._starts, self._starts[1:]):
      labels = np.fromfile(path, np.uint8).reshape(stop - start, -1)
      _check_labels(labels[:, self.header - 1], self.num_classes, path)


class _IdxReader(_Reader):
  """An IDX images file and an IDX labels file (the MNIST format).
  Uncompressed files are read row by row; gzipped ones are decompressed
  into memory (gzip has no random access)."""

  def __init__(self, images_path: str, labels_path: str, num_classes: int,
               limit: Optional[int]):
    self.paths = (images_path, labels_path)
    self._images = _open_idx(images_path, ndim=3)
    self._labels = _open_idx(labels_path, ndim=1)
    if self._images.shape[0] != self._labels.shape[0]:
      raise ValueError(
          f"{images_path} holds {self._images.shape[0]} images but "
          f"{labels_path} holds {self._labels.shape[0]} labels.")
    super().__init__(self._labels.shape[0], self._images.shape[1:] + (1,),
                     num_classes, labels_path, limit)

  @property
  def fingerprint(self) -> str:
    return f"idx:{self.n}:{_file_stamp(self.paths)}"

  def _read(self, idx):
    return _idx_rows(self._images, idx)[..., None], _idx_rows(self._labels,
                                                              idx)

  def check_all_labels(self):
    labels = _idx_rows(self._labels, np.arange(self.n))
    _check_labels(labels, self.num_classes, self.paths[1])


def _find_raw_files(spec: DatasetSpec, split: str,
                    data_dir: str) -> Optional[Tuple[str, ...]]:
  """Paths of the split's raw files in the first directory holding them.

  Each file is looked for under its accepted names (`core._raw_names`: for
  MNIST IDX files, hyphenated or dotted, each plain or `.gz`), the first
  present taken: where a directory holds several, uncompressed wins over
  gzipped, then hyphenated (`train-images-idx3-ubyte`) over dotted
  (`train-images.idx3-ubyte`).

  Returns `None` when no candidate directory holds any of them; raises
  `DatasetNotFoundError` when one holds only some.
  """
  names = spec.raw_files[split]
  for sub in _RAW_SUBDIRS[spec.name]:
    directory = os.path.join(data_dir, sub) if sub else data_dir
    found = [_first_file(directory, _raw_names(name)) for name in names]
    if all(found):
      return tuple(found)
    if any(found):
      missing = [" or ".join(_raw_names(n))
                 for n, f in zip(names, found) if f is None]
      raise DatasetNotFoundError(
          f"Incomplete raw files for {spec.name!r} split {split!r} in "
          f"{directory}: missing {'; '.join(missing)}.")
  return None


def _first_file(directory: str, names: Sequence[str]) -> Optional[str]:
  """The path of the first of `names` that is a file in `directory`."""
  for name in names:
    path = os.path.join(directory, name)
    if os.path.isfile(path):
      return path
  return None


class _IdxFile(NamedTuple):
  """An uncompressed IDX file, read on access (`_idx_rows`)."""
  path: str
  offset: int
  shape: Tuple[int, ...]


def _idx_rows(source: Union[np.ndarray, _IdxFile], idx: np.ndarray):
  if isinstance(source, np.ndarray):
    return source[idx]
  record = int(np.prod(source.shape[1:]))
  return _pread_rows(source.path, source.offset, record, idx).reshape(
      (idx.shape[0],) + source.shape[1:])


def _open_idx(path: str, ndim: int) -> Union[np.ndarray, _IdxFile]:
  """An unsigned-byte IDX file (the MNIST format) of rank `ndim`: its
  header checked, then an `_IdxFile` (uncompressed) or the array
  (gzipped).

  The magic number is `0x0000 08 ndim` (two zero bytes, the ubyte type code,
  the rank), followed by `ndim` big-endian uint32 sizes and the data.
  """
  gz = path.endswith(".gz")
  try:
    if gz:
      with gzip.open(path, "rb") as f:
        raw = f.read()
      size = len(raw)
    else:
      with open(path, "rb") as f:
        raw = f.read(4 + 4 * ndim)
      size = os.path.getsize(path)
  except (EOFError, gzip.BadGzipFile, OSError) as e:
    raise ValueError(f"Cannot read {path}: {e} (corrupt or truncated "
                     "file?).") from e
  magic = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else None
  expected = 0x800 | ndim
  if magic != expected:
    got = "a file under 4 bytes" if magic is None else f"0x{magic:08X}"
    raise ValueError(
        f"{path} is not an IDX file of rank {ndim}: magic number {got}, "
        f"expected 0x{expected:08X} (corrupt or wrong file?).")
  header = 4 + 4 * ndim
  if len(raw) < header:
    raise ValueError(f"{path}: truncated IDX header ({len(raw)} bytes).")
  dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, offset=4))
  expected_bytes = header + int(np.prod(dims))
  if size != expected_bytes:
    raise ValueError(
        f"{path}: header says shape {dims} ({expected_bytes} bytes) but the "
        f"file has {size} bytes (truncated or corrupt).")
  if gz:
    return np.frombuffer(raw, np.uint8, offset=header).reshape(dims)
  return _IdxFile(path, header, dims)


def write_random_cifar10(directory: str, records: int, seed: int = 0) -> None:
  """Writes `records` uniform random records in CIFAR-10's binary format
  into `directory`, spread over the five training files as the real ones
  (`data_batch_1.bin`, ...): a stand-in for timing the readers.

  Args:
    directory: an existing directory.
    records: records in all, >= 1.
    seed: seeds numpy's generator (labels in [0, 10), pixels in [0, 256)).
  """
  rng = np.random.default_rng(seed)
  names = DATASETS["cifar10"].raw_files["train"]
  per = -(-records // len(names))
  for i, name in enumerate(names):
    n = max(0, min(per, records - i * per))
    rows = rng.integers(0, 256, (n, 3073), dtype=np.uint8)
    rows[:, 0] %= 10
    rows.tofile(os.path.join(directory, name))
