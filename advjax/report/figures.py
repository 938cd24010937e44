"""Figures as data: a config says what to plot, this module draws it.

Each kind is a NamedTuple of the numbers and labels of one plot: `Line`,
`Bar`, `Scatter`, `Heatmap`, `Histogram`, `Box` and `Image`; `Panels` puts
several side by side (`image_grid` builds one of images). `draw(figure,
path)` renders any of them to a PNG with matplotlib's Agg backend (no
display needed). Values that are fractions are drawn as percentages with
`percent=True` (a 0-100 axis). Log axes are labelled by matplotlib's log
locator; a series' non-positive values are left out of a log axis.
"""
from typing import Any, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

__all__ = ["Line", "Bar", "Scatter", "Heatmap", "Histogram", "Binned", "Box",
           "Image", "Panels", "Figure", "image_grid", "draw", "pyplot",
           "perturbation"]


def pyplot():
  """matplotlib.pyplot on the Agg backend (no display needed)."""
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  return plt


class Line(NamedTuple):
  """Curves: `series` name -> y (against the shared `x`) or `(x, y)`.

  Attributes:
    styles: name -> matplotlib format ('o-', 'x--'); default `marker`.
    vlines, hlines: `(position, label)` reference lines (dashed, grey).
    diagonal: draw y = x (dotted).
  """
  series: Mapping[str, Any]
  x: Optional[Sequence[float]] = None
  xlabel: str = ""
  ylabel: str = ""
  title: str = ""
  percent: bool = False
  logx: bool = False
  logy: bool = False
  marker: Optional[str] = None
  styles: Mapping[str, str] = {}
  vlines: Sequence[Tuple[float, str]] = ()
  hlines: Sequence[Tuple[float, str]] = ()
  xlim: Optional[Tuple[float, float]] = None
  ylim: Optional[Tuple[float, float]] = None
  legend_title: Optional[str] = None
  diagonal: bool = False


class Bar(NamedTuple):
  """Grouped bars: one group per category, one bar per series."""
  categories: Sequence[str]
  series: Mapping[str, Sequence[float]]
  xlabel: str = ""
  ylabel: str = ""
  title: str = ""
  percent: bool = False
  logy: bool = False
  horizontal: bool = False
  hlines: Sequence[Tuple[float, str]] = ()


class Scatter(NamedTuple):
  """Points: `series` name -> `(x, y)`."""
  series: Mapping[str, Tuple[Sequence[float], Sequence[float]]]
  xlabel: str = ""
  ylabel: str = ""
  title: str = ""
  logx: bool = False
  logy: bool = False
  diagonal: bool = False
  xlim: Optional[Tuple[float, float]] = None
  ylim: Optional[Tuple[float, float]] = None
  size: float = 8.


class Heatmap(NamedTuple):
  """A matrix with labelled rows and columns, its values written in the
  cells when `annotate` (as percentages when `percent`)."""
  values: Any
  rows: Sequence[str] = ()
  columns: Sequence[str] = ()
  xlabel: str = ""
  ylabel: str = ""
  title: str = ""
  percent: bool = False
  annotate: bool = True
  cmap: str = "viridis"
  vmin: Optional[float] = None
  vmax: Optional[float] = None
  colorbar: str = ""
  origin: str = "upper"


class Binned(NamedTuple):
  """Counts already binned: `counts[i]` in `[edges[i], edges[i + 1])`."""
  counts: Sequence[float]
  edges: Sequence[float]


class Histogram(NamedTuple):
  """Histograms: `series` name -> raw values or `Binned`."""
  series: Mapping[str, Any]
  bins: Union[int, Sequence[float]] = 30
  xlabel: str = ""
  ylabel: str = "count"
  title: str = ""
  logx: bool = False
  logy: bool = False
  vlines: Sequence[Tuple[float, str]] = ()


class Box(NamedTuple):
  """Box plots of `groups` (one array each) at `positions`, with their
  means joined by a line."""
  groups: Sequence[Sequence[float]]
  positions: Sequence[float]
  xlabel: str = ""
  ylabel: str = ""
  title: str = ""


class Image(NamedTuple):
  """One image `[H, W]` or `[H, W, C]` (C 1 or 3), without axes."""
  image: Any
  title: str = ""
  cmap: str = "gray"
  vmin: Optional[float] = 0.
  vmax: Optional[float] = 1.
  colorbar: str = ""


class Panels(NamedTuple):
  """Several figures in a grid of `ncols` columns (0: one row)."""
  panels: Sequence[Any]
  ncols: int = 0
  title: str = ""
  panel_size: Tuple[float, float] = (4.2, 3.6)
  sharey: bool = False


Figure = Union[Line, Bar, Scatter, Heatmap, Histogram, Box, Image, Panels]


