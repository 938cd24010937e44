"""First-order attacks: FGSM/FGM, BIM, ILLC and PGD (Linf, L2, L1).

All follow the attack contract (DESIGN.md section 2): pure functions
`attack(model_fn, x, y, *, key=None, **hyperparameters) -> x_adv`, traced
budgets (`eps`, `step_size`), static trip counts (`steps`, `restarts`).
"""
import math
from typing import Optional, Union

import jax
import jax.numpy as jnp
import optax

from advjax import checks, losses, projections, rng
from advjax.attacks import base
from advjax.types import Array, Bounds, InitFn, LossFn, ModelFn, PRNGKey

__all__ = ["fgm", "fgsm", "pgd", "bim", "illc", "noise", "fgsm_search",
           "igs_search", "kurakin_steps"]


def _input_gradient(model_fn, x, y, loss, targeted, bounds):
  objective = losses.attack_objective(loss, targeted)
  g = jax.grad(lambda z: jnp.sum(objective(model_fn(z), y)))(x)
  return base.mask_box_gradient(g, x, bounds)


def fgm(model_fn: ModelFn, x: Array, y: Array, *, eps, norm: str = "linf",
        loss: Union[str, LossFn] = "ce", targeted: bool = False,
        bounds: Bounds = (0., 1.), l1_sparsity: float = 0.) -> Array:
  """Fast gradient method: one steepest-ascent step of length eps in `norm`.

  `x_adv = clip(x + eps * e)` with `e` the unit steepest direction of the
  loss gradient (`sign(g)` for Linf — FGSM; `g / |g|_2` for L2; for L1 the
  largest-|g| coordinate, or the top `l1_sparsity` fraction).

  Args:
    model_fn: pure `[B, ...] -> [B, K]` logits.
    x: `[B, ...]` float inputs inside `bounds`.
    y: `[B]` int labels (target labels when `targeted`).
    eps: scalar or `[B]` budget, >= 0.
    norm: 'linf', 'l2' or 'l1' (static).
    loss: 'ce', 'cw', 'dlr' or a callable `(logits, labels) -> [B]`.
    targeted: move towards `y` instead of away from it.
    bounds: `(lo, hi)` box of valid inputs.
    l1_sparsity: see `advjax.attacks.base.steepest_direction`.

  Returns:
    `x_adv`, same shape and dtype as x, `|x_adv - x| <= eps`, inside bounds.

  References:
    Goodfellow, Shlens, Szegedy, "Explaining and harnessing adversarial
    examples", ICLR 2015.
  """
  projections.check_norm(norm)
  x, y, eps, _ = checks.check_attack_inputs(model_fn, x, y, eps=eps,
                                            bounds=bounds, name="fgm")
  g = _input_gradient(model_fn, x, y, loss, targeted, bounds)
  direction = base.steepest_direction(g, norm, l1_sparsity)
  delta = direction * projections.per_example(eps, x.ndim).astype(x.dtype)
  return (x + projections.project_box(delta, x, bounds)).astype(x.dtype)


def fgsm(model_fn: ModelFn, x: Array, y: Array, *, eps,
         loss: Union[str, LossFn] = "ce", targeted: bool = False,
         bounds: Bounds = (0., 1.)) -> Array:
  """Fast gradient sign method: `clip(x + eps * sign(grad loss))`.

  See `fgm` (this is `fgm(norm='linf')`).

  References:
    Goodfellow, Shlens, Szegedy, ICLR 2015.
  """
  return fgm(model_fn, x, y, eps=eps, norm="linf", loss=loss,
             targeted=targeted, bounds=bounds)


