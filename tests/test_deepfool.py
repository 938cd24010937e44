"""Tests for advjax/attacks/deepfool.py."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from advjax.attacks.deepfool import deepfool


def _affine(seed, d=12, k=5, batch=16):
  rng = np.random.default_rng(seed)
  w = rng.normal(size=(d, k))
  b = rng.normal(size=k)
  x = rng.normal(size=(batch, d, 1, 1)).astype(np.float32)
  model_fn = lambda z: z.reshape(z.shape[0], -1) @ jnp.asarray(  # pylint: disable=g-long-lambda
      w, jnp.float32) + jnp.asarray(b, jnp.float32)
  y = np.argmax(np.asarray(model_fn(jnp.asarray(x))), axis=1)
  return model_fn, w, b, x, y


@pytest.mark.parametrize("norm, dual", [("l2", 2), ("linf", 1)])
def test_affine_model_exact_minimal_perturbation(norm, dual):
  model_fn, w, b, x, y = _affine(0)
  overshoot = 0.02
  res = jax.jit(lambda x, y: deepfool(
      model_fn, x, y, norm=norm, overshoot=overshoot, bounds=(-100., 100.),
      return_result=True))(x, jnp.asarray(y))
  assert bool(jnp.all(res.success))
  np.testing.assert_array_equal(res.n_iters, 1)  # linear: one step
  # Closed form: the distance to the nearest boundary f_k = f_y in the norm
  # whose dual measures the gradient difference.
  logits = x.reshape(len(x), -1) @ w + b
  for i in range(len(x)):
    f = logits[i] - logits[i, y[i]]
    g = w - w[:, [y[i]]]
    others = [k for k in range(w.shape[1]) if k != y[i]]
    d_min = min(abs(f[k]) / np.linalg.norm(g[:, k], dual) for k in others)
    got = float(res.distance[i]) / (1 + overshoot)
    assert abs(got - d_min) <= 0.01 * d_min, (i, got, d_min)


def test_trained_model_fooled_inside_the_box(digits_model):
  m = digits_model
  x, y = m.x_test[:64], m.y_test[:64]
  for norm in ("l2", "linf"):
    res = jax.jit(lambda x, y, norm=norm: deepfool(
        m.model_fn, x, y, norm=norm, return_result=True))(x, y)
    assert float(jnp.mean(res.success)) >= 0.95, norm
    assert float(res.x_adv.min()) >= 0. and float(res.x_adv.max()) <= 1.
    pred = jnp.argmax(m.model_fn(res.x_adv), axis=1)
    np.testing.assert_array_equal(pred != y, res.success)
    assert res.x_adv.dtype == x.dtype and res.x_adv.shape == x.shape
    # Distances are reported for successes only and match the images.
    from advjax.projections import lp_norm  # pylint: disable=import-outside-toplevel
    np.testing.assert_allclose(
        res.distance, jnp.where(res.success, lp_norm(res.x_adv - x, norm), 0.),
        rtol=1e-6)


def test_misclassified_inputs_are_returned_unchanged(digits_model):
  m = digits_model
  x = m.x_test[:8]
  wrong = (jnp.argmax(m.model_fn(x), axis=1) + 1) % 10
  res = deepfool(m.model_fn, x, wrong, return_result=True)
  np.testing.assert_array_equal(res.x_adv, x)
  np.testing.assert_array_equal(res.success, True)
  np.testing.assert_array_equal(res.distance, 0.)
  np.testing.assert_array_equal(res.n_iters, 0)


def test_batch_consistency_and_plain_output(digits_model):
  m = digits_model
  x, y = m.x_test[:6], m.y_test[:6]
  fn = jax.jit(lambda x, y: deepfool(m.model_fn, x, y))
  whole = fn(x, y)
  assert isinstance(whole, jax.Array)
  for i in (0, 3):
    np.testing.assert_allclose(fn(x[i:i + 1], y[i:i + 1])[0], whole[i],
                               atol=1e-5)


def test_bad_inputs(digits_model):
  m = digits_model
  x, y = m.x_test[:2], m.y_test[:2]
  with pytest.raises(ValueError, match="norm"):
    deepfool(m.model_fn, x, y, norm="l1")
  with pytest.raises(ValueError, match="steps"):
    deepfool(m.model_fn, x, y, steps=0)
  with pytest.raises(ValueError, match="labels"):
    deepfool(m.model_fn, x, y + 20)
  with pytest.raises(ValueError, match="NaN"):
    deepfool(m.model_fn, x.at[0, 0, 0, 0].set(jnp.nan), y)
