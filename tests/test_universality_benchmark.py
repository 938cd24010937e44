"""Tests for benchmarks/universality.py (Metzen's study): the real config,
shrunk, through the runner."""
import json
import os

import numpy as np
import pytest

from advjax import data, run
from benchmarks import universality as U


def test_presets_follow_the_paper():
  cifar = U.resolve(U.UniversalityConfig(dataset="cifar10"))
  # Metzen's universal perturbation and BI adversary (of 255).
  assert (round(cifar.uni_eps * 255, 6), round(cifar.uni_step_size * 255, 6),
          cifar.uni_batch_size, cifar.uni_batches_per_update,
          cifar.uni_iterations) == (10., 2.5, 128, 10, 200)
  assert round(cifar.eps * 255, 6) == 4. and cifar.bi_steps == 5
  assert U.resolve(U.UniversalityConfig(eps=0.3)).eps == 0.3  # flag wins


@pytest.mark.parametrize("field, value, match", [
    ("eps", 0., "eps"), ("adv_epochs", 0, "adv_epochs"),
    ("sigma", 1.5, "sigma"), ("dataset", "imagenet", "No universality")])
def test_bad_settings_raise(field, value, match):
  with pytest.raises(ValueError, match=match):
    U.resolve(U.UniversalityConfig(**{field: value}))


def test_missing_dataset_says_what_to_do(tmp_path):
  with pytest.raises(data.DatasetNotFoundError):
    run.run(U.BENCHMARK, U.UniversalityConfig(
        dataset="mnist", data_dir=str(tmp_path / "x"), workdir=str(tmp_path),
        progress=False))


@pytest.mark.slow  # end-to-end; CI runs it (README)
def test_run_writes_every_figure_and_a_verdict_per_claim(tmp_path):
  cfg = U.UniversalityConfig(dataset="synthetic", train_limit=128,
                             analysis_examples=32, adv_epochs=2,
                             workdir=str(tmp_path), progress=False)
  res = run.run(U.BENCHMARK, cfg)
  for name in ("results.json", "results.md", "accuracy.png",
               "universal_perturbations.png", "sharedness.png",
               "cost_change.png", "temporal_stability.png",
               "destruction_rate.png", "detectability.png", "stability.png"):
    assert os.path.getsize(tmp_path / name) > 0, name
  saved = json.load(open(tmp_path / "results.json"))
  assert list(saved["models"]) == ["standard", "adversarial"]
  study = saved["models"]["adversarial"]
  rows = study["epochs"]
  # Epoch 0 of the fine-tuning is the standard model.
  assert rows[0]["clean_accuracy"] == pytest.approx(
      saved["models"]["standard"]["clean_accuracy"])
  assert [r["epoch"] for r in rows] == [0, 1, 2]
  for r in rows:
    for k in ("clean_accuracy", "bi_accuracy", "universal_accuracy"):
      assert 0 <= r[k] <= 1
    # BI is bounded by eps and starts at x: never better than clean.
    assert r["bi_accuracy"] <= r["clean_accuracy"]
    assert set(r["destruction_rate"]) == set(U.ADVERSARIES)
    assert len(r["cost_change"]["own"]) == 32
  profile = np.asarray(study["temporal_stability"]["profile"])
  assert profile.shape == (3, 3)
  # The diagonal: each epoch's BI examples on their own model.
  np.testing.assert_allclose(np.diag(profile),
                             [1 - r["bi_accuracy"] for r in rows], atol=1e-6)
  assert study["detectability"]["epochs"] == [0, 1, 2]
  assert [c["text"] for c in saved["claims"]] == list(U.CLAIMS.values())
  for c in saved["claims"]:
    assert "supported: " in c["evidence"]
  assert "| epoch | clean |" in res["table"]
  assert "supported: " in (tmp_path / "results.md").read_text()
