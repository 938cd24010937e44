"""Tests for benchmarks/spatial.py (Engstrom et al.'s evaluation): the real
config, shrunk, through the runner; its claims on hand-made results."""
import json
import os

import pytest

from advjax import data, report, run, training
from advjax.evaluation.spatial import ATTACKS
from benchmarks import spatial as S


def test_presets_scale_shifts_and_share_the_wasserstein_training():
  digits = run.resolve(S.BENCHMARK, S.SpatialConfig())
  assert digits.shift_scale == pytest.approx(8 / 28)
  sweep = S.evals(digits, None)["spatial"]
  assert sweep.ranges[0][1] * sweep.scale == pytest.approx(0.857, abs=1e-3)
  for k in ("model", "epochs", "batch_size", "optimizer", "learning_rate",
            "schedule"):
    assert getattr(digits, k) == training.recipes.WASSERSTEIN["digits"][k], k
  assert run.resolve(S.BENCHMARK, S.SpatialConfig(epochs=3)).workdir == (
      os.path.join("runs", "spatial-digits"))
  assert digits.threat_models == ((30., 3.), (20., 3.), (10., 3.), (5., 1.))
  # The grid: 0.5 degree and 1 nominal px steps, odd (identity included).
  assert sweep.grids() == [[121, 7, 7], [81, 7, 7], [41, 7, 7], [21, 3, 3]]
  mnist = run.resolve(S.BENCHMARK, S.SpatialConfig(dataset="mnist"))
  assert mnist.shift_scale == 1.
  assert run.resolve(S.BENCHMARK, S.SpatialConfig(
      shift_scale=0.5)).shift_scale == 0.5
  # Pairs on the command line: '30:3,5:1'.
  args = vars(run.make_parser(S.BENCHMARK).parse_args(
      ["--threat-models", "30:3,5:1", "--models", "standard,spatial",
       "--train-range", "20,2"]))
  assert args["threat_models"] == ((30., 3.), (5., 1.))
  assert args["models"] == ("standard", "spatial")
  assert args["train_range"] == (20., 2.)
  # Engstrom et al.'s Aug. 40 (40 degrees, 4 px) and the crop of CIFAR-10's
  # standard training (pad 4 of 32 px: 1 px on the digits), in pixels.
  specs = S.models(digits, None)
  assert list(specs) == list(S.MODELS)
  assert specs["augment40"].settings == dict(
      train_max_angle=40., train_max_shift=pytest.approx(4 * 8 / 28))
  assert specs["crop"].settings == {"crop_pad": 1}
  assert specs["crop"].method.name == "random_crop"
  cifar = run.resolve(S.BENCHMARK, S.SpatialConfig(dataset="cifar10"))
  assert S.models(cifar, None)["crop"].settings == {"crop_pad": 4}
  labels = {f"{a:g}:{s:g}" for a, s in digits.threat_models}
  assert set(S.DCOSTA_GRID) <= labels
  assert all(row[2] in S.MODELS for row in S.ENGSTROM)


def _results(standard, wasserstein, grid=(0., 0.75), ranges=("30:3", "5:1")):
  acc = lambda g: {"natural": .97, "random": .9, "worst_of_k": .5,
                   "first_order": .6, "grid": g}
  model = lambda bits, g: {"spatial": {
      "accuracy": {tm: acc(v) for tm, v in zip(ranges, g)},
      "grid_correct": dict(zip(ranges, bits))}}
  return {"models": {"standard": model(standard, grid),
                     "wasserstein": model(wasserstein, (0., 0.5))}}


def test_published_claims_say_plainly_where_the_run_disagrees():
  """Counts of images the vanilla net gets right and the Wasserstein net
  wrong, and Table 2's ordering, judged on the numbers; claims about models
  the run did not train are left out."""
  cfg = run.resolve(S.BENCHMARK, S.SpatialConfig(
      threat_models=((30., 3.), (5., 1.)), models=("standard",
                                                   "wasserstein")))
  results = _results(("0000", "1110"), ("0000", "0011"))
  assert S.disagreements(results) == {"30:3": (0, 0, 0, 4),
                                      "5:1": (2, 1, 1, 0)}
  verdicts = {v.text: v for v in report.judge_all(S.CLAIMS, cfg, results)}
  table2 = next(v for t, v in verdicts.items() if "Table 2" in t)
  assert table2.text.endswith("(5:1)") and table2.verdict == report.FAILS
  assert "50.0 % vs 75.0 %" in table2.evidence
  single = next(v for t, v in verdicts.items() if "not a single image" in t)
  assert single.verdict == report.FAILS and single.evidence == "2"
  # 30:3 is no Table 2 range; Aug. 30, crops and worst-of-10 were not run.
  assert not any("(30:3)" in t for t in verdicts)
  assert not any("Aug. 30" in t or "crops" in t or "worst-of-10" in t
                 for t in verdicts)
  weak = next(v for t, v in verdicts.items() if "Linf-robust" in t)
  assert weak.verdict == report.HOLDS
  # The same run where the Wasserstein net is right wherever the vanilla
  # one is: the claim holds.
  results = _results(("0000", "0010"), ("0000", "0011"), (0., 0.25))
  verdicts = {v.text: v for v in report.judge_all(S.CLAIMS, cfg, results)}
  assert next(v for t, v in verdicts.items()
              if "not a single image" in t).verdict == report.HOLDS


