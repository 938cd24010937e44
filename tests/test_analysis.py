"""Tests for advjax/analysis (destruction rate, transfer, stability,
detection) on cases whose answers are known by hand."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from advjax import analysis
from advjax.analysis import transfer


def _mean_model(x):
  """Class 1 iff the mean pixel exceeds 0.5 (logits linear in the mean)."""
  m = x.reshape(x.shape[0], -1).mean(1)
  return jnp.stack([0.5 - m, m - 0.5], -1) * 10.


def test_destruction_rate_by_hand():
  # k:        0      1      2      3      4      5
  clean = [True, True, True, True, False, True]
  adv = [False, False, False, True, False, False]
  trans = [True, False, True, True, True, False]
  # Counted: k in {0, 1, 2, 5} (clean right, adversarial wrong); restored
  # by the transform: k = 0 and 2 -> 2 / 4. k = 3 (never fooled) and k = 4
  # (clean wrong) are not counted, whatever the transform does.
  assert analysis.destruction_rate(clean, adv, trans) == 0.5
  assert np.isnan(analysis.destruction_rate([True], [True], [True]))
  with pytest.raises(ValueError, match="same|one length"):
    analysis.destruction_rate([True], [True, False], [True])


def test_destruction_rates_through_a_model():
  x = jnp.full((4, 2, 2, 1), 0.3)  # class 0
  y = jnp.zeros((4,), jnp.int32)
  x_adv = x.at[:2].set(0.7).at[2:].set(0.45)  # 2 fooled, 2 not
  rates = analysis.destruction_rates(
      _mean_model, x, x_adv, y,
      {"darker": lambda z: z - 0.3, "identity": lambda z: z})
  assert rates == {"darker": 1.0, "identity": 0.0}


def test_transfer_sharedness_and_cost_change():
  x = jnp.concatenate([jnp.full((3, 2, 2, 1), 0.2),
                       jnp.full((3, 2, 2, 1), 0.4)])
  y = jnp.zeros((6,), jnp.int32)
  # delta_0 = +0.35 fools every image (0.55 and 0.75 > 0.5); delta_1 =
  # +0.05 fools no one; delta_2 = +0.15 fools only the 0.4 images.
  delta = jnp.stack([jnp.full((2, 2, 1), v) for v in (0.35, 0.05, 0.15)])
  res = jax.jit(analysis.perturbation_transfer, static_argnums=0)(
      _mean_model, x, y, delta)
  want = np.array([[1] * 6, [0] * 6, [0, 0, 0, 1, 1, 1]], bool)
  np.testing.assert_array_equal(res.fooled, want)
  s = analysis.sharedness(res.fooled, np.ones(6, bool))
  np.testing.assert_allclose(s, [1., 0., 3 / 5])
  # Only clean-correct others count (input 3 is not).
  s = analysis.sharedness(res.fooled, np.array([1, 1, 1, 0, 1, 1], bool))
  np.testing.assert_allclose(s, [1., 0., 2 / 4])
  own, others = analysis.cost_change_own_vs_others(res.cost_change)
  c = np.asarray(res.cost_change)
  np.testing.assert_allclose(own, np.diag(c[:, :3]))
  np.testing.assert_allclose(others[1], (c[1].sum() - c[1, 1]) / 5,
                             rtol=1e-6)
  assert (c[0] > 0).all()  # moving towards class 1 raises class-0 cost


def test_temporal_profile_by_hand():
  # 3 epochs, 3 inputs; P[t1, t2, i] = p(y_i | x_i + xi_t1; theta_t2).
  p = np.full((3, 3, 3), 0.9)
  p[0, :, 0] = 0.1  # input 0: the epoch-0 perturbation fools every model
  for t in range(3):  # input 1: each model falls to its own perturbation
    p[t, t, 1] = 0.2
  # Input 2: robust at every epoch except the first model on one
  # perturbation.
  p[1, 0, 2] = 0.3
  prof = analysis.temporal_profile(p)
  # MaxMin = min over t1 of (max over t2); MinMax = max over t2 of (min
  # over t1).
  np.testing.assert_allclose(prof.max_min, [0.1, 0.9, 0.9])
  np.testing.assert_allclose(prof.min_max, [0.1, 0.2, 0.9])
  np.testing.assert_allclose(prof.mean[0], [(0.1 + 0.2 + 0.9) / 3,
                                            (0.1 + 1.8) / 3, (0.1 + 1.8) / 3])
  assert prof.fractions() == pytest.approx(
      {"stable": 1 / 3, "oscillating": 1 / 3, "robust": 1 / 3})
  assert prof.examples() == {"robust": 2, "stable": 0, "oscillating": 1}
  assert (prof.min_max <= prof.max_min).all()  # the minimax inequality
  with pytest.raises(ValueError, match=r"\[T, T, N\]"):
    analysis.temporal_profile(np.zeros((2, 3, 4)))
  with pytest.raises(ValueError, match="probabilities"):
    analysis.temporal_profile(np.zeros((2, 2, 4), bool))


def test_probability_and_cost_change_across_models():
  x = jnp.full((2, 2, 2, 1), 0.3)
  x_adv = jnp.full((2, 2, 2, 1), 0.55)
  y = jnp.zeros((2,), jnp.int32)
  shifted = lambda z: _mean_model(z - 0.1)
  p = transfer.probability_across([_mean_model, shifted], [x, x_adv], y)
  assert p.shape == (2, 2, 2)
  # _mean_model's logits at mean m: 10 (0.5 - m) and 10 (m - 0.5).
  sig = lambda m: 1. / (1. + np.exp(-20. * (0.5 - m)))
  np.testing.assert_allclose(p[1, :, 0], [sig(0.55), sig(0.45)], rtol=1e-5)
  np.testing.assert_allclose(p[0, 0], sig(0.3), rtol=1e-5)
  c = transfer.cost_change_across([_mean_model, shifted], x, x_adv, y)
  np.testing.assert_allclose(
      c[:, 0], [np.log(sig(0.3)) - np.log(sig(0.55)),
                np.log(sig(0.2)) - np.log(sig(0.45))], rtol=1e-4)


def test_log_log_pearson():
  rng = np.random.default_rng(0)
  a = np.exp(rng.normal(size=200))
  b = a ** -0.5 * np.exp(0.3 * rng.normal(size=200))
  a[:5] = -1.  # no logarithm: left out
  res = transfer.log_log_pearson(a, b)
  assert (res.n, res.dropped) == (195, 5)
  want = np.corrcoef(np.log(a[5:]), np.log(b[5:]))[0, 1]
  assert res.r == pytest.approx(want, abs=1e-9) and res.r < -0.8
  assert res.p < 1e-18
  assert np.isnan(transfer.log_log_pearson([1., -1.], [1., 2.]).r)
  with pytest.raises(ValueError, match="alike"):
    transfer.log_log_pearson([1., 2.], [1.])


def test_fooled_across_models():
  x_advs = [jnp.full((2, 2, 2, 1), 0.55), jnp.full((2, 2, 2, 1), 0.45)]
  y = jnp.zeros((2,), jnp.int32)
  shifted = lambda z: _mean_model(z - 0.1)  # threshold 0.6
  f = analysis.fooled_across([_mean_model, shifted], x_advs, y)
  assert f.shape == (2, 2, 2)
  np.testing.assert_array_equal(f[:, :, 0], [[True, False], [False, False]])


def test_noise_and_flip_stability():
  x = jnp.full((8, 4, 4, 1), 0.3)
  y = jnp.zeros((8,), jnp.int32)
  x_adv = x.at[:4].set(0.9).at[4:].set(0.52)  # far from / near the boundary
  out = analysis.noise_stability(_mean_model, x, x_adv, y,
                                 key=jax.random.key(0),
                                 magnitudes=[0.0, 0.3])
  assert out["still_fooled"][0] == 1.0 and out["clean_accuracy"] == [1., 1.]
  # Noise of 0.3 leaves the 0.9 images fooled, and makes some of the 0.52
  # ones correct again.
  assert 0.5 <= out["still_fooled"][1] < 1.0
  # A left-right asymmetric perturbation on a model that reads the left
  # half: it stays when the image is flipped only if it moves with it.
  left = lambda z: _mean_model(z[:, :, :2])
  x_adv = x.at[:, :, :2].set(0.8)
  f = analysis.flip_stability(left, x, x_adv, y)
  assert f == {"flipped_adversarial": 0.0, "perturbation_on_flipped": 1.0,
               "flipped_clean_accuracy": 1.0}


def test_detector_separates_a_toy_case():
  rng = np.random.default_rng(0)
  clean = rng.uniform(0., 0.5, (256, 8, 8, 1)).astype(np.float32)
  # The "adversarial" inputs carry a fixed checkerboard: separable.
  board = (np.indices((8, 8)).sum(0) % 2)[None, :, :, None] * 0.4
  adv = np.clip(rng.uniform(0., 0.5, (256, 8, 8, 1)) + board,
                0., 1.).astype(np.float32)
  det = analysis.train_detector(clean[:192], adv[:192], epochs=8,
                                batch_size=32, learning_rate=3e-3,
                                features=(8, 16, 16))
  assert analysis.detector_accuracy(det, clean[192:], adv[192:]) > 0.95
  # Clean against clean is chance.
  assert analysis.detector_accuracy(det, clean[192:], clean[192:]) == 0.5
  with pytest.raises(ValueError, match="alike"):
    analysis.train_detector(clean, adv[..., 0])


def test_destruction_grid_on_the_batched_map():
  """A classifier by mean brightness: +0.3 brightness undoes a -0.2 shift
  (every fooled example is 'destroyed'), contrast x1 changes nothing, and
  the noise of each example is its own draw at any batch size."""
  from advjax import evaluation, transforms
  apply_fn = lambda v, x: jnp.stack(
      [0.5 - x.mean((1, 2, 3)), x.mean((1, 2, 3)) - 0.5], -1) * v["s"]
  v = {"s": jnp.float32(10.)}
  x = jnp.full((5, 4, 4, 1), 0.6)
  y = jnp.ones((5,), jnp.int32)
  x_adv = x - 0.2  # mean 0.4: class 0, fooled
  grid = transforms.transform_grid(1., brightness=(0.3,), contrast=(1.,),
                                   noise=(0.05,))
  rates = analysis.destruction_grid(apply_fn, v, x, x_adv, y, grid,
                                    key=jax.random.key(1))
  assert rates["brightness +0.3"] == 1. and rates["contrast x1"] == 0.
  a = analysis.correct_under(apply_fn, v, x_adv, y, grid,
                             key=jax.random.key(1), batch_size=2,
                             device_batch_size=1)
  b = analysis.correct_under(apply_fn, v, x_adv, y, grid,
                             key=jax.random.key(1))
  for k in a:
    np.testing.assert_array_equal(a[k], b[k])
  assert evaluation.accuracy(apply_fn, v, x, y) == 1.
  np.testing.assert_array_equal(evaluation.predict(apply_fn, v, x_adv), 0)
  probs = evaluation.predict(apply_fn, v, x, output="probs")
  np.testing.assert_allclose(probs.sum(-1), 1., rtol=1e-6)
  with pytest.raises(ValueError, match="output must be one of"):
    evaluation.predict(apply_fn, v, x, output="prob")


# --------------------------------------------------------------------------
# Kurakin et al.'s prefilter and physical-world study.
# --------------------------------------------------------------------------
def test_prefilter_selects_exactly_the_examples_meeting_both_conditions():
  y = np.array([0, 1, 2, 0, 1])
  p = lambda c, conf: np.eye(3)[c] * conf + (1 - conf) / 2 * (1 - np.eye(3)[c])
  clean = np.stack([p(0, .9), p(1, .9), p(0, .9), p(0, .7), p(1, .8)])
  adv = np.stack([p(1, .95), p(1, .95), p(2, .95), p(2, .95), p(0, .9)])
  # 0: both hold; 1: adversarial still right; 2: clean wrong; 3: clean
  # not confident; 4: clean exactly at 0.8 (strict).
  np.testing.assert_array_equal(analysis.prefilter(y, clean, adv, 0.8),
                                [True, False, False, False, False])
  # 0.96 > every adversarial probability: none.
  assert not analysis.prefilter(y, clean, adv, 0.96).any()
  for bad in (0., 1., 1.5):
    with pytest.raises(ValueError, match="confidence"):
      analysis.prefilter(y, clean, adv, bad)
  with pytest.raises(ValueError, match="probabilities"):
    analysis.prefilter(y, clean, adv[:3], 0.8)


_brightness_model = lambda v, x: jnp.stack(
    [0.5 - x.mean((1, 2, 3)), x.mean((1, 2, 3)) - 0.5], -1) * v["s"]
_S = {"s": jnp.float32(10.)}


def test_correct_under_top_k():
  from advjax import transforms
  x = jnp.full((3, 4, 4, 1), 0.4)  # class 0
  grid = transforms.transform_grid(1., brightness=(0.3,), jpeg=(90.,))
  y = jnp.array([0, 1, 1])
  every = analysis.correct_under(_brightness_model, _S, x, y, grid,
                                 top_k=(1, 2))
  assert list(every) == ["brightness +0.3", "JPEG quality 90"]  # in order
  out = every["brightness +0.3"]
  # After +0.3 every image is class 1; top-2 holds every label.
  np.testing.assert_array_equal(out, [[False, True], [True, True],
                                      [True, True]])


def test_physical_world_by_hand():
  """Darkened images fool the brightness classifier; +0.3 brightness
  brings every one back, contrast x1 none; a photo that only blurs keeps
  every class (the image means stay)."""
  from advjax import transforms
  x = jnp.full((6, 4, 4, 1), 0.6)
  y = jnp.ones(6, jnp.int32)
  grid = transforms.transform_grid(1., brightness=(0.3,), contrast=(1.,))
  world = analysis.physical_world(
      _brightness_model, _S, x, y, {"dark": np.asarray(x - 0.2)}, grid=grid,
      chain=transforms.PhotoChain(blur=0.5), top_k=(1, 2))
  assert world.top_k == (1, 2) and world.probs["dark"].shape == (6, 2)
  assert world.prefiltered("dark").all()  # probabilities 0.88 > 0.8
  assert not world._replace(confidence=0.9).prefiltered("dark").any()
  s = world.stats("dark")
  assert (s["n"], s["fooled"]) == (6, 6)
  assert s["destruction"] == {"brightness +0.3": 1., "contrast x1": 0.}
  ph = s["photo"]  # top-1, top-2 (of 2 classes: always right)
  assert [ph[k] for k in ("clean", "adversarial", "photo_clean",
                          "photo_adversarial")] == [[1., 1.], [0., 1.],
                                                    [1., 1.], [0., 1.]]
  assert ph["destruction"][0] == 0. and np.isnan(ph["destruction"][1])
  assert world.stats("dark", np.arange(6) < 2)["n"] == 2
  # Nothing in the set: the rates are undefined, not 0.
  empty = world.stats("dark", np.zeros(6, bool))
  assert empty["n"] == 0 and np.isnan(empty["destruction"]["contrast x1"])
  assert np.isnan(empty["photo"]["clean"]).all()
  with pytest.raises(ValueError, match="clean"):
    analysis.physical_world(_brightness_model, _S, x, y, {"clean": x},
                            grid=grid, chain=transforms.PhotoChain())


def test_physical_world_summary_on_a_hand_built_case():
  t, f = True, False
  world = analysis.PhysicalWorld(
      labels=np.zeros(6, int), top_k=(1,),
      correct={"clean": np.array([[t], [t], [t], [t], [f], [t]]),
               "fgsm": np.array([[f], [f], [f], [t], [f], [f]])},
      probs={"clean": np.array([[.9, .1]] * 4 + [[.1, .9], [.9, .1]]),
             "fgsm": np.array([[.1, .9]] * 3 + [[.9, .1]] + [[.1, .9]] * 2)},
      photo={"clean": np.array([[t], [t], [f], [t], [f], [t]]),
             "fgsm": np.array([[t], [t], [f], [f], [t], [f]])},
      transformed={"fgsm": {"a": np.array([t, f, f, t, t, f]),
                            "b": np.zeros(6, bool)}},
      random=np.arange(6) < 6)
  r = world.summary()["sets"]["random"]["fgsm"]
  # Fooled: clean right and adversarial wrong, examples 0, 1, 2, 5.
  assert (r["n"], r["fooled"]) == (6, 4)
  assert r["destruction"] == {"a": 0.25, "b": 0.}
  assert r["photo"]["destruction"] == [0.5]
  assert r["photo"]["clean"] == [5 / 6]
  assert r["photo"]["photo_adversarial"] == [0.5]
  # Prefiltered: clean right and adversarial wrong, both at 0.9 > 0.8.
  p = world.summary()["sets"]["prefiltered"]["fgsm"]
  assert (p["n"], p["fooled"], p["destruction"]["a"]) == (4, 4, 0.25)


def test_physical_world_draws_do_not_depend_on_the_batch():
  """Noise in the grid and in the photo: the same per-example results at
  any batch size, and `photographs` redraws the photo the study saw."""
  from advjax import evaluation, transforms
  x = np.asarray(0.5 + 0.01 * jax.random.normal(jax.random.key(0),
                                                (12, 4, 4, 1)))
  y = np.ones(12, np.int32)
  grid = transforms.transform_grid(1., noise=(0.3,))
  chain = transforms.PhotoChain(noise=0.3, brightness=0.05)
  run = lambda **kw: analysis.physical_world(
      _brightness_model, _S, x, y, {"same": x}, grid=grid, chain=chain,
      key=jax.random.key(3), **kw)
  a, b = run(), run(batch_size=4, device_batch_size=2)
  for k in ("clean", "same"):
    np.testing.assert_array_equal(a.photo[k], b.photo[k])
  np.testing.assert_array_equal(a.transformed["same"]["noise std 0.3"],
                                b.transformed["same"]["noise std 0.3"])
  # One draw per example, shared by its clean and adversarial images.
  np.testing.assert_array_equal(a.photo["clean"], a.photo["same"])
  assert 0 < a.photo["clean"].sum() < 12  # the draws differ per example
  idx = np.array([7, 2, 5])
  shots = analysis.photographs(x, chain, idx, key=jax.random.key(3))
  assert shots.shape == (3, 4, 4, 1)
  np.testing.assert_array_equal(
      evaluation.predict(_brightness_model, _S, shots) == 1,
      a.photo["clean"][idx, 0])


def test_physical_world_evaluator():
  from advjax import transforms
  darken = lambda model_fn, x, y, *, eps: x - eps
  ev = analysis.PhysicalWorldEvaluator(
      {"dark": darken}, 0.2, transforms.transform_grid(1., brightness=(0.3,)),
      transforms.PhotoChain(blur=0.5), jax.random.key(1), random_examples=3,
      figure_examples=2, batch_size=4)
  world = ev.run(_brightness_model, _S, (np.full((5, 4, 4, 1), 0.6),
                                         np.ones(5, np.int32)))
  out = world.summary()
  assert out["sets"]["random"]["dark"]["n"] == 3
  assert out["sets"]["prefiltered"]["dark"]["n"] == 5
  assert out["sets"]["random"]["dark"]["destruction"] == {
      "brightness +0.3": 1.}
  fig = out["figure"]
  assert set(fig["images"]) == {"clean", "clean photo", "dark", "dark photo"}
  assert fig["images"]["dark photo"].shape == (2, 4, 4, 1)
  np.testing.assert_array_equal(fig["pred"]["dark"], [0, 0])
  np.testing.assert_array_equal(fig["pred"]["clean photo"], [1, 1])
