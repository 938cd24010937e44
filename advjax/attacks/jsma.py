"""The Jacobian-based saliency map attack (Papernot et al., EuroS&P 2016).

A targeted L0 attack: at each iteration pick the pair of input features
whose joint change most raises the target's output while lowering the
others', move both by theta (to the box's face for |theta| = 1), and remove
them from the search domain; stop at the target or when a fraction gamma of
the features has been changed. Batch-native: one bounded `lax.while_loop`,
examples stop on their own; the saliency map needs only two vector-Jacobian
products per iteration (the target's gradient and the gradient of the sum
of all outputs), not the full Jacobian.
"""
import math
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
from jax import lax

from advjax import checks
from advjax.attacks import base
from advjax.types import Array, Bounds, ModelFn, PRNGKey

__all__ = ["jsma"]


class _State(NamedTuple):
  """JSMA's loop state."""
  i: Array
  x_adv: Array
  domain: Array   # [B, n] features still searchable
  done: Array     # [B] at the target or out of pairs
  n_iters: Array  # [B] pair iterations


_PAIR_ROWS = 64  # rows p of the pair search per block


def best_pair(a: Array, b: Array, domain: Array, increase: bool):
  """The JSMA pair: `argmax_{p != q}` of `|a_p + a_q| |b_p + b_q|` over the
  pairs in `domain` whose sums have the attack's signs (`a` > 0 and `b` < 0
  when `increase`, else the reverse), per example.

  Exactly the first maximum of the `[n, n]` score in row-major order, but
  searched `_PAIR_ROWS` rows `p` at a time in a scan: the whole `[B, n, n]`
  score is never held (at n = 784 and B = 64, 157 MB per array), so the
  search runs from cache (JSMA on Wong's CNN, 28x28, batch 64, 2 CPU cores:
  12.9 -> 4.3 s per batch, the same adversarial examples).

  Args:
    a, b: `[B, n]` the target's and the other classes' gradients.
    domain: `[B, n]` bool, the features that may still change.
    increase: the attack's direction (static).

  Returns:
    `(p, q, found)`: `[B]` int32 features and whether any pair qualified.
  """
  batch, n = a.shape
  rows = min(_PAIR_ROWS, n)
  blocks = -(-n // rows)
  pad = blocks * rows - n
  a_p = jnp.pad(a, ((0, 0), (0, pad)))
  b_p = jnp.pad(b, ((0, 0), (0, pad)))
  d_p = jnp.pad(domain, ((0, 0), (0, pad)))  # padded rows: never valid
  cols = jnp.arange(n)

  def block(carry, start):
    best, best_p, best_q = carry
    ar = lax.dynamic_slice_in_dim(a_p, start, rows, axis=1)[:, :, None]
    br = lax.dynamic_slice_in_dim(b_p, start, rows, axis=1)[:, :, None]
    dr = lax.dynamic_slice_in_dim(d_p, start, rows, axis=1)[:, :, None]
    big_a, big_b = ar + a[:, None, :], br + b[:, None, :]
    signs = ((big_a > 0) & (big_b < 0)) if increase else (
        (big_a < 0) & (big_b > 0))
    p_idx = start + jnp.arange(rows)
    valid = (signs & dr & domain[:, None, :]
             & (p_idx[:, None] != cols[None, :])[None])
    score = jnp.where(valid, jnp.abs(big_a) * jnp.abs(big_b),
                      -jnp.inf).reshape(batch, rows * n)
    k = jnp.argmax(score, axis=1)
    s = jnp.take_along_axis(score, k[:, None], 1)[:, 0]
    better = s > best  # strict: the earlier block keeps a tie
    return (jnp.where(better, s, best),
            jnp.where(better, start + k // n, best_p),
            jnp.where(better, k % n, best_q)), None

  init = (jnp.full((batch,), -jnp.inf, a.dtype),
          jnp.zeros((batch,), jnp.int32), jnp.zeros((batch,), jnp.int32))
  (best, p, q), _ = lax.scan(block, init,
                             jnp.arange(blocks, dtype=jnp.int32) * rows)
  return p.astype(jnp.int32), q.astype(jnp.int32), jnp.isfinite(best)


def jsma(model_fn: ModelFn, x: Array, y: Array, *,
         key: Optional[PRNGKey] = None, theta: float = 1.,
         gamma: float = 0.1, on: str = "logits", bounds: Bounds = (0., 1.),
         return_result: bool = False):
  """JSMA towards the target classes y.

  Per iteration, with `F` the model's outputs (`on`: logits, the JSMA-Z of
  Carlini & Wagner, or softmax probabilities, JSMA-F), `a = grad F_t` and
  `b = grad sum_{j != t} F_j` (flattened), over pairs `(p, q)` of features
  still in the search domain: `A = a_p + a_q`, `B = b_p + b_q`; for
  `theta > 0` the pair maximising `A |B|` with `A > 0`, `B < 0` (for
  `theta < 0`: `|A| B` with `A < 0`, `B > 0`) is moved by
  `theta (hi - lo)`, clipped to the box, and both leave the domain. The
  domain starts as the features that can still move in theta's direction.

  Args:
    model_fn: pure `[B, ...] -> [B, K]` logits.
    x: `[B, ...]` float inputs inside `bounds`.
    y: `[B]` int target classes.
    key: unused (deterministic); accepted for the contract.
    theta: the change per selected feature as a fraction of `hi - lo`
      (static; its sign chooses increasing or decreasing features); +1 in
      the paper.
    gamma: the largest fraction of features changed (static, in (0, 1]);
      at most `floor(gamma n / 2)` pair iterations.
    on: 'logits' or 'probs' (static).
    bounds: `(lo, hi)` box.
    return_result: return a `base.MinimalResult` (x_adv, success, distance =
      the number of changed features, n_iters = pair iterations).

  Returns:
    `x_adv` (or a `MinimalResult`), x's shape and dtype, inside bounds. An
    example whose search ends without reaching the target returns its last
    iterate (`success` False).

  Raises:
    ValueError, TypeError: bad inputs (`checks.check_attack_inputs`), theta 0,
    gamma outside (0, 1], an unknown `on`.

  Note:
    The pair search (`best_pair`) holds `[B, 64, n]` blocks of the `[B, n,
    n]` pair scores at a time: 200 kB per example at n = 28 x 28.

  References:
    Papernot, McDaniel, Jha, Fredrikson, Celik, Swami, "The limitations of
    deep learning in adversarial settings", EuroS&P 2016 (Algorithms 2 and
    3).
  """
  del key
  x, y, _, num_classes = checks.check_attack_inputs(
      model_fn, x, y, bounds=bounds, name="jsma")
  if theta == 0:
    raise ValueError("jsma: theta must be nonzero (its sign picks the "
                     "direction; +1 sets features to the box's top).")
  if not 0. < gamma <= 1.:
    raise ValueError(f"jsma: gamma must be in (0, 1], got {gamma}.")
  if on not in ("logits", "probs"):
    raise ValueError(f"jsma: on must be 'logits' or 'probs', got {on!r}.")
  lo, hi = bounds
  batch = x.shape[0]
  shape = x.shape
  n = math.prod(shape[1:])
  max_iters = max(int(gamma * n) // 2, 1)
  increase = theta > 0
  out_fn = model_fn if on == "logits" else (
      lambda z: jax.nn.softmax(model_fn(z), axis=-1))
  onehot_t = jax.nn.one_hot(y, num_classes, dtype=x.dtype)

  def saliency_pair(x_adv, domain):
    out, vjp = jax.vjp(out_fn, x_adv)
    a = vjp(onehot_t)[0].reshape(batch, n)
    b = vjp(jnp.ones_like(out))[0].reshape(batch, n) - a
    p, q, found = best_pair(a, b, domain, increase)
    return out, p, q, found

  def cond(s: _State):
    return (s.i < max_iters) & ~jnp.all(s.done)

  def body(s: _State) -> _State:
    out, p, q, found = saliency_pair(s.x_adv, s.domain)
    done = s.done | (jnp.argmax(out, axis=1) == y) | ~found
    move = ~done
    pick = (jax.nn.one_hot(p, n, dtype=bool) | jax.nn.one_hot(q, n, dtype=bool)
            ) & move[:, None]
    flat = s.x_adv.reshape(batch, n)
    flat = jnp.clip(jnp.where(pick, flat + theta * (hi - lo), flat), lo, hi)
    return _State(i=s.i + 1, x_adv=flat.reshape(shape).astype(x.dtype),
                  domain=s.domain & ~pick, done=done,
                  n_iters=s.n_iters + move.astype(jnp.int32))

  flat_x = x.reshape(batch, n)
  out = lax.while_loop(cond, body, _State(
      i=jnp.zeros((), jnp.int32), x_adv=x,
      domain=flat_x < hi if increase else flat_x > lo,
      done=jnp.zeros((batch,), bool), n_iters=jnp.zeros((batch,), jnp.int32)))
  x_adv, n_iters = out.x_adv, out.n_iters
  if not return_result:
    return x_adv
  success = jnp.argmax(model_fn(x_adv), axis=1) == y
  changed = jnp.sum((x_adv != x).reshape(batch, n), axis=1)
  return base.MinimalResult(x_adv, success, changed.astype(x.dtype), n_iters)
