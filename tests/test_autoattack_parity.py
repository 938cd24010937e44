"""AutoAttack against the reference (fra31/auto-attack, `pyautoattack`) on
the same weights, through the PyTorch replica of Wong's CNN.

Runs where torch and pyautoattack are installed (the `peers` extra and
`pip install --no-deps pyautoattack`); skipped otherwise. Random starts
differ between the implementations (different generators), so each side is
run with 3 seeds and the means compared: a single run's robust accuracy
after a stage moves by about +-0.7 points between seeds on 360 digits.
"""
import jax
import numpy as np
import pytest

from advjax import evaluation, models, sharding
from benchmarks.peers import torch_peers

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(torch_peers.autoattack_unavailable_reason() is not None,
                       reason=str(torch_peers.autoattack_unavailable_reason())),
]


def _compare(apply_fn, variables, x, y, eps, image_shape, seeds=3):
  net = torch_peers.wong_cnn_from_flax(variables["params"], image_shape)
  ref = [torch_peers.reference_autoattack(net, x, y, eps=eps, seed=s)
         for s in range(seeds)]
  mesh = sharding.make_mesh(jax.devices()[:1])
  ours = [evaluation.autoattack(apply_fn, variables, x, y, eps=eps,
                                key=jax.random.key(s), mesh=mesh)
          for s in range(seeds)]
  stages = ours[0].attacks
  ref_mean = {s: np.mean([r["stages"][s] for r in ref]) for s in stages}
  our_mean = {s: np.mean([o.accuracy[i] for o in ours])
              for i, s in enumerate(stages)}
  return ref_mean, our_mean


def _far_stages(ref_mean, our_mean, tol=0.005):
  """Stages whose seed-mean robust accuracy differs by more than tol."""
  return {s: (ref_mean[s], our_mean[s]) for s in ref_mean
          if abs(ref_mean[s] - our_mean[s]) > tol + 1e-9}


def test_parity_on_a_trained_digits_model(digits_model):
  m = digits_model
  far = _far_stages(*_compare(m.apply_fn, m.variables, np.asarray(m.x_test),
                              np.asarray(m.y_test), 0.1, (8, 8, 1)))
  assert not far, far


def test_parity_on_a_synthetic_28x28_case():
  apply_fn, variables, x, y = models.random_case("wong_mnist", 64,
                                                 (28, 28, 1))
  far = _far_stages(*_compare(apply_fn, variables, x, y, 0.005, (28, 28, 1),
                              seeds=2))
  assert not far, far
