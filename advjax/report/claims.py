"""Claims as data: what a paper says, what is measured, and the thresholds
of each verdict.

A config declares each finding it checks as a `Claim`: the text, a
`measure(cfg, results)` that reads the number the finding is about out of
the results, and the thresholds that make it hold or hold partly
(`at_least(0.2)`, `at_most(1.1)`, ...). `Claim.judge` returns a `Verdict`:
holds, partly or fails, with the measured value and the rule it was judged
by, so a reader sees the threshold beside the number. A measure returns

- a number (or a bool: `True` holds, `False` fails),
- a `Measured(value, evidence)`: the number and the text that shows it,
- a dict `{label: value-or-Measured}`: one verdict per label (per model,
  per dataset), the label appended to the text,
- or None: the claim does not apply to this run (fewer models, say) and
  is left out.
"""
import math
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence

from advjax.report.markdown import get_path

__all__ = ["HOLDS", "PARTLY", "FAILS", "VERDICTS", "Threshold", "at_least",
           "at_most", "above", "below", "between", "Measured", "Claim",
           "Verdict", "judge_all", "lookup", "value_of", "difference",
           "ratio", "present"]

HOLDS, PARTLY, FAILS = "holds", "partly", "fails"
VERDICTS = (HOLDS, PARTLY, FAILS)

_OPS = {
    ">=": lambda v, t: v >= t, ">": lambda v, t: v > t,
    "<=": lambda v, t: v <= t, "<": lambda v, t: v < t,
}


class Threshold(NamedTuple):
  """`value op bound` (op one of '>=', '>', '<=', '<'), or `low <= value
  <= high` when op is 'in'. NaN never satisfies a threshold."""
  op: str
  bound: Any

  def __call__(self, value) -> bool:
    value = float(value)
    if math.isnan(value):
      return False
    if self.op == "in":
      low, high = self.bound
      return low <= value <= high
    return _OPS[self.op](value, self.bound)

  def __str__(self) -> str:
    if self.op == "in":
      return f"in [{self.bound[0]:g}, {self.bound[1]:g}]"
    return f"{self.op} {self.bound:g}"


def at_least(bound: float) -> Threshold:
  """Holds when the measured value is >= `bound`."""
  return Threshold(">=", float(bound))


def at_most(bound: float) -> Threshold:
  """Holds when the measured value is <= `bound`."""
  return Threshold("<=", float(bound))


def above(bound: float) -> Threshold:
  """Holds when the measured value is > `bound`."""
  return Threshold(">", float(bound))


def below(bound: float) -> Threshold:
  """Holds when the measured value is < `bound`."""
  return Threshold("<", float(bound))


def between(low: float, high: float) -> Threshold:
  """Holds when `low <= value <= high`."""
  if low > high:
    raise ValueError(f"between: low {low} > high {high}.")
  return Threshold("in", (float(low), float(high)))


class Measured(NamedTuple):
  """A measured value and the evidence shown beside the verdict."""
  value: Any
  evidence: str = ""


class Verdict(NamedTuple):
  """A claim judged on one run's numbers.

  Attributes:
    text: the claim, as the paper makes it.
    verdict: 'holds', 'partly' or 'fails'.
    evidence: the numbers it was judged on.
    rule: the thresholds, e.g. 'holds if >= 0.2; partly if >= 0.05'.
  """
  text: str
  verdict: str
  evidence: str = ""
  rule: str = ""

  @property
  def holds(self) -> bool:
    """Whether the claim holds in full."""
    return self.verdict == HOLDS

  def asdict(self) -> Dict[str, Any]:
    """The JSON form (with `holds` for readers of older results)."""
    return {**self._asdict(), "holds": self.holds}


def _fmt(value) -> str:
  if isinstance(value, bool):
    return "yes" if value else "no"
  if isinstance(value, (int, float)):
    return f"{value:.4g}"
  return str(value)


def lookup(path: str, cfg, results: Dict[str, Any]) -> Any:
  """The value at a dotted `path` of the results ('models.madry.pgd.
  accuracy.3'), after formatting it with the config's fields
  ('models.{method}.robust_accuracy'); integers index lists.

  Raises:
    KeyError: the path is not in the results (the message names it).
  """
  fields = cfg.__dict__ if hasattr(cfg, "__dict__") else {}
  return get_path(results, path.format_map(fields))


