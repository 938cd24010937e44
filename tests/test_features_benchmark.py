"""Tests for benchmarks/features.py (Ilyas et al. 2019): the real config,
shrunk, through the runner. The library pieces (`analysis.construct`,
`features.RobustFeatureToy`, `evaluation.eps_at_accuracy`) have their own
tests in test_features.py and test_curves.py."""
import json
import os

import numpy as np
import pytest

from advjax import data, run, training
from advjax.analysis import features
from benchmarks import features as B


def test_presets_follow_the_paper_and_the_madry_recipe():
  digits = run.resolve(B.BENCHMARK, B.FeaturesConfig())
  assert digits.workdir == os.path.join("runs", "features-digits")
  assert digits.model == training.recipes.MADRY["digits"]["model"]
  assert digits.eval_eps == 1.0 and digits.robust_eps == 1.5
  cifar = run.resolve(B.BENCHMARK, B.FeaturesConfig(dataset="cifar10"))
  # Ilyas et al.'s CIFAR-10 settings (as recalled, see PRESETS).
  assert (cifar.robust_eps, cifar.eval_eps) == (0.5, 0.25)
  assert (cifar.robust_dataset_steps, cifar.robust_dataset_step_size) == (
      1000, 0.1)
  assert (cifar.non_robust_eps, cifar.non_robust_steps,
          cifar.non_robust_step_size) == (0.5, 100, 0.1)
  for k in ("model", "epochs", "optimizer", "learning_rate", "schedule"):
    assert getattr(cifar, k) == training.recipes.MADRY["cifar10"][k], k
  mnist = run.resolve(B.BENCHMARK, B.FeaturesConfig(dataset="mnist"))
  assert mnist.model == "madry_mnist"
  assert run.resolve(B.BENCHMARK, B.FeaturesConfig(eval_eps=0.3)).eval_eps == 0.3
  args = vars(run.make_parser(B.BENCHMARK).parse_args(
      ["--no-toy", "--non-robust-eps", "1/2", "--robust-dataset-start",
       "noise"]))
  assert args["toy"] is False and args["non_robust_eps"] == 0.5
  assert args["robust_dataset_start"] == "noise"
  # The toy is the slides' (features.RobustFeatureToy's defaults).
  assert B.TOY == features.RobustFeatureToy()


@pytest.mark.parametrize("field, value", [
    ("robust_eps", 0.), ("eval_eps", -1.), ("robust_dataset_steps", 0),
    ("non_robust_eps", 0.), ("robust_dataset_start", "zeros"),
    ("eps_grid_points", 1), ("robust_warmup_epochs", -1),
    ("non_robust_step_size", 0.), ("figure_examples", -1)])
def test_bad_settings_raise(field, value):
  with pytest.raises(run.ConfigError, match=field):
    run.resolve(B.BENCHMARK, B.FeaturesConfig(**{field: value}))


def test_unknown_dataset_and_missing_data(tmp_path):
  with pytest.raises(ValueError, match="No features preset"):
    run.resolve(B.BENCHMARK, B.FeaturesConfig(dataset="imagenet"))
  with pytest.raises(data.DatasetNotFoundError):
    run.run(B.BENCHMARK, B.FeaturesConfig(
        dataset="mnist", data_dir=str(tmp_path / "x"), workdir=str(tmp_path),
        progress=False))


@pytest.mark.slow  # end-to-end; CI runs it (README)
def test_run_writes_the_report_and_reloads_models_and_datasets(
    tmp_path, monkeypatch):
  monkeypatch.setattr(B, "TOY", features.RobustFeatureToy(
      size=64, test_size=32, side=4, hidden=(8,), epochs=1, batch_size=16,
      eps_points=4))
  cfg = B.FeaturesConfig(
      dataset="synthetic", train_limit=64, eval_limit=32, epochs=1,
      eval_steps=1, eps_grid_points=3, figure_examples=3,
      workdir=str(tmp_path), progress=False)
  res = run.run(B.BENCHMARK, cfg)
  for name in ("results.json", "results.md", "examples.png",
               "accuracy_vs_eps.png", "toy_accuracy_vs_eps.png"):
    assert os.path.getsize(tmp_path / name) > 0, name
  saved = json.load(open(tmp_path / "results.json"))
  assert list(saved["models"]) == ["standard", "robust", *B.DATASETS]
  for r in saved["models"].values():
    assert r["resumed_from"] is None
    assert 0 <= r["clean_accuracy"] <= 1 and len(r["accuracy"]) == 3
    assert np.isclose(r["eps"][1], run.resolve(B.BENCHMARK, cfg).eval_eps)
    assert r["accuracy"][0] <= r["clean_accuracy"] + 1e-9
    assert r["robust_accuracy"] == r["accuracy"][1]
  assert len(os.listdir(tmp_path / "datasets")) == len(B.DATASETS)
  ex = saved["extra"]
  assert set(ex["datasets"]) == set(B.DATASETS)
  assert 0 <= ex["datasets"]["d_rand"]["success_rate"] <= 1
  eps = run.resolve(B.BENCHMARK, cfg).non_robust_eps
  assert ex["datasets"]["d_det"]["max_distance"] <= eps + 1e-5
  assert np.asarray(ex["figure"]["D"]["images"]).shape == (3, 8, 8, 1)
  assert set(ex["toy"]) == set(features.TOY_MODELS)
  for r in ex["toy"].values():
    assert len(r["accuracy"]) == 4 and 0 <= r["train_accuracy"] <= 1
  for name in B.DATASETS:
    assert f"| {name} |" in res["table"]
  assert "Ilyas et al. 2019" in res["table"]
  assert len(saved["claims"]) == 8  # three of them one per dataset
  # --report-only: the same report from results.json alone.
  os.remove(tmp_path / "examples.png")
  again = run.rewrite_report(B.BENCHMARK, str(tmp_path))
  assert again["table"] == res["table"]
  assert os.path.getsize(tmp_path / "examples.png") > 0
  # A rerun reloads the models and the constructed datasets.
  def fail(*args, **kwargs):
    raise AssertionError("rebuilt a cached dataset")
  monkeypatch.setattr(features, "robust_dataset", fail)
  monkeypatch.setattr(features, "non_robust_dataset", fail)
  rerun = run.run(B.BENCHMARK, cfg.__class__(**{
      **cfg.__dict__, "reuse_evaluations": False, "toy": False}))
  for name, r in rerun["models"].items():
    assert r["resumed_from"] is not None, name
    assert r["clean_accuracy"] == saved["models"][name]["clean_accuracy"]
  assert "toy" not in rerun["extra"]
  assert len(rerun["claims"]) == 7
