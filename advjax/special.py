"""Lambert W (principal branch) and the Wright omega function, real arguments.

The projected-Sinkhorn Wasserstein projection (DESIGN.md, section 3) needs
`W(lam exp(lam w) ...)`, whose argument overflows for `lam >= 1000`; it is
computed as `wright_omega(s) = W(exp(s))` from `s` without forming `exp(s)`.

Both functions are elementwise on arrays of any shape, keep a float32 or
float64 input dtype, trace into XLA (a fixed-trip `lax.fori_loop`, no Python
loop over iterations, no host syncs, no internal `jax.jit`) and carry
`jax.custom_jvp` rules, so they work under `jit`, `vmap`, `grad` and
`grad` of `grad`.

Method: an initial guess accurate to about 1e-2 (a series about the branch
point, Winitzki's log1p-based approximation, the large-argument asymptotic
expansion), then a fixed number of Fritsch iterations, which converge
cubically. Fritsch's iteration is written on `w + log w = log z`, so it needs
only `log(z / w)` (or `s - log w` for the Wright omega function) and never
`exp(w)`: nothing overflows for `z` up to the largest finite float. Near the
branch point `z = -1/e`, where every iteration on `z` itself loses
`eps / sqrt(z + 1/e)` of accuracy, the branch-point series is evaluated
directly, with `z + 1/e` formed in extended precision.
"""
import fractions

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from advjax.types import Array

__all__ = ["lambertw", "wright_omega"]


def _branch_series_coefficients(n: int):
  """First `n` coefficients `mu_k` of `W0 = sum_k mu_k p^k`, exact rationals.

  The recurrence for the series about the branch point in Corless et al.
  1996 (section 4), with `p = sqrt(2 (e z + 1))`.
  """
  frac = fractions.Fraction
  mu, alpha = [frac(-1), frac(1)], [frac(2), frac(-1)]
  for k in range(2, n):
    alpha.append(sum((mu[j] * mu[k + 1 - j] for j in range(2, k)), frac(0)))
    mu.append(frac(k - 1, k + 1) * (mu[k - 2] / 2 + alpha[k - 2] / 4)
              - alpha[k] / 2 - mu[k - 1] / (k + 1))
  return tuple(float(m) for m in mu[:n])


# W0 about z = -1/e in powers of p (radius of convergence sqrt(2)).
_BRANCH_COEFFS = _branch_series_coefficients(20)

# 1/e = hi + lo with hi the dtype's rounding of 1/e (hi > 1/e in both), so
# `(z + hi) + lo` is z + 1/e to full relative precision near the branch point
# (z + hi is exact there by Sterbenz's lemma).
_INV_E = {
    np.dtype(np.float64): (np.float64(0.36787944117144233),
                           -1.2428753672788363e-17),
    np.dtype(np.float32): (np.float32(0.36787945), -9.149755188170102e-09),
}

# Below `p < _SERIES_P[dtype]` the 20-term branch series is the answer: its
# truncation error (~1e-9 at p = 0.6, ~1e-18 at p = 0.2) is below the
# `eps / p` error any iteration on z itself attains there.
_SERIES_P = {np.dtype(np.float64): 0.2, np.dtype(np.float32): 0.6}

# Fritsch iterations from the initial guess. The guess is within 3e-2
# (relative) everywhere; cubic convergence takes that to ~2e-6 after one step
# and below float64 rounding after two (measured against SciPy and mpmath).
_NUM_ITERATIONS = {np.dtype(np.float64): 2, np.dtype(np.float32): 2}

# Initial-guess regions: the 6-term branch series below z = -0.23, Winitzki's
# approximation up to log z = 5, the asymptotic expansion above (each chosen
# where it is the most accurate of the three).
_BRANCH_GUESS_Z = -0.23
_ASYMPTOTIC_LOG_Z = 5.


def _compute_dtype(x: Array, name: str):
  """The float dtype computed in, and the dtype returned, for input x."""
  dtype = x.dtype
  if jnp.issubdtype(dtype, jnp.complexfloating):
    raise TypeError(f"{name} takes real input; got dtype {dtype}. The complex "
                    "Lambert W is not implemented.")
  if not jnp.issubdtype(dtype, jnp.floating):
    # Integer and bool input: the default float dtype, as jnp.exp does.
    dtype = jnp.result_type(float)
    return dtype, dtype
  if np.dtype(dtype) in _NUM_ITERATIONS:
    return dtype, dtype
  return jnp.float32, dtype  # float16, bfloat16: computed in float32.


def _horner(p: Array, coeffs) -> Array:
  acc = jnp.full_like(p, coeffs[-1])
  for c in reversed(coeffs[:-1]):
    acc = acc * p + c
  return acc


def _winitzki(log1p_z: Array) -> Array:
  """Winitzki's approximation of W0 from `L = log(1 + z)`, z > -1/e.

  Relative error below ~3e-2 for z >= -0.23 (exact at 0 and as z -> inf).
  """
  return log1p_z * (1. - jnp.log1p(log1p_z) / (2. + log1p_z))


