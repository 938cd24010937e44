"""Where two models' per-example outcomes differ.

Two models evaluated on the same inputs under the same attack: how many
examples one gets right and the other wrong, each way (D'Costa &
Sriramanan's check that no image exists on which the vanilla net is right
under the spatial grid and the Wasserstein-trained net wrong). A study
keeps the per-example outcomes in results.json as bit strings
(`evaluation.to_bits`, one character per example), so the comparison can
be redone from the results alone (`disagreement` reads bit strings or
arrays).
"""
from typing import Dict, Mapping, NamedTuple, Union

import numpy as np

from advjax.evaluation.outcomes import from_bits

__all__ = ["Disagreement", "disagreement"]

Outcomes = Union[str, np.ndarray, list]


def _outcomes(x: Outcomes) -> np.ndarray:
  return from_bits(x) if isinstance(x, str) else np.asarray(x, bool)


class Disagreement(NamedTuple):
  """Counts of examples by the outcomes of models a and b.

  Attributes:
    only_a: right under a, wrong under b.
    only_b: right under b, wrong under a.
    both: right under both.
    neither: wrong under both.
  """
  only_a: int
  only_b: int
  both: int
  neither: int

  @property
  def total(self) -> int:
    """The number of examples."""
    return self.only_a + self.only_b + self.both + self.neither


def disagreement(correct_a: Union[Outcomes, Mapping[str, Outcomes]],
                 correct_b: Union[Outcomes, Mapping[str, Outcomes]]
                 ) -> Union[Disagreement, Dict[str, Disagreement]]:
  """How two models' per-example outcomes on the same examples differ.

  Args:
    correct_a, correct_b: `[N]` booleans (right = True), or their
      `evaluation.to_bits` strings, in the same example order; or dicts of
      them, one per setting (a threat model, an attack).

  Returns:
    `Disagreement` counts (they sum to N); for dicts, one per setting both
    have, in `correct_a`'s order.

  Raises:
    ValueError: outcomes of different lengths, or not `[N]`.
  """
  if isinstance(correct_a, Mapping) and isinstance(correct_b, Mapping):
    return {k: disagreement(v, correct_b[k]) for k, v in correct_a.items()
            if k in correct_b}
  a, b = _outcomes(correct_a), _outcomes(correct_b)
  if a.ndim != 1 or a.shape != b.shape:
    raise ValueError(f"disagreement: expected two [N] outcomes of the same "
                     f"examples, got shapes {a.shape} and {b.shape}.")
  return Disagreement(int(np.sum(a & ~b)), int(np.sum(b & ~a)),
                      int(np.sum(a & b)), int(np.sum(~a & ~b)))
