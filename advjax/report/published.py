"""Published numbers as data, printed beside this run's.

A config lists the numbers of its sources as `Published` rows: where they
come from, the setting they were measured in, the value as the paper
prints it (a number, or a qualitative finding in words) and, where this
run measures the same quantity, how to read ours from the results.
`published_table` renders them; a row of another dataset than the run's
is still shown (the reader sees what the MNIST preset would compare to),
with this run's cell left '-': a digits number is not printed beside a
CIFAR-10 one. The embedded digits stand in for MNIST (`STAND_INS`), or
for what a report's `stand_ins` says (a CIFAR-10 study run on digits).
"""
from typing import (Any, Callable, Dict, Mapping, NamedTuple, Optional,
                    Sequence)

from advjax.report.markdown import Table, cell

__all__ = ["Published", "published_table", "STAND_INS", "comparable"]

# Datasets whose runs are printed beside another dataset's published
# numbers: sklearn's 8x8 digits, the embedded default, stand in for MNIST.
STAND_INS = {"digits": ("mnist",)}


class Published(NamedTuple):
  """One published number.

  Attributes:
    source: who published it ('Madry et al. 2018, Table 1').
    setting: what it was measured on ('MNIST, eps 0.3, PGD-100 x 50').
    value: the number as printed (in `unit`; a percentage is shown with
      its own digits), or a finding in words.
    quantity: what it is ('robust accuracy').
    unit: '%' (ours, a fraction, is printed x100), '' or another unit.
    ours: `(cfg, results) -> value` of the same quantity in this run
      (a fraction when unit is '%'), None when not comparable; it may
      return None, and a KeyError (a model this run did not train)
      shows '-' as well.
    dataset: the dataset the published number is on (None: any).
  """
  source: str
  setting: str
  value: Any
  quantity: str = ""
  unit: str = "%"
  ours: Optional[Callable[[Any, Dict[str, Any]], Any]] = None
  dataset: Optional[str] = None


def comparable(published_on: Optional[str], run_on: Optional[str],
               stand_ins: Optional[Mapping[str, Sequence[str]]] = None
               ) -> bool:
  """Whether a run on `run_on` is printed beside a number published on
  `published_on`: either None, the same dataset, or one the run stands in
  for (`stand_ins`, default `STAND_INS`)."""
  if published_on is None or run_on is None:
    return True
  stand_ins = STAND_INS if stand_ins is None else stand_ins
  return published_on in (run_on, *stand_ins.get(run_on, ()))


def _ours(row: Published, cfg, results, stand_ins=None) -> str:
  if row.ours is None or not comparable(
      row.dataset, getattr(cfg, "dataset", None), stand_ins):
    return "-"
  try:
    v = row.ours(cfg, results)
  except KeyError:  # that part of the study was not run (fewer models)
    return "-"
  if v is None:
    return "-"
  if isinstance(v, str):
    return v
  return cell(v, row.unit)


def published_table(rows: Sequence[Published], cfg=None,
                    results: Optional[Dict[str, Any]] = None,
                    caption: str = "Published numbers beside this run's",
                    stand_ins: Optional[Mapping[str, Sequence[str]]] = None
                    ) -> Table:
  """The rows as a table: source, setting, quantity, published value and
  this run's value (on `cfg.dataset`) where the row says how to read it
  and its dataset is `comparable` with the run's."""
  dataset = getattr(cfg, "dataset", None)
  header = ("source", "setting", "quantity", "published",
            f"this run ({dataset})" if dataset else "this run")
  out = []
  for r in rows:
    if not isinstance(r.value, (int, float)):
      published = str(r.value)
    elif r.unit == "%":  # as printed, at least one decimal: 0.94 %, 87.15 %
      decimals = str(float(r.value)).partition(".")[2]
      published = cell(r.value, r.unit, scale=False, digits=max(
          1, len(decimals) if decimals.isdigit() else 1))
    else:
      published = cell(r.value, r.unit, scale=False)
    ours = (_ours(r, cfg, results, stand_ins) if results is not None
            else "-")
    out.append((r.source, r.setting, r.quantity, published, ours))
  return Table(header, out, "lllrr", caption)
