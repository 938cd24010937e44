"""Tests for benchmarks/universality.py (Metzen's study) and its report's
readers (benchmarks/proj/universality.py): the real config, shrunk, through
the runner."""
import json
import os

import numpy as np
import pytest

from advjax import data, run
from benchmarks import universality as U
from benchmarks.proj import universality as metzen


def resolve(cfg):
  return run.resolve(U.BENCHMARK, cfg)


def test_presets_follow_the_paper():
  cifar = resolve(U.UniversalityConfig(dataset="cifar10"))
  # Metzen's universal perturbation and BI adversary (of 255), sigma 0,
  # 200 + 250 epochs.
  assert (round(cifar.uni_eps * 255, 6), round(cifar.uni_step_size * 255, 6),
          cifar.uni_batch_size, cifar.uni_batches_per_update,
          cifar.uni_iterations) == (10., 2.5, 128, 10, 200)
  assert (round(cifar.eps * 255, 6), round(cifar.bi_step_size * 255, 6),
          cifar.bi_steps) == (4., 1., 10)
  assert (cifar.sigma, cifar.epochs, cifar.adv_epochs) == (0., 200, 250)
  assert cifar.profile_examples == 256 and cifar.cost_change_examples == 10000
  assert U.transfer_epochs(cifar) == (0, 5, 51)
  # Appendix H: GTSRB, eps 8, universal 20, 25 + 175 epochs, 4209 held out.
  gtsrb = resolve(U.UniversalityConfig(dataset="gtsrb"))
  assert (round(gtsrb.eps * 255, 6), round(gtsrb.uni_eps * 255, 6),
          gtsrb.epochs, gtsrb.adv_epochs, gtsrb.holdout,
          gtsrb.model) == (8., 20., 25, 175, 4209, "preact_resnet18")
  assert resolve(U.UniversalityConfig(dataset="gtsrb",
                                        model="gtsrb_cnn")).model == "gtsrb_cnn"
  assert resolve(U.UniversalityConfig(eps=0.3)).eps == 0.3  # flag wins
  # Metzen's epochs scaled to 20 epochs of adversarial training.
  digits = resolve(U.UniversalityConfig())
  assert U.transfer_epochs(digits) == (0, 1, 4)
  assert [metzen.paper_epoch(t, 20) for t in (0, 1, 15, 51, 251)] == [0, 1, 1, 4,
                                                                 20]
  assert U.detector_epochs(digits) == (0, 1, 4, 8, 12, 16, 20)


@pytest.mark.parametrize("field, value, match", [
    ("eps", 0., "eps"), ("adv_epochs", 0, "adv-epochs"),
    ("sigma", 1.5, "sigma"), ("dataset", "imagenet", "No universality"),
    ("transfer_epochs", (0, 30), "transfer_epochs"),
    ("noise_sweep", (0., 0.1), "noise_sweep"), ("holdout", -1, "holdout")])
def test_bad_settings_raise(field, value, match):
  with pytest.raises(ValueError, match=match):
    resolve(U.UniversalityConfig(**{field: value}))


def test_missing_dataset_says_what_to_do(tmp_path):
  with pytest.raises(data.DatasetNotFoundError):
    run.run(U.BENCHMARK, U.UniversalityConfig(
        dataset="mnist", data_dir=str(tmp_path / "x"), workdir=str(tmp_path),
        progress=False))
  with pytest.raises(data.DatasetNotFoundError, match="GTSRB_Final"):
    run.run(U.BENCHMARK, U.UniversalityConfig(
        dataset="gtsrb", data_dir=str(tmp_path / "x"), workdir=str(tmp_path),
        progress=False))


def test_holdout_splits_the_training_set():
  cfg = resolve(U.UniversalityConfig(dataset="digits", holdout=100,
                                       train_limit=500))
  train, test = U.load_splits(cfg)
  full = data.load("digits", "train")
  assert (train.size, test.size) == (500, 100)
  # Disjoint rows of the training split, the same on a second call.
  key = lambda d: {a.tobytes() for a in d.images}
  assert not key(train) & key(test)
  assert key(test) <= key(full)
  np.testing.assert_array_equal(U.load_splits(cfg)[1].labels, test.labels)
  assert U.load_splits(resolve(U.UniversalityConfig())) is None
  with pytest.raises(ValueError, match="hold_out"):
    U.load_splits(resolve(U.UniversalityConfig(holdout=5000)))


