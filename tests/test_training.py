"""Tests for advjax/training/ (step and fit; the presets in
test_training_methods.py)."""
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from advjax import checkpoint, data, evaluation, models, training
from advjax.attacks import gradient as G
from advjax.attacks import spatial as S


@pytest.fixture(scope="module")
def batch():
  d = data.load("digits", "train")
  return d.images[:32], d.labels[:32]


def _state(model_name="wong_mnist", opt=None):
  model = models.get_model(model_name)
  opt = opt or optax.sgd(0.1)
  return model, opt, training.create_train_state(model, opt, jax.random.key(0),
                                                 (8, 8, 1))


def _assert_allclose_trees(a, b, atol=1e-6):
  for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(np.asarray(u), np.asarray(v), atol=atol)


@pytest.mark.parametrize("method", training.METHODS)
def test_every_method_steps_and_reports(batch, method):
  model, opt, state = _state()
  # Short inner attacks keep compilation cheap (Wasserstein steps hold a
  # Sinkhorn loop each).
  extra = {}
  if method not in ("standard", "distillation", *training.SPATIAL_METHODS):
    extra["eps"] = 0.1
  if method.startswith("wasserstein"):
    extra["steps"] = 3
  if method == "distillation":
    # A teacher other than the student itself (whose own soft labels
    # would give a zero gradient).
    extra = dict(temperature=10., teacher=lambda z: 5. * model.apply(
        state.variables, z, train=False))
  step = jax.jit(training.make_train_step(model, opt, method, **extra))
  new, metrics = step(state, *batch)
  assert int(new.step) == 1
  assert np.isfinite(float(metrics["loss"]))
  assert ("adv_accuracy" in metrics) == (
      method not in ("standard", "distillation"))
  assert 0. < float(metrics["top_class_share"]) <= 1.
  assert 0. <= float(metrics["accuracy"]) <= 1.
  changed = [not np.allclose(a, b) for a, b in
             zip(jax.tree.leaves(state.params), jax.tree.leaves(new.params))]
  assert any(changed)


@pytest.mark.parametrize("method,kwargs", [
    ("madry", {"eps": 0.}),                 # eps 0: x_adv = x
    ("fgsm_rs", {"eps": 0.}),
    ("fgsm_mix", {"eps": 0.1, "sigma": 1.}),  # all weight on the clean loss
    ("trades", {"eps": 0.1, "beta": 0.}),     # no robustness term
    ("wasserstein", {"eps": 0., "attack": training.default_attack(
        "wasserstein", steps=2)}),            # the ball {x}
    ("spatial", {"attack": training.default_attack(
        "spatial", max_angle=0., max_shift=0., k=2)}),  # only the identity
    ("spatial_augment", {"attack": training.default_attack(
        "spatial_augment", max_angle=0., max_shift=0.)}),
])
def test_methods_reduce_to_standard_training(batch, method, kwargs):
  model, opt, state = _state()
  ref, _ = training.make_train_step(model, opt, "standard")(state, *batch)
  new, _ = jax.jit(training.make_train_step(model, opt, method, **kwargs))(
      state, *batch)
  _assert_allclose_trees(ref.params, new.params, atol=1e-5)


def test_temperature_and_distillation_losses(batch):
  model, opt, state = _state()
  x, y = batch
  t = 7.
  logits = model.apply(state.variables, x, train=True)
  teacher_logits = 3. * jax.random.normal(jax.random.key(5), logits.shape)
  teacher = lambda z: teacher_logits  # pylint: disable=unnecessary-lambda-assignment
  _, m_std = training.make_train_step(model, opt, temperature=t)(state, x, y)
  np.testing.assert_allclose(
      float(m_std["loss"]),
      float(jnp.mean(optax.softmax_cross_entropy_with_integer_labels(
          logits / t, y))), rtol=1e-5)
  _, m_dist = training.make_train_step(
      model, opt, "distillation", temperature=t, teacher=teacher)(state, x, y)
  soft = jax.nn.softmax(teacher_logits / t)
  np.testing.assert_allclose(
      float(m_dist["loss"]),
      float(jnp.mean(-jnp.sum(soft * jax.nn.log_softmax(logits / t), -1))),
      rtol=1e-5)