def image_grid(images: Sequence[Any], titles: Sequence[str] = (), *,
               ncols: int = 0, title: str = "", cmap: str = "gray",
               vmin: Optional[float] = 0., vmax: Optional[float] = 1.,
               size: float = 1.9) -> Panels:
  """`Panels` of `Image`s (titles optional), `size` inches per image; an
  entry that is already an `Image` (a `perturbation`, say) is kept, with
  the title given here when there is one."""
  titles = list(titles) + [""] * (len(images) - len(titles))
  return Panels([(im._replace(title=t or im.title) if isinstance(im, Image)
                  else Image(im, t, cmap, vmin, vmax))
                 for im, t in zip(images, titles)], ncols, title,
                (size, size + 0.35))


def perturbation(delta, title: str = "") -> Image:
  """A perturbation `[H, W]` or `[H, W, C]` (channels averaged) as an
  `Image` on a symmetric diverging scale (white 0, red +, blue -)."""
  d = np.asarray(delta, float)
  d = d.mean(-1) if d.ndim == 3 else d
  s = max(float(np.abs(d).max()) if d.size else 0., 1e-6)
  return Image(d, title, "seismic", -s, s)


def _percent(v, on: bool):
  v = np.asarray(v, float)
  return 100 * v if on else v


def _axes_labels(ax, f):
  ax.set_xlabel(getattr(f, "xlabel", ""))
  ax.set_ylabel(getattr(f, "ylabel", ""))
  if f.title:
    ax.set_title(f.title, fontsize=9)


def _log(ax, f):
  if getattr(f, "logx", False):
    ax.set_xscale("log")
  if getattr(f, "logy", False):
    ax.set_yscale("log")


def _ref_lines(ax, f):
  for pos, label in getattr(f, "vlines", ()):
    ax.axvline(pos, color="gray", ls="--", lw=1, label=label or None)
  for pos, label in getattr(f, "hlines", ()):
    ax.axhline(_percent(pos, getattr(f, "percent", False)), color="gray",
               ls=":", lw=1, label=label or None)


def _legend(ax, title=None):
  if ax.get_legend_handles_labels()[0]:
    ax.legend(fontsize=7, title=title, title_fontsize=7)


def _draw_line(ax, f: Line):
  for name, s in f.series.items():
    if isinstance(s, tuple) and len(s) == 2 and np.ndim(s[0]) == 1:
      x, y = s
    else:
      x, y = f.x, s
    if x is None:
      x = np.arange(len(y))
    x, y = np.asarray(x, float), _percent(y, f.percent)
    style = f.styles.get(name)
    if style:
      ax.plot(x, y, style, label=name)
    else:
      ax.plot(x, y, marker=f.marker, label=name)
  if f.diagonal:
    lo, hi = ax.get_xlim()
    ax.plot([lo, hi], [lo, hi], color="gray", lw=1, ls=":")
  _ref_lines(ax, f)
  _log(ax, f)
  if f.percent and f.ylim is None:
    ax.set_ylim(0, 100)
  if f.ylim is not None:
    ax.set_ylim(*f.ylim)
  if f.xlim is not None:
    ax.set_xlim(*f.xlim)
  ax.grid(alpha=0.3)
  _legend(ax, f.legend_title)


def _draw_bar(ax, f: Bar):
  n = max(len(f.series), 1)
  width = 0.8 / n
  pos = np.arange(len(f.categories))
  for i, (name, v) in enumerate(f.series.items()):
    offset = pos - 0.4 + width * (i + 0.5)
    v = _percent(v, f.percent)
    if f.horizontal:
      ax.barh(offset, v, height=width, label=name)
    else:
      ax.bar(offset, v, width=width, label=name)
  if f.horizontal:
    ax.set_yticks(pos, list(f.categories), fontsize=7)
  else:
    ax.set_xticks(pos, list(f.categories), rotation=45 if max(
        (len(c) for c in f.categories), default=0) > 6 else 0,
                  ha="right", fontsize=7)
  if f.percent:
    (ax.set_xlim if f.horizontal else ax.set_ylim)(0, 100)
  _ref_lines(ax, f)
  if f.logy:
    ax.set_yscale("log")
  ax.grid(alpha=0.3, axis="x" if f.horizontal else "y")
  if len(f.series) > 1:
    _legend(ax)


def _draw_scatter(ax, f: Scatter):
  for name, (x, y) in f.series.items():
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(x) & np.isfinite(y)
    if f.logx:
      keep &= x > 0
    if f.logy:
      keep &= y > 0
    ax.scatter(x[keep], y[keep], s=f.size, alpha=0.5, label=name)
  _log(ax, f)
  if f.xlim is not None:
    ax.set_xlim(*f.xlim)
  if f.ylim is not None:
    ax.set_ylim(*f.ylim)
  if f.diagonal:
    lo = min(ax.get_xlim()[0], ax.get_ylim()[0])
    hi = max(ax.get_xlim()[1], ax.get_ylim()[1])
    ax.plot([lo, hi], [lo, hi], color="gray", lw=1, ls="--")
  if len(f.series) > 1:
    _legend(ax)


