"""The `gtsrb` source: the raw folders of the German Traffic Sign Recognition
Benchmark (`Final_Training/Images/<class>/*.ppm` with `GT-<class>.csv`,
`Final_Test/Images/*.ppm` with `GT-final_test.csv`; tensorflow-datasets has
no GTSRB builder), each sign cropped to its annotated box and resized when
its row is read (`_GtsrbReader`).
"""
import concurrent.futures
import os
from typing import Optional

import numpy as np

from advjax.data.core import DATASETS, DatasetNotFoundError
from advjax.data.folder import _FolderReader
from advjax.data.images import _DECODE_THREADS, _crop_geometry
from advjax.data.records import _check_labels, _Reader

__all__ = []


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
