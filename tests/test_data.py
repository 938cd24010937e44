"""Tests for advjax.data: registry, digits, synthetic, tfds, raw files, batches.

Everything runs offline. The tfds path is exercised two ways:
`tfds.testing.mock_data` (policy USE_CODE; it patches
`DatasetBuilder.as_data_source`, so `tfds.data_source` returns a mocked
ArrayRecord source), and a real array_record copy prepared in `tmp_path`
from a few in-memory examples (PNG-encoded with PIL, so no TensorFlow), read
back through the unpatched `tfds.data_source`.
"""
import gzip
import io
import json
import os
import sys

import numpy as np
import pytest
from sklearn import datasets as sklearn_datasets

from advjax import data


# ---------------------------------------------------------------------------
# fixture helpers


def _write_idx(path, array, *, gz=False, magic=None):
  """Writes a uint8 array as an IDX file (optionally gzipped)."""
  array = np.asarray(array, np.uint8)
  if magic is None:
    magic = 0x0800 | array.ndim
  header = magic.to_bytes(4, "big") + b"".join(
      int(d).to_bytes(4, "big") for d in array.shape)
  payload = header + array.tobytes()
  opener = gzip.open if gz else open
  with opener(path, "wb") as f:
    f.write(payload)
  return path


def _mnist_like(n, seed):
  rng = np.random.default_rng(seed)
  images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
  labels = rng.integers(0, 10, (n,), dtype=np.uint8)
  return images, labels


def _write_mnist_dir(directory, *, gz=False, dotted=False, n_train=6,
                     n_test=4, seed=0):
  """Writes both splits as IDX files named as tfds and LeCun name them
  (`train-images-idx3-ubyte`) or, `dotted`, as other mirrors do
  (`train-images.idx3-ubyte`); returns split -> (images, labels)."""
  os.makedirs(directory, exist_ok=True)
  ext = ".gz" if gz else ""
  arrays = {}
  for split, n, s in (("train", n_train, 1), ("test", n_test, 2)):
    images, labels = _mnist_like(n, s + 10 * seed)
    for name, array in zip(data.DATASETS["mnist"].raw_files[split],
                           (images, labels)):
      if dotted:
        name = name.replace("-idx", ".idx")
      _write_idx(os.path.join(directory, name + ext), array, gz=gz)
    arrays[split] = (images, labels)
  return arrays


def _listing(directory):
  """Every path below `directory` with its size and mtime."""
  found = {}
  for root, dirs, files in os.walk(directory):
    for name in dirs + files:
      path = os.path.join(root, name)
      st = os.stat(path)
      found[os.path.relpath(path, directory)] = (st.st_size, st.st_mtime_ns)
  return found


def _cifar_records(n, seed, header=1, num_classes=10):
  """Random CIFAR binary records and their expected (HWC images, labels)."""
  rng = np.random.default_rng(seed)
  chw = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
  labels = rng.integers(0, num_classes, (n,), dtype=np.uint8)
  heads = [labels] if header == 1 else [labels % 20, labels]
  rows = np.concatenate(
      [h[:, None] for h in heads] + [chw.reshape(n, -1)], axis=1)
  return rows.tobytes(), chw.transpose(0, 2, 3, 1), labels


def _write_cifar10_dir(directory, n_per_batch=3):
  os.makedirs(directory, exist_ok=True)
  expected = {"train": ([], []), "test": ([], [])}
  for split, names in data.DATASETS["cifar10"].raw_files.items():
    for i, name in enumerate(names):
      raw, images, labels = _cifar_records(n_per_batch, seed=10 * i + len(
          split))
      with open(os.path.join(directory, name), "wb") as f:
        f.write(raw)
      expected[split][0].append(images)
      expected[split][1].append(labels)
  return {k: (np.concatenate(v[0]), np.concatenate(v[1]))
          for k, v in expected.items()}


def _prepare_tfds(monkeypatch, data_dir, name, examples):
  """Prepares a real array_record tfds copy of `name` from given examples.

  Args:
    monkeypatch: pytest fixture (restores the patched builder class).
    data_dir: where to prepare.
    name: tfds name.
    examples: split -> list of (uint8 image [H, W, C], int label).
  """
  tfds = pytest.importorskip("tensorflow_datasets")
  image_lib = pytest.importorskip("PIL.Image")

  def png(image):
    buf = io.BytesIO()
    image_lib.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(
        buf, format="png")
    return buf.getvalue()

  def generate(split):
    for i, (image, label) in enumerate(examples[split]):
      example = {"image": png(image), "label": label}
      if name == "cifar10":
        example["id"] = f"{split}_{i}"
      yield i, example

  builder = tfds.builder(name, data_dir=str(data_dir),
                         file_format="array_record")
  monkeypatch.setattr(
      type(builder), "_split_generators",
      lambda self, dl_manager: {s: generate(s) for s in examples})
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(try_download_gcs=False))
  return builder


def _sorted_by_label_and_pixel(images, labels):
  key = np.lexsort((images.reshape(len(images), -1)[:, 0], labels))
  return images[key], labels[key]


# ---------------------------------------------------------------------------
# registry and argument checks


def test_registry_lists_names_and_metadata():
  names = data.list_datasets()
  assert set(names) == {"digits", "synthetic", "mnist", "fashion_mnist",
                        "cifar10", "cifar100", "svhn_cropped", "gtsrb",
                        "imagenet2012", "imagenette", "folder"}
  assert data.DATASETS["cifar100"].num_classes == 100
  assert data.DATASETS["cifar10"].image_shape == (32, 32, 3)
  assert data.DATASETS["mnist"].image_shape == (28, 28, 1)
  for spec in data.DATASETS.values():
    assert set(spec.raw_files) <= set(spec.splits)


def test_unknown_name_split_and_kwargs():
  with pytest.raises(ValueError, match="Unknown dataset.*digits.*mnist"):
    data.load("imagenet")
  with pytest.raises(ValueError, match="Unknown split 'validation'"):
    data.load("digits", "validation")
  with pytest.raises(TypeError, match="unexpected keyword"):
    data.load("digits", seed=1)
  with pytest.raises(ValueError, match="limit"):
    data.load("digits", limit=-1)
  assert issubclass(data.DatasetNotFoundError, FileNotFoundError)


# ---------------------------------------------------------------------------
# digits


def test_digits_shapes_dtypes_range():
  train, test = data.load("digits", "train"), data.load("digits", "test")
  for ds in (train, test):
    assert ds.images.shape == (ds.size, 8, 8, 1)
    assert ds.images.dtype == np.float32 and ds.labels.dtype == np.int32
    assert ds.images.min() == 0. and ds.images.max() == 1.
    assert set(np.unique(ds.labels)) == set(range(10))
    assert ds.num_classes == 10 and ds.name == "digits"
  assert (train.size, test.size) == (1437, 360)
  assert train.size + test.size == 1797