def pgd(model_fn: ModelFn, x: Array, y: Array, *, eps,
        key: Optional[PRNGKey] = None, norm: str = "linf", steps: int = 10,
        step_size=None, restarts: int = 1, random_start: bool = True,
        optimizer: Union[None, str, optax.GradientTransformation] = None,
        loss: Union[str, LossFn] = "ce", targeted: bool = False,
        bounds: Bounds = (0., 1.), l1_sparsity: float = 0.01,
        init: Optional[InitFn] = None, unroll: Union[None, bool, int] = None,
        return_result: bool = False):
  """Projected gradient descent (ascent on the loss) in an Lp ball.

  Each step: gradient of the objective at the feasible iterate, an optax
  update (default: `step_size` times the unit steepest direction of `norm`),
  projection onto the `eps` ball around the clean x, then onto the box. The
  random start is uniform in the ball (then moved into the box). `restarts`
  runs are vmapped together (on CPU, for up to 64 steps in all, unrolled one
  after another, which XLA:CPU runs faster); per example the restart with the
  highest final objective is kept.

  Args:
    model_fn: pure `[B, ...] -> [B, K]` logits.
    x: `[B, ...]` float inputs inside `bounds`.
    y: `[B]` int labels (target labels when `targeted`).
    eps: scalar or `[B]` radius, >= 0 (traced).
    key: `jax.random.key`, required when `random_start` or `restarts > 1`;
      or `[B]` per-example keys, so that each example's random start does
      not depend on the batch it is attacked in (see `advjax.rng`).
    norm: 'linf', 'l2' or 'l1' (static).
    steps: iterations (static).
    step_size: scalar or `[B]`; default `2.5 * eps / steps` (Madry et al.).
      Ignored when `optimizer` is an optax transformation (its learning rate
      is the step).
    restarts: independent random starts (static), run together with vmap.
    random_start: start uniformly inside the ball (else at x).
    optimizer: None/'steepest', 'adam', 'sgd' or any
      `optax.GradientTransformation` (see `base.make_optimizer`).
    loss: 'ce' (cross-entropy), 'cw' (Carlini–Wagner margin), 'dlr' or a
      callable `(logits [B, K], labels [B]) -> [B]`.
    targeted: minimise the loss towards the target labels `y`.
    bounds: `(lo, hi)` box of valid inputs.
    l1_sparsity: fraction of coordinates an L1 steepest step moves.
    init: optional `(key, x) -> delta0` replacing the uniform random start
      (e.g. TRADES' `0.001 * normal`); it is projected into the ball and box.
    unroll: static `lax.scan` unroll; None: fully unrolled on CPU up to 64
      steps, rolled elsewhere (see `advjax.attacks.base.resolve_unroll`).
    return_result: return an `AttackResult` (x_adv, loss_history, loss)
      instead of x_adv.

  Returns:
    `x_adv` `[B, ...]`, dtype of x, within `eps` of x in `norm` and inside
    `bounds`; or an `AttackResult` when `return_result`.

  Raises:
    ValueError / TypeError: bad shapes, dtypes, eps, labels, missing key.

  References:
    Madry, Makelov, Schmidt, Tsipras, Vladu, "Towards deep learning models
    resistant to adversarial attacks", ICLR 2018. Tramer & Boneh, "Adversarial
    training and robustness for multiple perturbations", NeurIPS 2019 (L1).
    D'Costa & Sriramanan, reproducibility report (Adam inner optimizer).
  """
  projections.check_norm(norm)
  x, y, eps, _ = checks.check_attack_inputs(model_fn, x, y, eps=eps,
                                            bounds=bounds, name="pgd")
  if steps < 0 or restarts < 1:
    raise ValueError(f"pgd: need steps >= 0 and restarts >= 1, got steps="
                     f"{steps}, restarts={restarts}.")
  if restarts > 1 and not random_start:
    raise ValueError("pgd: restarts > 1 needs random_start=True (otherwise "
                     "every restart is the same run).")
  if (random_start or restarts > 1 or init is not None) and key is None:
    raise ValueError("pgd: a random start needs key=jax.random.key(seed).")
  if key is not None:
    key = rng.check_key(key, x.shape[0], "pgd")
  eps = jnp.asarray(eps, x.dtype)
  if step_size is None:
    step_size = 2.5 * eps / max(steps, 1)
  optimizer = base.make_optimizer(optimizer, norm, step_size, l1_sparsity)
  objective_fn = losses.attack_objective(loss, targeted)
  objective = lambda x_adv: objective_fn(model_fn(x_adv), y)

  def project(delta, x0):
    return projections.project_box(
        projections.project_ball(delta, eps, norm), x0, bounds)

  def run(k):
    if init is not None:
      delta0 = init(k, x).astype(x.dtype)
    elif random_start:
      delta0 = projections.random_ball(k, x.shape, eps, norm, x.dtype)
    else:
      delta0 = jnp.zeros_like(x)
    out = base.attack_loop(objective, x, delta0, steps=steps,
                           optimizer=optimizer, project=project, bounds=bounds,
                           unroll=unroll)
    return out.delta, out.loss_history

  if restarts == 1:
    delta, history = run(key)
    final = objective(x + delta) if return_result else None
  else:
    keys = rng.split(key, restarts)
    if base.resolve_unroll(steps * restarts, unroll) is True:
      # CPU: restarts one after another, unrolled. A vmapped [R * B] batch
      # runs XLA:CPU convolutions ~1.5x slower than R batches of B.
      runs = [run(k) for k in keys]
      deltas = jnp.stack([r[0] for r in runs])
      histories = jnp.stack([r[1] for r in runs])
      finals = jnp.stack([objective(x + d) for d in deltas])  # [R, B]
    else:
      deltas, histories = jax.vmap(run)(keys)
      finals = jax.vmap(objective)(x[None] + deltas)  # [R, B]
    best = jnp.argmax(finals, axis=0)  # [B]
    delta = jnp.take_along_axis(
        deltas, best.reshape((1, -1) + (1,) * (x.ndim - 1)), axis=0)[0]
    history = jnp.take_along_axis(histories, best[None, None, :], axis=0)[0]
    final = jnp.take_along_axis(finals, best[None], axis=0)[0]
  x_adv = (x + delta).astype(x.dtype)
  if return_result:
    return base.AttackResult(x_adv, history, final)
  return x_adv


