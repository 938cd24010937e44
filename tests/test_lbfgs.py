"""Tests for advjax/attacks/lbfgs.py."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from advjax.attacks.lbfgs import lbfgs
from advjax.projections import lp_norm
from test_cw import _linear_binary  # pylint: disable=wrong-import-order


def test_linear_binary_model_minimal_distance():
  d_min = np.array([0.05, 0.1, 0.3, 0.7, 1.0])
  model_fn, x, y = _linear_binary(d_min)
  res = jax.jit(lambda x, t: lbfgs(
      model_fn, x, t, search_steps=12, bounds=(-1., 2.),
      return_result=True))(x, 1 - y)
  assert bool(jnp.all(res.success))
  # Measured within 0.8 % at 12 search steps.
  np.testing.assert_allclose(res.distance, d_min, rtol=0.02)
  assert bool(jnp.all(res.distance >= d_min * (1 - 1e-3)))


@pytest.mark.slow  # a strength check on the trained digits model (default run: under ten minutes); CI runs it (README)
def test_trained_model_targets_reached_inside_the_box(digits_model):
  m = digits_model
  x, y = m.x_test[:16], m.y_test[:16]
  t = (y + 1) % 10
  res = jax.jit(lambda x, t: lbfgs(m.model_fn, x, t, steps=20,
                                   search_steps=6, return_result=True))(x, t)
  assert bool(jnp.all(res.success))
  np.testing.assert_array_equal(jnp.argmax(m.model_fn(res.x_adv), 1), t)
  assert float(res.x_adv.min()) >= 0. and float(res.x_adv.max()) <= 1.
  np.testing.assert_allclose(res.distance, lp_norm(res.x_adv - x, "l2"),
                             rtol=1e-5)
  # Untargeted: any misclassification counts.
  un = lbfgs(m.model_fn, x, y, targeted=False, steps=20, search_steps=6,
             return_result=True)
  assert bool(jnp.all(un.success))
  assert bool(jnp.all(jnp.argmax(m.model_fn(un.x_adv), 1) != y))


def test_bad_inputs(digits_model):
  m = digits_model
  x, y = m.x_test[:2], m.y_test[:2]
  with pytest.raises(ValueError, match="steps"):
    lbfgs(m.model_fn, x, y, steps=0)
  with pytest.raises(ValueError, match="initial_const"):
    lbfgs(m.model_fn, x, y, initial_const=0.)
