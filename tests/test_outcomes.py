"""Tests for advjax/evaluation/outcomes.py: per-example outcomes as bits."""
import numpy as np
import pytest

from advjax import evaluation


def test_bits_round_trip_and_bad_input():
  correct = np.array([True, False, False, True, True])
  bits = evaluation.to_bits(correct)
  assert bits == "10011"
  np.testing.assert_array_equal(evaluation.from_bits(bits), correct)
  assert evaluation.to_bits([]) == "" and evaluation.from_bits("").size == 0
  rng = np.random.default_rng(0)
  many = rng.random(1001) < 0.3
  np.testing.assert_array_equal(evaluation.from_bits(evaluation.to_bits(
      many)), many)
  with pytest.raises(ValueError, match="'0' and '1'"):
    evaluation.from_bits("10x1")
  with pytest.raises(ValueError, match=r"\[N\]"):
    evaluation.to_bits(np.ones((2, 2), bool))
