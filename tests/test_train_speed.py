"""Tests for benchmarks.train_speed (tiny sizes, ~30-50 s)."""
import dataclasses
import json
import math
import os
import pathlib
import subprocess
import sys

import jax
import pytest

from advjax import run
from benchmarks import train_speed

ROOT = pathlib.Path(__file__).resolve().parents[1]

TINY = dict(batch=16, image_shape=(8, 8, 1), pgd_steps=2, repeats=1,
            devices=2, digits_epochs=2, digits_limit=128, progress=False)


@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory):
  out_dir = tmp_path_factory.mktemp("train_speed")
  config = train_speed.TrainSpeedConfig(workdir=str(out_dir), **TINY)
  return run.run_timing(train_speed.BENCHMARK, config), out_dir


def _positive(value):
  return math.isfinite(value) and value > 0


@pytest.mark.slow  # an end-to-end benchmark run (tiny); CI runs it (README)
def test_run_structure(tiny_results):
  results, _ = tiny_results
  for key in ("config", "machine", "one_device", "multi_device", "digits",
              "seconds", "table", "claims"):
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


@pytest.mark.slow  # an end-to-end benchmark run (tiny); CI runs it (README)
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


@pytest.mark.slow  # an end-to-end benchmark run (tiny); CI runs it (README)
def test_multi_device_loss_matches_one_device(tiny_results):
  results, _ = tiny_results
  multi = results["multi_device"]
  for method in train_speed.METHODS:
    check = multi["check"][method]
    assert math.isfinite(check["loss_1_device"])
    assert check["loss_abs_diff"] <= train_speed.LOSS_TOLERANCE, method
  assert multi["loss_max_abs_diff"] <= 1e-5


@pytest.mark.slow  # an end-to-end benchmark run (tiny); CI runs it (README)
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
  assert [c["verdict"] for c in saved["claims"]] == ["holds"]
  # The report is rewritten from results.json alone, measuring nothing.
  (out_dir / "results.md").write_text("")
  run.rewrite_timing_report(train_speed.BENCHMARK, str(out_dir))
  assert (out_dir / "results.md").read_text() == md


@pytest.mark.parametrize("change, match", [
    (dict(batch=15), "divisible"),
    (dict(digits_epochs=1), "digits_epochs"),
    (dict(pgd_steps=0), "pgd_steps"),
    (dict(image_shape=(8, 8)), "image_shape"),
    (dict(image_shape=(8, 0, 1)), "image_shape"),
])
def test_bad_config_raises(tmp_path, change, match):
  config = train_speed.TrainSpeedConfig(workdir=str(tmp_path),
                                        **{**TINY, **change})
  with pytest.raises(run.ConfigError, match=match):
    run.run_timing(train_speed.BENCHMARK, config)


def test_too_few_devices_fail_before_measuring(tmp_path):
  n = len(jax.devices("cpu")) * 2
  config = train_speed.TrainSpeedConfig(workdir=str(tmp_path), **{
      **TINY, "devices": n, "batch": 2 * n})
  flag = f"XLA_FLAGS=--xla_force_host_platform_device_count={n} python -m"
  with pytest.raises(run.ConfigError, match=flag):
    run.run_timing(train_speed.BENCHMARK, config)
  assert not list(tmp_path.iterdir())
  with pytest.raises(SystemExit, match=flag):
    run.timing_main(train_speed.BENCHMARK, [
        "--workdir", str(tmp_path), "--devices", str(n), "--batch",
        str(2 * n)])


def test_module_sets_the_device_count_when_imported_first():
  """Imported before JAX, the module gives JAX its 8 CPU devices; imported
  after (or with XLA_FLAGS set), it leaves XLA_FLAGS alone."""
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  env["JAX_PLATFORMS"] = "cpu"
  code = ("import benchmarks.train_speed, jax, os; "
          "print(jax.device_count(), os.environ['XLA_FLAGS'])")
  out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT,
                       capture_output=True, text=True, check=True).stdout
  assert out.split() == [
      str(train_speed.DEVICES),
      f"--xla_force_host_platform_device_count={train_speed.DEVICES}"]
  code = ("import jax, benchmarks.train_speed, os; "
          "print(jax.device_count(), os.environ.get('XLA_FLAGS'))")
  out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT,
                       capture_output=True, text=True, check=True).stdout
  assert out.split() == ["1", "None"]


def test_every_config_field_has_a_documented_flag():
  cls = train_speed.TrainSpeedConfig
  helps = run.field_help(cls)
  missing = [f.name for f in dataclasses.fields(cls) if f.name not in helps]
  assert not missing, missing
  config = run.parse_config(train_speed.TrainSpeedConfig, [
      "--image-shape", "8,8,1", "--devices", "0", "--no-progress"],
                            prog="train_speed")
  assert config.image_shape == (8, 8, 1) and config.devices == 0
  assert not config.progress
  readme = (ROOT / "README.md").read_text()
  assert "python -m benchmarks.train_speed`" in readme
