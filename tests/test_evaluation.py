"""Tests for advjax/evaluation: robust_accuracy and the shared iterator."""
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


# --------------------------------------------------------------------------
# The shared iterator: determinism across batch sizes and devices, resume.
# --------------------------------------------------------------------------
@pytest.mark.slow  # three evaluators compiled for two meshes; CI runs it
def test_results_are_bit_identical_for_batch_sizes_and_device_counts(
    digits_model):
  """Every evaluator's per-example result is the same for batch sizes 64
  and 360 and for 1 and 8 devices (random starts from per-example keys)."""
  from advjax.attacks.fab import fab
  from advjax import sharding
  m = digits_model
  x, y = np.asarray(m.x_test), np.asarray(m.y_test)
  key = jax.random.key(7)
  runs = {}
  for devices in (jax.devices()[:1], jax.devices()):
    mesh = sharding.make_mesh(devices)
    for batch in (64, 360):
      kw = dict(batch_size=batch, mesh=mesh, device_batch_size=16, key=key)
      ra = evaluation.robust_accuracy(
          m.apply_fn, m.variables, x, y,
          attack=functools.partial(G.pgd, steps=3, restarts=2),
          eps=[0.05, 0.1], **kw)
      aa = evaluation.autoattack(m.apply_fn, m.variables, x, y, eps=0.1,
                                 steps=4, queries=30, **kw)
      md = evaluation.minimal_distance(
          m.apply_fn, m.variables, x[:96], y[:96],
          attack=functools.partial(fab, norm="l2", steps=5), norm="l2", **kw)
      runs[(len(devices), batch)] = (ra.correct, aa.robust, aa.x_adv,
                                     aa.broken_by, md.distance)
  ref = runs[(1, 64)]
  assert 0 < ref[1].mean() < ref[0][0].mean() <= 1  # nontrivial outcomes
  for k, r in runs.items():
    for a, b in zip(ref, r):
      np.testing.assert_array_equal(a, b, err_msg=str(k))


def test_resume_store_rejects_another_evaluation_and_corrupt_parts(
    linear, tmp_path):
  from advjax import sharding
  apply_fn, variables, x, y = linear
  kw = dict(attack=G.fgsm, batch_size=8, device_batch_size=8,
            mesh=sharding.make_mesh(jax.devices()[:1]),
            workdir=str(tmp_path / "w"))
  first = evaluation.robust_accuracy(apply_fn, variables, x, y, eps=[0.1],
                                     **kw)
  parts = sorted((tmp_path / "w" / "sweep").glob("part-*.npz"))
  assert len(parts) == 5  # 37 examples in steps of 8, saved every step
  again = evaluation.robust_accuracy(apply_fn, variables, x, y, eps=[0.1],
                                     **kw)  # all restored, nothing computed
  np.testing.assert_array_equal(first.correct, again.correct)
  with pytest.raises(evaluation.EvaluationMismatchError,
                     match="different evaluation.*eps"):
    evaluation.robust_accuracy(apply_fn, variables, x, y, eps=[0.2], **kw)
  with pytest.raises(evaluation.EvaluationMismatchError, match="variables"):
    evaluation.robust_accuracy(apply_fn, {"w": variables["w"] * 2}, x, y,
                               eps=[0.1], **kw)
  parts[2].write_bytes(b"<html>not an npz</html>")
  with pytest.raises(evaluation.EvaluationMismatchError,
                     match="part-000002.npz is corrupt"):
    evaluation.robust_accuracy(apply_fn, variables, x, y, eps=[0.1], **kw)


