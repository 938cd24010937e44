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

The package, one module per source; each module imports only those above it
in the table:

| module | holds |
|---|---|
| `core` | `Dataset`, `DatasetSpec`, `DatasetNotFoundError`, the registry `DATASETS` (with the raw file names), `list_datasets` |
| `records` | `Records` (a field read on access), `as_array`; `_Reader`, every source's random access, and what readers share (label checks, `pread` of records, fingerprints) |
| `images` | images of varying size decoded, resized and centre-cropped (in threads); the `classes=` / `per_class=` subset |
| `embedded` | `digits`, `synthetic`; `mnist_like_images` |
| `raw` | MNIST IDX files and CIFAR binary batches in `data_dir`, read record by record |
| `tfds_source` | tensorflow_datasets copies (array_record, `tfds.data_source`; ImageNet's decoded and cropped); the not-found error that says how to get one |
| `folder` | `folder`: images in ImageFolder layout, an optional class index |
| `gtsrb` | `gtsrb`: GTSRB's raw folders and ground-truth csv files |
| `batches` | `iterate_batches`, `prefetch` |
| `subsets` | `hold_out` (the last rows held out), `select_classes` (some classes, relabelled), `select_examples` (n rows, one of each class first), `first_per_class` (the first n eligible rows of each class) |
| `loading` | `load`: a name dispatched to its source, its arguments checked |
"""
from advjax.data.batches import epoch_host_bytes, iterate_batches, prefetch
from advjax.data.core import (DATASETS, Dataset, DatasetNotFoundError,
                              DatasetSpec, list_datasets)
from advjax.data.embedded import mnist_like_images
from advjax.data.loading import load
from advjax.data.records import Records, as_array
from advjax.data.raw import write_random_cifar10
from advjax.data.subsets import (first_per_class, hold_out, select_classes,
                                 select_examples)

__all__ = [
    "mnist_like_images",
    "Dataset", "DatasetSpec", "DatasetNotFoundError", "DATASETS",
    "list_datasets", "load", "iterate_batches", "prefetch", "Records",
    "as_array", "hold_out", "select_classes", "select_examples",
    "first_per_class", "write_random_cifar10", "epoch_host_bytes",
]
