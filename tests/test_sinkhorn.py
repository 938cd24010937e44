"""Tests for advjax.sinkhorn: projected and conjugate Sinkhorn.

References written here: the exact (unregularised) projection as a QP over
the windowed plan variables solved by SciPy's SLSQP, the exact linear
maximisation as an LP (HiGHS), and a dense float64 NumPy implementation of
the same block-ascent iteration (exp space, SciPy's Lambert W) on tiny
images. Tolerances: 1e-12 for exact identities of the returned plan in
float64 (rows, columns, mass hold by construction), 1e-6 for the NumPy
iteration (the same algorithm; measured ~1e-12), and for the entropic vs
exact solutions a bound that shrinks with lam (the regularisation bias is
O(1/lam); measured 0.32 / 0.079 / 0.017 at lam 10 / 100 / 1000).
"""
import numpy as np
import pytest
import scipy.optimize
import scipy.special

import jax
import jax.numpy as jnp

from advjax import data
from advjax import sinkhorn as S

_STATIC = ("p", "kernel_size", "max_iterations")
project = jax.jit(S.project_wasserstein, static_argnames=_STATIC)
conjugate = jax.jit(S.conjugate_sinkhorn, static_argnames=_STATIC)


def _offsets(k):
  r = k // 2
  return [(di, dj) for di in range(-r, r + 1) for dj in range(-r, r + 1)]


def _pairs(h, w, k, p=2):
  """Windowed plan variables: (source, destination, cost) index arrays."""
  src, dst, cost = [], [], []
  for i in range(h):
    for j in range(w):
      for di, dj in _offsets(k):
        if 0 <= i + di < h and 0 <= j + dj < w:
          src.append(i * w + j)
          dst.append((i + di) * w + j + dj)
          cost.append(float(di * di + dj * dj) ** (p / 2))
  src, dst, cost = map(np.array, (src, dst, cost))
  n, npairs = h * w, len(src)
  rows = np.zeros((n, npairs))
  rows[src, np.arange(npairs)] = 1.
  cols = np.zeros((n, npairs))
  cols[dst, np.arange(npairs)] = 1.
  return src, dst, cost, rows, cols


def exact_projection(x, w, eps, k):
  """min 1/2 |w_n - Pi^T 1|^2 s.t. Pi 1 = x_n, <Pi, C> <= eps, Pi >= 0."""
  h, wd = x.shape
  m = x.sum()
  xn, wn = (x / m).ravel(), (w / m).ravel()
  src, dst, cost, rows, cols = _pairs(h, wd, k)
  q0 = np.where(src == dst, xn[src], 0.)
  res = scipy.optimize.minimize(
      lambda q: 0.5 * np.sum((wn - cols @ q) ** 2), q0,
      jac=lambda q: -cols.T @ (wn - cols @ q),
      bounds=[(0., None)] * len(q0), method="SLSQP",
      constraints=[
          dict(type="eq", fun=lambda q: rows @ q - xn, jac=lambda q: rows),
          dict(type="ineq", fun=lambda q: eps - cost @ q,
               jac=lambda q: -cost[None])],
      options=dict(ftol=1e-15, maxiter=1000))
  assert res.success, res.message
  return (cols @ res.x).reshape(h, wd) * m


