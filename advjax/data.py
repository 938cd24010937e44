"""Dataset registry: embedded, generated, tfds, raw-file and image-folder data.

Every dataset loads as a `Dataset` (into host memory, or read on access):
float32 NHWC images in `[0, 1]` and int32 labels. Sources, by name:

* `digits`: scikit-learn's bundled 8x8 digits (offline, always available),
  with a fixed seeded stratified 80/20 train/test split.
* `synthetic`: deterministic class-template images for tests and dry runs.
* `mnist`, `fashion_mnist`, `cifar10`, `cifar100`, `svhn_cropped`: raw files
  in `data_dir` when present (MNIST IDX files, CIFAR binary batches), else a
  copy prepared by tensorflow_datasets (array_record format, read with
  `tfds.data_source`, so TensorFlow is not needed to read). Nothing is ever
  downloaded; a missing dataset raises `DatasetNotFoundError` saying how to
  get it.
* `gtsrb`: the German Traffic Sign Recognition Benchmark from its raw
  folders (`Final_Training/Images/<class>/*.ppm` with `GT-<class>.csv`,
  `Final_Test/Images/*.ppm` with `GT-final_test.csv`; tensorflow-datasets
  has no GTSRB builder), each sign cropped to its annotated box and resized
  to 32 x 32.
* `imagenet2012`, `imagenette`: tfds copies (ImageNet must be downloaded by
  hand: tfds builds it from the ILSVRC2012 tars), and `folder`: a directory
  of images in ImageFolder layout (`<split>/<class_name>/<image>.jpg`), with
  an optional class index (`imagenet_class_index.json`) for true ImageNet
  labels. Their images vary in size and are decoded one by one: RGB, the
  shorter side resized, a square centre crop (torchvision's `Resize(256)`,
  `CenterCrop(224)` by default). `classes=` and `per_class=` keep a
  deterministic subset (the first N classes, the first M images of each).
  These three load lazily unless `lazy=False`.

`iterate_batches` cuts a dataset into numpy batches, reproducibly shuffled by
`(seed, epoch)`, optionally only one process's rows of each; `prefetch`
reads them ahead in a thread.

At scale, `load(..., lazy=True)` leaves the data where it is: its images and
labels are `Records`, read on access from the raw files (record by record),
tfds (random access) or image files (one by one), so each process of a
multi-process run reads and holds only its own rows of the batch at hand, not
the dataset.
"""
import concurrent.futures
import gzip
import hashlib
import json
import os
import queue
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Dict, List, NamedTuple, Optional, Tuple, Union

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


def list_datasets() -> Tuple[str, ...]:
  """Returns the registered dataset names (the choices of `load`)."""
  return tuple(DATASETS)


