"""Universal perturbations: one perturbation for a whole dataset.

`universal` is the basic iterative universal perturbation of Metzen, Kumar,
Brox and Fischer (2017), used by Metzen's universality study: starting from
`xi = 0`, each of `iterations` updates draws `batches_per_update` (K)
minibatches of `batch_size` (m) examples, takes the loss gradient of each,
`g_k = grad_xi sum_j J(f(clip(x_j + xi)), y_j)`, and moves `xi` by the mean
of their signs, then projects it onto the eps ball (Metzen 2018, Appendix
D):

    xi <- Clip_eps(xi + alpha / K * sum_k sgn(g_k)).

(`aggregate='directions'`, the default: each minibatch's steepest unit
direction, `sgn` for Linf, is averaged; with `aggregate='gradients'` the K
gradients are summed first and one step taken on the sum, `alpha sgn(sum_k
g_k)`, the update before this correction.) `xi` has one example's shape
and is added to every input (clipped into the box per image).

It is the PGD loop of `advjax.attacks.base` with other pieces: the same
optax step (`base.make_optimizer`, so Adam or SGD drop in), the same
projection (`projections.project_ball`) and the same per-example
objective (`losses.attack_objective`); only the variable is shared by all
examples (`apply`), the objective's minibatch changes at every loop step
(`inputs`), and `optax.MultiSteps` turns K loop steps into one update (the
mean of the K minibatches' unit directions, or their summed gradient).

References:
  Metzen, Kumar, Brox, Fischer, "Universal adversarial perturbations against
  semantic image segmentation", ICCV 2017.
  Metzen, "Universality, robustness, and detectability of adversarial
  perturbations under adversarial training", 2018.
  Moosavi-Dezfooli, Fawzi, Fawzi, Frossard, "Universal adversarial
  perturbations", CVPR 2017 (the DeepFool-based original).
"""
from typing import NamedTuple, Union

import jax
import jax.numpy as jnp
import optax

from advjax import checks, losses, projections
from advjax.attacks import base
from advjax.types import Array, Bounds, LossFn, ModelFn, PRNGKey

__all__ = ["UniversalResult", "universal", "apply_universal"]


class UniversalResult(NamedTuple):
  """Output of `universal(..., return_result=True)`.

  Attributes:
    perturbation: `[H, W, C]` (one example's shape): the universal xi.
    loss_history: `[iterations]` mean objective over each update's
      `K * m` examples, before the update.
  """
  perturbation: Array
  loss_history: Array


def apply_universal(x: Array, perturbation: Array,
                    bounds: Bounds = (0., 1.)) -> Array:
  """`clip(x + perturbation)` for every example of the batch `x`."""
  return jnp.clip(x + perturbation[None].astype(x.dtype), *bounds)