def _asymptotic(log_z: Array) -> Array:
  """De Bruijn's `L1 - L2 + L2 / L1` for large z, from `L1 = log z` > 1."""
  l2 = jnp.log(log_z)
  return log_z - l2 + l2 / log_z


def _fritsch(w0: Array, log_ratio, num_iterations: int) -> Array:
  """Fritsch's iteration for `w + log w = log z`, a fixed number of steps.

  Args:
    w0: initial guess, same sign as the root, nonzero, w0 > -1.
    log_ratio: `w -> log(z / w)`, evaluated without forming z if needed.
    num_iterations: static trip count.

  Returns:
    The iterate after `num_iterations` steps.
  """

  def body(_, w):
    zn = log_ratio(w) - w
    one_w = 1. + w
    # Fritsch's q_n = 2 (1 + w) (1 + w + 2 z_n / 3) enters only as z_n / q_n;
    # dividing in steps keeps it finite for w up to the largest float.
    r = zn / (2. * one_w) / (one_w + (2. / 3.) * zn)
    en = zn / one_w * (1. - r) / (1. - 2. * r)
    return w * (1. + en)

  return lax.fori_loop(0, num_iterations, body, w0)


def _lambertw_impl(z: Array) -> Array:
  """W0 on a float32/float64 array; NaN below -1/e."""
  dtype = np.dtype(z.dtype)
  inv_e_hi, inv_e_lo = _INV_E[dtype]
  # z + 1/e to full relative precision where it is small.
  # The barrier stops XLA from folding the two constants into one rounded 1/e.
  dz = lax.optimization_barrier(z + inv_e_hi) + jnp.asarray(inv_e_lo, dtype)
  in_domain = z >= -inv_e_hi  # -1/e rounded to the dtype gives W = -1.
  p = jnp.sqrt(2. * np.e * jnp.maximum(dz, 0.))
  series = _horner(p, _BRANCH_COEFFS)
  near_branch = p < _SERIES_P[dtype]
  finite = jnp.isfinite(z)
  iterate = in_domain & finite & ~near_branch & (z != 0)

  # Initial guesses, each on its own range; discarded lanes are kept finite.
  z_it = jnp.where(iterate, z, 1.)
  log1p_z = jnp.log1p(z_it)
  log_z = jnp.log(jnp.where(z_it > 1., z_it, np.e))
  guess = jnp.where(z_it < _BRANCH_GUESS_Z, _horner(p, _BRANCH_COEFFS[:6]),
                    _winitzki(log1p_z))
  guess = jnp.where(log_z > _ASYMPTOTIC_LOG_Z, _asymptotic(log_z), guess)
  # Fritsch needs w0 of the root's sign in (-1, inf).
  guess = jnp.where(z_it < 0., jnp.clip(guess, -1. + 0.5 * p, -jnp.abs(z_it)),
                    guess)

  w = _fritsch(guess, lambda w: jnp.log(z_it / w), _NUM_ITERATIONS[dtype])
  w = jnp.where(near_branch, series, w)
  w = jnp.where(z == 0., z, w)
  w = jnp.where(z == jnp.inf, z, w)
  return jnp.where(in_domain, w, jnp.nan)


@jax.custom_jvp
def _lambertw(z: Array) -> Array:
  return _lambertw_impl(z)


@_lambertw.defjvp
def _lambertw_jvp(primals, tangents):
  (z,), (z_dot,) = primals, tangents
  w = _lambertw(z)
  # dW/dz = W / (z (1 + W)) = exp(-W) / (1 + W). The exp form is finite at
  # z = 0; the quotient form keeps relative accuracy for large W (exp(-W)
  # would carry W's absolute error).
  small = jnp.abs(w) < 1.
  z_safe = jnp.where(small, 1., z)
  deriv = jnp.where(small, jnp.exp(-w) / (1. + w), (w / z_safe) / (1. + w))
  return w, deriv * z_dot


def lambertw(z: Array) -> Array:
  """Principal branch `W0` of the Lambert W function, real `z >= -1/e`.

  `W0(z)` is the solution `w >= -1` of `w exp(w) = z`. Elementwise; works
  under `jax.jit`, `jax.vmap` and `jax.grad` (custom JVP
  `dW/dz = W / (z (1 + W)) = exp(-W) / (1 + W)`, equal to 1 at z = 0;
  differentiable again).

  Args:
    z: real array of any shape, float32 or float64, `z >= -1/e`. Integer or
      bool input is converted to the default float dtype (float32, float64
      with x64 enabled), as `jnp.exp` does; float16/bfloat16 are computed in
      float32 and rounded back.

  Returns:
    `W0(z)`, the same shape and float dtype as `z`. `W0(0) = 0`,
    `W0(-1/e) = -1` (for `z` equal to -1/e rounded to the dtype),
    `W0(inf) = inf`; NaN for `z < -1/e` and for NaN `z`.

  Raises:
    TypeError: for complex input.

  References:
    Corless, Gonnet, Hare, Jeffrey, Knuth, "On the Lambert W function",
    Adv. Comput. Math. 5, 1996 (branch-point series, asymptotics).
    Fritsch, Shafer, Crowley, "Algorithm 443: solution of the transcendental
    equation w e^w = x", Commun. ACM 16(2), 1973 (the iteration).
    Winitzki, "Uniform approximations for transcendental functions",
    ICCSA 2003 (the initial guess).

  Note:
    No exception is raised under `jit`: out-of-domain input (`z < -1/e`)
    yields NaN and so does its derivative. The derivative is infinite at the
    branch point. The problem is ill-conditioned near -1/e
    (`dW/dz ~ 1 / sqrt(z + 1/e)`): the result is accurate for the
    representable input given, which may itself be a rounding of the value
    meant. The trip count is fixed (2 iterations); there is no convergence
    flag because the initial guess is within the iteration's
    cubic-convergence basin on the whole domain (checked against SciPy from
    -1/e to 1e300 and mpmath near -1/e).
  """
  z = jnp.asarray(z)
  compute_dtype, out_dtype = _compute_dtype(z, "lambertw")
  return _lambertw(z.astype(compute_dtype)).astype(out_dtype)