def value_of(source) -> Callable[[Any, Dict[str, Any]], Any]:
  """`(cfg, results) -> value` of a dotted path (`lookup`) or a function."""
  if callable(source):
    return source
  return lambda cfg, results: lookup(source, cfg, results)


def _as_cell(v, unit: str) -> str:
  if unit == "%":
    return f"{100 * v:.1f} %"
  return f"{v:.4g}{' ' + unit if unit else ''}"


def difference(a, b, unit: str = "") -> Callable[[Any, Dict[str, Any]],
                                                 Measured]:
  """A measure `a - b` with the evidence 'a vs b' (`unit` '%': fractions
  shown as percentages); a and b are dotted paths or functions."""
  a, b = value_of(a), value_of(b)

  def measure(cfg, results):
    va, vb = float(a(cfg, results)), float(b(cfg, results))
    return Measured(va - vb, f"{_as_cell(va, unit)} vs {_as_cell(vb, unit)}")
  return measure


def ratio(a, b) -> Callable[[Any, Dict[str, Any]], Measured]:
  """A measure `a / b` with the evidence 'a / b' (dotted paths or
  functions)."""
  a, b = value_of(a), value_of(b)

  def measure(cfg, results):
    va, vb = float(a(cfg, results)), float(b(cfg, results))
    return Measured(va / vb if vb else float("inf"), f"{va:.4g} / {vb:.4g}")
  return measure


def present(measure) -> Callable[[Any, Dict[str, Any]], Any]:
  """`measure` (a function or dotted path), returning None (the claim left
  out, as with `applies`) where it reads what the results do not have: a
  KeyError, such as a model this run did not train or a setting it did
  not evaluate (`Published` rows show '-' there the same way)."""
  measure = value_of(measure)

  def measure_if_present(cfg, results):
    try:
      return measure(cfg, results)
    except KeyError:
      return None
  return measure_if_present


class Claim(NamedTuple):
  """A finding of a paper, declared as data.

  Attributes:
    text: the claim, as the paper makes it (and which model or setting it
      is checked on).
    measure: `(cfg, results) -> value` (see the module docstring), or a
      dotted path of the results (`lookup`).
    holds: the threshold the value must meet for the claim to hold; None
      when the value is a bool.
    partly: a weaker threshold: met, the claim holds partly.
    quantity: what the value is, shown in the rule ('AA - PGD robust
      accuracy').
    applies: `(cfg, results) -> bool`: whether the claim is checked on
      this run (e.g. only when an adversarially trained model exists).
  """
  text: str
  measure: Callable[[Any, Dict[str, Any]], Any]
  holds: Optional[Threshold] = None
  partly: Optional[Threshold] = None
  quantity: str = ""
  applies: Optional[Callable[[Any, Dict[str, Any]], bool]] = None

  @property
  def rule(self) -> str:
    """The thresholds in words."""
    if self.holds is None:
      return ""
    q = f"{self.quantity} " if self.quantity else ""
    rule = f"holds if {q}{self.holds}"
    if self.partly is not None:
      rule += f"; partly if {self.partly}"
    return rule

  def verdict_of(self, value) -> str:
    """'holds', 'partly' or 'fails' for a measured value."""
    if self.holds is None:
      if not isinstance(value, bool) and not hasattr(value, "__bool__"):
        raise TypeError(f"Claim {self.text!r}: no threshold, so its measure "
                        f"must return a bool, got {value!r}.")
      return HOLDS if bool(value) else FAILS
    if self.holds(value):
      return HOLDS
    if self.partly is not None and self.partly(value):
      return PARTLY
    return FAILS

  def judge(self, cfg, results: Dict[str, Any]) -> List[Verdict]:
    """The verdicts of this claim on a run (none when it does not
    apply)."""
    if self.applies is not None and not self.applies(cfg, results):
      return []
    measured = value_of(self.measure)(cfg, results)
    if measured is None:
      return []
    items = (measured.items() if isinstance(measured, dict)
             else [(None, measured)])
    out = []
    for label, m in items:
      if m is None:
        continue
      if not isinstance(m, Measured):
        m = Measured(m, _fmt(m))
      text = self.text if label is None else f"{self.text} ({label})"
      out.append(Verdict(text, self.verdict_of(m.value),
                         m.evidence or _fmt(m.value), self.rule))
    return out


def judge_all(claims: Sequence[Claim], cfg,
              results: Dict[str, Any]) -> List[Verdict]:
  """Every claim judged on a run, in order."""
  return [v for c in claims for v in c.judge(cfg, results)]
