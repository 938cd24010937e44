"""Tests for advjax.evaluation.throughput: the timing protocol, peers side
by side, quality of adversarials, projections at several stopping rules,
training steps and epochs, and the cells of timing tables."""
import collections

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from advjax import data, models, report, sharding, training
from advjax.evaluation import throughput as tp


def test_time_calls_interleaves_repeats():
  order, seen = [], []
  timings = tp.time_calls([lambda: order.append("a"),
                           lambda: order.append("b")], repeats=3,
                          on_call=seen.append)
  assert order == ["a", "b"] * 4  # warm-up round + 3 timed rounds
  assert seen == [0, 1] * 4
  for timing in timings:
    assert len(timing.times) == 3
    assert timing.min <= timing.median <= timing.max


def test_timing_fields_known_answer():
  t = tp.Timing(0.5, 0.25, 1., 2., (0.25, 0.5, 1.))
  f = tp.timing_fields(t, 10, per="step", prefix="p_")
  assert f == {"p_images_per_s": 20., "p_ms_per_step": 500., "p_ms_min": 250.,
               "p_ms_max": 1000., "p_ms_all": [250., 500., 1000.],
               "p_first_call_s": 2.}
  assert tp.time_once(lambda: None) >= 0


def test_jit_call_runs_to_completion_and_compiles_once():
  traces = []

  def f(x, eps):
    traces.append(1)
    return x * eps

  call = tp.jit_call(f, jnp.ones(3), jnp.float32(2.))
  np.testing.assert_allclose(call(), 2. * np.ones(3))
  call()
  assert len(traces) == 1


def test_time_groups_runs_groups_one_after_the_other():
  order = []
  a = [("a", lambda: order.append("a")), ("b", lambda: order.append("b"))]
  c = [("c", lambda: order.append("c"))]
  ta, tc = tp.time_groups([a, c], repeats=2)
  assert order == ["a", "b"] * 3 + ["c"] * 3
  assert len(ta) == 2 and len(tc) == 1


def _items(order):
  peer = tp.Peer("other", 2, lambda: order.append("p"))
  return [tp.Item({"attack": "x", "norm": "-"}, 4,
                  lambda: order.append("x"), peer),
          tp.Item({"attack": "y", "norm": "-"}, 4,
                  lambda: order.append("y"))]


@pytest.mark.parametrize("together", [False, True])
def test_time_items_rows_and_peer_order(together):
  order = []
  rows = tp.time_items(_items(order), repeats=1, together=together)
  # Apart: advjax's calls, then the peers' (two runtimes never overlap);
  # together: each item beside its peer in one interleaved group.
  expected = (["x", "p", "y"] * 2 if together
              else ["x", "y"] * 2 + ["p"] * 2)
  assert order == expected
  (x, t_x, t_peer), (y, _, none) = rows
  assert x["peer"] == "other" and none is None and t_peer is not None
  assert x["peer_ratio"] == pytest.approx(
      x["images_per_s"] / x["peer_images_per_s"])
  assert x["peer_images_per_s"] == pytest.approx(2 / t_peer.median)
  assert x["images_per_s"] == pytest.approx(4 / t_x.median)
  assert y["peer"] is None and y["peer_ratio"] is None


def test_ratio():
  assert tp.ratio(3., 2.) == 1.5
  assert tp.ratio(None, 2.) is None and tp.ratio(1., 0.) is None


def test_adversarial_quality_scores_with_the_model():
  x = np.zeros((3, 2, 2, 1), np.float32)
  x_adv = x + np.array([0.5, 1., 0.])[:, None, None, None]
  # A "model" that predicts class 1 where the image moved, else 0.
  predict = lambda a: (np.abs(a).sum(axis=(1, 2, 3)) > 0).astype(int)
  q = tp.adversarial_quality(predict, x_adv, x, np.zeros(3, int),
                             prefix="p_")
  assert q["p_success_rate"] == pytest.approx(2 / 3)
  assert q["p_mean_l2"] == pytest.approx((1. + 2.) / 2)  # successful only
  assert q["p_mean_l0"] == pytest.approx(4.)  # all 4 features moved
  none = tp.adversarial_quality(predict, x, x, np.zeros(3, int))
  assert none == {"success_rate": 0., "mean_l2": None, "mean_l0": None}
  hit = tp.adversarial_quality(predict, x_adv, x, np.zeros(3, int),
                               targets=np.array([1, 0, 0]))
  assert hit["success_rate"] == pytest.approx(2 / 3)  # rows 0 and 2


