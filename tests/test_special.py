"""Tests for advjax.special: Lambert W and Wright omega against SciPy.

Error measure: relative error `|w - ref| / max(|ref|, tiny)`. Both functions
keep relative accuracy down to the smallest normal argument (W(z) ~ z near 0
is computed from log(z / w), not from z - w), so no absolute-error band near
z = 0 is needed; the floor `tiny` (smallest normal) only guards ref = 0.
Tolerances (the task's): 1e-6 in float64, 2e-6 in float32 (~17 ulp; the
measured maxima are ~2e-15 and ~2e-7). float32 results are compared with the
float64 reference evaluated at the float32-rounded input, so the ill
conditioning of W near -1/e (dW/dz ~ (z + 1/e)^(-1/2)) is not charged to the
float32 code: it sees exactly the input the reference sees.
"""
import numpy as np
import pytest
import scipy.special

import jax
import jax.numpy as jnp

from advjax import special
from advjax.special import lambertw, wright_omega

# Tests call the functions jitted: one compile per shape, instead of eager
# op-by-op dispatch (several times slower to compile on CPU).
lambertw_jit = jax.jit(lambertw)
wright_omega_jit = jax.jit(wright_omega)

INV_E = 1. / np.e
TOL = {np.float64: 1e-6, np.float32: 2e-6}
DEFAULT_FLOAT = jnp.result_type(float)  # float32 unless x64 is on globally.
X64_AT_IMPORT = jax.config.jax_enable_x64

# mpmath (50 digits) at exactly these float64 inputs. Near -1/e SciPy's own
# W loses eps / sqrt(z + 1/e) (it forms e z + 1 in float64), so the branch
# region is checked tightly against these instead.
MPMATH_LAMBERTW = [
    (-0.3678794411714422, -0.9999999768481082),
    (-0.36787944117143234, -0.9999997670738203),
    (-0.36787944117044236, -0.9999976683981106),
    (-0.3678794410714423, -0.9999766837418852),
    (-0.36787943117144234, -0.9997668537219889),
    (-0.36787844117144236, -0.9976701662720535),
    (-0.36777944117144235, -0.9768628655744246),
    (-0.3578794411714423, -0.7832291989812968),
    (-0.3, -0.4894022271802149),
    (-0.1, -0.11183255915896297),
    (1e-300, 1e-300),
    (0.5, 0.35173371124919584),
    (10.0, 1.7455280027406994),
    (1e+300, 684.2472086297608),
]
MPMATH_WRIGHT_OMEGA = [
    (-700.0, 9.85967654375977e-305),
    (-1.0, 0.2784645427610738),
    (0.5, 0.7662486081617502),
    (30.0, 26.714782920381055),
    (10000.0, 9990.790580994251),
]


def _x64(dtype):
  """Context enabling x64 for float64 tests only; restores the flag after."""
  return jax.enable_x64(dtype == np.float64)


def _rel_err(w, ref, dtype):
  w = np.asarray(w, np.float64)
  return np.abs(w - ref) / np.maximum(np.abs(ref), np.finfo(dtype).tiny)


def _lambertw_grid(dtype):
  """Dense grid on [-1/e, max]: branch point, linear, and log-spaced parts."""
  if dtype == np.float64:
    branch_offsets = np.logspace(-16, 0, 800)
    pos = np.logspace(-300, 300, 6001)
    neg = -np.logspace(-300, np.log10(INV_E), 3001)
  else:
    branch_offsets = np.logspace(-8, 0, 800)
    pos = np.logspace(-37, 38.5, 3001)
    neg = -np.logspace(-37, np.log10(INV_E), 1501)
  z = np.concatenate([-INV_E + branch_offsets, np.linspace(-INV_E, 10, 8001),
                      pos, neg, [0., 1., np.e, np.finfo(dtype).max]])
  z = z.astype(dtype)
  # -1/e rounded to the dtype lies just below the true branch point (SciPy
  # gives NaN there); it is tested on its own as W = -1.
  return np.unique(z[z > -dtype(INV_E)])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_lambertw_matches_scipy(dtype):
  with _x64(dtype):
    z = _lambertw_grid(dtype)
    w = lambertw_jit(z)
    assert w.dtype == dtype and w.shape == z.shape
    ref = scipy.special.lambertw(z.astype(np.float64), 0).real
    err = _rel_err(w, ref, dtype)
  assert np.all(np.isfinite(ref)) and np.all(np.isfinite(np.asarray(w)))
  assert err.max() <= TOL[dtype], (err.max(), z[np.argmax(err)])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_lambertw_exact_points(dtype):
  with _x64(dtype):
    z = np.array([0., -INV_E, 1., np.e, -0., np.inf], dtype)
    w = np.asarray(lambertw_jit(z))
  eps = np.finfo(dtype).eps
  assert w[0] == 0. and w[1] == -1. and w[4] == 0. and w[5] == np.inf
  np.testing.assert_allclose(w[2], 0.5671432904097838, rtol=4 * eps)  # Omega.
  np.testing.assert_allclose(w[3], 1., rtol=4 * eps)  # W(e) = 1.


