"""Numbers read off accuracy curves.

`eps_at_accuracy(eps, accuracy)`: the smallest budget of a sweep at which
a model's accuracy has fallen to a level (50 % by default) -- how large a
perturbation it takes to fool the model, from a `RobustAccuracy` sweep
(the robust-feature toy of Ilyas et al.'s discussion: a robust linear
classifier needs a far larger eps than a network that memorises noise).
"""
from typing import Sequence

import numpy as np

__all__ = ["eps_at_accuracy"]


def eps_at_accuracy(eps: Sequence[float], accuracy: Sequence[float],
                    level: float = 0.5) -> float:
  """The first eps of the sweep at which the accuracy is at most `level`.

  Args:
    eps: `[E]` the budgets, ascending.
    accuracy: `[E]` the accuracy at each (a fraction).
    level: the accuracy to reach (inclusive).

  Returns:
    That eps, or inf when the accuracy stays above `level` on the whole
    sweep.

  Raises:
    ValueError: eps and accuracy of different lengths, or eps not
      ascending.
  """
  eps, accuracy = np.asarray(eps, float), np.asarray(accuracy, float)
  if eps.shape != accuracy.shape or eps.ndim != 1:
    raise ValueError(f"eps_at_accuracy: eps {eps.shape} and accuracy "
                     f"{accuracy.shape} must be [E] each.")
  if np.any(np.diff(eps) < 0):
    raise ValueError("eps_at_accuracy: eps must be ascending.")
  below = np.flatnonzero(accuracy <= level)
  return float(eps[below[0]]) if below.size else float("inf")
