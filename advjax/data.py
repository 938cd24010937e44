"""Dataset registry: embedded, generated, tfds-backed and raw-file datasets.

Every dataset loads into host memory as a `Dataset`: float32 NHWC images in
`[0, 1]` and int32 labels. Sources, by name:

* `digits`: scikit-learn's bundled 8x8 digits (offline, always available),
  with a fixed seeded stratified 80/20 train/test split.
* `synthetic`: deterministic class-template images for tests and dry runs.
* `mnist`, `fashion_mnist`, `cifar10`, `cifar100`, `svhn_cropped`: raw files
  in `data_dir` when present (MNIST IDX files, CIFAR binary batches), else a
  copy prepared by tensorflow_datasets (array_record format, read with
  `tfds.data_source`, so TensorFlow is not needed to read). Nothing is ever
  downloaded; a missing dataset raises `DatasetNotFoundError` saying how to
  get it.

`iterate_batches` cuts a dataset into numpy batches, reproducibly shuffled by
`(seed, epoch)`, optionally only one process's rows of each; `prefetch`
reads them ahead in a thread.

At scale, `load(..., lazy=True)` leaves the data where it is: its images and
labels are `Records`, read on access from the raw files (record by record) or
tfds (random access), so each process of a multi-process run reads and
holds only its own rows of the batch at hand, not the dataset.
"""
import gzip
import os
import queue
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple, Optional, Tuple, Union

import numpy as np

__all__ = [
    "mnist_like_images",
    "Dataset", "DatasetSpec", "DatasetNotFoundError", "DATASETS",
    "list_datasets", "load", "iterate_batches", "prefetch", "Records",
    "as_array",
]

_EXTRAS_HINT = "pip install 'advjax[datasets]'"


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
  """
  images: np.ndarray
  labels: np.ndarray
  num_classes: int
  name: str
  split: str = ""

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
    num_classes: number of classes (the default, for `synthetic`).
    image_shape: `(H, W, C)` (the default, for `synthetic`).
    splits: split names `load` accepts.
    source: `'embedded'`, `'generated'` or `'tfds'`.
    raw_files: split -> raw file names `load` reads from `data_dir` instead
      of tfds (empty when there is no raw-file reader).
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
    )
}

_LOADER_KWARGS = {
    "digits": frozenset(),
    "synthetic": frozenset({"shape", "num_classes", "size", "seed", "noise"}),
}
_TFDS_KWARGS = frozenset({"download"})


def list_datasets() -> Tuple[str, ...]:
  """Returns the registered dataset names (the choices of `load`)."""
  return tuple(DATASETS)


def load(name: str,
         split: str = "train",
         data_dir: Optional[Union[str, os.PathLike]] = None,
         *,
         limit: Optional[int] = None,
         lazy: bool = False,
         **kwargs: Any) -> Dataset:
  """Loads one split of a registered dataset into host memory.

  For the tfds-backed names, raw files under `data_dir` (see
  `DATASETS[name].raw_files`; MNIST IDX files may be gzipped) are read first
  when present; otherwise the tensorflow_datasets copy prepared in `data_dir`
  (default: `$TFDS_DATA_DIR` or `~/tensorflow_datasets`) is read with
  `tfds.data_source`, which needs no TensorFlow. Nothing is downloaded unless
  `download=True` is passed.

  Args:
    name: a name from `list_datasets()` (case-insensitive, `-` read as `_`).
    split: a split from `DATASETS[name].splits`.
    data_dir: directory holding raw files or prepared tfds data.
    limit: keep only the first `limit` examples (all when `None`).
    lazy: return images and labels as `Records`, read from storage on
      access (raw files record by record, or tfds random access), so a process
      reads only the rows it indexes; for `digits` and `synthetic`, which
      are generated in memory, this has no effect. Use it for data at scale
      and multi-process runs: `training.fit` and
      `evaluation.robust_accuracy` read only this process's rows of every
      batch.
    **kwargs: per dataset. `synthetic`: `shape=(8, 8, 1)`,
      `num_classes=10`, `size=512` (per split), `seed=0`, `noise=0.25` (std
      of the Gaussian noise around each class template). tfds-backed names:
      `download=False` (let tfds download and prepare when missing).

  Returns:
    A `Dataset`: images `[N, H, W, C]` float32 in `[0, 1]`, labels `[N]`
    int32.

  Raises:
    ValueError: unknown name or split, bad `limit`, or a corrupt raw file.
    TypeError: a keyword argument the dataset does not take.
    DatasetNotFoundError: the data is not available locally.
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

  if key == "digits":
    images, labels = _load_digits(split)
  elif key == "synthetic":
    return _take(_load_synthetic(split, **kwargs), limit)
  else:
    reader = _open_external(spec, split, data_dir, limit, **kwargs)
    if lazy:
      return Dataset(Records(reader, "images"), Records(reader, "labels"),
                     spec.num_classes, key, split)
    images, labels = _read_all(reader)
  return _take(Dataset(images, labels, spec.num_classes, key, split), limit)


