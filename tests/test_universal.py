"""Tests for advjax/attacks/universal.py."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from advjax.attacks.universal import apply_universal, universal

EPS = 0.25


def _accuracy(model_fn, x, y):
  return float(jnp.mean(jnp.argmax(model_fn(x), -1) == y))


@pytest.fixture(scope="module")
def fitted(digits_model):
  """A universal perturbation fitted on the first 200 test digits (the rest
  are held out), with the sign step and with Adam."""
  m = digits_model
  x, y = m.x_test[:200], m.y_test[:200]
  run = jax.jit(lambda x, y, key, optimizer: universal(
      m.model_fn, x, y, key=key, eps=EPS, iterations=60, batch_size=64,
      batches_per_update=2, optimizer=optimizer, return_result=True),
                static_argnums=3)
  sign = run(x, y, jax.random.key(0), None)
  adam = run(x, y, jax.random.key(0), optax.adam(0.02))
  return sign, adam


def test_stays_in_its_ball_and_has_one_examples_shape(fitted, digits_model):
  for res in fitted:
    xi = res.perturbation
    assert xi.shape == digits_model.x_test.shape[1:]
    assert float(jnp.max(jnp.abs(xi))) <= EPS + 1e-6
    assert res.loss_history.shape == (60,)
  # The sign step saturates most coordinates at +-eps.
  assert float(jnp.mean(jnp.abs(fitted[0].perturbation) > 0.99 * EPS)) > 0.5


def test_lowers_held_out_accuracy_more_than_noise(fitted, digits_model):
  m = digits_model
  x_out, y_out = m.x_test[200:], m.y_test[200:]
  clean = _accuracy(m.model_fn, x_out, y_out)
  noise = jax.random.rademacher(jax.random.key(3), x_out.shape[1:],
                                jnp.float32) * EPS
  noisy = _accuracy(m.model_fn, apply_universal(x_out, noise), y_out)
  for res in fitted:
    attacked = _accuracy(m.model_fn,
                         apply_universal(x_out, res.perturbation), y_out)
    # Measured: clean 0.97, sign-noise 0.85, universal 0.3-0.4.
    assert attacked < noisy - 0.25, (clean, noisy, attacked)
    assert attacked < 0.6 * clean
    # The objective rose over the run.
    h = np.asarray(res.loss_history)
    assert h[-10:].mean() > h[0] + 0.5


def _pixels(x):
  """Logits = the pixels (2 x 2 x 1 images: 4 'classes')."""
  return x.reshape(x.shape[0], -1)


def _weighted(logits, labels):
  """Label 0 pulls every pixel up with weight 2, label 1 down with 1."""
  return jnp.where(labels == 0, 2., -1.) * logits.sum(-1)


@pytest.mark.parametrize("aggregate", ["directions", "gradients"])
def test_one_update_is_the_mean_of_the_minibatch_signs(aggregate):
  # Two inputs, minibatches of one, K = 2: the two draws of an update are
  # (0, 0), (1, 1) or mixed. Metzen's alpha / K sum_k sgn(g_k) gives +a,
  # -a or 0 (mixed: the signs cancel); the sign of the summed gradient
  # (2 - 1 > 0) gives +a for mixed draws, never 0.
  x = jnp.full((2, 2, 2, 1), 0.5)
  y = jnp.array([0, 1])
  fit = jax.jit(lambda key: universal(
      _pixels, x, y, key=key, eps=1., step_size=0.1, iterations=1,
      batch_size=1, batches_per_update=2, loss=_weighted,
      aggregate=aggregate))
  seen = set()
  for seed in range(16):
    xi = fit(jax.random.key(seed))
    values = np.unique(np.round(np.asarray(xi), 6))
    assert values.size == 1  # every pixel moves alike
    seen.add(round(float(values[0]), 6))
  want = {0.1, 0., -0.1} if aggregate == "directions" else {0.1, -0.1}
  assert seen == want


def test_apply_universal_clips_into_the_box():
  x = jnp.array([[[[0.1], [0.95]]]], jnp.float32)
  xi = jnp.array([[[-0.3], [0.2]]], jnp.float32)
  np.testing.assert_allclose(apply_universal(x, xi), [[[[0.], [1.]]]])


def test_zero_eps_or_no_iterations_is_zero(digits_model):
  m = digits_model
  x, y = m.x_test[:32], m.y_test[:32]
  for eps, iterations in ((0., 3), (0.3, 0)):
    xi = universal(m.model_fn, x, y, key=jax.random.key(0), eps=eps,
                     iterations=iterations, batch_size=16,
                     batches_per_update=1)
    np.testing.assert_array_equal(xi, jnp.zeros(x.shape[1:]))


@pytest.mark.parametrize("kwargs, match", [
    (dict(eps=-0.1), "eps must be >= 0"),
    (dict(eps=jnp.full((32,), 0.1)), "eps must be a scalar"),
    (dict(eps=0.1, batch_size=64), "batch_size <= N"),
    (dict(eps=0.1, batches_per_update=0), "batches_per_update >= 1"),
    (dict(eps=0.1, norm="l3"), "norm"),
    (dict(eps=0.1, aggregate="sum"), "aggregate"),
])
def test_bad_arguments_raise(digits_model, kwargs, match):
  m = digits_model
  with pytest.raises(ValueError, match=match):
    universal(m.model_fn, m.x_test[:32], m.y_test[:32],
                key=jax.random.key(0), **kwargs)
