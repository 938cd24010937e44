"""Tests for advjax/transforms.py."""
import functools

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


# --- jpeg ---

# One compiled codec per shape and setting, shared by the tests below.
_jpeg = jax.jit(T.jpeg, static_argnames=("chroma_subsampling", "rounding"))


@pytest.fixture(scope="module")
def photos():
  """Natural images: 32x48 crops of scikit-learn's two bundled photos
  (china, flower), 4x downsized, uint8 `[2, 32, 48, 3]`."""
  from sklearn import datasets  # pylint: disable=import-outside-toplevel
  image = pytest.importorskip("PIL.Image")
  china, flower = datasets.load_sample_images().images
  crops = [img[y:y + 128, x:x + 192] for img, (y, x) in
           ((china, (100, 200)), (flower, (150, 250)))]
  return np.stack([np.asarray(image.fromarray(c).resize((48, 32),
                                                        image.BILINEAR))
                   for c in crops])


def _pillow_jpeg(u8, quality, subsampling):
  """Pillow's encode + decode of one uint8 `[H, W, C]` image."""
  import io  # pylint: disable=import-outside-toplevel
  from PIL import Image  # pylint: disable=import-outside-toplevel
  buf = io.BytesIO()
  Image.fromarray(u8.squeeze(-1) if u8.shape[-1] == 1 else u8).save(
      buf, "JPEG", quality=quality, subsampling=subsampling)
  buf.seek(0)
  return np.asarray(Image.open(buf), np.float64).reshape(u8.shape)


def test_jpeg_quantisation_tables_are_libjpegs():
  import io  # pylint: disable=import-outside-toplevel
  image = pytest.importorskip("PIL.Image")
  luma, chroma = jax.jit(T._quant_tables)(jnp.arange(1., 101.))
  for q in range(1, 101):
    buf = io.BytesIO()
    image.new("RGB", (8, 8)).save(buf, "JPEG", quality=q)
    buf.seek(0)
    tables = image.open(buf).quantization  # natural order
    np.testing.assert_array_equal(np.asarray(luma[q - 1]).ravel(), tables[0])
    np.testing.assert_array_equal(np.asarray(chroma[q - 1]).ravel(),
                                  tables[1])