def test_digits_split_deterministic_disjoint_stratified():
  full = sklearn_datasets.load_digits()
  train, test = data.load("digits", "train"), data.load("digits", "test")
  again = data.load("digits", "train")
  np.testing.assert_array_equal(train.images, again.images)
  np.testing.assert_array_equal(train.labels, again.labels)
  # train + test is exactly the full set as a multiset: a partition.
  ours = np.concatenate([
      np.concatenate([train.images.reshape(-1, 64) * 16, train.labels[:, None]],
                     1),
      np.concatenate([test.images.reshape(-1, 64) * 16, test.labels[:, None]],
                     1)])
  ref = np.concatenate([full.data, full.target[:, None]], 1)
  np.testing.assert_array_equal(ours[np.lexsort(ours.T)],
                                ref[np.lexsort(ref.T)])
  counts_test = np.bincount(test.labels, minlength=10)
  counts_all = np.bincount(full.target, minlength=10)
  assert np.all(np.abs(counts_test - 0.2 * counts_all) <= 1)


def test_limit_takes_first_examples():
  full = data.load("digits", "test")
  part = data.load("digits", "test", limit=7)
  assert part.size == 7
  np.testing.assert_array_equal(part.images, full.images[:7])
  np.testing.assert_array_equal(part.labels, full.labels[:7])
  assert data.load("digits", "test", limit=10_000).size == full.size


# ---------------------------------------------------------------------------
# synthetic


def test_synthetic_deterministic_and_configurable():
  a = data.load("synthetic", "train", seed=3)
  b = data.load("synthetic", "train", seed=3)
  np.testing.assert_array_equal(a.images, b.images)
  np.testing.assert_array_equal(a.labels, b.labels)
  assert a.images.shape == (512, 8, 8, 1) and a.images.dtype == np.float32
  assert a.labels.dtype == np.int32 and a.num_classes == 10
  assert 0. <= a.images.min() and a.images.max() <= 1.
  np.testing.assert_array_equal(np.bincount(a.labels), [52] * 2 + [51] * 8)
  test = data.load("synthetic", "test", seed=3)
  assert not np.array_equal(a.images, test.images)
  other = data.load("synthetic", "train", seed=4)
  assert not np.array_equal(a.images, other.images)
  c = data.load("synthetic", "test", shape=(4, 5, 3), num_classes=3, size=30)
  assert c.images.shape == (30, 4, 5, 3) and c.num_classes == 3
  assert set(np.unique(c.labels)) == {0, 1, 2}


def test_synthetic_is_learnable_and_train_test_share_distribution():
  train = data.load("synthetic", "train", seed=0)
  test = data.load("synthetic", "test", seed=0)
  flat = lambda x: x.reshape(len(x), -1)
  means = np.stack([flat(train.images)[train.labels == k].mean(0)
                    for k in range(10)])
  # Class means differ by far more than their estimation error.
  gaps = np.linalg.norm(means[:, None] - means[None], axis=-1)
  assert gaps[~np.eye(10, dtype=bool)].min() > 1.
  dist = np.linalg.norm(flat(test.images)[:, None] - means[None], axis=-1)
  accuracy = np.mean(dist.argmin(1) == test.labels)
  assert accuracy > 0.95


# ---------------------------------------------------------------------------
# tfds: mocked, prepared, missing


@pytest.mark.parametrize("name,shape", [("mnist", (28, 28, 1)),
                                        ("cifar10", (32, 32, 3))])
def test_tfds_mock_data(tmp_path, name, shape):
  tfds = pytest.importorskip("tensorflow_datasets")
  with tfds.testing.mock_data(num_examples=9,
                              policy=tfds.testing.MockPolicy.USE_CODE):
    ds = data.load(name, "train", data_dir=tmp_path)
    short = data.load(name, "test", data_dir=tmp_path, limit=4)
    source = tfds.data_source(name, split="train")
    expected = np.stack([source[i]["image"] for i in range(9)])
    expected_labels = np.array([source[i]["label"] for i in range(9)])
  assert ds.images.shape == (9, *shape) and ds.images.dtype == np.float32
  assert ds.labels.dtype == np.int32 and ds.name == name
  assert 0. <= ds.images.min() and ds.images.max() <= 1.
  np.testing.assert_array_equal(ds.images,
                                expected.astype(np.float32) / np.float32(255))
  np.testing.assert_array_equal(ds.labels, expected_labels)
  assert ((ds.labels >= 0) & (ds.labels < 10)).all()
  assert short.size == 4


@pytest.mark.parametrize("name,shape", [("mnist", (28, 28, 1)),
                                        ("cifar10", (32, 32, 3))])
def test_tfds_prepared_array_record_copy(tmp_path, monkeypatch, name, shape):
  rng = np.random.default_rng(0)
  examples = {
      split: [(np.full(shape, 20 * i + 3 * (split == "test"), np.uint8)
               | rng.integers(0, 2, shape, dtype=np.uint8), i % 10)
              for i in range(n)]
      for split, n in (("train", 12), ("test", 5))}
  _prepare_tfds(monkeypatch, tmp_path, name, examples)
  monkeypatch.undo()
  for split in ("train", "test"):
    ds = data.load(name, split, data_dir=tmp_path)
    images = np.stack([im for im, _ in examples[split]])
    labels = np.array([lb for _, lb in examples[split]], np.int32)
    # tfds shuffles records when it writes them: compare as sets.
    got = _sorted_by_label_and_pixel(ds.images, ds.labels)
    want = _sorted_by_label_and_pixel(
        images.astype(np.float32) / np.float32(255), labels)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
  assert data.load(name, "train", data_dir=tmp_path, limit=3).size == 3


def test_missing_tfds_dataset_raises_helpful_error(tmp_path):
  pytest.importorskip("tensorflow_datasets")
  with pytest.raises(data.DatasetNotFoundError) as info:
    data.load("mnist", "test", data_dir=tmp_path)
  message = str(info.value)
  for phrase in ("'mnist'", str(tmp_path), "pip install 'advjax[datasets]'",
                 "tfds.builder('mnist'", "download_and_prepare()",
                 "file_format='array_record'", "--data-dir",
                 "t10k-images-idx3-ubyte", "train-labels-idx1-ubyte"):
    assert phrase in message
  assert info.value.__cause__ is not None
  with pytest.raises(data.DatasetNotFoundError, match="cifar-10-batches-bin"):
    data.load("cifar10", data_dir=tmp_path)
  with pytest.raises(data.DatasetNotFoundError) as info:
    data.load("svhn_cropped", data_dir=tmp_path)
  assert "raw files" not in str(info.value)


def test_missing_tensorflow_datasets_package(tmp_path, monkeypatch):
  monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)
  with pytest.raises(data.DatasetNotFoundError,
                     match=r"(?s)not installed.*pip install 'advjax\["):
    data.load("fashion_mnist", data_dir=tmp_path)
  # Raw files need no tensorflow_datasets.
  _write_mnist_dir(tmp_path / "fashion_mnist")
  assert data.load("fashion_mnist", data_dir=tmp_path).size == 6


