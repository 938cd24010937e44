"""Tests for advjax/attacks/wasserstein.py (fixed-eps Wasserstein PGD)."""
import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

# The module, not the function `advjax.attacks.wasserstein` re-exported by
# the package under the same name.
W = importlib.import_module("advjax.attacks.wasserstein")


@pytest.fixture(scope="module")
def batch(digits_model):
  return (digits_model.model_fn, digits_model.x_test[:32],
          digits_model.y_test[:32])


def _attack(f, step="linf", step_size=0.1, steps=5, bounds=(0., 1.)):
  return jax.jit(lambda x, y, eps: W.wasserstein(
      f, x, y, eps=eps, steps=steps, step=step, step_size=step_size,
      bounds=bounds, return_result=True))


@pytest.mark.parametrize("step,step_size,steps", [
    ("linf", 0.1, 5), ("l2", 0.5, 5), ("wasserstein", 0.1, 10)])
def test_fools_the_model_and_stays_valid(batch, step, step_size, steps):
  f, x, y = batch
  res = _attack(f, step, step_size, steps)(x, y, 0.5)
  assert res.x_adv.shape == x.shape and res.x_adv.dtype == x.dtype
  assert float(res.x_adv.min()) >= 0. and float(res.x_adv.max()) <= 1.
  clean = float(jnp.mean(jnp.argmax(f(x), -1) == y))
  adv = float(jnp.mean(jnp.argmax(f(res.x_adv), -1) == y))
  assert adv < clean - 0.5, (clean, adv)
  # Only the box clamp removes mass, and little of it.
  assert np.all(np.asarray(res.clamped_mass) >= -1e-5)
  assert float(res.clamped_mass.max()) < 0.05
  # The loss went up.
  assert float(res.loss_history[-1].mean()) > float(res.loss_history[0].mean())


def test_without_the_box_mass_is_conserved(batch):
  f, x, y = batch
  res = _attack(f, bounds=(0., 100.))(x, y, 0.5)
  np.testing.assert_allclose(res.x_adv.sum((1, 2, 3)), x.sum((1, 2, 3)),
                             rtol=1e-5)
  assert float(res.x_adv.min()) >= 0.  # mass stays nonnegative


def test_eps_zero_is_the_identity_and_per_example_eps(batch):
  f, x, y = batch
  attack = _attack(f)
  np.testing.assert_allclose(attack(x, y, 0.).x_adv, x, atol=1e-5)
  eps = jnp.where(jnp.arange(32) < 16, 0., 0.5)
  out = attack(x, y, eps).x_adv
  np.testing.assert_allclose(out[:16], x[:16], atol=1e-5)
  assert float(jnp.abs(out[16:] - x[16:]).max()) > 0.1


def test_bad_inputs(batch):
  f, x, y = batch
  with pytest.raises(ValueError, match="unknown step"):
    W.wasserstein(f, x, y, eps=0.5, step="l1")
  with pytest.raises(ValueError, match="eps must be >= 0"):
    W.wasserstein(f, x, y, eps=-1.)
  with pytest.raises(ValueError, match="images"):
    W.wasserstein(lambda z: z.reshape(z.shape[0], -1)[:, :10],
                  x.reshape(32, -1), y, eps=0.5)


def test_search_finds_a_radius_per_example_and_freezes(batch):
  f, x, y = batch
  y = y.at[0].set((y[0] + 1) % 10)  # one example the model already gets wrong
  search = jax.jit(lambda x, y: W.wasserstein_search(
      f, x, y, eps0=0.05, factor=1.5, grow_every=2, max_steps=30))
  res = search(x, y)
  eps = np.asarray(res.eps)
  assert eps[0] == 0. and bool(res.fooled[0])
  np.testing.assert_array_equal(res.x_adv[0], x[0])  # frozen at once
  fooled = np.asarray(res.fooled)
  assert fooled.mean() > 0.9
  assert np.all(np.isfinite(eps[fooled])) and np.all(np.isinf(eps[~fooled]))
  pred = np.asarray(jnp.argmax(f(res.x_adv), -1))
  assert np.all(pred[fooled] != np.asarray(y)[fooled])
  # Radii are eps0 * factor^k; accuracy at eps counts the examples not fooled.
  k = np.log(eps[fooled & (eps > 0)] / 0.05) / np.log(1.5)
  np.testing.assert_allclose(k, np.round(k), atol=1e-4)
  assert float(res.accuracy(0.)) == pytest.approx(np.mean(eps > 0))
  assert float(res.x_adv.min()) >= 0. and float(res.x_adv.max()) <= 1.