def test_jpeg_matches_pillow(photos):
  from PIL import features  # pylint: disable=import-outside-toplevel
  gray = np.round(photos @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
  cases = (("4:2:0", photos, True, 2), ("4:4:4", photos, False, 0),
           ("grey", gray[..., None], True, 0))
  for name, u8, sub, pil_sub in cases:
    x = jnp.asarray(u8 / 255., jnp.float32)
    for q in (10, 25, 50, 75, 95):
      ours = np.asarray(_jpeg(x, float(q), chroma_subsampling=sub),
                        np.float64) * 255.
      ref = np.stack([_pillow_jpeg(u, q, pil_sub) for u in u8])
      mad = np.abs(ours - ref).mean()
      # Measured <= 0.70 levels (4:4:4 at q 95; 0.52 at q 25): libjpeg's
      # integer DCT is off the exact one by about a unit, which flips some
      # roundings. The error the codec adds agrees to 0.03 levels.
      assert mad < 1.0, (name, q, mad)
      assert abs(np.abs(ours - u8).mean() - np.abs(ref - u8).mean()) < 0.1
      if q == 10 and features.check_feature("libjpeg_turbo"):
        # Steps of 40+ levels: the integer DCT's unit errors flip nothing,
        # only rare one-level ties differ (measured 0.010).
        assert mad < 0.05, (name, mad)


def test_jpeg_quality_100_is_near_identity_and_error_falls_with_quality(
    photos):
  yy, xx = np.meshgrid(np.linspace(0, 1, 16), np.linspace(0, 1, 24),
                       indexing="ij")
  smooth = np.stack([0.2 + 0.6 * yy, 0.5 + 0.3 * np.sin(2 * xx) * yy,
                     0.8 - 0.5 * xx], -1)[None]
  smooth = jnp.asarray(np.round(smooth * 255.) / 255., jnp.float32)
  # Greyscale 8-bit: unit steps, then 8-bit samples, give the image back.
  np.testing.assert_allclose(
      _jpeg(smooth[..., :1], 100., chroma_subsampling=True), smooth[..., :1],
      atol=1e-6)
  # Colour (4:4:4): the 8-bit YCbCr round trip is what is lost, as with
  # Pillow (mean 0.44, max 3 levels there; 0.42 and 3 here).
  err = np.abs(np.asarray(_jpeg(smooth, 100., chroma_subsampling=False))
               - np.asarray(smooth)) * 255.
  assert err.mean() < 0.5 and err.max() <= 3. + 1e-3
  x = jnp.asarray(photos / 255., jnp.float32)
  errs = [float(jnp.abs(_jpeg(x, q, chroma_subsampling=True) - x).mean())
          * 255. for q in (2., 5., 10., 25., 50., 75., 90., 100.)]
  assert all(a > b for a, b in zip(errs, errs[1:])), errs


def test_jpeg_per_example_quality_jit_and_no_recompilation(photos):
  x = jnp.asarray(photos / 255., jnp.float32)
  qualities = jnp.array([10., 90.])
  out = _jpeg(x, qualities, chroma_subsampling=True)
  assert out.shape == x.shape and out.dtype == x.dtype
  for i in range(2):
    np.testing.assert_allclose(
        out[i], _jpeg(x[i:i + 1], float(qualities[i]),
                      chroma_subsampling=True)[0], atol=1e-6)
  traces = []

  def compress(x, q):
    traces.append(1)
    return T.jpeg(x, q)

  jitted = jax.jit(compress)
  small = x[:, :8, :12, :1]  # (the property is shape-independent)
  for q in (20., 60., 95.):
    np.testing.assert_allclose(jitted(small, q), jitted(small, jnp.full(2, q)),
                               atol=1e-6)
  assert len(traces) == 2  # one for a scalar quality, one for [B]


@functools.partial(jax.jit, static_argnums=2)
def _jpeg_grads(x, w, roundings):
  """`jpeg(x, 50)`, and the gradients of `sum(jpeg(x, 50) * w)` under each
  of `roundings`."""
  out, vjp = jax.vjp(lambda x: T.jpeg(x, 50, rounding=roundings[0]), x)
  grads = (vjp(w)[0],) + tuple(
      jax.grad(lambda x, r=r: jnp.sum(T.jpeg(x, 50, rounding=r) * w))(x)
      for r in roundings[1:])
  return out, grads


def test_jpeg_odd_sizes_bounds_and_gradients():
  rng = np.random.default_rng(0)
  x1 = jnp.asarray(rng.uniform(0.2, 0.8, (2, 28, 28, 1)), jnp.float32)
  w1 = jnp.asarray(rng.normal(size=x1.shape), jnp.float32)
  out, (g_st, g_cubic, g_exact) = _jpeg_grads(
      x1, w1, ("straight_through", "cubic", "exact"))
  assert out.shape == x1.shape and bool(jnp.all(jnp.isfinite(out)))
  assert float(out.min()) >= 0. and float(out.max()) <= 1.
  # Straight-through roundings pass gradients as the identity, and the DCT
  # and (de)quantisation are inverses: the VJP is w away from the clips.
  np.testing.assert_allclose(g_st, w1, atol=1e-5)
  assert bool(jnp.all(jnp.isfinite(g_cubic)))
  assert float(jnp.abs(g_cubic).mean()) > 0.1
  assert float(jnp.abs(g_exact).max()) == 0.  # a real codec's: masked
  # Other bounds: the same codec on the affinely mapped image.
  np.testing.assert_allclose(_jpeg(2. * x1 - 1., 50., bounds=(-1., 1.)),
                             2. * out - 1., atol=1e-5)
  # Colour, 4:2:0, neither side a multiple of 8 (nor of 16).
  x3 = jnp.asarray(rng.uniform(0.2, 0.8, (2, 10, 13, 3)), jnp.float32)
  w3 = jnp.asarray(rng.normal(size=x3.shape), jnp.float32)
  out, (g_st,) = _jpeg_grads(x3, w3, ("straight_through",))
  assert out.shape == x3.shape and bool(jnp.all(jnp.isfinite(out)))
  assert float(out.min()) >= 0. and float(out.max()) <= 1.
  assert bool(jnp.all(jnp.isfinite(g_st))) and float(jnp.abs(g_st).mean()) > 0.1


def test_jpeg_bad_inputs():
  x = _images(c=3)
  with pytest.raises(ValueError, match="B, H, W, C"):
    T.jpeg(x[0])
  with pytest.raises(TypeError, match="floating"):
    T.jpeg(x.astype(jnp.int32))
  with pytest.raises(ValueError, match="1 or 3 channels"):
    T.jpeg(_images(c=2))
  for q in (0., 101., jnp.array([50., 0., 75.])):
    with pytest.raises(ValueError, match="quality"):
      T.jpeg(x, q)
  with pytest.raises(ValueError, match="per-example"):
    T.jpeg(x, jnp.array([50., 60.]))
  with pytest.raises(ValueError, match="rounding"):
    T.jpeg(x, rounding="floor")
  with pytest.raises(ValueError, match="bounds"):
    T.jpeg(x, bounds=(1., 0.))


def test_gaussian_blur_preserves_mass():
  # An impulse away from the border spreads, but its total stays 1.
  x = jnp.zeros((2, 15, 15, 1)).at[:, 7, 7, 0].set(1.)
  out = T.gaussian_blur(x, jnp.array([0.8, 1.5]), kernel_size=7)
  np.testing.assert_allclose(out.sum(axis=(1, 2, 3)), 1., atol=1e-5)
  assert float(out[0, 7, 7, 0]) < 1. and float(out[1, 7, 7, 0]) < float(
      out[0, 7, 7, 0])


def test_transform_grid_names_units_and_apply():
  grid = T.transform_grid(255., brightness=(-30., 30.), contrast=(0.8,),
                          blur=(0.5, 1.), noise=(8.,), jpeg=(75.,))
  assert [t.name for t in grid] == [
      "brightness -30", "brightness +30", "contrast x0.8", "blur sigma 0.5",
      "blur sigma 1", "noise std 8", "JPEG quality 75"]
  assert {t.taps for t in grid if t.kind == "blur"} == {7}  # one shape
  x = jnp.full((2, 8, 8, 1), 0.5)
  np.testing.assert_allclose(T.apply(x, grid[1]), 0.5 + 30 / 255, rtol=1e-6)
  np.testing.assert_allclose(T.apply(x, grid[2]), 0.4, rtol=1e-6)
  keys = jax.random.split(jax.random.key(0), 2)
  noisy = T.apply(x, grid[5], key=keys)
  # Per-example keys: example 1's noise is its own, whatever the batch.
  np.testing.assert_array_equal(noisy[1:], T.apply(x[1:], grid[5],
                                                   key=keys[1:]))
  assert 6 / 255 < float(jnp.std(noisy - x)) < 10 / 255
  with pytest.raises(ValueError, match="needs a key"):
    T.apply(x, grid[5])
  with pytest.raises(ValueError, match="unknown kinds"):
    T.transform_grid(rotation=(1.,))


# --------------------------------------------------------------------------
# perspective
# --------------------------------------------------------------------------
# Jitted: op-by-op, map_coordinates compiles each of its many small ops.
_perspective = jax.jit(T.perspective, static_argnames="mode")
_print_photo = jax.jit(T.print_photo, static_argnums=1)


def _rect(b=3, h=6, w=7, c=2, seed=0):
  return jnp.asarray(np.random.default_rng(seed).uniform(size=(b, h, w, c)),
                     jnp.float32)


def test_perspective_zero_offsets_identity_equal_offsets_translate():
  x = _rect()
  np.testing.assert_allclose(_perspective(x, jnp.zeros((4, 2))), x,
                             atol=1e-6)
  np.testing.assert_allclose(_perspective(x, jnp.zeros((3, 4, 2))), x,
                             atol=1e-6)
  # The four corners moved alike: a translation, zero fill.
  off = jnp.tile(jnp.array([1.5, -0.5]), (4, 1))
  np.testing.assert_allclose(_perspective(x, off),
                             T.rotate_translate(x, 0., 1.5, -0.5), atol=1e-5)


def test_perspective_moves_a_corner_by_its_offset():
  x = _rect()
  off = jnp.zeros((4, 2)).at[0].set([2., 1.])  # top-left -> (x 2, y 1)
  out = np.asarray(_perspective(x, off))
  xn = np.asarray(x)
  np.testing.assert_allclose(out[:, 1, 2], xn[:, 0, 0], atol=1e-5)
  for r, c in ((0, 6), (5, 6), (5, 0)):  # the other corners stay
    np.testing.assert_allclose(out[:, r, c], xn[:, r, c], atol=1e-5)


def _reference_perspective(img, off):
  """Float64 NumPy/SciPy: the homography in pixel coordinates, bilinear
  sampling with edge replication."""
  from scipy import ndimage  # pylint: disable=import-outside-toplevel
  h, w, c = img.shape
  src = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], float)
  dst = src + off
  a, b = [], []
  for (u, v), (px, py) in zip(dst, src):  # output (dst) -> input (src)
    a += [[u, v, 1, 0, 0, 0, -u * px, -v * px],
          [0, 0, 0, u, v, 1, -u * py, -v * py]]
    b += [px, py]
  m = np.append(np.linalg.solve(np.array(a), np.array(b)), 1.).reshape(3, 3)
  rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
  p = m @ np.stack([cols.ravel(), rows.ravel(), np.ones(h * w)])
  sx, sy = (p[0] / p[2]).reshape(h, w), (p[1] / p[2]).reshape(h, w)
  return np.stack([ndimage.map_coordinates(img[..., k], [sy, sx], order=1,
                                           mode="nearest")
                   for k in range(c)], -1)


