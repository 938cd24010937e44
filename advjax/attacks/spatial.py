"""Rotation + translation attacks (Engstrom, Tran, Tsipras, Schmidt, Madry
2017/2019, "Exploring the landscape of spatial robustness").

Threat model: per example an angle in `[-max_angle, max_angle]` degrees and
shifts in `[-max_shift, max_shift]` pixels, applied by
`advjax.transforms.rotate_translate` (bilinear, zero fill, about the
centre). Every attack keeps, per example, a transform that misclassifies
with the highest loss among those that do, else the highest-loss one
(DESIGN.md section 4):

- `spatial_grid`: every point of an angle x shift x shift grid (31 x 5 x 5
  by default), scanned so memory stays one batch;
- `spatial_worst_of_k`: k transforms drawn uniformly per example (10);
- `spatial_random`: one uniform draw per example;
- `spatial_pgd`: first-order ascent on (angle, tx, ty) with sign steps,
  projected onto the ranges, from a uniform random start (the PGD loop,
  `base.attack_loop`, on transform parameters).

With `return_result=True` they return a `SpatialResult` (x_adv, the
transform kept per example, its loss and whether it misclassifies).
"""
from typing import NamedTuple, Optional, Union

import jax
import jax.numpy as jnp
import optax
from jax import lax

from advjax import checks, losses, rng
from advjax.attacks import base
from advjax.transforms import rotate_translate
from advjax.types import Array, LossFn, ModelFn, PRNGKey

__all__ = ["SpatialResult", "spatial_grid", "spatial_worst_of_k",
           "spatial_random", "spatial_pgd", "transform_grid"]


class SpatialResult(NamedTuple):
  """Per example: the transformed image kept, its transform and outcome."""
  x_adv: Array
  angle: Array
  tx: Array
  ty: Array
  loss: Array
  fooled: Array


def _check(model_fn, x, y, name, max_angle, max_shift):
  """The spatial attacks' input checks; returns the checked `(x, y)`."""
  x, y, _, _ = checks.check_attack_inputs(model_fn, x, y, name=name)
  if x.ndim != 4:
    raise ValueError(f"{name}: images must be [B, H, W, C], got shape "
                     f"{x.shape}.")
  checks.check_nonnegative(name, max_angle=max_angle, max_shift=max_shift)
  return x, y


def _evaluate(model_fn, x, y, loss_fn, angle, tx, ty):
  x_t = rotate_translate(x, angle, tx, ty)
  logits = model_fn(x_t)
  return x_t, loss_fn(logits, y), jnp.argmax(logits, -1) != y


def _better(loss, fooled, best_loss, best_fooled):
  """The selection rule: fooling beats not fooling; then the higher loss."""
  return (fooled & ~best_fooled) | ((fooled == best_fooled)
                                    & (loss > best_loss))


def _start(x):
  """The 'nothing kept yet' result: x, zero transform, loss -inf."""
  b = x.shape[0]
  zeros = jnp.zeros((b,), jnp.float32)
  return SpatialResult(x, zeros, zeros, zeros,
                       jnp.full((b,), -jnp.inf, jnp.float32),
                       jnp.zeros((b,), bool))


def _keep_better(best, p, x_t, loss, fooled):
  """`best` with, per example, the candidate `(p, x_t, loss, fooled)` in
  its place where the selection rule prefers it."""
  take = _better(loss, fooled, best.loss, best.fooled)
  keep = lambda new, old: jnp.where(
      take.reshape((-1,) + (1,) * (jnp.ndim(new) - 1)), new, old)
  return SpatialResult(keep(x_t, best.x_adv), keep(p[0], best.angle),
                       keep(p[1], best.tx), keep(p[2], best.ty),
                       keep(loss, best.loss), keep(fooled, best.fooled))


def _select(model_fn, x, y, loss_fn, params):
  """Scans candidate transforms `params = (angle, tx, ty)`, each `[T, B]`;
  keeps the best per example."""
  def body(best, p):
    return _keep_better(best, p, *_evaluate(model_fn, x, y, loss_fn, *p)), None

  best, _ = lax.scan(body, _start(x), params)
  return best


def transform_grid(max_angle=30., max_shift=3., angles: int = 31,
                   shifts: int = 5):
  """`(angle, tx, ty)`, each `[angles * shifts * shifts]`: the grid."""
  a = jnp.linspace(-max_angle, max_angle, angles)
  s = jnp.linspace(-max_shift, max_shift, shifts)
  ga, gx, gy = jnp.meshgrid(a, s, s, indexing="ij")
  return ga.reshape(-1), gx.reshape(-1), gy.reshape(-1)


def _finish(best, return_result):
  return best if return_result else best.x_adv