RESUME_SCRIPT = """
import os, signal, sys
import jax, numpy as np
from advjax import data, evaluation, models
from advjax.evaluation import batching

workdir, out, kill_after = sys.argv[1], sys.argv[2], int(sys.argv[3])
saves = [0]
save = batching.ResultStore.save

def save_then_maybe_die(self, stage, arrays):
  save(self, stage, arrays)
  saves[0] += 1
  if saves[0] == kill_after:  # a hard kill between two steps of a stage
    os.kill(os.getpid(), signal.SIGKILL)

batching.ResultStore.save = save_then_maybe_die
test = data.load("digits", "test", limit=160)
model = models.get_model("wong_mnist")
variables = models.init_model(model, jax.random.key(3), (8, 8, 1))
apply_fn = lambda v, x: model.apply(v, x, train=False)
r = evaluation.autoattack(apply_fn, variables, test.images, test.labels,
                          eps=0.05, steps=6, queries=60, batch_size=32,
                          device_batch_size=16, workdir=workdir,
                          key=jax.random.key(1))
np.savez(out, robust=r.robust, x_adv=r.x_adv, broken_by=r.broken_by)
"""


@pytest.mark.slow  # three evaluation subprocesses; CI runs it (README)
def test_killed_autoattack_resumes_to_identical_results(tmp_path):
  import os
  import subprocess
  import sys
  script = tmp_path / "evaluate.py"
  script.write_text(RESUME_SCRIPT)
  env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
  run = lambda w, out, kill: subprocess.run(
      [sys.executable, str(script), str(tmp_path / w), str(tmp_path / out),
       str(kill)], env=env, capture_output=True, text=True, timeout=600)
  full = run("full", "full.npz", 10 ** 9)
  assert full.returncode == 0, full.stderr[-2000:]
  killed = run("cut", "cut.npz", 9)  # inside the APGD-T stages
  assert killed.returncode == -9, killed.stderr[-2000:]
  assert not (tmp_path / "cut.npz").exists()
  resumed = run("cut", "cut.npz", 10 ** 9)
  assert resumed.returncode == 0, resumed.stderr[-2000:]
  a, b = np.load(tmp_path / "full.npz"), np.load(tmp_path / "cut.npz")
  for k in ("robust", "x_adv", "broken_by"):
    np.testing.assert_array_equal(a[k], b[k])
  assert 0 < a["robust"].mean() < 1


@pytest.mark.slow  # a strength check on the trained digits model (default run: under ten minutes); CI runs it (README)
def test_minimal_distance_of_a_radius_search_is_the_radius(digits_model):
  """norm='wasserstein': the distance is the radius the search needed; it
  equals wasserstein_search's own per-example radii (inf if never fooled,
  0 where the model is already wrong)."""
  from advjax.attacks.wasserstein import wasserstein_search
  m = digits_model
  x, y = np.asarray(m.x_test[:24]), np.asarray(m.y_test[:24])
  search = functools.partial(wasserstein_search, eps0=0.01, factor=1.5,
                             grow_every=2, max_steps=12)
  md = evaluation.minimal_distance(m.apply_fn, m.variables, x, y,
                                   attack=search, norm="wasserstein",
                                   batch_size=16)
  direct = search(m.model_fn, jnp.asarray(x), jnp.asarray(y))
  np.testing.assert_array_equal(md.distance, np.asarray(direct.eps))
  assert np.isfinite(md.distance).any()


def test_targeted_minimal_distance_counts_pixels_reaching_the_target(
    digits_model):
  """targeted=True: y are targets, success is the prediction y; norm 'l0'
  counts the changed pixels (JSMA's and CW-L0's distortion)."""
  from advjax.attacks import jsma
  m = digits_model
  x, y = np.asarray(m.x_test[:16]), np.asarray(m.y_test[:16])
  pred = np.asarray(jnp.argmax(m.model_fn(jnp.asarray(x)), -1))
  targets = ((y + 1) % 10).astype(np.int32)
  targets[0] = pred[0]  # already the target: distance 0, not "clean"
  md = evaluation.minimal_distance(m.apply_fn, m.variables, x, targets,
                                   attack=jsma, norm="l0", targeted=True,
                                   batch_size=16)
  adv = np.asarray(jsma(m.model_fn, jnp.asarray(x), jnp.asarray(targets)))
  reached = np.asarray(jnp.argmax(m.model_fn(jnp.asarray(adv)), -1)) == targets
  changed = (np.abs(adv - x) > 0).reshape(16, -1).sum(1)
  assert md.distance[0] == 0 and not md.clean[0] and md.success[0]
  np.testing.assert_array_equal(md.success[1:], reached[1:])
  np.testing.assert_array_equal(md.distance[1:][reached[1:]],
                                changed[1:][reached[1:]])
  assert np.all(np.isinf(md.distance[1:][~reached[1:]]))
  assert 0 < reached[1:].mean() < 1  # both cases occur
  with pytest.raises(ValueError, match="unknown norm"):
    evaluation.minimal_distance(m.apply_fn, m.variables, x, y, attack=jsma,
                                norm="l3")