def test_perspective_matches_a_float64_reference():
  x = _rect(b=2, h=9, w=11, c=3, seed=1)
  off = np.random.default_rng(2).uniform(-1.5, 1.5, (2, 4, 2))
  out = np.asarray(_perspective(x, jnp.asarray(off, jnp.float32),
                                 mode="nearest"))
  for i in range(2):
    np.testing.assert_allclose(
        out[i], _reference_perspective(np.asarray(x[i], float), off[i]),
        atol=1e-5)


def test_perspective_per_example_jit_and_differentiable():
  x = _rect()
  off = jnp.asarray(np.random.default_rng(3).uniform(-1, 1, (3, 4, 2)),
                    jnp.float32)
  out = T.perspective(x, off)  # no jit
  np.testing.assert_allclose(_perspective(x, off), out, atol=1e-6)
  for i in range(3):
    np.testing.assert_allclose(_perspective(x[i:i + 1], off[i:i + 1])[0],
                               out[i], atol=1e-6)
  g = jax.jit(jax.grad(lambda o: jnp.sum(T.perspective(x, o) ** 2)))(off)
  assert g.shape == off.shape and bool(jnp.all(jnp.isfinite(g)))
  assert float(jnp.abs(g).max()) > 0


def test_perspective_bad_inputs():
  x = _rect()
  with pytest.raises(ValueError, match="offsets"):
    T.perspective(x, jnp.zeros((3, 2)))
  with pytest.raises(ValueError, match="offsets"):
    T.perspective(x, jnp.zeros((2, 4, 2)))
  with pytest.raises(ValueError, match="mode"):
    T.perspective(x, jnp.zeros((4, 2)), mode="edge")
  with pytest.raises(ValueError, match="2 x 2"):
    T.perspective(jnp.zeros((1, 1, 5, 1)), jnp.zeros((4, 2)))
  with pytest.raises(ValueError, match=r"\[B, H, W, C\]"):
    T.perspective(jnp.zeros((5, 5, 1)), jnp.zeros((4, 2)))
  with pytest.raises(TypeError):
    T.perspective(jnp.zeros((1, 4, 4, 1), jnp.int32), jnp.zeros((4, 2)))


