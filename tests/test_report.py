"""Tests for advjax/report: claims with thresholds and verdicts, published
rows beside ours, figure kinds drawn to PNGs, the rendered report."""
import dataclasses
import json
import os

import numpy as np
import pytest

from advjax import report


@dataclasses.dataclass(frozen=True)
class Cfg:
  dataset: str = "digits"
  eps: float = 0.3


RESULTS = {"models": {"standard": {"robust": 0.01, "clean": 0.97},
                      "madry": {"robust": 0.59, "clean": 0.98}}}


def test_thresholds():
  assert report.at_least(0.2)(0.2) and not report.above(0.2)(0.2)
  assert report.at_most(1.1)(1.1) and not report.below(1.1)(1.1)
  assert report.between(0, 1)(0.5) and not report.between(0, 1)(1.5)
  for t in (report.at_least(0), report.at_most(0), report.between(-1, 1)):
    assert not t(float("nan"))  # NaN never meets a threshold
  assert str(report.at_least(0.2)) == ">= 0.2"
  assert str(report.between(1, 2)) == "in [1, 2]"
  with pytest.raises(ValueError, match="low 2 > high 1"):
    report.between(2, 1)


def test_claims_judge_holds_partly_fails_with_their_rule():
  gap = report.Claim(
      "adversarial training keeps robust accuracy far above standard's",
      lambda cfg, r: r["models"]["madry"]["robust"]
      - r["models"]["standard"]["robust"], report.above(0.2),
      partly=report.above(0.05), quantity="robust accuracy gap")
  v, = gap.judge(Cfg(), RESULTS)
  assert v.verdict == report.HOLDS and v.holds
  assert v.rule == "holds if robust accuracy gap > 0.2; partly if > 0.05"
  assert v.evidence == "0.58"
  for robust, verdict in ((0.1, report.PARTLY), (0.02, report.FAILS)):
    r = {"models": {**RESULTS["models"],
                    "madry": {"robust": robust, "clean": 0.98}}}
    assert gap.judge(Cfg(), r)[0].verdict == verdict
  # Per label, with evidence; None entries and None measures are left out.
  each = report.Claim("clean accuracy above 90 %", lambda cfg, r: {
      n: report.Measured(m["clean"], f"{100 * m['clean']:.0f} %")
      for n, m in r["models"].items()} | {"absent": None},
                      report.at_least(0.9))
  got = each.judge(Cfg(), RESULTS)
  assert [(v.text, v.evidence) for v in got] == [
      ("clean accuracy above 90 % (standard)", "97 %"),
      ("clean accuracy above 90 % (madry)", "98 %")]
  assert report.Claim("n/a", lambda cfg, r: None).judge(Cfg(), RESULTS) == []
  # Without a threshold the measure is a bool.
  assert report.Claim("b", lambda c, r: False).judge(Cfg(), {})[0].verdict == (
      report.FAILS)
  with pytest.raises(TypeError, match="must return a bool"):
    report.Claim("x", lambda c, r: "text").judge(Cfg(), {})
  assert report.Verdict("t", "partly").asdict()["holds"] is False


def test_cells_and_tables():
  assert report.cell(0.5, "%") == "50.0 %" and report.cell(None) == "-"
  # NaN (an undefined rate) reads as None does.
  assert report.cell(float("nan"), "%") == report.cell(np.float32("nan")) == "-"
  assert report.cell(89.6, "%", scale=False) == "89.6 %"
  assert report.cell(True) == "yes" and report.cell(np.int64(3)) == "3"
  assert report.cell(0.123456) == "0.1235" and report.cell(0.5, ".3f") == "0.500"
  assert report.cell(2.5, "s") == "2.5 s"
  assert report.table(("a", "b"), [(1, 2)]) == (
      "| a | b |\n|---|---:|\n| 1 | 2 |")
  with pytest.raises(ValueError, match="a row of 1 cells under 2 columns"):
    report.table(("a", "b"), [(1,)])
  t = report.Table(("m", "acc"), [("x", 0.25)], caption="Accuracy:")
  assert t.markdown() == "Accuracy:\n\n| m | acc |\n|---|---:|\n| x | 0.25 |"
  assert report.render_blocks(["# T", "", None, t]).startswith("# T\n\nAcc")
  assert report.percent(0.1234) == "12.3" and report.percent(None) == "-"
  assert report.jsonable({"x": np.arange(2), 1: (np.float32(0.5),),
                          "v": report.Verdict("t", "holds")}) == {
      "x": [0, 1], "1": [0.5],
      "v": {"text": "t", "verdict": "holds", "evidence": "", "rule": ""}}


