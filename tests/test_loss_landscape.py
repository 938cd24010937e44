"""Tests for advjax/evaluation/loss_landscape.py: attack convergence curves
and Madry et al.'s loss concentration."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from advjax import evaluation, losses
from advjax.attacks import gradient


@pytest.fixture(scope="module")
def linear():
  w = jax.random.normal(jax.random.key(0), (16, 4))
  apply_fn = lambda variables, x: x.reshape(x.shape[0], -1) @ variables["w"]
  x = np.asarray(jax.random.uniform(jax.random.key(1), (21, 4, 4, 1)))
  y = np.asarray(jnp.argmax(apply_fn({"w": w}, x), -1), np.int32)
  return apply_fn, {"w": w}, x, y


def test_attack_convergence_curves(linear):
  apply_fn, v, x, y = linear
  key = jax.random.key(2)
  a = evaluation.attack_convergence(apply_fn, v, x, y, eps=0.1, key=key,
                                    steps=6, batch_size=8, device_batch_size=4)
  b = evaluation.attack_convergence(apply_fn, v, x, y, eps=0.1, key=key,
                                    steps=6, batch_size=64)
  assert set(a.curves) == {"sign", "sgd", "adam"}
  for k in a.curves:  # batch size and device layout do not matter
    assert a.curves[k].shape == (6,)
    np.testing.assert_allclose(a.curves[k], b.curves[k], rtol=1e-5)
  # CE is convex in x for a linear model: ascent raises the mean loss.
  assert a.final["sign"] > a.curves["sign"][0]
  # SGD's learning rate moves pixels as far as a sign step at x.
  g = jax.grad(lambda z: jnp.sum(losses.cross_entropy(
      apply_fn(v, z), y)))(x)
  assert a.sgd_learning_rate == pytest.approx(
      2.5 * 0.1 / 6 / float(jnp.mean(jnp.abs(g))), rel=1e-5)
  assert list(a.summary()) == ["sign", "sgd", "adam"]
  with pytest.raises(ValueError, match="unknown steps"):
    evaluation.attack_convergence(apply_fn, v, x, y, eps=0.1, key=key,
                                  optimizers=("lbfgs",))


def test_loss_concentration_restarts_are_per_example_runs(linear):
  apply_fn, v, x, y = linear
  key = jax.random.key(3)
  res = evaluation.loss_concentration(apply_fn, v, x[:3], y[:3], eps=0.2,
                                      key=key, restarts=16, steps=3)
  assert res.loss.shape == res.fooled.shape == (3, 16)
  # Restart j of input i is PGD from split(fold_in(key, i), R)[j].
  i = 2
  keys = jax.random.split(jax.random.fold_in(key, i), 16)
  model_fn = lambda z: apply_fn(v, z)
  adv = gradient.pgd(model_fn, jnp.repeat(x[i:i + 1], 16, 0),
                     jnp.full((16,), y[i]), eps=0.2, key=keys, steps=3)
  np.testing.assert_allclose(
      res.loss[i], losses.cross_entropy(model_fn(adv), jnp.full((16,), y[i])),
      rtol=1e-5)
  summary = res.summary()
  assert [s["index"] for s in summary] == [0, 1, 2]
  for s, loss in zip(summary, res.loss):
    assert sum(s["counts"]) == 16 and len(s["edges"]) == 41
    assert s["quantiles"]["max"] == pytest.approx(loss.max())
  # eps 0: every restart ends at x, so the losses agree: no excess.
  zero = evaluation.loss_concentration(apply_fn, v, x[:2], y[:2], eps=0.,
                                       key=key, restarts=4, steps=2)
  np.testing.assert_allclose(zero.excess(), 0., atol=1e-6)
  with pytest.raises(ValueError, match="must be >= 1"):
    evaluation.loss_concentration(apply_fn, v, x, y, eps=0.1, key=key,
                                  restarts=0)


def test_excess_floors_tiny_losses():
  c = evaluation.LossConcentration(
      np.array([[0.01, 0.01, 0.02], [10., 10., 12.]]),
      np.zeros((2, 3), bool), np.array([0, 1]))
  np.testing.assert_allclose(c.excess(), [0.01 / 0.5, 0.2])
  np.testing.assert_allclose(c.best_over_median, [2., 1.2])