def load(name: str,
         split: str = "train",
         data_dir: Optional[Union[str, os.PathLike]] = None,
         *,
         limit: Optional[int] = None,
         lazy: Optional[bool] = None,
         **kwargs: Any) -> Dataset:
  """Loads one split of a registered dataset into host memory (or lazily).

  For the tfds-backed names, raw files under `data_dir` (see
  `DATASETS[name].raw_files`; MNIST IDX files may be gzipped) are read first
  when present; otherwise the tensorflow_datasets copy prepared in `data_dir`
  (default: `$TFDS_DATA_DIR` or `~/tensorflow_datasets`) is read with
  `tfds.data_source`, which needs no TensorFlow. Nothing is downloaded unless
  `download=True` is passed (ImageNet never is: tfds builds it from the
  ILSVRC2012 tars placed by hand in `<data_dir>/downloads/manual/`).

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
    gz = " (each may be .gz)" if spec.name in ("mnist", "fashion_mnist") else ""
    names = sorted({f for fs in spec.raw_files.values() for f in fs})
    lines.append(
        f"  2. Put the raw files{gz} in data_dir (--data-dir) or in "
        f"data_dir/{{{','.join(subdirs)}}}/: {', '.join(names)}.")
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


# ---------------------------------------------------------------------------
# images of varying size: ImageNet (tfds) and image folders

_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif",
                     ".tiff", ".webp")
# Folder names a split may have below `data_dir`, in the order looked for.
_SPLIT_FOLDERS = {"train": ("train",), "validation": ("validation", "val"),
                  "test": ("test",)}
_FOLDER_LAYOUT = ("DIR/<split>/<class_name>/<image>.jpg (split folders: "
                  "train, validation or val, test), or "
                  "DIR/<class_name>/<image>.jpg")
_DECODE_THREADS = min(8, os.cpu_count() or 1)


def _crop_geometry(size: int, resize: Optional[int]) -> Tuple[int, int]:
  """Checked `(size, resize)`; `resize=None` is `size`."""
  def whole(v):
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)
  if not whole(size) or size < 1:
    raise ValueError(f"size must be a positive int (the side of the square "
                     f"centre crop), got {size!r}.")
  if resize is None:
    return int(size), int(size)
  if not whole(resize) or resize < size:
    raise ValueError(
        f"resize must be an int >= size ({size}): the shorter side is "
        f"resized to it before the {size}x{size} centre crop; or None, to "
        f"resize the shorter side to size. Got {resize!r}.")
  return int(size), int(resize)


def _decode_image(image, size: int, resize: int, what: str) -> np.ndarray:
  """One image as uint8 `[size, size, 3]`: torchvision's `Resize(resize)`,
  `CenterCrop(size)` on its RGB conversion.

  Args:
    image: a file path, or a uint8 `[H, W, C]` array (C = 1, 3 or 4).
    size: side of the square centre crop.
    resize: the shorter side is resized to this (PIL bilinear, which
      antialiases when shrinking); the longer side keeps the aspect ratio,
      `int(resize * long / short)`.
    what: names the image in errors.

  Raises:
    ValueError: the image cannot be read or decoded, naming `what`.
  """
  # pylint: disable-next=g-import-not-at-top
  from PIL import Image
  try:
    if isinstance(image, np.ndarray):
      array = image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else (
          image)
      rgb = Image.fromarray(np.ascontiguousarray(array)).convert("RGB")
    else:
      with Image.open(image) as opened:
        rgb = opened.convert("RGB")
  except (OSError, ValueError, TypeError, SyntaxError,
          Image.DecompressionBombError) as e:
    raise ValueError(
        f"Cannot decode image {what}: {type(e).__name__}: {e} (corrupt, "
        "truncated or not an image?). Replace or remove it.") from e
  w, h = rgb.size
  short, long = min(w, h), max(w, h)
  new_long = int(resize * long / short)
  new_w, new_h = (resize, new_long) if w <= h else (new_long, resize)
  if (new_w, new_h) != (w, h):
    rgb = rgb.resize((new_w, new_h), Image.Resampling.BILINEAR)
  left = int(round((new_w - size) / 2.))
  top = int(round((new_h - size) / 2.))
  return np.asarray(rgb.crop((left, top, left + size, top + size)), np.uint8)


def _decode_many(images: Sequence[Any], size: int, resize: int,
                 names: Sequence[str]) -> np.ndarray:
  """`_decode_image` of each, in threads (PIL decodes and resizes without
  the GIL): uint8 `[n, size, size, 3]`."""
  out = np.empty((len(images), size, size, 3), np.uint8)

  def one(j):
    out[j] = _decode_image(images[j], size, resize, names[j])

  workers = min(len(images), _DECODE_THREADS)
  if workers <= 1:
    for j in range(len(images)):
      one(j)
  else:
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
      list(pool.map(one, range(len(images))))  # raises the first error
  return out


def _class_text(label: int, ids: Sequence[str]) -> str:
  return (f"{ids[label]!r} (label {label})" if 0 <= label < len(ids)
          else f"label {label}")


def _choose_classes(classes, present: Sequence[int], ids: Sequence[str],
                    where: str) -> Tuple[int, ...]:
  """The labels `classes` keeps, increasing, from the split's `present`
  labels (`ids[k]` names label k: tfds label names or folder names)."""
  present = sorted(present)
  if classes is None:
    return tuple(present)
  if isinstance(classes, (int, np.integer)) and not isinstance(classes, bool):
    if not 1 <= classes <= len(present):
      raise ValueError(
          f"classes={classes}, but {where} has {len(present)} classes; pass "
          f"1..{len(present)}, or a list of labels or class names.")
    return tuple(present[:int(classes)])
  if isinstance(classes, (str, bytes)) or not isinstance(
      classes, (Sequence, np.ndarray, set, frozenset)):
    raise TypeError(
        "classes must be an int N (the first N classes) or a list of labels "
        f"or class names, got {classes!r}.")
  lookup = {name: k for k, name in enumerate(ids)}
  present_set, chosen = set(present), []
  for c in classes:
    if isinstance(c, str):
      if c not in lookup:
        known = (f"names are {', '.join(map(repr, ids[:3]))}, ... "
                 "(class_names of the loaded Dataset)" if ids else
                 "it has no class names")
        raise ValueError(f"classes: unknown class name {c!r} in {where}; "
                         f"{known}; or pass int labels.")
      label = lookup[c]
    elif isinstance(c, (int, np.integer)) and not isinstance(c, bool):
      label = int(c)
    else:
      raise TypeError(f"classes: {c!r} is neither an int label nor a class "
                      "name.")
    if label not in present_set:
      raise ValueError(
          f"classes: {_class_text(label, ids)} is not a class of {where} "
          f"(it has {len(present)} classes, labels {present[0]}.."
          f"{present[-1]}).")
    if label in chosen:
      raise ValueError(f"classes: {_class_text(label, ids)} is given twice.")
    chosen.append(label)
  if not chosen:
    raise ValueError("classes is empty; pass None to keep every class.")
  return tuple(sorted(chosen))


def _select(labels: np.ndarray, present: Sequence[int], ids: Sequence[str],
            classes, per_class, where: str) -> Optional[np.ndarray]:
  """Indices of the rows `classes` and `per_class` keep, grouped by class
  in increasing label order, each class's rows in their given order;
  `None` when both are `None` (every row, as given)."""
  if classes is None and per_class is None:
    return None
  if per_class is not None:
    if isinstance(per_class, bool) or not isinstance(per_class,
                                                     (int, np.integer)):
      raise TypeError(f"per_class must be an int or None, got {per_class!r}.")
    if per_class < 1:
      raise ValueError(f"per_class must be >= 1, got {per_class}.")
  chosen = _choose_classes(classes, present, ids, where)
  order = np.argsort(labels, kind="stable")
  bounds = np.searchsorted(labels[order], np.asarray(chosen) + np.array(
      [[0], [1]]))
  keep = []
  for c, lo, hi in zip(chosen, bounds[0], bounds[1]):
    rows = order[lo:hi]
    if per_class is not None:
      if rows.shape[0] < per_class:
        raise ValueError(
            f"per_class={per_class}, but class {_class_text(c, ids)} has "
            f"only {rows.shape[0]} images in {where}; pass per_class <= "
            f"{rows.shape[0]} or leave that class out (classes=...).")
      rows = rows[:per_class]
    keep.append(rows)
  return np.concatenate(keep).astype(np.int64)


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


class _FolderReader(_Reader):
  """Image files, each decoded to `size x size` when its row is read."""

  def __init__(self, root: str, paths: Sequence[str], labels: np.ndarray,
               num_classes: int, class_names: Tuple[str, ...], size: int,
               resize: int, limit: Optional[int]):
    super().__init__(len(paths), (size, size, 3), num_classes, root, limit)
    self.root, self.class_names = root, class_names
    self.paths, self.labels = tuple(paths[:self.n]), labels[:self.n]
    self._size, self._resize = size, resize

  @property
  def fingerprint(self) -> str:
    """Paths, labels, sizes and modification times of the files (one
    `stat` each, nothing read) and the crop."""
    digest = hashlib.sha256()
    for path, label in zip(self.paths, self.labels.tolist()):
      st = os.stat(path)
      digest.update(f"{os.path.relpath(path, self.root)}:{label}:"
                    f"{st.st_size}:{st.st_mtime_ns}\n".encode())
    return (f"folder:{os.path.abspath(self.root)}:{self.n}:"
            f"crop{self._size}/{self._resize}:{digest.hexdigest()[:16]}")

  def _read(self, idx):
    paths = [self.paths[i] for i in idx.tolist()]
    return (_decode_many(paths, self._size, self._resize, paths),
            self.labels[idx])


def _folder_root(split: str, data_dir) -> str:
  """The directory whose subfolders are the classes of `split`."""
  if data_dir is None:
    raise DatasetNotFoundError(
        "Dataset 'folder' needs data_dir (--data-dir): a directory of "
        f"images in ImageFolder layout, {_FOLDER_LAYOUT}.")
  data_dir = os.fspath(data_dir)
  if not os.path.isdir(data_dir):
    raise DatasetNotFoundError(
        f"Dataset 'folder': data_dir {data_dir} is not a directory; pass a "
        f"directory of images in ImageFolder layout, {_FOLDER_LAYOUT}.")
  for name in _SPLIT_FOLDERS[split]:
    if os.path.isdir(os.path.join(data_dir, name)):
      return os.path.join(data_dir, name)
  others = [name for names in _SPLIT_FOLDERS.values() for name in names
            if os.path.isdir(os.path.join(data_dir, name))]
  if others:
    raise DatasetNotFoundError(
        f"Dataset 'folder': {data_dir} has split folders "
        f"{', '.join(others)} but none for split {split!r} (looked for "
        f"{', '.join(_SPLIT_FOLDERS[split])}); load one of those splits, or "
        f"add {os.path.join(data_dir, _SPLIT_FOLDERS[split][0])}{os.sep}.")
  return data_dir


def _is_image(name: str) -> bool:
  return not name.startswith(".") and name.lower().endswith(_IMAGE_EXTENSIONS)


def _image_files(directory: str) -> List[str]:
  """Image files in or below `directory`, sorted by path."""
  found = []
  for parent, subdirs, files in os.walk(directory, followlinks=True):
    subdirs[:] = [d for d in subdirs if not d.startswith(".")]
    found.extend(os.path.join(parent, f) for f in files if _is_image(f))
  return sorted(found)


def _read_class_index(path) -> Tuple[Tuple[str, ...], Tuple[str, ...]]:
  """`(folder names, class names)` by label from a class-index file: a json
  object `{"0": [folder, name], ...}` (Keras/torchvision
  `imagenet_class_index.json`; a plain string value is both) or text, one
  folder name per line."""
  path = os.fspath(path)
  formats = ("expected imagenet_class_index.json's format, {\"0\": "
             "[\"n01440764\", \"tench\"], ...}, or a text file of one folder "
             "name per line (line k, from 0, is label k)")
  if not os.path.isfile(path):
    raise FileNotFoundError(f"class_index file {path} does not exist; "
                            f"{formats}.")
  with open(path, encoding="utf-8") as f:
    text = f.read()
  if path.lower().endswith(".json") or text.lstrip().startswith("{"):
    try:
      obj = json.loads(text)
    except json.JSONDecodeError as e:
      raise ValueError(f"class_index {path} is not valid JSON ({e}); "
                       f"{formats}.") from e
    entries: Dict[int, Any] = {}
    if isinstance(obj, dict):
      for k, v in obj.items():
        try:
          entries[int(k)] = v
        except ValueError:
          break
    if not isinstance(obj, dict) or not obj or sorted(entries) != list(
        range(len(obj))):
      raise ValueError(f"class_index {path}: the keys must be the labels "
                       f"\"0\"..\"K-1\"; {formats}.")
    folders, names = [], []
    for k in range(len(entries)):
      v = entries[k]
      if isinstance(v, str):
        v = [v]
      if (not isinstance(v, (list, tuple)) or not 1 <= len(v) <= 2 or
          not all(isinstance(x, str) and x for x in v)):
        raise ValueError(f"class_index {path}: entry \"{k}\" is {v!r}; "
                         f"{formats}.")
      folders.append(v[0])
      names.append(v[-1])
  else:
    folders = [line.strip() for line in text.splitlines()]
    while folders and not folders[-1]:
      folders.pop()
    if not folders:
      raise ValueError(f"class_index {path} is empty; {formats}.")
    if "" in folders:
      raise ValueError(f"class_index {path}: line {folders.index('') + 1} is "
                       f"empty (every line is a label); {formats}.")
    names = folders
  first = {}
  for k, folder in enumerate(folders):
    if folder in first:
      raise ValueError(f"class_index {path}: folder {folder!r} is given for "
                       f"labels {first[folder]} and {k}.")
    first[folder] = k
  return tuple(folders), tuple(names)


def _open_folder(split: str, data_dir, limit: Optional[int], *,
                 size: int = 224, resize: Optional[int] = 256, classes=None,
                 per_class: Optional[int] = None,
                 class_index=None) -> _Reader:
  """The `folder` dataset: class folders of image files (`load`)."""
  size, resize = _crop_geometry(size, resize)
  root = _folder_root(split, data_dir)
  with os.scandir(root) as entries:
    entries = list(entries)
  folders = sorted(e.name for e in entries
                   if e.is_dir() and not e.name.startswith("."))
  if not folders:
    loose = sum(e.is_file() and _is_image(e.name) for e in entries)
    hint = (f" It holds {loose} images directly: put them in one folder per "
            "class, or pass the directory above the class folders."
            if loose else "")
    raise DatasetNotFoundError(
        f"Dataset 'folder' (split {split!r}): no class folders in {root}; "
        f"expected the ImageFolder layout {_FOLDER_LAYOUT}.{hint}")
  if class_index is None:
    ids = names = tuple(folders)
  else:
    ids, names = _read_class_index(class_index)
  label_of = {folder: k for k, folder in enumerate(ids)}
  unknown = [f for f in folders if f not in label_of]
  if unknown:
    more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
    raise ValueError(
        f"Class folder {unknown[0]!r}{more} in {root} is not in the class "
        f"index {os.fspath(class_index)} ({len(ids)} classes); rename or "
        "remove it, or pass the class index it belongs to.")
  folders.sort(key=label_of.__getitem__)
  paths, labels = [], []
  for folder in folders:
    files = _image_files(os.path.join(root, folder))
    paths += files
    labels += [label_of[folder]] * len(files)
  if not paths:
    raise DatasetNotFoundError(
        f"Dataset 'folder' (split {split!r}): no images in the "
        f"{len(folders)} class folders of {root} (image files end "
        f"{', '.join(_IMAGE_EXTENSIONS)}); expected the ImageFolder layout "
        f"{_FOLDER_LAYOUT}.")
  labels = np.asarray(labels, np.int64)
  keep = _select(labels, [label_of[f] for f in folders], ids, classes,
                 per_class, root)
  if keep is not None:
    paths, labels = [paths[i] for i in keep.tolist()], labels[keep]
  return _FolderReader(root, paths, labels, len(ids), names, size, resize,
                       limit)


# ---------------------------------------------------------------------------
# GTSRB: the raw folders of the German Traffic Sign Recognition Benchmark

_GTSRB_URL = "https://benchmark.ini.rub.de/gtsrb_dataset.html"
_GTSRB_ARCHIVE = ("https://sid.erda.dk/public/archives/"
                  "daaeac0d7ce1152aea9b61d9f1e19370/published-archive.html")
_GTSRB_ZIPS = ("GTSRB_Final_Training_Images.zip",
               "GTSRB_Final_Test_Images.zip", "GTSRB_Final_Test_GT.zip")
_GTSRB_TEST_CSV = "GT-final_test.csv"


def _gtsrb_not_found(split: str, data_dir, reason: str) -> DatasetNotFoundError:
  where = "data_dir" if data_dir is None else os.fspath(data_dir)
  return DatasetNotFoundError("\n".join([
      f"Dataset 'gtsrb' (split {split!r}) is not available in {where}: "
      f"{reason}",
      "Get it (tensorflow-datasets has no GTSRB builder; nothing is "
      "downloaded for you):",
      f"  1. Download {', '.join(_GTSRB_ZIPS)} from {_GTSRB_URL} (or its "
      f"archive, {_GTSRB_ARCHIVE}).",
      "  2. Unzip all three into one directory DIR: it then holds "
      "GTSRB/Final_Training/Images/<class>/*.ppm with GT-<class>.csv, "
      f"GTSRB/Final_Test/Images/*.ppm and {_GTSRB_TEST_CSV}.",
      "  3. Pass data_dir=DIR (--data-dir DIR).",
  ]))


def _gtsrb_root(split: str, data_dir) -> str:
  """The folder holding `Final_Training/` and `Final_Test/`."""
  if data_dir is None:
    raise _gtsrb_not_found(split, data_dir, "no data_dir given.")
  data_dir = os.fspath(data_dir)
  for sub in ("", "GTSRB", "gtsrb"):
    root = os.path.join(data_dir, sub) if sub else data_dir
    if any(os.path.isdir(os.path.join(root, f))
           for f in ("Final_Training", "Final_Test")):
      return root
  raise _gtsrb_not_found(split, data_dir,
                         "no GTSRB/Final_Training or GTSRB/Final_Test folder.")


def _read_gtsrb_csv(path: str):
  """`(file names, class ids, boxes [n, 4])` of a GTSRB ground-truth csv
  (`Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId`)."""
  with open(path, encoding="utf-8") as f:
    lines = [line.strip() for line in f if line.strip()]
  header = lines[0].split(";") if lines else []
  need = ("Filename", "Roi.X1", "Roi.Y1", "Roi.X2", "Roi.Y2", "ClassId")
  if not all(k in header for k in need):
    raise ValueError(f"{path}: not a GTSRB ground-truth csv (its header "
                     f"needs {';'.join(need)}, got {lines[0] if lines else ''!r}"
                     "; the test labels are GT-final_test.csv of "
                     "GTSRB_Final_Test_GT.zip).")
  col = {k: header.index(k) for k in need}
  names, labels, boxes = [], [], []
  for n, line in enumerate(lines[1:], 2):
    row = line.split(";")
    try:
      names.append(row[col["Filename"]])
      labels.append(int(row[col["ClassId"]]))
      boxes.append([int(row[col[k]]) for k in need[1:5]])
    except (IndexError, ValueError) as e:
      raise ValueError(f"{path}, line {n}: malformed row {line!r} "
                       f"({e}).") from e
  return names, np.asarray(labels, np.int64), np.asarray(boxes,
                                                          np.int64).reshape(-1, 4)


def _gtsrb_files(split: str, root: str, data_dir):
  """`(paths, labels, boxes)` of a split, in the csv files' order."""
  paths, labels, boxes = [], [], []
  if split == "train":
    images = os.path.join(root, "Final_Training", "Images")
    classes = (sorted(d for d in os.listdir(images) if not d.startswith(".")
                      and os.path.isdir(os.path.join(images, d)))
               if os.path.isdir(images) else [])
    if not classes:
      raise _gtsrb_not_found(split, data_dir,
                             f"no class folders in {images}.")
    csvs = [os.path.join(images, c, f"GT-{c}.csv") for c in classes]
  else:
    images = os.path.join(root, "Final_Test", "Images")
    if not os.path.isdir(images):
      raise _gtsrb_not_found(split, data_dir, f"no folder {images}.")
    places = (images, os.path.dirname(images), root, os.fspath(data_dir),
              os.path.dirname(os.path.abspath(root)))
    found = [os.path.join(d, _GTSRB_TEST_CSV) for d in places
             if os.path.isfile(os.path.join(d, _GTSRB_TEST_CSV))]
    if not found:
      raise _gtsrb_not_found(
          split, data_dir,
          f"no {_GTSRB_TEST_CSV} (the test labels, in "
          f"GTSRB_Final_Test_GT.zip) in {', '.join(dict.fromkeys(places))}.")
    classes, csvs = [None], found[:1]
  for c, csv in zip(classes, csvs):
    if not os.path.isfile(csv):
      raise _gtsrb_not_found(split, data_dir, f"{csv} is missing.")
    names, lab, box = _read_gtsrb_csv(csv)
    _check_labels(lab, DATASETS["gtsrb"].num_classes, csv)
    folder = os.path.dirname(csv) if c is not None else images
    for name in names:
      path = os.path.join(folder, name)
      if not os.path.isfile(path):
        raise _gtsrb_not_found(split, data_dir,
                               f"{path}, named in {csv}, is missing.")
      paths.append(path)
    labels.append(lab)
    boxes.append(box)
  return paths, np.concatenate(labels), np.concatenate(boxes)