def test_score_adversarials_scores_both_libraries_alike():
  Result = collections.namedtuple("Result", "x_adv n_iters")
  x = np.zeros((4, 1, 1, 1), np.float32)
  y = np.zeros(4, int)
  moved = x + 1.
  predict = lambda a: (np.asarray(a).reshape(len(a), -1).sum(1) > 0
                       ).astype(int)
  items = [tp.Item({"attack": "a", "targeted": False}, 4,
                   lambda: Result(moved, np.array([1, 2, 3, 4])),
                   tp.Peer("peer", 2, lambda: x[:2])),  # the peer fails
           tp.Item({"attack": "b", "targeted": True}, 4,
                   lambda: Result(moved, np.ones(4)))]
  measured = tp.time_items(items, 1)
  rows = tp.score_adversarials(
      items, measured, predict, x, y, targets=np.ones(4, int),
      run_peer=lambda p: (p.call(), {"peer_calls": 7}))
  a, b = rows
  assert a["success_rate"] == 1. and a["mean_l2"] == 1.
  assert a["median_iters"] == 2.5
  assert a["peer_success_rate"] == 0. and a["peer_mean_l2"] is None
  assert a["matched_success_rate"] == 1. and a["peer_calls"] == 7
  assert a["ms_per_image"] == pytest.approx(1e3 / a["images_per_s"])
  assert b["success_rate"] == 1.  # reached the targets
  assert b["peer_success_rate"] is None and b["peer_ms_per_image"] is None


def test_success_rates_of_both_libraries():
  y = np.array([0, 0, 1, 1])
  predict = lambda a: np.asarray(a)[:, 0]  # the "image" is its class
  items = [tp.Item({"attack": "a"}, 4, lambda: np.array([[1], [0], [0], [1]]),
                   tp.Peer("p", 2, lambda: np.array([[1], [1]]))),
           tp.Item({"attack": "b"}, 2, lambda: np.array([[0], [0]]))]
  rows = tp.success_rates(items, tp.time_items(items, 1, together=True),
                          predict, y)
  assert rows[0]["success_rate"] == 0.5 and rows[0]["peer_success_rate"] == 1.
  assert rows[1]["success_rate"] == 0. and rows[1]["peer_success_rate"] is None


def test_peak_host_bytes_counts_a_numpy_allocation():
  out, peak = tp.peak_host_bytes(lambda: np.ones(1 << 20, np.uint8).sum())
  assert out == 1 << 20 and peak >= 1 << 20


def test_sinkhorn_settings_default_first_each_once():
  assert tp.sinkhorn_settings(1e-6, 1.5, (1e-4, 1e-6, 1e-4), (1.5, 1.5, 1.)
                              ) == [(1e-6, 1.5), (1e-4, 1.5), (1e-4, 1.)]
  with pytest.raises(ValueError, match="as long"):
    tp.sinkhorn_settings(1e-6, 1.5, (1e-4,), ())


