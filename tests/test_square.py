"""Tests for advjax/attacks/square.py."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from advjax import projections
from advjax.attacks.apgd import apgd
from advjax.attacks.gradient import noise
from advjax.attacks.square import (eta_pattern, p_schedule, square,
                                   window_sizes)


def test_schedule_and_window_sizes():
  p = [p_schedule(i, 0.8, 5000) for i in (0, 10, 11, 50, 51, 200, 201, 4999)]
  np.testing.assert_allclose(p, [0.8, 0.8, 0.4, 0.4, 0.2, 0.2, 0.1,
                                 0.8 / 128])
  # Rescaled to a 1000-query budget, iteration 2 is iteration 20 of 10000.
  assert p_schedule(2, 0.8, 1000, rescale=True) == 0.4
  s = window_sizes(5000, 0.8, 28, 28, "linf")
  assert s[0] == round(np.sqrt(0.8 * 784)) and s.min() >= 1
  s2 = window_sizes(5000, 0.8, 28, 28, "l2")
  assert np.all(s2 % 2 == 1) and s2.min() >= 3 and s2.max() <= 28


@pytest.mark.parametrize("s", [1, 3, 4, 7])
def test_eta_pattern(s):
  e = eta_pattern(s)
  assert e.shape == (s, s)
  np.testing.assert_allclose(np.sum(e ** 2), 1., rtol=1e-6)
  assert np.all(e[s // 2:] < 0) and np.all(e[:s // 2] > 0)
  # Each half peaks at its centre and decays outwards.
  bottom = -e[s // 2:]
  assert bottom[(s - s // 2) // 2, s // 2] == bottom.max()


def _numpy_model(w):
  """A model the attack can only query: its logits come from NumPy through
  a callback, which JAX cannot differentiate."""
  w = np.asarray(w)

  def host(x):
    return (x.reshape(x.shape[0], -1) @ w).astype(np.float32)

  def model_fn(x):
    return jax.pure_callback(
        host, jax.ShapeDtypeStruct((x.shape[0], w.shape[1]), jnp.float32), x)
  return model_fn


@pytest.mark.parametrize("norm,eps", [("linf", 0.1), ("l2", 0.5)])
def test_square_stays_in_the_threat_model_and_only_queries(norm, eps):
  w = jax.random.normal(jax.random.key(0), (64, 10))
  model_fn = _numpy_model(w)
  x = jax.random.uniform(jax.random.key(1), (16, 8, 8, 1))
  y = jnp.argmax(x.reshape(16, -1) @ w, -1)
  r = square(model_fn, x, y, eps=eps, norm=norm, queries=300,
             key=jax.random.key(2), return_result=True)
  assert float(jnp.max(projections.lp_norm(r.x_adv - x, norm))) <= eps + 1e-5
  assert float(r.x_adv.min()) >= 0 and float(r.x_adv.max()) <= 1
  fooled = np.asarray(jnp.argmax(r.x_adv.reshape(16, -1) @ w, -1) != y)
  np.testing.assert_array_equal(fooled, np.asarray(r.success))
  assert fooled.any()
  assert int(r.n_queries.max()) <= 301
  with pytest.raises(Exception):  # a gradient attack needs the gradient
    apgd(model_fn, x, y, eps=eps, key=jax.random.key(0), steps=2)


def test_square_beats_noise_on_a_trained_model(digits_model):
  m = digits_model
  x, y = m.x_test[:96], m.y_test[:96]
  acc = lambda xa: float(jnp.mean(jnp.argmax(m.model_fn(xa), -1) == y))
  sq = jax.jit(lambda x, y: square(m.model_fn, x, y, eps=0.1, queries=500,
                                   key=jax.random.key(0)))(x, y)
  rnd = noise(m.model_fn, x, y, eps=0.1, key=jax.random.key(0))
  assert acc(sq) < acc(rnd) - 0.1


def test_bad_inputs():
  model_fn = lambda x: x.reshape(x.shape[0], -1)[:, :3]
  x = jnp.full((2, 4, 4, 1), 0.5)
  y = jnp.zeros(2, jnp.int32)
  run = functools.partial(square, model_fn, x, y, key=jax.random.key(0))
  with pytest.raises(ValueError, match="eps must be >= 0"):
    run(eps=-1.)
  with pytest.raises(ValueError, match="norm"):
    run(eps=0.1, norm="l1")
  with pytest.raises(ValueError, match=r"images \[B, H, W, C\]"):
    square(model_fn, x.reshape(2, 16), y, eps=0.1, key=jax.random.key(0))
