"""Tests for advjax/evaluation.py."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from advjax import evaluation
from advjax.attacks import gradient as G


@pytest.fixture(scope="module")
def linear():
  w = jax.random.normal(jax.random.key(0), (16, 4))
  apply_fn = lambda variables, x: x.reshape(x.shape[0], -1) @ variables["w"]
  x = np.asarray(jax.random.uniform(jax.random.key(1), (37, 4, 4, 1)))
  y = np.array(jnp.argmax(apply_fn({"w": w}, x), -1), np.int32)
  y[::5] = (y[::5] + 1) % 4  # some clean mistakes
  return apply_fn, {"w": w}, x, y


def test_every_example_counted_and_matches_direct_computation(linear):
  apply_fn, variables, x, y = linear
  attack = functools.partial(G.fgsm)
  eps = [0., 0.02, 0.05, 0.1]
  res = evaluation.robust_accuracy(apply_fn, variables, x, y, attack=attack,
                                   eps=eps, batch_size=16)
  assert res.correct.shape == (4, 37) and res.clean_correct.shape == (37,)
  f = lambda z: apply_fn(variables, z)
  for i, e in enumerate(eps):
    direct = np.asarray(jnp.argmax(f(G.fgsm(f, jnp.asarray(x), jnp.asarray(y),
                                            eps=e)), -1) == y)
    np.testing.assert_array_equal(res.correct[i], direct)
    assert res.accuracy[i] == pytest.approx(direct.mean())
  np.testing.assert_array_equal(res.correct[0], res.clean_correct)
  assert res.clean_accuracy == pytest.approx(
      np.mean(np.argmax(f(x), -1) == y))
  assert np.all(np.diff(res.accuracy) <= 0)  # a linear model: monotone in eps
  # The batch size does not change the answer (padding is masked out).
  res_one = evaluation.robust_accuracy(apply_fn, variables, x, y,
                                       attack=attack, eps=eps, batch_size=37)
  np.testing.assert_array_equal(res.correct, res_one.correct)
  assert "| clean |" in res.table()


def test_one_compilation_for_sweeps_and_batches(linear):
  apply_fn, variables, x, y = linear
  traces = []

  def attack(model_fn, x, y, *, eps, key):
    traces.append(1)
    return G.pgd(model_fn, x, y, eps=eps, key=key, steps=3)

  fn = evaluation.make_robust_accuracy_fn(apply_fn, attack)
  for eps in ([0., 0.1, 0.2], [0.05, 0.3, 0.5]):
    evaluation.robust_accuracy(apply_fn, variables, x, y, attack=attack,
                               eps=eps, batch_size=16, compiled=fn,
                               key=jax.random.key(0))
  assert len(traces) == 1  # 3 batches x 2 sweeps, one trace


def test_keys_make_runs_repeatable(linear):
  apply_fn, variables, x, y = linear
  attack = functools.partial(G.noise, norm="linf")
  run = lambda k: evaluation.robust_accuracy(
      apply_fn, variables, x, y, attack=attack, eps=[0.3], batch_size=16,
      key=jax.random.key(k)).correct
  np.testing.assert_array_equal(run(1), run(1))


def test_bad_inputs(linear):
  apply_fn, variables, x, y = linear
  kw = dict(attack=G.fgsm, batch_size=8)
  with pytest.raises(ValueError, match="eps must be >= 0"):
    evaluation.robust_accuracy(apply_fn, variables, x, y, eps=[0.1, -1.], **kw)
  with pytest.raises(ValueError, match="at least one"):
    evaluation.robust_accuracy(apply_fn, variables, x, y, eps=[], **kw)
  with pytest.raises(ValueError, match="labels must be in"):
    evaluation.robust_accuracy(apply_fn, variables, x, y + 4, eps=[0.1], **kw)
  with pytest.raises(ValueError, match="NaN"):
    xn = x.copy()
    xn[30, 0, 0, 0] = np.nan
    evaluation.robust_accuracy(apply_fn, variables, xn, y, eps=[0.1], **kw)


def test_eps_chunks_give_the_same_answer_as_one_call(linear):
  apply_fn, variables, x, y = linear
  eps = [0., 0.02, 0.05, 0.1, 0.2]
  kw = dict(attack=G.fgsm, eps=eps, batch_size=16)
  whole = evaluation.robust_accuracy(apply_fn, variables, x, y, **kw)
  chunked = evaluation.robust_accuracy(apply_fn, variables, x, y,
                                       eps_per_call=2, **kw)
  np.testing.assert_array_equal(whole.correct, chunked.correct)
  assert chunked.correct.shape == (5, 37)