@pytest.mark.slow  # compiles the projection in float32 and float64 twice
def test_time_projections_scores_rows_against_the_converged_point():
  x = data.mnist_like_images(3, (8, 8, 1))
  w = x + 0.1 * np.asarray(jax.random.normal(jax.random.key(0), x.shape))
  kw = dict(eps=0.5, lam=100., kernel_size=3, max_iterations=30, repeats=1)
  plain = tp.time_projections(x, w, settings=[(1e-6, 1.5), (1e-2, 1.)],
                              reference_status="off", **kw)
  assert plain["status"] == "ok" and plain["reference"] == {"status": "off"}
  assert len(plain["rows"]) == 2 and plain["tol"] == 1e-6
  assert plain["converged_point"]["converged"] == 3
  loose, tight = plain["rows"][1], plain["rows"][0]
  assert 0 <= tight["max_abs_error"] <= loose["max_abs_error"] < 1
  assert tight["median_iters"] >= loose["median_iters"]
  # A "reference" that returns x: scored, and no row matches its error
  # unless one is as far from z*.
  ref = tp.ProjectionReference(lambda: None, lambda: (x, 9), 29,
                               lambda: (x, 99), info={"directory": "d"})
  res = tp.time_projections(x, w, settings=[(1e-6, 1.5)], reference=ref,
                            **kw)
  r = res["reference"]
  assert r["status"] == "ok" and r["directory"] == "d" and r["iterations"] == 9
  assert r["converged_agreement"]["reference_iters"] == 99
  assert r["converged_agreement"]["max_abs_diff"] == r["max_abs_error"]
  assert r["speed_ratio"] == pytest.approx(
      res["images_per_s"] / r["images_per_s"])
  if res["max_abs_error"] <= r["max_abs_error"]:
    assert r["matched"]["tol"] == 1e-6


def test_cells():
  assert tp.rate_cell(1234.4) == "1234" and tp.rate_cell(5.678) == "5.68"
  assert tp.span_cell({"p_ms_min": 1., "p_ms_max": 2.25}, "p_") == "1.0-2.2"
  ok = {"peer": "torch", "v": 2.}
  assert tp.peer_missing(ok, "ok") is None
  assert tp.peer_missing({"peer": None}, "ok") == "n/a"
  assert tp.peer_missing(ok, "off (peers=False)") == "off"
  assert tp.peer_missing(ok, "peers not installed: torch") == "not installed"
  cols = tp.peer_columns([("a", "v", ".1f"), ("b", "v", ".0f")], "off",
                         why_at=1)
  table = report.rows_table([ok], cols)
  assert table.rows == [["-", "off"]]
  table = report.rows_table([ok], tp.peer_columns(cols[:0] + [
      ("a", "v", ".1f")], "ok"))
  assert table.rows == [["2.0"]]
  assert tp.peer_cells({"peer": None}, "ok", None, 3, at=1) == (
      "-", "n/a", "-")
  line = tp.machine_line({**tp.machine(), "gpu_used": False})
  assert line.startswith("machine: ") and line.endswith("GPU used: no")


def test_epoch_fields_known_answer():
  f = tp.epoch_fields([5., 1., 3., 2.], images=100)
  assert f["compile_plus_epoch_s"] == 5. and f["epoch_s"] == 2.
  assert (f["epoch_s_min"], f["epoch_s_max"]) == (1., 3.)
  assert f["images_per_s"] == 50. and f["epoch_s_all"] == [5., 1., 3., 2.]
  with pytest.raises(ValueError, match=">= 2"):
    tp.epoch_fields([1.], 10)


def test_max_abs_diff():
  a = {"w": np.zeros(3), "b": np.ones(2)}
  assert tp.max_abs_diff(a, a) == 0.
  assert tp.max_abs_diff(a, {"w": np.array([0., -2., 0.]),
                             "b": np.ones(2)}) == 2.


def test_step_call_carries_its_state_forward():
  model = models.get_model("wong_mnist", num_classes=10)
  opt = optax.sgd(0.1)
  state = jax.device_get(training.create_train_state(
      model, opt, jax.random.key(0), (8, 8, 1)))
  rng = np.random.default_rng(0)
  x = rng.uniform(size=(4, 8, 8, 1)).astype(np.float32)
  y = rng.integers(0, 10, 4).astype(np.int32)
  step = training.make_train_step(model, opt, "standard")
  call = tp.StepCall(step, state, x, y, sharding.make_mesh(jax.devices()[:1]))
  call()
  first, params = float(call.metrics["loss"]), call.params
  call()
  assert float(call.metrics["loss"]) < first  # same batch, one SGD step on
  assert tp.max_abs_diff(params, call.params) > 0
  assert tp.max_abs_diff(state.params, params) > 0  # the host copy kept
