"""Destruction rate of adversarial examples under a transform.

Kurakin, Goodfellow, Bengio (2017), "Adversarial examples in the physical
world", eq. (1): the fraction of adversarial images that are no longer
misclassified after a transform T, among the images whose clean version was
classified correctly and whose adversarial version was not:

    d = sum_k C(X_k, y_k) (1 - C(X_k^adv, y_k)) C(T(X_k^adv), y_k)
        / sum_k C(X_k, y_k) (1 - C(X_k^adv, y_k))

with `C(X, y) = 1` when X is classified as y.
"""
from typing import Callable, Dict, Optional

import numpy as np

from advjax.analysis.transfer import misclassified
from advjax.types import Array, ModelFn

__all__ = ["destruction_rate", "destruction_rates"]


def destruction_rate(clean_correct, adv_correct, transformed_correct):
  """Kurakin et al.'s destruction rate from per-example correctness.

  Args:
    clean_correct: `[N]` bool, C(X_k, y_k).
    adv_correct: `[N]` bool, C(X_k^adv, y_k).
    transformed_correct: `[N]` bool, C(T(X_k^adv), y_k).

  Returns:
    The rate as a float, NaN when no example was correctly classified and
    then fooled (the rate is undefined: report it, do not guess).
  """
  c = np.asarray(clean_correct, bool)
  a = np.asarray(adv_correct, bool)
  t = np.asarray(transformed_correct, bool)
  if not c.shape == a.shape == t.shape or c.ndim != 1:
    raise ValueError(f"destruction_rate: the three arrays must be [N] of one "
                     f"length, got {c.shape}, {a.shape}, {t.shape}.")
  fooled = c & ~a
  n = int(fooled.sum())
  return float((fooled & t).sum() / n) if n else float("nan")


def destruction_rates(model_fn: ModelFn, x: Array, x_adv: Array, y: Array,
                      transforms: Dict[str, Callable[[Array], Array]],
                      clean_correct: Optional[Array] = None
                      ) -> Dict[str, float]:
  """The destruction rate of `x_adv` under each of `transforms`.

  Args:
    model_fn: pure `[B, ...] -> [B, K]` logits (jit it for speed).
    x, x_adv: `[N, ...]` clean and adversarial images.
    y: `[N]` labels.
    transforms: name -> `images -> images` (e.g. `functools.partial(
      advjax.transforms.brightness, delta=0.1)`).
    clean_correct: `[N]` bool, when already known.

  Returns:
    name -> rate (NaN when nothing was fooled).
  """
  c = (~misclassified(model_fn, x, y) if clean_correct is None
       else clean_correct)
  a = ~misclassified(model_fn, x_adv, y)
  return {name: destruction_rate(c, a, ~misclassified(model_fn, t(x_adv), y))
          for name, t in transforms.items()}
