"""Tests for advjax/attacks/apgd.py."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from advjax import losses, projections
from advjax.attacks.apgd import apgd, apgd_t, checkpoints
from advjax.attacks import gradient as G


def _paper_checkpoints(n):
  """Croce & Hein's p_j recurrence, w_j = ceil(p_j N)."""
  p = [0., 0.22]
  while True:
    nxt = p[-1] + max(p[-1] - p[-2] - 0.03, 0.06)
    if nxt > 1:
      break
    p.append(nxt)
  return tuple(math.ceil(round(v * n, 6)) for v in p[1:])


@pytest.mark.parametrize("n", [100, 1000])
def test_checkpoints_are_the_papers(n):
  assert checkpoints(n) == _paper_checkpoints(n)
  assert checkpoints(100) == (22, 41, 57, 70, 80, 87, 93, 99)


@pytest.fixture(scope="module")
def linear():
  w = jax.random.normal(jax.random.key(0), (16, 5))
  model_fn = lambda x: x.reshape(x.shape[0], -1) @ w
  x = jax.random.uniform(jax.random.key(1), (12, 4, 4, 1), minval=0.2,
                         maxval=0.8)
  y = jnp.argmax(model_fn(x), -1)
  return model_fn, x, y


def test_step_halves_at_every_checkpoint_when_the_loss_is_flat():
  # A constant model: no step ever increases the loss, so condition 1
  # halves the step at each of the 8 checkpoints.
  model_fn = lambda x: jnp.zeros((x.shape[0], 4)) + 0. * jnp.sum(x)
  x = jnp.full((3, 2, 2, 1), 0.5)
  r = apgd(model_fn, x, jnp.zeros(3, jnp.int32), eps=0.1,
             key=jax.random.key(0), return_result=True)
  np.testing.assert_allclose(r.step_size, 2 * 0.1 / 2 ** 8, rtol=1e-6)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_feasible_and_shaped(linear, norm):
  model_fn, x, y = linear
  eps = 0.3 if norm == "linf" else 1.0
  r = jax.jit(lambda x, y: apgd(model_fn, x, y, eps=eps, norm=norm,
                                  steps=20, key=jax.random.key(0),
                                  return_result=True))(x, y)
  assert r.x_adv.shape == x.shape and r.x_adv.dtype == x.dtype
  assert float(jnp.max(projections.lp_norm(r.x_adv - x, norm))) <= eps + 1e-5
  assert float(r.x_adv.min()) >= 0. and float(r.x_adv.max()) <= 1.
  assert r.loss_history.shape == (20, x.shape[0])
  # eps = 0 returns x.
  np.testing.assert_array_equal(
      apgd(model_fn, x, y, eps=0., steps=5, key=jax.random.key(1)), x)


def test_fooled_means_misclassified_and_restarts_keep_the_first(linear):
  model_fn, x, y = linear
  r = apgd(model_fn, x, y, eps=0.3, steps=20, restarts=3,
             key=jax.random.key(0), return_result=True)
  wrong = np.asarray(jnp.argmax(model_fn(r.x_adv), -1) != y)
  np.testing.assert_array_equal(wrong, np.asarray(r.fooled))
  assert wrong.any()


def test_per_example_keys_do_not_depend_on_the_batch(linear):
  model_fn, x, y = linear
  keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.key(3), i))(
      jnp.arange(x.shape[0]))
  whole = apgd(model_fn, x, y, eps=0.1, steps=10, key=keys)
  part = apgd(model_fn, x[4:7], y[4:7], eps=0.1, steps=10, key=keys[4:7])
  np.testing.assert_allclose(whole[4:7], part, atol=1e-6)


