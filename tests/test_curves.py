"""Tests for advjax/evaluation/curves.py."""
import numpy as np
import pytest

from advjax import evaluation


def test_eps_at_accuracy():
  grid = np.array([0.01, 0.1, 1.])
  assert evaluation.eps_at_accuracy(grid, [1., 0.6, 0.2]) == 1.
  assert evaluation.eps_at_accuracy(grid, [0.9, 0.5, 0.]) == 0.1  # <= 50 %
  assert evaluation.eps_at_accuracy(grid, [0.4, 0.3, 0.]) == 0.01
  assert evaluation.eps_at_accuracy(grid, [1., 0.9, 0.8]) == float("inf")
  assert evaluation.eps_at_accuracy(grid, [1., 0.9, 0.8], level=0.9) == 0.1


@pytest.mark.parametrize("eps, acc, match", [
    ([0., 1.], [1.], "must be"), ([1., 0.], [1., 0.], "ascending")])
def test_eps_at_accuracy_bad_input(eps, acc, match):
  with pytest.raises(ValueError, match=match):
    evaluation.eps_at_accuracy(eps, acc)
