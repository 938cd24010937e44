"""A model's outputs on arrays of any size, on the batched map.

`predict(apply_fn, variables, x)` is what every study needs before and
after an attack -- labels, logits or probabilities of `[N, ...]` inputs --
computed like every evaluation (fixed calls padded and masked, sharded over
every device, `map_batched`), never by slicing arrays on the host.

`probability_rows` tells outputs that look like probabilities from logits
(AutoAttack's own check); evaluations that see them warn with
`probability_warning`.
"""
import functools
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from advjax.evaluation import batching

__all__ = ["OUTPUTS", "predict", "accuracy", "ProbabilityOutputsWarning",
           "probability_rows", "probability_warning"]

OUTPUTS = ("label", "logits", "probs")


@functools.lru_cache(maxsize=128)
def _fn(apply_fn: Callable, output: str):
  def fn(variables, batch):
    logits = apply_fn(variables, batch["x"]).astype(jnp.float32)
    if output == "label":
      return jnp.argmax(logits, -1).astype(jnp.int32)
    return logits if output == "logits" else jax.nn.softmax(logits, -1)
  return fn


def predict(apply_fn: Callable, variables, x, *, output: str = "label",
            **map_kwargs) -> np.ndarray:
  """The model's output on every input of `x`.

  Args:
    apply_fn: `(variables, x [B, ...]) -> logits [B, K]`.
    variables: the model's variables.
    x: `[N, ...]` inputs (host arrays or `data.Records`).
    output: 'label' (`[N]` int32 argmax), 'logits' or 'probs' (`[N, K]`
      float32, softmax).
    **map_kwargs: `map_batched`'s batch_size, mesh, device_batch_size,
      progress, desc.

  Raises:
    ValueError: an unknown output.
  """
  if output not in OUTPUTS:
    raise ValueError(f"predict: output must be one of {OUTPUTS}, got "
                     f"{output!r}.")
  return batching.map_batched(_fn(apply_fn, output), {"x": x}, variables,
                              **map_kwargs)


def accuracy(apply_fn: Callable, variables, x, y, **map_kwargs) -> float:
  """The fraction of `x` classified as `y` (`predict`)."""
  return float(np.mean(predict(apply_fn, variables, x, **map_kwargs)
                       == np.asarray(y)))


class ProbabilityOutputsWarning(UserWarning):
  """A model's outputs look like probabilities, not logits."""


def probability_rows(outputs, atol: float = 1e-3):
  """`[B]` bool: the rows of `outputs [B, K]` that look like probabilities,
  every entry >= -atol and the row summing to 1 within `atol`: the test of
  AutoAttack's `check_range_output` (fra31/auto-attack `checks.py`, with
  1e-5 there; 1e-3 also catches a softmax computed in bfloat16). Works on
  NumPy arrays and inside jit."""
  o = jnp.asarray(outputs, jnp.float32)
  return jnp.all(o >= -atol, axis=-1) & (jnp.abs(jnp.sum(o, -1) - 1) <= atol)


def probability_warning(rows, name: str) -> Optional[str]:
  """The message for `warnings.warn(..., ProbabilityOutputsWarning)` when
  every row of a batch looks like probabilities (`rows`: `probability_rows`
  of its outputs), else None."""
  rows = np.asarray(rows)
  if not rows.size or not rows.all():
    return None
  return (f"{name}: the model's outputs look like probabilities (every row "
          f"of the first batch of {rows.size} is nonnegative and sums to 1), "
          "not logits. Gradients through a softmax saturate, so gradient "
          "attacks stall and robust accuracy is overstated; pass the model's "
          "logits (remove the final softmax).")
