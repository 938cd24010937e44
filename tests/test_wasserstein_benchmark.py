"""Tests for benchmarks/wasserstein.py (the Wong et al. table): the real
config, shrunk, through the runner."""
import json
import os

import jax.numpy as jnp
import numpy as np
import pytest

from advjax import data, run
from benchmarks import wasserstein as W

# The end-to-end test's D'Costa & Sriramanan settings, shrunk.
_SMALL = dict(directed_eps=(8 / 255, 40 / 255), directed_steps=3,
              cliff_levels=4, transfer_steps=2, noise_draws=4)


def test_presets_follow_the_paper():
  mnist = W.resolve(W.WassersteinConfig(dataset="mnist"))
  assert (mnist.eps, mnist.lam, mnist.model) == (1.0, 1000., "wong_mnist")
  assert (mnist.train_eps0, mnist.train_factor, mnist.train_grow_every,
          mnist.train_steps) == (0.1, 1.4, 5, 50)
  # The search reaches well past the table's radius.
  assert W.search_max_eps(mnist) > 2 * mnist.eps
  cifar = W.resolve(W.WassersteinConfig(dataset="cifar10"))
  assert (cifar.eps, cifar.lam, cifar.search_factor) == (0.1, 3000., 1.17)
  assert W.search_max_eps(cifar) > 2 * cifar.eps
  digits = W.resolve(W.WassersteinConfig())
  assert W.search_max_eps(digits) > 2 * digits.eps
  assert W.resolve(W.WassersteinConfig(eps=0.3)).eps == 0.3  # flag wins
  # D'Costa & Sriramanan: directed PGD-100 with Adam (lr 1e-3) towards a
  # '5', a '7' for the cliff, Figures 12-16's 50 steps and 7 eps of noise.
  assert (digits.directed_target, digits.cliff_label, digits.directed_steps,
          digits.directed_lr, digits.transfer_steps,
          digits.noise_factor) == (5, 7, 100, 1e-3, 50, 7.)
  levels = [round(e * 255) for e in digits.directed_eps]
  assert 12 in levels and 40 in levels
  assert set(W.DCOSTA_CLIFF) <= set(W.levels(digits))
  assert W.MODELS[-1] == "binarized" and "binarized" in W.PUBLISHED["mnist"]


@pytest.mark.parametrize("field, value, match", [
    ("eps", -1., "eps"), ("search_factor", 1.0, "grow"),
    ("kernel_size", 4, "odd"), ("train_steps", 0, "train_steps"),
    ("dataset", "imagenet", "No wasserstein preset"),
    ("directed_eps", (), "directed_eps"), ("directed_lr", 0., "directed_lr"),
    ("cliff_label", 5, "distinct"), ("cliff_levels", 0, "cliff_levels"),
    ("binarize_threshold", 1., "binarize_threshold")])
def test_bad_settings_raise(field, value, match):
  with pytest.raises(ValueError, match=match):
    W.resolve(W.WassersteinConfig(**{field: value}))
  with pytest.raises(ValueError, match=match):  # the runner checks them too
    run.resolve(W.BENCHMARK, W.WassersteinConfig(**{field: value}))


def test_binarized_model_trains_and_is_evaluated_on_binarised_inputs():
  x = jnp.asarray(np.linspace(0., 1., 2 * 64).reshape(2, 8, 8, 1),
                  jnp.float32)
  method = W.binarized(0.5)
  out = np.asarray(method.attack(None, x, None, eps=0.))
  np.testing.assert_array_equal(out, np.asarray(x) >= 0.5)
  test = data.load("synthetic", "test", limit=4)
  env = run.Env(None, test, None, None, None)
  cfg = W.resolve(W.WassersteinConfig(dataset="synthetic"))
  assert W.test_split(cfg, env, "standard") is test
  b = W.test_split(cfg, env, "binarized").images
  assert set(np.unique(b)) <= {0., 1.} and b.shape == test.images.shape


def _symmetric_linear(test):
  """A mirror-invariant linear net on class means (every mirror image is
  classified as the image)."""
  flat = lambda z: (z + z[:, :, ::-1]).reshape(z.shape[0], -1)
  means = np.stack([test.images[test.labels == k].mean(0)
                    for k in range(test.num_classes)])
  w = jnp.asarray(flat(means).T * 20.)
  return (lambda v, z: flat(z) @ v["w"] - 0.5 * jnp.sum(v["w"] ** 2, 0)
          / 20.), {"w": w}


