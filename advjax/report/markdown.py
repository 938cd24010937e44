"""Markdown pieces of a report: tables and cells.

A report's body is a list of blocks: strings (paragraphs, headings) and
`Table`s. `cell` formats one value the same way everywhere: fractions as
percentages ('97.8 %'), other numbers with four significant digits, None
as '-'.
"""
from typing import (Any, Callable, Mapping, NamedTuple, Optional, Sequence,
                    Tuple, Union)

import numpy as np

__all__ = ["Table", "table", "percent", "cell", "render_blocks", "Block",
           "get_path", "records_table", "rows_table", "curve_table",
           "fields_table"]


def percent(v: Optional[float], digits: int = 1) -> str:
  """A fraction as a percentage ('97.8'; '-' for None, 'nan' for NaN)."""
  return "-" if v is None else f"{100 * v:.{digits}f}"


def cell(v: Any, unit: str = "", *, scale: bool = True,
         digits: int = 1) -> str:
  """One table cell: None or NaN (undefined) '-', a bool 'yes'/'no', a
  fraction with unit '%' as a percentage (x100 when `scale`), a float with
  4 significant digits (or `unit` a format spec such as '.3f'), other
  values as str."""
  if v is None or (isinstance(v, (float, np.floating)) and v != v):
    return "-"
  if isinstance(v, (bool, np.bool_)):
    return "yes" if v else "no"
  if isinstance(v, (int, np.integer)) and unit not in ("%",):
    return str(int(v))
  if isinstance(v, (int, float, np.floating, np.integer)):
    v = float(v)
    if unit == "%":
      return f"{(100 * v if scale else v):.{digits}f} %"
    if unit.startswith("."):
      return format(v, unit)
    text = f"{v:.4g}"
    return f"{text} {unit}" if unit else text
  return str(v)


def table(header: Sequence[str], rows: Sequence[Sequence[Any]],
          align: Optional[str] = None) -> str:
  """A markdown table; `align` one 'l'/'r' per column (default: the first
  column left, the others right)."""
  align = align or "l" + "r" * (len(header) - 1)
  if len(align) != len(header):
    raise ValueError(f"table: {len(header)} columns but align {align!r}.")
  sep = ["---" if a == "l" else "---:" for a in align]
  lines = ["| " + " | ".join(str(h) for h in header) + " |",
           "|" + "|".join(sep) + "|"]
  for r in rows:
    if len(r) != len(header):
      raise ValueError(f"table: a row of {len(r)} cells under {len(header)} "
                       f"columns: {r!r}.")
    lines.append("| " + " | ".join(str(c) for c in r) + " |")
  return "\n".join(lines)


class Table(NamedTuple):
  """A table block: header, rows of cells (formatted with `cell` when not
  strings), alignment and an optional caption printed above it."""
  header: Sequence[str]
  rows: Sequence[Sequence[Any]]
  align: Optional[str] = None
  caption: str = ""

  def markdown(self) -> str:
    """The caption and the table."""
    rows = [[c if isinstance(c, str) else cell(c) for c in r]
            for r in self.rows]
    body = table(self.header, rows, self.align)
    return f"{self.caption}\n\n{body}" if self.caption else body


Block = Union[str, Table]


def render_blocks(blocks: Sequence[Block]) -> str:
  """Blocks joined by blank lines (empty strings and None skipped)."""
  parts = []
  for b in blocks:
    if b is None or (isinstance(b, str) and not b.strip()):
      continue
    parts.append(b.markdown() if isinstance(b, Table) else b.strip("\n"))
  return "\n\n".join(parts)


_MISSING = object()


def get_path(node: Any, path: str, default: Any = _MISSING) -> Any:
  """The value at a dotted `path` of nested dicts and lists ('pgd.accuracy.3':
  integers index lists and arrays).

  Raises:
    KeyError: the path is not there and no `default` is given.
  """
  for part in path.split(".") if path else ():
    try:
      # Integers index lists, and the numpy arrays of in-memory results.
      node = node[int(part)] if isinstance(
          node, (list, tuple, np.ndarray)) else node[part]
    except (KeyError, IndexError, ValueError, TypeError):
      if default is not _MISSING:
        return default
      raise KeyError(f"{path!r}: no {part!r} there") from None
  return node


Column = Tuple[str, Union[str, Callable[[Any], Any]], str]


def records_table(records: Mapping[str, Any], columns: Sequence[Column], *,
                  first: str = "model", caption: str = "") -> Table:
  """One row per record (a model, a setting), one column per `(header,
  path or function of the record, unit)`: the path is dotted (`get_path`;
  missing or None: '-'), the unit as in `cell` ('%', '.3f', 's', '')."""
  rows = []
  for name, rec in records.items():
    row = [name]
    for _, source, unit in columns:
      v = source(rec) if callable(source) else get_path(rec, source, None)
      row.append(v if isinstance(v, str) else cell(v, unit))
    rows.append(row)
  return Table((first, *(c[0] for c in columns)), rows, None, caption)


def rows_table(rows: Sequence[Any], columns: Sequence[Column], *,
               align: Optional[str] = None, caption: str = "") -> Table:
  """One table row per record of a list (a timing's rows), one column per
  `(header, path or function of the record, unit)`, as in
  `records_table` but without the name column: a function's string is
  the cell, other values go through `cell` with the unit ('.1f', '%')."""
  out = []
  for rec in rows:
    row = []
    for _, source, unit in columns:
      v = source(rec) if callable(source) else get_path(rec, source, None)
      row.append(v if isinstance(v, str) else cell(v, unit))
    out.append(row)
  return Table(tuple(c[0] for c in columns), out, align, caption)


def curve_table(x: Sequence[Any], series: Mapping[str, Sequence[Any]], *,
                first: str = "eps", unit: str = "%", x_format: str = ".4g",
                caption: str = "") -> Table:
  """Curves as a table: one row per x, one column per series."""
  return Table((first, *series), [
      (format(v, x_format) if isinstance(v, (int, float, np.floating))
       else str(v), *(cell(s[i], unit) for s in series.values()))
      for i, v in enumerate(x)], None, caption)


def fields_table(records: Mapping[str, Mapping[str, Any]], *,
                 units: Optional[Mapping[str, str]] = None,
                 float_unit: str = "", first: str = "",
                 caption: str = "") -> Table:
  """Records side by side: one column per record, one row per scalar field
  (numbers, bools, strings, None) of the first record, in its order;
  fields holding lists or dicts are left out. A field's unit is
  `units[field]`, else `float_unit` for floats (e.g. '%' when most are
  fractions), as in `cell`."""
  units = dict(units or {})
  recs = list(records.values())
  scalar = (int, float, bool, str, np.integer, np.floating, np.bool_,
            type(None))
  keys = [k for k, v in (recs[0].items() if recs else ())
          if isinstance(v, scalar)]
  unit = lambda k, v: units.get(k, float_unit if isinstance(
      v, (float, np.floating)) else "")
  return Table((first, *records), [
      (k, *(cell(r.get(k), unit(k, r.get(k))) for r in recs))
      for k in keys], None, caption)
