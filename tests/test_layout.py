"""The layering of README's layout table, read from the source (no imports).

Each row of the table may import the rows above it and its own, never a
row below; `advjax` never imports `benchmarks`; a benchmark config never
imports another config (only `benchmarks.peers`).
"""
import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# README's layout table, top to bottom: the first part of an advjax module
# name (`advjax.<part>...`) -> its row.
ROWS = (
    ("report",),  # formats only: imports no other advjax module
    ("types", "checks"),
    ("losses", "projections", "rng", "special", "sinkhorn", "transforms"),
    ("attacks",),
    ("models", "data", "sharding", "checkpoint"),
    ("zoo",),
    ("training",),
    ("evaluation",),
    ("analysis",),
    ("run",),
)
ROW = {part: i for i, parts in enumerate(ROWS) for part in parts}


def _modules(folder):
  for base, _, files in os.walk(os.path.join(ROOT, folder)):
    for f in sorted(files):
      if f.endswith(".py"):
        path = os.path.join(base, f)
        yield os.path.relpath(path, ROOT), path


def _imports(path):
  """The absolute module names `path` imports (any depth: also inside
  functions)."""
  with open(path, encoding="utf-8") as f:
    tree = ast.parse(f.read(), path)
  names = []
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names += [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
      names += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
  return names


def _row(module_path):
  """The row of an advjax file ('advjax/attacks/cw.py' -> attacks')."""
  parts = module_path[:-len(".py")].split(os.sep)[1:]
  if parts == ["__init__"]:
    return None  # the package's re-exports sit above every row
  return ROW[parts[0]]


def test_every_advjax_module_has_a_row():
  for rel, _ in _modules("advjax"):
    parts = rel[:-len(".py")].split(os.sep)[1:]
    assert parts == ["__init__"] or parts[0] in ROW, (
        f"{rel} is in no row of README's layout table (tests/test_layout.py "
        "ROWS): add it to both.")


@pytest.mark.parametrize("rel,path", list(_modules("advjax")))
def test_advjax_imports_only_its_row_and_those_above(rel, path):
  row = _row(rel)
  for name in _imports(path):
    top = name.split(".")
    assert top[0] != "benchmarks", f"{rel} imports {name}"
    if top[0] != "advjax" or len(top) < 2 or row is None:
      continue
    target = ROW.get(top[1])
    if target is None:  # `from advjax import <public name>` of __init__
      continue
    assert target <= row, (
        f"{rel} (row {ROWS[row]}) imports {name} (row {ROWS[target]}), a "
        "row below it in README's layout table.")


def test_no_benchmark_config_imports_another():
  configs = {os.path.basename(p)[:-3] for _, p in _modules("benchmarks")
             if os.path.dirname(p) == os.path.join(ROOT, "benchmarks")}
  for rel, path in _modules("benchmarks"):
    for name in _imports(path):
      parts = name.split(".")
      if parts[0] == "benchmarks" and len(parts) > 1:
        assert parts[1] not in configs, f"{rel} imports {name}"


def test_every_benchmark_config_is_at_most_300_lines():
  """A config declares a study; past 300 lines it is writing library code
  (issue 26): move the logic into `advjax` instead."""
  folder = os.path.join(ROOT, "benchmarks")
  long = {}
  for name in sorted(os.listdir(folder)):
    if name.endswith(".py"):
      with open(os.path.join(folder, name), encoding="utf-8") as f:
        lines = len(f.read().splitlines())
      if lines > 300:
        long[name] = lines
  assert not long, long
