"""Batches of a loaded dataset: `iterate_batches` (numpy batches covering it
once, reproducibly shuffled by `(seed, epoch)`, optionally only one
process's rows of each, and with `Records` only those rows read) and
`prefetch` (an iterator run ahead in a background thread).
"""
import queue
import threading
from collections.abc import Iterator
from typing import Any, Optional, Tuple, Union

import numpy as np

from advjax.data.core import Dataset
from advjax.data.records import as_array

__all__ = ["iterate_batches", "prefetch", "epoch_host_bytes"]


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


def epoch_host_bytes(example_bytes: int, n: int, batch_size: int,
                     processes: int, lazy: bool, prefetch_size: int = 2
                     ) -> int:
  """Host bytes one of `processes` processes holds for a shuffled epoch of
  `n` examples of `example_bytes` each (its rows of every global batch).

  In memory, the whole dataset, the batch at hand and the epoch's
  permutation (int64 per example); lazily (`data.Records` read through
  `prefetch`), the batch in use, the `prefetch_size` batches queued and
  the one being read, plus the permutation.

  Args:
    example_bytes: bytes of one decoded example (float32 HxWxC: 4 H W C).
    n: examples in the dataset.
    batch_size: the global batch size (each process holds
      `batch_size // processes` rows of it).
    processes: processes sharing every batch.
    lazy: read record by record instead of into memory.
    prefetch_size: `prefetch`'s `size`.

  Returns:
    The bytes, an accounting (not a measurement).
  """
  rows = batch_size // processes
  if not lazy:
    return n * example_bytes + rows * example_bytes + 8 * n
  return (prefetch_size + 2) * rows * example_bytes + 8 * n