def test_published_rows_beside_ours():
  rows = [report.Published("Madry et al. 2018", "MNIST, eps 0.3", 89.6,
                           "robust accuracy", dataset="mnist",
                           ours=lambda cfg, r: r["models"]["madry"]["robust"]),
          report.Published("D'Costa", "CIFAR-10", "a sharp drop after eps"),
          report.Published("X", "Y", 1.5, "ratio", unit="x",
                           ours=lambda cfg, r: r["models"]["absent"]["a"])]
  md = report.published_table(rows, Cfg(), RESULTS).markdown()
  assert "| Madry et al. 2018 | MNIST, eps 0.3 | robust accuracy | 89.6 % " \
         "| 59.0 % |" in md
  assert "| D'Costa | CIFAR-10 |  | a sharp drop after eps | - |" in md
  assert "| X | Y | ratio | 1.5 x | - |" in md  # a model not run: '-'
  assert "this run (digits)" in md
  # A CIFAR-10 number is not printed beside a digits run's; digits stand
  # in for MNIST only.
  cifar = rows[0]._replace(dataset="cifar10")
  md = report.published_table([cifar], Cfg(), RESULTS).markdown()
  assert md.endswith("| 89.6 % | - |")
  assert report.comparable("mnist", "digits")
  assert report.comparable("cifar10", "cifar10")
  assert report.comparable(None, "digits") and report.comparable("mnist", None)
  assert not report.comparable("cifar10", "digits")
  assert not report.comparable("digits", "mnist")
  cifar_study = {"digits": ("cifar10",)}  # a report's own stand-ins
  assert report.comparable("cifar10", "digits", cifar_study)
  assert not report.comparable("mnist", "digits", cifar_study)
  md = report.published_table([cifar], Cfg(), RESULTS,
                              stand_ins=cifar_study).markdown()
  assert md.endswith("| 89.6 % | 59.0 % |")


