"""Reports as data: a benchmark declares what it reports, `render` writes it.

A benchmark config declares a `Report`: a title, the body (its tables and
notes, `(cfg, results) -> blocks`), its published numbers (`Published`
rows), its claims (`Claim`s with thresholds) and its figures (`(cfg,
results) -> {file name: figure}`, by kind: `Line`, `Bar`, `Heatmap`,
`Histogram`, `Scatter`, `Box`, `Image`, `Panels`). `render` turns it and a
run's results into a `Rendered` report (markdown, figures, verdicts);
`write` saves results.json (with the verdicts), results.md and the PNGs.
Because the report is computed from results.json alone, a finished run's
report can be rewritten after the declaration changes (`--report-only`).

| module | holds |
|---|---|
| `markdown` | `Table`, `table`, `cell`, `percent`: the formatting every report shares |
| `claims` | `Claim` (declared), thresholds (`at_least`, `at_most`, ...), `Verdict` (holds / partly / fails) |
| `published` | `Published` rows, `published_table`, `comparable` |
| `figures` | the figure kinds and `draw` |
"""
import json
import os
from typing import (Any, Callable, Dict, List, Mapping, NamedTuple, Optional,
                    Sequence, Union)

import numpy as np

from advjax.report.claims import (FAILS, HOLDS, PARTLY, VERDICTS, Claim,
                                  Measured, Threshold, Verdict, above,
                                  at_least, at_most, below, between,
                                  difference, judge_all, lookup, present,
                                  ratio, value_of)
from advjax.report.figures import (Bar, Binned, Box, Figure, Heatmap,
                                   Histogram, Image, Line, Panels, Scatter,
                                   draw, image_grid, perturbation, pyplot)
from advjax.report.markdown import (Block, Table, cell, curve_table,
                                    fields_table, get_path, percent,
                                    records_table, render_blocks, rows_table,
                                    table)
from advjax.report.published import (STAND_INS, Published, comparable,
                                     published_table)

__all__ = [
    "Report", "Rendered", "render", "write", "jsonable", "claims_section",
    "claims_summary",
    "Table", "table", "cell", "percent", "render_blocks", "Block",
    "get_path", "records_table", "rows_table", "curve_table",
    "fields_table",
    "Claim", "Verdict", "Measured", "Threshold", "at_least", "at_most",
    "above", "below", "between", "judge_all", "lookup", "value_of",
    "difference", "ratio", "present", "HOLDS", "PARTLY", "FAILS",
    "VERDICTS", "Published", "published_table", "STAND_INS", "comparable",
    "Line", "Bar", "Scatter", "Heatmap", "Histogram", "Binned", "Box",
    "Image", "Panels", "Figure", "image_grid", "draw", "pyplot",
    "perturbation",
]


class Report(NamedTuple):
  """What a benchmark reports, declared as data.

  Attributes:
    title: the heading; a string formatted with the config's fields
      ('{dataset}: ...') or `cfg -> str`.
    body: `(cfg, results) -> [str | Table]`, the tables and notes.
    published: `Published` rows (or `cfg -> rows`), printed beside ours.
    claims: `Claim`s judged on the results (or `cfg -> claims`).
    figures: `(cfg, results) -> {file name: figure}`.
    stand_ins: `{run dataset: (published datasets, ...)}`, the published
      rows a run's numbers are printed beside (None: `STAND_INS`, digits
      beside MNIST); e.g. `{'digits': ('cifar10',)}` for a CIFAR-10 study
      reproduced on the digits.
  """
  title: Union[str, Callable[[Any], str]] = ""
  body: Optional[Callable[[Any, Dict[str, Any]], Sequence[Block]]] = None
  published: Union[Sequence[Published], Callable] = ()
  claims: Union[Sequence[Claim], Callable] = ()
  figures: Optional[Callable[[Any, Dict[str, Any]],
                             Mapping[str, Figure]]] = None
  stand_ins: Optional[Mapping[str, Sequence[str]]] = None


