"""Tests for benchmarks/madry.py (the main benchmark config) on tiny data:
the real config, shrunk, through the runner."""
import json
import os

import pytest

from advjax import run
from benchmarks import madry

resolve = lambda cfg: run.resolve(madry.BENCHMARK, cfg)


def test_presets_follow_the_papers():
  mnist = resolve(madry.MadryConfig(dataset="mnist"))
  assert (mnist.eps, mnist.train_steps, mnist.train_step_size) == (0.3, 40,
                                                                   0.01)
  cifar = resolve(madry.MadryConfig(dataset="cifar10"))
  assert cifar.eps == pytest.approx(8 / 255)
  assert cifar.train_step_size == pytest.approx(2 / 255)
  assert (cifar.train_steps, cifar.eval_steps) == (7, 20)
  assert cifar.model == "preact_resnet18" and cifar.optimizer == "sgd"
  fast = resolve(madry.MadryConfig(dataset="cifar10", method="fgsm_rs"))
  assert (fast.epochs, fast.schedule) == (15, "cyclic")
  assert resolve(madry.MadryConfig(eps=0.05)).eps == 0.05  # flag wins
  with pytest.raises(ValueError, match="No madry preset for dataset"):
    resolve(madry.MadryConfig(dataset="imagenet"))
  # Madry et al.'s loss concentration: 10^3 restarts on a few test images.
  digits = resolve(madry.MadryConfig())
  assert (digits.concentration_restarts, digits.concentration_examples,
          digits.concentration_steps) == (1000, 5, 100)
  with pytest.raises(ValueError, match="concentration_restarts"):
    resolve(madry.MadryConfig(concentration_restarts=0))


@pytest.mark.slow  # end-to-end; CI runs it (README)
def test_run_writes_the_report_and_reloads_trained_models(tmp_path):
  cfg = madry.MadryConfig(dataset="digits", epochs=1, train_steps=2,
                          eval_steps=2, eval_restarts=2, eps_grid_points=3,
                          convergence_steps=3, convergence_examples=16,
                          train_limit=256, eval_limit=40,
                          autoattack_steps=3, autoattack_queries=10,
                          concentration_restarts=20, concentration_steps=2,
                          concentration_examples=2,
                          workdir=str(tmp_path), progress=False)
  res = run.run(madry.BENCHMARK, cfg)
  for name in ("results.json", "results.md", "robust_accuracy_vs_eps.png",
               "attack_convergence.png", "loss_concentration.png"):
    assert os.path.getsize(tmp_path / name) > 0, name
  saved = json.load(open(tmp_path / "results.json"))
  assert set(saved["models"]) == {"standard", "madry"}
  for r in saved["models"].values():
    assert len(r["pgd"]["accuracy"]) == 3
    assert r["pgd"]["accuracy"][0] == r["clean_accuracy"]
    assert r["robust_accuracy"] == r["pgd"]["accuracy"][1]  # eps, mid-grid
    assert set(r["convergence"]) == {"sign", "sgd", "adam"}
    assert all(len(c) == 3 for c in r["convergence"].values())
    assert r["resumed_from"] is None
    conc = r["concentration"]
    assert [c["index"] for c in conc] == [0, 1]
    for c in conc:  # every restart counted once, quantiles ordered
      assert sum(c["counts"]) == 20 and len(c["edges"]) == 41
      q = list(c["quantiles"].values())
      assert q == sorted(q) and 0 <= c["fooled"] <= 1
    aa = r["autoattack"]
    assert list(aa["stages"]) == ["clean", "apgd-ce", "apgd-t", "fab-t",
                                  "square"]
    assert aa["robust_accuracy"] <= r["clean_accuracy"]
  assert "AutoAttack at eps" in res["table"]
  assert [c["holds"] for c in saved["claims"]] == [c.holds for c in
                                                    res["claims"]]
  assert "## Claims checked" in open(tmp_path / "results.md").read()
  assert "Loss concentration (Madry et al.)" in res["table"]
  texts = [c["text"] for c in saved["claims"]]
  assert sum("PGD from random starts reaches similar losses" in t
             for t in texts) == 2  # one per model
  assert any("Adam is a better PGD optimiser" in t for t in texts)
  assert "| standard |" in res["table"] and "| madry |" in res["table"]
  again = run.run(madry.BENCHMARK, cfg)  # finished models are loaded, not retrained
  for name, r in again["models"].items():
    assert r["resumed_from"] == 4  # 256 // 64 steps
    assert r["clean_accuracy"] == saved["models"][name]["clean_accuracy"]


def test_flags_are_generated_from_the_config_fields():
  """Every documented flag parses into its field; booleans get --no-."""
  p = run.make_parser(madry.BENCHMARK)
  a = vars(p.parse_args(["--dataset", "mnist", "--method", "fgsm_rs",
                         "--train-steps", "5", "--eps", "0.1",
                         "--eps-warmup-epochs", "2", "--no-autoattack",
                         "--eval-limit", "100", "--data-dir", "/d"]))
  assert a["distributed"] is False
  del a["distributed"]
  cfg = madry.MadryConfig(**a)
  assert (cfg.dataset, cfg.method, cfg.train_steps, cfg.eps) == (
      "mnist", "fgsm_rs", 5, 0.1)
  assert (cfg.eps_warmup_epochs, cfg.autoattack, cfg.eval_limit,
          cfg.data_dir) == (2, False, 100, "/d")
  assert cfg.epochs is None  # left to the preset
  helps = p.format_help()
  assert "ramp the training eps" in helps and "--learning-rate" in helps
  with pytest.raises(SystemExit):
    p.parse_args(["--dataset", "imagenet"])


@pytest.mark.slow  # end-to-end benchmark stages; CI runs it (README)
def test_one_step_of_each_stage_with_an_eps_warmup(tmp_path):
  """The real config shrunk to one training step per model, a 2-point eps
  grid, AutoAttack of 1 step and 5 queries: every stage runs, the ramp
  starts at eps 0, and a method the config does not know is an error."""
  cfg = madry.MadryConfig(dataset="digits", epochs=1, batch_size=256,
                          train_steps=1, eval_steps=1, eval_restarts=1,
                          eps_grid_points=2, convergence_steps=2,
                          convergence_examples=8, train_limit=256,
                          concentration_restarts=4, concentration_steps=1,
                          concentration_examples=1,
                          eval_limit=16, autoattack_steps=1,
                          autoattack_queries=5, eps_warmup_epochs=1,
                          method="trades", workdir=str(tmp_path),
                          progress=False)
  res = run.run(madry.BENCHMARK, cfg)
  hist = res["models"]["trades"]["history"]
  assert len(hist) == 1 and hist[0]["eps"] == 0.  # step 0 of the ramp
  assert os.path.getsize(tmp_path / "attack_convergence.png") > 0
  with pytest.raises(ValueError, match="method .* must be one of madry"):
    resolve(madry.MadryConfig(method="free"))