# ---------------------------------------------------------------------------
# raw files


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("subdir", ["", "mnist", "MNIST/raw"])
def test_mnist_idx_files(tmp_path, gz, subdir):
  arrays = _write_mnist_dir(tmp_path / subdir, gz=gz)
  for split, (images, labels) in arrays.items():
    ds = data.load("mnist", split, data_dir=tmp_path)
    assert ds.images.shape == (len(labels), 28, 28, 1)
    assert ds.images.dtype == np.float32 and ds.labels.dtype == np.int32
    np.testing.assert_array_equal(
        ds.images[..., 0], images.astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(ds.labels, labels)
  assert data.load("mnist", "train", data_dir=str(tmp_path), limit=2).size == 2


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("name,subdir", [("mnist", ""),
                                         ("fashion_mnist", ""),
                                         ("fashion_mnist", "FashionMNIST/raw")])
def test_dotted_idx_names(tmp_path, gz, name, subdir):
  arrays = _write_mnist_dir(tmp_path / subdir, gz=gz, dotted=True)
  assert os.path.isfile(tmp_path / subdir / (
      "t10k-labels.idx1-ubyte" + (".gz" if gz else "")))
  for split, (images, labels) in arrays.items():
    for lazy in (False, True):
      ds = data.load(name, split, data_dir=tmp_path, lazy=lazy)
      assert ds.images.shape == (len(labels), 28, 28, 1)
      np.testing.assert_array_equal(
          ds.images[:], images[..., None].astype(np.float32) / np.float32(255))
      np.testing.assert_array_equal(ds.labels[:], labels)


def test_idx_spelling_preference(tmp_path):
  """Uncompressed wins over gzipped, then hyphenated over dotted."""
  hyphen_gz = _write_mnist_dir(tmp_path, gz=True, seed=1)
  dotted_gz = _write_mnist_dir(tmp_path, gz=True, dotted=True, seed=2)
  ds = data.load("mnist", "test", data_dir=tmp_path)
  np.testing.assert_array_equal(ds.labels, hyphen_gz["test"][1])
  assert not np.array_equal(hyphen_gz["test"][1], dotted_gz["test"][1])
  dotted = _write_mnist_dir(tmp_path, dotted=True, seed=3)
  ds = data.load("mnist", "test", data_dir=tmp_path)
  np.testing.assert_array_equal(ds.labels, dotted["test"][1])
  hyphen = _write_mnist_dir(tmp_path, seed=4)
  ds = data.load("mnist", "test", data_dir=tmp_path)
  np.testing.assert_array_equal(ds.labels, hyphen["test"][1])
  # One file per name, spellings mixed: each file found under its own.
  os.remove(tmp_path / "t10k-labels-idx1-ubyte")
  os.remove(tmp_path / "t10k-labels-idx1-ubyte.gz")
  ds = data.load("mnist", "test", data_dir=tmp_path)
  np.testing.assert_array_equal(
      ds.images[..., 0], hyphen["test"][0].astype(np.float32) / np.float32(255))
  np.testing.assert_array_equal(ds.labels, dotted["test"][1])


@pytest.mark.parametrize("layout", ["dotted_gz", "mnist_subdir", "cifar10"])
def test_reading_raw_files_writes_nothing(tmp_path, layout):
  name = "cifar10" if layout == "cifar10" else "mnist"
  if layout == "cifar10":
    _write_cifar10_dir(tmp_path / "cifar-10-batches-bin")
  else:
    _write_mnist_dir(tmp_path / ("mnist" if layout == "mnist_subdir" else ""),
                     gz=layout == "dotted_gz", dotted=layout == "dotted_gz")
  before = _listing(tmp_path)
  for split in ("train", "test"):
    data.load(name, split, data_dir=tmp_path)
    ds = data.load(name, split, data_dir=tmp_path, lazy=True)
    ds.images[:], ds.labels[:]  # pylint: disable=pointless-statement
  assert _listing(tmp_path) == before


def test_missing_raw_files_write_nothing(tmp_path):
  """A folder without the data (tfds consulted, download=False) stays as
  it was, whether or not tensorflow_datasets is installed."""
  (tmp_path / "notes.txt").write_text("mine")
  (tmp_path / "mnist").mkdir()
  before = _listing(tmp_path)
  for name in ("mnist", "fashion_mnist", "cifar10"):
    with pytest.raises(data.DatasetNotFoundError):
      data.load(name, "test", data_dir=tmp_path)
  assert _listing(tmp_path) == before


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_not_found_names_every_accepted_idx_name(tmp_path, name):
  with pytest.raises(data.DatasetNotFoundError) as info:
    data.load(name, "train", data_dir=tmp_path)
  message = str(info.value)
  for prefix in ("train-images", "train-labels", "t10k-images", "t10k-labels"):
    idx = "idx3" if "images" in prefix else "idx1"
    line = (f"       {prefix}-{idx}-ubyte or {prefix}.{idx}-ubyte or "
            f"{prefix}-{idx}-ubyte.gz or {prefix}.{idx}-ubyte.gz\n")
    assert line in message + "\n", message


def test_raw_files_take_precedence_over_tfds(tmp_path):
  tfds = pytest.importorskip("tensorflow_datasets")
  arrays = _write_mnist_dir(tmp_path)
  with tfds.testing.mock_data(num_examples=3,
                              policy=tfds.testing.MockPolicy.USE_CODE):
    ds = data.load("mnist", "test", data_dir=tmp_path)
  np.testing.assert_array_equal(ds.labels, arrays["test"][1])


def test_idx_exact_known_pixels(tmp_path):
  images = np.arange(2 * 28 * 28, dtype=np.int64).reshape(2, 28, 28) % 256
  _write_idx(tmp_path / "t10k-images-idx3-ubyte", images)
  _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", [7, 0], gz=True)
  ds = data.load("mnist", "test", data_dir=tmp_path)
  assert ds.images[0, 0, 5, 0] == np.float32(5) / np.float32(255)
  assert ds.images[1, 0, 0, 0] == np.float32(784 % 256) / np.float32(255)
  np.testing.assert_array_equal(ds.labels, [7, 0])


def test_corrupt_idx_raises_value_error(tmp_path):
  images, labels = _mnist_like(3, 0)
  img = tmp_path / "t10k-images-idx3-ubyte"
  lbl = tmp_path / "t10k-labels-idx1-ubyte"
  _write_idx(lbl, labels)

  _write_idx(img, images, magic=0x0801)  # a labels magic on an images file.
  with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte.*magic"):
    data.load("mnist", "test", data_dir=tmp_path)

  _write_idx(img, images)
  img.write_bytes(img.read_bytes()[:-10])  # truncated payload.
  with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte.*truncated"):
    data.load("mnist", "test", data_dir=tmp_path)

  img.write_bytes(b"\x00\x00")  # truncated header.
  with pytest.raises(ValueError, match="t10k-images-idx3-ubyte"):
    data.load("mnist", "test", data_dir=tmp_path)

  img.unlink()
  gz = _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images, gz=True)
  gz.write_bytes(gz.read_bytes()[:-30])  # truncated gzip stream.
  with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte\.gz"):
    data.load("mnist", "test", data_dir=tmp_path)

  _write_idx(gz, images[:2], gz=True)  # 2 images, 3 labels.
  with pytest.raises(ValueError, match="2 images.*3 labels"):
    data.load("mnist", "test", data_dir=tmp_path)

  _write_idx(gz, images, gz=True)
  _write_idx(lbl, [1, 2, 12])  # label out of range.
  with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte.*label 12"):
    data.load("mnist", "test", data_dir=tmp_path)


