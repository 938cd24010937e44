"""Tests for advjax/evaluation/confidence.py: error and confidence on clean,
attacked and transferred inputs, on the batched map."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from advjax import evaluation, models
from advjax.attacks import gradient


def test_error_confidence_of_probabilities():
  probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7]])
  r = evaluation.ErrorConfidence.of(probs, np.array([0, 0, 1]))
  assert r.error == pytest.approx(1 / 3)
  assert r.confidence_on_errors == pytest.approx(0.8)
  assert r.summary() == {"error": r.error, "confidence": r.confidence_on_errors}
  assert np.isnan(evaluation.ErrorConfidence.of(probs[:1], [0])
                  .confidence_on_errors)


@pytest.fixture(scope="module")
def linear():
  model = models.FC10(num_classes=3)
  v = models.init_model(model, jax.random.key(0), (4, 4, 1))
  rng = np.random.default_rng(0)
  x = rng.uniform(size=(70, 4, 4, 1)).astype(np.float32)
  y = rng.integers(0, 3, 70).astype(np.int32)
  return (lambda v, z: model.apply(v, z, train=False)), v, x, y


def test_error_confidence_clean_matches_the_softmax(linear):
  apply_fn, v, x, y = linear
  r = evaluation.error_confidence(apply_fn, v, x, y, batch_size=16,
                                  device_batch_size=8)
  probs = np.asarray(jax.nn.softmax(apply_fn(v, x)))
  ref = evaluation.ErrorConfidence.of(probs, y)
  np.testing.assert_array_equal(r.correct, ref.correct)
  np.testing.assert_allclose(r.confidence, ref.confidence, rtol=1e-5)
  assert r.inputs is None and r.correct.shape == (70,)


def test_error_confidence_under_attack_and_transfer(linear):
  apply_fn, v, x, y = linear
  r = evaluation.error_confidence(apply_fn, v, x, y, attack=gradient.fgsm,
                                  eps=0.3, keep_inputs=True, batch_size=32)
  adv = gradient.fgsm(lambda z: apply_fn(v, z), jnp.asarray(x),
                      jnp.asarray(y), eps=0.3)
  np.testing.assert_allclose(r.inputs, adv, atol=1e-6)
  ref = evaluation.error_confidence(apply_fn, v, r.inputs, y)
  np.testing.assert_array_equal(r.correct, ref.correct)
  assert r.error >= evaluation.error_confidence(apply_fn, v, x, y).error
  # Batch-size independence (per-example keys for a random attack).
  pgd = functools.partial(gradient.pgd, steps=3)
  a = evaluation.error_confidence(apply_fn, v, x, y, attack=pgd, eps=0.2,
                                  key=jax.random.key(1), keep_inputs=True,
                                  batch_size=8, device_batch_size=8)
  b = evaluation.error_confidence(apply_fn, v, x, y, attack=pgd, eps=0.2,
                                  key=jax.random.key(1), keep_inputs=True,
                                  batch_size=64, device_batch_size=8)
  np.testing.assert_array_equal(a.inputs, b.inputs)
  # Transfer: the source model's FGSM examples judged by this one.
  v2 = jax.tree.map(lambda p: -p, v)
  t = evaluation.error_confidence(apply_fn, v2, x, y, attack=gradient.fgsm,
                                  eps=0.3, source=v, keep_inputs=True)
  np.testing.assert_allclose(t.inputs, r.inputs, atol=1e-6)
  judged = evaluation.error_confidence(apply_fn, v2, r.inputs, y)
  np.testing.assert_array_equal(t.correct, judged.correct)
