"""Tests for advjax/analysis/agreement.py: per-example disagreement of two
models, from arrays or stored bit strings."""
import numpy as np
import pytest

from advjax import analysis


def test_disagreement_by_hand():
  a = np.array([1, 1, 1, 0, 0, 1], bool)
  b = np.array([0, 0, 1, 1, 0, 1], bool)
  d = analysis.disagreement(a, b)
  assert d == analysis.Disagreement(only_a=2, only_b=1, both=2, neither=1)
  assert d.total == 6
  # The same from the stored bit strings, and mixed.
  assert analysis.disagreement("111001", "001101") == d
  assert analysis.disagreement(a, "001101") == d


def test_disagreement_invariants_on_random_outcomes():
  rng = np.random.default_rng(0)
  a, b = rng.random((2, 257)) < 0.6
  d = analysis.disagreement(a, b)
  assert d.total == 257
  assert d.only_a + d.both == a.sum() and d.only_b + d.both == b.sum()
  # Swapping the models swaps the one-sided counts.
  assert analysis.disagreement(b, a) == d._replace(only_a=d.only_b,
                                                   only_b=d.only_a)
  assert analysis.disagreement(a, a) == (0, 0, a.sum(), (~a).sum())
  # Per example: the counts of any split of the examples add up.
  left = analysis.disagreement(a[:100], b[:100])
  right = analysis.disagreement(a[100:], b[100:])
  assert tuple(np.add(left, right)) == tuple(d)


def test_disagreement_rejects_outcomes_of_different_examples():
  with pytest.raises(ValueError, match="same examples"):
    analysis.disagreement("101", "10")
  with pytest.raises(ValueError, match="same examples"):
    analysis.disagreement(np.ones((2, 2), bool), np.ones((2, 2), bool))


def test_disagreement_per_setting():
  """Dicts of outcomes (one per threat model, say): one count per setting
  both have, in the first's order."""
  a = {"30:3": "1100", "5:1": "1111", "2:1": "1"}
  b = {"5:1": "0111", "30:3": "1010"}
  d = analysis.disagreement(a, b)
  assert list(d) == ["30:3", "5:1"]
  assert d["30:3"] == analysis.disagreement("1100", "1010") == (1, 1, 1, 1)
  assert d["5:1"] == (1, 0, 3, 0)