def test_top_k_and_targeted_robust_accuracy(tmp_path):
  """Top-k on an affine model with a known ranking; a targeted FGSM's
  target hits; results independent of the batch size, and resumed."""
  rng = np.random.default_rng(0)
  k_classes, d, n = 12, 20, 37
  w = rng.normal(size=(d, k_classes)).astype(np.float32)
  apply_fn = lambda v, x: x.reshape(x.shape[0], -1) @ v["w"]
  variables = {"w": jnp.asarray(w)}
  x = rng.uniform(size=(n, d, 1, 1)).astype(np.float32)
  y = rng.integers(0, k_classes, n).astype(np.int32)
  logits = x.reshape(n, -1) @ w
  rank = (logits > logits[np.arange(n), y][:, None]).sum(1)
  attack = functools.partial(G.fgsm)
  res = evaluation.robust_accuracy(apply_fn, variables, x, y, attack=attack,
                               eps=[0.0, 0.3], top_k=(1, 5), batch_size=8,
                               device_batch_size=4)
  np.testing.assert_array_equal(res.clean_correct_topk[:, 0], rank < 1)
  np.testing.assert_array_equal(res.clean_correct_topk[:, 1], rank < 5)
  np.testing.assert_array_equal(res.correct_topk[0], res.clean_correct_topk)
  np.testing.assert_array_equal(res.correct_topk[:, :, 0], res.correct)
  assert res.accuracy_topk.shape == (2, 2)
  assert np.all(res.accuracy_topk[:, 1] >= res.accuracy_topk[:, 0])
  assert "top-5" in res.table()
  # Targeted: a large targeted FGSM step on an affine model reaches its
  # target more often than nothing; accuracy is against the true labels.
  t = (y + 1 + rng.integers(0, k_classes - 1, n)) % k_classes
  targeted = functools.partial(G.fgsm, targeted=True)
  again = None
  for bs in (8, 37):
    r = evaluation.robust_accuracy(apply_fn, variables, x, y, attack=targeted,
                               eps=[0.0, 0.5], top_k=(1, 5), targets=t,
                               batch_size=bs, device_batch_size=4,
                               workdir=str(tmp_path / f"b{bs}"))
    assert r.target_topk.shape == (2, n, 2)
    t_logits = logits[np.arange(n), t][:, None]
    np.testing.assert_array_equal(r.target_topk[0, :, 1],
                                  (logits > t_logits).sum(1) < 5)
    assert r.target_success_topk[1, 0] > r.target_success_topk[0, 0]
    if again is not None:
      np.testing.assert_array_equal(r.correct_topk, again.correct_topk)
      np.testing.assert_array_equal(r.target_topk, again.target_topk)
    again = r
  resumed = evaluation.robust_accuracy(apply_fn, variables, x, y,
                                   attack=targeted, eps=[0.0, 0.5],
                                   top_k=(1, 5), targets=t, batch_size=37,
                                   device_batch_size=4,
                                   workdir=str(tmp_path / "b37"))
  np.testing.assert_array_equal(resumed.target_topk, again.target_topk)
  with pytest.raises(ValueError, match="targets must be"):
    evaluation.robust_accuracy(apply_fn, variables, x, y, attack=targeted,
                           eps=[0.1], targets=t[:3])


# --------------------------------------------------------------------------
# map_batched: the public batched map.
# --------------------------------------------------------------------------
TRACES = []


