"""Tests for advjax.transforms.binarize (Wong et al.'s binarised inputs)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from advjax import transforms as T


def test_thresholds_to_the_box_ends_and_keeps_shape_and_dtype():
  x = jnp.asarray([0., 0.2, 0.5, 0.7, 1.], jnp.float32).reshape(1, 1, 5, 1)
  out = T.binarize(x)
  assert out.shape == x.shape and out.dtype == x.dtype
  np.testing.assert_array_equal(np.ravel(out), [0., 0., 1., 1., 1.])
  np.testing.assert_array_equal(  # x >= threshold -> hi, as the reference
      np.ravel(T.binarize(x * 2 - 1, 0., bounds=(-1., 1.))),
      [-1., -1., 1., 1., 1.])
  # Idempotent, and x is untouched.
  np.testing.assert_array_equal(T.binarize(out), out)
  assert float(x[0, 0, 1, 0]) == pytest.approx(0.2)


def test_per_example_threshold_and_jit():
  x = jnp.full((2, 2, 2, 1), 0.4)
  out = jax.jit(T.binarize)(x, jnp.asarray([0.3, 0.5]))
  np.testing.assert_array_equal(np.asarray(out)[:, 0, 0, 0], [1., 0.])


def test_gradient_is_zero_or_straight_through():
  x = jnp.linspace(0.05, 0.95, 8).reshape(2, 2, 2, 1)
  w = jnp.arange(8.).reshape(x.shape)
  f = lambda st: jax.grad(lambda z: jnp.sum(
      w * T.binarize(z, straight_through=st)))(x)
  np.testing.assert_array_equal(f(False), 0.)
  np.testing.assert_array_equal(f(True), w)  # the identity's gradient
  # The straight-through forward value is the binarised one.
  np.testing.assert_array_equal(T.binarize(x, straight_through=True),
                                T.binarize(x))


@pytest.mark.parametrize("kwargs, match", [
    (dict(threshold=1.5), "threshold"), (dict(threshold=-0.1), "threshold"),
    (dict(bounds=(1., 0.)), "lo < hi")])
def test_bad_settings_raise(kwargs, match):
  with pytest.raises(ValueError, match=match):
    T.binarize(jnp.zeros((1, 2, 2, 1)), **kwargs)
  with pytest.raises(ValueError, match="B, H, W, C"):
    T.binarize(jnp.zeros((2, 2)))
