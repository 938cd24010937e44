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
  gtsrb = U.resolve(U.UniversalityConfig(dataset="gtsrb"))
  assert (round(gtsrb.eps * 255, 6), round(gtsrb.uni_eps * 255, 6),
          gtsrb.epochs, gtsrb.adv_epochs, gtsrb.holdout,
          gtsrb.model) == (8., 20., 25, 175, 4209, "preact_resnet18")
  assert U.resolve(U.UniversalityConfig(dataset="gtsrb",
                                        model="gtsrb_cnn")).model == "gtsrb_cnn"
  assert U.resolve(U.UniversalityConfig(eps=0.3)).eps == 0.3  # flag wins
  # Metzen's epochs scaled to 20 epochs of adversarial training.
  digits = U.resolve(U.UniversalityConfig())
  assert U.transfer_epochs(digits) == (0, 1, 4)
  assert [U.paper_epoch(t, 20) for t in (0, 1, 15, 51, 251)] == [0, 1, 1, 4,
                                                                 20]
  assert U.detector_epochs(digits) == (0, 1, 4, 8, 12, 16, 20)


@pytest.mark.parametrize("field, value, match", [
    ("eps", 0., "eps"), ("adv_epochs", 0, "adv_epochs"),
    ("sigma", 1.5, "sigma"), ("dataset", "imagenet", "No universality"),
    ("transfer_epochs", (0, 30), "transfer_epochs"),
    ("noise_sweep", (0., 0.1), "noise_sweep"), ("holdout", -1, "holdout")])
def test_bad_settings_raise(field, value, match):
  with pytest.raises(ValueError, match=match):
    U.resolve(U.UniversalityConfig(**{field: value}))


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
  cfg = U.resolve(U.UniversalityConfig(dataset="digits", holdout=100,
                                       train_limit=500))
  train, test = U.load_splits(cfg)
  full = data.load("digits", "train")
  assert (train.size, test.size) == (500, 100)
  # Disjoint rows of the training split, the same on a second call.
  key = lambda d: {a.tobytes() for a in d.images}
  assert not key(train) & key(test)
  assert key(test) <= key(full)
  np.testing.assert_array_equal(U.load_splits(cfg)[1].labels, test.labels)
  assert U.load_splits(U.resolve(U.UniversalityConfig())) is None
  with pytest.raises(ValueError, match="holdout"):
    U.load_splits(U.resolve(U.UniversalityConfig(holdout=5000)))


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
  cfg = U.resolve(U.UniversalityConfig(dataset="gtsrb", holdout=2,
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
  for name in ("results.json", "results.md", *U.FIGURES):
    assert os.path.getsize(tmp_path / name) > 0, name
  saved = json.load(open(tmp_path / "results.json"))
  assert list(saved["models"]) == ["standard", "adversarial"]
  study = saved["models"]["adversarial"]
  rows = study["epochs"]
  # Epoch 0 of the adversarial training is the standard model.
  assert rows[0]["clean_accuracy"] == pytest.approx(
      saved["models"]["standard"]["clean_accuracy"])
  assert [r["epoch"] for r in rows] == [0, 1, 2]
  for r in rows:
    for k in ("clean_accuracy", "bi_accuracy", "universal_accuracy",
              "universal_test_accuracy", "train_bi_accuracy"):
      assert 0 <= r[k] <= 1
    # BI is bounded by eps and starts at x: never better than clean.
    assert r["bi_accuracy"] <= r["clean_accuracy"]
    assert set(r["destruction_rate"]) == set(U.ADVERSARIES)
    assert len(r["cost_change"]["own"]) == 32
    assert len(r["noise_sweep"]) == 2
  ts = study["temporal_stability"]
  assert ts["inputs"] == 16 and len(ts["max_min"]) == 16
  profile = np.asarray(ts["mean_profile"])
  assert profile.shape == (3, 3) and (0 <= profile).all() and (
      profile <= 1).all()
  assert (np.asarray(ts["min_max"]) <= np.asarray(ts["max_min"]) + 1e-9).all()
  assert sum(ts["fractions"].values()) == pytest.approx(1.)
  # The error-rate diagonal: each epoch's BI examples on their own model
  # (the profile inputs are the first 16 of the analysis inputs).
  err = np.asarray(ts["bi_transfer_error"])
  assert err.shape == (3, 3) and (0 <= err).all() and (err <= 1).all()
  cc = study["cost_change_transfer"]
  assert len(cc["current_train"]) == len(cc["future_test"]) == 32
  assert cc["train_inputs"] == 64 and cc["pairs"] + cc["dropped"] == 32
  assert study["universal_transfer"]["sources"] == [0, 1]
  assert np.asarray(study["universal_transfer"]["accuracy"]).shape == (2, 3)
  assert study["detectability"]["epochs"] == [0, 1, 2]
  for adv in U.ADVERSARIES:
    acc = np.asarray(study["detectability"]["accuracy"][adv])
    assert acc.shape == (3, 3) and (acc >= 0).all() and (acc <= 1).all()
  assert [c["text"] for c in saved["claims"]] == list(U.CLAIMS.values())
  for c in saved["claims"]:
    assert "supported: " in c["evidence"]
  md = (tmp_path / "results.md").read_text()
  for phrase in ("## Published numbers beside this run", "-0.293", "94.1 %",
                 "6.3 % / 3.3 %", "CIFAR-10", "GTSRB", "95.2 % / 100 %",
                 "supported: "):
    assert phrase in md, phrase
  assert "| epoch | clean |" in res["table"]
  # A rerun reloads the models and every cached evaluation.
  again = run.run(U.BENCHMARK, cfg)
  assert again["models"]["adversarial"]["epochs"][2]["bi_accuracy"] == (
      rows[2]["bi_accuracy"])
