"""Auto-PGD (Croce & Hein 2020): PGD with momentum and an adaptive step size.

APGD needs no step size. It starts at `2 eps` (Linf, L2) and halves the step
at checkpoints `w_j` of a fixed schedule (`checkpoints`: 22, 41, 57, 70, 80,
87, 93, 99 of 100 iterations) when either condition holds for the interval
that just ended:

1. fewer than `rho` of its steps (0.75) increased the objective, or
2. the step was not halved at the previous checkpoint and the best
   objective has not improved since then.

A halving restarts the example from its best point (highest objective) with
that point's gradient. Each step is PGD with heavy-ball momentum 0.75:
`z = P(x_k + eta sign(g_k))` (Linf; `g / |g|_2` for L2),
`x_{k+1} = P(x_k + 0.75 (z - x_k) + 0.25 (x_k - x_{k-1}))` (the first step
takes `z`), with P the projection onto the eps ball and the box. Every
example has its own step size and checkpoint decisions; the loop is one
`lax.fori_loop` over a fixed number of steps.

Losses: cross-entropy ('ce'), the difference of logits ratio ('dlr',
scale-invariant) and, in `apgd_t`, the targeted DLR against the class ranked
`target_rank` at the clean input (AutoAttack's APGD-T runs ranks 2..10 in
turn). Expectation over transformation (`eot_iter`) averages the gradient
over draws of a randomised model (`stochastic=True`: `model_fn(x, key)`).
"""
from typing import Callable, NamedTuple, Optional, Tuple, Union

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from advjax import checks, losses, projections, rng
from advjax.types import Array, Bounds, PRNGKey

__all__ = ["APGDResult", "checkpoints", "apgd", "apgd_t", "target_classes"]

_NORMS = ("linf", "l2")


class APGDResult(NamedTuple):
  """Result of `apgd` / `apgd_t` with `return_result=True`.

  Attributes:
    x_adv: `[B, ...]` per example the last misclassified iterate when the
      attack succeeded, else the point of highest objective (x where the
      clean input is already misclassified).
    fooled: `[B]` bool, some iterate (or the clean input) was misclassified.
    loss: `[B]` highest objective reached.
    loss_history: `[steps, B]` objective at each iterate (last restart, or
      last target for `apgd_t` with several).
    step_size: `[B]` final step size (after the halvings).
  """
  x_adv: Array
  fooled: Array
  loss: Array
  loss_history: Array
  step_size: Array


def checkpoints(steps: int) -> Tuple[int, ...]:
  """The iterations after which APGD checks its step size.

  `w_1 = 0.22 N`, then intervals shrinking by `0.03 N` down to `0.06 N`
  (integer parts, at least 1), as in the reference implementation: for
  N = 100, (22, 41, 57, 70, 80, 87, 93, 99), which is the paper's
  `w_j = ceil(p_j N)` with `p_0 = 0, p_1 = 0.22`,
  `p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)`.
  """
  k = max(int(0.22 * steps), 1)
  decrease = max(int(0.03 * steps), 1)
  minimum = max(int(0.06 * steps), 1)
  out, pos = [], k
  while pos <= steps:
    out.append(pos)
    k = max(k - decrease, minimum)
    pos += k
  return tuple(out)


def _schedule_arrays(steps: int):
  """`is_check[i]` and the length of the interval ending at step i."""
  is_check = np.zeros((max(steps, 1),), bool)
  length = np.ones((max(steps, 1),), np.float32)
  prev = 0
  for w in checkpoints(steps):
    is_check[w - 1] = True
    length[w - 1] = w - prev
    prev = w
  return jnp.asarray(is_check), jnp.asarray(length)


def target_classes(logits: Array, rank: int) -> Array:
  """The class ranked `rank` (1 = highest) in each row of `logits`."""
  return jnp.argsort(logits, axis=-1)[:, -rank].astype(jnp.int32)


class _State(NamedTuple):
  x_adv: Array
  x_prev: Array
  grad: Array
  x_best: Array
  grad_best: Array
  loss_best: Array
  x_best_adv: Array
  fooled: Array
  step_size: Array
  loss_prev: Array
  n_increase: Array
  loss_best_last: Array
  reduced_last: Array
  history: Array


