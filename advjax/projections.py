"""Per-example Lp-ball and box projections, and uniform random starts.

All functions act on a batch: the leading axis is the example axis and norms
are taken over every other axis. `eps` is a scalar or a `[B]` array.
"""
import functools
from typing import Tuple

import jax
import jax.numpy as jnp

from advjax import rng
from advjax.types import Array, PRNGKey

__all__ = [
    "NORMS", "check_norm", "per_example", "lp_norm", "project_linf_ball",
    "project_l2_ball", "project_l1_ball", "project_ball", "project_box",
    "random_linf_ball", "random_l2_ball", "random_l1_ball", "random_ball",
    "random_sphere",
]

NORMS = ("linf", "l2", "l1")


def check_norm(norm: str) -> str:
  if norm not in NORMS:
    raise ValueError(f"Unknown norm {norm!r}; use one of {NORMS}.")
  return norm


def per_example(v, ndim: int) -> Array:
  """Broadcasts a scalar or `[B]` value against a `[B, ...]` array of rank ndim."""
  v = jnp.asarray(v)
  if v.ndim == 0:
    return v
  return v.reshape(v.shape + (1,) * (ndim - v.ndim))


def _flat(x: Array) -> Array:
  return x.reshape(x.shape[0], -1)


def lp_norm(x: Array, norm: str) -> Array:
  """Per-example norm `[B, ...] -> [B]` for `norm` in linf, l2, l1."""
  check_norm(norm)
  flat = _flat(x)
  if norm == "linf":
    return jnp.max(jnp.abs(flat), axis=1)
  if norm == "l2":
    return jnp.sqrt(jnp.sum(flat * flat, axis=1))
  return jnp.sum(jnp.abs(flat), axis=1)


def project_linf_ball(delta: Array, eps) -> Array:
  """Projects each example onto `{d : |d|_inf <= eps}` (coordinate clipping)."""
  eps = per_example(eps, delta.ndim)
  return jnp.clip(delta, -eps, eps)


def project_l2_ball(delta: Array, eps) -> Array:
  """Projects each example onto `{d : |d|_2 <= eps}` (radial rescaling)."""
  norm = per_example(lp_norm(delta, "l2"), delta.ndim)
  eps = per_example(eps, delta.ndim)
  # Safe division: where norm <= eps the factor is 1 and never divides by 0.
  factor = jnp.where(norm > eps, eps / jnp.where(norm > 0, norm, 1.), 1.)
  return delta * factor.astype(delta.dtype)


def project_l1_ball(delta: Array, eps) -> Array:
  """Euclidean projection of each example onto `{d : |d|_1 <= eps}`.

  The exact sort-based algorithm: project `|d|` onto the simplex of radius eps
  and restore signs. Not a rescaling (which is not the Euclidean projection).

  References:
    Duchi, Shalev-Shwartz, Singer, Chandra, "Efficient projections onto the
    l1-ball for learning in high dimensions", ICML 2008.
  """
  shape = delta.shape
  v = _flat(delta)
  eps = jnp.broadcast_to(jnp.asarray(eps, v.dtype), (v.shape[0],))
  u = jnp.abs(v)
  mu = -jnp.sort(-u, axis=1)  # descending
  cssv = jnp.cumsum(mu, axis=1) - eps[:, None]
  ind = jnp.arange(1, v.shape[1] + 1, dtype=v.dtype)
  cond = mu - cssv / ind > 0
  rho = jnp.sum(cond, axis=1)  # number of positive entries in the solution
  theta = jnp.take_along_axis(
      cssv, jnp.maximum(rho - 1, 0)[:, None], axis=1)[:, 0] / jnp.maximum(
          rho, 1).astype(v.dtype)
  w = jnp.sign(v) * jnp.maximum(u - theta[:, None], 0.)
  inside = jnp.sum(u, axis=1) <= eps
  return jnp.where(inside[:, None], v, w).reshape(shape)


def project_ball(delta: Array, eps, norm: str) -> Array:
  """Projects each example onto the `norm` ball of radius `eps`."""
  check_norm(norm)
  return {"linf": project_linf_ball, "l2": project_l2_ball,
          "l1": project_l1_ball}[norm](delta, eps)


