"""DeepFool (Moosavi-Dezfooli, Fawzi, Frossard, CVPR 2016), L2 and Linf.

A minimal-perturbation attack: at each iterate the classifier is linearised
and the point is moved to the nearest linearised decision boundary among a
set of candidate classes; the accumulated step, scaled by `1 + overshoot`,
is the perturbation. Batch-native: one bounded `lax.while_loop` in which
each example stops as soon as it is misclassified (a mask, not a Python
loop); the candidates' gradients come from one forward pass and one
vector-Jacobian product per candidate class (`jax.vjp`, vmapped).
"""
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
from jax import lax

from advjax import checks
from advjax.attacks import base
from advjax.projections import lp_norm, per_example
from advjax.types import Array, Bounds, ModelFn, PRNGKey

__all__ = ["deepfool"]

_NORMS = ("l2", "linf")


class _State(NamedTuple):
  """DeepFool's loop state."""
  i: Array
  r_tot: Array    # [B, ...] accumulated step
  done: Array     # [B] misclassified, stopped
  n_iters: Array  # [B] steps taken


def deepfool(model_fn: ModelFn, x: Array, y: Array, *,
             key: Optional[PRNGKey] = None, norm: str = "l2",
             steps: int = 50, overshoot=0.02, num_candidates: int = 10,
             bounds: Bounds = (0., 1.), return_result: bool = False):
  """The DeepFool minimal perturbation of each example away from label y.

  Per iteration, with `x_i` the current point, `z` the logits and `C` the
  candidate classes (the `num_candidates` highest-scoring classes at x, y
  excluded): for each `k` in `C`, `f_k = z_k - z_y` and `w_k = grad f_k`;
  `l = argmin_k |f_k| / |w_k|_q` (q = 2 for L2, q = 1 for Linf, the dual
  norm); the step to that boundary is
  `r = (|f_l| + 1e-4) / |w_l|_2^2 w_l` (L2) or
  `r = (|f_l| + 1e-4) / |w_l|_1 sign(w_l)` (Linf), accumulated into `r_tot`;
  `x_{i+1} = clip(x + (1 + overshoot) r_tot)`. An example stops once
  `argmax z != y`.

  Args:
    model_fn: pure `[B, ...] -> [B, K]` logits.
    x: `[B, ...]` float inputs inside `bounds`.
    y: `[B]` int labels to move away from (the true labels; the paper uses
      the model's prediction, which is the same for correctly classified
      inputs). Examples already misclassified return x, successful, with
      distance 0.
    key: unused (deterministic); accepted for the contract.
    norm: 'l2' or 'linf' (static).
    steps: iteration bound (static); 50 in the paper.
    overshoot: the final step's extra scale (traced); 0.02 in the paper.
    num_candidates: how many of the top classes are candidates (static);
      all classes when K <= num_candidates + 1.
    bounds: `(lo, hi)` box; every iterate is clipped into it.
    return_result: return a `base.MinimalResult` (x_adv, success, distance
      in `norm`, n_iters = steps taken) instead of x_adv.

  Returns:
    `x_adv` (or a `MinimalResult`), x's shape and dtype, inside bounds.
    Examples never misclassified within `steps` return their last iterate
    (`success` False).

  Raises:
    ValueError, TypeError: bad inputs (`checks.check_attack_inputs`), an
    unknown norm, steps < 1 or num_candidates < 1.

  References:
    Moosavi-Dezfooli, Fawzi, Frossard, "DeepFool: a simple and accurate
    method to fool deep neural networks", CVPR 2016 (Algorithm 2 and its
    Linf variant, section 3.3).
  """
  del key
  x, y, _, num_classes = checks.check_attack_inputs(
      model_fn, x, y, bounds=bounds, name="deepfool")
  if norm not in _NORMS:
    raise ValueError(f"deepfool: norm must be one of {_NORMS}, got {norm!r}.")
  if steps < 1 or num_candidates < 1:
    raise ValueError("deepfool: steps and num_candidates must be >= 1, got "
                     f"{steps}, {num_candidates}.")
  if num_classes < 2:
    raise ValueError("deepfool: the model must have at least 2 classes.")
  lo, hi = bounds
  dtype = x.dtype
  batch = x.shape[0]
  n_cand = min(num_candidates, num_classes - 1)
  # Candidate classes: the top scorers at x other than y, fixed per example.
  z0 = model_fn(x)
  onehot_y = jax.nn.one_hot(y, num_classes, dtype=bool)
  _, cand = lax.top_k(jnp.where(onehot_y, -jnp.inf, z0), n_cand)  # [B, J]
  cot_cand = jax.nn.one_hot(cand.T, num_classes, dtype=z0.dtype)  # [J, B, K]
  cot_y = jax.nn.one_hot(y, num_classes, dtype=z0.dtype)
  scale = 1. + jnp.asarray(overshoot, dtype)

  def candidates(x_i):
    """Logits, `f [B, J]` and `w [J, B, ...]` at x_i."""
    z, vjp = jax.vjp(model_fn, x_i)
    g_y = vjp(cot_y)[0]
    g_c = jax.vmap(lambda c: vjp(c)[0])(cot_cand)
    z_y = jnp.sum(z * cot_y, axis=1)
    f = jnp.take_along_axis(z, cand, axis=1) - z_y[:, None]
    return z, f, g_c - g_y[None]

  def point(r_tot):
    return jnp.clip(x + scale * r_tot, lo, hi).astype(dtype)

  def cond(s: _State):
    return (s.i < steps) & ~jnp.all(s.done)

  def body(s: _State) -> _State:
    z, f, w = candidates(point(s.r_tot))
    fooled = jnp.argmax(z, axis=1) != y
    done = s.done | fooled
    dual = "l2" if norm == "l2" else "l1"
    w_norm = jax.vmap(lambda a: lp_norm(a, dual))(w).T  # [B, J]
    w_norm = jnp.maximum(w_norm, jnp.finfo(dtype).tiny)
    ratio = jnp.abs(f) / w_norm
    best = jnp.argmin(ratio, axis=1)
    w_l = jnp.take_along_axis(
        jnp.moveaxis(w, 0, 1), best.reshape((batch, 1) + (1,) * (x.ndim - 1)),
        axis=1)[:, 0]
    f_l = jnp.take_along_axis(f, best[:, None], axis=1)[:, 0]
    n_l = jnp.take_along_axis(w_norm, best[:, None], axis=1)[:, 0]
    size = (jnp.abs(f_l) + 1e-4)
    if norm == "l2":
      r = per_example(size / (n_l * n_l), x.ndim) * w_l
    else:
      r = per_example(size / n_l, x.ndim) * jnp.sign(w_l)
    r_tot = jnp.where(per_example(done, x.ndim), s.r_tot, s.r_tot + r)
    return _State(i=s.i + 1, r_tot=r_tot, done=done,
                  n_iters=s.n_iters + (~done).astype(jnp.int32))

  out = lax.while_loop(cond, body, _State(
      i=jnp.zeros((), jnp.int32), r_tot=jnp.zeros_like(x),
      done=jnp.zeros((batch,), bool), n_iters=jnp.zeros((batch,), jnp.int32)))
  x_adv = point(out.r_tot)
  if not return_result:
    return x_adv
  success = jnp.argmax(model_fn(x_adv), axis=1) != y
  distance = jnp.where(success, lp_norm(x_adv - x, norm), 0.)
  return base.MinimalResult(x_adv, success, distance, out.n_iters)
