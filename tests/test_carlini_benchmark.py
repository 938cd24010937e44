"""Tests for benchmarks/carlini.py (Carlini & Wagner's Table IV): the real
config, shrunk, through the runner."""
import json
import os

import numpy as np
import pytest

from advjax import data, run
from benchmarks import carlini as C


def test_presets_follow_the_paper():
  mnist = C.resolve(C.CarliniConfig(dataset="mnist"))
  assert (mnist.model, mnist.temperature, mnist.n_images) == (
      "carlini_mnist", 100., 1000)
  assert (mnist.cw_l2_search_steps, mnist.cw_l2_steps, mnist.cw_linf_steps,
          mnist.cw_linf_learning_rate, mnist.cw_l0_steps) == (
              9, 1000, 1000, 5e-3, 1000)
  assert (mnist.optimizer, mnist.learning_rate, mnist.epochs) == (
      "sgd", 0.01, 50)
  assert C.resolve(C.CarliniConfig(dataset="cifar10")).model == "carlini_cifar"
  assert C.resolve(C.CarliniConfig(n_images=7)).n_images == 7  # flag wins


@pytest.mark.parametrize("field, value, match", [
    ("attacks", ("cw_l3",), "unknown"), ("n_images", 0, "n_images"),
    ("jsma_gamma", 1.5, "jsma_gamma"), ("temperature", 0., "temperature"),
    ("dataset", "imagenet", "No carlini preset")])
def test_bad_settings_raise(field, value, match):
  with pytest.raises(ValueError, match=match):
    C.resolve(C.CarliniConfig(**{field: value}))


def test_case_summary():
  dist = np.array([[1., 2., 3.], [4., 5., 6.], [7., 8., 9.]])
  ok = np.array([[True, True, True], [False, True, True],
                 [False, False, False]])
  s = C.case_summary(dist, ok)
  # Best: image 0 -> 1, image 1 -> 5 (4 failed), image 2 none.
  assert s["best"] == {"success": pytest.approx(2 / 3), "distortion": 3.}
  # Worst: only image 0 reached every target (its hardest: 3).
  assert s["worst"] == {"success": pytest.approx(1 / 3), "distortion": 3.}
  assert s["average"]["success"] == pytest.approx(5 / 9)
  assert s["average"]["distortion"] == pytest.approx((1 + 2 + 3 + 5 + 6) / 5)
  none = C.case_summary(dist, np.zeros_like(ok))
  assert none["best"] == {"success": 0., "distortion": None}


def test_select_images_puts_one_of_each_class_first():
  labels = np.array([1, 1, 0, 2, 0, 2])
  correct = np.array([True, True, False, True, True, True])
  assert C.select_images(5, correct, labels, 3).tolist() == [4, 0, 3, 1, 5]
  assert C.select_images(2, correct, labels, 3).tolist() == [4, 0]


@pytest.mark.slow  # end-to-end; CI runs it (README)
def test_run_writes_tables_and_figures(tmp_path):
  cfg = C.CarliniConfig(dataset="synthetic", epochs=1, n_images=3,
                        train_limit=96,
                        attacks=("cw_l2", "fgsm_untargeted"),
                        fgsm_grid=16, eval_batch_size=32,
                        workdir=str(tmp_path), progress=False)
  res = run.run(C.BENCHMARK, cfg)
  assert set(res["models"]) == {"standard", "teacher", "distilled"}
  ex = res["extra"]
  assert len(ex["images"]) == 3 and set(ex["models"]) == {"standard",
                                                          "distilled"}
  for attacks in ex["models"].values():
    assert list(attacks) == ["cw_l2", "fgsm_untargeted"]
    # No target: best case only.
    assert attacks["fgsm_untargeted"]["average"] is None
    for r in attacks.values():
      assert 0. <= r["best"]["success"] <= 1.
  for f in ("results.json", "results.md", "grid_cw_l2.png",
            "distortion.png"):
    assert os.path.getsize(tmp_path / f) > 0
  with open(tmp_path / "results.json") as f:
    saved = json.load(f)
  assert saved["extra"]["images"] == ex["images"]
  assert [c["text"] for c in saved["claims"]][:1] == [
      "the CW attacks reach every target (100 % success, average case)"]
  assert "| CW L2 |" in res["table"] and "## distilled model" in res["table"]


def test_missing_dataset_says_what_to_do(tmp_path):
  with pytest.raises(data.DatasetNotFoundError):
    run.run(C.BENCHMARK, C.CarliniConfig(
        dataset="mnist", data_dir=str(tmp_path / "x"), workdir=str(tmp_path),
        progress=False))
