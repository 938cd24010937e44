"""Tests for benchmarks/wasserstein.py (the Wong et al. table): the real
config, shrunk, through the runner."""
import json
import os

import numpy as np
import pytest

from advjax import data, run
from benchmarks import wasserstein as W


def test_presets_follow_the_paper():
  mnist = W.resolve(W.WassersteinConfig(dataset="mnist"))
  assert (mnist.eps, mnist.lam, mnist.model) == (1.0, 1000., "wong_mnist")
  assert (mnist.train_eps0, mnist.train_factor, mnist.train_grow_every,
          mnist.train_steps) == (0.1, 1.4, 5, 50)
  # The search reaches well past the table's radius.
  assert W.search_max_eps(mnist) > 2 * mnist.eps
  cifar = W.resolve(W.WassersteinConfig(dataset="cifar10"))
  assert (cifar.eps, cifar.lam, cifar.search_factor) == (0.1, 3000., 1.17)
  assert W.search_max_eps(cifar) > 2 * cifar.eps
  digits = W.resolve(W.WassersteinConfig())
  assert W.search_max_eps(digits) > 2 * digits.eps
  assert W.resolve(W.WassersteinConfig(eps=0.3)).eps == 0.3  # flag wins


@pytest.mark.parametrize("field, value, match", [
    ("eps", -1., "eps"), ("search_factor", 1.0, "grow"),
    ("kernel_size", 4, "odd"), ("train_steps", 0, "train_steps"),
    ("dataset", "imagenet", "No wasserstein preset")])
def test_bad_settings_raise(field, value, match):
  with pytest.raises(ValueError, match=match):
    W.resolve(W.WassersteinConfig(**{field: value}))
  with pytest.raises(ValueError, match=match):  # the runner checks them too
    run.resolve(W.BENCHMARK, W.WassersteinConfig(**{field: value}))


def test_missing_dataset_says_what_to_do(tmp_path):
  with pytest.raises(data.DatasetNotFoundError):
    run.run(W.BENCHMARK, W.WassersteinConfig(
        dataset="mnist", data_dir=str(tmp_path / "x"), workdir=str(tmp_path),
        progress=False))


@pytest.mark.slow  # end-to-end; CI runs it (README)
def test_run_writes_the_report_and_reloads_trained_models(tmp_path):
  cfg = W.WassersteinConfig(dataset="synthetic", train_limit=128,
                            eval_limit=48, eval_batch_size=32,
                            eps_grid_points=5, figure_examples=2,
                            workdir=str(tmp_path), progress=False)
  res = run.run(W.BENCHMARK, cfg)
  for name in ("results.json", "results.md", "fooled_vs_eps.png",
               "linf_accuracy_vs_eps.png", "perturbations.png"):
    assert os.path.getsize(tmp_path / name) > 0, name
  saved = json.load(open(tmp_path / "results.json"))
  assert list(saved["models"]) == list(W.MODELS)
  for r in saved["models"].values():
    fooled = np.asarray(r["fooled_vs_eps"])
    assert len(fooled) == 5 and np.all(np.diff(fooled) >= 0)
    # At radius 0 exactly the misclassified clean images count as fooled.
    assert fooled[0] == pytest.approx(1 - r["clean_accuracy"])
    assert 0 <= r["adversarial_accuracy"] <= r["clean_accuracy"] <= 1
    assert len(r["linf_accuracy"]) == len(saved["config"]["linf_eval_eps"])
    assert all(0 <= a <= r["clean_accuracy"] for a in r["linf_accuracy"])
    assert r["resumed_from"] is None
  for name in W.MODELS:
    assert f"| {name} |" in res["table"]
  assert len(saved["claims"]) == 2
  again = run.run(W.BENCHMARK, cfg)  # finished models are reloaded
  for name, r in again["models"].items():
    assert r["resumed_from"] == 4  # 128 // 32 steps
    assert r["clean_accuracy"] == saved["models"][name]["clean_accuracy"]
    assert (r["adversarial_accuracy"]
            == saved["models"][name]["adversarial_accuracy"])
