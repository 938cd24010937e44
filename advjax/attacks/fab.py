"""FAB: the fast adaptive boundary attack (Croce & Hein 2020), Linf, L2, L1.

A minimal-norm attack. At each iterate `x_k` the classifier is linearised,
the closest linearised decision boundary is picked (untargeted: the class
`l` minimising `|f_l - f_y| / |grad(f_l - f_y)|_q`, q the dual norm;
targeted: the boundary between y and the target), and both `x_k` and the
clean `x_0` are projected onto that hyperplane *inside the box*
(`hyperplane_projection`: the exact minimal-norm solution, by sorting the
coordinates' breakpoints). The next iterate is a biased combination

    x_{k+1} = clip((1 - a)(x_k + eta d_k) + a (x_0 + eta d_0)),
    a = min(|d_k| / (|d_k| + |d_0|), alpha_max),

which keeps it close to x_0; whenever `x_{k+1}` is misclassified it is
recorded if it is the smallest so far and pulled back towards x_0,
`x_{k+1} = x_0 + beta (x_{k+1} - x_0)`. Each iteration costs one forward
pass for the prediction, and one forward pass with one vector-Jacobian
product per class (untargeted) or a single one (targeted, FAB-T as used by
AutoAttack).
"""
from typing import Callable, Optional

import jax
import jax.numpy as jnp
from jax import lax

from advjax import checks, projections, rng
from advjax.attacks import base
from advjax.types import Array, Bounds, PRNGKey

__all__ = ["hyperplane_projection", "fab"]

_NORMS = ("linf", "l2", "l1")
_DUAL = {"linf": "l1", "l2": "l2", "l1": "linf"}


def _geometric_bisection(below, lo, hi, iterations: int = 40):
  """Per row, narrows `[lo, hi]` (both > 0) around the point where the
  monotone predicate `below(r)` turns False, halving `log(hi / lo)` each
  step; returns `(lo, hi)` with `below(lo)` True where it was at the start."""
  def body(_, lh):
    lo, hi = lh
    mid = jnp.sqrt(lo * hi)
    b = below(mid)
    return jnp.where(b, mid, lo), jnp.where(b, hi, mid)
  return lax.fori_loop(0, iterations, body, (lo, hi))


def hyperplane_projection(t: Array, w: Array, c: Array, norm: str,
                          bounds: Bounds = (0., 1.)) -> Array:
  """Minimal-norm step onto a hyperplane within the box.

  Solves, per row, `min |d|_p  s.t.  w . d = c,  lo <= t + d <= hi`. Only
  coordinates that move towards the hyperplane are used. For Linf and L2
  each moves by `min(r m_i, room_i)` (Linf: `m_i = 1`; L2: `m_i = |w_i|`,
  the KKT solution of the box-constrained least-norm problem), the
  threshold r making `sum_i |w_i| min(r m_i, room_i) = |c|`; for L1 the
  coordinates are filled in decreasing `|w_i|` (the LP's vertex), the
  last one partly. The threshold is located by bisection on a log scale
  (40 halvings: below float32 resolution), then solved exactly on its
  linear piece, so no sort is needed (XLA:CPU sorts 64 floats in ~7 us).
  Where the hyperplane cannot be reached inside the box, the step goes as
  far towards it as the box allows.

  Args:
    t: `[B, D]` points inside the box.
    w: `[B, D]` normals.
    c: `[B]` required change `w . d` (the hyperplane is `w . z = w . t + c`).
    norm: 'linf', 'l2' or 'l1'.
    bounds: `(lo, hi)` box.

  Returns:
    `[B, D]` steps d.
  """
  if norm not in _NORMS:
    raise ValueError(f"hyperplane_projection: norm must be one of {_NORMS}, "
                     f"got {norm!r}.")
  lo, hi = bounds
  v = jnp.sign(c)[:, None] * w
  target = jnp.abs(c)[:, None]
  absv = jnp.abs(v)
  room = jnp.where(absv > 0, jnp.maximum(jnp.where(v > 0, hi - t, t - lo),
                                         0.), 0.)
  saturated = absv * room  # the gain of a coordinate moved all the way
  feasible = jnp.sum(saturated, axis=1, keepdims=True) >= target
  tiny = jnp.finfo(t.dtype).tiny
  if norm == "l1":
    # Coordinates with |v| > tau are used in full; tau is where their gain
    # first falls short of the target.
    gain_above = lambda tau: jnp.sum(jnp.where(absv > tau, saturated, 0.),
                                     axis=1, keepdims=True)
    top = jnp.max(absv, axis=1, keepdims=True)
    lo_t, hi_t = _geometric_bisection(lambda tau: gain_above(tau) >= target,
                                      jnp.maximum(top * 1e-20, tiny),
                                      jnp.maximum(top, tiny))
    full = absv > hi_t
    edge = (absv > lo_t) & ~full  # the coordinate(s) at the threshold
    rest = target - gain_above(hi_t)
    edge_gain = jnp.sum(jnp.where(edge, saturated, 0.), axis=1, keepdims=True)
    frac = jnp.clip(rest / jnp.where(edge_gain > 0, edge_gain, 1.), 0., 1.)
    mag = jnp.where(full, room, jnp.where(edge, frac * room, 0.))
  else:
    m = jnp.ones_like(absv) if norm == "linf" else absv
    slope = absv * m
    q = jnp.where(slope > 0, room / jnp.where(m > 0, m, 1.), 0.)
    gain = lambda r: jnp.sum(absv * jnp.minimum(r * m, room), axis=1,
                             keepdims=True)
    top = jnp.max(q, axis=1, keepdims=True)
    lo_r, hi_r = _geometric_bisection(lambda r: gain(r) < target,
                                      jnp.maximum(top * 1e-20, tiny),
                                      jnp.maximum(top, tiny))
    # On the linear piece through lo_r: saturated coordinates give their
    # full gain, the others grow with slope a_i.
    sat = (q <= lo_r) & (slope > 0)
    c_sat = jnp.sum(jnp.where(sat, saturated, 0.), axis=1, keepdims=True)
    a_free = jnp.sum(jnp.where(sat, 0., slope), axis=1, keepdims=True)
    r = jnp.clip((target - c_sat) / jnp.where(a_free > 0, a_free, 1.), 0.,
                 hi_r)
    r = jnp.where(gain(lo_r) >= target, lo_r * target / jnp.maximum(
        gain(lo_r), tiny), r)  # the target lies below the bracket
    mag = jnp.minimum(r * m, room)
  mag = jnp.where(feasible, mag, room)
  return (jnp.sign(v) * mag).astype(t.dtype)


