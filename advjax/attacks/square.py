"""Square Attack (Andriushchenko et al. 2020): a score-based black-box attack.

Random search that only queries the model's logits, never its gradient. From
a start on the boundary of the threat model (Linf: vertical stripes of
+-eps; L2: a grid of square tiles of the `eta` pattern), each iteration
proposes a change inside one random square window of side `s`, queries the
model once and keeps the proposal when it lowers the margin loss
`z_y - max_{j != y} z_j` (or misclassifies). The window shrinks with the
iteration by the schedule of `p` (`p_init` halved after 10, 50, 200, 500,
1000, 2000, 4000, 6000 and 8000 iterations), `s = round(sqrt(p H W))`.

- Linf: the window is set to `x +- eps` with one random sign per channel.
- L2: mass moves between two windows: the first receives the `eta` pattern
  (two opposite-signed rectangles, each decaying from its centre as
  `sum_{k >= d} 1/(k+1)^2` of the Chebyshev distance d) with a random sign
  per channel, plus its current content, rescaled so the image keeps norm
  eps; the second window is emptied.

Every example draws its own windows and signs (the reference draws one
window per batch), so an example's result depends only on its key. Examples
stop once misclassified; the loop is a bounded `lax.while_loop` that ends
when all are.
"""
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from advjax import checks, losses, projections, rng
from advjax.types import Array, Bounds, PRNGKey

__all__ = ["SquareResult", "square", "p_schedule", "window_sizes",
           "eta_pattern"]

_NORMS = ("linf", "l2")
_HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)


class SquareResult(NamedTuple):
  """Result of `square` with `return_result=True`.

  Attributes:
    x_adv: `[B, ...]` the best point found (misclassified where `success`).
    success: `[B]` bool, x_adv is misclassified.
    margin: `[B]` final margin `z_y - max_{j != y} z_j` (<= 0 on success).
    n_queries: `[B]` int32 model queries the example used (1 for the start).
  """
  x_adv: Array
  success: Array
  margin: Array
  n_queries: Array


def p_schedule(iteration: int, p_init: float, queries: int,
               rescale: bool = False) -> float:
  """The fraction of pixels a window covers at `iteration` (0-based).

  `p_init / 2^j` with j the number of the thresholds (10, 50, 200, 500,
  1000, 2000, 4000, 6000, 8000) the iteration exceeds; with `rescale` the
  iteration is first mapped to a 10000-query budget.
  """
  it = int(iteration / queries * 10000) if rescale else iteration
  return p_init / 2 ** sum(it > t for t in _HALVINGS)


def window_sizes(queries: int, p_init: float, height: int, width: int,
                 norm: str, rescale: bool = False) -> np.ndarray:
  """`[queries]` window side per iteration (static, from `p_schedule`)."""
  out = np.empty((queries,), np.int32)
  for i in range(queries):
    s = int(round(np.sqrt(p_schedule(i, p_init, queries, rescale) * height *
                          width)))
    if norm == "linf":
      s = max(s, 1)
    else:
      s = max(s, 3)
      s += 1 - s % 2  # odd
    out[i] = min(s, height, width)
  return out