def _check(norm, steps, rho, eot_iter, stochastic, name):
  if norm not in _NORMS:
    raise ValueError(f"{name}: norm must be one of {_NORMS}, got {norm!r}.")
  if steps < 1:
    raise ValueError(f"{name}: steps must be >= 1, got {steps}.")
  if not 0. < rho <= 1.:
    raise ValueError(f"{name}: rho must be in (0, 1], got {rho}.")
  if eot_iter < 1:
    raise ValueError(f"{name}: eot_iter must be >= 1, got {eot_iter}.")
  if eot_iter > 1 and not stochastic:
    raise ValueError(f"{name}: eot_iter > 1 averages over draws of a "
                     "randomised model; pass stochastic=True with a model_fn"
                     "(x, key).")


def _single_run(model, objective, x, y, eps, key, *, norm, steps, rho,
                momentum, step_factor, eot_iter, bounds):
  """One APGD run from a random start; returns the final `_State`."""
  eps_b = projections.per_example(eps, x.ndim)
  k_init, k_eot = rng.split(key, 2)

  def unit(k, s):
    t = (jax.random.uniform(k, s, x.dtype, -1., 1.) if norm == "linf"
         else jax.random.normal(k, s, x.dtype))
    n = projections.per_example(projections.lp_norm(t, norm), len(s))
    return t / (n + 1e-12)

  x_init = jnp.clip(x + eps_b * rng.draw(unit, k_init, x.shape), *bounds)

  def project(z):
    return x + projections.project_box(
        projections.project_ball(z - x, eps, norm), x, bounds)

  def loss_grad(z, i):
    """Objective, its gradient (mean over EOT draws) and misclassification
    (of the last draw), from one forward and backward pass per draw."""
    def total(z, k):
      logits = model(z, k)
      values = objective(logits)
      return jnp.sum(values), (values, logits)

    def one(e):
      k = rng.fold_in(k_eot, i * eot_iter + e)
      (_, (values, logits)), g = jax.value_and_grad(total, has_aux=True)(z, k)
      return values, logits, g

    if eot_iter == 1:
      values, logits, g = one(0)
    else:
      values, logits, g = jax.vmap(one)(jnp.arange(eot_iter))
      values, logits, g = values[-1], logits[-1], jnp.mean(g, axis=0)
    return values, g, jnp.argmax(logits, axis=-1) != y

  def direction(g):
    if norm == "linf":
      return jnp.sign(g)
    n = projections.per_example(projections.lp_norm(g, "l2"), g.ndim)
    return g / (n + 1e-12)

  loss0, grad0, wrong0 = loss_grad(x_init, 0)
  b = x.shape[0]
  step0 = jnp.broadcast_to(step_factor * jnp.asarray(eps, x.dtype), (b,))
  state = _State(
      x_adv=x_init, x_prev=x_init, grad=grad0, x_best=x_init,
      grad_best=grad0, loss_best=loss0, x_best_adv=x_init, fooled=wrong0,
      step_size=step0.astype(x.dtype), loss_prev=loss0,
      n_increase=jnp.zeros((b,), x.dtype), loss_best_last=loss0,
      reduced_last=jnp.ones((b,), bool),
      history=jnp.zeros((steps, b), loss0.dtype))
  is_check, length = _schedule_arrays(steps)

  def body(i, s: _State) -> _State:
    a = jnp.where(i > 0, momentum, 1.).astype(x.dtype)
    step = projections.per_example(s.step_size, x.ndim)
    z = project(s.x_adv + step * direction(s.grad))
    x_new = project(s.x_adv + a * (z - s.x_adv) + (1. - a) * (
        s.x_adv - s.x_prev))
    loss, g, wrong = loss_grad(x_new, i + 1)
    wrong_b = projections.per_example(wrong, x.ndim)
    improved = loss > s.loss_best
    improved_b = projections.per_example(improved, x.ndim)
    x_best = jnp.where(improved_b, x_new, s.x_best)
    grad_best = jnp.where(improved_b, g, s.grad_best)
    loss_best = jnp.where(improved, loss, s.loss_best)
    n_increase = s.n_increase + (loss > s.loss_prev)
    # Checkpoint: halve where too few steps improved, or where nothing
    # improved since a checkpoint that did not halve.
    halve = is_check[i] & ((n_increase <= rho * length[i]) | (
        ~s.reduced_last & (s.loss_best_last >= loss_best)))
    halve_b = projections.per_example(halve, x.ndim)
    return _State(
        x_adv=jnp.where(halve_b, x_best, x_new), x_prev=s.x_adv,
        grad=jnp.where(halve_b, grad_best, g), x_best=x_best,
        grad_best=grad_best, loss_best=loss_best,
        x_best_adv=jnp.where(wrong_b, x_new, s.x_best_adv),
        fooled=s.fooled | wrong,
        step_size=jnp.where(halve, 0.5 * s.step_size, s.step_size),
        loss_prev=loss,
        n_increase=jnp.where(is_check[i], 0., n_increase).astype(x.dtype),
        loss_best_last=jnp.where(is_check[i], loss_best, s.loss_best_last),
        reduced_last=jnp.where(is_check[i], halve, s.reduced_last),
        history=s.history.at[i].set(loss))

  return lax.fori_loop(0, steps, body, state)