def test_temperature_and_teacher_checks():
  model, opt, _ = _state()
  with pytest.raises(ValueError, match="teacher"):
    training.make_train_step(model, opt, "distillation")
  with pytest.raises(ValueError, match="temperature must be > 0"):
    training.make_train_step(model, opt, temperature=0.)
  with pytest.raises(ValueError, match="'madry' takes no temperature"):
    training.make_train_step(model, opt, "madry", temperature=20.)


@pytest.mark.slow  # a trained study's claim; CI runs it (README)
def test_defensive_distillation_masks_gradients(digits_model):
  """Papernot et al.: trained at T and run at T = 1, the student's softmax
  saturates, its input gradients vanish and FGSM mostly fails, while the
  logits are still as easy to attack with a margin loss (Carlini-Wagner)."""
  train = data.load("digits", "train")
  model = models.get_model("wong_mnist", num_classes=10)
  kw = dict(epochs=15, batch_size=64, temperature=50., progress=False)
  teacher = training.fit(model, optax.adam(3e-3), train, **kw)
  t_vars = teacher.state.variables
  student = training.fit(
      model, optax.adam(3e-3), train, method="distillation", seed=1,
      teacher=lambda z: model.apply(t_vars, z, train=False), **kw)
  s_fn = models.model_fn(model, student.state.variables)
  x, y = digits_model.x_test, digits_model.y_test
  clean = float(jnp.mean(jnp.argmax(s_fn(x), -1) == y))
  assert clean > 0.9, clean
  fgsm_acc = lambda fn, loss: float(jnp.mean(jnp.argmax(fn(  # pylint: disable=g-long-lambda
      G.fgsm(fn, x, y, eps=0.1, loss=loss)), -1) == y))
  std_ce = fgsm_acc(digits_model.model_fn, "ce")
  dist_ce = fgsm_acc(s_fn, "ce")
  dist_cw = fgsm_acc(s_fn, "cw")
  # FGSM on the cross-entropy: the distilled model resists far better than
  # the standard one; the margin loss, which does not saturate, breaks it.
  # Measured: student 93.1 % clean; FGSM-CE at 0.1: standard 47.5 %,
  # distilled 85.8 %; FGSM on the margin loss: distilled 49.2 %.
  assert dist_ce > std_ce + 0.2, (dist_ce, std_ce)
  assert dist_cw < dist_ce - 0.2, (dist_cw, dist_ce)


def test_fgsm_mix_uses_predicted_labels(batch):
  model, opt, state = _state()
  seen = []

  def recording_attack(model_fn, x, y, *, eps):
    seen.append(np.asarray(y))
    return G.fgsm(model_fn, x, y, eps=eps)

  x, y = batch
  for predicted in (False, True):
    step = training.make_train_step(model, opt, "fgsm_mix", eps=0.1,
                                    attack=recording_attack,
                                    predicted_labels=predicted)
    step(state, x, y)
  pred = np.asarray(jnp.argmax(model.apply(state.variables, x), -1))
  np.testing.assert_array_equal(seen[0], y)
  np.testing.assert_array_equal(seen[1], pred)
  assert not np.array_equal(pred, y)  # an untrained model: labels differ


class TinyBN(nn.Module):
  """conv -> batch norm -> dense: the smallest model with batch statistics."""

  @nn.compact
  def __call__(self, x, train=False):
    x = nn.Conv(4, (3, 3))(x)
    x = nn.relu(nn.BatchNorm(use_running_average=not train)(x))
    return nn.Dense(10)(x.reshape(x.shape[0], -1))


def test_attack_runs_in_inference_mode_and_batch_stats_update(batch):
  model, opt = TinyBN(), optax.sgd(0.1)
  state = training.create_train_state(model, opt, jax.random.key(0), (8, 8, 1))
  x, y = batch
  inference = np.asarray(model.apply(state.variables, x, train=False))
  seen = []

  def checking_attack(model_fn, x, y, *, eps, key):
    seen.append(np.asarray(model_fn(x)))
    # Inference mode: one example alone gives the same logits as in a batch.
    seen.append(np.asarray(model_fn(x[:1])))
    return G.pgd(model_fn, x, y, eps=eps, key=key, steps=2)

  step = training.make_train_step(model, opt, "madry", eps=0.1,
                                  attack=checking_attack)
  new, _ = step(state, x, y)
  np.testing.assert_allclose(seen[0], inference, atol=1e-5)
  np.testing.assert_allclose(seen[1][0], inference[0], atol=1e-5)
  # The train-mode forward on x_adv updated the batch statistics.
  assert not all(np.allclose(a, b) for a, b in zip(
      jax.tree.leaves(state.batch_stats), jax.tree.leaves(new.batch_stats)))