def test_lambertw_matches_mpmath_near_branch_point():
  with jax.enable_x64(True):
    z, ref = (np.array(v) for v in zip(*MPMATH_LAMBERTW))
    w = np.asarray(lambertw_jit(z))
  # 8 ulp: the accuracy the extended-precision z + 1/e buys near -1/e.
  np.testing.assert_allclose(np.asarray(w), ref, rtol=8 * np.finfo(float).eps)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_lambertw_identity(dtype):
  # w exp(w) = z: rounding of exp(w) amplifies W's error by (1 + W), so the
  # check stops at z = 1e3 (W < 6): 1e-12 (f64), 2e-6 (f32) relative.
  with _x64(dtype):
    z = np.concatenate([np.linspace(-INV_E, 10, 1001),
                        np.logspace(-30, 3, 301)]).astype(dtype)
    z = z[z > -dtype(INV_E)]
    w = np.asarray(lambertw_jit(z))
  rtol = 1e-12 if dtype == np.float64 else 2e-6
  np.testing.assert_allclose(w * np.exp(w), z, rtol=rtol, atol=0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_lambertw_nan_below_branch_point(dtype):
  with _x64(dtype):
    below = np.nextafter(-dtype(INV_E), dtype(-np.inf))
    z = np.array([below, -0.5, -1., -1e10, -np.inf, np.nan], dtype)
    assert np.all(np.isnan(np.asarray(lambertw_jit(z))))
    grads = jax.jit(jax.vmap(jax.grad(lambertw)))(z)
    assert np.all(np.isnan(np.asarray(grads)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_wright_omega_matches_scipy(dtype):
  with _x64(dtype):
    if dtype == np.float64:
      lo = -700.  # exp(-700) ~ 1e-304, still a normal float64.
    else:
      lo = -87.  # exp(-87) ~ 1.6e-38, still a normal float32.
    s = np.concatenate([
        np.linspace(lo, 1e4, 20001), np.linspace(-5, 5, 4001),
        np.logspace(-6, 4, 2001), -np.logspace(-6, np.log10(-lo), 2001)])
    s = np.unique(s.astype(dtype))
    omega = wright_omega_jit(s)
    assert omega.dtype == dtype and omega.shape == s.shape
    ref = scipy.special.wrightomega(s.astype(np.float64))
    err = _rel_err(omega, ref, dtype)
  assert err.max() <= TOL[dtype], (err.max(), s[np.argmax(err)])


def test_wright_omega_matches_mpmath():
  with jax.enable_x64(True):
    s, ref = (np.array(v) for v in zip(*MPMATH_WRIGHT_OMEGA))
    omega = np.asarray(wright_omega_jit(s))
  np.testing.assert_allclose(np.asarray(omega), ref,
                             rtol=8 * np.finfo(float).eps)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_wright_omega_large_and_special_arguments(dtype):
  with _x64(dtype):
    big = np.finfo(dtype).max
    s = np.array([1e4, -1e4, big, -big, np.inf, -np.inf, np.nan], dtype)
    omega = np.asarray(wright_omega_jit(s))
  # omega(1e4) = 1e4 - log(1e4) + ...; far below, omega = exp(s) underflows.
  np.testing.assert_allclose(omega[0], 9990.790580994251, rtol=TOL[dtype])
  assert omega[1] == 0. and omega[3] == 0. and omega[5] == 0.
  assert np.isfinite(omega[2]) and omega[2] <= big
  np.testing.assert_allclose(omega[2], big, rtol=4 * np.finfo(dtype).eps)
  assert omega[4] == np.inf and np.isnan(omega[6])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_wright_omega_equals_lambertw_of_exp(dtype):
  # Two code paths (log form for s > 0, z = exp(s) for s <= 0) against
  # lambertw on exp(s), wherever exp(s) is a finite normal float. exp's own
  # rounding (~1 ulp) bounds the agreement: 1e-13 (f64), 1e-6 (f32).
  with _x64(dtype):
    lo, hi = (-700., 700.) if dtype == np.float64 else (-87., 88.)
    s = np.linspace(lo, hi, 10001).astype(dtype)
    omega = np.asarray(wright_omega_jit(s))
    w = np.asarray(lambertw_jit(jnp.exp(s)))
  rtol = 1e-13 if dtype == np.float64 else 1e-6
  np.testing.assert_allclose(omega, w, rtol=rtol, atol=0)


def _central_difference(f, x, h):
  return (f(x + h) - f(x - h)) / (2. * h)


def test_lambertw_grad_matches_finite_differences():
  with jax.enable_x64(True):
    z = np.array([-0.3, -0.2, -1e-3, 0., 1e-3, 0.5, 1., np.e, 10., 1e3, 1e8])
    # h ~ 1e-6 |z|: truncation (h / (z + 1/e))^2 and rounding eps / h are
    # both <~ 1e-9 here, well below the 1e-6 tolerance.
    h = 1e-6 * np.maximum(1., np.abs(z))
    fd = _central_difference(lambda x: np.asarray(lambertw_jit(x)), z, h)
    grad = jax.jit(jax.vmap(jax.grad(lambertw)))(z)
    np.testing.assert_allclose(np.asarray(grad), fd, rtol=1e-6)
    # Closed form where differences of W are too small to resolve (z = 1e300).
    zz = np.array([1e30, 1e300])
    ww = scipy.special.lambertw(zz).real
    grad = jax.jit(jax.vmap(jax.grad(lambertw)))(zz)
    np.testing.assert_allclose(np.asarray(grad), ww / (zz * (1. + ww)),
                               rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_lambertw_grad_at_zero_is_one(dtype):
  with _x64(dtype):
    g = jax.jit(jax.grad(lambertw))(dtype(0.))
    gg = np.asarray(jax.jit(jax.grad(jax.grad(lambertw)))(dtype(0.)))
    assert g.dtype == dtype and np.asarray(g) == 1.
  np.testing.assert_allclose(gg, -2., rtol=1e-6)  # W''(0) = -2.


def test_lambertw_second_derivative():
  with jax.enable_x64(True):
    z = np.array([-0.3, -0.1, 0.5, 3., 1e4])
    w = scipy.special.lambertw(z).real
    # W'' = -W^2 (W + 2) / (z^2 (1 + W)^3).
    ref = -w ** 2 * (w + 2.) / (z ** 2 * (1. + w) ** 3)
    gg = jax.jit(jax.vmap(jax.grad(jax.grad(lambertw))))(z)
  np.testing.assert_allclose(np.asarray(gg), ref, rtol=1e-10)


def test_wright_omega_grad_matches_finite_differences():
  with jax.enable_x64(True):
    s = np.array([-600., -20., -1., 0., 0.5, 3., 50., 1e3, 1e4])
    h = 1e-6 * np.maximum(1., np.abs(s))
    fd = _central_difference(lambda x: np.asarray(wright_omega_jit(x)), s, h)
    grad = jax.jit(jax.vmap(jax.grad(wright_omega)))(s)
    np.testing.assert_allclose(np.asarray(grad), fd, rtol=1e-6)
    # d^2 omega / ds^2 = omega / (1 + omega)^3.
    omega = scipy.special.wrightomega(s)
    gg = jax.jit(jax.vmap(jax.grad(jax.grad(wright_omega))))(s)
    np.testing.assert_allclose(np.asarray(gg), omega / (1. + omega) ** 3,
                               rtol=1e-10)


@pytest.mark.parametrize("fn", [lambertw, wright_omega])
def test_shapes_jit_and_vmap_agree(fn):
  key = jax.random.key(0)
  for shape in [(), (5,), (2, 3, 4)]:
    x = jax.random.uniform(key, shape, minval=-0.35, maxval=20.)
    out = jax.jit(fn)(x)
    assert out.shape == shape and out.dtype == DEFAULT_FLOAT
    assert np.all(np.isfinite(np.asarray(out)))
    if shape:
      mapped = jax.jit(jax.vmap(fn))(x)
      np.testing.assert_allclose(np.asarray(mapped), np.asarray(out),
                                 rtol=1e-6)
  # Eager (op-by-op) and jitted agree (XLA fusion may change the rounding).
  np.testing.assert_allclose(np.asarray(fn(x)), np.asarray(out), rtol=1e-6)


@pytest.mark.parametrize("fn", [lambertw, wright_omega])
def test_dtypes(fn):
  def dtype_of(*args):
    return jax.eval_shape(fn, *args).dtype

  assert dtype_of(jnp.arange(3)) == DEFAULT_FLOAT  # int -> default float.
  assert dtype_of(True) == DEFAULT_FLOAT
  assert dtype_of(jnp.ones(2, jnp.float16)) == jnp.float16
  assert dtype_of(jnp.ones(2, jnp.bfloat16)) == jnp.bfloat16
  half = jax.jit(fn)(jnp.ones(2, jnp.float16))
  np.testing.assert_allclose(np.asarray(half, np.float32),
                             np.asarray(jax.jit(fn)(jnp.ones(2))), rtol=1e-3)
  with jax.enable_x64(True):
    assert dtype_of(np.arange(3)) == jnp.float64
    assert dtype_of(np.float32(1.)) == jnp.float32
    assert dtype_of(np.float64(1.)) == jnp.float64
  with pytest.raises(TypeError, match="real input"):
    dtype_of(jnp.ones(2, jnp.complex64))


def test_no_x64_leak():
  # The float64 tests use the context manager; the global flag is untouched.
  assert jax.config.jax_enable_x64 == X64_AT_IMPORT
  assert jnp.asarray(1.).dtype == DEFAULT_FLOAT


def test_branch_series_coefficients():
  # Corless et al. 1996: -1 + p - p^2/3 + 11/72 p^3 - 43/540 p^4 + ...
  np.testing.assert_allclose(special._BRANCH_COEFFS[:6],
                             [-1., 1., -1. / 3., 11. / 72., -43. / 540.,
                              769. / 17280.], rtol=1e-15)
