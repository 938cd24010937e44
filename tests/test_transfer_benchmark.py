"""Tests for benchmarks/transfer.py (Szegedy et al.'s transfer tables and
transfer across CNNs): its names and settings' checks, and the whole config,
shrunk, through the runner. The library pieces (`analysis.transfer_study`
and its parts, `data.hold_out`) are tested in test_transfer.py and
test_subsets.py."""
import json
import os

import pytest

from advjax import data, run
from benchmarks import transfer as T


def test_presets_names_and_published_rows():
  cfg = run.resolve(T.BENCHMARK, T.TransferConfig())
  assert cfg.workdir == os.path.join("runs", "transfer-digits")
  assert cfg.resnet_width == 16 and cfg.attack_examples == 256
  assert T.cross_model_names(cfg) == tuple(T.TABLE2)[:6]  # the paper's six
  assert T.cross_model_names(T.TransferConfig(weight_decays=(0.003, 1e-3))
                             )[:2] == ("fc10-0.003", "fc10-1e-3")
  assert T.label("fc10-1e-4") == "FC10(1e-4)"
  assert T.label("cnn-preact_resnet18") == "PreAct ResNet-18"
  assert T.label("amplified p2-fc100_100_10") == "FC100-100-10' (P2), amplified"
  assert len(T.PUBLISHED) == 8 + 8 + 3 + 3 + 8
  args = vars(run.make_parser(T.BENCHMARK).parse_args(
      ["--studies", "cnn", "--weight-decays", "1e-4,1"]))
  assert args["studies"] == ("cnn",) and args["weight_decays"] == (1e-4, 1.)


@pytest.mark.parametrize("field, value", [
    ("studies", ("tables",)), ("weight_decays", (-1.,)),
    ("noise_stddevs", (0.,)), ("amplify_stddev", 0.), ("eps", -0.1),
    ("attack_examples", 0), ("cnn_models", ("vgg",))])
def test_bad_settings_raise(field, value):
  with pytest.raises(run.ConfigError, match=field):
    run.resolve(T.BENCHMARK, T.TransferConfig(**{field: value}))


def test_missing_dataset_says_what_to_do(tmp_path):
  with pytest.raises(ValueError, match="No transfer preset"):
    run.resolve(T.BENCHMARK, T.TransferConfig(dataset="imagenet"))
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
  assert len(names) == 6 and len(ex["cross_model"]["own"]) == 6
  # Rows: each model's examples and the two noise levels, one column each.
  assert set(ex["cross_model"]["error"]) == set(names) | {"noise 0.1",
                                                          "noise 0.3"}
  assert all(len(v) == 6 for v in ex["cross_model"]["error"].values())
  assert len(ex["cross_training"]["error"]) == 8
  assert [c["row"] for c in ex["cross_training"]["controls"]] == [
      "noise", "amplified noise"]
  for attack in ("fgsm", "pgd", "cw_l2"):
    matrix = ex[f"cnn_{attack}"]["error"]
    assert len(matrix) == 2 and all(len(r) == 2 for r in matrix.values())
  md = open(tmp_path / "results.md").read()
  assert "Table 2" in md and "Table 4" in md and "Claims checked" in md
  assert "11.7" in md  # the published numbers are beside ours
  for fig in ("cross_model.png", "cnn_transfer.png"):
    assert os.path.getsize(tmp_path / fig) > 0
  saved = json.load(open(tmp_path / "results.json"))
  assert len(saved["claims"]) == 10
  again = run.run(T.BENCHMARK, cfg)
  assert all(m["resumed_from"] is not None for m in again["models"].values())
  assert again["extra"] == ex