def _as_model(model_fn, stochastic):
  if stochastic:
    return model_fn
  return lambda z, k: model_fn(z)


def apgd(model_fn: Callable, x: Array, y: Array, *, eps,
         key: PRNGKey, norm: str = "linf", steps: int = 100,
         loss: Union[str, Callable] = "ce", targets: Optional[Array] = None,
         restarts: int = 1, rho: float = 0.75, momentum: float = 0.75,
         step_factor: float = 2., eot_iter: int = 1, stochastic: bool = False,
         bounds: Bounds = (0., 1.), return_result: bool = False):
  """Auto-PGD: maximises a loss in the eps ball with no step size to tune.

  Args:
    model_fn: pure `[B, ...] -> [B, K]` logits; with `stochastic=True` a
      randomised model `model_fn(x, key)` with `[B]` per-example keys.
    x: `[B, ...]` float inputs inside `bounds`.
    y: `[B]` int true labels (success = misclassification).
    eps: scalar or `[B]` radius >= 0 (traced).
    key: `jax.random.key` or `[B]` per-example keys (random start, EOT).
    norm: 'linf' or 'l2' (static).
    steps: iterations per restart (static); 100 in AutoAttack.
    loss: 'ce', 'dlr', 'dlr_targeted' (needs `targets`) or a callable
      `(logits [B, K], y [B]) -> [B]` to maximise.
    targets: `[B]` target classes for 'dlr_targeted'.
    restarts: random restarts (static), run in sequence; an example keeps
      the first restart that fools it, else its highest objective.
    rho: the fraction of increasing steps below which the step is halved.
    momentum: heavy-ball weight of the new step (0.75; 1 is plain PGD).
    step_factor: initial step size in units of eps (2 in the paper).
    eot_iter: gradient draws averaged per step (static; randomised models).
    stochastic: call `model_fn(x, key)` (see `eot_iter`).
    bounds: `(lo, hi)` box.
    return_result: return an `APGDResult` instead of x_adv.

  Returns:
    `x_adv` `[B, ...]` (see `APGDResult.x_adv`), x's dtype, within eps of x
    in `norm` and inside `bounds`; or an `APGDResult`.

  Raises:
    ValueError / TypeError: bad shapes, dtypes, eps, labels, norm, key.

  References:
    Croce & Hein, "Reliable evaluation of adversarial robustness with an
    ensemble of diverse parameter-free attacks", ICML 2020 (Algorithm 1).
  """
  _check(norm, steps, rho, eot_iter, stochastic, "apgd")
  model = _as_model(model_fn, stochastic)
  clean_fn = (lambda z: model(z, None)) if not stochastic else (
      lambda z: model(z, rng.fold_in(key, 2 ** 31 - 1)))
  x, y, eps, _ = checks.check_attack_inputs(clean_fn, x, y, eps=eps,
                                            bounds=bounds, name="apgd")
  if restarts < 1:
    raise ValueError(f"apgd: restarts must be >= 1, got {restarts}.")
  key = rng.check_key(key, x.shape[0], "apgd")
  if loss == "dlr_targeted":
    if targets is None:
      raise ValueError("apgd: loss='dlr_targeted' needs targets [B] (or use "
                       "apgd_t).")
    objective = lambda logits: losses.dlr_targeted(logits, y, targets)
  else:
    fn = losses.get_loss(loss)
    objective = lambda logits: fn(logits, y)
  eps = jnp.asarray(eps, x.dtype)
  clean_wrong = jnp.argmax(clean_fn(x), axis=-1) != y
  kw = dict(norm=norm, steps=steps, rho=rho, momentum=momentum,
            step_factor=step_factor, eot_iter=eot_iter, bounds=bounds)

  def restart(carry, k):
    x_adv, fooled, best = carry
    s = _single_run(model, objective, x, y, eps, k, **kw)
    new_fool = ~fooled & s.fooled
    higher = ~fooled & ~s.fooled & (s.loss_best > best)
    pick = projections.per_example(new_fool, x.ndim)
    x_adv = jnp.where(pick, s.x_best_adv, jnp.where(
        projections.per_example(higher, x.ndim), s.x_best, x_adv))
    best = jnp.maximum(best, s.loss_best)
    return (x_adv, fooled | s.fooled, best), (s.history, s.step_size)

  init = (x, clean_wrong, jnp.full((x.shape[0],), -jnp.inf, x.dtype))
  (x_adv, fooled, best), (hist, step) = lax.scan(
      restart, init, rng.split(key, restarts))
  x_adv = x_adv.astype(x.dtype)
  if return_result:
    return APGDResult(x_adv, fooled, best, hist[-1], step[-1])
  return x_adv


