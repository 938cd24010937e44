"""Tests for advjax.experiments.train_speed (tiny sizes, ~30-50 s)."""
import json
import math

import pytest

from advjax.experiments import train_speed

TINY = dict(batch=16, image_shape=(8, 8, 1), pgd_steps=2, repeats=1,
            devices=2, digits_epochs=2, digits_limit=128, progress=False)


@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory):
  out_dir = tmp_path_factory.mktemp("train_speed")
  config = train_speed.TrainSpeedConfig(out_dir=str(out_dir), **TINY)
  return train_speed.run(config), out_dir


def _positive(value):
  return math.isfinite(value) and value > 0


def test_run_structure(tiny_results):
  results, _ = tiny_results
  for key in ("config", "machine", "one_device", "multi_device", "digits",
              "notes", "seconds", "table"):
    assert key in results
  assert results["machine"]["cpu_count"] >= 1
  assert isinstance(results["machine"]["gpu_used"], bool)
  one = results["one_device"]
  assert set(one["rows"]) == set(train_speed.METHODS)
  assert one["rows"]["standard"]["gradient_passes"] == 1
  assert one["rows"]["madry"]["gradient_passes"] == 1 + TINY["pgd_steps"]
  assert one["ideal_ratio"] == 1 + TINY["pgd_steps"]
  multi = results["multi_device"]
  assert multi["devices"] == TINY["devices"]
  assert multi["jax_device_count"] >= TINY["devices"]
  assert {(r["method"], r["devices"]) for r in multi["rows"]} == {
      (m, d) for m in train_speed.METHODS for d in (1, TINY["devices"])}
  digits = results["digits"]
  assert digits["train_images"] == TINY["digits_limit"]
  assert digits["images_per_epoch"] == 128
  for row in digits["rows"].values():
    assert len(row["epoch_s_all"]) == TINY["digits_epochs"]


def test_rates_positive_and_finite(tiny_results):
  results, _ = tiny_results
  step_rows = (list(results["one_device"]["rows"].values())
               + results["multi_device"]["rows"])
  for row in step_rows:
    for key in ("images_per_s", "ms_per_step", "ms_min", "ms_max",
                "first_call_s"):
      assert _positive(row[key]), (row["method"], key)
    assert row["ms_min"] <= row["ms_per_step"] <= row["ms_max"]
    assert len(row["ms_all"]) == TINY["repeats"]
    assert row["images_per_s"] == pytest.approx(
        TINY["batch"] / (row["ms_per_step"] / 1e3))
  assert _positive(results["one_device"]["madry_over_standard"])
  for row in results["digits"]["rows"].values():
    for key in ("compile_plus_epoch_s", "epoch_s", "images_per_s"):
      assert _positive(row[key]), (row["method"], key)
    assert math.isfinite(row["final_loss"])
  assert _positive(results["digits"]["madry_over_standard"])


def test_multi_device_loss_matches_one_device(tiny_results):
  results, _ = tiny_results
  multi = results["multi_device"]
  for method in train_speed.METHODS:
    check = multi["check"][method]
    assert math.isfinite(check["loss_1_device"])
    assert check["loss_abs_diff"] <= train_speed.LOSS_TOLERANCE, method
  assert multi["loss_max_abs_diff"] <= 1e-5


def test_files_written(tiny_results):
  results, out_dir = tiny_results
  with open(out_dir / "results.json") as f:
    saved = json.load(f)
  assert saved["config"]["batch"] == TINY["batch"]
  assert saved["multi_device"]["check"] == results["multi_device"]["check"]
  md = (out_dir / "results.md").read_text()
  assert md.strip() == results["table"].strip()
  assert "| method | gradient passes | images/s |" in md
  assert "madry (PGD-2)" in md and "2 simulated CPU devices" in md


@pytest.mark.parametrize("change, match", [
    (dict(batch=15), "divisible"),
    (dict(digits_epochs=1), "digits_epochs"),
    (dict(pgd_steps=0), "pgd_steps"),
])
def test_bad_config_raises(tmp_path, change, match):
  config = train_speed.TrainSpeedConfig(out_dir=str(tmp_path),
                                        **{**TINY, **change})
  with pytest.raises(ValueError, match=match):
    train_speed.run(config)