def _decode_gtsrb(path: str, box, size: int) -> np.ndarray:
  """One sign as uint8 `[size, size, 3]`: RGB, cropped to `box` (x1, y1,
  x2, y2, inclusive; None: the whole image), resized (PIL bilinear)."""
  # pylint: disable-next=g-import-not-at-top
  from PIL import Image
  try:
    with Image.open(path) as opened:
      rgb = opened.convert("RGB")
  except (OSError, ValueError, SyntaxError) as e:
    raise ValueError(f"Cannot decode image {path}: {type(e).__name__}: {e} "
                     "(corrupt or truncated?).") from e
  if box is not None:
    x1, y1, x2, y2 = (int(v) for v in box)
    w, h = rgb.size
    x1, y1 = max(0, min(x1, w - 1)), max(0, min(y1, h - 1))
    x2, y2 = max(x1, min(x2, w - 1)), max(y1, min(y2, h - 1))
    rgb = rgb.crop((x1, y1, x2 + 1, y2 + 1))
  if rgb.size != (size, size):
    rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
  return np.asarray(rgb, np.uint8)


class _GtsrbReader(_FolderReader):
  """GTSRB images, each decoded (cropped to its box, resized) when its row
  is read."""

  def __init__(self, root: str, paths, labels, boxes, size: int, roi: bool,
               limit: Optional[int]):
    super().__init__(root, paths, labels, DATASETS["gtsrb"].num_classes, (),
                     size, size, limit)
    self.boxes, self._roi = boxes[:self.n], roi

  @property
  def fingerprint(self) -> str:
    return f"gtsrb:roi{int(self._roi)}:{super().fingerprint}"

  def _read(self, idx):
    out = np.empty((idx.shape[0], self._size, self._size, 3), np.uint8)

    def one(j):
      i = int(idx[j])
      out[j] = _decode_gtsrb(self.paths[i],
                             self.boxes[i] if self._roi else None, self._size)

    workers = min(idx.shape[0], _DECODE_THREADS)
    if workers <= 1:
      for j in range(idx.shape[0]):
        one(j)
    else:
      with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, range(idx.shape[0])))
    return out, self.labels[idx]


def _open_gtsrb(split: str, data_dir, limit: Optional[int], *,
                size: int = 32, roi: bool = True) -> _Reader:
  """The `gtsrb` dataset from its raw folders (`load`)."""
  size, _ = _crop_geometry(size, None)
  root = _gtsrb_root(split, data_dir)
  paths, labels, boxes = _gtsrb_files(split, root, data_dir)
  return _GtsrbReader(root, paths, labels, boxes, size, bool(roi), limit)


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