# --------------------------------------------------------------------------
# print_photo: the simulated print-and-photograph chain
# --------------------------------------------------------------------------
def _keys(n, seed=0):
  return jax.vmap(lambda i: jax.random.fold_in(jax.random.key(seed), i))(
      jnp.arange(n))


def test_print_photo_with_every_strength_zero_is_the_identity():
  x = _rect(c=3)
  np.testing.assert_array_equal(T.print_photo(x, T.PhotoChain(), key=_keys(3)),
                                x)
  # The chain is one transform of a grid: `apply` runs it.
  chain = T.PhotoChain(blur=0.5)
  assert chain.name == "simulated photo"
  np.testing.assert_array_equal(T.apply(x, chain, key=_keys(3)),
                                T.gaussian_blur(x, 0.5))


@pytest.mark.parametrize("stage, value", [
    ("warp", 0.05), ("blur", 0.5), ("noise", 4.), ("contrast", 0.1),
    ("brightness", 10.), ("jpeg", 75.)])
def test_print_photo_stages_per_example_and_in_the_box(stage, value):
  x = _rect(b=4, h=8, w=8, c=1, seed=4)
  chain = T.PhotoChain(**{stage: value}, scale=255.)
  keys = _keys(4, seed=5)
  # Jit only the warp (map_coordinates op by op is slow; the rest is not).
  photo = _print_photo if stage == "warp" else T.print_photo
  out = photo(x, chain, key=keys)
  assert out.shape == x.shape and out.dtype == x.dtype
  assert float(out.min()) >= 0. and float(out.max()) <= 1.
  assert float(jnp.abs(out - x).max()) > 1e-3
  # An example's draw is its own key's: alone = in the batch.
  np.testing.assert_allclose(photo(x[2:3], chain, key=keys[2:3])[0],
                             out[2], atol=1e-6)


