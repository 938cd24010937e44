"""The README's API example runs as written."""
import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.slow  # end-to-end: the README example runs PGD and AutoAttack on all 360 digits; CI runs it (README)
def test_readme_api_example_runs(capsys):
  text = README.read_text()
  blocks = re.findall(r"```python\n(.*?)```", text, re.S)
  assert blocks, "README has no python example"
  exec(compile(blocks[0], "README.md", "exec"), {})  # noqa: S102
  out = capsys.readouterr().out
  assert "| clean |" in out


def test_readme_test_command_is_marked_for_ci():
  text = README.read_text()
  m = re.search(r"<!-- ci: test command -->\n```bash\n(.+)\n```", text)
  assert m and "pytest" in m.group(1)


def test_documented_flags_of_config_benchmarks_parse():
  """Every `python -m benchmarks.<name> ...` command README gives for a
  benchmark on the runner parses into its config (placeholders DIR and N
  filled)."""
  import importlib
  import shlex
  from advjax import run
  text = README.read_text()
  seen = 0
  for name, flags in re.findall(r"python -m benchmarks\.(\w+)([^`|\n)]*)",
                                text):
    module = importlib.import_module(f"benchmarks.{name}")
    if not hasattr(module, "BENCHMARK"):
      continue
    argv = [{"DIR": "/tmp/x", "N": "3"}.get(t, t)
            for t in shlex.split(flags.replace("#", " # ").split(" # ")[0])]
    bench = module.BENCHMARK
    if isinstance(bench, run.Timing):  # a timing benchmark: no presets
      run.check_config(run.parse_config(bench.config, argv, prog=name))
    else:
      args = vars(run.make_parser(bench).parse_args(argv))
      args.pop("distributed")
      bench.config(**args)
    seen += 1
  assert seen >= 3, seen


RESULTS = README.parent / "benchmarks" / "results"


def _madry_rows(text: str) -> dict:
  """The README's Madry-on-digits headline table: model -> its cells."""
  section = text.split("### Madry et al. on digits (measured)")[1]
  rows = re.findall(r"^\| (standard|madry) \| (.+) \|$", section.split(
      "\n### ")[0], re.M)
  out = {}
  for model, cells in rows:  # the first table (the eps curve follows)
    out.setdefault(model, [c.strip() for c in cells.split("|")])
  return out


def test_readme_headline_numbers_are_the_committed_results():
  """The README's Madry table (clean, PGD, AutoAttack) is the committed
  digits run's results.json, rounded as printed: the two cannot drift."""
  import json
  results = json.loads((RESULTS / "madry-digits" / "results.json")
                       .read_text())["models"]
  rows = _madry_rows(README.read_text())
  assert set(rows) == {"standard", "madry"}
  for model, cells in rows.items():
    r = results[model]
    want = [r["clean_accuracy"], r["robust_accuracy"],
            r["autoattack"]["robust_accuracy"]]
    assert cells[:3] == [f"{100 * v:.1f} %" for v in want], (model, cells)


def test_readme_seed_spread_is_the_committed_seed_runs():
  """The README's mean (range) over seeds 0-2 is computed from the three
  committed runs' results.json."""
  import json
  runs = [json.loads((RESULTS / d / "results.json").read_text())["models"]
          for d in ("madry-digits", "madry-digits-seed1",
                    "madry-digits-seed2")]
  text = README.read_text().split("### Madry et al. on digits (measured)")[1]
  for model in ("standard", "madry"):
    cells = re.search(rf"^\| {model}, seeds 0-2 \| (.+) \|$", text,
                      re.M).group(1).split(" | ")
    for cell, read in zip(cells, (
        lambda r: r["clean_accuracy"], lambda r: r["robust_accuracy"],
        lambda r: r["autoattack"]["robust_accuracy"])):
      v = [100 * read(r[model]) for r in runs]
      assert cell == (f"{sum(v) / 3:.1f} % ({min(v):.1f}-{max(v):.1f})"), (
          model, cell)
