"""Tests for advjax/projections.py."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from advjax import projections as P


def _l1_reference(v, eps):
  """Euclidean projection onto the L1 ball by bisection on theta (float64)."""
  v = np.asarray(v, np.float64)
  if np.abs(v).sum() <= eps:
    return v
  lo, hi = 0., np.abs(v).max()
  for _ in range(200):
    theta = 0.5 * (lo + hi)
    if np.maximum(np.abs(v) - theta, 0).sum() > eps:
      lo = theta
    else:
      hi = theta
  return np.sign(v) * np.maximum(np.abs(v) - 0.5 * (lo + hi), 0)


@pytest.mark.parametrize("eps", [0., 0.1, 1.0, 3.0, 100.])
def test_l1_projection_matches_bisection_reference(eps):
  v = np.asarray(jax.random.normal(jax.random.key(0), (6, 3, 4, 2)))
  out = np.asarray(P.project_l1_ball(jnp.asarray(v), eps))
  for i in range(v.shape[0]):
    ref = _l1_reference(v[i].ravel(), eps).reshape(v[i].shape)
    np.testing.assert_allclose(out[i], ref, atol=1e-5)
    assert np.abs(out[i]).sum() <= eps + 1e-5


def test_l1_projection_is_not_rescaling():
  v = jnp.array([[3., 1., 0.]])
  out = P.project_l1_ball(v, 2.)
  np.testing.assert_allclose(out, [[2., 0., 0.]], atol=1e-6)


def test_l1_projection_is_closest_point_in_ball():
  # Any other point of the ball is at least as far from v as the projection.
  v = jax.random.normal(jax.random.key(1), (1, 10))
  p = P.project_l1_ball(v, 1.)
  others = P.random_l1_ball(jax.random.key(2), (500, 10), 1.)
  d_p = float(jnp.sum((v - p) ** 2))
  d_o = jnp.sum((v - others) ** 2, axis=1)
  assert d_p <= float(d_o.min()) + 1e-6


@pytest.mark.parametrize("norm", P.NORMS)
def test_projection_idempotent_inside_and_feasible(norm):
  key = jax.random.key(3)
  v = 2. * jax.random.normal(key, (8, 5, 5, 1))
  eps = jnp.linspace(0., 2., 8)
  p = P.project_ball(v, eps, norm)
  assert np.all(np.asarray(P.lp_norm(p, norm)) <= np.asarray(eps) + 1e-5)
  np.testing.assert_allclose(P.project_ball(p, eps, norm), p, atol=1e-6)
  inside = P.random_ball(key, v.shape, eps, norm)
  np.testing.assert_allclose(P.project_ball(inside, eps, norm), inside,
                             atol=1e-6)


def test_l2_projection_radial():
  v = jnp.array([[3., 4.]])
  np.testing.assert_allclose(P.project_l2_ball(v, 1.), [[0.6, 0.8]], atol=1e-6)
  np.testing.assert_allclose(P.project_l2_ball(jnp.zeros((1, 2)), 0.),
                             [[0., 0.]])


def test_box_projection_keeps_ball_and_box():
  x = jax.random.uniform(jax.random.key(4), (16, 6, 6, 1))
  for norm in P.NORMS:
    d = P.random_ball(jax.random.key(5), x.shape, 0.5, norm)
    db = P.project_box(d, x, (0., 1.))
    assert float((x + db).min()) >= 0. and float((x + db).max()) <= 1.
    assert np.all(np.asarray(P.lp_norm(db, norm)) <= 0.5 + 1e-5)


@pytest.mark.parametrize("norm", P.NORMS)
def test_random_ball_is_uniform_in_volume(norm):
  # For a uniform sample in a D-dim ball, (|d| / eps)^D ~ Uniform(0, 1).
  dim, n, eps = 4, 20000, 0.7
  d = P.random_ball(jax.random.key(6), (n, dim), eps, norm)
  r = np.asarray(P.lp_norm(d, norm)) / eps
  assert r.max() <= 1. + 1e-6
  u = np.sort(r ** dim)
  ks = np.max(np.abs(u - (np.arange(1, n + 1) / n)))
  assert ks < 0.015, ks  # KS statistic; 1.63/sqrt(n) = 0.0115 at p = 0.01
  # Symmetric: each coordinate has mean ~ 0 and is used in both signs.
  assert np.all(np.abs(np.asarray(d).mean(axis=0)) < 0.02 * eps)


@pytest.mark.parametrize("norm", P.NORMS)
def test_random_sphere_has_exact_norm(norm):
  eps = jnp.array([0., 0.1, 1., 2.5])
  d = P.random_sphere(jax.random.key(7), (4, 3, 3, 2), eps, norm)
  np.testing.assert_allclose(P.lp_norm(d, norm), eps, rtol=1e-5, atol=1e-7)


def test_unknown_norm():
  with pytest.raises(ValueError, match="Unknown norm"):
    P.project_ball(jnp.zeros((1, 2)), 1., "l3")