def numpy_projection(x, w, eps, lam, k, max_iterations, tol, relaxation=1.):
  """The same iteration, dense float64 NumPy in exp space (small lam)."""
  h, wd = x.shape
  m = x.sum()
  xn, wn = (x / m).ravel(), (w / m).ravel()
  n = h * wd
  src, dst, cost_pairs, _, _ = _pairs(h, wd, k)
  mask = np.zeros((n, n))
  cmat = np.zeros((n, n))
  mask[src, dst] = 1.
  cmat[src, dst] = cost_pairs
  pos = xn > 0
  kern = lambda psi: mask * np.exp(-psi * cmat - 1.)

  def row_step(beta, psi):
    with np.errstate(divide="ignore"):
      return np.where(pos, np.log(np.where(pos, xn, 1.))
                      - np.log(kern(psi) @ np.exp(beta)), -np.inf)

  def plan(alpha, beta, psi):
    return np.exp(alpha)[:, None] * kern(psi) * np.exp(beta)[None]

  r = relaxation
  beta, psi, g_prev = np.full(n, -np.log(n)), 1., -np.inf
  alpha = np.where(pos, np.log(np.where(pos, xn, 1.)), -np.inf)
  for it in range(max_iterations):
    with np.errstate(invalid="ignore"):
      alpha = np.where(pos, (1 - r) * alpha + r * row_step(beta, psi),
                       -np.inf)
    arg = lam * np.exp(lam * wn) * (kern(psi).T @ np.exp(alpha))
    beta = ((1 - r) * beta
            + r * (lam * wn - scipy.special.lambertw(arg).real))
    pi = plan(alpha, beta, psi)
    d1 = -eps + np.sum(pi * cmat)
    d2 = -np.sum(pi * cmat ** 2)
    delta = d1 / d2
    t = 1.
    for _ in range(7):
      if psi - t * delta < 0:
        t /= 2
    psi = max(psi - t * delta, 0.)
    pi = plan(alpha, beta, psi)
    g = (-beta @ beta / (2 * lam) - psi * eps + np.sum(alpha[pos] * xn[pos])
         + beta @ wn - pi.sum())
    if abs(g - g_prev) < tol * (1 + abs(g)):
      break
    g_prev = g
  alpha = row_step(beta, psi)
  pi = plan(alpha, beta, psi)
  zn, cost = pi.sum(0), np.sum(pi * cmat)
  theta = min(1., eps / cost) if cost > 0 else 1.
  zn = theta * zn + (1 - theta) * xn
  return zn.reshape(h, wd) * m, theta * cost, psi, it + 1


