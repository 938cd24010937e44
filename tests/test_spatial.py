"""Tests for advjax/attacks/spatial.py."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from advjax.attacks import spatial as S
from advjax.transforms import rotate_translate

# 8x8 digits: 1 pixel is about 10 % of the width (Engstrom's 3 px of 28).
RANGE = dict(max_angle=30., max_shift=1.)


def test_grid_has_the_papers_size_and_the_identity():
  a, tx, ty = S.transform_grid()
  assert a.shape == tx.shape == ty.shape == (775,)
  assert bool(jnp.any((a == 0) & (tx == 0) & (ty == 0)))
  assert float(a.max()) == 30. and float(tx.min()) == -3.


def test_zero_range_is_the_identity(digits_model):
  m = digits_model
  x, y = m.x_test[:8], m.y_test[:8]
  res = S.spatial_grid(m.model_fn, x, y, max_angle=0., max_shift=0.,
                       angles=3, shifts=3, return_result=True)
  np.testing.assert_allclose(res.x_adv, x, atol=1e-6)
  np.testing.assert_array_equal(res.fooled,
                                jnp.argmax(m.model_fn(x), 1) != y)


def test_strength_ordering_and_reported_transforms(digits_model):
  m = digits_model
  x, y = m.x_test[:96], m.y_test[:96]
  key = jax.random.key(0)
  run = jax.jit(lambda x, y: (
      S.spatial_grid(m.model_fn, x, y, angles=11, shifts=3,
                     return_result=True, **RANGE),
      S.spatial_worst_of_k(m.model_fn, x, y, key=key, return_result=True,
                           **RANGE),
      S.spatial_random(m.model_fn, x, y, key=key, return_result=True,
                       **RANGE),
      S.spatial_pgd(m.model_fn, x, y, key=key, steps=20, return_result=True,
                    **RANGE)))
  grid, worst, rand, first = run(x, y)

  def acc(r):
    return float(jnp.mean(jnp.argmax(m.model_fn(r.x_adv), 1) == y))

  clean = float(jnp.mean(jnp.argmax(m.model_fn(x), 1) == y))
  accs = [acc(r) for r in (grid, worst, rand, first)]
  # Exhaustive <= worst-of-10 <= one random draw <= clean; first-order
  # beats a random draw (measured: clean 96.9 %, grid 11 x 3 x 3 0.0 %,
  # worst-of-10 5.2 %, random 44.8 %, PGD-20 3.1 %).
  assert accs[0] <= accs[1] <= accs[2] <= clean, (accs, clean)
  assert accs[3] < accs[2], accs
  assert accs[0] < clean - 0.1, (accs, clean)
  for r in (grid, worst, rand, first):
    np.testing.assert_array_equal(
        r.fooled, jnp.argmax(m.model_fn(r.x_adv), 1) != y)
    np.testing.assert_allclose(r.x_adv,
                               rotate_translate(x, r.angle, r.tx, r.ty),
                               atol=1e-5)
    assert float(jnp.max(jnp.abs(r.angle))) <= 30. + 1e-4
    assert float(jnp.max(jnp.abs(r.tx))) <= 1. + 1e-6


def test_bad_inputs(digits_model):
  m = digits_model
  x, y = m.x_test[:2], m.y_test[:2]
  with pytest.raises(ValueError, match="max_angle"):
    S.spatial_grid(m.model_fn, x, y, max_angle=-1.)
  with pytest.raises(ValueError, match="k must"):
    S.spatial_worst_of_k(m.model_fn, x, y, key=jax.random.key(0), k=0)
  with pytest.raises(ValueError, match="H, W, C"):
    S.spatial_grid(m.model_fn, x.reshape(2, -1), y)


def test_grid_finds_the_true_worst_transform():
  """A model whose loss is a known function of the transform: its class-1
  logit is the cosine similarity of the image with the pattern rotated by
  a per-example target angle, so the cross-entropy of class 0 is largest
  exactly at that angle with no shift. The grid must return it."""
  h = 16
  ii, jj = np.meshgrid(np.arange(h), np.arange(h), indexing="ij")
  # An asymmetric "L", smooth and away from the border (no cropping).
  pattern = (((ii >= 4) & (ii <= 11) & (jj >= 5) & (jj <= 6))
             | ((ii >= 10) & (ii <= 11) & (jj >= 5) & (jj <= 10)))
  x0 = jnp.asarray(pattern, jnp.float32)[None, :, :, None]
  targets = jnp.array([-20., 12., 26.])  # on the 2-degree grid
  x = jnp.repeat(x0, 3, axis=0)
  templates = rotate_translate(x, targets)

  def model_fn(z):
    a, b = z.reshape(3, -1), templates.reshape(3, -1)
    cos = jnp.sum(a * b, 1) / (jnp.linalg.norm(a, axis=1)
                               * jnp.linalg.norm(b, axis=1) + 1e-12)
    return jnp.stack([jnp.zeros_like(cos), 20. * cos], -1)

  res = S.spatial_grid(model_fn, x, jnp.zeros((3,), jnp.int32),
                       max_angle=30., max_shift=1., return_result=True)
  np.testing.assert_allclose(res.angle, targets, atol=1e-4)
  np.testing.assert_allclose(res.tx, 0., atol=1e-6)
  np.testing.assert_allclose(res.ty, 0., atol=1e-6)


def test_spatial_robustness_orderings_and_batch_independence(digits_model):
  """The evaluator: per example, the identity is on the grid (grid <=
  natural), random is worst-of-k's first draw and first-order's start
  (both <= random); results do not depend on the batch size."""
  from advjax import evaluation
  m = digits_model
  x, y = np.asarray(m.x_test[:40]), np.asarray(m.y_test[:40])
  kw = dict(max_angle=30., max_shift=1., angles=7, shifts=3, k=5,
            pgd_steps=3, key=jax.random.key(3), device_batch_size=8)
  a = evaluation.spatial_robustness(m.apply_fn, m.variables, x, y,
                                    batch_size=8, **kw)
  b = evaluation.spatial_robustness(m.apply_fn, m.variables, x, y,
                                    batch_size=40, **kw)
  c = a.correct
  assert set(c) == set(evaluation.spatial.ATTACKS)
  assert not np.any(c["grid"] & ~c["natural"])
  assert not np.any(c["worst_of_k"] & ~c["random"])
  assert not np.any(c["first_order"] & ~c["random"])
  assert a.accuracy["grid"] < a.accuracy["natural"]
  for k in c:
    np.testing.assert_array_equal(c[k], b.correct[k])
  np.testing.assert_array_equal(a.grid_angle, b.grid_angle)
  with pytest.raises(ValueError, match="NHWC|\\[N, H, W, C\\]"):
    evaluation.spatial_robustness(m.apply_fn, m.variables, x.reshape(40, -1),
                                  y, **kw)


def test_spatial_ranges_is_spatial_robustness_at_each_range(digits_model):
  """`SpatialRanges`: per range, `spatial_robustness` with the shift
  scaled, grids of the given spacing and the key folded with the range's
  index; its summary is JSON, keeps the grid's per-example outcome as bits
  and the first `keep` worst transforms."""
  import json
  from advjax import evaluation
  m = digits_model
  x, y = np.asarray(m.x_test[:16]), np.asarray(m.y_test[:16])
  key = jax.random.key(5)
  # Grids of one size (3 x 3 x 3) at both ranges: one compilation.
  sweep = evaluation.SpatialRanges(((30., 3.), (24., 2.4)), scale=1 / 3,
                                   angle_step=40., shift_step=4., k=2,
                                   pgd_steps=1, key=key, batch_size=16, keep=4)
  assert sweep.grids() == [[3, 3, 3], [3, 3, 3]]
  assert evaluation.SpatialRanges(((30., 3.), (5., 1.))).grids() == [
      [121, 7, 7], [21, 3, 3]]  # Engstrom's spacing, 0.5 degree and 1 px
  res = sweep.run(m.apply_fn, m.variables, (x, y))
  assert res.labels == ("30:3", "24:2.4") == tuple(
      evaluation.range_label(a, s) for a, s in sweep.ranges)
  for t, ((a, s), g) in enumerate(zip(sweep.ranges, sweep.grids())):
    want = evaluation.spatial_robustness(
        m.apply_fn, m.variables, x, y, max_angle=a, max_shift=s / 3,
        angles=g[0], shifts=g[1], k=2, pgd_steps=1,
        key=jax.random.fold_in(key, t), batch_size=16)
    for attack, correct in want.correct.items():
      np.testing.assert_array_equal(res.results[t].correct[attack], correct)
  summary = json.loads(json.dumps(res.summary()))
  assert list(summary["accuracy"]) == ["30:3", "24:2.4"]
  assert summary["accuracy"]["30:3"] == res.results[0].accuracy
  for label, r in zip(res.labels, res.results):
    np.testing.assert_array_equal(
        evaluation.from_bits(summary["grid_correct"][label]),
        r.correct["grid"])
  assert {k: len(v) for k, v in summary["worst"].items()} == dict.fromkeys(
      ("angle", "tx", "ty", "pred"), 4)
  np.testing.assert_allclose(summary["worst"]["angle"],
                             res.results[0].grid_angle[:4])
