"""Wasserstein adversarial examples: PGD inside a Wasserstein ball.

The same loop as `pgd` (`advjax.attacks.base.attack_loop`) with other pieces:
the step is a Linf sign step, an L2 step, or the Wasserstein steepest-ascent
step (conjugate Sinkhorn), and the projection is the projected-Sinkhorn
projection onto `{z : W(x, z) <= eps}` followed by the box. The radius
search adds a `base.Tracker` that grows each example's radius, records it
when the example is first fooled and freezes the example from then on.
"""
from typing import NamedTuple, Optional, Union

import jax.numpy as jnp
import optax

from advjax import checks, losses, projections, sinkhorn
from advjax.attacks import base
from advjax.types import Array, Bounds, LossFn, ModelFn, PRNGKey

__all__ = ["WassersteinResult", "SearchResult", "wasserstein",
           "wasserstein_search", "conjugate_step"]


class WassersteinResult(NamedTuple):
  """Result of `wasserstein(..., return_result=True)`.

  Attributes:
    x_adv: `[B, H, W, C]` adversarial examples.
    loss_history: `[steps, B]` objective before each step.
    clamped_mass: `[B]` fraction of x's mass removed by the box clamp,
      `(sum x - sum x_adv) / sum x` (the projection conserves mass, so this
      is what clamping took; 0 when the projected image lay in the box).
      Where it is positive `x_adv` is no longer an exact transport of x
      (see Note in `wasserstein`).
  """
  x_adv: Array
  loss_history: Array
  clamped_mass: Array


class _SearchState(NamedTuple):
  """What `wasserstein_search` tracks per example, beside the loop."""
  eps: Array    # [B] radius of the next step
  found: Array  # [B] radius at which first fooled (inf: not yet)
  done: Array   # [B] fooled, frozen from then on
  i: Array      # iterates seen


class SearchResult(NamedTuple):
  """Result of `wasserstein_search`.

  Attributes:
    x_adv: `[B, H, W, C]` the first adversarial example found per example
      (x itself where the model was already wrong; the last iterate where
      never fooled).
    eps: `[B]` the radius at which each example was first fooled (0 if the
      model was wrong on x, inf if never fooled within `max_steps`).
    fooled: `[B]` bool.
    n_steps: steps run (the loop stops once every example is fooled).
  """
  x_adv: Array
  eps: Array
  fooled: Array
  n_steps: Array

  def accuracy(self, eps) -> Array:
    """Adversarial accuracy at radius eps: the fraction not fooled within it."""
    return jnp.mean(self.eps > eps)


def conjugate_step(x: Array, step, *, lam=1000., p: float = 2,
                   kernel_size: int = 5, max_iterations: int = 50,
                   tol=1e-4) -> optax.GradientTransformation:
  """The Wasserstein steepest-ascent step as an optax transformation.

  Given the (negated, optax-style) gradient at `x + delta`, returns the
  update that moves `x + delta` to the image maximising `<g, z>` among those
  reachable with transport budget `step` (per unit mass): conjugate Sinkhorn.
  """

  def update_fn(updates, state, params):
    current = x + params
    out = sinkhorn.conjugate_sinkhorn(
        jnp.maximum(current, 0.), -updates, step=step, lam=lam, p=p,
        kernel_size=kernel_size, max_iterations=max_iterations, tol=tol)
    return out.z - current, state

  return optax.GradientTransformation(lambda params: optax.EmptyState(),
                                      update_fn)


