"""Tests for benchmarks/spatial.py (Engstrom et al.'s evaluation): the real
config, shrunk, through the runner."""
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
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
  # Engstrom et al.'s Aug. 40 (40 degrees, 4 px) and the crop of CIFAR-10's
  # standard training (pad 4 of 32 px: 1 px on the digits).
  assert {"crop", "augment40"} <= set(digits.models)
  assert (digits.aug40_max_angle, digits.aug40_max_shift) == (40., 4.)
  assert S.crop_pixels(digits) == 1
  assert S.crop_pixels(S.resolve(S.SpatialConfig(dataset="cifar10"))) == 4
  assert set(S.DCOSTA_GRID) <= set(digits.threat_models)
  for table in S.ENGSTROM.values():
    assert all(row[0] in S.MODELS for row in table.values())


def test_random_crop_shifts_by_whole_pixels_within_the_pad():
  x = jnp.asarray(np.random.RandomState(0).rand(16, 6, 6, 1), jnp.float32)
  out = np.asarray(S.random_crop(1).attack(None, x, None, eps=0.,
                                           key=jax.random.key(0)))
  pad = np.pad(np.asarray(x), ((0, 0), (1, 1), (1, 1), (0, 0)))
  crops = [pad[:, 1 - dy:7 - dy, 1 - dx:7 - dx] for dy in (-1, 0, 1)
           for dx in (-1, 0, 1)]
  for b in range(16):  # each image is one of the 9 zero-filled shifts
    assert min(np.abs(out[b] - c[b]).max() for c in crops) < 1e-5


def test_published_claims_say_plainly_where_the_run_disagrees():
  """Counts of images the vanilla net gets right and the Wasserstein net
  wrong, and Table 2's ordering, judged on the numbers."""
  cfg = S.resolve(S.SpatialConfig(threat_models=((30., 3.), (5., 1.))))
  acc = lambda g: {"natural": .97, "random": .9, "worst_of_k": .5,
                   "first_order": .6, "grid": g}
  ms = {"standard": {"accuracy": [acc(0.), acc(.75)],
                     "grid_correct": ["0000", "1110"]},
        "wasserstein": {"accuracy": [acc(0.), acc(.5)],
                        "grid_correct": ["0000", "0011"]}}
  assert S.disagreements(cfg, ms) == [(0, 0), (2, 1)]
  claims = {c.text: c for c in S.claims(cfg, ms)}
  table2 = next(c for t, c in claims.items() if "Table 2" in t)
  assert not table2.holds and "50.0 vs 75.0 (published 90 vs 83)" in (
      table2.evidence)
  single = next(c for t, c in claims.items() if "not a single image" in t)
  assert not single.holds and "5 deg / 1 px: 2 such image(s)" in (
      single.evidence)


@pytest.mark.parametrize("field, value, match", [
    ("threat_models", ((-1., 3.),), "max_angle"),
    ("threat_models", ((30., 3., 1.),), "each must be"),
    ("threat_models", (), "empty"), ("grid_angle_step", 0., "grid_angle"),
    ("eval_k", 0, "eval_k"), ("models", ("standard", "free"), "models"),
    ("crop_pad", -1., "crop_pad"), ("aug40_max_angle", -1., "aug40"),
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
  assert S.threats(S.resolve(cfg))[0]["grid"] == [7, 3, 3]
  methods = {"standard": "standard", "crop": "random_crop",
             "augment40": "spatial_augment",
             "wasserstein": "wasserstein_adaptive", "spatial": "spatial"}
  for name, r in saved["models"].items():
    assert r["method"] == methods[name]
    assert r["resumed_from"] is None
    acc = r["accuracy"][0]
    assert set(acc) == set(ATTACKS)
    assert all(0 <= a <= 1 for a in acc.values())
    for t, bits in enumerate(r["grid_correct"]):  # one bit per test image
      assert len(bits) == 32 and set(bits) <= {"0", "1"}
      assert bits.count("1") / 32 == pytest.approx(r["accuracy"][t]["grid"])
  assert set(saved["extra"]["figure"]["worst"]) == set(names)
  for name in names:
    assert f"| {name} |" in res["table"]
  assert "0.857 px used" in res["table"]
  assert "Beside Engstrom et al.'s table" in res["table"]
  assert "Beside D'Costa & Sriramanan's Table 2" in res["table"]
  texts = [c["text"] for c in saved["claims"]]
  assert any("not a single image" in t for t in texts)
  assert any("random crops" in t for t in texts)
  again = run.run(S.BENCHMARK, cfg)  # finished models are loaded
  for name, r in again["models"].items():
    assert r["resumed_from"] == 4  # 128 // 32 steps
    assert r["accuracy"] == saved["models"][name]["accuracy"]