@pytest.mark.slow  # a strength check on the trained digits model (default run: under ten minutes); CI runs it (README)
def test_apgd_is_at_least_as_strong_as_pgd_and_fgsm(digits_model):
  m = digits_model
  x, y = m.x_test[:128], m.y_test[:128]
  acc = lambda xa: float(jnp.mean(jnp.argmax(m.model_fn(xa), -1) == y))
  eps = 0.1
  a_ce = acc(jax.jit(lambda x, y: apgd(m.model_fn, x, y, eps=eps,
                                         key=jax.random.key(0)))(x, y))
  a_dlr = acc(jax.jit(lambda x, y: apgd(m.model_fn, x, y, eps=eps,
                                          loss="dlr",
                                          key=jax.random.key(0)))(x, y))
  pgd = acc(G.pgd(m.model_fn, x, y, eps=eps, steps=10,
                  key=jax.random.key(0)))
  fgsm = acc(G.fgsm(m.model_fn, x, y, eps=eps))
  assert a_ce <= pgd + 1 / 128 and a_ce < fgsm
  assert a_dlr < fgsm
  t = jax.jit(lambda x, y: apgd_t(m.model_fn, x, y, eps=eps, num_targets=3,
                                    key=jax.random.key(0),
                                    return_result=True))(x, y)
  assert float(jnp.mean(~t.fooled)) <= a_dlr + 2 / 128


def test_targeted_loss_moves_towards_the_target(linear):
  model_fn, x, y = linear
  t = (y + 1) % 5
  r = apgd(model_fn, x, y, eps=0.5, steps=30, loss="dlr_targeted",
             targets=t, key=jax.random.key(0), return_result=True)
  gap = lambda z: jnp.take_along_axis(model_fn(z), t[:, None], 1)[:, 0] - \
      jnp.take_along_axis(model_fn(z), y[:, None], 1)[:, 0]
  assert bool(jnp.all(gap(r.x_adv) > gap(x)))


def test_dlr_losses_are_shift_and_scale_invariant():
  z = jax.random.normal(jax.random.key(0), (6, 10))
  y = jnp.arange(6)
  t = (y + 3) % 10
  for f in (lambda a: losses.dlr(a, y), lambda a: losses.dlr_targeted(a, y, t)):
    np.testing.assert_allclose(f(z), f(3.7 * z + 11.), rtol=1e-4, atol=1e-6)
  with pytest.raises(ValueError, match=">= 4 classes"):
    losses.dlr_targeted(z[:, :3], y % 3, t % 3)


def test_eot_averages_over_draws_of_a_randomised_model(linear):
  model_fn, x, y = linear
  noisy = lambda z, keys: model_fn(z + 0.05 * jax.vmap(
      lambda k, a: jax.random.normal(k, a.shape))(keys, z))
  keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.key(0), i))(
      jnp.arange(x.shape[0]))
  out = apgd(noisy, x, y, eps=0.2, steps=10, key=keys, stochastic=True,
               eot_iter=5)
  assert float(jnp.max(jnp.abs(out - x))) <= 0.2 + 1e-6
  with pytest.raises(ValueError, match="stochastic=True"):
    apgd(model_fn, x, y, eps=0.2, key=keys, eot_iter=5)


def test_bad_inputs(linear):
  model_fn, x, y = linear
  with pytest.raises(ValueError, match="norm"):
    apgd(model_fn, x, y, eps=0.1, key=jax.random.key(0), norm="l1")
  with pytest.raises(ValueError, match="eps must be >= 0"):
    apgd(model_fn, x, y, eps=-0.1, key=jax.random.key(0))
  with pytest.raises(ValueError, match="needs key"):
    apgd(model_fn, x, y, eps=0.1, key=None)
  with pytest.raises(ValueError, match="target ranks"):
    apgd_t(model_fn, x, y, eps=0.1, key=jax.random.key(0), target_rank=2,
             num_targets=9)
  with pytest.raises(ValueError, match="NCHW"):
    w = jax.random.normal(jax.random.key(0), (3, 3, 1, 4))
    conv = lambda z: jax.lax.conv_general_dilated(
        z, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    ).reshape(z.shape[0], -1)[:, :4]
    apgd(conv, jnp.zeros((2, 1, 8, 8)), jnp.zeros(2, jnp.int32), eps=0.1,
           key=jax.random.key(0))
