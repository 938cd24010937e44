"""Tests for advjax/losses.py."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from advjax import losses


def test_margin_and_cw():
  logits = jnp.array([[3., 1., 2.], [0., 5., 1.]])
  y = jnp.array([0, 0])
  np.testing.assert_allclose(losses.margin(logits, y), [1., -5.])
  np.testing.assert_allclose(losses.cw_loss(logits, y), [-1., 5.])


def test_cross_entropy_matches_log_softmax():
  logits = jax.random.normal(jax.random.key(0), (5, 7))
  y = jnp.arange(5)
  ref = -jax.nn.log_softmax(logits)[jnp.arange(5), y]
  np.testing.assert_allclose(losses.cross_entropy(logits, y), ref, rtol=1e-6)


def test_kl_zero_for_equal_and_positive_otherwise():
  a = jax.random.normal(jax.random.key(1), (4, 6))
  np.testing.assert_allclose(losses.kl_divergence(a, a), 0., atol=1e-6)
  assert np.all(np.asarray(losses.kl_divergence(a, -a)) > 0)


def test_dlr_scale_invariant():
  a = jax.random.normal(jax.random.key(2), (4, 6))
  y = jnp.arange(4)
  np.testing.assert_allclose(losses.dlr(a, y), losses.dlr(10. * a, y),
                             rtol=1e-5)


def test_objective_sign_and_lookup():
  logits = jnp.array([[3., 1., 2.]])
  y = jnp.array([1])
  ce = losses.cross_entropy(logits, y)
  np.testing.assert_allclose(losses.attack_objective("ce", True)(logits, y),
                             -ce)
  with pytest.raises(ValueError, match="Unknown loss"):
    losses.get_loss("hinge")
