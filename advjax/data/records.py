"""Stored examples, read on access.

`Records` is one field (images or labels) of a split loaded with
`lazy=True`: array-like, reading only the rows it is indexed with;
`as_array` leaves it as it is and converts anything else with `np.asarray`.
`_Reader` is the random access every source implements (`_read(idx)` ->
uint8 images, labels), here with what the readers share: the uint8 ->
float32 conversion, the label range check, `pread` of fixed-size records,
file fingerprints, and `_read_all` (a whole split into memory).
"""
import os
from collections.abc import Sequence
from typing import Optional, Tuple

import numpy as np

__all__ = ["Records", "as_array"]


class Records:
  """One field (images or labels) of a stored split, read on access.

  `load(..., lazy=True)` returns a `Dataset` whose `images` and `labels` are
  `Records`: an array-like `[N, ...]` with `shape`, `dtype` and `len`, whose
  indexing (an int, a slice, a list or array of indices, a boolean mask)
  reads only the examples it selects, from the raw files (record by record),
  the tfds copy through `tfds.data_source`'s random access, or the image
  files (only those of the selected rows are opened and decoded). A process
  that indexes its own rows of every batch (what `training.fit` and
  `evaluation.robust_accuracy` do) never reads or holds the rest.
  `np.asarray(records)` reads everything.

  Images come as float32 in `[0, 1]`, labels as int32, checked against the
  number of classes as they are read. Reading the images of some indices
  and then their labels (or the other way round) reads the examples once.
  """
  read_on_access = True  # checks.concrete: values are checked as read

  def __init__(self, reader: "_Reader", field: str):
    self._reader, self._field = reader, field

  @property
  def shape(self) -> Tuple[int, ...]:
    tail = self._reader.image_shape if self._field == "images" else ()
    return (self._reader.n,) + tuple(tail)

  @property
  def dtype(self) -> np.dtype:
    return np.dtype(np.float32 if self._field == "images" else np.int32)

  @property
  def ndim(self) -> int:
    return len(self.shape)

  @property
  def size(self) -> int:
    return int(np.prod(self.shape))

  @property
  def rows_read(self) -> int:
    """Examples read from storage so far (both fields together)."""
    return self._reader.rows_read

  @property
  def fingerprint(self) -> str:
    """Identifies the stored data (files, sizes, times; tfds name, version
    and length) without reading it: evaluations key saved results on it."""
    return f"{self._field}:{self._reader.fingerprint}"

  def __len__(self) -> int:
    return self._reader.n

  def __repr__(self) -> str:
    return (f"Records({self._reader.where}, {self._field}, "
            f"shape={self.shape}, dtype={self.dtype})")

  def __getitem__(self, key):
    rest = ()
    if isinstance(key, tuple):
      key, rest = (key[0], key[1:]) if key else (slice(None), ())
    n = self._reader.n
    scalar = isinstance(key, (int, np.integer)) and not isinstance(key, bool)
    if scalar:
      if not -n <= key < n:
        raise IndexError(f"index {key} is out of range for {n} examples.")
      idx = np.asarray([key % n], np.int64)
    elif isinstance(key, slice):
      idx = np.arange(n)[key]
    else:
      key = np.asarray(key)
      if key.dtype == bool:
        if key.shape != (n,):
          raise IndexError(f"a boolean index must have shape ({n},), got "
                           f"{key.shape}.")
        idx = np.flatnonzero(key)
      elif np.issubdtype(key.dtype, np.integer) and key.ndim == 1:
        if key.size and (key.min() < -n or key.max() >= n):
          raise IndexError(f"indices out of range for {n} examples.")
        idx = key.astype(np.int64) % max(n, 1)
      else:
        raise IndexError("Records take an int, a slice, a 1-D integer or "
                         f"boolean array as their first index, got {key!r}.")
    out = self._reader.read(idx, self._field)
    if scalar:
      out = out[0]
    return out[(slice(None),) * (not scalar) + rest] if rest else out

  def __array__(self, dtype=None, copy=None):
    del copy
    out = self[:]
    return out if dtype is None else out.astype(dtype)