def test_the_single_image_studies_on_a_linear_net():
  """The cliff sweep and the stability checks pick their images by the
  rules they state and keep every perturbation within its eps."""
  test = data.load("synthetic", "test", limit=64)
  apply_fn, v = _symmetric_linear(test)
  assert np.mean(np.argmax(apply_fn(v, test.images), -1) == test.labels) > .9
  cfg = W.resolve(W.WassersteinConfig(
      dataset="synthetic", directed_lr=0.05, directed_steps=10,
      transfer_steps=10, cliff_levels=64, noise_draws=8))
  env = run.Env(None, test, None, apply_fn, None)
  out = W.extra(cfg, env, {"standard": v, "wasserstein": v})
  cliff = out["cliff"]
  assert test.labels[cliff["index"]] == cfg.cliff_label
  c = cliff["standard"]
  assert c["pred"][0] == cfg.cliff_label and cfg.directed_target in c["pred"]
  assert np.all(np.asarray(c["dinf"]) <= W.levels(cfg) + 1e-3)
  assert c["images_reaching"] >= 1 and c["reach"] <= 64 + 1e-3
  np.testing.assert_array_equal(cliff["wasserstein"]["pred"], c["pred"])
  st = out["stability"]
  assert st["found"] and st["label"] != cfg.directed_target
  assert test.labels[st["index"]] == st["label"]
  assert st["adv_pred"] == cfg.directed_target
  assert 1 <= st["first_level"] <= st["level"] <= cfg.cliff_levels
  delta = st["images"]["delta"]
  assert np.abs(delta).max() <= st["eps"] + 1e-6
  # A mirror-invariant net classifies the mirror image as the image.
  assert st["mirror_clean_confidence"] == pytest.approx(
      st["clean_confidence"], abs=1e-5)
  assert st["others"] == test.size - 1 and st["unsure_index"] != st["index"]
  for k in ("noise_fooled", "noise_target", "noise_only_correct",
            "others_moved", "others_moved_control", "others_to_target"):
    assert 0 <= st[k] <= 1, k


def test_missing_dataset_says_what_to_do(tmp_path):
  with pytest.raises(data.DatasetNotFoundError):
    run.run(W.BENCHMARK, W.WassersteinConfig(
        dataset="mnist", data_dir=str(tmp_path / "x"), workdir=str(tmp_path),
        progress=False))


@pytest.mark.slow  # end-to-end; CI runs it (README)
def test_run_writes_the_report_and_reloads_trained_models(tmp_path):
  cfg = W.WassersteinConfig(dataset="synthetic", train_limit=128,
                            eval_limit=48, eval_batch_size=32,
                            eps_grid_points=5, figure_examples=2,
                            workdir=str(tmp_path), progress=False, **_SMALL)
  res = run.run(W.BENCHMARK, cfg)
  for name in ("results.json", "results.md", "fooled_vs_eps.png",
               "linf_accuracy_vs_eps.png", "perturbations.png",
               "directed_accuracy_vs_eps.png", "epsilon_cliff.png",
               "perturbation_checks.png"):
    assert os.path.getsize(tmp_path / name) > 0, name
  saved = json.load(open(tmp_path / "results.json"))
  assert list(saved["models"]) == list(W.MODELS)
  for r in saved["models"].values():
    fooled = np.asarray(r["fooled_vs_eps"])
    assert len(fooled) == 5 and np.all(np.diff(fooled) >= 0)
    # At radius 0 exactly the misclassified clean images count as fooled.
    assert fooled[0] == pytest.approx(1 - r["clean_accuracy"])
    assert 0 <= r["adversarial_accuracy"] <= r["clean_accuracy"] <= 1
    assert len(r["linf_accuracy"]) == len(saved["config"]["linf_eval_eps"])
    assert all(0 <= a <= r["clean_accuracy"] for a in r["linf_accuracy"])
    assert r["resumed_from"] is None
    d = r["directed"]
    assert d["examples"] == 48 - sum(
        data.load("synthetic", "test", limit=48).labels == 5)
    for a in W.DIRECTED_ATTACKS:
      assert len(d[a]["accuracy"]) == len(d[a]["target_success"]) == 2
      assert all(0 <= v <= 1 for v in d[a]["accuracy"] + d[a]["target_success"])
  for name in W.MODELS:
    assert f"| {name} |" in res["table"]
  assert set(saved["extra"]["cliff"]) >= set(W.CLIFF_MODELS)
  assert len(saved["extra"]["cliff"]["standard"]["pred"]) == 5  # levels 0..4
  assert "## Epsilon cliff" in res["table"] and "Figures 12-16" in res["table"]
  texts = [c["text"] for c in saved["claims"]]
  assert any("binarisation defends little" in t for t in texts)
  assert any("over 90 % accurate up to 40/255" in t for t in texts)
  again = run.run(W.BENCHMARK, cfg)  # finished models are reloaded
  for name, r in again["models"].items():
    assert r["resumed_from"] == 4  # 128 // 32 steps
    assert r["clean_accuracy"] == saved["models"][name]["clean_accuracy"]
    assert (r["adversarial_accuracy"]
            == saved["models"][name]["adversarial_accuracy"])
