"""A model's outputs on arrays of any size, on the batched map.

`predict(apply_fn, variables, x)` is what every study needs before and
after an attack -- labels, logits or probabilities of `[N, ...]` inputs --
computed like every evaluation (fixed calls padded and masked, sharded over
every device, `map_batched`), never by slicing arrays on the host.
"""
import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from advjax.evaluation import batching

__all__ = ["OUTPUTS", "predict", "accuracy"]

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
