"""Tests for advjax/evaluation/minimal.py: every target, best / average /
worst case (Carlini & Wagner's Table IV)."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from advjax import evaluation
from advjax.attacks import deepfool, gradient


def test_target_cases_known_answer():
  dist = np.array([[1., 2., 3.], [4., 5., 6.], [7., 8., 9.]])
  ok = np.array([[True, True, True], [False, True, True],
                 [False, False, False]])
  s = evaluation.target_cases(dist, ok)
  # Best: image 0 -> 1, image 1 -> 5 (4 failed), image 2 none.
  assert s["best"] == {"success": pytest.approx(2 / 3), "distortion": 3.}
  # Worst: only image 0 reached every target (its hardest: 3).
  assert s["worst"] == {"success": pytest.approx(1 / 3), "distortion": 3.}
  assert s["average"]["success"] == pytest.approx(5 / 9)
  assert s["average"]["distortion"] == pytest.approx((1 + 2 + 3 + 5 + 6) / 5)
  none = evaluation.target_cases(dist, np.zeros_like(ok))
  assert none["best"] == {"success": 0., "distortion": None}
  # Failed pairs' distances (inf, say) never enter a mean.
  inf = evaluation.target_cases(np.where(ok, dist, np.inf), ok)
  assert inf == s


@pytest.fixture(scope="module")
def affine():
  """A 3-class affine model on 4 features and 6 inputs it classifies."""
  w = jax.random.normal(jax.random.key(0), (4, 3))
  apply_fn = lambda v, x: x @ v["w"]
  x = np.asarray(jax.random.uniform(jax.random.key(1), (6, 4)))
  y = np.asarray(jnp.argmax(apply_fn({"w": w}, x), -1), np.int32)
  return apply_fn, {"w": w}, x, y


def test_every_target_pairs_and_grid(affine):
  apply_fn, v, x, y = affine
  fgsm = functools.partial(gradient.fgsm_search, grid=32, targeted=True)
  ev = evaluation.from_config("every_target", attack=fgsm, norm="linf",
                              num_classes=3, batch_size=4)
  assert isinstance(ev, evaluation.EveryTargetEvaluator)
  res = ev.run(apply_fn, v, (x, y))
  assert res.distance.shape == res.success.shape == (6, 2)
  assert res.x_adv.shape == (6, 2, 4)
  np.testing.assert_array_equal(res.targets, (y[:, None] + [1, 2]) % 3)
  # Each pair is minimal_distance's on its own (target) row.
  md = evaluation.minimal_distance(
      apply_fn, v, np.repeat(x, 2, 0), res.targets.reshape(-1), attack=fgsm,
      norm="linf", targeted=True, batch_size=12)
  np.testing.assert_array_equal(res.distance.reshape(-1), md.distance)
  np.testing.assert_array_equal(res.success.reshape(-1), md.success)
  reached = np.argmax(np.asarray(apply_fn(v, res.x_adv)), -1) == res.targets
  np.testing.assert_array_equal(res.success, reached)
  assert res.success.any()
  # The source x target grid: the input at its label, x_adv elsewhere.
  images, ok = res.by_target(x, 3)
  assert images.shape == (6, 3, 4) and ok.shape == (6, 3)
  np.testing.assert_array_equal(images[np.arange(6), y], x)
  assert ok[np.arange(6), y].all()
  np.testing.assert_array_equal(images[0, res.targets[0, 1]], res.x_adv[0, 1])
  s = res.summary()
  assert s["norm"] == "linf" and s["average"] == evaluation.target_cases(
      res.distance, res.success)["average"]
  assert 0 < s["seconds"] == res.seconds < 60  # the attacks' wall clock


def test_every_target_untargeted_has_the_best_case_only(affine):
  apply_fn, v, x, y = affine
  res = evaluation.every_target(apply_fn, v, x, y, attack=deepfool,
                                norm="l2", num_classes=3, targeted=False,
                                batch_size=4)
  assert res.distance.shape == (6, 1)
  np.testing.assert_array_equal(res.targets[:, 0], y)
  md = evaluation.minimal_distance(apply_fn, v, x, y, attack=deepfool,
                                   norm="l2", batch_size=6)
  np.testing.assert_array_equal(res.distance[:, 0], md.distance)
  s = res.summary()
  assert s["average"] is None and s["worst"] is None
  assert s["best"]["success"] == pytest.approx(md.success.mean())
  with pytest.raises(ValueError, match="untargeted"):
    res.by_target(x, 3)
