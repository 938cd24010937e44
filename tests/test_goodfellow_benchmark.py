"""Tests for benchmarks/goodfellow.py (FGSM, the linear explanation and
FGSM adversarial training): the closed form on logistic regression, the
pieces, the settings' checks, and the config, shrunk, through the runner."""
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from advjax import data, models, run, training
from advjax.attacks import gradient
from benchmarks import goodfellow as G


def test_fgsm_on_logistic_regression_is_the_closed_form():
  model = models.FC10(num_classes=2)
  v = models.init_model(model, jax.random.key(3), (8, 8, 1))
  rng = np.random.default_rng(0)
  x = rng.uniform(size=(16, 8, 8, 1)).astype(np.float32)
  y = rng.integers(0, 2, 16).astype(np.int32)
  adv = gradient.fgsm(lambda z: model.apply(v, z), jnp.asarray(x),
                      jnp.asarray(y), eps=0.25)
  k = np.asarray(v["params"]["Dense_0"]["kernel"])
  w = (k[:, 1] - k[:, 0]).reshape(8, 8, 1)
  np.testing.assert_allclose(adv, G.logistic_fgsm(w, x, y, 0.25), atol=1e-6)
  # It is the worst case in the box: no sign pattern raises the loss more.
  logit = lambda z: z.reshape(len(z), -1) @ w.ravel()
  margin = (2 * y - 1) * logit(np.asarray(adv))
  other = np.clip(x + 0.25 * rng.choice([-1., 1.], x.shape), 0, 1)
  assert np.all(margin <= (2 * y - 1) * logit(other) + 1e-5)


def test_error_confidence_splits_and_noise_training():
  probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7]])
  err, conf = G.error_and_confidence(probs, np.array([0, 0, 1]))
  assert err == pytest.approx(1 / 3) and conf == pytest.approx(0.8)
  assert np.isnan(G.error_and_confidence(probs[:1], np.array([0]))[1])
  train = data.load("digits", "train")
  fit_rows, val = G.split_validation(train, 200)
  assert len(val.labels) == 200 and len(fit_rows.labels) == len(
      train.labels) - 200
  with pytest.raises(ValueError, match="smaller than the training split"):
    G.split_validation(train, len(train.labels))
  pair = G.two_classes(train, (3, 7))
  assert set(np.unique(pair.labels)) == {0, 1} and pair.num_classes == 2
  assert np.all((np.asarray(train.labels)[np.isin(train.labels, (3, 7))]
                 == 7) == (pair.labels == 1))
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
    ("alpha", 1.5, "alpha"), ("l1", -1., "l1"),
    ("validation", 0, "validation"),
    ("dataset", "imagenet", "No goodfellow preset")])
def test_bad_settings_raise(field, value, match):
  with pytest.raises(ValueError, match=match):
    G.resolve(G.GoodfellowConfig(**{field: value}))


def test_missing_dataset_says_what_to_do(tmp_path):
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
    assert 0 <= r["fgsm_error"] <= 1
  assert set(res["extra"]["transfer"]) == {"maxout->maxout_fgsm",
                                           "maxout_fgsm->maxout"}
  md = open(tmp_path / "results.md").read()
  assert "89.4" in md and "17.9" in md and "Claims checked" in md
  for fig in ("figure2.png", "errors.png"):
    assert os.path.getsize(tmp_path / fig) > 0
  assert json.load(open(tmp_path / "results.json"))["claims"]
  again = run.run(G.BENCHMARK, cfg)
  assert all(r["resumed_from"] is not None for r in again["models"].values())
