"""Tests for advjax/attacks/base.py's `attack_loop`: known answers on linear
objectives, feasibility, box masking, optax steps and the tracker."""
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from advjax import projections
from advjax.attacks import base

BOUNDS = (0., 1.)


def linear(w):
  """The per-example objective `w . x_adv`."""
  return lambda z: jnp.sum((z * w).reshape(z.shape[0], -1), axis=1)


def ball_and_box(eps, norm="linf"):
  return lambda d, x: projections.project_box(
      projections.project_ball(d, eps, norm), x, BOUNDS)


@pytest.fixture(scope="module")
def problem():
  """x inside the box with a few pixels near its faces; |w| >= 0.5."""
  x = jax.random.uniform(jax.random.key(0), (3, 4, 4, 1), minval=0.2,
                         maxval=0.8)
  x = x.at[:, 0, 0].set(0.97).at[:, 0, 1].set(0.02)
  n = jax.random.normal(jax.random.key(1), x.shape)
  w = jnp.sign(n) * (0.5 + jnp.abs(n))
  w = w.at[:, 0, 0].set(1.).at[:, 0, 1].set(-1.)
  return x, w


def test_sign_steps_reach_the_clipped_vertex(problem):
  x, w = problem
  eps, step = 0.1, 0.03
  out = base.attack_loop(linear(w), x, jnp.zeros_like(x), steps=6,
                         optimizer=base.steepest_ascent("linf", step),
                         project=ball_and_box(eps))
  vertex = jnp.clip(x + eps * jnp.sign(w), *BOUNDS) - x
  np.testing.assert_allclose(out.delta, vertex, atol=1e-6)
  h = np.asarray(out.loss_history)
  assert h.shape == (6, 3)
  assert np.all(np.diff(h, axis=0) >= -1e-6)
  assert np.all(np.diff(h[:4], axis=0) > 0)  # 3 steps of 0.03 < eps
  np.testing.assert_allclose(h[0], linear(w)(x), rtol=1e-6)
  assert int(out.n_steps) == 6 and out.track is None


class _Seen(NamedTuple):
  n: jax.Array        # iterates seen
  ball: jax.Array     # largest |delta|_2 - eps over them
  box: jax.Array      # largest distance of x + delta outside the box
  values: jax.Array   # [steps + 1, B] objective at each


def _recorder(x, eps, steps):
  def init(delta0):
    return _Seen(jnp.int32(0), jnp.float32(-jnp.inf), jnp.float32(0.),
                 jnp.zeros((steps + 1, x.shape[0])))

  def update(s, delta, values, aux):
    z = x + delta
    return _Seen(s.n + 1,
                 jnp.maximum(s.ball, jnp.max(projections.lp_norm(delta, "l2"))
                             - eps),
                 jnp.maximum(s.box, jnp.max(jnp.maximum(z - 1., -z))),
                 s.values.at[s.n].set(values))

  return base.Tracker(init, update)


def test_every_iterate_is_feasible_from_an_infeasible_start(problem):
  x, w = problem
  eps, steps = 0.5, 8
  delta0 = 5. * jax.random.normal(jax.random.key(2), x.shape)
  with_aux = lambda z: (linear(w)(z), None)
  project = lambda d, x0, s: ball_and_box(eps, "l2")(d, x0)
  out = base.attack_loop(with_aux, x, delta0, steps=steps,
                         optimizer=base.make_optimizer("sgd", "l2", 1.),
                         project=project, track=_recorder(x, eps, steps))
  seen = out.track
  assert int(seen.n) == steps + 1  # every iterate, the final one included
  assert float(seen.ball) <= 1e-5
  assert float(seen.box) <= 1e-6
  np.testing.assert_allclose(seen.values[:steps], out.loss_history, rtol=1e-6)
  np.testing.assert_allclose(seen.values[steps], linear(w)(x + out.delta),
                             rtol=1e-6)