def _rectangle(rows: int, cols: int) -> np.ndarray:
  """Unit-L2 pattern decaying from the centre `(rows // 2, cols // 2)`:
  `sum_{k=d}^{n-1} 1 / (k + 1)^2`, d the Chebyshev distance to the centre,
  n = max(rows // 2, cols // 2) + 1."""
  if rows == 0:
    return np.zeros((0, cols))
  r = np.abs(np.arange(rows)[:, None] - rows // 2)
  c = np.abs(np.arange(cols)[None, :] - cols // 2)
  d = np.maximum(r, c)
  n = max(rows // 2, cols // 2) + 1
  inv_sq = 1. / np.arange(1, n + 1) ** 2
  tail = np.cumsum(inv_sq[::-1])[::-1]  # tail[k] = sum_{j >= k} 1/(j+1)^2
  out = tail[d]
  return out / np.sqrt(np.sum(out ** 2))


def eta_pattern(s: int) -> np.ndarray:
  """The `[s, s]` L2 update pattern: the top `s // 2` rows a positive
  `_rectangle`, the rest a negative one, normalised to unit L2 norm."""
  out = np.concatenate([_rectangle(s // 2, s), -_rectangle(s - s // 2, s)])
  return out / np.sqrt(np.sum(out ** 2))


def _margin_and_loss(logits, y, loss):
  m = losses.margin(logits, y)
  if loss == "margin":
    return m, m
  return m, -losses.cross_entropy(logits, y)


class _State(NamedTuple):
  i: Array
  x_best: Array
  margin: Array
  loss: Array
  n_queries: Array


def square(model_fn: Callable, x: Array, y: Array, *, eps, key: PRNGKey,
           norm: str = "linf", queries: int = 5000, p_init: float = 0.8,
           loss: str = "margin", restarts: int = 1, rescale: bool = False,
           bounds: Bounds = (0., 1.), return_result: bool = False):
  """Square Attack: random search in the eps ball with model queries only.

  Args:
    model_fn: `[B, H, W, C] -> [B, K]` logits; only evaluated, never
      differentiated (a black box).
    x: `[B, H, W, C]` float images inside `bounds`.
    y: `[B]` int true labels.
    eps: scalar or `[B]` radius >= 0.
    key: `jax.random.key` or `[B]` per-example keys.
    norm: 'linf' or 'l2' (static).
    queries: iterations per restart (static); 5000 in AutoAttack.
    p_init: initial fraction of pixels a window covers (0.8 in AutoAttack).
    loss: 'margin' (AutoAttack) or 'ce' to decide which proposals to keep.
    restarts: restarts (static) for examples not yet fooled.
    rescale: map the p schedule to the query budget (AutoAttack: False).
    bounds: `(lo, hi)` box.
    return_result: return a `SquareResult` instead of x_adv.

  Returns:
    `x_adv` `[B, H, W, C]`, within eps of x in `norm` and inside bounds, or
    a `SquareResult`.

  References:
    Andriushchenko, Croce, Flammarion, Hein, "Square attack: a
    query-efficient black-box adversarial attack via random search",
    ECCV 2020.
  """
  if norm not in _NORMS:
    raise ValueError(f"square: norm must be one of {_NORMS}, got {norm!r}.")
  if loss not in ("margin", "ce"):
    raise ValueError(f"square: loss must be 'margin' or 'ce', got {loss!r}.")
  if x.ndim != 4:
    raise ValueError(f"square: x must be images [B, H, W, C], got shape "
                     f"{tuple(x.shape)}.")
  if queries < 1 or restarts < 1:
    raise ValueError(f"square: need queries >= 1 and restarts >= 1, got "
                     f"{queries}, {restarts}.")
  x, y, eps, _ = checks.check_attack_inputs(model_fn, x, y, eps=eps,
                                            bounds=bounds, name="square")
  key = rng.check_key(key, x.shape[0], "square")
  b, h, w, c = x.shape
  lo, hi = bounds
  eps = jnp.asarray(eps, x.dtype)
  eps_b = projections.per_example(eps, 4)
  sizes = jnp.asarray(window_sizes(queries, p_init, h, w, norm, rescale))
  rows = jnp.arange(h)[None, :, None, None]
  cols = jnp.arange(w)[None, None, :, None]

  def window(k, s):
    """A random `s x s` window per example: its mask `[B, H, W, 1]` and its
    top-left corner."""
    u = rng.draw(lambda kk, sh: jax.random.uniform(kk, sh), k, (b, 2))
    vh = jnp.floor(u[:, 0] * (h - s)).astype(jnp.int32)[:, None, None, None]
    vw = jnp.floor(u[:, 1] * (w - s)).astype(jnp.int32)[:, None, None, None]
    mask = (rows >= vh) & (rows < vh + s) & (cols >= vw) & (cols < vw + s)
    return mask, vh, vw

  def signs(k, shape):
    return rng.draw(lambda kk, sh: jax.random.rademacher(kk, sh, x.dtype), k,
                    shape)

  def query(z):
    return _margin_and_loss(model_fn(z), y, loss)

  if norm == "l2":
    s_max = int(min(h, w))
    table = np.zeros((s_max + 1, s_max, s_max), np.float32)
    for s in range(1, s_max + 1):
      table[s, :s, :s] = eta_pattern(s)
    table = jnp.asarray(table, x.dtype)

  def l2_normalise(d):
    n = projections.per_example(projections.lp_norm(d, "l2"), 4)
    return d / (n + 1e-12)

  def start(k):
    if norm == "linf":
      return jnp.clip(x + eps_b * signs(k, (b, 1, w, c)), lo, hi)
    s0 = max(h // 5, 1)
    off = (h - 5 * s0) // 2
    tiles = [(off + i * s0, off + j * s0) for i in range(h // s0)
             for j in range(w // s0)]
    pats = np.zeros((len(tiles), 2, h, w), np.float32)
    eta = eta_pattern(s0)
    for t, (r0, c0) in enumerate(tiles):
      r1, c1 = min(r0 + s0, h), min(c0 + s0, w)
      pats[t, 0, r0:r1, c0:c1] = eta[:r1 - r0, :c1 - c0]
      pats[t, 1, r0:r1, c0:c1] = eta.T[:r1 - r0, :c1 - c0]
    k_flip, k_sign = rng.split(k, 2)
    flip = rng.draw(lambda kk, sh: jax.random.bernoulli(kk, 0.5, sh), k_flip,
                    (b, len(tiles))).astype(jnp.int32)
    chosen = jnp.asarray(pats, x.dtype)[jnp.arange(len(tiles))[None], flip]
    delta = jnp.einsum("bthw,btc->bhwc", chosen,
                       signs(k_sign, (b, len(tiles), c)))
    return jnp.clip(x + l2_normalise(delta) * eps_b, lo, hi)

  def propose(k, s, x_best):
    if norm == "linf":
      k_win, k_sign = rng.split(k, 2)
      mask, _, _ = window(k_win, s)
      z = jnp.where(mask, x_best + 2. * eps_b * signs(k_sign, (b, 1, 1, c)),
                    x_best)
      return jnp.clip(jnp.clip(z, x - eps_b, x + eps_b), lo, hi)
    k_w1, k_w2, k_sign, k_flip = rng.split(k, 4)
    delta = x_best - x
    mask1, vh, vw = window(k_w1, s)
    mask2, _, _ = window(k_w2, s)
    per_channel = lambda a: jnp.sqrt(jnp.sum(a * a, axis=(1, 2),
                                             keepdims=True))
    norm_w1 = per_channel(delta * mask1)
    norm_both = per_channel(delta * (mask1 | mask2))
    norm_img = projections.per_example(projections.lp_norm(delta, "l2"), 4)
    flip = rng.draw(lambda kk, sh: jax.random.bernoulli(kk, 0.5, sh), k_flip,
                    (b,))[:, None, None, None]
    r_loc = jnp.clip(rows - vh, 0, table.shape[1] - 1)
    c_loc = jnp.clip(cols - vw, 0, table.shape[1] - 1)
    r_idx = jnp.where(flip, c_loc, r_loc)
    c_idx = jnp.where(flip, r_loc, c_loc)
    eta = table[s][r_idx, c_idx] * mask1  # [B, H, W, 1]
    new = (eta * signs(k_sign, (b, 1, 1, c)) + delta * mask1 / (
        1e-12 + norm_w1)) * mask1
    budget = jnp.sqrt(jnp.maximum(eps_b ** 2 - norm_img ** 2, 0.) / c +
                      norm_both ** 2)
    new = new / (1e-12 + per_channel(new)) * budget
    delta = jnp.where(mask1, new, jnp.where(mask2, 0., delta))
    return jnp.clip(x + l2_normalise(delta) * eps_b, lo, hi)

  def one_restart(carry, k):
    x_adv, done, best = carry
    k0, k_loop = rng.split(k, 2)
    x_best = start(k0)
    margin, value = query(x_best)

    def cond(st: _State):
      return (st.i < queries) & jnp.any(st.margin > 0)

    def body(st: _State) -> _State:
      active = st.margin > 0
      z = propose(rng.fold_in(k_loop, st.i), sizes[st.i], st.x_best)
      m_new, v_new = query(z)
      lower = active & (v_new < st.loss)
      take = lower | (active & (m_new <= 0))
      take_b = take[:, None, None, None]
      return _State(
          i=st.i + 1, x_best=jnp.where(take_b, z, st.x_best),
          margin=jnp.where(take, m_new, st.margin),
          loss=jnp.where(lower, v_new, st.loss),
          n_queries=st.n_queries + active.astype(jnp.int32))

    st = lax.while_loop(cond, body, _State(
        jnp.int32(0), x_best, margin, value, jnp.ones((b,), jnp.int32)))
    fooled = st.margin <= 0
    # Keep the first restart that fools, else the lowest margin so far.
    take = ~done & (fooled | (st.margin < best))
    x_adv = jnp.where(take[:, None, None, None], st.x_best, x_adv)
    best = jnp.where(take, st.margin, best)
    return (x_adv, done | fooled, best), st.n_queries

  clean_margin, _ = query(x)
  done0 = clean_margin <= 0
  init = (x, done0, jnp.where(done0, clean_margin, jnp.inf))
  (x_adv, done, margin), n_q = lax.scan(one_restart, init,
                                        rng.split(key, restarts))
  x_adv = x_adv.astype(x.dtype)
  if return_result:
    return SquareResult(x_adv, done, margin, jnp.sum(n_q, axis=0))
  return x_adv

