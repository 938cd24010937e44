"""Tests for benchmarks/wasserstein.py (the Wong et al. table, D'Costa &
Sriramanan's directed experiments): the real config, shrunk, through the
runner."""
import json
import os

import numpy as np
import pytest

from advjax import data, report, run, training
from benchmarks import wasserstein as W

# The end-to-end test's D'Costa & Sriramanan settings, shrunk.
_SMALL = dict(directed_eps=(8 / 255, 40 / 255), directed_steps=3,
              cliff_levels=4, transfer_steps=2, noise_draws=4)


def test_presets_follow_the_paper():
  resolve = lambda **kw: run.resolve(W.BENCHMARK, W.WassersteinConfig(**kw))
  mnist = resolve(dataset="mnist")
  assert (mnist.eps, mnist.lam, mnist.model) == (1.0, 1000., "wong_mnist")
  # The training attacks are the recipe's (Wong et al.: adaptive radius 0.1
  # x 1.4 every 5 of 50 steps).
  w = W.PRESETS["mnist"]
  assert (w["train_eps0"], w["train_factor"], w["train_grow_every"],
          w["train_steps"]) == (0.1, 1.4, 5, 50)
  # The search reaches well past the table's radius.
  assert W.search_max_eps(mnist) > 2 * mnist.eps
  cifar = resolve(dataset="cifar10")
  assert (cifar.eps, cifar.lam, cifar.search_factor) == (0.1, 3000., 1.17)
  assert W.search_max_eps(cifar) > 2 * cifar.eps
  digits = resolve()
  assert W.search_max_eps(digits) > 2 * digits.eps
  assert resolve(eps=0.3).eps == 0.3  # the flag wins
  # D'Costa & Sriramanan: directed PGD-100 with Adam (lr 1e-3) towards a
  # '5', a '7' for the cliff, Figures 12-16's 50 steps and 7 eps of noise.
  assert (digits.directed_target, digits.cliff_label, digits.directed_steps,
          digits.directed_lr, digits.transfer_steps,
          digits.noise_factor) == (5, 7, 100, 1e-3, 50, 7.)
  levels = [round(e * 255) for e in digits.directed_eps]
  assert 12 in levels and 40 in levels
  assert set(W.TABLE1) <= set(W.levels(digits))
  assert W.MODELS[-1] == "binarized"
  # Every published number is a row: Wong et al.'s table on both datasets
  # (with the binarised row on MNIST), D'Costa & Sriramanan's Table 1.
  rows = {(r.source, r.setting, r.quantity): r for r in W.PUBLISHED}
  assert rows[("Wong et al. 2019", "mnist, eps 1.0, binarized",
               "adversarial accuracy")].value == 14
  assert sum("Table 1" in r.source for r in W.PUBLISHED) == len(W.TABLE1)
  assert {r.dataset for r in W.PUBLISHED} >= {"mnist", "cifar10"}


@pytest.mark.parametrize("field, value, match", [
    ("eps", -1., "eps"), ("search_factor", 1.0, "search_factor"),
    ("kernel_size", 4, "odd"), ("search_steps", 0, "search_steps"),
    ("directed_lr", 0., "directed_lr"), ("cliff_label", 5, "distinct"),
    ("cliff_levels", 0, "cliff_levels"), ("directed_eps", (-0.1,),
                                          "directed_eps"),
    ("binarize_threshold", 1., "binarize_threshold")])
def test_bad_settings_raise(field, value, match):
  with pytest.raises(run.ConfigError, match=match):
    run.resolve(W.BENCHMARK, W.WassersteinConfig(**{field: value}))


def test_unknown_dataset_raises():
  with pytest.raises(ValueError, match="No wasserstein preset"):
    run.resolve(W.BENCHMARK, W.WassersteinConfig(dataset="imagenet"))


def test_the_models_are_the_recipe_with_the_binarised_input_one():
  x = np.linspace(0., 1., 2 * 64, dtype=np.float32).reshape(2, 8, 8, 1)
  method = training.methods.binarized(0.5)
  out = np.asarray(method.attack(None, x, None, eps=0.))
  np.testing.assert_array_equal(out, x >= 0.5)
  with pytest.raises(ValueError, match="threshold"):
    training.methods.binarized(1.5)
  test = data.load("synthetic", "test", limit=4)
  env = run.Env(None, test, None, None, None)
  cfg = run.resolve(W.BENCHMARK, W.WassersteinConfig(dataset="synthetic"))
  specs = W.models(cfg, env)
  assert list(specs) == list(W.MODELS)
  assert specs["binarized"].settings == {"binarize_threshold": 0.5}


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
                            workdir=str(tmp_path), progress=False, **_SMALL)
  res = run.run(W.BENCHMARK, cfg)
  for name in ("results.json", "results.md", "fooled_vs_eps.png",
               "directed_accuracy_vs_eps.png", "epsilon_cliff.png",
               "perturbations.png"):
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
    d = r["directed"]
    assert d["examples"] == 48 - sum(
        data.load("synthetic", "test", limit=48).labels == 5)
    for a in W.DIRECTED_ATTACKS:
      assert len(d[a]["accuracy"]) == len(d[a]["target_success"]) == 2
      assert all(0 <= v <= 1 for v in d[a]["accuracy"] + d[a]["target_success"])
  ex = saved["models"]["standard"]["figure_examples"]
  assert len(ex["x"]) == len(ex["adv"]) == len(ex["eps"]) <= 2
  assert np.all(np.isfinite(ex["eps"]))
  for name in W.MODELS:
    assert f"| {name} |" in res["table"]
  cliff = saved["extra"]["cliff"]
  assert set(cliff) == {"index", *W.CLIFF_MODELS}
  assert len(cliff["standard"]["pred"]) == 5  # levels 0..4
  assert cliff["standard"]["reach"] <= 4 / 255 + 1e-6
  test = data.load("synthetic", "test", limit=48)
  assert test.labels[cliff["index"]] == cfg.cliff_label
  st = saved["extra"]["stability"]
  if st["found"]:
    assert test.labels[st["index"]] == st["label"] != cfg.directed_target
    assert np.abs(st["images"]["delta"]).max() <= st["eps"] + 1e-6
    assert os.path.getsize(tmp_path / "perturbation_checks.png") > 0
  texts = [c["text"] for c in saved["claims"]]
  assert any("binarisation defends little" in t for t in texts)
  assert any("over 90 % up to 40/255" in t for t in texts)
  assert {c["verdict"] for c in saved["claims"]} <= set(report.VERDICTS)
  # The report is data: rewritten from results.json alone, the same.
  again = run.rewrite_report(W.BENCHMARK, str(tmp_path))
  assert again["table"] == res["table"]
  again = run.run(W.BENCHMARK, cfg)  # finished models are reloaded
  for name, r in again["models"].items():
    assert r["resumed_from"] == 4  # 128 // 32 steps
    assert r["clean_accuracy"] == saved["models"][name]["clean_accuracy"]
    assert (r["adversarial_accuracy"]
            == saved["models"][name]["adversarial_accuracy"])
