"""Tests for advjax/analysis/epochs.py (Metzen's study across epochs): known
answers on a model of the mean pixel, invariants and batch-size
independence of the whole study on a tiny linear model."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from advjax import analysis, report, transforms
from advjax.analysis import transfer as tr
from advjax.attacks import gradient

# Small compiled shapes: 2 rows per device (8 devices).
MAP = dict(batch_size=16, device_batch_size=2)


def _mean_apply(variables, x):
  """Class 1 iff the mean pixel exceeds 0.5: logits s * 10 (0.5 - m,
  m - 0.5), s = variables['s'] (an 'epoch' of a run)."""
  m = x.reshape(x.shape[0], -1).mean(1)
  return jnp.stack([0.5 - m, m - 0.5], -1) * 10. * variables["s"]


def _p_true(m, s, y):
  """p(y | image of mean m) under `_mean_apply` with scale s."""
  p1 = 1. / (1. + np.exp(-20. * s * (np.asarray(m, np.float64) - 0.5)))
  return np.where(np.asarray(y) == 1, p1, 1. - p1)


def _images(means, size=4):
  return np.stack([np.full((size, size, 1), m, np.float32) for m in means])


def _logits_ce(logits, y):
  return -jax.nn.log_softmax(logits)[np.arange(len(y)), y]


def test_batched_transfer_is_perturbation_transfer_by_hand():
  x = _images([0.3, 0.45, 0.6, 0.7, 0.2])
  y = np.array([0, 0, 1, 1, 0])
  delta = _images([0.1, -0.2, 0.3])
  v = {"s": jnp.float32(1.)}
  got = analysis.batched_transfer(_mean_apply, v, x, y, delta, **MAP)
  # delta_i fools x_j iff the class of clip(m_j + d_i) is not y_j.
  m = np.clip(np.array([0.3, 0.45, 0.6, 0.7, 0.2])[None]
              + np.array([0.1, -0.2, 0.3])[:, None], 0, 1)
  np.testing.assert_array_equal(got.fooled, (m > 0.5) != (y[None] == 1))
  want = tr.perturbation_transfer(lambda z: _mean_apply(v, z), x, y, delta)
  np.testing.assert_allclose(got.cost_change, want.cost_change, atol=1e-5)
  other = analysis.batched_transfer(_mean_apply, v, x, y, delta,
                                    batch_size=2, device_batch_size=1)
  np.testing.assert_array_equal(other.fooled, got.fooled)
  np.testing.assert_allclose(other.cost_change, got.cost_change, atol=1e-6)
  mean = analysis.mean_cost_change(_mean_apply, v, x, y, delta, **MAP)
  np.testing.assert_allclose(mean, want.cost_change.mean(1), atol=1e-5)


class _Always:
  """A detector model that calls every input adversarial."""

  def apply(self, variables, x, train=False):
    del variables, train
    return jnp.tile(jnp.array([[0., 1.]]), (x.shape[0], 1))


def test_detectability_is_balanced_accuracy():
  x = _images([0.2, 0.8])
  always = analysis.Detector(_Always(), {})
  never = analysis.Detector(
      type("Never", (), {"apply": lambda self, v, z, train=False: jnp.tile(
          jnp.array([[1., 0.]]), (z.shape[0], 1))})(), {})
  acc = analysis.detectability({0: always, 3: never}, x, {0: x, 3: x})
  # Either detector is right on exactly one of the two halves.
  np.testing.assert_allclose(acc, np.full((2, 2), 0.5))


def _study(**kw):
  return analysis.EpochStudy(**{
      "eps": 0.1, "attacks": (("fgsm", gradient.fgsm),),
      "universal": dict(eps=0.1, step_size=0.05, iterations=2, batch_size=4,
                        batches_per_update=1),
      "profile_examples": 4, "key": jax.random.key(3), **MAP, **kw})


def test_across_epochs_by_hand():
  """The profile, error rates, universal transfer and cost changes of
  known 'epochs' (scales) and examples (means)."""
  scales = {0: 1., 1: 0.5, 2: 2.}
  m = np.array([0.3, 0.4, 0.6, 0.8, 0.45])
  y = (m > 0.5).astype(np.int32)
  x = _images(m)
  adv_m = {0: m + np.array([0.25, 0.15, -0.05, -0.1, 0.1]),
           1: m + np.array([0.1, 0.05, -0.2, -0.4, 0.]),
           2: m + np.array([-0.1, 0.3, 0.1, 0., 0.2])}
  x_adv = {t: _images(a) for t, a in adv_m.items()}
  xi = {0: np.full((4, 4, 1), 0.15, np.float32),
        2: np.full((4, 4, 1), -0.1, np.float32)}
  train = (_images([0.1, 0.9, 0.55]), np.array([0, 1, 1]))
  got = _study().across(_mean_apply, lambda t: {"s": jnp.float32(scales[t])},
                        [0, 1, 2], (x, y), train, x_adv, xi, [0, 2])
  ts = got["temporal_stability"]
  want = np.stack([np.stack([_p_true(adv_m[t1][:4], scales[t2], y[:4])
                             for t2 in range(3)]) for t1 in range(3)])
  np.testing.assert_allclose(ts["examples"]["stable"]["profile"],
                             want[:, :, ts["examples"]["stable"]["index"]],
                             atol=1e-5)
  np.testing.assert_allclose(ts["mean_profile"], want.mean(-1), atol=1e-5)
  np.testing.assert_allclose(ts["max_min"], want.max(1).min(0), atol=1e-5)
  # Fooled: the adversarial mean on the wrong side of 0.5, any scale > 0.
  err = np.stack([np.full(3, np.mean((adv_m[t][:4] > 0.5) != (y[:4] == 1)))
                  for t in range(3)])
  np.testing.assert_allclose(ts["transfer_error"], err)
  ut = got["universal_transfer"]
  for i, d in enumerate((0.15, -0.1)):
    np.testing.assert_allclose(ut["accuracy"][i], np.mean(
        (np.clip(m + d, 0, 1) > 0.5) == (y == 1)))
  # Stability: epoch 0's examples' cost change under epochs 1 and 2.
  ce = lambda mm, s: -np.log(_p_true(mm, s, y))
  future = np.mean([ce(adv_m[0], scales[t]) - ce(m, scales[t])
                    for t in (1, 2)], 0)
  cc = got["cost_change_transfer"]
  np.testing.assert_allclose(cc["future_test"], future, rtol=1e-4,
                             atol=1e-5)
  # Sharedness on training inputs: epoch 0's perturbations on each.
  delta = adv_m[0] - m
  tm = np.array([0.1, 0.9, 0.55])
  cur = np.mean([-np.log(_p_true(np.clip(tm + d, 0, 1), 1., train[1]))
                 + np.log(_p_true(tm, 1., train[1])) for d in delta], 1)
  np.testing.assert_allclose(cc["current_train"], cur, rtol=1e-4, atol=1e-5)
  assert cc["train_inputs"] == 3 and cc["pairs"] + cc["dropped"] == 5


def _linear_apply(variables, x):
  return x.reshape(x.shape[0], -1) @ variables["w"] + variables["b"]


@pytest.fixture(scope="module")
def tiny_run():
  rng = np.random.default_rng(0)
  w = rng.normal(size=(16, 3)).astype(np.float32)
  epochs = {t: {"w": jnp.asarray(w * (1 + 0.3 * t)),
                "b": jnp.zeros(3)} for t in range(3)}
  x = rng.uniform(size=(12, 4, 4, 1)).astype(np.float32)
  y = np.array(_linear_apply(epochs[0], x).argmax(-1))
  y[:3] = (y[:3] + 1) % 3  # a few wrong
  xt = rng.uniform(size=(16, 4, 4, 1)).astype(np.float32)
  yt = np.asarray(_linear_apply(epochs[0], xt).argmax(-1))
  return epochs, (x, y), (xt, yt)


def _run(tiny_run, **kw):
  epochs, test, train = tiny_run
  study = _study(
      attacks=(("bim", functools.partial(gradient.bim, steps=2,
                                         step_size=0.05)),
               ("fgsm", gradient.fgsm)),
      grid=transforms.transform_grid(brightness=(0.1,), noise=(0.1,)),
      noise_sweep=(0.05, 0.2), noise_magnitudes=(0.1,),
      detector_epochs=1, detector_features=(2, 2, 2), detector_batch=8, **kw)
  return study.run(_linear_apply, epochs.__getitem__, [0, 1, 2], test, train,
                   detector_epochs=(0, 2), sources=(0, 1))


@pytest.mark.slow  # ~20 s: a whole study, twice
def test_study_invariants_and_batch_size_independence(tiny_run, tmp_path):
  a = _run(tiny_run)
  assert [r["epoch"] for r in a["epochs"]] == [0, 1, 2]
  for r in a["epochs"]:
    # The attack starts at x and the accuracies are fractions.
    assert 0 <= r["attack_accuracy"] <= r["clean_accuracy"] <= 1
    assert set(r["destruction_rate"]) == {"bim", "fgsm"}
    assert list(r["destruction_rate"]["bim"]) == ["brightness +0.1",
                                                  "noise std 0.1"]
    assert len(r["noise_sweep"]) == 2 and len(r["cost_change"]["own"]) == 12
    assert ("detector_universal" in r) == (r["epoch"] in (0, 2))
  assert a["test_examples"] == 12
  ts = a["temporal_stability"]
  assert ts["inputs"] == 4 and np.shape(ts["mean_profile"]) == (3, 3)
  assert (np.asarray(ts["min_max"]) <= np.asarray(ts["max_min"])).all()
  assert sum(ts["fractions"].values()) == pytest.approx(1.)
  # An epoch's own examples on its own model: the attack's error rate on
  # the profile inputs.
  assert np.asarray(a["universal_transfer"]["accuracy"]).shape == (2, 3)
  assert a["detectability"]["epochs"] == [0, 2]
  for m in a["detectability"]["accuracy"].values():
    assert np.shape(m) == (2, 2) and (0 <= m).all() and (m <= 1).all()
  assert set(a["universal"]) == {0, 1, 2}
  assert set(a["universal"][2]) == {"xi", "xi_test", "xi_detector"}
  b = _run(tiny_run, batch_size=4, device_batch_size=1)
  for ra, rb in zip(a["epochs"], b["epochs"]):
    for k in ("clean_accuracy", "attack_accuracy", "train_attack_accuracy",
              "universal_accuracy", "sharedness", "destruction_rate",
              "noise_sweep", "adversarial_accuracy"):
      assert ra[k] == rb[k], k
    np.testing.assert_allclose(ra["cost_change"]["own"],
                               rb["cost_change"]["own"], atol=1e-5)
  np.testing.assert_allclose(a["temporal_stability"]["mean_profile"],
                             b["temporal_stability"]["mean_profile"],
                             atol=1e-6)
  np.testing.assert_array_equal(a["universal"][1]["xi"],
                                b["universal"][1]["xi"])
  figs = analysis.epoch_figures(a, few=(0, 2), noise_sweep=(0.05, 0.2),
                                noise_mark=(0.1, "mark"), detectors=(0, 2))
  assert len(figs) == 11
  report.draw(figs["destruction_rate.png"], str(tmp_path / "d.png"))
  report.draw(figs["temporal_stability.png"], str(tmp_path / "t.png"))
  md = report.render_blocks(analysis.epoch_tables(a, few=(0, 2),
                                                  noise_sweep=(0.05, 0.2)))
  assert "| epoch | clean | bim | bim (train) |" in md
  assert "| 0.05 |" in md and "examples of epoch" in md


def _row(t, attack, sharedness, rates):
  return {"epoch": t, "clean_accuracy": 0.9, "attack_accuracy": attack,
          "train_attack_accuracy": attack + 0.1, "universal_accuracy": 0.5,
          "universal_test_accuracy": 0.4,
          "adversarial_accuracy": {"bi": attack},
          "sharedness": {"mean": sharedness, "max": sharedness},
          "destruction_rate": {"bi": {"brightness +0.1": rates[0],
                                      "blur sigma 1": rates[1],
                                      "noise std 0.1": 0.9}},
          "noise_sweep": [rates[0], rates[1]]}


def test_summarize_by_hand():
  rows = [_row(0, 0.1, 0.06, (0.2, 0.4)), _row(1, 0.5, None, (0.5, np.nan)),
          _row(2, 0.6, 0.02, (0.4, 0.6)), _row(3, 0.595, 0.01, (0.6, 0.8))]
  rows[2]["detector_universal"] = {"perturbed": 0.3}
  det = {"epochs": [0, 2], "accuracy": {"bi": [[0.9, 0.6], [0.7, 0.95]]}}
  s = analysis.summarize({"epochs": rows, "detectability": det},
                         kinds=("brightness", "blur"))
  # Three epochs after the first: the last one is late.
  assert s["late_epochs"] == (3, 3)
  assert s["first"]["sharedness"] == 0.06 and s["late"]["sharedness"] == 0.01
  assert s["first"]["bi_accuracy"] == 0.1
  assert s["destruction"]["bi"] == pytest.approx((0.3, 0.7))
  assert s["noise_sweep"] == ([0.2, 0.4], [0.6, 0.8])
  assert s["detector_own"]["bi"] == [0.9, 0.95]
  assert s["detector_from"]["bi"] == {0: 0.6, 2: 0.7}
  assert s["detector_universal"] == {2: 0.3}
  assert s["plateau_epoch"] == 2  # 0.6 best; 0.595 within 0.01 later
  two = analysis.summarize({"epochs": rows, "detectability": det},
                           late_divisor=1)
  assert two["late_epochs"] == (1, 3)
  assert two["late"]["attack_accuracy"] == pytest.approx(0.565)
  # A None sharedness (nothing fooled) is left out of the mean.
  assert two["late"]["sharedness"] == pytest.approx(0.015)
  assert np.isnan(analysis.mean_destruction(rows[1], "bi", ("blur",)))