def _noisy_logits(consts, batch):
  """Per-example noise from the per-example key, through a model."""
  TRACES.append(1)
  w = consts
  noise = jax.vmap(lambda k: jax.random.normal(k, (16,)))(batch["key"])
  x = batch["x"].reshape(batch["x"].shape[0], -1) + 0.1 * noise
  return {"logits": x @ w, "mask": batch["mask"]}, batch["index"]


def _one(consts, example):
  return jnp.sum(example["x"]) * consts + jax.random.uniform(example["key"])


def test_map_batched_is_independent_of_batch_size_and_devices(linear):
  from advjax import sharding
  _, variables, x, _ = linear
  key = jax.random.key(3)
  TRACES.clear()
  runs = []
  for devices in (jax.devices()[:1], jax.devices()):
    mesh = sharding.make_mesh(devices)
    for batch_size in (8, 64):
      out, index = evaluation.map_batched(
          _noisy_logits, {"x": x}, variables["w"], key=key, mesh=mesh,
          batch_size=batch_size, device_batch_size=4)
      runs.append(out["logits"])
      np.testing.assert_array_equal(index, np.arange(37))  # in order
      assert out["mask"].all()  # padding rows are dropped
  assert len(TRACES) == 2  # one compilation per mesh, any batch size
  for r in runs[1:]:
    np.testing.assert_array_equal(r, runs[0])
  # The noise is the example's own: computed alone, it is the same.
  alone = np.asarray(_noisy_logits(variables["w"], {
      "x": x[5:6], "key": jax.random.fold_in(key, 5)[None],
      "index": np.array([5]), "mask": np.array([True])})[0]["logits"])
  np.testing.assert_allclose(runs[0][5:6], alone, rtol=1e-5, atol=1e-6)


def test_map_batched_per_example_subsets_and_errors(linear):
  _, _, x, _ = linear
  key = jax.random.key(0)
  full = evaluation.map_batched(_one, {"x": x}, 2., key=key,
                                per_example=True)
  assert full.shape == (37,)
  np.testing.assert_allclose(
      full, 2 * x.reshape(37, -1).sum(1) + np.asarray(jax.vmap(
          lambda i: jax.random.uniform(jax.random.fold_in(key, i)))(
              np.arange(37))), rtol=1e-5)
  part = evaluation.map_batched(_one, {"x": x}, 2., key=key,
                                per_example=True, index=[30, 2])
  np.testing.assert_array_equal(part, full[[30, 2]])
  empty = evaluation.map_batched(_one, {"x": x[:0]}, 2., key=key,
                                 per_example=True)
  assert empty.shape == (0,)
  with pytest.raises(ValueError, match="different lengths"):
    evaluation.map_batched(_one, {"x": x, "y": x[:3]}, 2.)
  with pytest.raises(ValueError, match="no arrays"):
    evaluation.map_batched(_one, {}, 2.)
  with pytest.raises(ValueError, match=r"index outside \[0, 37\)"):
    evaluation.map_batched(_one, {"x": x}, 2., index=[37])


def test_adversarial_examples_on_the_batched_map(linear):
  """FGSM's image of every input (its closed form on a linear model), any
  batch size; a random attack's draws are the example's own."""
  apply_fn, variables, x, y = linear
  eps = 0.1
  out = evaluation.adversarial_examples(apply_fn, variables, x, y,
                                        attack=G.fgsm, eps=eps)
  assert out.shape == x.shape and out.dtype == x.dtype
  np.testing.assert_allclose(out, G.fgsm(lambda z: apply_fn(variables, z),
                                         jnp.asarray(x), jnp.asarray(y),
                                         eps=eps), atol=1e-6)
  noisy, key = G.noise, jax.random.key(4)
  a = evaluation.adversarial_examples(apply_fn, variables, x, y, key=key,
                                      attack=noisy, eps=eps, batch_size=8,
                                      device_batch_size=4)
  b = evaluation.adversarial_examples(apply_fn, variables, x, y, key=key,
                                      attack=noisy, eps=eps)
  np.testing.assert_array_equal(a, b)
  assert 0 < np.abs(a - x).max() <= eps + 1e-6
