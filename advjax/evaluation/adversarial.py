"""Adversarial examples of every input of a dataset, on the batched map.

`adversarial_examples(apply_fn, variables, x, y, attack=..., eps=...)` is
what a study needs when it keeps the adversarial images themselves (to
transform them, photograph them, show them): the attack run like every
evaluation (fixed calls padded and masked, sharded, `map_batched`), each
example's randomness from `fold_in(key, global_index)`, so an example's
adversarial image does not depend on the batch size.
"""
import functools
from typing import Callable, Optional

import jax
import numpy as np

from advjax.attacks import base
from advjax.evaluation import batching
from advjax.types import PRNGKey

__all__ = ["adversarial_examples"]


@functools.lru_cache(maxsize=64)
def _fn(apply_fn: Callable, attack: Callable):
  def fn(consts, batch):
    variables, eps = consts
    model_fn = lambda z: apply_fn(variables, z)
    if eps is None:  # a minimal-norm attack: no budget
      kw = {"key": batch["key"]} if base.takes_key(attack) else {}
      return attack(model_fn, batch["x"], batch["y"], **kw)
    return base.call_attack(attack, model_fn, batch["x"], batch["y"],
                            eps=eps, key=batch["key"])
  return fn


def adversarial_examples(apply_fn: Callable, variables, x, y, *,
                         attack: Callable, eps=None,
                         key: Optional[PRNGKey] = None,
                         **map_kwargs) -> np.ndarray:
  """`attack`'s adversarial image of every input of `x`.

  Args:
    apply_fn: `(variables, x [B, ...]) -> logits [B, K]`.
    variables: the model's variables.
    x: `[N, ...]` inputs; y: `[N]` labels (the targets of a targeted
      attack).
    attack: `attack(model_fn, x, y, *, eps, [key])` with its other
      hyperparameters fixed (`functools.partial`); it gets `[B]`
      per-example keys when it takes a key. It must return the
      adversarial images (not a result tuple).
    eps: the budget (traced: a new eps does not recompile); None for a
      minimal-norm attack that takes none (`lbfgs`, `carlini_wagner_l2`:
      called as `attack(model_fn, x, y, [key])`).
    key: `jax.random.key` (default `key(0)`), folded with each example's
      global index.
    **map_kwargs: `map_batched`'s batch_size, mesh, device_batch_size,
      progress, desc.

  Returns:
    `[N, ...]` adversarial inputs (numpy), in x's order.
  """
  key = jax.random.key(0) if key is None else key
  return batching.map_batched(
      _fn(apply_fn, attack), {"x": x, "y": np.asarray(y, np.int32)},
      (variables, None if eps is None else np.float32(eps)), key=key,
      **map_kwargs)