def test_box_masking_spends_the_step_on_pixels_that_can_move():
  x = jnp.full((2, 3, 3, 1), 0.5).at[:, 0, 0].set(1.).at[:, 1, 1].set(0.)
  w = jax.random.normal(jax.random.key(3), x.shape)
  w = w.at[:, 0, 0].set(2.).at[:, 1, 1].set(-2.)  # pointing out of the box
  step = 0.1
  run = lambda bounds: base.attack_loop(
      linear(w), x, jnp.zeros_like(x), steps=1,
      optimizer=base.steepest_ascent("l2", step),
      project=ball_and_box(10., "l2"), bounds=bounds).delta
  masked = w.at[:, 0, 0].set(0.).at[:, 1, 1].set(0.)
  expected = step * masked / projections.per_example(
      projections.lp_norm(masked, "l2"), 4)
  delta = run(BOUNDS)
  np.testing.assert_allclose(delta, expected, atol=1e-7)
  assert np.all(np.asarray(delta[:, 0, 0]) == 0.)
  assert np.all(np.asarray(delta[:, 1, 1]) == 0.)
  np.testing.assert_allclose(projections.lp_norm(delta, "l2"), step,
                             rtol=1e-6)
  # Unmasked, the blocked pixels take part of the step and the box clips it.
  unmasked = projections.lp_norm(run(None), "l2")
  assert np.all(np.asarray(unmasked) < step - 1e-3)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_named_optax_steps_have_their_first_step(problem, optimizer):
  x, w = problem
  lr = 0.01
  delta = base.attack_loop(
      linear(w), x, jnp.zeros_like(x), steps=1,
      optimizer=base.make_optimizer(optimizer, "linf", lr),
      project=ball_and_box(1.), bounds=None).delta
  # SGD: lr * gradient; Adam's first step: lr * g / (|g| + 1e-8).
  expected = lr * (w if optimizer == "sgd" else jnp.sign(w))
  np.testing.assert_allclose(delta, expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("optimizer", [optax.adam(0.02), optax.sgd(0.05)])
def test_optax_optimizers_climb_to_the_vertex(problem, optimizer):
  x, w = problem
  eps = 0.1
  out = base.attack_loop(linear(w), x, jnp.zeros_like(x), steps=12,
                         optimizer=optimizer, project=ball_and_box(eps))
  vertex = jnp.clip(x + eps * jnp.sign(w), *BOUNDS) - x
  np.testing.assert_allclose(out.delta, vertex, atol=1e-5)
  h = np.asarray(out.loss_history)
  assert np.all(h[-1] > h[0])


class _First(NamedTuple):
  i: jax.Array      # iterates seen
  done: jax.Array   # [B] objective reached its threshold
  found: jax.Array  # [B] the iterate at which it first did (-1: not yet)
  first: jax.Array  # [B, ...] that iterate


def test_tracker_freezes_the_first_fooled_iterate_and_stops():
  x = jnp.full((3, 4), 0.5)
  threshold = jnp.array([2., 2.1, 2.25])  # objective 2 + 0.04 k at iterate k
  objective = lambda z: (jnp.sum(z, axis=1),) * 2

  def update(s, delta, values, total):
    newly = (total >= threshold) & ~s.done
    return _First(s.i + 1, s.done | newly, jnp.where(newly, s.i, s.found),
                  jnp.where(newly[:, None], delta, s.first))

  track = base.Tracker(
      lambda d: _First(jnp.int32(0), jnp.zeros(3, bool), jnp.full(3, -1),
                       jnp.zeros_like(d)),
      update, active=lambda s: ~s.done)
  out = base.attack_loop(objective, x, jnp.zeros_like(x), steps=50,
                         optimizer=base.steepest_ascent("linf", 0.01),
                         project=lambda d, x0, s: jnp.clip(d, -1., 1.),
                         track=track)
  np.testing.assert_array_equal(out.track.found, [0, 3, 7])
  assert bool(jnp.all(out.track.done))
  np.testing.assert_array_equal(out.delta, out.track.first)  # frozen there
  np.testing.assert_allclose(out.delta[:, 0], [0., 0.03, 0.07], atol=1e-6)
  assert int(out.n_steps) == 7  # steps that moved an example
  h = np.asarray(out.loss_history)
  assert h.shape == (50, 3)
  assert np.all(np.isfinite(h[:8])) and np.all(np.isnan(h[8:]))


def test_projection_reads_the_tracker_state():
  """A radius that the tracker grows with each iterate it sees."""
  x = jnp.full((2, 3), 0.5)
  track = base.Tracker(lambda d: jnp.float32(0.),
                       lambda r, delta, values, aux: r + 0.02)
  out = base.attack_loop(lambda z: (jnp.sum(z, axis=1), None), x,
                         jnp.zeros_like(x), steps=4,
                         optimizer=base.steepest_ascent("linf", 0.05),
                         project=lambda d, x0, r: jnp.clip(d, -r, r),
                         track=track)
  np.testing.assert_allclose(out.delta, 0.08, atol=1e-6)  # radius after 4
  np.testing.assert_allclose(out.track, 0.1, atol=1e-6)  # 5 iterates seen


@pytest.mark.parametrize("project_start", [True, False])
def test_project_start(problem, project_start):
  x, w = problem
  delta0 = jnp.full_like(x, 0.5)
  project = ball_and_box(0.1)
  out = base.attack_loop(linear(w), x, delta0, steps=0,
                         optimizer=base.steepest_ascent("linf", 0.01),
                         project=project, project_start=project_start)
  expected = project(delta0, x) if project_start else delta0
  np.testing.assert_array_equal(out.delta, expected)
  assert out.loss_history.shape == (0, 3)


def test_apply_and_inputs_drive_a_shared_perturbation():
  """One perturbation added to each step's own minibatch (as `universal`)."""
  data = jax.random.uniform(jax.random.key(4), (10, 3))
  c = jnp.arange(10.) - 4.5  # the objective's weight of each example
  idx = jnp.array([[0, 1], [2, 3], [9, 8], [5, 5]])
  lr = 0.01
  out = base.attack_loop(
      lambda z, i: c[i] * jnp.sum(z, axis=1), data,
      jnp.zeros((1, 3)), steps=4, optimizer=base.make_optimizer(
          "sgd", "linf", lr), project=lambda d, _: d, bounds=None,
      apply=lambda x, d, i: x[i] + d[0], inputs=idx)
  np.testing.assert_allclose(out.delta, jnp.full((1, 3), lr * c[idx].sum()),
                             rtol=1e-6)
  assert out.loss_history.shape == (4, 2)
  np.testing.assert_allclose(out.loss_history[0],
                             c[idx[0]] * jnp.sum(data[idx[0]], axis=1),
                             rtol=1e-6)


def test_apply_takes_any_parameters():
  """Parameters that are not a pixel perturbation: `a x + b` per example."""
  x = jnp.array([[0.2, 0.3], [-0.5, -0.1]])
  params0 = (jnp.zeros(2), jnp.zeros(2))
  step = optax.chain(base.normalized_steepest("linf"),
                     optax.scale(-0.25))  # sign steps of 0.25 per leaf
  out = base.attack_loop(
      lambda z: jnp.sum(z, axis=1), x, params0, steps=8, optimizer=step,
      project=lambda p, _: jax.tree.map(lambda v: jnp.clip(v, -1., 1.), p),
      bounds=None, apply=lambda x0, p: x0 * p[0][:, None] + p[1][:, None])
  a, b = out.delta
  np.testing.assert_allclose(a, [1., -1.])  # the sign of each sum(x)
  np.testing.assert_allclose(b, [1., 1.])


def test_bad_combinations_raise(problem):
  x, w = problem
  kw = dict(steps=1, optimizer=base.steepest_ascent("linf", 0.1),
            project=ball_and_box(0.1))
  with pytest.raises(ValueError, match="bounds=None with apply"):
    base.attack_loop(linear(w), x, jnp.zeros_like(x),
                     apply=lambda x0, d: x0 + d, **kw)
  with pytest.raises(ValueError, match="inputs or track"):
    base.attack_loop(linear(w), x, jnp.zeros_like(x),
                     inputs=jnp.zeros((1,)), track=_recorder(x, 0.1, 1), **kw)


@pytest.mark.parametrize("batch", [3, 16, 37])
def test_compacting_while_loop_matches_a_plain_while_loop(batch):
  """Examples stop on their own (after k_i steps); the compacting loop
  gives every example exactly what a plain while_loop gives, in the original
  order, while its sub-batches shrink."""
  rng = np.random.default_rng(batch)
  stop_at = jnp.asarray(rng.integers(0, 40, batch), jnp.int32)
  x0 = jnp.asarray(rng.normal(size=(batch, 3)), jnp.float32)
  sizes_seen = []

  def body(i, ex):
    sizes_seen.append(ex["x"].shape[0])  # traced once per level
    active = ex["n"] < ex["stop"]
    x = jnp.where(active[:, None], jnp.sin(ex["x"]) + 0.1 * ex["x"], ex["x"])
    return i + 1, {**ex, "x": x, "n": ex["n"] + active}

  ex = {"x": x0, "n": jnp.zeros(batch, jnp.int32), "stop": stop_at}
  cond = lambda i, e: (i < 100) & jnp.any(e["n"] < e["stop"])
  active = lambda e: e["n"] < e["stop"]
  i, out = jax.jit(lambda e: base.compacting_while_loop(
      cond, body, jnp.int32(0), e, active, min_batch=2, factor=2))(ex)
  _, plain = jax.lax.while_loop(lambda s: cond(*s), lambda s: body(*s),
                            (jnp.int32(0), ex))
  np.testing.assert_array_equal(out["n"], stop_at)
  np.testing.assert_array_equal(out["x"], plain["x"])
  assert int(i) == int(stop_at.max())
  expected = [batch]
  while expected[-1] // 2 >= 2:
    expected.append(expected[-1] // 2)
  assert sorted(set(sizes_seen), reverse=True) == expected


def test_unbounded_ignores_eps_and_passes_the_key_when_taken():
  seen = {}

  def keyed(model_fn, x, y, *, key):
    seen["key"] = key
    return x + 1

  def plain(model_fn, x, y):
    return x - 1

  x = jnp.zeros((2, 3))
  np.testing.assert_array_equal(base.Unbounded(keyed)(None, x, None, eps=9.,
                                                      key="k"), x + 1)
  assert seen["key"] == "k"
  np.testing.assert_array_equal(base.call_attack(
      base.Unbounded(plain), None, x, None, eps=0.3, key=None), x - 1)
