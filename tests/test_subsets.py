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


def test_hold_out_a_seeded_sample():
  train = data.load("digits", "train")
  rest, held = data.hold_out(train, 100, seed=3)
  assert (rest.size, held.size) == (train.size - 100, 100)
  key = lambda d: [a.tobytes() + bytes([int(l)])
                   for a, l in zip(d.images, d.labels)]
  # A partition of the rows, each part in the dataset's order, the same
  # sample for the same seed and another for another seed.
  rows = {k: i for i, k in enumerate(key(train))}
  assert sorted(rows[k] for k in key(rest) + key(held)) == list(
      range(train.size))
  assert [rows[k] for k in key(held)] == sorted(rows[k] for k in key(held))
  np.testing.assert_array_equal(
      data.hold_out(train, 100, seed=3)[1].images, held.images)
  assert key(data.hold_out(train, 100, seed=4)[1]) != key(held)
