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


def test_select_examples_puts_one_of_each_class_first():
  labels = np.array([1, 1, 0, 2, 0, 2])
  correct = np.array([True, True, False, True, True, True])
  pick = data.select_examples(labels, 5, where=correct)
  assert pick.tolist() == [4, 0, 3, 1, 5]  # classes 0, 1, 2, then in order
  assert data.select_examples(labels, 2, where=correct).tolist() == [4, 0]
  assert data.select_examples(labels, 9).tolist() == [2, 0, 3, 1, 4, 5]
  assert data.select_examples(labels, 3, where=np.zeros(6, bool)).size == 0
  # Invariants: distinct, allowed rows only; the classes present come first.
  rng = np.random.default_rng(0)
  labels, where = rng.integers(0, 5, 200), rng.random(200) < 0.7
  pick = data.select_examples(labels, 50, where=where)
  assert len(set(pick.tolist())) == 50 and where[pick].all()
  assert labels[pick[:5]].tolist() == [0, 1, 2, 3, 4]


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


def test_hold_out_with_a_seed_draws_the_seeds_permutation():
  ds = data.load("synthetic", "train", limit=64)
  ids = np.arange(64, dtype=np.float32).reshape(64, 1, 1, 1)
  ds = ds._replace(images=np.broadcast_to(ids, (64,) + ds.images.shape[1:]))
  rest, first = data.hold_out(ds, 20, seed=3)
  a, b = first.images[:, 0, 0, 0], rest.images[:, 0, 0, 0]
  assert len(a) == 20 and len(b) == 44
  assert np.all(np.diff(a) > 0) and np.all(np.diff(b) > 0)  # kept in order
  assert set(a) | set(b) == set(range(64)) and not set(a) & set(b)
  np.testing.assert_array_equal(first.labels, ds.labels[a.astype(int)])
  _, again = data.hold_out(ds, 20, seed=3)
  _, other = data.hold_out(ds, 20, seed=4)
  np.testing.assert_array_equal(again.images, first.images)
  assert not np.array_equal(other.images, first.images)
  # The same rows as numpy's permutation of the seed, sorted.
  want = np.sort(np.random.default_rng(3).permutation(64)[:20])
  np.testing.assert_array_equal(a, want)
  with pytest.raises(ValueError, match="smaller than"):
    data.hold_out(ds, 64, seed=0)


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