def kurakin_steps(eps, bounds: Bounds = (0., 1.), name: str = "kurakin_steps"
                  ) -> int:
  """Kurakin et al.'s step count of BIM and ILLC for a budget `eps`:
  `min(eps*255 + 4, 1.25 eps*255)` with eps in levels of 255 of the range
  (rounded up; at least 1), e.g. 20 at eps 16/255.

  Args:
    eps: the budget in image units (concrete; the largest of `[B]`).
    bounds: the box; one level is `(hi - lo) / 255`.
    name: the caller, named in the error.

  Raises:
    ValueError: eps is traced.
  """
  e = checks.concrete(eps)
  if e is None:
    raise ValueError(f"{name}: eps is traced, so the default step count "
                     "min(eps*255 + 4, 1.25 eps*255) cannot be computed; pass "
                     "steps explicitly.")
  levels = float(jnp.max(e)) * 255. / (bounds[1] - bounds[0])
  # Rounded first so eps = 4/255 in float32 gives 5 steps, not 6.
  return max(1, int(math.ceil(round(min(levels + 4, 1.25 * levels), 4))))


def bim(model_fn: ModelFn, x: Array, y: Array, *, eps, steps: Optional[int] = None,
        step_size=None, loss: Union[str, LossFn] = "ce", targeted: bool = False,
        bounds: Bounds = (0., 1.), relative_step: Optional[float] = None
        ) -> Array:
  """Basic iterative method: FGSM steps of size alpha with Clip_{X,eps}.

  `X_{N+1} = Clip_{X,eps}(X_N + alpha sign(grad J(X_N, y)))` from `X_0 = X`.
  Defaults as Kurakin et al.: alpha = one intensity level (1/255 of the
  range), steps = `min(eps*255 + 4, 1.25 eps*255)` (needs a concrete eps; pass
  `steps` under jit). `relative_step` sets the step to `relative_step * eps
  / steps` instead (1: the steps add up to eps, the iterative FGSM of
  studies that fix the step count; eps may be traced).

  References:
    Kurakin, Goodfellow, Bengio, "Adversarial examples in the physical world",
    ICLR workshop 2017.
  """
  if steps is None:
    steps = kurakin_steps(eps, bounds, "bim")
  if relative_step is not None:
    if step_size is not None:
      raise ValueError("bim: give step_size or relative_step, not both.")
    step_size = relative_step * eps / max(steps, 1)
  if step_size is None:
    step_size = (bounds[1] - bounds[0]) / 255.
  return pgd(model_fn, x, y, eps=eps, norm="linf", steps=steps,
             step_size=step_size, random_start=False, loss=loss,
             targeted=targeted, bounds=bounds)