def test_step_keys_differ_per_step(batch):
  model, opt, state = _state()
  step = training.make_train_step(model, opt, "fgsm_rs", eps=0.1)
  a, _ = step(state, *batch)
  b, _ = step(state._replace(step=jnp.int32(5)), *batch)
  assert not all(np.allclose(u, v) for u, v in zip(jax.tree.leaves(a.params),
                                                   jax.tree.leaves(b.params)))
  a2, _ = step(state, *batch)
  _assert_allclose_trees(a.params, a2.params, atol=0)


def test_unknown_method():
  model, opt, _ = _state()
  with pytest.raises(ValueError, match="Unknown training method"):
    training.make_train_step(model, opt, "free")


def test_madry_training_makes_the_model_robust():
  train = data.load("digits", "train")
  test = data.load("digits", "test")
  model = models.get_model("wong_mnist")
  apply_fn = lambda v, x: model.apply(v, x, train=False)
  attack = functools.partial(G.pgd, steps=10)
  acc = {}
  for method, kw in (("standard", {}), ("madry", {"eps": 0.1})):
    res = training.fit(model, optax.adam(3e-3), train, method=method,
                       epochs=8, batch_size=64, progress=False, **kw)
    ra = evaluation.robust_accuracy(apply_fn, res.state.variables, test.images,
                                    test.labels, attack=attack, eps=[0.1],
                                    key=jax.random.key(1))
    acc[method] = (ra.clean_accuracy, float(ra.accuracy[0]))
  assert acc["standard"][0] > 0.9 and acc["madry"][0] > 0.8, acc
  assert acc["madry"][1] > acc["standard"][1] + 0.2, acc


def test_spatial_attacks_ignore_eps_and_keep_their_range(batch):
  model, _, state = _state()
  fn = lambda z: model.apply(state.variables, z, train=False)
  x, y = batch
  key = jax.random.key(3)
  rng = dict(max_angle=10., max_shift=0.5)
  worst = training.default_attack("spatial", k=3, **rng)
  augment = training.default_attack("spatial_augment", **rng)
  ref = S.spatial_worst_of_k(fn, x, y, key=key, k=3, **rng)
  np.testing.assert_array_equal(worst(fn, x, y, eps=0.3, key=key), ref)
  np.testing.assert_array_equal(worst(fn, x, y, eps=100., key=key), ref)
  np.testing.assert_array_equal(augment(fn, x, y, eps=0.3, key=key),
                                S.spatial_random(fn, x, y, key=key, **rng))
  with pytest.raises(ValueError, match="max_angle"):
    training.default_attack("spatial", max_angle=-1.)
  with pytest.raises(ValueError, match="k must"):
    training.default_attack("spatial", k=0)


@pytest.mark.slow  # a trained study's claim; CI runs it (README)
def test_spatial_training_resists_spatial_attacks():
  """Engstrom et al.: under the worst of 10 random rotations and
  translations, worst-of-10 training beats augmentation with one random
  transform, which beats standard training."""
  train = data.load("digits", "train")
  test = data.load("digits", "test")
  model = models.get_model("wong_mnist")
  rng = dict(max_angle=30., max_shift=3. * 8 / 28)  # 3 px of 28, on 8 px
  x, y = jnp.asarray(test.images), jnp.asarray(test.labels)

  @jax.jit
  def worst_of_10_accuracy(variables):
    worst = S.spatial_worst_of_k(models.model_fn(model, variables), x, y,
                                 key=jax.random.key(1), return_result=True,
                                 **rng)
    return 1. - jnp.mean(worst.fooled)

  acc = {}
  for method in ("standard", "spatial_augment", "spatial"):
    kw = {} if method == "standard" else rng
    res = training.fit(model, optax.adam(3e-3), train, method=method,
                       epochs=3, batch_size=64, progress=False, **kw)
    acc[method] = float(worst_of_10_accuracy(res.state.variables))
  # Measured: standard 7.2 %, augmentation 20.3 %, worst-of-10 33.3 %.
  assert acc["spatial"] > acc["standard"] + 0.15, acc
  assert acc["standard"] < acc["spatial_augment"] < acc["spatial"], acc


