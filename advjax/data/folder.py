"""The `folder` source: a directory of images in ImageFolder layout
(`<split>/<class_name>/<image>.jpg`, or `<class_name>/<image>.jpg`), with
an optional class index (`imagenet_class_index.json`, or one folder name per
line) for true ImageNet labels; each image is decoded and cropped when its
row is read (`_FolderReader`).
"""
import hashlib
import json
import os
from collections.abc import Sequence
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from advjax.data.core import DatasetNotFoundError
from advjax.data.images import _crop_geometry, _decode_many, _select
from advjax.data.records import _Reader

__all__ = []


_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif",
                     ".tiff", ".webp")
# Folder names a split may have below `data_dir`, in the order looked for.
_SPLIT_FOLDERS = {"train": ("train",), "validation": ("validation", "val"),
                  "test": ("test",)}
_FOLDER_LAYOUT = ("DIR/<split>/<class_name>/<image>.jpg (split folders: "
                  "train, validation or val, test), or "
                  "DIR/<class_name>/<image>.jpg")


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
