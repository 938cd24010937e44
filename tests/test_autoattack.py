"""Tests for advjax/evaluation/autoattack.py and the masking diagnostics."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from advjax import evaluation, projections, sharding
from advjax.attacks import gradient as G


def test_stages_of_each_version():
  names = lambda v, **kw: [s.name for s in evaluation.autoattack_stages(
      v, 10, **kw)]
  std = names("standard")
  assert std == (["apgd-ce"] + [f"apgd-t-{t}" for t in range(2, 11)] +
                 [f"fab-t-{t}" for t in range(2, 11)] + ["square"])
  plus = evaluation.autoattack_stages("plus", 10)
  assert [s.attack for s in plus].count("apgd-ce") == 5
  assert [s.name for s in plus if s.attack == "fab"][1] == "fab-1"
  assert dict(plus[11].options)["random_start"]  # fab-1: its 2nd restart
  assert not dict(plus[10].options)["random_start"]
  assert names("rand") == ["apgd-ce", "apgd-dlr"]
  assert names("custom", attacks=["square"]) == ["square"]
  assert len(names("standard")) == 20 and len(evaluation.autoattack_stages(
      "standard", 5)) == 1 + 4 + 4 + 1  # min(9, K - 1) targets
  with pytest.raises(ValueError, match="only for version='custom'"):
    names("standard", attacks=["square"])
  with pytest.raises(ValueError, match="unknown attacks"):
    names("custom", attacks=["pgd"])
  with pytest.raises(ValueError, match="version must be"):
    names("fast")


@pytest.fixture(scope="module")
def one_device():
  return sharding.make_mesh(jax.devices()[:1])


@pytest.mark.slow  # a strength check on the trained digits model (default run: under ten minutes); CI runs it (README)
def test_autoattack_is_at_most_pgd_and_consistent(digits_model, one_device):
  m = digits_model
  x, y = np.asarray(m.x_test[:128]), np.asarray(m.y_test[:128])
  eps = 0.1
  kw = dict(mesh=one_device, device_batch_size=32, batch_size=128)
  pgd = evaluation.robust_accuracy(
      m.apply_fn, m.variables, x, y,
      attack=functools.partial(G.pgd, steps=20, restarts=4), eps=[eps], **kw)
  r = evaluation.autoattack(m.apply_fn, m.variables, x, y, eps=eps,
                            key=jax.random.key(0), **kw)
  assert r.robust_accuracy <= pgd.accuracy[0]
  assert 0 < r.robust_accuracy < r.clean_accuracy
  assert r.attacks == ("clean", "apgd-ce", "apgd-t", "fab-t", "square")
  assert np.all(np.diff(r.accuracy) <= 0) and r.accuracy[-1] == \
      r.robust_accuracy and r.accuracy[0] == r.clean_accuracy
  # The worst case per example: broken examples are misclassified within
  # eps; robust ones keep x.
  pred = np.asarray(jnp.argmax(m.apply_fn(m.variables, r.x_adv), -1))
  broken = r.broken_by > 0
  assert np.all(pred[broken] != y[broken])
  dist = np.asarray(projections.lp_norm(jnp.asarray(r.x_adv - x), "linf"))
  assert dist.max() <= eps * (1 + 1e-5) + 1e-7
  np.testing.assert_array_equal(r.x_adv[r.robust], x[r.robust])
  np.testing.assert_array_equal(r.robust, r.broken_by == -1)
  assert r.x_adv.min() >= 0 and r.x_adv.max() <= 1
  assert "| square |" in r.table()
  # Masking survivors instead of compacting them changes nothing.
  masked = evaluation.autoattack(m.apply_fn, m.variables, x, y, eps=eps,
                                 key=jax.random.key(0), survivors="mask",
                                 steps=10, queries=50, **kw)
  compact = evaluation.autoattack(m.apply_fn, m.variables, x, y, eps=eps,
                                  key=jax.random.key(0), steps=10,
                                  queries=50, **kw)
  np.testing.assert_array_equal(masked.x_adv, compact.x_adv)
  np.testing.assert_array_equal(masked.broken_by, compact.broken_by)


@pytest.mark.slow  # two more cascades compiled; CI runs it
def test_l2_and_randomised_versions(digits_model, one_device):
  m = digits_model
  x, y = np.asarray(m.x_test[:48]), np.asarray(m.y_test[:48])
  kw = dict(mesh=one_device, device_batch_size=16, steps=5, queries=20)
  r = evaluation.autoattack(m.apply_fn, m.variables, x, y, norm="l2",
                            eps=1.0, **kw)
  assert r.distance.max() <= 1.0 + 1e-5 and r.robust_accuracy < \
      r.clean_accuracy

  def noisy(variables, z, keys):  # a randomised defence: input noise
    n = jax.vmap(lambda k, a: jax.random.normal(k, a.shape))(keys, z)
    return m.apply_fn(variables, jnp.clip(z + 0.05 * n, 0, 1))

  rr = evaluation.autoattack(noisy, m.variables, x, y, eps=0.1,
                             version="rand", eot_iter=2, **kw)
  assert rr.attacks == ("clean", "apgd-ce", "apgd-dlr")
  assert rr.robust_accuracy < rr.clean_accuracy


def test_bad_inputs(digits_model):
  m = digits_model
  x, y = np.asarray(m.x_test[:8]), np.asarray(m.y_test[:8])
  run = functools.partial(evaluation.autoattack, m.apply_fn, m.variables)
  with pytest.raises(ValueError, match="eps must be finite and >= 0"):
    run(x, y, eps=-0.1)
  with pytest.raises(ValueError, match="NCHW"):
    run(x.transpose(0, 3, 1, 2), y, eps=0.1)
  with pytest.raises(ValueError, match="labels must be in"):
    run(x, y + 10, eps=0.1)
  with pytest.raises(ValueError, match="NaN"):
    xn = x.copy()
    xn[3, 2, 2, 0] = np.nan
    run(xn, y, eps=0.1)
  with pytest.raises(TypeError, match="float"):
    run((x * 255).astype(np.uint8), y, eps=0.1)
  with pytest.raises(ValueError, match="L1 needs APGD-L1"):
    run(x, y, eps=0.1, norm="l1")
  with pytest.raises(ValueError, match="survivors"):
    run(x, y, eps=0.1, survivors="drop")


# --------------------------------------------------------------------------
# Diagnostics.
# --------------------------------------------------------------------------
def _diagnose(m, apply_fn, eps=0.1):
  return evaluation.diagnostics(apply_fn, m.variables, m.x_test, m.y_test,
                                eps=eps, n=96, steps=20, square_queries=300,
                                mesh=sharding.make_mesh(jax.devices()[:1]),
                                device_batch_size=32)


@pytest.mark.slow  # a strength check on the trained digits model (default run: under ten minutes); CI runs it (README)
def test_diagnostics_pass_a_well_behaved_model(digits_model):
  d = _diagnose(digits_model, digits_model.apply_fn)
  assert not d.flagged, d.table()
  s = d.summary()
  assert s["flags"] == [] and s["n"] == 96 and s["table"] == d.table()
  assert s["sweep_accuracy"] == d.sweep_accuracy.tolist()
  import json  # pylint: disable=import-outside-toplevel
  json.dumps(s)  # JSON-able
  # The evaluator: the same checks on a Dataset-like pair.
  m = digits_model
  e = evaluation.DiagnosticsEvaluator(0.1, n=96, steps=20, square_queries=300,
                                      device_batch_size=32)
  r = e.run(m.apply_fn, m.variables, (m.x_test, m.y_test))
  assert (r.flags(), r.clean_accuracy, r.apgd_accuracy, r.fgsm_accuracy,
          r.square_accuracy) == ((), d.clean_accuracy, d.apgd_accuracy,
                                 d.fgsm_accuracy, d.square_accuracy)
  assert d.apgd_accuracy <= d.fgsm_accuracy
  assert d.sweep_accuracy[-1] == 0 and d.eps_sweep[-1] == 1.


def test_diagnostics_flag_a_rounding_layer_and_square_still_breaks_it(
    digits_model):
  m = digits_model
  rounded = lambda v, z: m.apply_fn(v, jnp.round(z * 4) / 4)
  d = _diagnose(m, rounded, eps=0.2)
  assert d.flagged and d.zero_gradients and d.zero_gradient_fraction == 1.
  assert d.square_beats_white_box and d.large_eps_not_zero
  assert d.square_accuracy < d.clean_accuracy - 0.1


@pytest.mark.slow  # a strength check on the trained digits model (default run: under ten minutes); CI runs it (README)
def test_diagnostics_flag_probabilities_and_obfuscated_gradients(
    digits_model):
  m = digits_model
  probs = lambda v, z: jax.nn.softmax(m.apply_fn(v, z))
  assert _diagnose(m, probs).probability_outputs
  # Straight-through rounding: autodiff sees the identity, the model rounds.
  straight = lambda v, z: m.apply_fn(
      v, z + jax.lax.stop_gradient(jnp.round(z * 4) / 4 - z))
  d = _diagnose(m, straight)
  assert d.gradient_mismatch and d.finite_difference_error > 0.1


def test_minimal_distance_evaluator(digits_model):
  from advjax.attacks.fab import fab
  m = digits_model
  x, y = np.asarray(m.x_test[:64]), np.asarray(m.y_test[:64])
  res = evaluation.minimal_distance(
      m.apply_fn, m.variables, x, y,
      attack=functools.partial(fab, norm="linf", steps=30), norm="linf",
      mesh=sharding.make_mesh(jax.devices()[:1]), device_batch_size=32)
  assert np.all(res.distance[~res.clean] == 0)
  ok = res.clean & res.success
  assert ok.mean() > 0.9
  d = np.asarray(projections.lp_norm(jnp.asarray(res.x_adv - x), "linf"))
  np.testing.assert_allclose(d[ok], res.distance[ok], rtol=1e-6)
  acc = res.accuracy_at([0., 0.05, 0.1, 1.])
  assert acc[0] == res.clean.mean() and np.all(np.diff(acc) <= 0)
  assert "| 0.05 |" in res.table([0.05])
  ev = evaluation.from_config("minimal_distance", attack=functools.partial(
      fab, norm="linf", steps=30), norm="linf", device_batch_size=32)
  np.testing.assert_array_equal(ev.run(m.apply_fn, m.variables, (x, y)
                                       ).distance, res.distance)


@pytest.mark.slow  # three AutoAttack runs plus a masked one; CI runs it
def test_autoattack_repeats_time_and_agree(digits_model, one_device):
  """Cold and warm calls and masked survivors give the same per-example
  results; the first key's stages are the first row of the seed table."""
  m = digits_model
  x, y = np.asarray(m.x_test[:40]), np.asarray(m.y_test[:40])
  kw = dict(eps=0.1, steps=5, queries=20, mesh=one_device,
            device_batch_size=16, batch_size=40)
  keys = [jax.random.key(0), jax.random.key(5)]
  r = evaluation.autoattack_repeats(m.apply_fn, m.variables, x, y, keys=keys,
                                    compare_masking=True, **kw)
  assert r.warm_identical and r.masked_identical
  assert r.seconds_cold > 0 and r.seconds_warm > 0 and r.seconds_masked > 0
  one = evaluation.autoattack(m.apply_fn, m.variables, x, y, key=keys[1],
                              **kw)
  assert r.seed_accuracy.shape == (2, 5)
  np.testing.assert_allclose(r.seed_accuracy[0], r.first.accuracy)
  np.testing.assert_allclose(r.seed_accuracy[1], one.accuracy)
  s = r.summary()
  assert s["robust"] == evaluation.to_bits(r.first.robust)
  assert s["stages_mean"]["square"] == pytest.approx(
      r.seed_accuracy[:, -1].mean())
  assert len(s["stages_per_seed"]) == 2 and s["masked_identical"]
  assert s["max_distance"] <= 0.1 + 1e-6
  plain = evaluation.autoattack_repeats(m.apply_fn, m.variables, x, y,
                                        keys=keys[:1], **kw)
  assert plain.seconds_masked is None and plain.masked_identical is None
  with pytest.raises(ValueError, match="at least one key"):
    evaluation.autoattack_repeats(m.apply_fn, m.variables, x, y, keys=[],
                                  **kw)