def universal(model_fn: ModelFn, x: Array, y: Array, *, key: PRNGKey, eps,
              step_size=None, iterations: int = 200, batch_size: int = 128,
              batches_per_update: int = 10, norm: str = "linf",
              optimizer: Union[None, str, optax.GradientTransformation] = None,
              loss: Union[str, LossFn] = "ce", targeted: bool = False,
              aggregate: str = "directions", bounds: Bounds = (0., 1.),
              return_result: bool = False):
  """A universal perturbation of the data `(x, y)` (basic iterative method).

  Args:
    model_fn: pure `[B, ...] -> [B, K]` logits.
    x: `[N, ...]` the data the perturbation is fitted on (the training set,
      or a subset), inside `bounds`.
    y: `[N]` int labels (the true labels in Metzen's study, Appendix D;
      the target labels when `targeted`).
    key: draws the minibatches (without replacement within each).
    eps: scalar radius of `xi` in `norm`, >= 0 (traced). Metzen: 10/255.
    step_size: step of the default sign step; default `eps / 4` (Metzen:
      2.5/255 at eps 10/255). Ignored when `optimizer` is an optax
      transformation.
    iterations: updates of `xi` (static; Metzen: 200).
    batch_size: m, examples per minibatch (static; 128), at most N.
    batches_per_update: K, minibatches combined into one update (static;
      10).
    norm: 'linf', 'l2' or 'l1' (static).
    optimizer: None/'steepest', 'adam', 'sgd' or any optax transformation
      (see `base.make_optimizer`). With `aggregate='directions'` it is
      given the mean of the K unit directions (None/'steepest': scaled by
      `step_size`, not normalised again); with 'gradients', the sum of the
      K gradients.
    loss: 'ce', 'cw', 'dlr' or `(logits, labels) -> [B]`.
    targeted: decrease the loss towards `y` instead (e.g. a detector's
      'adversarial' class: the perturbation that most activates it).
    aggregate: 'directions' (static; Metzen's `alpha / K sum_k sgn(g_k)`)
      or 'gradients' (`alpha sgn(sum_k g_k)`).
    bounds: the box each perturbed image is clipped into.
    return_result: return a `UniversalResult`.

  Returns:
    The perturbation `[H, W, C]` (x's per-example shape and dtype, within
    `eps` in `norm`): one array for the whole dataset, applied with
    `apply_universal(x, xi)`. Or a `UniversalResult`.

  Raises:
    ValueError: eps not a scalar or negative, an unknown norm or
      `aggregate`, `batch_size` outside `[1, N]`, `iterations < 0` or
      `batches_per_update < 1`.
  """
  projections.check_norm(norm)
  if aggregate not in ("directions", "gradients"):
    raise ValueError(f"universal: aggregate must be 'directions' or "
                     f"'gradients', got {aggregate!r}.")
  if jnp.ndim(eps) != 0:
    raise ValueError(f"universal: eps must be a scalar (one perturbation for "
                     f"all examples), got shape {jnp.shape(eps)}.")
  x, y, eps, _ = checks.check_attack_inputs(model_fn, x, y, eps=eps,
                                            bounds=bounds, name="universal")
  n = x.shape[0]
  if iterations < 0 or batches_per_update < 1 or not 1 <= batch_size <= n:
    raise ValueError(
        f"universal: need iterations >= 0, batches_per_update >= 1 and "
        f"1 <= batch_size <= N = {n}; got iterations={iterations}, "
        f"batches_per_update={batches_per_update}, batch_size={batch_size}.")
  eps = jnp.asarray(eps, x.dtype)
  if step_size is None:
    step_size = eps / 4.
  # One update combines K minibatch steps (optax.MultiSteps), so memory
  # holds one minibatch.
  if aggregate == "directions":
    inner = (base.scale_per_example(-jnp.asarray(step_size))
             if optimizer is None or optimizer == "steepest"
             else base.make_optimizer(optimizer, norm, step_size))
    optimizer = optax.chain(
        base.normalized_steepest(norm),
        optax.MultiSteps(inner, batches_per_update, use_grad_mean=True,
                         accumulator_dtype=x.dtype).gradient_transformation())
  else:
    optimizer = optax.MultiSteps(
        base.make_optimizer(optimizer, norm, step_size), batches_per_update,
        use_grad_mean=False,
        accumulator_dtype=x.dtype).gradient_transformation()
  objective_fn = losses.attack_objective(loss, targeted)
  keys = jax.vmap(lambda k: jax.random.split(k, batches_per_update))(
      jax.random.split(key, iterations)).reshape(-1)
  idx = jax.lax.map(
      lambda k: jax.random.choice(k, n, (batch_size,), replace=False), keys)

  def apply(data, xi, i):
    return apply_universal(jnp.take(data, i, axis=0), xi[0], bounds)

  def objective(x_adv, i):
    return objective_fn(model_fn(x_adv), jnp.take(y, i))

  # xi carries a batch axis of one so the per-example steps and projections
  # of the PGD loop apply unchanged. Rolled: K * iterations steps.
  out = base.attack_loop(
      objective, x, jnp.zeros((1,) + x.shape[1:], x.dtype),
      steps=iterations * batches_per_update, optimizer=optimizer,
      project=lambda xi, _: projections.project_ball(xi, eps, norm),
      bounds=None, apply=apply, inputs=idx, unroll=1)
  xi = out.delta[0].astype(x.dtype)
  if return_result:
    history = out.loss_history.reshape(
        iterations, batches_per_update * batch_size)
    return UniversalResult(xi, jnp.mean(history, axis=1))
  return xi
