"""Tests for benchmarks/carlini.py (Carlini & Wagner's Table IV): the real
config, shrunk, through the runner."""
import json
import os

import numpy as np
import pytest

from advjax import data, report, run
from benchmarks import carlini as C


def test_presets_follow_the_paper():
  resolve = lambda **kw: run.resolve(C.BENCHMARK, C.CarliniConfig(**kw))
  mnist = resolve(dataset="mnist")
  assert (mnist.model, mnist.temperature, mnist.n_images) == (
      "carlini_mnist", 100., 1000)
  assert (mnist.cw_l2_search_steps, mnist.cw_l2_steps, mnist.cw_linf_steps,
          mnist.cw_linf_learning_rate, mnist.cw_l0_steps) == (
              9, 1000, 1000, 5e-3, 1000)
  assert (mnist.optimizer, mnist.learning_rate, mnist.epochs) == (
      "sgd", 0.01, 50)
  assert resolve(dataset="cifar10").model == "carlini_cifar"
  assert resolve(n_images=7).n_images == 7  # the flag wins


@pytest.mark.parametrize("field, value, match", [
    ("attacks", ("cw_l3",), "attacks"), ("n_images", 0, "n_images"),
    ("jsma_gamma", 1.5, "jsma_gamma"), ("temperature", 0., "temperature"),
    ("dataset", "imagenet", "No carlini preset")])
def test_bad_settings_raise(field, value, match):
  with pytest.raises(ValueError, match=match):
    run.resolve(C.BENCHMARK, C.CarliniConfig(**{field: value}))


def test_published_tables_iv_and_v_render():
  """Every attack of Tables IV and V (the untargeted FGSM row is ours
  only), per dataset, as the paper prints it."""
  rows = C.PUBLISHED
  assert len(rows) == 3 * (len(C.ATTACKS) - 1)
  by = {(r.dataset, r.setting): r.value for r in rows}
  assert by["mnist", "MNIST, CW L2"] == (
      "1.36 (100 %) / 1.76 (100 %) / 2.6 (100 %)")
  assert by["mnist", "MNIST, FGSM"] == "0.22 (100 %) / 0.26 (42 %) / - (0 %)"
  assert by["cifar10", "CIFAR-10, DeepFool"] == "0.85 (100 %) / - / -"
  assert "least likely" in rows[-1].quantity
  md = report.published_table(rows).markdown()
  assert md.count("\n") == len(rows) + 3  # caption, blank, header, rule


@pytest.mark.slow  # end-to-end; CI runs it (README)
def test_run_writes_tables_and_figures(tmp_path):
  cfg = C.CarliniConfig(dataset="digits", epochs=1, batch_size=32,
                        n_images=3, train_limit=96, temperature=20.,
                        cw_l2_steps=10, cw_l2_search_steps=2,
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
  grid = ex["models"]["standard"]["cw_l2"]["grid"]  # a row per class
  assert np.shape(grid["x"])[:2] == np.shape(grid["success"]) == (
      len(set(res["extra"]["labels"])), 10)
  for f in ("results.json", "results.md", "grid_cw_l2.png",
            "distortion.png"):
    assert os.path.getsize(tmp_path / f) > 0
  with open(tmp_path / "results.json") as f:
    saved = json.load(f)
  assert saved["extra"]["images"] == ex["images"]
  assert saved["claims"][0]["text"].startswith(
      "the CW attacks reach every target")
  assert "| CW L2 |" in res["table"] and "distilled model" in res["table"]
  # The report is computed from results.json alone.
  rendered = report.render(C.REPORT, run.resolve(C.BENCHMARK, cfg), saved)
  assert rendered.markdown == res["table"]


def test_missing_dataset_says_what_to_do(tmp_path):
  with pytest.raises(data.DatasetNotFoundError):
    run.run(C.BENCHMARK, C.CarliniConfig(
        dataset="mnist", data_dir=str(tmp_path / "x"), workdir=str(tmp_path),
        progress=False))
