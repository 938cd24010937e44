"""Early stopping over the kept epochs of a training run.

`early_stopping(score, load, epochs)` scores the model of every epoch
(`load(epoch) -> variables`, e.g. `training.epoch_variables` of a run
trained with `fit(..., epoch_checkpoints=True)`: no optimizer is rebuilt)
and keeps the epoch of lowest score: Goodfellow et al.'s models
early-stopped on the (adversarial) error of a validation split.
"""
from typing import Any, Callable, NamedTuple, Sequence, Tuple

import numpy as np
from tqdm import tqdm

__all__ = ["EarlyStopping", "early_stopping"]


class EarlyStopping(NamedTuple):
  """The epoch early stopping picked.

  Attributes:
    epoch: the epoch of lowest score (the first of ties).
    variables: its variables.
    epochs: the epochs scored, in order.
    scores: `[E]` their scores.
  """
  epoch: int
  variables: Any
  epochs: Tuple[int, ...]
  scores: np.ndarray

  def summary(self) -> dict:
    """The chosen epoch and every epoch's score (no variables)."""
    return {"epoch": int(self.epoch), "epochs": list(self.epochs),
            "scores": np.asarray(self.scores).tolist()}


def early_stopping(score: Callable[[Any], float],
                   load: Callable[[int], Any], epochs: Sequence[int], *,
                   progress: bool = False,
                   desc: str = "early stopping") -> EarlyStopping:
  """The epoch of `epochs` whose model scores lowest.

  Args:
    score: `variables -> float`, lower is better (a validation error);
      NaN scores are never picked.
    load: `epoch -> variables` (e.g. `functools.partial(
      training.epoch_variables, workdir)` or `run.epoch_variables`).
    epochs: the epochs to score, in order (ties go to the first).
    progress: show a progress bar named `desc`.

  Returns:
    `EarlyStopping`.

  Raises:
    ValueError: no epochs, or every score NaN.
  """
  epochs = tuple(int(e) for e in epochs)
  if not epochs:
    raise ValueError("early_stopping: no epochs to score.")
  scores, best, best_vars = [], None, None
  for epoch in tqdm(epochs, desc=desc, disable=not progress, leave=False):
    variables = load(epoch)
    s = float(score(variables))
    scores.append(s)
    if not np.isnan(s) and (best is None or s < scores[best]):
      best, best_vars = len(scores) - 1, variables
  if best is None:
    raise ValueError("early_stopping: every score is NaN.")
  return EarlyStopping(epochs[best], best_vars, epochs, np.asarray(scores))
