"""Reports: results.json, results.md beside the published numbers, the
figures and the claim checks, written in one place (`write`).

A benchmark's `report(cfg, results)` hook returns a `Report`; this module
holds what those hooks share: markdown tables, the claims section, line
plots on matplotlib's Agg backend.
"""
import json
import os
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional
from typing import Sequence

import numpy as np

__all__ = ["Claim", "Report", "write", "table", "percent", "claims_section",
           "pyplot", "line_plot", "jsonable"]


class Claim(NamedTuple):
  """A finding of the paper checked on the measured numbers.

  Attributes:
    text: the claim, as the paper makes it.
    holds: whether the measured numbers agree.
    evidence: the numbers it was judged on.
  """
  text: str
  holds: bool
  evidence: str = ""


class Report(NamedTuple):
  """What a benchmark's report hook returns.

  Attributes:
    markdown: results.md (tables beside the published numbers).
    figures: file name -> `draw(path)` that saves the figure there.
    claims: the paper's claims checked (also appended to the markdown).
  """
  markdown: str
  figures: Dict[str, Callable[[str], None]] = {}
  claims: List[Claim] = []


def jsonable(obj: Any) -> Any:
  """`obj` with numpy arrays and scalars as lists and Python numbers."""
  if isinstance(obj, dict):
    return {str(k): jsonable(v) for k, v in obj.items()}
  if isinstance(obj, (list, tuple)):
    return [jsonable(v) for v in obj]
  if isinstance(obj, np.ndarray):
    return obj.tolist()
  if isinstance(obj, np.generic):
    return obj.item()
  return obj


def claims_section(claims: Sequence[Claim]) -> str:
  """The markdown section of the claim checks ('' without claims)."""
  if not claims:
    return ""
  rows = [(c.text, "yes" if c.holds else "**no**", c.evidence)
          for c in claims]
  return "## Claims checked\n\n" + table(("claim", "holds", "measured"), rows,
                                         "lll")


def write(workdir: str, results: Dict[str, Any], rep: Report) -> None:
  """Writes results.json (with the claims), results.md (with the claims
  section) and each figure into `workdir`."""
  os.makedirs(workdir, exist_ok=True)
  out = {**results, "claims": [c._asdict() for c in rep.claims]}
  with open(os.path.join(workdir, "results.json"), "w") as f:
    json.dump(jsonable(out), f, indent=2)
  markdown = rep.markdown
  section = claims_section(rep.claims)
  if section:
    markdown = markdown.rstrip("\n") + "\n\n" + section
  with open(os.path.join(workdir, "results.md"), "w") as f:
    f.write(markdown.rstrip("\n") + "\n")
  for name, draw in rep.figures.items():
    draw(os.path.join(workdir, name))


def table(header: Sequence[str], rows: Sequence[Sequence[Any]],
          align: Optional[str] = None) -> str:
  """A markdown table; `align` one 'l'/'r' per column (default: the first
  column left, the others right)."""
  align = align or "l" + "r" * (len(header) - 1)
  sep = ["---" if a == "l" else "---:" for a in align]
  lines = ["| " + " | ".join(str(h) for h in header) + " |",
           "|" + "|".join(sep) + "|"]
  lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
  return "\n".join(lines)


def percent(v: Optional[float], digits: int = 1) -> str:
  """A fraction as a percentage cell ('-' for None)."""
  return "-" if v is None else f"{100 * v:.{digits}f}"


def pyplot():
  """matplotlib.pyplot on the Agg backend (no display needed)."""
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  return plt


def line_plot(path: str, x: Sequence[float],
              series: Mapping[str, Sequence[float]], *, xlabel: str,
              ylabel: str, title: str, marker: Optional[str] = None,
              vline: Optional[float] = None, vline_label: str = "",
              percent: bool = True) -> None:  # pylint: disable=redefined-outer-name
  """One curve per named series against x, saved as a PNG at `path`.

  Args:
    path: output file.
    x: shared x values.
    series: name -> y values (fractions when `percent`: plotted x100 on a
      0-100 axis).
    xlabel, ylabel, title: labels.
    marker: matplotlib marker of the curves.
    vline: an x position marked with a dashed line, labelled `vline_label`.
    percent: scale to percent and fix the y range to [0, 100].
  """
  plt = pyplot()
  fig, ax = plt.subplots(figsize=(5.5, 3.8))
  for name, y in series.items():
    y = np.asarray(y, float)
    ax.plot(x, 100 * y if percent else y, marker=marker, label=name)
  if vline is not None:
    ax.axvline(vline, color="gray", ls="--", lw=1, label=vline_label)
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  if percent:
    ax.set_ylim(0, 100)
  ax.set_title(title)
  ax.grid(alpha=0.3)
  ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