def iterate_batches(
    data: Union[Dataset, Tuple[np.ndarray, np.ndarray]],
    batch_size: int,
    *,
    shuffle: bool = False,
    seed: int = 0,
    epoch: int = 0,
    drop_remainder: bool = False,
    rows: Optional[slice] = None,
    first: int = 0,
) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
  """Yields `(images, labels)` numpy batches covering a dataset once.

  The order is `np.random.default_rng((seed, epoch)).permutation(N)` when
  `shuffle`, else `0..N-1`, so a run is reproducible epoch by epoch. Without
  `drop_remainder` every example appears exactly once and the last batch may
  be smaller; pad and mask it where a fixed shape is needed.

  Args:
    data: a `Dataset`, or `(images [N, ...], labels [N])`.
    batch_size: examples per batch, > 0.
    shuffle: permute the examples.
    seed: non-negative int seed of the permutation.
    epoch: non-negative int epoch, mixed into the seed.
    drop_remainder: drop the last batch when smaller than `batch_size`.
    rows: yield only these rows of every batch (a process's share of each
      global batch, `sharding.process_slice(batch_size)`); with `Records`
      (`load(..., lazy=True)`) only they are read.
    first: start at this batch (resuming mid-epoch; earlier batches are
      not read).

  Returns:
    An iterator of `(images [B, ...], labels [B])`; unshuffled batches are
    views into the inputs.

  Raises:
    ValueError: bad `batch_size`, `seed` or `epoch`, or images and labels of
      different lengths.
  """
  if isinstance(data, Dataset):
    images, labels = data.images, data.labels
  else:
    images, labels = data
  images, labels = as_array(images), as_array(labels)
  if images.shape[:1] != labels.shape[:1]:
    raise ValueError(f"images ({images.shape}) and labels ({labels.shape}) "
                     "differ in length.")
  if isinstance(batch_size, bool) or int(batch_size) != batch_size or (
      batch_size <= 0):
    raise ValueError(f"batch_size must be a positive int, got {batch_size!r}.")
  if seed < 0 or epoch < 0 or first < 0:
    raise ValueError(f"seed, epoch and first must be >= 0, got {seed}, "
                     f"{epoch}, {first}.")
  batch_size = int(batch_size)
  n = labels.shape[0]
  order = (np.random.default_rng((seed, epoch)).permutation(n)
           if shuffle else None)
  stop = n - n % batch_size if drop_remainder else n
  return _batches(images, labels, order, batch_size, stop,
                  rows or slice(None), int(first))


def _batches(images, labels, order, batch_size, stop, rows, first):
  for start in range(first * batch_size, stop, batch_size):
    end = min(start + batch_size, stop)
    if order is None:
      idx = slice(start, end)
      if rows != slice(None):
        idx = np.arange(start, end)[rows]
    else:
      idx = order[start:end][rows]
    yield images[idx], labels[idx]


def prefetch(iterator: Iterator[Any], size: int = 2) -> Iterator[Any]:
  """Runs `iterator` in a background thread, `size` items ahead, so that
  reading the next batch (from disk or tfds) overlaps the current step.
  The iterator's exceptions are raised where the item would have come."""
  if size < 1:
    raise ValueError(f"prefetch size must be >= 1, got {size}.")
  buffer: "queue.Queue" = queue.Queue(maxsize=size)
  done, stop = object(), threading.Event()

  def work():
    try:
      for item in iterator:
        while not stop.is_set():
          try:
            buffer.put((item, None), timeout=0.1)
            break
          except queue.Full:
            continue
        if stop.is_set():
          return
      buffer.put((done, None))
    except BaseException as e:  # pylint: disable=broad-except
      buffer.put((done, e))

  thread = threading.Thread(target=work, daemon=True, name="advjax-prefetch")
  thread.start()
  try:
    while True:
      item, error = buffer.get()
      if item is done:
        if error is not None:
          raise error
        return
      yield item
  finally:
    stop.set()


