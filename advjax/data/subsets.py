"""Parts of a dataset: held-out rows, a subset of classes.

`hold_out(dataset, n)` cuts the last `n` rows off (a validation split held
out of a training split for early stopping); `random_split(dataset, n,
seed)` cuts `n` rows drawn at random from the others (Szegedy et al.'s
disjoint halves P1 and P2 of a training split); `select_classes(dataset,
classes)` keeps the rows of some classes, relabelled `0 .. k-1` in the
order given (Goodfellow et al.'s logistic regression on 3s and 7s).
"""
from typing import Sequence, Tuple

import numpy as np

from advjax.data.core import Dataset

__all__ = ["hold_out", "random_split", "select_classes"]


def hold_out(dataset: Dataset, n: int) -> Tuple[Dataset, Dataset]:
  """`(rest, held)`: the dataset without its last `n` rows, and those rows.

  Raises:
    ValueError: `n` outside `[1, N)`.
  """
  size = int(np.shape(dataset.labels)[0])
  if not 1 <= n < size:
    raise ValueError(f"hold_out: n ({n}) must be >= 1 and smaller than the "
                     f"dataset ({size} rows).")
  images, labels = np.asarray(dataset.images), np.asarray(dataset.labels)
  cut = lambda s: dataset._replace(images=images[s], labels=labels[s])
  return cut(slice(0, size - n)), cut(slice(size - n, None))


def random_split(dataset: Dataset, n: int,
                 seed: int) -> Tuple[Dataset, Dataset]:
  """`(drawn, rest)`: `n` rows drawn at random (a permutation of `seed`)
  and the other rows, each in the dataset's order; disjoint.

  Raises:
    ValueError: `n` outside `[1, N)`.
  """
  size = int(np.shape(dataset.labels)[0])
  if not 1 <= n < size:
    raise ValueError(f"random_split: n ({n}) must be >= 1 and smaller than "
                     f"the dataset ({size} rows).")
  order = np.random.default_rng(seed).permutation(size)
  images, labels = np.asarray(dataset.images), np.asarray(dataset.labels)
  cut = lambda rows: dataset._replace(images=images[np.sort(rows)],
                                      labels=labels[np.sort(rows)])
  return cut(order[:n]), cut(order[n:])


def select_classes(dataset: Dataset, classes: Sequence[int]) -> Dataset:
  """The rows of `classes`, relabelled `classes[i] -> i` (int32), with
  `len(classes)` classes named after the originals.

  Raises:
    ValueError: repeated classes, fewer than one, or no row of any.
  """
  classes = tuple(int(c) for c in classes)
  if not classes or len(set(classes)) != len(classes):
    raise ValueError(f"select_classes: need distinct classes, got "
                     f"{classes}.")
  labels = np.asarray(dataset.labels)
  keep = np.isin(labels, classes)
  if not keep.any():
    raise ValueError(f"select_classes: no rows of classes {classes} in "
                     f"{dataset.name} {dataset.split}.")
  relabel = np.full(max(max(classes), int(labels.max())) + 1, -1, np.int32)
  relabel[list(classes)] = np.arange(len(classes))
  names = tuple(dataset.class_names[c] if dataset.class_names else str(c)
                for c in classes)
  return dataset._replace(images=np.asarray(dataset.images)[keep],
                          labels=relabel[labels[keep]],
                          num_classes=len(classes), class_names=names)
