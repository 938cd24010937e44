"""Tests for advjax/analysis/transfer.py's transfer between models on the
batched map: distortions, the amplified and noise controls, the transfer
matrix, on known answers and independent of the batch size."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from advjax import analysis
from advjax.attacks import gradient


def _linear(variables, x):
  """Logits `x w + b` of flattened inputs."""
  return x.reshape(x.shape[0], -1) @ variables["w"] + variables["b"]


def _mean_classifier(sign: float):
  """Class 1 iff `sign * (mean pixel - 0.5) > 0` (on 2x2x1 inputs)."""
  w = jnp.full((4, 2), 0.25 * 10. * sign) * jnp.array([-1., 1.])
  return _linear, {"w": w, "b": jnp.array([5. * sign, -5. * sign])}


def test_rms_amplified_and_mean_distortion_by_hand():
  x = np.full((2, 2, 2, 1), 0.5, np.float32)
  delta = np.zeros_like(x)
  delta[0, 0, 0, 0] = 0.2  # rms = sqrt(0.04 / 4) = 0.1, L2 0.2
  np.testing.assert_allclose(analysis.rms(delta), [0.1, 0.])
  amp = analysis.amplified(x, delta, 0.05)
  assert amp.dtype == np.float32
  np.testing.assert_allclose(analysis.rms(amp - x), [0.05, 0.], atol=1e-7)
  np.testing.assert_array_equal(amp[1], x[1])  # a zero perturbation stays
  clipped = analysis.amplified(x, delta, 1.)  # 0.5 + 2 -> 1
  assert clipped.max() == 1.
  d = analysis.mean_distortion(x, {"adv": x + delta, "same": x})
  np.testing.assert_allclose([d["adv"], d["same"]], [0.05, 0.], atol=1e-7)
  l2 = analysis.mean_distortion(x, {"adv": x + delta}, "l2")
  np.testing.assert_allclose(l2["adv"], 0.1, atol=1e-7)  # (0.2 + 0) / 2
  with pytest.raises(ValueError, match="norm"):
    analysis.mean_distortion(x, {}, "linf")


def test_gaussian_noise_is_per_example_and_batch_independent():
  x = np.full((70, 4, 4, 1), 0.5, np.float32)
  key = jax.random.key(3)
  a = analysis.gaussian_noise(x, 0.1, key=key, batch_size=7,
                              device_batch_size=7)
  b = analysis.gaussian_noise(x, 0.1, key=key, batch_size=64)
  np.testing.assert_array_equal(a, b)
  assert a.dtype == np.float32 and a.min() >= 0 and a.max() <= 1
  # Input i's noise: stddev * normal(fold_in(key, i)).
  want = 0.5 + 0.1 * jax.random.normal(jax.random.fold_in(key, 9), (4, 4, 1))
  np.testing.assert_allclose(a[9], want, atol=1e-6)
  assert abs(analysis.rms(a - x).mean() - 0.1) < 0.01
  assert not np.array_equal(a[0], a[1])  # each input its own draw
  c = analysis.gaussian_noise(x, 0.3, key=key)  # the same draws, scaled
  np.testing.assert_allclose(np.clip(0.5 + 3 * (a - 0.5), 0, 1),
                             c, atol=1e-5)


def test_transfer_matrix_and_error_rate_by_hand():
  up, down = _mean_classifier(1.), _mean_classifier(-1.)
  models = {"up": up, "down": down}
  y = np.array([0, 0, 1, 1], np.int32)
  x = np.array([0.2, 0.4, 0.6, 0.8], np.float32)[:, None, None, None] * (
      np.ones((4, 2, 2, 1), np.float32))
  # up is right everywhere, down wrong everywhere; on the flipped inputs
  # (1 - x) the other way round; on x with the last one flipped, 1 / 4.
  last = x.copy()
  last[3] = 0.2
  m = analysis.transfer_matrix(models, {"x": x, "flipped": 1 - x,
                                        "last": last}, y)
  assert m == {"x": [0., 1.], "flipped": [1., 0.], "last": [0.25, 0.75]}
  assert analysis.error_rate(up, last, y) == 0.25
  assert analysis.off_diagonal_mean({"up": [1., 0.2], "down": [0.4, 1.]},
                                    ["up", "down"]) == pytest.approx(0.3)
  assert analysis.off_diagonal_mean(
      {"amp up": [1., 0.2], "amp down": [0.6, 1.]}, ["up", "down"],
      "amp ") == pytest.approx(0.4)


def test_transfer_examples_fgsm_on_a_linear_model():
  up = _mean_classifier(1.)
  x = np.full((3, 2, 2, 1), 0.4, np.float32)
  y = np.zeros((3,), np.int32)
  adv = analysis.transfer_examples({"up": up}, x, y, attack=gradient.fgsm,
                                   eps=0.05)
  # The loss grows with the mean pixel: FGSM adds eps everywhere.
  np.testing.assert_allclose(adv["up"], 0.45, atol=1e-6)


def test_the_transfer_matrix_does_not_depend_on_the_batch_size():
  k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
  models = {f"m{i}": (_linear, {"w": 0.3 * jax.random.normal(k, (16, 3)),
                                "b": jnp.zeros((3,))})
            for i, k in enumerate((k1, k2))}
  x = jax.random.uniform(k3, (70, 4, 4, 1))
  y = np.asarray(jnp.arange(70) % 3, np.int32)
  pgd = functools.partial(gradient.pgd, steps=3)  # random start: keyed

  def matrix(batch):
    kw = dict(batch_size=batch, device_batch_size=batch)
    rows = analysis.transfer_examples(models, x, y, attack=pgd, eps=0.1,
                                      key=jax.random.key(1), **kw)
    rows["noise"] = analysis.gaussian_noise(x, 0.1, key=jax.random.key(2),
                                            **kw)
    return rows, analysis.transfer_matrix(models, rows, y, **kw)

  rows7, m7 = matrix(7)
  rows64, m64 = matrix(64)
  assert m7 == m64
  for name in rows7:
    np.testing.assert_allclose(rows7[name], rows64[name], atol=1e-6)
  assert m7["m0"][0] > analysis.error_rate(models["m0"], x, y)
  other = analysis.transfer_examples(models, x, y, attack=pgd, eps=0.1,
                                     key=jax.random.key(5))
  assert not np.array_equal(other["m0"], rows64["m0"])  # keyed start