def _take(dataset: Dataset, limit: Optional[int]) -> Dataset:
  if limit is None or limit >= dataset.size:
    return dataset
  return dataset._replace(images=dataset.images[:limit].copy(),
                          labels=dataset.labels[:limit].copy())


def _to_float(images_u8: np.ndarray) -> np.ndarray:
  images = images_u8.astype(np.float32)
  images /= np.float32(255)
  return images


# ---------------------------------------------------------------------------
# digits, synthetic


def _load_digits(split: str) -> Tuple[np.ndarray, np.ndarray]:
  # Imported here: scikit-learn takes about a second to import.
  # pylint: disable=g-import-not-at-top
  from sklearn import datasets as sk_datasets
  from sklearn import model_selection
  # pylint: enable=g-import-not-at-top
  digits = sk_datasets.load_digits()
  targets = digits.target
  train_idx, test_idx = model_selection.train_test_split(
      np.arange(targets.shape[0]), test_size=0.2, random_state=0,
      stratify=targets)
  idx = train_idx if split == "train" else test_idx
  images = digits.images[idx].astype(np.float32)[..., None] / np.float32(16)
  return images, targets[idx].astype(np.int32)


def _load_synthetic(split: str,
                    shape: Sequence[int] = (8, 8, 1),
                    num_classes: int = 10,
                    size: int = 512,
                    seed: int = 0,
                    noise: float = 0.25) -> Dataset:
  """Each class a fixed uniform template; examples are template + noise."""
  shape = tuple(int(s) for s in shape)
  if len(shape) != 3 or min(shape) <= 0:
    raise ValueError(f"shape must be (H, W, C) > 0, got {shape}.")
  if num_classes < 1 or size < 0 or seed < 0 or noise < 0:
    raise ValueError(
        "synthetic needs num_classes >= 1, size >= 0, seed >= 0, noise >= 0; "
        f"got {num_classes}, {size}, {seed}, {noise}.")
  # Separate streams: [seed, 0] would equal plain `seed` in SeedSequence.
  templates = np.random.default_rng((seed, 1)).uniform(
      size=(num_classes, *shape))
  rng = np.random.default_rng((seed, 2 if split == "train" else 3))
  labels = rng.permutation(np.arange(size) % num_classes)
  images = templates[labels] + noise * rng.standard_normal((size, *shape))
  images = np.clip(images, 0., 1.).astype(np.float32)
  return Dataset(images, labels.astype(np.int32), int(num_classes),
                 "synthetic", split)


# ---------------------------------------------------------------------------
# Stored examples, read on access