class Rendered(NamedTuple):
  """A report rendered on one run: results.md, the figures, the verdicts."""
  markdown: str
  figures: Mapping[str, Figure]
  claims: List[Verdict]


def jsonable(obj: Any) -> Any:
  """`obj` with numpy arrays and scalars as lists and Python numbers,
  NamedTuples as dicts."""
  if isinstance(obj, tuple) and hasattr(obj, "_asdict"):
    return jsonable(obj._asdict())
  if isinstance(obj, dict):
    return {str(k): jsonable(v) for k, v in obj.items()}
  if isinstance(obj, (list, tuple)):
    return [jsonable(v) for v in obj]
  if isinstance(obj, np.ndarray):
    return obj.tolist()
  if isinstance(obj, np.generic):
    return obj.item()
  return obj


def claims_section(verdicts: Sequence[Verdict]) -> str:
  """The markdown section of the claim checks ('' without claims)."""
  if not verdicts:
    return ""
  shown = {HOLDS: "holds", PARTLY: "*partly*", FAILS: "**fails**"}
  rows = [(v.text, shown[v.verdict], v.evidence, v.rule) for v in verdicts]
  return (f"## Claims checked ({_counts(verdicts)})\n\n"
          + table(("claim", "verdict", "measured", "rule"), rows, "llll"))


def claims_summary(verdicts: Sequence[Verdict]) -> List[str]:
  """The claim checks as plain lines for a terminal ([] without claims):
  the counts, then one line per claim, its verdict first ('holds: <claim>
  [<measured>]')."""
  if not verdicts:
    return []
  return [f"claims checked: {_counts(verdicts)}"] + [
      f"  {v.verdict}: {v.text}" + (f" [{v.evidence}]" if v.evidence else "")
      for v in verdicts]


def _counts(verdicts: Sequence[Verdict]) -> str:
  """'2 holds, 1 partly, 0 fails'."""
  return ", ".join(f"{sum(v.verdict == k for v in verdicts)} {k}"
                   for k in VERDICTS)


def _resolve(value, cfg):
  return value(cfg) if callable(value) else value


def _title(rep: Report, cfg) -> str:
  if callable(rep.title):
    return rep.title(cfg)
  fields = cfg.__dict__ if hasattr(cfg, "__dict__") else {}
  return rep.title.format_map(fields) if rep.title else ""


def render(rep: Report, cfg, results: Dict[str, Any]) -> Rendered:
  """The markdown, figures and verdicts of `rep` on a run's results."""
  blocks: List[Block] = []
  title = _title(rep, cfg)
  if title:
    blocks.append(f"# {title}")
  if rep.body is not None:
    blocks += list(rep.body(cfg, results))
  published = _resolve(rep.published, cfg)
  if published:
    blocks += ["## Published numbers",
               published_table(published, cfg, results,
                               stand_ins=rep.stand_ins)]
  verdicts = judge_all(_resolve(rep.claims, cfg), cfg, results)
  if verdicts:
    blocks.append(claims_section(verdicts))
  figures = dict(rep.figures(cfg, results)) if rep.figures else {}
  if figures:
    blocks += ["## Figures", "\n".join(f"![{n}]({n})" for n in figures)]
  return Rendered(render_blocks(blocks), figures, verdicts)


def write(workdir: str, results: Dict[str, Any],
          rendered: Rendered) -> List[str]:
  """Writes results.json (with the verdicts), results.md and each figure
  into `workdir`; returns the paths written."""
  os.makedirs(workdir, exist_ok=True)
  out = {**results, "claims": [v.asdict() for v in rendered.claims]}
  out.pop("table", None)
  paths = [os.path.join(workdir, "results.json"),
           os.path.join(workdir, "results.md")]
  tmp = paths[0] + ".tmp"
  with open(tmp, "w") as f:
    json.dump(jsonable(out), f, indent=1)
  os.replace(tmp, paths[0])
  with open(paths[1], "w") as f:
    f.write(rendered.markdown.rstrip("\n") + "\n")
  for name, figure in rendered.figures.items():
    path = os.path.join(workdir, name)
    draw(figure, path)
    paths.append(path)
  return paths
