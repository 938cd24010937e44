"""Figures shared by the benchmarks (matplotlib on the Agg backend)."""
from typing import Mapping, Optional, Sequence

import numpy as np

__all__ = ["pyplot", "line_plot"]


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
              percent: bool = True) -> None:
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
