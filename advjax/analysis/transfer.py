"""Which perturbation fools which input, and which model.

- `perturbation_transfer`: each input's own perturbation added to every
  other input (Metzen 2018: *sharedness*, the fraction of other inputs a
  perturbation fools, Appendix C; the *cost change* on its own input and on
  the others, Figure 2). Shared perturbations fool many inputs (a universal
  perturbation is the extreme); singular ones fool only their own.
- `fooled_across`: adversarial examples made against one model, judged by
  others: the transfer matrix between models, or across the epochs of a
  training run.
- `temporal_profile`: that matrix across epochs per test input, summarised
  as the profile P[t1, t2] and the MaxMin / MinMax fractions (Figure 1).
"""
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from advjax import losses
from advjax.types import Array, Bounds, ModelFn

__all__ = ["TransferResult", "perturbation_transfer", "sharedness",
           "cost_change_own_vs_others", "misclassified", "fooled_across", "StabilityProfile",
           "temporal_profile"]


class TransferResult(NamedTuple):
  """Perturbation i (row) on input j (column).

  Attributes:
    fooled: `[P, N]` bool, `clip(x_j + delta_i)` is misclassified.
    cost_change: `[P, N]` `J(x_j + delta_i, y_j) - J(x_j, y_j)`
      (cross-entropy).
  """
  fooled: Array
  cost_change: Array


def perturbation_transfer(model_fn: ModelFn, x: Array, y: Array, delta: Array,
                          *, bounds: Bounds = (0., 1.)) -> TransferResult:
  """Adds every perturbation to every input.

  Pure and jittable; memory is one `[N, ...]` batch at a time
  (`lax.map` over the perturbations).

  Args:
    model_fn: pure `[B, ...] -> [B, K]` logits.
    x: `[N, ...]` inputs; y: `[N]` labels.
    delta: `[P, ...]` perturbations; `delta[i]` was made for `x[i]` when
      the own-input diagonal is to mean anything (`P <= N`).
    bounds: each perturbed image is clipped into the box.

  Returns:
    `TransferResult` with `[P, N]` arrays.
  """
  if delta.shape[1:] != x.shape[1:]:
    raise ValueError(f"perturbation_transfer: perturbations {delta.shape} do "
                     f"not match the inputs {x.shape}.")
  base_cost = losses.cross_entropy(model_fn(x), y)

  def one(d):
    logits = model_fn(jnp.clip(x + d[None], *bounds))
    return (jnp.argmax(logits, -1) != y,
            losses.cross_entropy(logits, y) - base_cost)

  fooled, cost = jax.lax.map(one, delta)
  return TransferResult(fooled, cost)


def sharedness(fooled: Array, clean_correct: Array) -> np.ndarray:
  """Per perturbation i: the fraction of the *other* correctly classified
  inputs j != i that `delta_i` fools (`fooled` from `perturbation_transfer`,
  `[P, N]`)."""
  f = np.asarray(fooled, bool)
  c = np.asarray(clean_correct, bool)
  p, n = f.shape
  others = np.ones((p, n), bool)
  others[np.arange(p), np.arange(p)] = False
  mask = others & c[None, :]
  return (f & mask).sum(1) / np.maximum(mask.sum(1), 1)


def cost_change_own_vs_others(cost_change: Array):
  """`(own [P], others [P])`: the cost change on the perturbation's own
  input (the diagonal) and its mean over the other inputs (Figure 2's
  axes)."""
  c = np.asarray(cost_change)
  p, n = c.shape
  own = c[np.arange(p), np.arange(p)]
  others = (c.sum(1) - own) / max(n - 1, 1)
  return own, others


def misclassified(model_fn: ModelFn, x: Array, y: Array) -> np.ndarray:
  """`[N]` bool on the host: `model_fn(x)`'s prediction is not `y`."""
  return np.asarray(jnp.argmax(model_fn(x), -1) != jnp.asarray(y))


def fooled_across(model_fns: Sequence[ModelFn], x_advs: Sequence[Array],
                  y: Array) -> np.ndarray:
  """`[S, T, N]` bool: the adversarial examples `x_advs[s]` (made against
  source s) misclassified by target model `model_fns[t]`. Jit the model
  functions; this loops over sources and targets on the host."""
  return np.stack([np.stack([misclassified(f, xa, y) for f in model_fns])
                   for xa in x_advs])


class StabilityProfile(NamedTuple):
  """Temporal stability of per-input perturbations across epochs.

  With `F_i[t1, t2]` = the perturbation made for test input i against the
  model of epoch t1 fools the model of epoch t2:

  Attributes:
    profile: `[T, T]` mean over inputs of `F[t1, t2]`.
    max_min: fraction of inputs with `max_t1 min_{t2 >= t1} F_i[t1, t2]`:
      some epoch's perturbation keeps fooling every later model (a stable
      vulnerability).
    min_max: fraction with `min_t2 max_t1 F_i[t1, t2]`: every epoch's model
      is fooled by some epoch's perturbation (never robust on this input).
    max_min_from: `[T]` the fraction, per t1, whose t1-perturbation fools
      every model from t1 on.
  """
  profile: np.ndarray
  max_min: float
  min_max: float
  max_min_from: np.ndarray


def temporal_profile(fooled: Array) -> StabilityProfile:
  """Summarises `fooled [T, T, N]` (`fooled_across` of the epochs' models
  and their own adversarial examples) as a `StabilityProfile`."""
  f = np.asarray(fooled, bool)
  if f.ndim != 3 or f.shape[0] != f.shape[1]:
    raise ValueError(f"temporal_profile: fooled must be [T, T, N], got "
                     f"{f.shape}.")
  t = f.shape[0]
  later = np.triu(np.ones((t, t), bool))  # t2 >= t1
  stable_from = np.all(f | ~later[:, :, None], axis=1)  # [T, N]
  return StabilityProfile(
      profile=f.mean(-1),
      max_min=float(stable_from.any(0).mean()),
      min_max=float(f.any(0).all(0).mean()),
      max_min_from=stable_from.mean(-1))
