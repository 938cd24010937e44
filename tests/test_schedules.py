"""Tests for advjax/training/schedules.py."""
import numpy as np
import pytest

from advjax import training


def test_eps_warmup():
  assert training.eps_warmup(0.3, 0, 1000, 100) == 0.3
  s = training.eps_warmup(0.3, 2, 1000, 100)  # 10 steps per epoch
  np.testing.assert_allclose([s(0), s(10), s(20), s(100)],
                             [0., 0.15, 0.3, 0.3], rtol=1e-6)
  tiny = training.eps_warmup(1., 1, 10, 64)  # at least one step per epoch
  assert float(tiny(1)) == 1.
  with pytest.raises(ValueError, match="warmup_epochs"):
    training.eps_warmup(0.3, -1, 1000, 100)