def wasserstein(model_fn: ModelFn, x: Array, y: Array, *, eps,
                key: Optional[PRNGKey] = None, steps: int = 100,
                step: str = "linf", step_size=0.1, lam=1000., p: float = 2,
                kernel_size: int = 5, sinkhorn_iterations: int = 50,
                sinkhorn_tol=1e-4, loss: Union[str, LossFn] = "ce",
                targeted: bool = False, bounds: Bounds = (0., 1.),
                unroll: Union[bool, int] = 1, return_result: bool = False):
  """PGD in the Wasserstein ball of radius eps around x (fixed eps).

  Each step: gradient of the objective at the feasible iterate, a step
  (`'linf'`: `step_size * sign(g)`, the reference's default with 0.1;
  `'l2'`: `step_size * g / |g|_2`; `'wasserstein'`: the conjugate-Sinkhorn
  steepest step with transport budget `step_size`), projection of
  `x + delta` onto `{z : W(x, z) <= eps}` by projected Sinkhorn, then the
  box.

  Args:
    model_fn: pure `[B, H, W, C] -> [B, K]` logits.
    x: `[B, H, W, C]` float images in `bounds` (nonnegative: they are mass).
    y: `[B]` int labels (targets when `targeted`).
    eps: scalar or `[B]` Wasserstein radius per unit mass (traced); MNIST
      1.0 and CIFAR-10 0.1 in Wong et al.
    key: unused (the attack is deterministic); accepted for the contract.
    steps: iterations (static).
    step: 'linf', 'l2' or 'wasserstein' (static).
    step_size: the step's length (traced).
    lam, p, kernel_size: the projection's entropy regularisation, cost
      exponent and window (see `advjax.sinkhorn.project_wasserstein`).
    sinkhorn_iterations, sinkhorn_tol: per-projection iteration bound and
      tolerance.
    loss, targeted, bounds: as `pgd`.
    unroll: `lax.scan` unroll; rolled by default (each step holds a whole
      Sinkhorn while-loop, so unrolling multiplies compile time).
    return_result: return a `WassersteinResult`.

  Returns:
    `x_adv` (or a `WassersteinResult`), x's shape and dtype, inside bounds.

  References:
    Wong, Schmidt, Kolter, "Wasserstein adversarial examples via projected
    Sinkhorn iterations", ICML 2019.

  Note:
    The final clamp to the box can leave the ball, as in the reference
    code: the projection conserves mass, and clipping pixels above `hi`
    removes mass, so the clamped image is a transport of x within eps *minus*
    that mass; `clamped_mass` (in the result) says how much, as a fraction
    of x's mass. Clipping below `lo` never acts for `lo = 0` (the projection
    is nonnegative). The projection itself is feasible by construction
    (`cost <= eps`) whatever its iteration count.
  """
  del key
  x, y, eps, _ = checks.check_attack_inputs(model_fn, x, y, eps=eps,
                                            bounds=bounds, name="wasserstein")
  if x.ndim != 4:
    raise ValueError(f"wasserstein: x must be images [B, H, W, C], got shape "
                     f"{tuple(x.shape)}.")
  if step not in ("linf", "l2", "wasserstein"):
    raise ValueError(f"wasserstein: unknown step {step!r}; use 'linf', 'l2' "
                     "or 'wasserstein'.")
  eps = jnp.asarray(eps, x.dtype)
  objective_fn = losses.attack_objective(loss, targeted)
  objective = lambda x_adv: objective_fn(model_fn(x_adv), y)
  sk = dict(lam=lam, p=p, kernel_size=kernel_size,
            max_iterations=sinkhorn_iterations, tol=sinkhorn_tol)
  if step == "wasserstein":
    optimizer = conjugate_step(x, step_size, **sk)
  else:
    optimizer = base.steepest_ascent(step, step_size)

  def project(delta, x0):
    out = sinkhorn.project_wasserstein(x0, x0 + delta, eps=eps, **sk)
    return projections.project_box(out.z - x0, x0, bounds)

  out = base.attack_loop(objective, x, jnp.zeros_like(x), steps=steps,
                         optimizer=optimizer, project=project, bounds=bounds,
                         unroll=unroll)
  x_adv = (x + out.delta).astype(x.dtype)
  if not return_result:
    return x_adv
  mass = jnp.sum(x, axis=(1, 2, 3))
  removed = (mass - jnp.sum(x_adv, axis=(1, 2, 3))) / jnp.maximum(mass, 1e-12)
  return WassersteinResult(x_adv, out.loss_history, removed)