class Records:
  """One field (images or labels) of a stored split, read on access.

  `load(..., lazy=True)` returns a `Dataset` whose `images` and `labels` are
  `Records`: an array-like `[N, ...]` with `shape`, `dtype` and `len`, whose
  indexing (an int, a slice, a list or array of indices, a boolean mask)
  reads only the examples it selects, from the raw files (record by record) or
  the tfds copy through `tfds.data_source`'s random access. A process that
  indexes its own rows of every batch (what `training.fit` and
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


class _TfdsReader(_Reader):
  """A prepared tfds copy through `tfds.data_source` (array_record, random
  access, no TensorFlow)."""

  def __init__(self, spec: DatasetSpec, split: str, source,
               limit: Optional[int], data_dir):
    self._source, self._spec, self._split = source, spec, split
    self._data_dir = data_dir
    super().__init__(len(source), spec.image_shape, spec.num_classes,
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


def _read_all(reader: _Reader) -> Tuple[np.ndarray, np.ndarray]:
  """Every example of `reader` into memory, 1024 at a time."""
  if hasattr(reader, "check_all_labels"):
    reader.check_all_labels()
  images = np.empty((reader.n, *reader.image_shape), np.float32)
  labels = np.empty((reader.n,), np.int32)
  for start in range(0, reader.n, 1024):
    idx = np.arange(start, min(start + 1024, reader.n))
    images[idx] = reader.read(idx, "images")
    labels[idx] = reader.read(idx, "labels")
  return images, labels


# ---------------------------------------------------------------------------
# raw files


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


def _find_raw_files(spec: DatasetSpec, split: str,
                    data_dir: str) -> Optional[Tuple[str, ...]]:
  """Paths of the split's raw files in the first directory holding them.

  Returns `None` when no candidate directory holds any of them; raises
  `DatasetNotFoundError` when one holds only some.
  """
  names = spec.raw_files[split]
  gz_ok = spec.name in ("mnist", "fashion_mnist")
  for sub in _RAW_SUBDIRS[spec.name]:
    directory = os.path.join(data_dir, sub) if sub else data_dir
    found = []
    for fname in names:
      path = os.path.join(directory, fname)
      if os.path.isfile(path):
        found.append(path)
      elif gz_ok and os.path.isfile(path + ".gz"):
        found.append(path + ".gz")
      else:
        found.append(None)
    if all(found):
      return tuple(found)
    if any(found):
      missing = [n for n, f in zip(names, found) if f is None]
      raise DatasetNotFoundError(
          f"Incomplete raw files for {spec.name!r} split {split!r} in "
          f"{directory}: missing {', '.join(missing)}"
          f"{' (or .gz)' if gz_ok else ''}.")
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


def _check_labels(labels: np.ndarray, num_classes: int, path: str) -> None:
  if labels.size and (int(labels.max()) >= num_classes or labels.min() < 0):
    bad = int(labels.max()) if labels.max() >= num_classes else int(
        labels.min())
    raise ValueError(f"{path}: label {bad} out of range "
                     f"[0, {num_classes}) (corrupt or wrong file?).")


# ---------------------------------------------------------------------------
# tensorflow_datasets


def _searched_raw(spec: DatasetSpec, data_dir) -> bool:
  return data_dir is not None and bool(spec.raw_files)


def _default_tfds_dir() -> str:
  return os.environ.get(
      "TFDS_DATA_DIR", os.path.join(os.path.expanduser("~"),
                                    "tensorflow_datasets"))


def _not_found(spec: DatasetSpec, split: str, data_dir, reason: str
               ) -> DatasetNotFoundError:
  """The error for a dataset that is not available, with how to get it."""
  where = os.fspath(data_dir) if data_dir is not None else _default_tfds_dir()
  shown_dir = where if data_dir is not None else "DIR"
  lines = [
      f"Dataset {spec.name!r} (split {split!r}) is not available in "
      f"{where}: {reason}",
      "Get it in one of these ways:",
      f"  1. On a machine with internet: {_EXTRAS_HINT}, then",
      "       python -c \"import tensorflow_datasets as tfds; "
      f"tfds.builder('{spec.name}', data_dir='{shown_dir}', "
      "file_format='array_record').download_and_prepare()\"",
      f"     and copy that directory (it holds {spec.name}/<version>/) here;"
      " pass it as data_dir (--data-dir).",
  ]
  if spec.raw_files:
    subdirs = [s for s in _RAW_SUBDIRS[spec.name] if s]
    gz = " (each may be .gz)" if spec.name in ("mnist", "fashion_mnist") else ""
    names = sorted({f for fs in spec.raw_files.values() for f in fs})
    lines.append(
        f"  2. Put the raw files{gz} in data_dir (--data-dir) or in "
        f"data_dir/{{{','.join(subdirs)}}}/: {', '.join(names)}.")
  return DatasetNotFoundError("\n".join(lines))


def _open_tfds(spec: DatasetSpec, split: str, data_dir, limit: Optional[int],
               download: bool) -> _Reader:
  """A prepared tfds copy through `tfds.data_source` (no TensorFlow)."""
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
        download=download,
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
  return _TfdsReader(spec, split, source, limit,
                     None if data_dir is None else os.fspath(data_dir))


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


def mnist_like_images(batch: int, image_shape: Sequence[int]) -> np.ndarray:
  """Deterministic MNIST-like images `[B, H, W, C]` float32 in [0, 1].

  sklearn's 8x8 digits (test split, in order, cycled), upsampled bilinearly
  to the inner `(H - 2r) x (W - 2r)` of the image, `r = round(H / 7)` (the
  4-pixel border of MNIST at 28), values below 0.05 set to 0, and copied to
  every channel; most pixels are exactly 0, as in MNIST.
  """
  import jax  # pylint: disable=import-outside-toplevel
  h, w, c = (int(d) for d in image_shape)
  r = int(round(h / 7))
  inner = (max(h - 2 * r, 1), max(w - 2 * r, 1))
  digits = load("digits", "test").images
  digits = digits[np.arange(batch) % digits.shape[0]]
  up = np.asarray(jax.image.resize(digits,
                                   (batch,) + inner + (1,), "bilinear"))
  up = np.where(up < 0.05, 0., np.clip(up, 0., 1.)).astype(np.float32)
  x = np.zeros((batch, h, w, 1), np.float32)
  x[:, r:r + inner[0], r:r + inner[1]] = up
  return np.repeat(x, c, axis=-1)
