"""Error and confidence of a model on clean or attacked inputs.

Goodfellow et al. report two numbers per model and attack: the error
rate and the mean confidence (top softmax probability) on the examples it
gets wrong -- a model fooled with high confidence is confidently wrong.
`error_confidence` computes both per example on the batched map (fixed
calls padded and masked, sharded, per-example keys `fold_in(key,
index)`), attacking each input first when an attack is given -- against
the model itself, or against another `source` model of the same
architecture (transfer) -- and can keep the attacked inputs.
"""
import functools
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from advjax.attacks import base
from advjax.evaluation import batching
from advjax.types import PRNGKey

__all__ = ["ErrorConfidence", "error_confidence"]


class ErrorConfidence(NamedTuple):
  """A model's outcome per example.

  Attributes:
    correct: `[N]` bool, the top class is the label.
    confidence: `[N]` float, the top softmax probability.
    inputs: `[N, ...]` the inputs judged (the attacked ones) when kept,
      else None.
  """
  correct: np.ndarray
  confidence: np.ndarray
  inputs: Optional[np.ndarray] = None

  @classmethod
  def of(cls, probs, y, inputs=None) -> "ErrorConfidence":
    """From probabilities `[N, K]` and labels `[N]` (host arrays)."""
    probs = np.asarray(probs)
    return cls(probs.argmax(-1) == np.asarray(y), probs.max(-1), inputs)

  @property
  def error(self) -> float:
    """The fraction misclassified."""
    return float(np.mean(~np.asarray(self.correct)))

  @property
  def confidence_on_errors(self) -> float:
    """The mean confidence on the misclassified (NaN when none is)."""
    wrong = ~np.asarray(self.correct)
    return (float(np.mean(np.asarray(self.confidence)[wrong])) if wrong.any()
            else float("nan"))

  def summary(self) -> dict:
    """`{'error', 'confidence'}` (confidence on the misclassified)."""
    return {"error": self.error, "confidence": self.confidence_on_errors}


@functools.lru_cache(maxsize=64)
def _fn(apply_fn: Callable, attack: Optional[Callable], keep_inputs: bool):
  def fn(consts, batch):
    variables, source, eps = consts
    model_fn = lambda z: apply_fn(variables, z)
    x = batch["x"]
    if attack is not None:
      x = base.call_attack(attack, lambda z: apply_fn(source, z), x,
                           batch["y"], eps=eps, key=batch["key"])
    probs = jax.nn.softmax(model_fn(x).astype(jnp.float32), -1)
    out = {"correct": jnp.argmax(probs, -1) == batch["y"],
           "confidence": jnp.max(probs, -1)}
    if keep_inputs:
      out["inputs"] = x
    return out
  return fn


def error_confidence(apply_fn: Callable, variables, x, y, *,
                     attack: Optional[Callable] = None, eps: Any = 0.,
                     key: Optional[PRNGKey] = None, source: Any = None,
                     keep_inputs: bool = False,
                     **map_kwargs) -> ErrorConfidence:
  """Per example: is the model right, and how confident, on `x` (attacked
  first when `attack` is given).

  Args:
    apply_fn: `(variables, x [B, ...]) -> logits [B, K]`, inference mode.
    variables: the model's variables.
    x: `[N, ...]` inputs; y: `[N]` int labels.
    attack: None (the inputs as they are) or `attack(model_fn, x, y, *,
      eps, [key]) -> x_adv` with its other settings bound; keep one object
      across calls (the program is compiled per attack).
    eps: the attack's budget (traced).
    key: `jax.random.key` for a randomised attack (each example's key is
      `fold_in(key, index)`); default `key(0)`.
    source: the variables of the model the attack is made against (same
      `apply_fn`): its adversarial examples judged by this one, i.e.
      transfer; default: this model's.
    keep_inputs: also return the inputs judged (`ErrorConfidence.inputs`).
    **map_kwargs: `map_batched`'s batch_size, mesh, device_batch_size,
      progress, desc.

  Returns:
    `ErrorConfidence` of host arrays.
  """
  key = jax.random.key(0) if key is None else key
  out = batching.map_batched(
      _fn(apply_fn, attack, bool(keep_inputs)),
      {"x": x, "y": np.asarray(y, np.int32)},
      (variables, variables if source is None else source,
       jnp.float32(eps)), key=key, **map_kwargs)
  return ErrorConfidence(out["correct"], out["confidence"],
                         out.get("inputs"))