def apgd_t(model_fn: Callable, x: Array, y: Array, *, eps, key: PRNGKey,
           target_rank: int = 2, num_targets: int = 1, targets=None,
           **kwargs):
  """APGD on the targeted DLR loss (AutoAttack's APGD-T).

  The target is the class ranked `target_rank` at the clean input (2 = the
  runner-up); with `num_targets > 1` the ranks `target_rank ...
  target_rank + num_targets - 1` are attacked in turn and an example keeps
  the first target that fools it. `targets` overrides the ranking.
  Success is misclassification, as in the reference. Other keywords as
  `apgd` (norm, steps, restarts, rho, ...).

  References:
    Croce & Hein, ICML 2020 (APGD-T: targeted DLR, the top 9 classes).
  """
  stochastic = kwargs.get("stochastic", False)
  clean_fn = ((lambda z: model_fn(z, rng.fold_in(key, 2 ** 31 - 1)))
              if stochastic else model_fn)
  x, y, eps, num_classes = checks.check_attack_inputs(
      clean_fn, x, y, eps=eps, name="apgd_t",
      bounds=kwargs.get("bounds", (0., 1.)))
  if targets is not None:
    return apgd(model_fn, x, y, eps=eps, key=key, loss="dlr_targeted",
                targets=jnp.asarray(targets, jnp.int32), **kwargs)
  last = target_rank + num_targets - 1
  if target_rank < 2 or last > num_classes:
    raise ValueError(f"apgd_t: target ranks {target_rank}..{last} must lie in "
                     f"2..{num_classes} (the model has {num_classes} "
                     "classes).")
  logits = clean_fn(x)
  return_result = kwargs.pop("return_result", False)

  def one(carry, rank_key):
    x_adv, fooled, best = carry
    rank, k = rank_key
    t = jnp.argsort(logits, axis=-1)[jnp.arange(x.shape[0]),
                                     num_classes - rank]
    r = apgd(model_fn, x, y, eps=eps, key=k, loss="dlr_targeted",
             targets=t.astype(jnp.int32), return_result=True, **kwargs)
    new = ~fooled & r.fooled
    higher = ~fooled & ~r.fooled & (r.loss > best)
    take = projections.per_example(new | higher, x.ndim)
    return (jnp.where(take, r.x_adv, x_adv), fooled | r.fooled,
            jnp.where(higher | new, r.loss, best)), (r.loss_history,
                                                     r.step_size)

  ranks = jnp.arange(target_rank, last + 1)
  init = (x, jnp.zeros((x.shape[0],), bool),
          jnp.full((x.shape[0],), -jnp.inf, x.dtype))
  (x_adv, fooled, best), (hist, step) = lax.scan(
      one, init, (ranks, rng.split(key, num_targets)))
  if return_result:
    return APGDResult(x_adv, fooled, best, hist[-1], step[-1])
  return x_adv

