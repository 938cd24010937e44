"""Tests for advjax/analysis/stability.py's directed-perturbation studies
(D'Costa & Sriramanan): eps sweeps, the epsilon cliff, one perturbation
reused, on a model whose answers are known by hand."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from advjax import analysis
from advjax.attacks import gradient

# Two calls of 2 rows per device (8 devices): small compiled shapes.
MAP = dict(batch_size=16, device_batch_size=2)


def _mean_apply(variables, x):
  """Class 1 iff the mean pixel exceeds 0.5: logits 10 (0.5 - m, m - 0.5)."""
  del variables
  m = x.reshape(x.shape[0], -1).mean(1)
  return jnp.stack([0.5 - m, m - 0.5], -1) * 10.


def _p1(m):
  """p(class 1) of `_mean_apply` at mean pixel m."""
  return 1. / (1. + np.exp(-20. * (np.asarray(m, np.float64) - 0.5)))


def _images(means, size=8):
  return np.stack([np.full((size, size, 1), m, np.float32) for m in means])


# Targeted sign steps of 2.5 eps / 4: every pixel rises to x + eps (the
# target's gradient is the same for every pixel), so delta = eps exactly.
TOWARDS = functools.partial(gradient.pgd, steps=4, targeted=True,
                            random_start=False)


def test_epsilon_cliff_by_hand():
  # Two examples, four radii, classes (0, 1, 2); target 1.
  p = np.array([[[.9, .05, .05], [.6, .3, .1], [.2, .7, .1], [.1, .8, .1]],
                [[.8, .1, .1], [.7, .15, .15], [.6, .2, .2], [.5, .3, .2]]])
  c = analysis.epsilon_cliff(p, 1)
  np.testing.assert_allclose(c.jump, [0.4, 0.1])
  np.testing.assert_array_equal(c.at, [2, 3])
  np.testing.assert_array_equal(c.first, [2, -1])
  np.testing.assert_array_equal(c.reaches, [True, False])
  one = analysis.epsilon_cliff(p[:, :1], 1)  # a single radius: no step
  np.testing.assert_array_equal(one.jump, [0., 0.])
  with pytest.raises(ValueError, match="target"):
    analysis.epsilon_cliff(p, 3)


def test_eps_sweep_known_answer_and_batch_independence():
  x = _images([0.1, 0.3, 0.45, 0.2, 0.48])
  eps = np.array([0., 0.04, 0.1, 0.25])
  t = np.ones(5, np.int32)
  s = analysis.eps_sweep(_mean_apply, {}, x, t, eps, attack=TOWARDS, **MAP)
  assert s.probs.shape == (5, 4, 2) and s.delta.shape == (5, 4, 8, 8, 1)
  # The perturbation is eps everywhere (no pixel reaches the box's top).
  np.testing.assert_allclose(s.linf, np.broadcast_to(eps, (5, 4)), atol=1e-6)
  np.testing.assert_allclose(s.delta.min(axis=(2, 3, 4)), s.linf, atol=1e-6)
  m = np.array([0.1, 0.3, 0.45, 0.2, 0.48])[:, None] + eps
  np.testing.assert_allclose(s.probs[..., 1], _p1(m), atol=1e-5)
  # The first radius that fools (the label 0): m + eps > 0.5.
  np.testing.assert_array_equal(s.first_fooled(np.zeros(5)),
                                [-1, 3, 2, -1, 1])
  np.testing.assert_array_equal(
      analysis.epsilon_cliff(s.probs, 1).first, [-1, 3, 2, -1, 1])
  d = s.delta_at(s.first_fooled(np.zeros(5)))
  np.testing.assert_allclose(d[:, 0, 0, 0], [0., .25, .1, 0., .04],
                             atol=1e-6)
  # One example alone, in another batch or at another position: the same.
  for kw in (dict(batch_size=2, device_batch_size=2),
             dict(index=np.array([4, 2]), **MAP)):
    o = analysis.eps_sweep(_mean_apply, {}, x, t, eps, attack=TOWARDS, **kw)
    rows = kw.get("index", np.arange(5))
    np.testing.assert_array_equal(o.probs, s.probs[rows])
  with pytest.raises(ValueError, match="nonnegative"):
    analysis.eps_sweep(_mean_apply, {}, x, t, [-0.1], attack=TOWARDS)


def test_eps_sweep_random_starts_are_per_example_and_per_radius():
  x = _images([0.3, 0.4, 0.2], size=4)
  y = np.zeros(3, np.int32)
  attack = functools.partial(gradient.pgd, steps=1, step_size=0.)  # start
  run = lambda **kw: analysis.eps_sweep(
      _mean_apply, {}, x, y, [0.1, 0.1], attack=attack,
      key=jax.random.key(7), **kw).delta
  a = run(**MAP)
  np.testing.assert_array_equal(a[[2]], run(index=np.array([2]), **MAP))
  np.testing.assert_array_equal(a, run(batch_size=1, device_batch_size=2))
  assert not np.allclose(a[:, 0], a[:, 1])  # each radius its own start
  assert np.abs(a).max() <= 0.1 + 1e-6


def test_perturbed_probs_noise_and_batch_independence():
  x = _images([0.3, 0.45, 0.6], size=16)
  delta = np.full((16, 16, 1), 0.1, np.float32)
  p = analysis.perturbed_probs(_mean_apply, {}, x, delta, **MAP)
  np.testing.assert_allclose(p[:, 1], _p1([0.4, 0.55, 0.7]), atol=1e-5)
  per = analysis.perturbed_probs(_mean_apply, {}, x, np.stack([delta] * 3),
                                 **MAP)
  np.testing.assert_array_equal(per, p)
  # Uniform noise in [0.2, 0.3]: the mean rises by 0.25 +- a little.
  key = jax.random.key(3)
  u = analysis.perturbed_probs(_mean_apply, {}, x, 0., noise="uniform",
                               low=0.2, high=0.3, key=key, **MAP)
  m = 0.5 + np.log(u[:, 1] / u[:, 0]) / 20.
  np.testing.assert_allclose(m, [0.55, 0.7, 0.85], atol=0.01)
  np.testing.assert_array_equal(u, analysis.perturbed_probs(
      _mean_apply, {}, x, 0., noise="uniform", low=0.2, high=0.3, key=key,
      batch_size=1, device_batch_size=2))
  # Sign noise of 0.05: every pixel moves by exactly +-0.05 (then clipped).
  s = analysis.perturbed_probs(_mean_apply, {}, x, 0., noise="sign",
                               high=0.05, key=key, **MAP)
  ms = 0.5 + np.log(s[:, 1] / s[:, 0]) / 20.
  assert np.all(np.abs(ms - [0.3, 0.45, 0.6]) <= 0.05 + 1e-5)
  with pytest.raises(ValueError, match="noise"):
    analysis.perturbed_probs(_mean_apply, {}, x, 0., noise="gauss")


def test_first_reaching_does_not_depend_on_the_chunk():
  x = _images([0.1, 0.2, 0.3, 0.46, 0.47, 0.1])
  eps = [0., 0.02, 0.05]
  for chunk in (1, 3):
    pos, scanned, s = analysis.first_reaching(
        _mean_apply, {}, x, [0, 1, 2, 3, 4], target=1, eps=eps,
        attack=TOWARDS, chunk=chunk)
    assert (pos, scanned) == (3, 4)  # image 3: 0.46 + 0.05 > 0.5
    assert s.probs.shape == (1, 3, 2)
    np.testing.assert_allclose(s.probs[0, :, 1], _p1([0.46, 0.48, 0.51]),
                               atol=1e-5)
  assert analysis.first_reaching(_mean_apply, {}, x, [0, 5], target=1,
                                 eps=eps, attack=TOWARDS)[::2] == (None, None)


def test_cliff_study_picks_its_image_and_measures_the_jump():
  # Class 0 images (label 0) beside one of class 2 (ignored): image 2 is
  # class 1 from the start.
  means = [0.9, 0.435, 0.6, 0.35, 0.465]
  x, y = _images(means), np.array([2, 0, 0, 0, 0])
  eps = np.arange(0, 9) / 100.
  out = analysis.cliff_study(_mean_apply, {"a": {}, "b": {}}, x, y, label=0,
                             target=1, eps=eps, attack=TOWARDS, **MAP)
  # The first image of the label the net gets right and the attack turns:
  # image 1 (0.435 + 0.07 > 0.5).
  assert out["index"] == 1
  a = out["a"]
  np.testing.assert_array_equal(a["pred"], [0] * 7 + [1] * 2)
  assert a["first"] == 7
  rise = np.diff(_p1(0.435 + eps))
  assert a["max_jump"] == pytest.approx(rise.max(), abs=1e-5)
  assert (a["images"], a["images_reaching"]) == (4, 3)  # 0.6 from the start
  assert a["images_jump_50"] == 0 and a["reach"] == pytest.approx(0.08)
  np.testing.assert_array_equal(out["b"]["pred"], a["pred"])
  assert analysis.cliff_study(_mean_apply, {"a": {}}, x, y, label=3,
                              target=1, eps=eps, attack=TOWARDS) == {}


def _checks(x, y, i=0, **kw):
  return analysis.perturbation_checks(
      _mean_apply, {}, x, y, i, np.full(x.shape[1:], 0.1, np.float32),
      target=1, eps=0.1, noise_high=0.02, draws=8, key=jax.random.key(0),
      **kw, **MAP)


def test_perturbation_checks_by_hand():
  # Image 0 (0.45, class 0) + 0.1 -> class 1. The others: 0.1 and 0.2 stay
  # class 0, 0.42 and 0.43 turn, 0.7 is class 1 already.
  means = [0.45, 0.1, 0.42, 0.2, 0.43, 0.7]
  x, y = _images(means), np.array([0, 0, 0, 0, 0, 1])
  levels = np.stack([np.full((8, 8, 1), e, np.float32)
                     for e in (0., 0.02, 0.06, 0.1)])
  st = _checks(x, y, level_deltas=levels)
  assert (st["index"], st["label"], st["adv_pred"]) == (0, 0, 1)
  assert st["adv_confidence"] == pytest.approx(_p1(0.55), abs=1e-5)
  # Figure 14: noise in [0, 0.02] keeps it class 1; alone it does not turn
  # 0.45 (at most 0.47).
  assert st["noise_fooled"] == st["noise_target"] == 1.
  assert st["noise_only_correct"] == 1. and st["noise_first_pred"] == 1
  assert np.all(st["images"]["noisy"] >= st["images"]["adv"] - 1e-6)
  assert np.all(st["images"]["noisy"] <= st["images"]["adv"] + 0.02 + 1e-6)
  # Figure 15: a constant image is its own mirror image.
  assert st["mirror_clean_confidence"] == pytest.approx(st["clean_confidence"])
  assert st["mirror_fooled"] and st["mirror_adv_pred"] == 1
  assert st["mirror_level_needed"] == 2  # 0.45 + 0.06 > 0.5
  # Figure 16: on the others, 2 of 5 move (both to the target, both of the
  # label 0); sign noise of 0.1 averages out over 64 pixels.
  assert st["others"] == 5
  assert st["others_moved"] == st["others_to_target"] == pytest.approx(0.4)
  assert st["same_label_to_target"] == pytest.approx(0.5)
  assert st["others_moved_control"] == 0.
  # The least-sure other image: 0.43 (closest to 0.5); it swaps.
  assert st["unsure_index"] == 4 and st["unsure_classes"] == [0, 1]
  assert st["unsure_swapped"] and st["unsure_after_pred"] == 1
  assert st["unsure_after"][1] == pytest.approx(_p1(0.53), abs=1e-5)


def test_reused_perturbation_picks_the_image_and_the_level():
  # Candidates: right, mirror right, not the target. 0.3 never turns within
  # 0.1; 0.455 turns at 0.05; the attack's best is at the largest radius.
  x, y = _images([0.7, 0.3, 0.455, 0.44]), np.array([1, 0, 0, 0])
  eps = np.arange(0, 11) / 100.
  st = analysis.reused_perturbation(
      _mean_apply, {}, x, y, target=1, eps=eps, attack=TOWARDS,
      noise_factor=0.5, draws=4, key=jax.random.key(1), **MAP)
  assert st["found"] and st["index"] == 2 and st["scanned"] == 2
  assert st["first_level"] == 5
  # p(target) rises to its best at 0.1; within 0.01 of it from 0.08 on.
  pt = _p1(0.455 + eps)
  assert st["level"] == int(np.argmax(pt >= pt.max() - 0.01))
  assert st["eps"] == pytest.approx(eps[st["level"]])
  assert np.abs(st["images"]["delta"]).max() <= st["eps"] + 1e-6
  none = analysis.reused_perturbation(
      _mean_apply, {}, x[:2], y[:2], target=1, eps=eps[:3], attack=TOWARDS,
      noise_factor=0.5, draws=4, key=jax.random.key(1), **MAP)
  assert none == {"found": False, "scanned": 1}


def _symmetric_linear(test):
  """A mirror-invariant linear net on class means (every mirror image is
  classified as the image)."""
  flat = lambda z: (z + z[:, :, ::-1]).reshape(z.shape[0], -1)
  means = np.stack([test.images[test.labels == k].mean(0)
                    for k in range(test.num_classes)])
  w = jnp.asarray(flat(means).T * 20.)
  return (lambda v, z: flat(z) @ v["w"] - 0.5 * jnp.sum(v["w"] ** 2, 0)
          / 20.), {"w": w}


@pytest.mark.slow  # the studies end to end on a trained-like net
def test_the_studies_on_a_linear_net():
  """The cliff and the reused perturbation pick their images by the rules
  they state and keep every perturbation within its eps."""
  from advjax import data  # pylint: disable=import-outside-toplevel
  test = data.load("synthetic", "test", limit=64)
  apply_fn, v = _symmetric_linear(test)
  assert np.mean(np.argmax(apply_fn(v, test.images), -1) == test.labels) > .9
  attack = functools.partial(gradient.pgd, steps=10, step_size=0.05,
                             optimizer="adam", targeted=True,
                             random_start=False)
  eps = np.arange(65) / 255.
  kw = dict(target=5, eps=eps, attack=attack, batch_size=64)
  cliff = analysis.cliff_study(apply_fn, {"standard": v, "other": v},
                               test.images, test.labels, label=7, **kw)
  assert test.labels[cliff["index"]] == 7
  c = cliff["standard"]
  assert c["pred"][0] == 7 and 5 in c["pred"] and c["first"] >= 1
  assert c["images_reaching"] >= 1 and c["reach"] <= 64 / 255 + 1e-6
  np.testing.assert_array_equal(cliff["other"]["pred"], c["pred"])
  st = analysis.reused_perturbation(apply_fn, v, test.images, test.labels,
                                    noise_factor=7., draws=8,
                                    key=jax.random.key(0), **kw)
  assert st["found"] and st["label"] != 5
  assert test.labels[st["index"]] == st["label"] and st["adv_pred"] == 5
  assert 1 <= st["first_level"] <= st["level"] <= 64
  assert np.abs(st["images"]["delta"]).max() <= st["eps"] + 1e-6
  # A mirror-invariant net classifies the mirror image as the image.
  assert st["mirror_clean_confidence"] == pytest.approx(
      st["clean_confidence"], abs=1e-5)
  assert st["others"] == test.size - 1 and st["unsure_index"] != st["index"]
  for k in ("noise_fooled", "noise_target", "noise_only_correct",
            "others_moved", "others_moved_control", "others_to_target"):
    assert 0 <= st[k] <= 1, k
