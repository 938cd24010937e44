"""Per-example outcomes kept in a run's results.

An evaluator's summary holds numbers a report needs; where a report
compares models example by example (which test images one model gets
right and another wrong, `analysis.disagreement`), it keeps the
per-example booleans as a string of '0' and '1' (`to_bits`): one
character per example, compact in results.json and read back with
`from_bits`.
"""
import numpy as np

__all__ = ["to_bits", "from_bits"]


def to_bits(correct) -> str:
  """`[N]` booleans as a string of '0' and '1', one character each.

  Raises:
    ValueError: not `[N]`.
  """
  correct = np.asarray(correct, bool)
  if correct.ndim != 1:
    raise ValueError(f"to_bits: expected [N] booleans, got shape "
                     f"{correct.shape}.")
  return np.where(correct, b"1", b"0").tobytes().decode("ascii")


def from_bits(bits: str) -> np.ndarray:
  """The `[N]` booleans of a `to_bits` string.

  Raises:
    ValueError: a character other than '0' and '1'.
  """
  codes = np.frombuffer(bits.encode("ascii"), np.uint8)
  if np.any((codes != ord("0")) & (codes != ord("1"))):
    raise ValueError("from_bits: expected a string of '0' and '1'.")
  return codes == ord("1")
