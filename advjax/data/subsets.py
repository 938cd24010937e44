"""Parts of a dataset: held-out rows, a subset of classes.

`hold_out(dataset, n)` cuts the last `n` rows off (a validation split held
out of a training split for early stopping); `select_classes(dataset,
classes)` keeps the rows of some classes, relabelled `0 .. k-1` in the
order given (Goodfellow et al.'s logistic regression on 3s and 7s);
`select_examples(labels, n, where=)` picks `n` rows, one of each class
first (the sources of a per-class figure, Carlini & Wagner's);
`first_per_class(labels, n, eligible)` picks the first `n` (eligible: say
correctly classified) rows of each class, as studies on "5 images per
class the model gets right" do.
"""
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from advjax.data.core import Dataset

__all__ = ["hold_out", "select_classes", "select_examples", "first_per_class"]


def hold_out(dataset: Dataset, n: int,
             seed: Optional[int] = None) -> Tuple[Dataset, Dataset]:
  """`(rest, held)`: the dataset without `n` of its rows, and those rows:
  the last `n`, or with `seed` a random sample of `n`
  (`np.random.default_rng(seed).permutation`); both keep the rows' order.

  Raises:
    ValueError: `n` outside `[1, N)`.
  """
  size = int(np.shape(dataset.labels)[0])
  if not 1 <= n < size:
    raise ValueError(f"hold_out: n ({n}) must be >= 1 and smaller than the "
                     f"dataset ({size} rows).")
  images, labels = np.asarray(dataset.images), np.asarray(dataset.labels)
  cut = lambda s: dataset._replace(images=images[s], labels=labels[s])
  if seed is None:
    return cut(slice(0, size - n)), cut(slice(size - n, None))
  order = np.random.default_rng(seed).permutation(size)
  return cut(np.sort(order[n:])), cut(np.sort(order[:n]))


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


def select_examples(labels, n: int, *, where=None) -> np.ndarray:
  """Indices of `n` rows where `where` holds: the first such row of each
  class (in class order) first, then the others in order.

  Args:
    labels: `[N]` int class labels.
    n: how many to pick (fewer when fewer rows qualify).
    where: `[N]` bool, the rows that may be picked (e.g. those every model
      classifies correctly); None: all.

  Returns:
    `[min(n, qualifying rows)]` int64 indices; its first entries are one
    row per class present, so `labels[idx[:k]]` is `0, 1, ...` when each
    of the k classes qualifies.
  """
  labels = np.asarray(labels)
  ok = np.flatnonzero(np.ones(labels.shape, bool) if where is None
                      else np.asarray(where, bool))
  firsts = [int(ok[labels[ok] == c][0]) for c in np.unique(labels[ok])]
  chosen = set(firsts)
  rest = [int(i) for i in ok if i not in chosen]
  return np.asarray((firsts + rest)[:n], np.int64)


def first_per_class(labels, n: int, eligible=None
                    ) -> Tuple[np.ndarray, Dict[int, int]]:
  """The rows of the first `n` eligible examples of each class, in order.

  Args:
    labels: `[N]` int labels.
    n: rows per class (>= 0).
    eligible: `[N]` bool, which rows may be picked (e.g. `pred == labels`,
      the correctly classified); None: all.

  Returns:
    `(rows, short)`: `rows` the picked indices (int, grouped by class in
    increasing label order, each group in row order); `short` maps each
    class that has fewer than `n` eligible rows to how many it has.

  Raises:
    ValueError: `n` < 0, or `eligible` of another shape than `labels`.
  """
  labels = np.asarray(labels)
  if n < 0:
    raise ValueError(f"first_per_class: n must be >= 0, got {n}.")
  eligible = (np.ones(labels.shape, bool) if eligible is None
              else np.asarray(eligible, bool))
  if eligible.shape != labels.shape:
    raise ValueError(f"first_per_class: eligible {eligible.shape} and "
                     f"labels {labels.shape} differ in shape.")
  rows, short = [], {}
  for c in np.unique(labels):
    idx = np.flatnonzero((labels == c) & eligible)
    if len(idx) < n:
      short[int(c)] = int(len(idx))
    rows.append(idx[:n])
  return (np.concatenate(rows) if rows else np.zeros(0, np.int64)), short
