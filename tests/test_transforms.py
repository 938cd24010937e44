"""Tests for advjax/transforms.py."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from advjax import transforms as T


def _images(b=3, h=6, w=6, c=2, seed=0):
  return jnp.asarray(np.random.default_rng(seed).uniform(size=(b, h, w, c)),
                     jnp.float32)


def test_rotate_translate_identity_shift_and_quarter_turn():
  x = _images()
  np.testing.assert_allclose(T.rotate_translate(x, 0.), x, atol=1e-6)
  # Integer shifts move pixels exactly, with zero fill.
  shifted = T.rotate_translate(x, 0., tx=1., ty=-2.)
  ref = np.zeros_like(x)
  ref[:, :4, 1:, :] = np.asarray(x)[:, 2:, :5, :]
  np.testing.assert_allclose(shifted, ref, atol=1e-6)
  # 90 degrees counter-clockwise about the centre of a square image.
  np.testing.assert_allclose(T.rotate_translate(x, 90.),
                             np.rot90(np.asarray(x), 1, axes=(1, 2)),
                             atol=1e-5)


def test_rotate_translate_per_example_and_differentiable():
  x = _images()
  angles, tx = jnp.array([0., 10., -20.]), jnp.array([0., 0.5, -1.])
  out = T.rotate_translate(x, angles, tx=tx)
  for i in range(3):
    np.testing.assert_allclose(
        out[i], T.rotate_translate(x[i:i + 1], angles[i], tx=tx[i])[0],
        atol=1e-6)

  def loss(a):
    return jnp.sum(T.rotate_translate(x, a, tx=0.3) ** 2)

  g = jax.grad(loss)(7.)
  fd = (loss(7.01) - loss(6.99)) / 0.02
  assert np.isfinite(g) and abs(g - fd) <= 1e-2 * max(1., abs(fd))


def test_photometric_transforms():
  x = _images()
  np.testing.assert_allclose(T.brightness(x, 0.2),
                             np.clip(np.asarray(x) + 0.2, 0, 1))
  np.testing.assert_allclose(T.contrast(x, jnp.array([0.5, 1., 2.])),
                             np.clip(np.asarray(x) * np.array(
                                 [0.5, 1., 2.])[:, None, None, None], 0, 1))
  noisy = T.gaussian_noise(x, 0.1, key=jax.random.key(0))
  assert float(noisy.min()) >= 0. and float(noisy.max()) <= 1.
  np.testing.assert_array_equal(
      noisy, T.gaussian_noise(x, 0.1, key=jax.random.key(0)))
  np.testing.assert_allclose(T.gaussian_noise(x, 0., key=jax.random.key(1)),
                             x)


def test_gaussian_blur_against_scipy():
  from scipy import ndimage  # pylint: disable=import-outside-toplevel
  x = _images(b=2, h=9, w=9, c=1)
  out = T.gaussian_blur(x, jnp.array([0.7, 1.2]), kernel_size=7)
  for i, s in enumerate((0.7, 1.2)):
    # scipy's 'mirror' border is OpenCV's reflect-101, jnp.pad's 'reflect'.
    ref = ndimage.gaussian_filter(np.asarray(x[i, ..., 0], np.float64), s,
                                  mode="mirror", truncate=3. / s)
    np.testing.assert_allclose(out[i, ..., 0], ref, atol=1e-5)
  # Mass-preserving on a constant image; differentiable in sigma.
  np.testing.assert_allclose(T.gaussian_blur(jnp.full((1, 5, 5, 3), 0.4),
                                             1.), 0.4, atol=1e-6)
  g = jax.grad(lambda s: jnp.sum(T.gaussian_blur(x, s, kernel_size=5)
                                 * x))(1.)
  assert np.isfinite(g)


def test_bad_inputs():
  x = _images()
  with pytest.raises(ValueError, match="B, H, W, C"):
    T.rotate_translate(x[0], 10.)
  with pytest.raises(TypeError, match="floating"):
    T.brightness(x.astype(jnp.int32), 0.1)
  with pytest.raises(ValueError, match="sigma"):
    T.gaussian_blur(x, 0.)
  with pytest.raises(ValueError, match="mu"):
    T.contrast(x, -1.)
  with pytest.raises(ValueError, match="per-example"):
    T.rotate_translate(x, jnp.zeros(2))
  with pytest.raises(ValueError, match="kernel_size"):
    T.gaussian_blur(x, 1., kernel_size=4)