def _draw_heatmap(ax, f: Heatmap):
  v = np.asarray(f.values, float)
  shown = _percent(v, f.percent)
  im = ax.imshow(shown, cmap=f.cmap, vmin=f.vmin, vmax=f.vmax,
                 origin=f.origin, aspect="auto")
  if len(f.columns):
    ax.set_xticks(range(len(f.columns)), list(f.columns), rotation=45,
                  ha="right", fontsize=7)
  if len(f.rows):
    ax.set_yticks(range(len(f.rows)), list(f.rows), fontsize=7)
  if f.annotate and v.size <= 400:
    lo, hi = np.nanmin(shown), np.nanmax(shown)
    mid = (lo + hi) / 2
    for (i, j), s in np.ndenumerate(shown):
      ax.text(j, i, "-" if np.isnan(s) else f"{s:.0f}" if f.percent
              else f"{s:.2g}", ha="center", va="center", fontsize=6,
              color="white" if s < mid else "black")
  if f.colorbar:
    ax.figure.colorbar(im, ax=ax, shrink=0.8, label=f.colorbar)


def _draw_histogram(ax, f: Histogram):
  for i, (name, s) in enumerate(f.series.items()):
    if isinstance(s, Binned):
      counts, edges = np.asarray(s.counts, float), np.asarray(s.edges, float)
    else:
      s = np.asarray(s, float)
      s = s[np.isfinite(s) & ((s > 0) if f.logx else True)]
      bins = f.bins
      if f.logx and isinstance(bins, int) and s.size:
        bins = np.geomspace(s.min(), s.max() * (1 + 1e-9), bins + 1)
      counts, edges = np.histogram(s, bins=bins)
    base = 0.5 if f.logy else 0.
    ax.stairs(np.maximum(counts, base), edges, fill=len(f.series) == 1,
              color=f"C{i}", baseline=base, label=name, alpha=0.8)
  _ref_lines(ax, f)
  _log(ax, f)
  if len(f.series) > 1:
    _legend(ax)


def _draw_box(ax, f: Box):
  groups = [np.asarray(g, float) for g in f.groups]
  ax.boxplot([g if g.size else [np.nan] for g in groups],
             positions=list(f.positions), showfliers=False)
  ax.plot(list(f.positions), [g.mean() if g.size else np.nan for g in groups],
          "o-", label="mean")
  _legend(ax)


def _draw_image(ax, f: Image):
  a = np.asarray(f.image, float)
  if a.ndim == 3 and a.shape[-1] == 1:
    a = a[..., 0]
  im = ax.imshow(a, cmap=f.cmap if a.ndim == 2 else None, vmin=f.vmin,
                 vmax=f.vmax)
  ax.axis("off")
  if f.colorbar:
    ax.figure.colorbar(im, ax=ax, shrink=0.8, label=f.colorbar)


_DRAW = {Line: _draw_line, Bar: _draw_bar, Scatter: _draw_scatter,
         Heatmap: _draw_heatmap, Histogram: _draw_histogram, Box: _draw_box,
         Image: _draw_image}
_SIZE = {Line: (5.5, 3.8), Bar: (6., 3.8), Scatter: (5., 4.2),
         Heatmap: (5.5, 4.6), Histogram: (5.5, 3.8), Box: (6., 3.8),
         Image: (2.4, 2.6)}


def _draw_on(ax, f):
  kind = type(f)
  if kind not in _DRAW:
    raise TypeError(f"Cannot draw a {kind.__name__}; use one of "
                    f"{[k.__name__ for k in _DRAW]} or Panels.")
  _DRAW[kind](ax, f)
  if kind is Image:
    if f.title:
      ax.set_title(f.title, fontsize=7)
  else:
    _axes_labels(ax, f)


def draw(figure: Figure, path: str, dpi: int = 120) -> None:
  """Renders `figure` to a PNG at `path`."""
  plt = pyplot()
  if isinstance(figure, Panels):
    n = len(figure.panels)
    ncols = figure.ncols or n
    nrows = -(-n // ncols)
    w, h = figure.panel_size
    fig, axes = plt.subplots(nrows, ncols, figsize=(w * ncols, h * nrows),
                             squeeze=False, sharey=figure.sharey)
    for ax, panel in zip(axes.flat, figure.panels):
      _draw_on(ax, panel)
    for ax in list(axes.flat)[n:]:
      ax.axis("off")
    if figure.title:
      fig.suptitle(figure.title, fontsize=9)
  else:
    fig, ax = plt.subplots(figsize=_SIZE[type(figure)]
                           if type(figure) in _SIZE else (5.5, 3.8))
    _draw_on(ax, figure)
  fig.tight_layout()
  fig.savefig(path, dpi=dpi)
  plt.close(fig)
