"""Tests for advjax/analysis/linear.py: FGSM on logistic regression in
closed form (Goodfellow et al.'s linear explanation)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from advjax import analysis, models
from advjax.attacks import gradient


def _data(n=16, shape=(8, 8, 1), seed=0):
  rng = np.random.default_rng(seed)
  return (rng.uniform(size=(n, *shape)).astype(np.float32),
          rng.integers(0, 2, n).astype(np.int32))


def test_fgsm_on_two_class_softmax_regression_is_the_closed_form():
  model = models.FC10(num_classes=2)
  v = models.init_model(model, jax.random.key(3), (8, 8, 1))
  x, y = _data()
  adv = gradient.fgsm(lambda z: model.apply(v, z), jnp.asarray(x),
                      jnp.asarray(y), eps=0.25)
  k = np.asarray(v["params"]["Dense_0"]["kernel"])
  w = (k[:, 1] - k[:, 0]).reshape(8, 8, 1)
  closed = analysis.logistic_fgsm(w, x, y, eps=0.25)
  np.testing.assert_allclose(adv, closed, atol=1e-6)
  # It is the worst case in the box: no sign pattern raises the loss more.
  rng = np.random.default_rng(1)
  logit = lambda z: np.asarray(z).reshape(len(z), -1) @ w.ravel()
  margin = (2 * y - 1) * logit(closed)
  for _ in range(5):
    other = np.clip(x + 0.25 * rng.choice([-1., 1.], x.shape), 0, 1)
    assert np.all(margin <= (2 * y - 1) * logit(other) + 1e-5)


def test_logistic_fgsm_invariants():
  x, y = _data(6, (3, 3, 2))
  w = np.random.default_rng(2).normal(size=(3, 3, 2)).astype(np.float32)
  out = np.asarray(analysis.logistic_fgsm(w, x, y, eps=0.1))
  assert out.shape == x.shape and out.dtype == np.float32
  assert np.abs(out - x).max() <= 0.1 + 1e-6
  assert out.min() >= 0 and out.max() <= 1
  np.testing.assert_array_equal(analysis.logistic_fgsm(w, x, y, eps=0.),
                                x)
  # Per example: label 1 moves against w, label 0 along it (inside the box).
  inside = (x > 0.1) & (x < 0.9)
  d = (out - x) * np.sign(w)[None]
  sign = np.where(y == 1, -1., 1.).reshape(-1, 1, 1, 1)
  np.testing.assert_allclose((d * sign)[inside & (w[None] != 0)], 0.1,
                             atol=1e-6)
  # Per-example eps; jit agrees.
  e = np.linspace(0., 0.2, 6).astype(np.float32)
  per = jax.jit(lambda x, y, e: analysis.logistic_fgsm(w, x, y, eps=e))(
      x, y, e)
  for i in range(6):
    np.testing.assert_allclose(per[i], analysis.logistic_fgsm(
        w, x[i:i + 1], y[i:i + 1], eps=float(e[i]))[0], atol=1e-7)


@pytest.mark.parametrize("bounds", [(0., 1.), (-1., 1.)])
def test_logistic_fgsm_stays_in_bounds(bounds):
  x, y = _data(4)
  x = x * (bounds[1] - bounds[0]) + bounds[0]
  w = np.ones((8, 8, 1), np.float32)
  out = np.asarray(analysis.logistic_fgsm(w, x, y, eps=0.5, bounds=bounds))
  assert out.min() >= bounds[0] and out.max() <= bounds[1]