def test_incomplete_raw_files(tmp_path):
  images, _ = _mnist_like(2, 0)
  _write_idx(tmp_path / "train-images-idx3-ubyte", images)
  with pytest.raises(data.DatasetNotFoundError,
                     match="missing train-labels-idx1-ubyte"):
    data.load("mnist", "train", data_dir=tmp_path)
  _write_idx(tmp_path / "t10k-labels.idx1-ubyte.gz", [1, 2], gz=True)
  with pytest.raises(
      data.DatasetNotFoundError,
      match=(r"missing t10k-images-idx3-ubyte or t10k-images\.idx3-ubyte or "
             r"t10k-images-idx3-ubyte\.gz or t10k-images\.idx3-ubyte\.gz\.$")):
    data.load("mnist", "test", data_dir=tmp_path)


@pytest.mark.parametrize("subdir", ["cifar-10-batches-bin", ""])
def test_cifar10_binary_batches(tmp_path, subdir):
  expected = _write_cifar10_dir(tmp_path / subdir)
  for split in ("train", "test"):
    ds = data.load("cifar10", split, data_dir=tmp_path)
    images, labels = expected[split]
    assert ds.images.shape == (len(labels), 32, 32, 3)
    assert ds.images.dtype == np.float32 and ds.labels.dtype == np.int32
    np.testing.assert_array_equal(
        ds.images, images.astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(ds.labels, labels)
  assert data.load("cifar10", "train", data_dir=tmp_path).size == 15


def test_cifar10_known_pixel_layout(tmp_path):
  # One record: label 3, red plane 0.., green plane 1.., blue plane 2...
  chw = np.stack([np.full((32, 32), c, np.uint8) for c in (10, 20, 30)])
  chw[0, 1, 2] = 200  # red at row 1, column 2.
  record = bytes([3]) + chw.tobytes()
  (tmp_path / "test_batch.bin").write_bytes(record * 2)
  ds = data.load("cifar10", "test", data_dir=tmp_path)
  assert ds.images.shape == (2, 32, 32, 3)
  np.testing.assert_array_equal(ds.labels, [3, 3])
  np.testing.assert_array_equal(ds.images[0, 0, 0] * 255, [10, 20, 30])
  assert ds.images[1, 1, 2, 0] == np.float32(200) / np.float32(255)
  assert ds.images[1, 2, 1, 0] == np.float32(10) / np.float32(255)


def test_corrupt_cifar_batch(tmp_path):
  raw, _, _ = _cifar_records(2, 0)
  (tmp_path / "test_batch.bin").write_bytes(raw[:-1])
  with pytest.raises(ValueError, match=r"test_batch\.bin.*3073-byte"):
    data.load("cifar10", "test", data_dir=tmp_path)


def test_cifar100_binary(tmp_path):
  raw, images, labels = _cifar_records(4, 0, header=2, num_classes=100)
  directory = tmp_path / "cifar-100-binary"
  directory.mkdir()
  (directory / "test.bin").write_bytes(raw)
  ds = data.load("cifar100", "test", data_dir=tmp_path)
  assert ds.num_classes == 100
  np.testing.assert_array_equal(ds.labels, labels)
  np.testing.assert_array_equal(ds.images * 255, images.astype(np.float32))


# ---------------------------------------------------------------------------
# iterate_batches


@pytest.mark.parametrize("shuffle", [False, True])
def test_iterate_batches_covers_each_example_once(shuffle):
  ds = data.load("synthetic", "test", size=103)
  batches = list(data.iterate_batches(ds, 10, shuffle=shuffle, seed=1,
                                      epoch=2))
  assert [len(b[1]) for b in batches] == [10] * 10 + [3]
  images = np.concatenate([b[0] for b in batches])
  labels = np.concatenate([b[1] for b in batches])
  # Images identify examples: recover each one's index.
  flat = ds.images.reshape(ds.size, -1)
  index = [int(np.flatnonzero((flat == x.ravel()).all(1))[0]) for x in images]
  assert sorted(index) == list(range(103))
  np.testing.assert_array_equal(labels, ds.labels[index])
  assert (index == list(range(103))) != shuffle


def test_iterate_batches_deterministic_per_seed_and_epoch():
  x = np.arange(50, dtype=np.float32)[:, None]
  y = np.arange(50, dtype=np.int32)

  def order(**kw):
    return np.concatenate(
        [b[1] for b in data.iterate_batches((x, y), 8, shuffle=True, **kw)])

  np.testing.assert_array_equal(order(seed=0, epoch=1), order(seed=0, epoch=1))
  np.testing.assert_array_equal(
      order(seed=0, epoch=1),
      np.random.default_rng((0, 1)).permutation(50))
  assert not np.array_equal(order(seed=0, epoch=1), order(seed=0, epoch=2))
  assert not np.array_equal(order(seed=0, epoch=1), order(seed=1, epoch=1))
  dropped = list(data.iterate_batches((x, y), 8, drop_remainder=True))
  assert len(dropped) == 6 and all(len(b[1]) == 8 for b in dropped)
  assert len(list(data.iterate_batches((x, y), 50, drop_remainder=True))) == 1
  with pytest.raises(ValueError, match="batch_size"):
    data.iterate_batches((x, y), 0)
  with pytest.raises(ValueError, match="length"):
    data.iterate_batches((x, y[:3]), 4)


def test_iterate_batches_rows_and_first():
  x = np.arange(40, dtype=np.float32)[:, None]
  y = np.arange(40, dtype=np.int32)
  full = [b[1] for b in data.iterate_batches((x, y), 8, shuffle=True)]
  for rows in (slice(0, 4), slice(4, 8)):
    part = [b[1] for b in data.iterate_batches((x, y), 8, shuffle=True,
                                               rows=rows)]
    for f, p in zip(full, part):
      np.testing.assert_array_equal(p, f[rows])
  unshuffled = [b[1] for b in data.iterate_batches((x, y), 8,
                                                   rows=slice(4, 8))]
  np.testing.assert_array_equal(unshuffled[1], [12, 13, 14, 15])
  later = [b[1] for b in data.iterate_batches((x, y), 8, shuffle=True,
                                              first=3)]
  assert len(later) == 2
  np.testing.assert_array_equal(np.concatenate(later),
                                np.concatenate(full[3:]))


# ---------------------------------------------------------------------------
# lazy datasets (Records) and prefetch


def test_lazy_cifar_reads_only_what_is_indexed(tmp_path):
  expected = _write_cifar10_dir(tmp_path / "cifar-10-batches-bin")
  eager = data.load("cifar10", "train", data_dir=tmp_path)
  lazy = data.load("cifar10", "train", data_dir=tmp_path, lazy=True)
  images, labels = lazy.images, lazy.labels
  assert isinstance(images, data.Records) and lazy.size == 15
  assert images.shape == (15, 32, 32, 3) and images.dtype == np.float32
  assert labels.shape == (15,) and labels.dtype == np.int32
  assert images.rows_read == 0
  # Rows across the five batch files, in any order, repeated.
  idx = np.array([14, 0, 3, 3, 7])
  np.testing.assert_array_equal(images[idx], eager.images[idx])
  np.testing.assert_array_equal(labels[idx], eager.labels[idx])
  assert images.rows_read == 5  # the labels came with the images
  np.testing.assert_array_equal(images[-1], eager.images[-1])
  np.testing.assert_array_equal(images[2:9:3, 0, :, 1],
                                eager.images[2:9:3, 0, :, 1])
  mask = np.arange(15) % 4 == 0
  np.testing.assert_array_equal(labels[mask], eager.labels[mask])
  np.testing.assert_array_equal(np.asarray(images), eager.images)
  np.testing.assert_array_equal(expected["train"][1], np.asarray(labels))
  for bad in (15, -16, [0, 15]):
    with pytest.raises(IndexError, match="out of range"):
      images[bad]
  with pytest.raises(IndexError, match="boolean"):
    images[np.ones(3, bool)]
  assert data.load("cifar10", "train", data_dir=tmp_path, lazy=True,
                   limit=4).images.shape == (4, 32, 32, 3)


def test_lazy_fingerprint_follows_the_files(tmp_path):
  from advjax.evaluation import batching
  directory = tmp_path / "cifar-10-batches-bin"
  _write_cifar10_dir(directory)
  lazy = data.load("cifar10", "test", data_dir=tmp_path, lazy=True)
  before = batching.fingerprint_arrays(lazy.images, lazy.labels)
  assert lazy.images.rows_read == 0  # fingerprinted without reading
  raw, _, _ = _cifar_records(4, seed=99)
  (directory / "test_batch.bin").write_bytes(raw)
  again = data.load("cifar10", "test", data_dir=tmp_path, lazy=True)
  assert batching.fingerprint_arrays(again.images, again.labels) != before


def test_lazy_mnist_and_bad_labels_found_when_read(tmp_path):
  for gz in (False, True):
    directory = tmp_path / f"gz{gz}"
    arrays = _write_mnist_dir(directory, gz=gz)
    lazy = data.load("mnist", "test", data_dir=directory, lazy=True)
    images, labels = arrays["test"]
    np.testing.assert_array_equal(lazy.images[[3, 1]][..., 0] * 255,
                                  images[[3, 1]].astype(np.float32))
    np.testing.assert_array_equal(lazy.labels[:], labels)
  _write_idx(tmp_path / "gzFalse" / "t10k-labels-idx1-ubyte", [1, 2, 12, 3])
  lazy = data.load("mnist", "test", data_dir=tmp_path / "gzFalse", lazy=True)
  np.testing.assert_array_equal(lazy.labels[:2], [1, 2])  # not read yet
  with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte.*label 12"):
    lazy.labels[2]


def test_lazy_tfds_mock_data(tmp_path):
  tfds = pytest.importorskip("tensorflow_datasets")
  with tfds.testing.mock_data(num_examples=9,
                              policy=tfds.testing.MockPolicy.USE_CODE):
    eager = data.load("cifar10", "train", data_dir=tmp_path)
    lazy = data.load("cifar10", "train", data_dir=tmp_path, lazy=True)
    np.testing.assert_array_equal(lazy.images[[8, 2]], eager.images[[8, 2]])
    np.testing.assert_array_equal(lazy.labels[[8, 2]], eager.labels[[8, 2]])
    assert lazy.images.rows_read == 2
    assert "tfds:cifar10:train" in lazy.images.fingerprint


def test_prefetch_keeps_order_and_raises_where_the_item_was():
  assert list(data.prefetch(iter(range(7)), size=2)) == list(range(7))

  def failing():
    yield 1
    raise OSError("disk gone")

  got = data.prefetch(failing())
  assert next(got) == 1
  with pytest.raises(OSError, match="disk gone"):
    next(got)
  with pytest.raises(ValueError, match="size"):
    list(data.prefetch(iter([]), size=0))
  # Abandoned early: the thread stops.
  stream = data.prefetch(iter(range(1000)), size=1)
  assert next(stream) == 0
  stream.close()


def test_lazy_reads_each_batch_once_and_hands_out_fresh_arrays(tmp_path):
  _write_cifar10_dir(tmp_path / "cifar-10-batches-bin")
  lazy = data.load("cifar10", "test", data_dir=tmp_path, lazy=True)
  idx = [2, 0]
  first = lazy.images[idx]
  lazy.labels[idx]
  assert lazy.images.rows_read == 2  # one read for both fields
  first[:] = -1.  # the caller's copy
  again = lazy.images[idx]
  assert lazy.images.rows_read == 4 and again.min() >= 0.


# ---------------------------------------------------------------------------
# images of varying size: image folders, ImageNet through tfds

# File formats and modes cycled through a folder's images.
_IMAGE_KINDS = (("RGB", "jpg"), ("L", "png"), ("RGBA", "png"),
                ("CMYK", "JPEG"), ("P", "bmp"))


def _grey_level(label, i):
  return 10 + 20 * (4 * label + i)


def _write_image_folder(root, classes=("cat", "ant", "bee"), n=4):
  """`root/<class>/img<i>.<ext>`: constant grey images (a level per file,
  `_grey_level(rank of the class among the sorted names, i)`), of
  different sizes and modes."""
  image_lib = pytest.importorskip("PIL.Image")
  for cls in classes:
    label = sorted(classes).index(cls)
    os.makedirs(root / cls)
    for i in range(n):
      mode, ext = _IMAGE_KINDS[(label + i) % len(_IMAGE_KINDS)]
      level = _grey_level(label, i)
      rgb = np.full((17 + 3 * i, 23 + 5 * label, 3), level, np.uint8)
      image = image_lib.fromarray(rgb)
      if mode == "P":
        image = image.quantize(4)
      image.convert(mode).save(root / cls / f"img{i}.{ext}")
  return root


def _grey_levels(images):
  """The level (0..255) of each constant image `[N, H, W, 3]`."""
  flat = np.asarray(images).reshape(len(images), -1) * 255
  assert np.ptp(flat, axis=1).max() <= 1.  # constant, within rounding
  return np.round(flat.mean(1)).astype(int)


def test_image_registry_entries():
  for name, k in (("imagenet2012", 1000), ("imagenette", 10)):
    spec = data.DATASETS[name]
    assert (spec.num_classes, spec.source) == (k, "tfds")
    assert spec.splits == ("train", "validation")
    assert spec.image_shape == (224, 224, 3)
  spec = data.DATASETS["folder"]
  assert spec.source == "folder" and spec.image_shape == (224, 224, 3)
  assert "validation" in spec.splits
  assert data.load("digits", "test").class_names == ()


def test_folder_shapes_labels_modes_and_lazy_default(tmp_path):
  root = _write_image_folder(tmp_path / "validation")
  ds = data.load("folder", "validation", data_dir=tmp_path, size=16,
                 resize=None)
  assert isinstance(ds.images, data.Records)  # lazy by default
  assert ds.images.rows_read == 0
  assert ds.images.shape == (12, 16, 16, 3) and ds.images.dtype == np.float32
  assert (ds.num_classes, ds.name, ds.split) == (3, "folder", "validation")
  assert ds.class_names == ("ant", "bee", "cat")
  np.testing.assert_array_equal(ds.labels[:], np.repeat([0, 1, 2], 4))
  eager = data.load("folder", "validation", data_dir=root.parent, size=16,
                    resize=None, lazy=False)
  assert isinstance(eager.images, np.ndarray)
  assert eager.images.dtype == np.float32 and eager.labels.dtype == np.int32
  assert 0. <= eager.images.min() and eager.images.max() <= 1.
  np.testing.assert_array_equal(eager.images, ds.images[:])
  # Every mode (RGB JPEG, grey PNG, RGBA PNG, CMYK JPEG, palette BMP) comes
  # out RGB, each file's own grey level, in sorted-name order per class.
  np.testing.assert_array_equal(
      _grey_levels(eager.images),
      [_grey_level(k, i) for k in range(3) for i in range(4)])
  full = data.load("folder", "validation", data_dir=tmp_path, lazy=False)
  assert full.images.shape == (12, 224, 224, 3)  # size=224, resize=256
  np.testing.assert_allclose(full.images, np.broadcast_to(
      eager.images[:, :1, :1], full.images.shape), atol=1.5 / 255)
  assert data.load("folder", "validation", data_dir=tmp_path, size=8,
                   limit=5).size == 5


def test_folder_class_index_json_and_text(tmp_path):
  root = tmp_path / "imagenet"
  _write_image_folder(root / "val", classes=("n03", "n01", "n04"), n=2)
  wnids = ["n00", "n01", "n02", "n03", "n04"]
  json_index = tmp_path / "imagenet_class_index.json"
  json_index.write_text(json.dumps(
      {str(k): [w, f"name{k}"] for k, w in enumerate(wnids)}))
  text_index = tmp_path / "wnids.txt"
  text_index.write_text("\n".join(wnids) + "\n")
  for index, names in ((json_index, tuple(f"name{k}" for k in range(5))),
                       (text_index, tuple(wnids))):
    ds = data.load("folder", "validation", data_dir=root, class_index=index,
                   size=8, resize=None)
    assert ds.num_classes == 5 and ds.class_names == names
    np.testing.assert_array_equal(ds.labels[:], [1, 1, 3, 3, 4, 4])
    np.testing.assert_array_equal(  # folders by label: n01, n03, n04.
        _grey_levels(ds.images[:]),
        [_grey_level(k, i) for k in range(3) for i in range(2)])
  text_index.write_text("n00\nn01\nn03\n")
  with pytest.raises(ValueError, match=r"'n04'.*not in the class index"):
    data.load("folder", "validation", data_dir=root, class_index=text_index)
  for bad in ('{"0": ["n01", "a"], "2": ["n03", "b"]}', '{"0": 7}', "{x",
              '["n01"]'):
    json_index.write_text(bad)
    with pytest.raises(ValueError, match="imagenet_class_index.json"):
      data.load("folder", "validation", data_dir=root, class_index=json_index)
  text_index.write_text("n01\n\nn03\nn04\n")
  with pytest.raises(ValueError, match="line 2 is empty"):
    data.load("folder", "validation", data_dir=root, class_index=text_index)
  text_index.write_text("n01\nn03\nn04\nn01\n")
  with pytest.raises(ValueError, match="'n01' is given for labels 0 and 3"):
    data.load("folder", "validation", data_dir=root, class_index=text_index)
  with pytest.raises(FileNotFoundError, match="missing.json"):
    data.load("folder", "validation", data_dir=root,
              class_index=tmp_path / "missing.json")


def test_folder_subset_selector(tmp_path):
  _write_image_folder(tmp_path, n=4)  # classes directly in data_dir
  kw = dict(data_dir=tmp_path, size=8, resize=None)
  ds = data.load("folder", "train", classes=2, per_class=3, **kw)
  assert ds.size == 6 and ds.num_classes == 3
  np.testing.assert_array_equal(ds.labels[:], [0, 0, 0, 1, 1, 1])
  levels = [_grey_level(k, i) for k in range(2) for i in range(3)]
  np.testing.assert_array_equal(_grey_levels(ds.images[:]), levels)
  again = data.load("folder", "train", classes=2, per_class=3, lazy=False,
                    **kw)
  np.testing.assert_array_equal(again.images, ds.images[:])
  assert again.images.shape == (6, 8, 8, 3)
  # A list of names and labels, in any order: rows by label.
  ds = data.load("folder", "train", classes=["cat", 0], per_class=1, **kw)
  np.testing.assert_array_equal(ds.labels[:], [0, 2])
  np.testing.assert_array_equal(_grey_levels(ds.images[:]),
                                [_grey_level(0, 0), _grey_level(2, 0)])
  assert data.load("folder", "train", per_class=2, **kw).size == 6
  assert data.load("folder", "train", classes=[1], **kw).size == 4
  os.remove(tmp_path / "bee" / "img3.bmp")  # bee: 3 images left
  with pytest.raises(ValueError, match=r"class 'bee' \(label 1\) has only 3"):
    data.load("folder", "train", per_class=4, **kw)
  for bad, error in ((0, ValueError), (4, ValueError), (["dog"], ValueError),
                     ([5], ValueError), ([1, "bee"], ValueError),
                     ("cat", TypeError), ([], ValueError)):
    with pytest.raises(error, match="classes"):
      data.load("folder", "train", classes=bad, **kw)
  for bad, error in ((0, ValueError), (1.5, TypeError)):
    with pytest.raises(error, match="per_class"):
      data.load("folder", "train", per_class=bad, **kw)


def test_folder_lazy_opens_only_the_rows_read(tmp_path, monkeypatch):
  image_lib = pytest.importorskip("PIL.Image")
  _write_image_folder(tmp_path / "train")
  opened = []
  real_open = image_lib.open

  def counting_open(path, *args, **kwargs):
    opened.append(os.path.basename(os.path.dirname(path)) + "/" +
                  os.path.basename(path))
    return real_open(path, *args, **kwargs)

  monkeypatch.setattr(image_lib, "open", counting_open)
  ds = data.load("folder", "train", data_dir=tmp_path, size=8, resize=None)
  assert opened == [] and ds.images.rows_read == 0
  images = ds.images[[5, 0]]
  np.testing.assert_array_equal(ds.labels[[5, 0]], [1, 0])
  assert ds.images.rows_read == 2
  assert sorted(opened) == ["ant/img0.jpg", "bee/img1.png"]
  np.testing.assert_array_equal(_grey_levels(images),
                                [_grey_level(1, 1), _grey_level(0, 0)])
  fingerprint = ds.images.fingerprint  # stats the files, opens none
  assert len(opened) == 2 and fingerprint.startswith("images:folder:")
  other = data.load("folder", "train", data_dir=tmp_path, size=8)
  assert other.images.fingerprint != fingerprint  # the crop is part of it


@pytest.mark.parametrize("portrait", [False, True])
def test_folder_resize_and_centre_crop_geometry(tmp_path, portrait):
  image_lib = pytest.importorskip("PIL.Image")

  def save(name, array):
    array = array.transpose(1, 0, 2) if portrait else array
    os.makedirs(tmp_path / "c", exist_ok=True)
    image_lib.fromarray(np.ascontiguousarray(array)).save(tmp_path / "c" /
                                                          name)

  def crop(name, **kw):
    ds = data.load("folder", "test", data_dir=tmp_path, lazy=False, **kw)
    image = ds.images[sorted(os.listdir(tmp_path / "c")).index(name)]
    return image.transpose(1, 0, 2) if portrait else image

  # 120 wide, 80 high: left half black, right half white.
  halves = np.zeros((80, 120, 3), np.uint8)
  halves[:, 60:] = 255
  save("a_halves.png", halves)
  # Shorter side 80 -> 40: 60 x 40, an exact 2x bilinear (triangle)
  # reduction: weights 1/8, 3/8, 3/8, 1/8 over 4 source columns. The
  # 20 x 20 centre crop starts at column (60 - 20) / 2 = 20, so the edge
  # (resized column 30) falls between crop columns 9 and 10: column 9
  # sees one white source column (1/8), column 10 one black (7/8).
  got = crop("a_halves.png", size=20, resize=40)
  assert got.shape == (20, 20, 3)
  expected = np.zeros(20, np.float32)
  expected[9], expected[10], expected[11:] = 1 / 8, 7 / 8, 1.
  np.testing.assert_allclose(got, np.broadcast_to(expected[None, :, None],
                                                  got.shape), atol=1 / 255)
  # No resize (shorter side already 80): the crop alone, exactly.
  got = crop("a_halves.png", size=80, resize=None)
  expected = np.zeros(80, np.float32)
  expected[40:] = 1.
  np.testing.assert_array_equal(got, np.broadcast_to(
      expected[None, :, None], got.shape))
  # Odd margins round as torchvision does: (41 - 40) / 2 = 0.5 -> 0.
  ramp = np.broadcast_to((np.arange(41) * 6).astype(np.uint8)[None, :, None],
                         (40, 41, 3))
  save("b_ramp.png", ramp)
  got = crop("b_ramp.png", size=40, resize=None)
  np.testing.assert_allclose(got * 255, np.broadcast_to(
      ramp[:, :40], got.shape), atol=1e-4)


def test_folder_layout_split_folders(tmp_path):
  _write_image_folder(tmp_path / "val", classes=("x", "y"), n=1)
  _write_image_folder(tmp_path / "train", classes=("p", "q", "r"), n=1)
  kw = dict(data_dir=tmp_path, size=8, resize=None)
  assert data.load("folder", "validation", **kw).class_names == ("x", "y")
  assert data.load("folder", "train", **kw).class_names == ("p", "q", "r")
  with pytest.raises(data.DatasetNotFoundError,
                     match=r"split folders train, val but none for split "
                           r"'test'"):
    data.load("folder", "test", **kw)


def test_folder_errors(tmp_path):
  image_lib = pytest.importorskip("PIL.Image")
  kw = dict(size=8, resize=None)
  with pytest.raises(data.DatasetNotFoundError, match="needs data_dir"):
    data.load("folder", "train", **kw)
  with pytest.raises(data.DatasetNotFoundError, match="not a directory"):
    data.load("folder", "train", data_dir=tmp_path / "nowhere", **kw)
  split = tmp_path / "train"
  split.mkdir()
  with pytest.raises(data.DatasetNotFoundError) as info:
    data.load("folder", "train", data_dir=tmp_path, **kw)
  assert str(split) in str(info.value)
  assert "<class_name>/<image>.jpg" in str(info.value)
  image_lib.fromarray(np.zeros((4, 4, 3), np.uint8)).save(split / "loose.png")
  with pytest.raises(data.DatasetNotFoundError,
                     match="holds 1 images directly"):
    data.load("folder", "train", data_dir=tmp_path, **kw)
  (split / "cls").mkdir()
  (split / "cls" / "notes.txt").write_text("not an image")
  with pytest.raises(data.DatasetNotFoundError,
                     match=r"(?s)no images in the 1 class folders of .*train"):
    data.load("folder", "train", data_dir=tmp_path, **kw)
  # A corrupt image fails when its row is read, naming the file.
  image_lib.fromarray(np.zeros((4, 6, 3), np.uint8)).save(split / "cls" /
                                                          "a.png")
  (split / "cls" / "b.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
  ds = data.load("folder", "train", data_dir=tmp_path, **kw)
  assert ds.images[0].shape == (8, 8, 3)
  with pytest.raises(ValueError, match=r"Cannot decode image .*cls.b\.jpg"):
    ds.images[1]
  with pytest.raises(ValueError, match=r"b\.jpg"):
    data.load("folder", "train", data_dir=tmp_path, lazy=False, **kw)
  for bad in (dict(size=0), dict(size=2.5), dict(size=True),
              dict(size=16, resize=8), dict(resize="256")):
    with pytest.raises(ValueError, match="size"):
      data.load("folder", "train", data_dir=tmp_path, **bad)
  with pytest.raises(TypeError, match="unexpected keyword"):
    data.load("imagenette", class_index="x.json")


@pytest.mark.parametrize("name,num_classes", [("imagenet2012", 1000),
                                              ("imagenette", 10)])
def test_imagenet_tfds_mock_data(tmp_path, name, num_classes):
  tfds = pytest.importorskip("tensorflow_datasets")
  with tfds.testing.mock_data(num_examples=12,
                              policy=tfds.testing.MockPolicy.USE_CODE):
    source = tfds.data_source(name, split="validation")
    shapes = {np.asarray(source[i]["image"]).shape for i in range(12)}
    labels = np.array([source[i]["label"] for i in range(12)])
    names = tuple(source.dataset_info.features["label"].names)
    ds = data.load(name, "validation", data_dir=tmp_path, size=16, resize=20)
    assert isinstance(ds.images, data.Records)  # lazy by default
    first = ds.images[[3, 7]]
    assert ds.images.rows_read == 2
    eager = data.load(name, "validation", data_dir=tmp_path, size=16,
                      resize=20, lazy=False)
    # The first two classes present, one image each (the first by index).
    present = np.unique(labels)[:2]
    sub = data.load(name, "validation", data_dir=tmp_path, size=16,
                    resize=None, classes=[names[present[1]], present[0]],
                    per_class=1, lazy=False)
  assert len(shapes) > 1  # mock images vary in size; all come out 16x16
  assert eager.images.shape == (12, 16, 16, 3)
  assert eager.images.dtype == np.float32 and eager.labels.dtype == np.int32
  assert 0. <= eager.images.min() and eager.images.max() <= 1.
  np.testing.assert_array_equal(eager.labels, labels)
  np.testing.assert_array_equal(first, eager.images[[3, 7]])
  assert eager.num_classes == num_classes and eager.class_names == names
  assert "tfds:" in ds.images.fingerprint
  np.testing.assert_array_equal(sub.labels, present)
  assert sub.images.shape == (2, 16, 16, 3)


def test_imagenette_prepared_copy_subset(tmp_path, monkeypatch):
  # One image per label (each a different level), so records are known
  # however tfds shuffles them; labels read without decoding the images.
  examples = {split: [(np.full((12, 12, 3), 20 * k + 5 * (split == "train"),
                               np.uint8), k) for k in range(6)]
              for split in ("train", "validation")}
  _prepare_tfds(monkeypatch, tmp_path, "imagenette", examples)
  monkeypatch.undo()
  kw = dict(data_dir=tmp_path, size=12, resize=None)
  sub = data.load("imagenette", "validation", classes=[4, 1], per_class=1,
                  lazy=False, **kw)
  np.testing.assert_array_equal(sub.labels, [1, 4])
  np.testing.assert_array_equal(_grey_levels(sub.images), [20, 80])
  assert data.load("imagenette", "train", classes=3, **kw).size == 3
  with pytest.raises(ValueError, match=r"has only 1 images"):
    data.load("imagenette", "validation", per_class=2, **kw)


def test_imagenet2012_not_prepared_says_manual_download(tmp_path):
  pytest.importorskip("tensorflow_datasets")
  with pytest.raises(data.DatasetNotFoundError) as info:
    data.load("imagenet2012", "validation", data_dir=tmp_path)
  message = str(info.value)
  for phrase in ("'imagenet2012'", "downloaded manually",
                 "ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar",
                 os.path.join(str(tmp_path), "downloads", "manual"),
                 "image-net.org", "download_and_prepare()", "'folder'"):
    assert phrase in message
  with pytest.raises(data.DatasetNotFoundError, match="imagenette"):
    data.load("imagenette", "validation", data_dir=tmp_path)


# ---------------------------------------------------------------------------
# GTSRB (raw folders)

_GT_HEADER = "Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId"


def _write_gtsrb(root, *, test_labels=True):
  """A tiny GTSRB layout: classes 0 and 2 with two .ppm training images
  each, three test images. Each image is a grey border around a box of
  level 40 + 4 * label + index; the csv boxes mark that box."""
  from PIL import Image  # pylint: disable=import-outside-toplevel

  def ppm(path, level, w, h):
    a = np.full((h, w, 3), 250, np.uint8)
    a[2:h - 2, 3:w - 3] = level
    Image.fromarray(a).save(path, format="PPM")
    return f"{os.path.basename(path)};{w};{h};3;2;{w - 4};{h - 3}"

  train = root / "GTSRB" / "Final_Training" / "Images"
  for c in (0, 2):
    folder = train / f"{c:05d}"
    folder.mkdir(parents=True)
    rows = [ppm(folder / f"00000_0000{i}.ppm", 40 + 4 * c + i, 14 + i, 12)
            + f";{c}" for i in range(2)]
    (folder / f"GT-{c:05d}.csv").write_text("\n".join([_GT_HEADER] + rows)
                                             + "\n")
  test = root / "GTSRB" / "Final_Test" / "Images"
  test.mkdir(parents=True)
  rows = [ppm(test / f"0000{i}.ppm", 45 + 4 * c, 12, 13) + f";{c}"
          for i, c in enumerate((2, 0, 42))]
  if test_labels:  # GTSRB_Final_Test_GT.zip unzips it next to GTSRB/
    (root / "GT-final_test.csv").write_text(
        "\n".join([_GT_HEADER] + rows) + "\n")
  (test / "GT-final_test.test.csv").write_text(
      "Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2\n")


def test_gtsrb_raw_folders(tmp_path):
  _write_gtsrb(tmp_path)
  train = data.load("gtsrb", "train", data_dir=tmp_path)
  assert (train.size, train.num_classes, train.image_shape) == (4, 43,
                                                                (32, 32, 3))
  assert train.images.dtype == np.float32
  np.testing.assert_array_equal(train.labels, [0, 0, 2, 2])
  # Cropped to the box: one flat level, the border gone.
  np.testing.assert_allclose(train.images * 255,
                             np.array([40, 41, 48, 49])[:, None, None, None]
                             * np.ones((1, 32, 32, 3)), atol=0.6)
  test = data.load("gtsrb", "test", data_dir=tmp_path / "GTSRB", size=8)
  np.testing.assert_array_equal(test.labels, [2, 0, 42])
  assert test.image_shape == (8, 8, 3)
  whole = data.load("gtsrb", "train", data_dir=tmp_path, roi=False,
                    lazy=True, limit=3)
  assert whole.size == 3
  assert whole.images[:1].max() > 0.9  # the border is kept
  with pytest.raises(TypeError, match="unexpected keyword"):
    data.load("gtsrb", "train", data_dir=tmp_path, resize=40)


def test_gtsrb_missing_data_says_how_to_get_it(tmp_path):
  for data_dir in (None, tmp_path):
    with pytest.raises(data.DatasetNotFoundError) as info:
      data.load("gtsrb", "train", data_dir=data_dir)
    for phrase in ("'gtsrb'", "GTSRB_Final_Training_Images.zip",
                   "GTSRB_Final_Test_GT.zip", "benchmark.ini.rub.de",
                   "Final_Training/Images/<class>", "--data-dir"):
      assert phrase in str(info.value)
  _write_gtsrb(tmp_path, test_labels=False)
  with pytest.raises(data.DatasetNotFoundError, match="GT-final_test.csv"):
    data.load("gtsrb", "test", data_dir=tmp_path)
  os.remove(tmp_path / "GTSRB" / "Final_Training" / "Images" / "00002" /
            "00000_00001.ppm")
  with pytest.raises(data.DatasetNotFoundError, match="00000_00001.ppm"):
    data.load("gtsrb", "train", data_dir=tmp_path)
  (tmp_path / "GTSRB" / "Final_Training" / "Images" / "00002" /
   "GT-00002.csv").write_text("Filename;ClassId\n")
  with pytest.raises(ValueError, match="ground-truth csv"):
    data.load("gtsrb", "train", data_dir=tmp_path)


def test_epoch_host_bytes_known_answers():
  # In memory: dataset + this process's rows of a batch + the permutation.
  assert data.epoch_host_bytes(10, 100, 8, 2, lazy=False) == (
      100 * 10 + 4 * 10 + 8 * 100)
  # Lazily: (prefetch + 2) batches of its rows + the permutation.
  assert data.epoch_host_bytes(10, 100, 8, 2, lazy=True) == 4 * 4 * 10 + 800
  assert data.epoch_host_bytes(10, 100, 8, 2, lazy=True,
                               prefetch_size=4) == 6 * 4 * 10 + 800


def test_write_random_cifar10_is_read_back(tmp_path):
  data.write_random_cifar10(str(tmp_path), 23, seed=1)
  ds = data.load("cifar10", "train", data_dir=str(tmp_path))
  assert ds.size == 23 and ds.images.shape == (23, 32, 32, 3)
  assert ds.labels.min() >= 0 and ds.labels.max() < 10
  again = tmp_path / "again"
  again.mkdir()
  data.write_random_cifar10(str(again), 23, seed=1)
  for name in data.DATASETS["cifar10"].raw_files["train"]:
    assert (tmp_path / name).read_bytes() == (again / name).read_bytes()
