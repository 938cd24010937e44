"""Images of varying size (ImageNet from tfds, image folders, GTSRB): the
crop geometry check, one image decoded to a square uint8 crop (RGB, the
shorter side resized, a centre crop: torchvision's `Resize`, `CenterCrop`),
many decoded in threads, and the `classes=` / `per_class=` selection of a
deterministic subset.
"""
import concurrent.futures
import os
from collections.abc import Sequence
from typing import Any, Optional, Tuple

import numpy as np

__all__ = []


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