@pytest.mark.parametrize("figure", [
    report.Line({"a": [0.1, 0.5], "b": ([1., 3.], [0.2, 0.3])}, x=[1, 2],
                percent=True, vlines=[(1.5, "eps")], styles={"a": "o-"},
                logx=True),
    report.Bar(["x", "y"], {"s": [0.2, 0.4], "t": [0.1, 0.9]}, percent=True),
    report.Bar(["x"], {"s": [3.]}, horizontal=True),
    report.Scatter({"p": ([1, 10, -1], [2, 20, 3])}, logx=True, logy=True,
                   diagonal=True),
    report.Heatmap(np.eye(3) * 0.5, ["a", "b", "c"], ["a", "b", "c"],
                   percent=True, colorbar="%"),
    report.Histogram({"u": np.random.default_rng(0).random(100) + 0.01,
                      "b": report.Binned([1, 5, 2], [0., 1., 2., 3.])},
                     logx=True, logy=True),
    report.Box([[1, 2, 3], [], [2, 2]], [0, 1, 2]),
    report.Image(np.zeros((8, 8, 1)), "zero"),
    report.image_grid([np.ones((4, 4, 3)) * 0.5] * 3, ["a", "b"], ncols=2,
                      title="grid"),
    report.Panels([report.Line({"a": [1, 2]}), report.Image(np.eye(4))],
                  title="two"),
])
def test_every_figure_kind_draws_a_png(tmp_path, figure):
  path = str(tmp_path / "f.png")
  report.draw(figure, path)
  with open(path, "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_draw_refuses_an_unknown_kind(tmp_path):
  with pytest.raises(TypeError, match="Cannot draw a dict"):
    report.draw(report.Panels([{}]), str(tmp_path / "x.png"))


def test_render_and_write(tmp_path):
  rep = report.Report(
      title="{dataset} at eps {eps}",
      body=lambda cfg, r: ["Some text.", report.Table(
          ("model", "clean"), [(n, report.cell(m["clean"], "%"))
                               for n, m in r["models"].items()])],
      published=[report.Published("P", "S", 90., "clean", ours=lambda c, r:
                                  r["models"]["madry"]["clean"])],
      claims=[report.Claim("robust", lambda c, r: r["models"]["madry"][
          "robust"], report.at_least(0.5))],
      figures=lambda c, r: {"f.png": report.Line({"a": [1, 2]})})
  out = report.render(rep, Cfg(), RESULTS)
  assert out.markdown.startswith("# digits at eps 0.3\n\nSome text.")
  assert "## Published numbers" in out.markdown
  assert "## Claims checked (1 holds, 0 partly, 0 fails)" in out.markdown
  assert "![f.png](f.png)" in out.markdown
  paths = report.write(str(tmp_path), {**RESULTS, "table": "x"}, out)
  assert [os.path.basename(p) for p in paths] == ["results.json",
                                                  "results.md", "f.png"]
  saved = json.load(open(paths[0]))
  assert "table" not in saved
  assert saved["claims"][0]["verdict"] == "holds" and saved["claims"][0][
      "holds"]
  assert open(paths[1]).read() == out.markdown + "\n"


def test_paths_differences_ratios_and_applies():
  cfg = Cfg()
  assert report.lookup("models.madry.robust", cfg, RESULTS) == 0.59
  assert report.lookup("models.{dataset}", Cfg(dataset="madry"),
                       RESULTS)["clean"] == 0.98
  with pytest.raises(KeyError, match="no 'absent'"):
    report.lookup("models.absent.robust", cfg, RESULTS)
  assert report.get_path({"a": [1, {"b": 2}]}, "a.1.b") == 2
  assert report.get_path({"a": []}, "a.3", None) is None
  gap = report.difference("models.madry.robust", "models.standard.robust",
                          "%")(cfg, RESULTS)
  assert gap.value == pytest.approx(0.58) and gap.evidence == "59.0 % vs 1.0 %"
  r = report.ratio("models.madry.clean", lambda c, res: 0.5)(cfg, RESULTS)
  assert r.value == pytest.approx(1.96) and r.evidence == "0.98 / 0.5"
  claim = report.Claim("gain", "models.madry.robust", report.above(0.5),
                       applies=lambda c, res: "madry" in res["models"])
  assert claim.judge(cfg, RESULTS)[0].verdict == report.HOLDS
  assert claim.judge(cfg, {"models": {}}) == []  # does not apply


def test_records_and_curve_tables():
  t = report.records_table(RESULTS["models"], [
      ("clean", "clean", "%"), ("robust", lambda m: m["robust"] * 2, ".2f"),
      ("missing", "nothing.here", "%")])
  assert t.markdown().splitlines() == [
      "| model | clean | robust | missing |", "|---|---:|---:|---:|",
      "| standard | 97.0 % | 0.02 | - |", "| madry | 98.0 % | 1.18 | - |"]
  c = report.curve_table([0., 0.1], {"a": [1., 0.5], "b": [0.9, 0.25]},
                         caption="Accuracy:")
  assert c.markdown().splitlines()[3:] == [
      "|---|---:|---:|", "| 0 | 100.0 % | 90.0 % |",
      "| 0.1 | 50.0 % | 25.0 % |"]


def test_rows_table_one_row_per_record():
  rows = [{"a": "x", "v": 0.25, "n": {"k": 3}}, {"a": "y", "v": None}]
  t = report.rows_table(rows, [("a", "a", ""), ("v", "v", ".2f"),
                               ("k", "n.k", ""), ("twice", lambda r: (
                                   "-" if r["v"] is None else 2 * r["v"]),
                                                 "%")], align="lrrr")
  assert t.markdown().splitlines() == [
      "| a | v | k | twice |", "|---|---:|---:|---:|",
      "| x | 0.25 | 3 | 50.0 % |", "| y | - | - | - |"]


def test_present_leaves_out_a_claim_on_what_the_run_lacks():
  """`report.present`: a measure reading a model the run did not train
  (a KeyError) leaves its claim out; present ones are judged as before."""
  gap = lambda a: report.Claim(
      f"{a} above standard", report.present(report.difference(
          f"models.{a}.robust", "models.standard.robust", "%")),
      report.above(0.))
  v, = gap("madry").judge(Cfg(), RESULTS)
  assert v.verdict == report.HOLDS and v.evidence == "59.0 % vs 1.0 %"
  assert gap("trades").judge(Cfg(), RESULTS) == []
  assert report.present("models.madry.clean")(Cfg(), RESULTS) == 0.98
  with pytest.raises(KeyError):  # without it, a missing path is an error
    report.difference("models.trades.robust", "models.madry.robust")(
        Cfg(), RESULTS)


def test_fields_table_sets_records_side_by_side():
  t = report.fields_table(
      {"a": {"n": 3, "frac": 0.25, "eps": 0.031, "ok": True, "xs": [1, 2],
             "none": None},
       "b": {"n": 4, "frac": 0.5, "eps": 0.1, "ok": False}},
      float_unit="%", units={"eps": ".3f"}, first="field")
  assert t.header == ("field", "a", "b")
  # Lists and dicts are left out; a field the other record lacks is '-'.
  assert [r[0] for r in t.rows] == ["n", "frac", "eps", "ok", "none"]
  assert t.rows[:4] == [("n", "3", "4"), ("frac", "25.0 %", "50.0 %"),
                        ("eps", "0.031", "0.100"), ("ok", "yes", "no")]
  assert t.rows[4] == ("none", "-", "-")
  assert report.fields_table({}).rows == []


def test_perturbation_images_keep_their_scale_in_a_grid(tmp_path):
  d = np.zeros((4, 4, 3))
  d[0, 0] = (0.3, 0.3, 0.0)
  im = report.perturbation(d, "delta")
  assert im.image.shape == (4, 4) and im.cmap == "seismic"
  assert (im.vmin, im.vmax) == pytest.approx((-0.2, 0.2))
  assert report.perturbation(np.zeros((2, 2))).vmax > 0  # never a 0 range
  grid = report.image_grid([np.zeros((4, 4)), im], ["clean", ""])
  assert grid.panels[0].cmap == "gray" and grid.panels[1] == im
  assert report.image_grid([im], ["renamed"]).panels[0].title == "renamed"
  report.draw(grid, str(tmp_path / "grid.png"))
  assert os.path.getsize(tmp_path / "grid.png") > 0


def test_paths_index_lists_and_the_arrays_of_in_memory_results():
  results = {"extra": {"pred": np.array([7, 7, 5]), "ok": [1, 2]}}
  assert report.get_path(results, "extra.pred.2") == 5
  assert report.get_path(results, "extra.ok.0") == 1
  assert report.lookup("extra.pred.1", None, results) == 7
  assert report.get_path(results, "extra.pred.9", None) is None
  with pytest.raises(KeyError, match="pred"):
    report.get_path(results, "extra.pred.x")


def test_published_percentages_keep_their_digits():
  rows = [report.Published("G", "MNIST", v, "error") for v in (0.94, 87.15,
                                                               99, 98.5)]
  md = report.published_table(rows).markdown()
  for text in ("| 0.94 % |", "| 87.15 % |", "| 99.0 % |", "| 98.5 % |"):
    assert text in md, text