def project_box(delta: Array, x: Array, bounds: Tuple[float, float]) -> Array:
  """Returns the perturbation that keeps `x + delta` inside `bounds`.

  Clipping moves every coordinate of delta towards 0, so a delta inside any Lp
  ball stays inside it: ball-then-box is always feasible (for linf it is also
  the exact projection onto the intersection).
  """
  lo, hi = bounds
  return jnp.clip(x + delta, lo, hi) - x


def random_linf_ball(key: PRNGKey, shape, eps, dtype=jnp.float32) -> Array:
  """Uniform samples in the Linf ball of radius eps (per example).

  `key` is one key or `[B]` per-example keys (see `advjax.rng`).
  """
  unit = rng.draw(lambda k, s: jax.random.uniform(k, s, dtype, -1., 1.), key,
                  shape)
  return unit * per_example(eps, len(shape))


def _unit_l2_ball(key, shape, dtype):
  k_dir, k_rad = jax.random.split(key)
  d = jax.random.normal(k_dir, shape, dtype)
  dim = functools.reduce(lambda a, b: a * b, shape[1:], 1)
  d = d / per_example(jnp.maximum(lp_norm(d, "l2"), 1e-12), len(shape))
  r = jax.random.uniform(k_rad, (shape[0],), dtype) ** (1. / dim)
  return d * per_example(r, len(shape))


def random_l2_ball(key: PRNGKey, shape, eps, dtype=jnp.float32) -> Array:
  """Uniform samples in the L2 ball: a uniform direction times `eps U^(1/D)`."""
  unit = rng.draw(lambda k, s: _unit_l2_ball(k, s, dtype), key, shape)
  return unit * per_example(eps, len(shape))


def _unit_l1_ball(key, shape, dtype):
  k_exp, k_sign = jax.random.split(key)
  dim = functools.reduce(lambda a, b: a * b, shape[1:], 1)
  e = jax.random.exponential(k_exp, (shape[0], dim + 1), dtype)
  u = e[:, :dim] / jnp.sum(e, axis=1, keepdims=True)
  s = jax.random.rademacher(k_sign, (shape[0], dim), dtype)
  return (u * s).reshape(shape)


def random_l1_ball(key: PRNGKey, shape, eps, dtype=jnp.float32) -> Array:
  """Uniform samples in the L1 ball.

  With `E_1..E_{D+1}` i.i.d. Exp(1), `(E_1..E_D) / sum(E)` is uniform on the
  solid simplex `{u >= 0, sum u <= 1}`; independent random signs make it
  uniform in the L1 ball.
  """
  unit = rng.draw(lambda k, s: _unit_l1_ball(k, s, dtype), key, shape)
  return unit * per_example(eps, len(shape))


def random_ball(key: PRNGKey, shape, eps, norm: str,
                dtype=jnp.float32) -> Array:
  """Uniform samples in the `norm` ball of radius `eps`, shape `[B, ...]`;
  `key` is one key or `[B]` per-example keys."""
  check_norm(norm)
  return {"linf": random_linf_ball, "l2": random_l2_ball,
          "l1": random_l1_ball}[norm](key, shape, eps, dtype)


def random_sphere(key: PRNGKey, shape, eps, norm: str,
                  dtype=jnp.float32) -> Array:
  """Random points on the `norm` sphere of radius eps (noise of exact norm).

  linf: random signs (a uniform random corner); l2: a uniform direction; l1:
  a uniform point on the L1 sphere (Laplace samples normalised). `key` is
  one key or `[B]` per-example keys.
  """
  check_norm(norm)

  def unit(k, s):
    if norm == "linf":
      return jax.random.rademacher(k, s, dtype)
    d = (jax.random.normal if norm == "l2" else jax.random.laplace)(k, s, dtype)
    return d / per_example(jnp.maximum(lp_norm(d, norm), 1e-12), len(s))

  return rng.draw(unit, key, shape) * per_example(eps, len(shape))