def spatial_grid(model_fn: ModelFn, x: Array, y: Array, *,
                 key: Optional[PRNGKey] = None, max_angle=30., max_shift=3.,
                 angles: int = 31, shifts: int = 5,
                 loss: Union[str, LossFn] = "ce",
                 return_result: bool = False):
  """Exhaustive search over `angles x shifts x shifts` transforms.

  Args:
    model_fn: pure `[B, H, W, C] -> [B, K]` logits.
    x: `[B, H, W, C]` float images; y: `[B]` int labels.
    key: unused (deterministic); accepted for the contract.
    max_angle, max_shift: the ranges (degrees, pixels; traced).
    angles, shifts: grid points per axis (static; 31 and 5 in Engstrom et
      al.: 775 transforms, the identity among them when both are odd).
    loss: a name of `advjax.losses` or `(logits, y) -> [B]`.
    return_result: return a `SpatialResult`.

  Returns:
    `x_adv` `[B, H, W, C]` (or a `SpatialResult`).
  """
  del key
  x, y = _check(model_fn, x, y, "spatial_grid", max_angle, max_shift)
  if angles < 1 or shifts < 1:
    raise ValueError(f"spatial_grid: angles and shifts must be >= 1, got "
                     f"{angles}, {shifts}.")
  grid = transform_grid(max_angle, max_shift, angles, shifts)
  params = tuple(jnp.broadcast_to(g[:, None], (g.shape[0], x.shape[0]))
                 for g in grid)
  return _finish(_select(model_fn, x, y, losses.get_loss(loss), params),
                 return_result)


def _uniform(key, k, b, max_angle, max_shift):
  """`k` uniform transforms per example, each `[k, B]`; `key` is one key or
  `[B]` per-example keys."""
  key = rng.check_key(key, b, "spatial")

  def draw(kk, shape):
    ka, kx, ky = jax.random.split(kk, 3)
    u = lambda k2, m: jax.random.uniform(k2, shape, jnp.float32, -m, m)
    return u(ka, max_angle), u(kx, max_shift), u(ky, max_shift)

  if key.ndim == 0:
    return draw(key, (k, b))
  return tuple(v.T for v in jax.vmap(lambda kk: draw(kk, (k,)))(key))


def spatial_worst_of_k(model_fn: ModelFn, x: Array, y: Array, *,
                       key: PRNGKey, k: int = 10, max_angle=30.,
                       max_shift=3., loss: Union[str, LossFn] = "ce",
                       return_result: bool = False):
  """The worst of `k` uniformly drawn transforms per example (the
  selection rule of the module docstring). Args as `spatial_grid`; `key`
  draws the transforms, `k` is static."""
  x, y = _check(model_fn, x, y, "spatial_worst_of_k", max_angle, max_shift)
  if k < 1:
    raise ValueError(f"spatial_worst_of_k: k must be >= 1, got {k}.")
  params = _uniform(key, k, x.shape[0], max_angle, max_shift)
  return _finish(_select(model_fn, x, y, losses.get_loss(loss), params),
                 return_result)


def spatial_random(model_fn: ModelFn, x: Array, y: Array, *, key: PRNGKey,
                   max_angle=30., max_shift=3.,
                   loss: Union[str, LossFn] = "ce",
                   return_result: bool = False):
  """One uniformly drawn transform per example (the random baseline)."""
  return spatial_worst_of_k(model_fn, x, y, key=key, k=1,
                            max_angle=max_angle, max_shift=max_shift,
                            loss=loss, return_result=return_result)


def spatial_pgd(model_fn: ModelFn, x: Array, y: Array, *, key: PRNGKey,
                steps: int = 200, max_angle=30., max_shift=3.,
                step_angle=None, step_shift=None,
                loss: Union[str, LossFn] = "ce",
                return_result: bool = False):
  """First-order attack on (angle, tx, ty): projected sign ascent.

  From a uniform random transform, `steps` steps of
  `p <- clip(p + step * sign(d loss / d p))` per parameter (default steps:
  a tenth of each range); the best iterate by the selection rule is
  kept. The loss is differentiable in the parameters through the
  bilinear warp (not at integer sample positions, where it has kinks).

  Args:
    model_fn, x, y, max_angle, max_shift, loss, return_result: as
      `spatial_grid`.
    key: the random start.
    steps: ascent steps (static).
    step_angle, step_shift: step sizes (traced).
  """
  x, y = _check(model_fn, x, y, "spatial_pgd", max_angle, max_shift)
  if steps < 0:
    raise ValueError(f"spatial_pgd: steps must be >= 0, got {steps}.")
  loss_fn = losses.get_loss(loss)
  step_angle = max_angle / 10. if step_angle is None else step_angle
  step_shift = max_shift / 10. if step_shift is None else step_shift
  sizes = (step_angle, step_shift, step_shift)
  limits = (max_angle, max_shift, max_shift)
  p0 = tuple(v[0] for v in _uniform(key, 1, x.shape[0], max_angle, max_shift))

  def objective(x_t):
    logits = model_fn(x_t)
    return loss_fn(logits, y), (x_t, jnp.argmax(logits, -1) != y)

  def keep_better(best, p, loss_v, aux):
    x_t, fooled = aux
    return _keep_better(best, p, x_t, loss_v, fooled)

  def project(p, *_):  # onto the ranges
    return tuple(jnp.clip(v, -m, m) for v, m in zip(p, limits))

  # Per parameter: its step size times the sign of its gradient.
  optimizer = optax.chain(base.normalized_steepest("linf"), optax.stateless(
      lambda u, _: tuple(-s * v for v, s in zip(u, sizes))))
  # Rolled: unrolling the warp's gradient multiplies compile time.
  out = base.attack_loop(
      objective, x, p0, steps=steps, optimizer=optimizer, project=project,
      bounds=None, apply=lambda x0, p: rotate_translate(x0, *p),
      track=base.Tracker(lambda p: _start(x), keep_better), unroll=1)
  return _finish(out.track, return_result)
