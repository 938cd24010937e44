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


def test_first_per_class_picks_the_first_eligible_rows_in_order():
  y = np.array([0, 0, 0, 1, 1, 1, 2])
  pred = np.array([1, 0, 0, 1, 0, 1, 2])
  rows, short = data.first_per_class(y, 2, pred == y)
  np.testing.assert_array_equal(rows, [1, 2, 3, 5, 6])
  assert short == {2: 1}
  rows, short = data.first_per_class(y, 2)  # all eligible
  np.testing.assert_array_equal(rows, [0, 1, 3, 4, 6])
  assert short == {2: 1}
  rows, short = data.first_per_class(y, 0)
  assert rows.size == 0 and short == {}
  with pytest.raises(ValueError, match="shape"):
    data.first_per_class(y, 1, np.ones(3, bool))