@pytest.mark.parametrize("field, value, match", [
    ("threat_models", ((-1., 3.),), "threat_models"),
    ("threat_models", ((30., 3., 1.),), "not \\(degrees, px\\)"),
    ("threat_models", (), "empty"), ("grid_angle_step", 0., "grid_angle"),
    ("eval_k", 0, "eval_k"), ("models", ("standard", "free"), "models"),
    ("models", (), "empty"), ("crop_pad", -1., "crop_pad"),
    ("aug40_range", (-1., 4.), "aug40"),
    ("train_range", (30.,), "not \\(degrees")])
def test_bad_settings_raise(field, value, match):
  with pytest.raises(run.ConfigError, match=match):
    run.resolve(S.BENCHMARK, S.SpatialConfig(**{field: value}))


def test_unknown_dataset_and_missing_data_say_what_to_do(tmp_path):
  with pytest.raises(ValueError, match="No spatial preset"):
    run.resolve(S.BENCHMARK, S.SpatialConfig(dataset="imagenet"))
  with pytest.raises(data.DatasetNotFoundError):
    run.run(S.BENCHMARK, S.SpatialConfig(
        dataset="mnist", data_dir=str(tmp_path / "x"), workdir=str(tmp_path),
        progress=False))


@pytest.mark.slow  # end-to-end; CI runs it (README)
def test_run_writes_the_report_and_reloads_trained_models(tmp_path):
  names = ("standard", "crop", "augment40", "wasserstein", "spatial")
  cfg = S.SpatialConfig(dataset="synthetic", models=names,
                        train_limit=128, eval_limit=32,
                        eval_batch_size=32,
                        threat_models=((30., 3.), (5., 1.)),
                        figure_examples=3, workdir=str(tmp_path),
                        progress=False)
  res = run.run(S.BENCHMARK, cfg)
  for name in ("results.json", "results.md", "spatial_accuracy.png",
               "worst_transforms.png"):
    assert os.path.getsize(tmp_path / name) > 0, name
  saved = json.load(open(tmp_path / "results.json"))
  assert list(saved["models"]) == list(names)
  assert S.evals(run.resolve(S.BENCHMARK, cfg), None)[
      "spatial"].grids()[0] == [7, 3, 3]
  methods = {"standard": "standard", "crop": "random_crop",
             "augment40": "spatial_augment",
             "wasserstein": "wasserstein_adaptive", "spatial": "spatial"}
  for name, r in saved["models"].items():
    assert r["method"] == methods[name]
    assert r["resumed_from"] is None
    acc = r["spatial"]["accuracy"]
    assert list(acc) == ["30:3", "5:1"]
    assert set(acc["30:3"]) == set(ATTACKS)
    assert all(0 <= a <= 1 for a in acc["30:3"].values())
    for tm, bits in r["spatial"]["grid_correct"].items():  # a bit per image
      assert len(bits) == 32 and set(bits) <= {"0", "1"}
      assert bits.count("1") / 32 == pytest.approx(acc[tm]["grid"])
    assert all(len(v) == 3 for v in r["spatial"]["worst"].values())
  assert len(saved["extra"]["x"]) == len(saved["extra"]["y"]) == 3
  for name in names:
    assert f"| {name} |" in res["table"]
  assert "0.857 px used" in res["table"]
  assert "## Published numbers" in res["table"]
  texts = [c["text"] for c in saved["claims"]]
  assert any("not a single image" in t for t in texts)
  assert any("random crops" in t for t in texts)
  # The report is rewritten from results.json alone.
  again = run.rewrite_report(S.BENCHMARK, str(tmp_path))
  assert again["table"] == res["table"]
  again = run.run(S.BENCHMARK, cfg)  # finished models are loaded
  for name, r in again["models"].items():
    assert r["resumed_from"] == 4  # 128 // 32 steps
    assert r["spatial"] == saved["models"][name]["spatial"]