def illc(model_fn: ModelFn, x: Array, y: Array, *, eps,
         steps: Optional[int] = None, step_size=None,
         bounds: Bounds = (0., 1.)) -> Array:
  """Iterative least-likely class: BIM steps *towards* the clean prediction's
  least-likely class, `X_{N+1} = Clip_{X,eps}(X_N - alpha sign(grad J(X_N, y_LL)))`.

  `y` is only validated (the target comes from the model). Defaults as `bim`.

  References:
    Kurakin, Goodfellow, Bengio, ICLR workshop 2017.
  """
  x, y, eps, _ = checks.check_attack_inputs(model_fn, x, y, eps=eps,
                                            bounds=bounds, name="illc")
  y_ll = jnp.argmin(model_fn(x), axis=-1).astype(jnp.int32)
  return bim(model_fn, x, y_ll, eps=eps, steps=steps, step_size=step_size,
             loss="ce", targeted=True, bounds=bounds)


def noise(model_fn: ModelFn, x: Array, y: Array, *, eps, key: PRNGKey,
          norm: str = "linf", bounds: Bounds = (0., 1.)) -> Array:
  """Random-noise baseline: a random point on the `norm` sphere of radius eps.

  Not an attack but the control every attack must beat: noise of the same
  norm (random signs for Linf), clipped to the box. Follows the attack
  contract so it sweeps and evaluates like one.
  """
  x, y, eps, _ = checks.check_attack_inputs(model_fn, x, y, eps=eps,
                                            bounds=bounds, name="noise")
  key = rng.check_key(key, x.shape[0], "noise")
  delta = projections.random_sphere(key, x.shape, jnp.asarray(eps, x.dtype),
                                    norm, x.dtype)
  return (x + projections.project_box(delta, x, bounds)).astype(x.dtype)


def fgsm_search(model_fn: ModelFn, x: Array, t: Array, *, grid: int,
                targeted: bool = True, bounds: Bounds = (0., 1.)) -> Array:
  """FGSM at the smallest eps that succeeds: a minimal-distance attack.

  Tries `grid` evenly spaced eps in (0, hi - lo] (FGSM is not monotone in
  eps, so every value is tried, not bisected) and keeps, per example, the
  first that reaches the target `t` (untargeted: leaves the label `t`);
  `x` itself where none does. Carlini & Wagner's FGSM baseline (Table IV).
  """
  x, t, _, _ = checks.check_attack_inputs(model_fn, x, t, bounds=bounds,
                                          name="fgsm_search")
  lo, hi = bounds
  eps_grid = jnp.linspace(0., hi - lo, grid + 1)[1:]

  def body(carry, eps):
    best, done = carry
    adv = fgsm(model_fn, x, t, eps=eps, targeted=targeted, bounds=bounds)
    ok = (jnp.argmax(model_fn(adv), -1) == t) == targeted
    ok = ok & ~done
    best = jnp.where(ok.reshape((-1,) + (1,) * (x.ndim - 1)), adv, best)
    return (best, done | ok), None

  (best, _), _ = jax.lax.scan(body, (x, jnp.zeros(x.shape[:1], bool)),
                              eps_grid)
  return best


def igs_search(model_fn: ModelFn, x: Array, t: Array, *, steps: int,
               bisections: int, bounds: Bounds = (0., 1.)) -> Array:
  """Targeted iterative gradient sign at the smallest eps that succeeds.

  BIM with `steps` steps of `1.25 eps / steps`, at the eps a per-example
  bisection (`bisections` halvings) on (0, hi - lo] finds to reach the
  target `t`; `x` itself where even the whole range fails. Carlini &
  Wagner's iterative-gradient-sign baseline (Table IV).
  """
  x, t, _, _ = checks.check_attack_inputs(model_fn, x, t, bounds=bounds,
                                          name="igs_search")
  lo, hi = bounds

  def attack(eps):
    adv = bim(model_fn, x, t, eps=eps, steps=steps,
              step_size=1.25 * eps / steps, targeted=True, bounds=bounds)
    return adv, jnp.argmax(model_fn(adv), -1) == t

  def body(_, carry):
    e_lo, e_hi, best = carry
    mid = (e_lo + e_hi) / 2
    adv, ok = attack(mid)
    best = jnp.where(ok.reshape((-1,) + (1,) * (x.ndim - 1)), adv, best)
    return jnp.where(ok, e_lo, mid), jnp.where(ok, mid, e_hi), best

  full = jnp.full(x.shape[:1], hi - lo, x.dtype)
  adv, ok = attack(full)
  best = jnp.where(ok.reshape((-1,) + (1,) * (x.ndim - 1)), adv, x)
  _, _, best = jax.lax.fori_loop(0, bisections, body,
                             (jnp.zeros_like(full), full, best))
  return best