def wasserstein_search(model_fn: ModelFn, x: Array, y: Array, *,
                       key: Optional[PRNGKey] = None, eps0=0.01, factor=1.1,
                       grow_every: int = 10, max_steps: int = 400,
                       step: str = "linf", step_size=0.1, lam=1000.,
                       p: float = 2, kernel_size: int = 5,
                       sinkhorn_iterations: int = 50, sinkhorn_tol=1e-4,
                       loss: Union[str, LossFn] = "ce", targeted: bool = False,
                       bounds: Bounds = (0., 1.)) -> SearchResult:
  """The reference protocol: the smallest Wasserstein radius that fools.

  Wasserstein PGD (as `wasserstein`) with a per-example radius that starts at
  `eps0` and is multiplied by `factor` every `grow_every` steps until the
  example is misclassified (reaches the target when `targeted`); an example
  is frozen as soon as it is fooled and its radius recorded. A bounded
  `lax.while_loop` that ends once all are fooled or after `max_steps`. The
  largest radius tried is `eps0 * factor ** (max_steps // grow_every)`.
  Defaults: MNIST in Wong et al. (factor 1.1; CIFAR-10 used 1.17).

  Args:
    model_fn, x, y, loss, targeted, bounds: as `wasserstein`.
    key: unused (deterministic); accepted for the contract.
    eps0: scalar or `[B]` starting radius (> 0, traced).
    factor: growth factor (> 1, traced).
    grow_every: steps between growths (static).
    max_steps: step bound (static).
    step, step_size, lam, p, kernel_size, sinkhorn_iterations, sinkhorn_tol:
      as `wasserstein`.

  Returns:
    A `SearchResult` (`x_adv` first): per-example radius found;
    `result.accuracy(eps)` is the adversarial accuracy at eps.

  References:
    Wong, Schmidt, Kolter, ICML 2019 (section 5 and the reference code).
  """
  del key
  x, y, eps0, _ = checks.check_attack_inputs(
      model_fn, x, y, eps=eps0, bounds=bounds, name="wasserstein_search")
  if x.ndim != 4:
    raise ValueError("wasserstein_search: x must be images [B, H, W, C], got "
                     f"shape {tuple(x.shape)}.")
  if step not in ("linf", "l2", "wasserstein"):
    raise ValueError(f"wasserstein_search: unknown step {step!r}.")
  if grow_every < 1 or max_steps < 0:
    raise ValueError("wasserstein_search: need grow_every >= 1 and "
                     "max_steps >= 0.")
  objective_fn = losses.attack_objective(loss, targeted)
  sk = dict(lam=lam, p=p, kernel_size=kernel_size,
            max_iterations=sinkhorn_iterations, tol=sinkhorn_tol)
  optimizer = (conjugate_step(x, step_size, **sk) if step == "wasserstein"
               else base.steepest_ascent(step, step_size))

  def objective(x_adv):
    logits = model_fn(x_adv)
    pred = jnp.argmax(logits, axis=-1)
    fooled = pred == y if targeted else pred != y
    return objective_fn(logits, y), fooled

  def project(delta, x0, s: _SearchState):
    out = sinkhorn.project_wasserstein(x0, x0 + delta, eps=s.eps, **sk)
    return projections.project_box(out.z - x0, x0, bounds)

  def init(delta0):
    eps = jnp.broadcast_to(jnp.asarray(eps0, x.dtype), (x.shape[0],))
    return _SearchState(eps=eps, found=jnp.full_like(eps, jnp.inf),
                        done=jnp.zeros(eps.shape, bool), i=jnp.int32(0))

  def update(s: _SearchState, delta, values, fooled) -> _SearchState:
    # Iterate i came from a step of radius s.eps (x itself, radius 0, at i=0).
    newly = fooled & ~s.done
    found = jnp.where(newly, jnp.where(s.i == 0, 0., s.eps), s.found)
    done = s.done | newly
    grow = ~done & (s.i > 0) & (s.i % grow_every == 0)
    return _SearchState(eps=jnp.where(grow, s.eps * factor, s.eps),
                        found=found, done=done, i=s.i + 1)

  out = base.attack_loop(
      objective, x, jnp.zeros_like(x), steps=max_steps, optimizer=optimizer,
      project=project, bounds=bounds, project_start=False,
      track=base.Tracker(init, update, active=lambda s: ~s.done))
  return SearchResult((x + out.delta).astype(x.dtype), out.track.found,
                      out.track.done, out.n_steps)