def test_print_photo_each_stage_does_what_it_says():
  grey = jnp.full((4, 8, 8, 1), 0.5)
  keys = _keys(4, seed=6)
  photo = lambda x, **s: np.asarray(T.print_photo(
      x, T.PhotoChain(**s, scale=255.), key=keys))
  # Brightness and contrast: one random change per example, within range.
  d = photo(grey, brightness=10.) - 0.5
  assert np.ptp(d, axis=(1, 2, 3)).max() < 1e-6
  assert np.abs(d).max() <= 10 / 255 + 1e-6 and np.ptp(d[:, 0, 0, 0]) > 0
  f = photo(grey, contrast=0.1) / 0.5
  assert np.ptp(f, axis=(1, 2, 3)).max() < 1e-6
  assert np.all((f >= 0.9 - 1e-6) & (f <= 1.1 + 1e-6))
  # Noise: per pixel, std noise / scale.
  assert abs(np.std(photo(grey, noise=8.) - 0.5) - 8 / 255) < 2 / 255
  # Warp with edge replication leaves a constant image; blur and JPEG are
  # the deterministic transforms.
  np.testing.assert_allclose(_print_photo(grey, T.PhotoChain(warp=0.2),
                                          key=keys), 0.5, atol=1e-6)
  x = _rect(b=4, h=8, w=8, c=1, seed=7)
  np.testing.assert_allclose(photo(x, blur=0.7), T.gaussian_blur(x, 0.7),
                             atol=1e-6)
  np.testing.assert_allclose(photo(x, jpeg=50.), T.jpeg(x, 50.), atol=1e-6)


def test_print_photo_bad_inputs():
  x = _rect(c=1)
  for chain in (T.PhotoChain(warp=0.25), T.PhotoChain(contrast=1.),
                T.PhotoChain(blur=-1.), T.PhotoChain(jpeg=0.5),
                T.PhotoChain(jpeg=101.), T.PhotoChain(scale=0.)):
    with pytest.raises(ValueError, match="print_photo"):
      T.print_photo(x, chain, key=_keys(3))
  with pytest.raises(ValueError, match="key"):
    T.print_photo(x, T.PhotoChain(noise=1.), key=None)