def test_eval_step_counts_masked_rows(batch):
  model, _, state = _state()
  x, y = batch
  ev = training.make_eval_step(model, attack=G.fgsm, eps=0.1)
  mask = np.arange(32) < 20
  out = ev(state, x, y, mask)
  assert float(out["count"]) == 20
  pred = np.asarray(jnp.argmax(model.apply(state.variables, x), -1))
  assert float(out["correct"]) == np.sum((pred == y)[:20])
  assert float(out["adv_correct"]) <= float(out["correct"]) + 1e-6


def test_fit_fine_tunes_and_keeps_every_epoch(tmp_path):
  """init_variables starts from given weights; epoch_checkpoints keeps the
  state before training and after each epoch, and a resumed run adds to
  them."""
  train = data.load("synthetic", "train", limit=128)
  model = models.get_model("wong_mnist", num_classes=10)
  base_fit = training.fit(model, optax.adam(1e-3), train, epochs=1,
                          batch_size=64, progress=False)
  start = jax.device_get(base_fit.state.params)
  kwargs = dict(epochs=2, batch_size=64, progress=False, workdir=str(tmp_path),
                epoch_checkpoints=True,
                init_variables=base_fit.state.variables)
  res = training.fit(model, optax.adam(1e-3), train, **kwargs)
  like = training.create_train_state(model, optax.adam(1e-3),
                                     jax.random.key(0), (8, 8, 1))
  same = lambda a, b: all(np.array_equal(u, v) for u, v in zip(
      jax.tree.leaves(a), jax.tree.leaves(b)))
  assert same(training.restore_epoch(str(tmp_path), like, 0).params, start)
  assert same(training.restore_epoch(str(tmp_path), like, 2).params,
              jax.device_get(res.state.params))
  # The caller's weights survive the donated training step.
  assert same(jax.device_get(base_fit.state.params), start)
  with pytest.raises(checkpoint.CheckpointError, match="epoch 3"):
    training.restore_epoch(str(tmp_path), like, 3)
  with pytest.raises(ValueError, match="needs a workdir"):
    training.fit(model, optax.adam(1e-3), train, epochs=1, batch_size=64,
                 progress=False, epoch_checkpoints=True)
  other = models.get_model("wong_mnist", num_classes=3)
  with pytest.raises(ValueError, match="do not match"):
    training.fit(other, optax.adam(1e-3), train, epochs=1, batch_size=64,
                 progress=False, init_variables=base_fit.state.variables)


def test_fit_and_robust_accuracy_read_lazy_data_as_arrays(digits_idx):
  """The same digits from IDX files, in memory and lazily (Records): fit
  ends with the same parameters and robust_accuracy with the same results,
  each reading exactly the rows it used."""
  model = models.get_model("wong_mnist", num_classes=10)
  runs = []
  for lazy in (False, True):
    train = data.load("mnist", "train", digits_idx, limit=256, lazy=lazy)
    test = data.load("mnist", "test", digits_idx, limit=64, lazy=lazy)
    res = training.fit(model, optax.adam(1e-3), train, epochs=1,
                       batch_size=96, progress=False)
    ra = evaluation.robust_accuracy(
        lambda v, x: model.apply(v, x, train=False), res.state.variables,
        test.images, test.labels, attack=G.fgsm, eps=[0.1],
        batch_size=64, device_batch_size=8, progress=False)
    runs.append((jax.device_get(res.state.params), ra, train, test))
  (p0, ra0, _, _), (p1, ra1, train, test) = runs
  for a, b in zip(jax.tree.leaves(p0), jax.tree.leaves(p1)):
    np.testing.assert_array_equal(a, b)
  np.testing.assert_array_equal(ra0.correct, ra1.correct)
  assert isinstance(train.images, data.Records)
  assert train.images.rows_read == 2 * 96  # two full batches of 256
  assert test.images.rows_read == 64