def _wright_omega_impl(s: Array) -> Array:
  """omega(s) = W0(exp(s)) on a float32/float64 array, exp(s) never formed."""
  dtype = np.dtype(s.dtype)
  finite = jnp.isfinite(s)
  s_it = jnp.where(finite, s, 0.)
  positive = s_it > 0.
  # s <= 0: iterate on z = exp(s) in (0, 1], as lambertw does.
  z = jnp.exp(jnp.minimum(s_it, 0.))
  underflow = z == 0.
  z_it = jnp.where(underflow, 1., z)
  s_it = jnp.where(underflow, 0., s_it)
  # log(1 + exp(s)) without overflow, Winitzki's guess; asymptotic for large s.
  softplus = jnp.maximum(s_it, 0.) + jnp.log1p(jnp.exp(-jnp.abs(s_it)))
  guess = _winitzki(softplus)
  s_big = jnp.where(s_it > _ASYMPTOTIC_LOG_Z, s_it, _ASYMPTOTIC_LOG_Z + 1.)
  guess = jnp.where(s_it > _ASYMPTOTIC_LOG_Z, _asymptotic(s_big), guess)

  def log_ratio(w):
    # log(exp(s) / w): s - log w for s > 0 (no exp), log(z / w) otherwise
    # (keeps relative accuracy when w ~ z is tiny).
    return jnp.where(positive, s_it - jnp.log(w), jnp.log(z_it / w))

  w = _fritsch(guess, log_ratio, _NUM_ITERATIONS[dtype])
  w = jnp.where(underflow, 0., w)
  w = jnp.where(s == jnp.inf, s, w)
  w = jnp.where(s == -jnp.inf, 0., w)
  return jnp.where(jnp.isnan(s), s, w)


@jax.custom_jvp
def _wright_omega(s: Array) -> Array:
  return _wright_omega_impl(s)


@_wright_omega.defjvp
def _wright_omega_jvp(primals, tangents):
  (s,), (s_dot,) = primals, tangents
  w = _wright_omega(s)
  return w, w / (1. + w) * s_dot


def wright_omega(s: Array) -> Array:
  """Wright omega function `omega(s) = W0(exp(s))` for real `s`.

  The solution of `omega + log(omega) = s`, computed from `s` without
  forming `exp(s)`, so large `s` (1e4, or any finite float) does not
  overflow. Elementwise; works under `jax.jit`, `jax.vmap` and `jax.grad`
  (custom JVP `d omega / ds = omega / (1 + omega)`; differentiable again).

  Args:
    s: real array of any shape, float32 or float64. Integer or bool input is
      converted to the default float dtype; float16/bfloat16 are computed in
      float32 and rounded back.

  Returns:
    `omega(s) > 0`, the same shape and float dtype as `s`;
    `omega(-inf) = 0`, `omega(inf) = inf`, NaN for NaN. For very negative `s`
    it equals `exp(s)` to rounding and underflows with it: 0 once `exp(s)`
    is below the smallest normal float (XLA's `exp` flushes subnormals).

  Raises:
    TypeError: for complex input.

  References:
    Corless, Jeffrey, "The Wright omega function", AISC 2002, LNCS 2385.
    Fritsch, Shafer, Crowley, "Algorithm 443", Commun. ACM 16(2), 1973.

  Note:
    No failure mode on finite real input: the trip count is fixed (2
    iterations) and the initial guess converges on the whole real line
    (checked against SciPy on [-700, 1e4]). For s <= 0 the iteration runs on
    `exp(s)` (relative accuracy for tiny omega), for s > 0 on
    `s - log(omega)`; both agree with `lambertw(exp(s))` to rounding where
    `exp(s)` is finite. The derivative at `s = inf` is NaN.
  """
  s = jnp.asarray(s)
  compute_dtype, out_dtype = _compute_dtype(s, "wright_omega")
  return _wright_omega(s.astype(compute_dtype)).astype(out_dtype)
