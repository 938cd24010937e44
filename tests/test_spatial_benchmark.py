"""Tests for benchmarks/spatial.py (Engstrom et al.'s evaluation): the real
config, shrunk, through the runner."""
import json
import os

import pytest

from advjax import data, run, training
from advjax.evaluation.spatial import ATTACKS, grid_points
from benchmarks import spatial as S


def test_presets_scale_shifts_and_share_the_wasserstein_training():
  digits = S.resolve(S.SpatialConfig())
  assert digits.shift_scale == pytest.approx(8 / 28)
  assert S.threats(digits)[0]["max_shift"] == pytest.approx(0.857, abs=1e-3)
  for k in ("model", "epochs", "batch_size", "optimizer", "learning_rate",
            "schedule"):
    assert getattr(digits, k) == training.recipes.WASSERSTEIN["digits"][k], k
  assert S.resolve(S.SpatialConfig(epochs=3)).workdir == os.path.join(
      "runs", "spatial-digits")
  assert digits.threat_models == ((30., 3.), (20., 3.), (10., 3.), (5., 1.))
  assert S.threats(digits)[0]["source"] == "Engstrom et al."
  # The grid: 0.5 degree and 1 nominal px steps, odd (identity included).
  assert grid_points(30., 0.5) == 121 and grid_points(3., 1.) == 7
  assert grid_points(0., 1.) == 1
  assert S.resolve(S.SpatialConfig(dataset="mnist")).shift_scale == 1.
  assert S.resolve(S.SpatialConfig(shift_scale=0.5)).shift_scale == 0.5
  # Pairs on the command line: '30:3,5:1'.
  args = vars(run.make_parser(S.BENCHMARK).parse_args(
      ["--threat-models", "30:3,5:1", "--models", "standard,spatial"]))
  assert args["threat_models"] == ((30., 3.), (5., 1.))
  assert args["models"] == ("standard", "spatial")


@pytest.mark.parametrize("field, value, match", [
    ("threat_models", ((-1., 3.),), "max_angle"),
    ("threat_models", ((30., 3., 1.),), "each must be"),
    ("threat_models", (), "empty"), ("grid_angle_step", 0., "grid_angle"),
    ("eval_k", 0, "eval_k"), ("models", ("standard", "free"), "models"),
    ("dataset", "imagenet", "No spatial preset")])
def test_bad_settings_raise(field, value, match):
  with pytest.raises(ValueError, match=match):
    S.resolve(S.SpatialConfig(**{field: value}))


def test_missing_dataset_says_what_to_do(tmp_path):
  with pytest.raises(data.DatasetNotFoundError):
    run.run(S.BENCHMARK, S.SpatialConfig(
        dataset="mnist", data_dir=str(tmp_path / "x"), workdir=str(tmp_path),
        progress=False))


@pytest.mark.slow  # end-to-end; CI runs it (README)
def test_run_writes_the_report_and_reloads_trained_models(tmp_path):
  cfg = S.SpatialConfig(dataset="synthetic", models=("standard", "spatial"),
                        train_limit=128, eval_limit=32,
                        eval_batch_size=32, threat_models=((30., 3.),),
                        figure_examples=3, workdir=str(tmp_path),
                        progress=False)
  res = run.run(S.BENCHMARK, cfg)
  for name in ("results.json", "results.md", "spatial_accuracy.png",
               "worst_transforms.png"):
    assert os.path.getsize(tmp_path / name) > 0, name
  saved = json.load(open(tmp_path / "results.json"))
  assert list(saved["models"]) == ["standard", "spatial"]
  assert S.threats(S.resolve(cfg))[0]["grid"] == [7, 3, 3]
  for name, r in saved["models"].items():
    assert r["method"] == {"standard": "standard", "spatial": "spatial"}[name]
    assert r["resumed_from"] is None
    acc = r["accuracy"][0]
    assert set(acc) == set(ATTACKS)
    assert all(0 <= a <= 1 for a in acc.values())
  assert set(saved["extra"]["figure"]["worst"]) == {"standard", "spatial"}
  for name in ("standard", "spatial"):
    assert f"| {name} |" in res["table"]
  assert "0.857 px used" in res["table"] and len(saved["claims"]) >= 2
  again = run.run(S.BENCHMARK, cfg)  # finished models are loaded
  for name, r in again["models"].items():
    assert r["resumed_from"] == 4  # 128 // 32 steps
    assert r["accuracy"] == saved["models"][name]["accuracy"]
