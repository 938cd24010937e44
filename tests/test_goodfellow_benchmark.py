"""Tests for benchmarks/goodfellow.py (FGSM, the linear explanation and
FGSM adversarial training): the presets, the settings' checks, the noise
controls, and the config, shrunk, through the runner. The library pieces
have their own tests (test_linear, test_confidence, test_early_stopping,
test_subsets)."""
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from advjax import data, run, training
from benchmarks import goodfellow as G


def test_presets():
  digits = run.resolve(G.BENCHMARK, G.GoodfellowConfig())
  assert (digits.eps, digits.validation, digits.dropout) == (0.25, 200, 0.)
  assert digits.workdir == os.path.join("runs", "goodfellow-digits")
  mnist = run.resolve(G.BENCHMARK, G.GoodfellowConfig(dataset="mnist"))
  assert (mnist.eps, mnist.dropout) == (0.25, 0.2)  # the preset's dropout
  cifar = run.resolve(G.BENCHMARK, G.GoodfellowConfig(dataset="cifar10"))
  assert cifar.eps == 0.1
  args = vars(run.make_parser(G.BENCHMARK).parse_args(
      ["--models", "maxout,maxout_fgsm", "--classes", "1,8"]))
  assert args["models"] == ("maxout", "maxout_fgsm")
  assert args["classes"] == (1, 8)


def test_noise_training_controls():
  # The noise-training controls draw +-eps signs / U(-eps, eps), clipped.
  x = jnp.full((4, 8, 8, 1), 0.5)
  for dist, check in (("sign", lambda d: np.allclose(np.abs(d), 0.25)),
                      ("uniform", lambda d: np.abs(d).max() <= 0.25
                       and len(np.unique(np.round(d, 4))) > 10)):
    m = training.methods.noise_mix(0.25, distribution=dist)
    out = m.attack(None, x, None, eps=0.25, key=jax.random.key(0))
    assert check(np.asarray(out - x)), dist
  with pytest.raises(ValueError, match="'sign' or 'uniform'"):
    training.methods.noise_mix(0.1, distribution="gauss")


@pytest.mark.parametrize("field, value, match", [
    ("models", ("maxout", "vgg"), "models"), ("eps", -1., "eps"),
    ("classes", (3,), "classes"), ("classes", (3, 3), "classes"),
    ("alpha", 1.5, "alpha"), ("l1", -1., "l1"), ("dropout", 1., "dropout"),
    ("validation", 0, "validation"), ("hidden", (0,), "hidden")])
def test_bad_settings_raise(field, value, match):
  with pytest.raises(run.ConfigError, match=match):
    run.resolve(G.BENCHMARK, G.GoodfellowConfig(**{field: value}))


def test_unknown_dataset_and_missing_data(tmp_path):
  with pytest.raises(ValueError, match="No goodfellow preset"):
    run.resolve(G.BENCHMARK, G.GoodfellowConfig(dataset="imagenet"))
  with pytest.raises(data.DatasetNotFoundError):
    run.run(G.BENCHMARK, G.GoodfellowConfig(
        dataset="mnist", data_dir=str(tmp_path / "x"), workdir=str(tmp_path),
        progress=False))


@pytest.mark.slow  # end-to-end; CI runs it (README)
def test_run_writes_the_report_and_reloads(tmp_path):
  cfg = G.GoodfellowConfig(dataset="digits", train_limit=400, eval_limit=64,
                           validation=64, epochs=2, hidden=(16, 16),
                           workdir=str(tmp_path), progress=False)
  res = run.run(G.BENCHMARK, cfg)
  m = res["models"]
  assert set(m) == set(G.MODELS)
  assert m["logistic"]["closed_form_max_abs_diff"] < 1e-5
  for r in m.values():
    assert r["epoch"] in (1, 2) and len(r["validation_error"]) == 2
    assert r["validation_error"][r["epoch"] - 1] == min(r["validation_error"])
    assert 0 <= r["clean_error"] <= 1 and 0 <= r["fgsm_error"] <= 1
  assert 0 <= m["maxout_l1"]["train_error"] <= 1
  assert set(res["extra"]["transfer"]) == {"maxout->maxout_fgsm",
                                           "maxout_fgsm->maxout"}
  md = open(tmp_path / "results.md").read()
  assert "89.4" in md and "17.9" in md and "Claims checked" in md
  for fig in ("figure2.png", "errors.png"):
    assert os.path.getsize(tmp_path / fig) > 0
  saved = json.load(open(tmp_path / "results.json"))
  assert len(saved["claims"]) == 11  # two of them one per model
  # --report-only: the same report from results.json alone.
  os.remove(tmp_path / "figure2.png")
  again = run.rewrite_report(G.BENCHMARK, str(tmp_path))
  assert again["table"] == res["table"]
  assert os.path.getsize(tmp_path / "figure2.png") > 0
  # A rerun reloads every model.
  rerun = run.run(G.BENCHMARK, cfg)
  assert all(r["resumed_from"] is not None for r in rerun["models"].values())
  # Fewer models: the claims about the others are left out.
  few = run.run(G.BENCHMARK, cfg.__class__(**{
      **cfg.__dict__, "models": ("maxout",)}))
  assert {v.text for v in few["claims"]} == {
      "FGSM fools the network on most inputs (maxout)"}