def test_gtsrb_preset_reads_the_raw_folders_and_holds_out(tmp_path):
  from PIL import Image  # pylint: disable=import-outside-toplevel
  images = tmp_path / "GTSRB" / "Final_Training" / "Images"
  for c in (1, 40):
    (images / f"{c:05d}").mkdir(parents=True)
    rows = ["Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId"]
    for i in range(3):
      Image.new("RGB", (20, 18), (6 * c, 9 * i, 0)).save(
          images / f"{c:05d}" / f"00000_0000{i}.ppm")
      rows.append(f"00000_0000{i}.ppm;20;18;2;2;17;15;{c}")
    (images / f"{c:05d}" / f"GT-{c:05d}.csv").write_text("\n".join(rows))
  cfg = resolve(U.UniversalityConfig(dataset="gtsrb", holdout=2,
                                       data_dir=str(tmp_path)))
  train, test = U.load_splits(cfg)
  assert (train.size, test.size, train.num_classes) == (4, 2, 43)
  assert train.image_shape == (32, 32, 3)
  assert sorted(np.concatenate([train.labels, test.labels])) == [1] * 3 + [
      40] * 3


@pytest.mark.slow  # end-to-end; CI runs it (README)
def test_run_writes_every_figure_and_a_verdict_per_claim(tmp_path):
  cfg = U.UniversalityConfig(dataset="synthetic", train_limit=128,
                             analysis_examples=32, adv_epochs=2,
                             workdir=str(tmp_path), progress=False)
  res = run.run(U.BENCHMARK, cfg)
  saved = json.load(open(tmp_path / "results.json"))
  resolved = resolve(cfg)
  figures = U.figures(resolved, saved)
  for name in ("results.json", "results.md", *figures):
    assert os.path.getsize(tmp_path / name) > 0, name
  assert len(figures) == 13
  assert list(saved["models"]) == ["standard", "adversarial"]
  study = saved["models"]["adversarial"]
  rows = study["epochs"]
  # Epoch 0 of the adversarial training is the standard model.
  assert rows[0]["clean_accuracy"] == pytest.approx(
      saved["models"]["standard"]["clean_accuracy"])
  assert [r["epoch"] for r in rows] == [0, 1, 2]
  for r in rows:
    assert r["attack_accuracy"] <= r["clean_accuracy"]
    assert set(r["destruction_rate"]) == set(metzen.ADVERSARIES)
    assert len(r["cost_change"]["own"]) == 32 and len(r["noise_sweep"]) == 2
  ts = study["temporal_stability"]
  assert ts["inputs"] == 16 and np.shape(ts["mean_profile"]) == (3, 3)
  cc = study["cost_change_transfer"]
  assert cc["train_inputs"] == 64 and cc["pairs"] + cc["dropped"] == 32
  assert study["universal_transfer"]["sources"] == [0, 1]
  assert study["detectability"]["epochs"] == [0, 1, 2]
  # One verdict per claim, each holds / partly / fails with its rule.
  assert [c["text"] for c in saved["claims"]] == [c.text for c in metzen.CLAIMS]
  assert {c["verdict"] for c in saved["claims"]} <= {"holds", "partly",
                                                     "fails"}
  md = (tmp_path / "results.md").read_text()
  for phrase in ("## Published numbers", "-0.293", "94.1 %", "6.3 %",
                 "CIFAR-10", "GTSRB", "95.2 % / 100 %", "## Claims checked"):
    assert phrase in md, phrase
  assert "| epoch | clean |" in res["table"]
  # A rerun reloads the models and every cached evaluation.
  again = run.run(U.BENCHMARK, cfg)
  assert again["models"]["adversarial"]["epochs"][2]["attack_accuracy"] == (
      rows[2]["attack_accuracy"])