def _flat_norm(d, norm):
  return projections.lp_norm(d, norm)


def fab(model_fn: Callable, x: Array, y: Array, *, key: Optional[PRNGKey] = None,
        norm: str = "linf", steps: int = 100, restarts: int = 1,
        eps=None, random_start: bool = False, targeted: bool = False,
        target_rank: int = 2,
        targets: Optional[Array] = None, alpha_max: float = 0.1,
        eta: float = 1.05, beta: float = 0.9, bounds: Bounds = (0., 1.),
        return_result: bool = False):
  """FAB: the smallest adversarial perturbation found per example.

  Args:
    model_fn: pure `[B, ...] -> [B, K]` logits.
    x: `[B, ...]` float inputs inside `bounds`.
    y: `[B]` int true labels (success = misclassification, also for the
      targeted version, as in the reference).
    key: `jax.random.key` or `[B]` keys; needed when `restarts > 1`.
    norm: 'linf', 'l2' or 'l1' (static).
    steps: iterations per restart (static); 100 in AutoAttack.
    restarts: restarts (static); the first starts at x (unless
      `random_start`), the others at a random point at distance `eps / 2`;
      per example the smallest adversarial over all of them is kept.
    eps: the radius of the random starts (scalar or `[B]`).
    random_start: start the first restart at a random point too.
    targeted: follow the boundary to one target class (FAB-T).
    target_rank: the target is the class ranked this at the clean input
      (2 = runner-up); `targets` overrides it.
    targets: `[B]` explicit target classes (targeted only).
    alpha_max, eta, beta: bias towards x_0, overshoot, backward step (the
      paper's 0.1, 1.05, 0.9).
    bounds: `(lo, hi)` box.
    return_result: return a `base.MinimalResult` (x_adv, success, distance
      in `norm`, n_iters) instead of x_adv.

  Returns:
    `x_adv`: the smallest misclassified point found, x where none was
    (and where x is already misclassified); or a `MinimalResult`.

  References:
    Croce & Hein, "Minimally distorted adversarial examples with a fast
    adaptive boundary attack", ICML 2020; FAB-T in Croce & Hein, ICML 2020
    (AutoAttack).
  """
  if norm not in _NORMS:
    raise ValueError(f"fab: norm must be one of {_NORMS}, got {norm!r}.")
  x, y, eps, num_classes = checks.check_attack_inputs(
      model_fn, x, y, eps=eps, bounds=bounds, name="fab")
  if steps < 1 or restarts < 1:
    raise ValueError(f"fab: need steps >= 1 and restarts >= 1, got {steps}, "
                     f"{restarts}.")
  randomised = restarts > 1 or random_start
  if randomised and (key is None or eps is None):
    raise ValueError("fab: random starts (restarts > 1 or random_start) are "
                     "points at distance eps / 2: pass eps and key.")
  b = x.shape[0]
  shape = x.shape
  lo, hi = bounds
  x0 = x.reshape(b, -1)
  logits0 = model_fn(x)
  clean_wrong = jnp.argmax(logits0, axis=-1) != y
  if targeted:
    if targets is None:
      if not 2 <= target_rank <= num_classes:
        raise ValueError(f"fab: target_rank must be in 2..{num_classes}, got "
                         f"{target_rank}.")
      targets = jnp.argsort(logits0, axis=-1)[:, num_classes - target_rank]
    targets = jnp.asarray(targets, jnp.int32)

  def boundary(z):
    """The linearised boundary at z: `(f, g)` with `f + g . (u - z) = 0`."""
    zi = z.reshape(shape)
    if targeted:
      def diff(u):
        lg = model_fn(u)
        f = (jnp.take_along_axis(lg, targets[:, None], 1) -
             jnp.take_along_axis(lg, y[:, None], 1))[:, 0]
        return jnp.sum(f), f
      g, f = jax.grad(diff, has_aux=True)(zi)
      return f, g.reshape(b, -1)
    lg, vjp = jax.vjp(model_fn, zi)
    jac = jax.vmap(lambda e: vjp(jnp.broadcast_to(e, lg.shape))[0])(
        jnp.eye(num_classes, dtype=lg.dtype))  # [K, B, ...]
    jac = jnp.moveaxis(jac, 0, 1).reshape(b, num_classes, -1)
    onehot = jax.nn.one_hot(y, num_classes, dtype=bool)
    f_all = lg - jnp.take_along_axis(lg, y[:, None], 1)
    g_all = jac - jnp.take_along_axis(jac, y[:, None, None], 1)
    dual = {"linf": lambda a: jnp.sum(jnp.abs(a), -1),
            "l2": lambda a: jnp.sqrt(jnp.sum(a * a, -1)),
            "l1": lambda a: jnp.max(jnp.abs(a), -1)}[norm]
    dist = jnp.abs(f_all) / (dual(g_all) + 1e-12)
    l = jnp.argmin(jnp.where(onehot, jnp.inf, dist), axis=1)
    return (jnp.take_along_axis(f_all, l[:, None], 1)[:, 0],
            jnp.take_along_axis(g_all, l[:, None, None], 1)[:, 0])

  def predict_wrong(z):
    return jnp.argmax(model_fn(z.reshape(shape)), axis=-1) != y

  def one_restart(carry, inputs):
    adv, best = carry
    r, k = inputs
    x1 = x0
    if randomised:
      eps_b = jnp.broadcast_to(jnp.asarray(eps, x.dtype), (b,))

      def unit(kk, s):
        tt = (jax.random.uniform(kk, s, x.dtype, -1., 1.) if norm == "linf"
              else jax.random.normal(kk, s, x.dtype))
        n = projections.per_example(projections.lp_norm(tt, norm), len(s))
        return tt / n

      start = jnp.clip(x0 + 0.5 * eps_b[:, None] * rng.draw(
          unit, k, (b, x0.shape[1])), lo, hi)
      x1 = jnp.where((r > 0) | random_start, start, x0)

    def body(_, s):
      x1, adv, best = s
      f, g = boundary(x1)
      c1 = -f
      c0 = -f - jnp.sum(g * (x0 - x1), axis=1)
      d1 = hyperplane_projection(x1, g, c1, norm, bounds)
      d0 = hyperplane_projection(x0, g, c0, norm, bounds)
      a1 = jnp.maximum(_flat_norm(d1, norm), 1e-8)
      a0 = jnp.maximum(_flat_norm(d0, norm), 1e-8)
      alpha = jnp.clip(a1 / (a1 + a0), 0., alpha_max)[:, None]
      x1 = jnp.clip((x1 + eta * d1) * (1. - alpha) + (x0 + eta * d0) * alpha,
                    lo, hi)
      wrong = predict_wrong(x1)
      dist = _flat_norm(x1 - x0, norm)
      better = wrong & (dist < best)
      adv = jnp.where(better[:, None], x1, adv)
      best = jnp.where(better, dist, best)
      x1 = jnp.where(wrong[:, None], x0 + beta * (x1 - x0), x1)
      return x1, adv, best

    _, adv, best = lax.fori_loop(0, steps, body, (x1, adv, best))
    return (adv, best), None

  keys = (rng.split(rng.check_key(key, b, "fab"), restarts) if key is not None
          else jnp.zeros((restarts,), jnp.uint32))
  init = (x0, jnp.full((b,), jnp.inf, x.dtype))
  (adv, best), _ = lax.scan(one_restart, init,
                            (jnp.arange(restarts), keys))
  success = clean_wrong | jnp.isfinite(best)
  adv = jnp.where(clean_wrong[:, None], x0, adv)
  distance = jnp.where(clean_wrong | ~success, 0., best)
  x_adv = adv.reshape(shape).astype(x.dtype)
  if return_result:
    return base.MinimalResult(x_adv, success, distance,
                              jnp.full((b,), steps * restarts, jnp.int32))
  return x_adv
