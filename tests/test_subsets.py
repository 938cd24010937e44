"""Tests for advjax/data/subsets.py."""
import numpy as np
import pytest

from advjax import data


def test_hold_out_and_select_classes():
  train = data.load("digits", "train")
  rest, held = data.hold_out(train, 200)
  assert held.size == 200 and rest.size == train.size - 200
  np.testing.assert_array_equal(held.images, train.images[-200:])
  np.testing.assert_array_equal(rest.labels, train.labels[:-200])
  for n in (0, train.size):
    with pytest.raises(ValueError, match="smaller than the dataset"):
      data.hold_out(train, n)
  pair = data.select_classes(train, (3, 7))
  keep = np.isin(train.labels, (3, 7))
  assert pair.num_classes == 2 and pair.class_names == ("3", "7")
  assert pair.labels.dtype == np.int32 and set(pair.labels) == {0, 1}
  np.testing.assert_array_equal(pair.labels == 1, train.labels[keep] == 7)
  np.testing.assert_array_equal(pair.images, train.images[keep])
  three = data.select_classes(train, (9, 0, 4))  # in the order given
  np.testing.assert_array_equal(
      np.array([9, 0, 4])[three.labels], train.labels[np.isin(train.labels,
                                                              (9, 0, 4))])
  for bad, match in (((3, 3), "distinct"), ((), "distinct"),
                     ((42,), "no rows")):
    with pytest.raises(ValueError, match=match):
      data.select_classes(train, bad)


def test_random_split_is_a_disjoint_seeded_partition():
  ds = data.load("synthetic", "train", limit=64)
  ids = np.arange(64, dtype=np.float32).reshape(64, 1, 1, 1)
  ds = ds._replace(images=np.broadcast_to(ids, (64,) + ds.images.shape[1:]))
  first, rest = data.random_split(ds, 20, seed=3)
  a, b = first.images[:, 0, 0, 0], rest.images[:, 0, 0, 0]
  assert len(a) == 20 and len(b) == 44
  assert np.all(np.diff(a) > 0) and np.all(np.diff(b) > 0)  # kept in order
  assert set(a) | set(b) == set(range(64)) and not set(a) & set(b)
  np.testing.assert_array_equal(first.labels, ds.labels[a.astype(int)])
  again, _ = data.random_split(ds, 20, seed=3)
  other, _ = data.random_split(ds, 20, seed=4)
  np.testing.assert_array_equal(again.images, first.images)
  assert not np.array_equal(other.images, first.images)
  # The same rows as numpy's permutation of the seed, sorted.
  want = np.sort(np.random.default_rng(3).permutation(64)[:20])
  np.testing.assert_array_equal(a, want)
  with pytest.raises(ValueError, match="smaller than"):
    data.random_split(ds, 64, seed=0)
