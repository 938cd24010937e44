"""The report hooks of benchmarks not yet declared as data (issue 26):
`Claim(text, holds, evidence)`, `Report(markdown, figures, claims)` with
figure callables, and `line_plot`. Removed once every config declares a
`report.Report`."""
from typing import Callable, Dict, List, Mapping, NamedTuple, Optional
from typing import Sequence

import numpy as np

from advjax.report.claims import FAILS, HOLDS, Verdict
from advjax.report.figures import pyplot

__all__ = ["Claim", "Report", "line_plot", "to_verdicts"]


class Claim(NamedTuple):
  text: str
  holds: bool
  evidence: str = ""


class Report(NamedTuple):
  markdown: str
  figures: Dict[str, Callable[[str], None]] = {}
  claims: List[Claim] = []


def to_verdicts(claims: Sequence[Claim]) -> List[Verdict]:
  return [Verdict(c.text, HOLDS if c.holds else FAILS, c.evidence)
          for c in claims]


def line_plot(path: str, x: Sequence[float],
              series: Mapping[str, Sequence[float]], *, xlabel: str,
              ylabel: str, title: str, marker: Optional[str] = None,
              vline: Optional[float] = None, vline_label: str = "",
              percent: bool = True) -> None:  # pylint: disable=redefined-outer-name
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
