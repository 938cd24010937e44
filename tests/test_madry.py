"""Tests for advjax/experiments/madry.py (the main benchmark) on tiny data."""
import json
import os

import pytest

from advjax.experiments import madry


def test_presets_follow_the_papers():
  mnist = madry.resolve(madry.MadryConfig(dataset="mnist"))
  assert (mnist.eps, mnist.train_steps, mnist.train_step_size) == (0.3, 40,
                                                                   0.01)
  cifar = madry.resolve(madry.MadryConfig(dataset="cifar10"))
  assert cifar.eps == pytest.approx(8 / 255)
  assert cifar.train_step_size == pytest.approx(2 / 255)
  assert (cifar.train_steps, cifar.eval_steps) == (7, 20)
  assert cifar.model == "preact_resnet18" and cifar.optimizer == "sgd"
  fast = madry.resolve(madry.MadryConfig(dataset="cifar10", method="fgsm_rs"))
  assert (fast.epochs, fast.schedule) == (15, "cyclic")
  assert madry.resolve(madry.MadryConfig(eps=0.05)).eps == 0.05  # flag wins
  with pytest.raises(ValueError, match="No preset"):
    madry.resolve(madry.MadryConfig(dataset="imagenet"))


@pytest.mark.slow  # end-to-end; CI runs it (README)
def test_run_writes_the_report_and_reloads_trained_models(tmp_path):
  cfg = madry.MadryConfig(dataset="digits", epochs=1, train_steps=2,
                          eval_steps=2, eval_restarts=2, eps_grid_points=3,
                          convergence_steps=3, convergence_examples=16,
                          train_limit=256, eval_limit=40,
                          autoattack_steps=3, autoattack_queries=10,
                          workdir=str(tmp_path), progress=False)
  res = madry.run(cfg)
  for name in ("results.json", "results.md", "robust_accuracy_vs_eps.png",
               "attack_convergence.png"):
    assert os.path.getsize(tmp_path / name) > 0, name
  saved = json.load(open(tmp_path / "results.json"))
  assert set(saved["models"]) == {"standard", "madry"}
  for r in saved["models"].values():
    assert len(r["accuracy_vs_eps"]) == 3
    assert r["accuracy_vs_eps"][0] == r["clean_accuracy"]
    assert set(r["convergence"]) == {"sign", "sgd", "adam"}
    assert all(len(c) == 3 for c in r["convergence"].values())
    assert r["resumed_from"] is None
    aa = r["autoattack"]
    assert list(aa["stages"]) == ["clean", "apgd-ce", "apgd-t", "fab-t",
                                  "square"]
    assert aa["robust_accuracy"] <= r["clean_accuracy"]
  assert "AutoAttack at eps" in res["table"]
  assert "| standard |" in res["table"] and "| madry |" in res["table"]
  again = madry.run(cfg)  # finished models are loaded, not retrained
  for name, r in again["models"].items():
    assert r["resumed_from"] == 4  # 256 // 64 steps
    assert r["clean_accuracy"] == saved["models"][name]["clean_accuracy"]
