"""Tests for benchmarks/features.py (Ilyas et al. 2019): the real config,
shrunk, through the runner."""
import json
import os

import numpy as np
import pytest

from advjax import data, run, training
from advjax.analysis import features
from benchmarks import features as B


def test_presets_follow_the_paper_and_the_madry_recipe():
  digits = B.resolve(B.FeaturesConfig())
  assert digits.workdir == os.path.join("runs", "features-digits")
  assert digits.model == training.recipes.MADRY["digits"]["model"]
  assert digits.eval_eps == 1.0 and digits.robust_eps == 1.5
  cifar = B.resolve(B.FeaturesConfig(dataset="cifar10"))
  # Ilyas et al.'s CIFAR-10 settings (as recalled, see PRESETS).
  assert (cifar.robust_eps, cifar.eval_eps) == (0.5, 0.25)
  assert (cifar.robust_dataset_steps, cifar.robust_dataset_step_size) == (
      1000, 0.1)
  assert (cifar.non_robust_eps, cifar.non_robust_steps,
          cifar.non_robust_step_size) == (0.5, 100, 0.1)
  for k in ("model", "epochs", "optimizer", "learning_rate", "schedule"):
    assert getattr(cifar, k) == training.recipes.MADRY["cifar10"][k], k
  assert B.resolve(B.FeaturesConfig(dataset="mnist")).model == "madry_mnist"
  assert B.resolve(B.FeaturesConfig(eval_eps=0.3)).eval_eps == 0.3
  # The eval grid holds the eval eps.
  assert np.any(np.isclose(B.eps_grid(digits), digits.eval_eps))
  args = vars(run.make_parser(B.BENCHMARK).parse_args(
      ["--toy-hidden", "64,32", "--no-toy", "--non-robust-eps", "1/2"]))
  assert args["toy_hidden"] == (64, 32) and args["toy"] is False
  assert args["non_robust_eps"] == 0.5


@pytest.mark.parametrize("field, value, match", [
    ("robust_eps", 0., "robust_eps"), ("eval_eps", -1., "eval_eps"),
    ("robust_dataset_steps", 0, "robust_dataset_steps"),
    ("non_robust_eps", 0., "non_robust_eps"),
    ("robust_dataset_start", "zeros", "robust_dataset_start"),
    ("eps_grid_points", 1, "eps_grid_points"),
    ("toy_eps_max", 1e-4, "toy_eps_max"), ("toy_noise", 0.3, "toy_noise"),
    ("toy_hidden", (0,), "toy_hidden"), ("toy_size", 0, "toy_size"),
    ("dataset", "imagenet", "No features preset")])
def test_bad_settings_raise(field, value, match):
  with pytest.raises(ValueError, match=match):
    B.resolve(B.FeaturesConfig(**{field: value}))


def test_missing_dataset_says_what_to_do(tmp_path):
  with pytest.raises(data.DatasetNotFoundError):
    run.run(B.BENCHMARK, B.FeaturesConfig(
        dataset="mnist", data_dir=str(tmp_path / "x"), workdir=str(tmp_path),
        progress=False))


def test_eps_at_half():
  grid = np.array([0.01, 0.1, 1.])
  assert B.eps_at_half(grid, [1., 0.6, 0.2]) == 1.
  assert B.eps_at_half(grid, [0.9, 0.5, 0.]) == 0.1  # at most 50 %
  assert B.eps_at_half(grid, [0.4, 0.3, 0.]) == 0.01
  assert B.eps_at_half(grid, [1., 0.9, 0.8]) == float("inf")


@pytest.mark.slow  # end-to-end; CI runs it (README)
def test_run_writes_the_report_and_reloads_models_and_datasets(
    tmp_path, monkeypatch):
  cfg = B.FeaturesConfig(
      dataset="synthetic", train_limit=64, eval_limit=32, epochs=1,
      eval_steps=1, eps_grid_points=3, toy_size=64, toy_test_size=32,
      toy_side=4, toy_hidden=(8,), toy_epochs=1, toy_batch_size=16,
      toy_eps_points=4,
      figure_examples=3, workdir=str(tmp_path), progress=False)
  res = run.run(B.BENCHMARK, cfg)
  for name in ("results.json", "results.md", "examples.png",
               "accuracy_vs_eps.png", "toy_accuracy_vs_eps.png"):
    assert os.path.getsize(tmp_path / name) > 0, name
  saved = json.load(open(tmp_path / "results.json"))
  names = ["standard", "robust", *B.DATASETS, *B.TOY_MODELS]
  assert list(saved["models"]) == names
  for name, r in saved["models"].items():
    assert r["resumed_from"] is None
    assert 0 <= r["clean_accuracy"] <= 1
    assert len(r["accuracy_vs_eps"]) == (4 if name in B.TOY_MODELS else 3)
    assert r["accuracy_vs_eps"][0] <= r["clean_accuracy"] + 1e-9
  assert len(os.listdir(tmp_path / "datasets")) == len(B.DATASETS)
  ex = saved["extra"]
  assert set(ex["datasets"]) == set(B.DATASETS)
  assert 0 <= ex["datasets"]["d_rand"]["success_rate"] <= 1
  eps = B.resolve(cfg).non_robust_eps
  assert ex["datasets"]["d_det"]["max_distance"] <= eps + 1e-5
  assert np.asarray(ex["figure"]["original"]).shape == (3, 8, 8, 1)
  for name in B.DATASETS:
    assert f"| {name} |" in res["table"]
  assert "Ilyas et al. 2019" in res["table"]
  assert len(saved["claims"]) == 6
  # A rerun reloads the models and the constructed datasets.
  def fail(*args, **kwargs):
    raise AssertionError("rebuilt a cached dataset")
  monkeypatch.setattr(features, "robust_dataset", fail)
  monkeypatch.setattr(features, "non_robust_dataset", fail)
  again = run.run(B.BENCHMARK, cfg)
  for name, r in again["models"].items():
    assert r["resumed_from"] is not None, name
    assert r["clean_accuracy"] == saved["models"][name]["clean_accuracy"]