def as_array(a):
  """`a` unchanged when it is `Records` (read on access), else
  `np.asarray(a)`."""
  return a if isinstance(a, Records) else np.asarray(a)


class _Reader:
  """Random access to the examples of one stored split.

  Subclasses implement `_read(idx) -> (uint8 images [n, H, W, C], labels
  [n])`; `read` converts them, checks the labels and keeps the last read
  until each field has been handed out once, so that the images and labels
  of one batch are read once (and a field asked for again is read again:
  no caller sees another's array).
  """
  class_names: Tuple[str, ...] = ()  # label -> name, where known

  def __init__(self, n: int, image_shape, num_classes: int, where: str,
               limit: Optional[int]):
    self.n = int(n if limit is None else min(n, limit))
    self.image_shape = tuple(int(d) for d in image_shape)
    self.num_classes, self.where = int(num_classes), where
    self.rows_read = 0
    self._last = None

  @property
  def fingerprint(self) -> str:
    raise NotImplementedError

  def read(self, idx: np.ndarray, field: str) -> np.ndarray:
    """`field` ('images' or 'labels') of the examples `idx`."""
    idx = np.asarray(idx, np.int64)
    token = idx.tobytes()
    last = self._last
    if last is not None and last[0] == token and field in last[1]:
      self._last = None if len(last[1]) == 1 else (
          token, {k: v for k, v in last[1].items() if k != field})
      return last[1][field]
    images, labels = self._read(idx)
    labels = np.asarray(labels).astype(np.int32)
    _check_labels(labels, self.num_classes, self.where)
    out = {"images": _to_float(np.asarray(images)), "labels": labels}
    self.rows_read += idx.shape[0]
    self._last = (token, {k: v for k, v in out.items() if k != field})
    return out[field]

  def _read(self, idx: np.ndarray):
    raise NotImplementedError


def _to_float(images_u8: np.ndarray) -> np.ndarray:
  images = images_u8.astype(np.float32)
  images /= np.float32(255)
  return images


def _check_labels(labels: np.ndarray, num_classes: int, path: str) -> None:
  if labels.size and (int(labels.max()) >= num_classes or labels.min() < 0):
    bad = int(labels.max()) if labels.max() >= num_classes else int(
        labels.min())
    raise ValueError(f"{path}: label {bad} out of range "
                     f"[0, {num_classes}) (corrupt or wrong file?).")


def _pread_rows(path: str, offset: int, record: int,
                rows: np.ndarray) -> np.ndarray:
  """Records `rows` (each `record` bytes, the first at byte `offset`) of a
  file, read with one `pread` each: only those bytes are read, and nothing
  stays mapped into the process (a memory map would keep every page it
  touched counted in the process's memory)."""
  out = np.empty((rows.shape[0], record), np.uint8)
  fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
  try:
    for j, r in enumerate(rows.tolist()):
      chunk = os.pread(fd, record, offset + r * record)
      if len(chunk) != record:
        raise ValueError(f"{path}: record {r} is cut short (the file "
                         "changed since it was opened?).")
      out[j] = np.frombuffer(chunk, np.uint8)
  finally:
    os.close(fd)
  return out


def _file_stamp(paths: Sequence[str]) -> str:
  stats = [os.stat(p) for p in paths]
  return ";".join(f"{os.path.abspath(p)}:{st.st_size}:{st.st_mtime_ns}"
                  for p, st in zip(paths, stats))


def _read_all(reader: _Reader) -> Tuple[np.ndarray, np.ndarray]:
  """Every example of `reader` into memory, 1024 at a time."""
  if hasattr(reader, "check_all_labels"):
    reader.check_all_labels()
  images = np.empty((reader.n, *reader.image_shape), np.float32)
  labels = np.empty((reader.n,), np.int32)
  # Up to 1024 rows and 64 MiB of float32 images at a time.
  row_bytes = 4 * int(np.prod(reader.image_shape))
  chunk = max(1, min(1024, (64 << 20) // row_bytes))
  for start in range(0, reader.n, chunk):
    idx = np.arange(start, min(start + chunk, reader.n))
    images[idx] = reader.read(idx, "images")
    labels[idx] = reader.read(idx, "labels")
  return images, labels
