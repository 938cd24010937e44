"""Tests for advjax/attacks/cw.py."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from advjax.attacks.cw import (carlini_wagner_l0, carlini_wagner_l2,
                               carlini_wagner_linf, cw_margin, cw_success)
from advjax.attacks.deepfool import deepfool
from advjax.attacks.gradient import pgd
from advjax.attacks.jsma import jsma
from advjax.projections import lp_norm

FAST = dict(steps=200, binary_search_steps=6, learning_rate=0.05)


def test_margin_and_success_definitions():
  z = jnp.array([[3., 1., 0.], [0., 2., 2.5]])
  y = jnp.array([0, 1])
  # Untargeted: z_y - max other (+ kappa), floored at 0.
  np.testing.assert_allclose(cw_margin(z, y, 0., False), [2., 0.])
  np.testing.assert_allclose(cw_margin(z, y, 1., False), [3., 0.5])
  np.testing.assert_allclose(cw_margin(z, y, 0., True), [0., 0.5])
  np.testing.assert_array_equal(cw_success(z, y, 0., False), [False, True])
  # Wrong by 0.5 only: not a success at kappa 1.
  np.testing.assert_array_equal(cw_success(z, y, 1., False), [False, False])
  np.testing.assert_array_equal(cw_success(z, y, 0., True), [True, False])


def _linear_binary(d_min):
  """Points at known distances d_min from the boundary of a linear model."""
  rng = np.random.default_rng(0)
  n, d = len(d_min), 10
  w = rng.normal(size=d)
  w /= np.linalg.norm(w)
  x = rng.uniform(0.3, 0.7, size=(n, d))
  side = np.where(np.arange(n) % 2, 1., -1.)
  x -= np.outer(x @ w - side * d_min, w)  # now w.x = +-d_min

  def model_fn(z):
    s = z.reshape(z.shape[0], -1) @ jnp.asarray(w, jnp.float32)
    return jnp.stack([-s / 2, s / 2], axis=1)

  y = jnp.asarray((side > 0).astype(np.int32))
  return model_fn, x.reshape(n, d, 1, 1).astype(np.float32), y


@pytest.mark.parametrize("d_min, learning_rate", [
    ((0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0), 1e-2),
    # Adam moves each tanh coordinate by ~learning_rate per step: a distance
    # this small needs a smaller rate (at 1e-2 it lands 21 % long).
    ((0.02,), 1e-3)])
def test_linear_binary_model_minimal_distance(d_min, learning_rate):
  d_min = np.asarray(d_min)
  model_fn, x, y = _linear_binary(d_min)
  res = jax.jit(lambda x, y: carlini_wagner_l2(
      model_fn, x, y, learning_rate=learning_rate, bounds=(-1., 2.),
      return_result=True))(x, y)
  assert bool(jnp.all(res.success))
  np.testing.assert_allclose(res.distance, d_min, rtol=0.05)
  assert bool(jnp.all(res.distance >= d_min * (1 - 1e-3)))  # never below


def test_targeted_success_and_smaller_than_deepfool(digits_model):
  m = digits_model
  x, y = m.x_test[:32], m.y_test[:32]
  target = (y + 1) % 10
  cw = jax.jit(lambda x, y, targeted: carlini_wagner_l2(
      m.model_fn, x, y, targeted=targeted, return_result=True, **FAST),
               static_argnums=2)
  res = cw(x, target, True)
  assert bool(jnp.all(res.success))
  np.testing.assert_array_equal(jnp.argmax(m.model_fn(res.x_adv), 1), target)
  assert float(res.x_adv.min()) >= 0. and float(res.x_adv.max()) <= 1.
  np.testing.assert_allclose(res.distance, lp_norm(res.x_adv - x, "l2"),
                             rtol=1e-4, atol=1e-5)
  # Untargeted: smaller perturbations than DeepFool's on the same images
  # (measured mean L2 0.540 vs 0.549).
  un = cw(x, y, False)
  df = deepfool(m.model_fn, x, y, return_result=True)
  both = np.asarray(un.success & df.success)
  assert both.mean() >= 0.95
  assert float(un.distance[both].mean()) < float(df.distance[both].mean())


def test_confidence_buys_margin(digits_model):
  m = digits_model
  x, y = m.x_test[:8], m.y_test[:8]
  fn = jax.jit(lambda x, y, k: carlini_wagner_l2(
      m.model_fn, x, y, confidence=k, return_result=True, **FAST))
  low, high = fn(x, y, 0.), fn(x, y, 5.)
  ok = np.asarray(low.success & high.success)
  assert ok.all()
  z = m.model_fn(high.x_adv)
  onehot = jax.nn.one_hot(y, 10, dtype=bool)
  gap = (jnp.max(jnp.where(onehot, -jnp.inf, z), 1)
         - jnp.sum(jnp.where(onehot, z, 0.), 1))
  assert bool(jnp.all(gap >= 5. - 1e-3))
  assert float(high.distance.mean()) > float(low.distance.mean())


def test_bad_inputs(digits_model):
  m = digits_model
  x, y = m.x_test[:2], m.y_test[:2]
  with pytest.raises(ValueError, match="steps"):
    carlini_wagner_l2(m.model_fn, x, y, steps=0)
  with pytest.raises(ValueError, match="confidence"):
    carlini_wagner_l2(m.model_fn, x, y, confidence=-1.)
  with pytest.raises(ValueError, match="bounds"):
    carlini_wagner_l2(m.model_fn, x * 3, y)


def _pgd_minimal_eps(model_fn, x, t, bisections=10):
  """Per example, the smallest Linf eps at which targeted PGD-50 succeeds
  (bisection on [0, 1])."""
  attack = jax.jit(lambda eps: pgd(model_fn, x, t, eps=eps, steps=50,
                                   step_size=eps / 10, targeted=True,
                                   key=jax.random.key(0)))
  lo, hi = np.zeros(len(x)), np.ones(len(x))
  for _ in range(bisections):
    mid = (lo + hi) / 2
    ok = np.asarray(jnp.argmax(model_fn(attack(jnp.asarray(mid, jnp.float32))),
                               1) == t)
    lo, hi = np.where(ok, lo, mid), np.where(ok, mid, hi)
  return hi


def test_linf_close_to_pgd_minimal_eps(digits_model):
  m = digits_model
  x, y = m.x_test[:16], m.y_test[:16]
  t = (y + 1) % 10
  res = jax.jit(lambda x, t: carlini_wagner_linf(
      m.model_fn, x, t, targeted=True, steps=100, learning_rate=0.02,
      return_result=True))(x, t)
  assert bool(jnp.all(res.success))
  np.testing.assert_array_equal(jnp.argmax(m.model_fn(res.x_adv), 1), t)
  assert float(res.x_adv.min()) >= 0. and float(res.x_adv.max()) <= 1.
  np.testing.assert_allclose(res.distance, lp_norm(res.x_adv - x, "linf"),
                             rtol=1e-5)
  # As strong as a per-example eps search with PGD (measured against
  # PGD-100 bisected: 1.08x on these images; on 32 images 1.09x here,
  # 1.07x at the authors' 1000 steps and learning rate 5e-3).
  ratio = float(res.distance.mean()) / _pgd_minimal_eps(m.model_fn, x, t).mean()
  assert ratio < 1.15, ratio


def test_l0_changes_fewer_pixels_than_jsma(digits_model):
  m = digits_model
  x, y = m.x_test[:16], m.y_test[:16]
  t = (y + 1) % 10
  res = jax.jit(lambda x, t: carlini_wagner_l0(
      m.model_fn, x, t, targeted=True, steps=100, return_result=True))(x, t)
  ref = jax.jit(lambda x, t: jsma(m.model_fn, x, t, gamma=1.,
                                  return_result=True))(x, t)
  assert bool(jnp.all(res.success))
  np.testing.assert_array_equal(jnp.argmax(m.model_fn(res.x_adv), 1), t)
  assert float(res.x_adv.min()) >= 0. and float(res.x_adv.max()) <= 1.
  changed = np.asarray((res.x_adv != x).reshape(16, -1)).sum(1)
  np.testing.assert_array_equal(changed, res.distance)
  both = np.asarray(ref.success)
  assert both.mean() >= 0.9
  # Measured on 32 images: 3.8 pixels vs JSMA's 10.6.
  assert changed[both].mean() < 0.6 * np.asarray(ref.distance)[both].mean()


def test_l0_counts_pixels_across_channels():
  rng = np.random.default_rng(0)
  w = jnp.asarray(rng.normal(size=(27, 3)), jnp.float32)

  def model_fn(z):
    return z.reshape(z.shape[0], -1) @ w

  x = jnp.asarray(rng.uniform(0.2, 0.8, size=(4, 3, 3, 3)), jnp.float32)
  t = (jnp.argmax(model_fn(x), 1) + 1) % 3
  for independent in (False, True):
    res = carlini_wagner_l0(model_fn, x, t, targeted=True, steps=100,
                            independent_channels=independent,
                            return_result=True)
    assert bool(jnp.all(res.success))
    diff = np.asarray(res.x_adv != x)
    count = diff.reshape(4, -1).sum(1) if independent else (
        diff.any(-1).reshape(4, -1).sum(1))
    np.testing.assert_array_equal(res.distance, count)


def test_linf_l0_already_at_target(digits_model):
  m = digits_model
  x = m.x_test[:4]
  pred = jnp.argmax(m.model_fn(x), 1)
  l0 = carlini_wagner_l0(m.model_fn, x, pred, targeted=True, steps=10,
                         return_result=True)
  np.testing.assert_array_equal(l0.x_adv, x)
  np.testing.assert_array_equal(l0.distance, 0)
  linf = carlini_wagner_linf(m.model_fn, x, pred, targeted=True, steps=10,
                             return_result=True)
  assert bool(jnp.all(linf.success & l0.success))
  assert float(linf.distance.max()) < 1e-5


@pytest.mark.parametrize("attack", [carlini_wagner_linf, carlini_wagner_l0])
def test_linf_l0_bad_inputs(digits_model, attack):
  m = digits_model
  x, y = m.x_test[:2], m.y_test[:2]
  with pytest.raises(ValueError, match="steps"):
    attack(m.model_fn, x, y, steps=0)
  with pytest.raises(ValueError, match="const_factor"):
    attack(m.model_fn, x, y, const_factor=1.)
  with pytest.raises(ValueError, match="initial_const"):
    attack(m.model_fn, x, y, initial_const=-1.)
  with pytest.raises(ValueError, match="bounds"):
    attack(m.model_fn, x * 3, y)
  if attack is carlini_wagner_linf:
    with pytest.raises(ValueError, match="tau_decrease"):
      attack(m.model_fn, x, y, tau_decrease=1.5)
