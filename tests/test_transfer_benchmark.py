"""Tests for benchmarks/transfer.py (Szegedy et al.'s transfer tables and
transfer across CNNs): the pieces on known answers, the settings' checks,
and the whole config, shrunk, through the runner."""
import json
import os

import numpy as np
import pytest

from advjax import data, run
from benchmarks import transfer as T


def test_presets_names_and_architectures():
  cfg = T.resolve(T.TransferConfig())
  assert cfg.workdir == os.path.join("runs", "transfer-digits")
  assert T.cross_model_names(cfg) == T.CROSS_MODEL  # the paper's six
  assert T.cross_model_names(T.TransferConfig(weight_decays=(0.003, 1e-3))
                             )[:2] == ("fc10-0.003", "fc10-1e-3")
  assert T._label("fc10-1e-4") == "FC10(1e-4)"
  assert T._label("cnn-preact_resnet18") == "PreAct ResNet-18"
  assert type(T.architecture(cfg, "fc10-1e-2", 10)).__name__ == "FC10"
  assert type(T.architecture(cfg, "p2-fc100_100_10", 10)).__name__ == (
      "FC100_100_10")
  resnet = T.architecture(cfg, "cnn-preact_resnet18", 10)
  assert resnet.width == 16  # the digits preset's
  assert set(T.PUBLISHED_TABLE2) >= set(T.CROSS_MODEL)
  args = vars(run.make_parser(T.BENCHMARK).parse_args(
      ["--studies", "cnn", "--weight-decays", "1e-4,1"]))
  assert args["studies"] == ("cnn",) and args["weight_decays"] == (1e-4, 1.)


@pytest.mark.parametrize("field, value, match", [
    ("studies", ("tables",), "studies"), ("studies", (), "studies"),
    ("weight_decays", (-1.,), "weight_decays"),
    ("noise_stddevs", (0.,), "noise_stddevs"), ("eps", -0.1, "eps"),
    ("attack_examples", 0, "attack_examples"),
    ("cnn_models", ("vgg",), "cnn_models"),
    ("dataset", "imagenet", "No transfer preset")])
def test_bad_settings_raise(field, value, match):
  with pytest.raises(ValueError, match=match):
    T.resolve(T.TransferConfig(**{field: value}))


def test_distortion_amplification_noise_and_halves():
  x = np.full((2, 2, 2, 1), 0.5, np.float32)
  delta = np.zeros_like(x)
  delta[0, 0, 0, 0] = 0.2  # rms = sqrt(0.04 / 4) = 0.1
  np.testing.assert_allclose(T.rms(delta), [0.1, 0.])
  amp = T.amplify(x, delta, 0.05)
  np.testing.assert_allclose(T.rms(amp - x), [0.05, 0.], atol=1e-7)
  noisy = T.gaussian(np.full((64, 8, 8, 1), 0.5, np.float32), 0.1, 0)
  assert abs(T.rms(noisy - 0.5).mean() - 0.1) < 0.01
  assert noisy.min() >= 0 and noisy.max() <= 1
  train = data.load("digits", "train")
  p1, p2 = T.halves(train, 0)
  n = len(train.labels)
  assert len(p1.labels) + len(p2.labels) == n
  rows = {r.tobytes() for r in np.asarray(p1.images).reshape(len(p1.labels),
                                                            -1)}
  assert not any(r.tobytes() in rows for r in np.asarray(p2.images).reshape(
      len(p2.labels), -1)[:50])  # disjoint (digits has no duplicates here)


def test_missing_dataset_says_what_to_do(tmp_path):
  with pytest.raises(data.DatasetNotFoundError):
    run.run(T.BENCHMARK, T.TransferConfig(
        dataset="mnist", data_dir=str(tmp_path / "x"), workdir=str(tmp_path),
        progress=False))


@pytest.mark.slow  # end-to-end; CI runs it (README)
def test_run_writes_the_tables_and_reloads(tmp_path):
  cfg = T.TransferConfig(dataset="synthetic", train_limit=128, eval_limit=32,
                         attack_examples=8, lbfgs_steps=5,
                         lbfgs_search_steps=3, cw_steps=10, cw_search_steps=2,
                         pgd_steps=3, workdir=str(tmp_path), progress=False)
  res = run.run(T.BENCHMARK, cfg)
  ex = res["extra"]
  names = ex["cross_model"]["models"]
  assert len(names) == 6
  # Rows: each model's examples and the two noise levels, one column each.
  assert set(ex["cross_model"]["error"]) == set(names) | {"noise 0.1",
                                                          "noise 0.3"}
  assert all(len(v) == 6 for v in ex["cross_model"]["error"].values())
  assert len(ex["cross_training"]["error"]) == 8
  assert set(ex["cnn"]["error"]) == set(T.CNN_ATTACKS)
  for attack in T.CNN_ATTACKS:
    matrix = ex["cnn"]["error"][attack]
    assert len(matrix) == 2 and all(len(r) == 2 for r in matrix.values())
  md = open(tmp_path / "results.md").read()
  assert "Table 2" in md and "Tables 3-4" in md and "Claims checked" in md
  assert "11.7" in md  # the published numbers are beside ours
  for fig in ("cross_model.png", "cnn_transfer.png"):
    assert os.path.getsize(tmp_path / fig) > 0
  saved = json.load(open(tmp_path / "results.json"))
  assert saved["claims"]
  again = run.run(T.BENCHMARK, cfg)
  assert all(m["resumed_from"] is not None for m in again["models"].values())
  assert again["extra"] == ex