def _tiny(seed=0, h=4, w=4, noise=0.3):
  rng = np.random.default_rng(seed)
  x = rng.uniform(0., 1., (h, w))
  x[0, 0] = 0.
  x[h // 2, 1] = 0.
  return x, x + rng.normal(0., noise, (h, w))


def _nhwc(a):
  return jnp.asarray(a[None, :, :, None])


def _mnist_like(key, batch=8, size=28, zero_fraction=0.8):
  """Smooth blobs thresholded so that ~zero_fraction of pixels are 0."""
  noise = jax.random.normal(key, (batch, size, size, 1))
  kernel = jnp.exp(-0.5 * (jnp.arange(-4, 5) / 2.) ** 2)
  kernel = (kernel[:, None] * kernel[None, :])[:, :, None, None]
  field = jax.lax.conv_general_dilated(
      noise, kernel, (1, 1), "SAME",
      dimension_numbers=("NHWC", "HWIO", "NHWC"))
  thr = jnp.quantile(field.reshape(batch, -1), zero_fraction, axis=1)
  img = jnp.maximum(field - thr[:, None, None, None], 0.)
  return img / jnp.max(img, axis=(1, 2, 3), keepdims=True)


# --------------------------------------------------------------------------
# Exact references (float64).
# --------------------------------------------------------------------------
def test_approaches_exact_projection_as_lam_grows():
  x, w = _tiny()
  eps = 0.3
  z_star = exact_projection(x, w, eps, 3)
  dists = []
  with jax.enable_x64(True):
    for lam in (10., 100., 1000.):
      out = project(_nhwc(x), _nhwc(w), eps=eps, lam=lam, kernel_size=3,
                    max_iterations=5000, tol=1e-12)
      assert bool(out.converged[0])
      dists.append(float(np.abs(np.asarray(out.z)[0, :, :, 0] - z_star).max()))
  # Measured 0.32, 0.079, 0.017 (|z*| ~ 1): the O(1/lam) entropic bias.
  assert dists[0] > dists[1] > dists[2]
  assert dists[2] < 0.03


@pytest.mark.parametrize("relaxation", [1., 1.5])
def test_agrees_with_numpy_iteration(relaxation):
  with jax.enable_x64(True):
    for seed, lam, eps in ((1, 5., 0.2), (2, 20., 0.1), (3, 20., 5.)):
      x, w = _tiny(seed, 3, 4)
      z_ref, cost_ref, psi_ref, n_ref = numpy_projection(
          x, w, eps, lam, 3, 300, 1e-9, relaxation)
      out = project(_nhwc(x), _nhwc(w), eps=eps, lam=lam, kernel_size=3,
                    max_iterations=300, tol=1e-9, relaxation=relaxation)
      assert int(out.n_iters[0]) == n_ref
      np.testing.assert_allclose(np.asarray(out.z)[0, :, :, 0], z_ref,
                                 atol=1e-6)
      np.testing.assert_allclose(float(out.cost[0]), cost_ref, atol=1e-6)
      np.testing.assert_allclose(float(out.psi[0]), psi_ref, atol=1e-6,
                                 rtol=1e-6)


def test_relaxation_same_point_in_fewer_iterations():
  # Over-relaxed block steps converge to the plain algorithm's fixed point;
  # measured on these digits: median 137 -> 44 iterations, |dz| 1.6e-6.
  x, w = _batch(5, 16)
  with jax.enable_x64(True):
    x, w = x.astype(jnp.float64), w.astype(jnp.float64)
    kw = dict(eps=0.3, lam=300., kernel_size=5, max_iterations=3000,
              tol=1e-12)
    plain = project(x, w, relaxation=1., **kw)
    fast = project(x, w, relaxation=1.5, **kw)
  assert bool(jnp.all(plain.converged)) and bool(jnp.all(fast.converged))
  np.testing.assert_allclose(fast.z, plain.z, atol=1e-5)
  assert np.median(fast.n_iters) < 0.6 * np.median(plain.n_iters)


def test_plan_marginals_cost_and_mass():
  x, w = _tiny(4)
  eps = 0.25
  with jax.enable_x64(True):
    out = project(_nhwc(x), _nhwc(w), eps=eps, lam=300., kernel_size=3,
                  max_iterations=400)
    assert int(out.status[0]) == S.CONVERGED
    plan = S.transport_plan(out, kernel_size=3)
    assert plan.shape == (9, 1, 4, 4, 1)
    assert float(plan.min()) >= 0.
    rows, cols = S.plan_marginals(out, kernel_size=3)
    m = x.sum()
    np.testing.assert_allclose(rows[0, :, :, 0], x / m, atol=1e-12)
    np.testing.assert_allclose(cols, out.z / m, atol=1e-12)
    np.testing.assert_allclose(float(out.z.sum()), m, rtol=1e-12)
    cost = jnp.sum(plan * jnp.asarray(S.wasserstein_cost(2, 3))[:, None, None,
                                                                 None, None])
    np.testing.assert_allclose(float(cost), float(out.cost[0]), rtol=1e-12)
    assert float(out.cost[0]) <= eps * (1 + 1e-12)
    # The point reached is the dual's point up to the iteration residual.
    assert float(out.marginal_error[0]) < 0.05
    assert 0.9 < float(out.theta[0]) <= 1.


def test_inside_the_ball_projects_to_itself():
  x, _ = _tiny(5)
  with jax.enable_x64(True):
    dists = []
    for lam in (300., 3000.):
      out = project(_nhwc(x), _nhwc(x), eps=0.5, lam=lam, kernel_size=3,
                    max_iterations=2000, tol=1e-10)
      assert bool(out.converged[0])
      dists.append(float(np.abs(np.asarray(out.z)[0, :, :, 0] - x).max()))
    # Only the entropic blur, O(m / lam) (measured 0.047 and 0.0071; the
    # pixels are in [0, 1] with mass m = 7.1).
    assert dists[1] < dists[0] / 3
    assert dists[1] < 2e-3 * x.sum()
    # eps = 0: the ball is {x}.
    _, w = _tiny(5)
    out0 = project(_nhwc(x), _nhwc(w), eps=0., lam=100., kernel_size=3,
                   max_iterations=2000)
    assert float(out0.cost[0]) == 0. or float(out0.cost[0]) < 1e-12
    np.testing.assert_allclose(np.asarray(out0.z)[0, :, :, 0], x, atol=1e-6)


# --------------------------------------------------------------------------
# Stability at large lam on images with many zeros (float32).
# --------------------------------------------------------------------------
def _check_large_lam(x, w, eps, kernel_size):
  out = project(x, w, eps=eps, lam=3000., kernel_size=kernel_size)
  assert out.z.dtype == jnp.float32
  for v in (out.z, out.cost, out.dual, out.beta, out.psi):
    assert bool(jnp.all(jnp.isfinite(v)))
  assert not bool(jnp.any(out.status == S.NON_FINITE))
  assert float(jnp.mean(out.converged)) >= 0.75
  mass = jnp.sum(x, axis=(1, 2, 3))
  np.testing.assert_allclose(jnp.sum(out.z, axis=(1, 2, 3)), mass, rtol=1e-5)
  assert bool(jnp.all(out.cost <= eps * (1 + 1e-5)))
  assert bool(jnp.all(out.z >= 0.))
  return out


def test_finite_at_lam_3000_on_digits():
  x = jnp.asarray(data.load("digits", "test").images[:16])
  assert float(jnp.mean(x == 0)) > 0.3
  w = jnp.clip(x + 0.3 * jax.random.normal(jax.random.key(0), x.shape), 0, 1)
  _check_large_lam(x, w, 0.1, 5)


def test_finite_at_lam_3000_on_mnist_like():
  x = _mnist_like(jax.random.key(1))
  assert 0.75 < float(jnp.mean(x == 0)) < 0.85
  w = jnp.clip(x + 0.2 * jax.random.normal(jax.random.key(2), x.shape), 0, 1)
  _check_large_lam(x, w, 0.5, 7)


# --------------------------------------------------------------------------
# Transformations, batching, statuses, input checks.
# --------------------------------------------------------------------------
def _batch(seed=0, batch=4):
  x = jnp.asarray(data.load("digits", "test").images[:batch])
  w = x + 0.3 * jax.random.normal(jax.random.key(seed), x.shape)
  return x, w


def test_jit_equals_no_jit_and_no_recompile():
  x, w = _batch()
  kw = dict(lam=500., kernel_size=3, max_iterations=100)
  eager = S.project_wasserstein(x, w, eps=0.1, **kw)
  jitted = project(x, w, eps=0.1, **kw)
  np.testing.assert_allclose(eager.z, jitted.z, rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(eager.n_iters, jitted.n_iters)
  traces = []

  @jax.jit
  def f(x, w, eps):
    traces.append(1)
    return S.project_wasserstein(x, w, eps=eps, **kw).z

  f(x, w, jnp.float32(0.1))
  f(x, w, jnp.float32(0.3))
  assert len(traces) == 1


def test_vmap_single_example_and_per_example_eps():
  x, w = _batch(1)
  eps = jnp.array([0.05, 0.1, 0.2, 0.4])
  # tol 1e-4: at the default 1e-6 a float32 dual change is within a few
  # roundings of the threshold, so vmapped and batched runs (which XLA
  # fuses differently) may stop an iteration apart (measured |dz| 8e-5,
  # well inside that tolerance's accuracy, but not the point of this test).
  kw = dict(lam=500., kernel_size=3, max_iterations=200, tol=1e-4)
  batch = project(x, w, eps=eps, **kw)
  assert batch.z.shape == x.shape and batch.errors.shape == (200, 4)
  assert batch.n_iters.dtype == jnp.int32 and batch.status.dtype == jnp.int32
  # Stopped examples: NaN after their last iteration.
  for b in range(4):
    n = int(batch.n_iters[b])
    assert bool(jnp.all(jnp.isnan(batch.errors[n:, b])))
    assert bool(jnp.all(jnp.isfinite(batch.errors[1:n, b])))

  vm = jax.vmap(lambda xi, wi, ei: S.project_wasserstein(
      xi[None], wi[None], eps=ei, **kw).z[0])(x, w, eps)
  np.testing.assert_allclose(vm, batch.z, rtol=1e-5, atol=1e-6)
  for b in (0, 3):
    alone = project(x[b:b + 1], w[b:b + 1], eps=eps[b], **kw)
    np.testing.assert_allclose(alone.z[0], batch.z[b], rtol=1e-5, atol=1e-6)
    assert int(alone.n_iters[0]) == int(batch.n_iters[b])
  # Larger eps, larger cost (each at its own budget).
  np.testing.assert_array_less(batch.cost, eps * (1 + 1e-5))


def test_statuses_zero_mass_nan_and_max_iterations():
  x, w = _batch(2, 3)
  x = x.at[1].set(0.)
  w = w.at[2, 0, 0, 0].set(jnp.nan)
  out = project(x, w, eps=0.1, lam=1000., kernel_size=3, max_iterations=5)
  np.testing.assert_array_equal(
      out.status, [S.MAX_ITERATIONS, S.ZERO_MASS, S.NON_FINITE])
  np.testing.assert_array_equal(out.converged, [False, True, False])
  np.testing.assert_array_equal(out.z[1], 0.)
  np.testing.assert_array_equal(out.z[2], x[2])  # the centre, not garbage
  assert int(out.n_iters[1]) == 0
  assert bool(jnp.all(jnp.isfinite(out.z)))


def test_input_checks():
  x, w = _batch()
  with pytest.raises(ValueError, match="eps"):
    S.project_wasserstein(x, w, eps=-1.)
  with pytest.raises(ValueError, match="shape"):
    S.project_wasserstein(x, w[:, :4], eps=1.)
  with pytest.raises(ValueError, match="kernel_size"):
    S.project_wasserstein(x, w, eps=1., kernel_size=4)
  with pytest.raises(ValueError, match="lam"):
    S.project_wasserstein(x, w, eps=1., lam=0.)
  with pytest.raises(ValueError, match="nonnegative"):
    S.project_wasserstein(-x, w, eps=1.)
  with pytest.raises(TypeError):
    S.project_wasserstein(x.astype(jnp.int32), w, eps=1.)
  with pytest.raises(ValueError, match=r"\[B, H, W, C\]"):
    S.project_wasserstein(x[0], w[0], eps=1.)
  for r in (0., 2., -1.):
    with pytest.raises(ValueError, match="relaxation"):
      S.project_wasserstein(x, w, eps=1., relaxation=r)


# --------------------------------------------------------------------------
# Conjugate Sinkhorn.
# --------------------------------------------------------------------------
def exact_ascent(x, g, step, k):
  """max <g, Pi^T 1> s.t. Pi 1 = x_n, <Pi, C> <= step, Pi >= 0 (an LP)."""
  h, wd = x.shape
  xn = (x / x.sum()).ravel()
  src, dst, cost, rows, _ = _pairs(h, wd, k)
  res = scipy.optimize.linprog(-g.ravel()[dst], A_eq=rows, b_eq=xn,
                               A_ub=cost[None], b_ub=[step], bounds=(0, None),
                               method="highs")
  assert res.status == 0
  return -res.fun


def test_conjugate_approaches_exact_ascent():
  x, _ = _tiny(6)
  g = np.random.default_rng(7).normal(size=x.shape)
  step = 0.3
  best = exact_ascent(x, g, step, 3)
  gaps = []
  with jax.enable_x64(True):
    for lam in (10., 100.):
      out = conjugate(_nhwc(x), _nhwc(g), step=step, lam=lam, kernel_size=3,
                      max_iterations=2000, tol=1e-12)
      assert bool(out.converged[0])
      zn = np.asarray(out.z)[0, :, :, 0] / x.sum()
      np.testing.assert_allclose(zn.sum(), 1., rtol=1e-12)
      assert float(out.cost[0]) <= step * (1 + 1e-12)
      rows, cols = S.plan_marginals(out, kernel_size=3)
      np.testing.assert_allclose(rows[0, :, :, 0], x / x.sum(), atol=1e-12)
      np.testing.assert_allclose(cols[0, :, :, 0], zn, atol=1e-12)
      gaps.append(best - float(np.sum(zn * g)))
  # Feasible points: never above the LP optimum; the entropic gap is at most
  # log(#variables) / lam (measured 8.5e-3 and 1e-6).
  assert -1e-9 < gaps[1] < gaps[0] < np.log(100) / 10


def test_conjugate_finite_on_digits_float32():
  x, _ = _batch(0, 8)
  g = jax.random.normal(jax.random.key(3), x.shape)
  out = conjugate(x, g, step=0.1, lam=1000., kernel_size=5)
  assert bool(jnp.all(jnp.isfinite(out.z)))
  assert not bool(jnp.any(out.status == S.NON_FINITE))
  np.testing.assert_allclose(jnp.sum(out.z, axis=(1, 2, 3)),
                             jnp.sum(x, axis=(1, 2, 3)), rtol=1e-5)
  assert bool(jnp.all(out.cost <= 0.1 * (1 + 1e-5)))
  # An ascent step: <g, z> >= <g, x> (x itself is feasible).
  assert bool(jnp.all(jnp.sum(g * out.z, axis=(1, 2, 3))
                      >= jnp.sum(g * x, axis=(1, 2, 3)) - 1e-4))
