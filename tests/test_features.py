"""Tests for advjax/analysis/features.py (Ilyas et al.'s robust and
non-robust datasets, the penultimate representation, the robust-feature
toy) on tiny models and data."""
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from advjax import data, models, training
from advjax.analysis import features as F


class Tiny(nn.Module):
  """flatten, dense 6, relu, dense `num_classes`."""
  num_classes: int = 3

  @nn.compact
  def __call__(self, x, train=False):
    del train
    h = nn.relu(nn.Dense(6)(x.reshape((x.shape[0], -1))))
    return nn.Dense(self.num_classes)(h)


def _images(n=6, shape=(4, 4, 1), seed=0):
  return np.random.default_rng(seed).uniform(size=(n, *shape)).astype(
      np.float32)


# --------------------------------------------------------------------------
# representation
# --------------------------------------------------------------------------
def test_representation_is_the_input_of_the_last_dense_layer():
  model = Tiny()
  x = _images()
  v = model.init(jax.random.key(0), x)
  p = v["params"]
  hand = np.maximum(x.reshape(6, -1) @ np.asarray(p["Dense_0"]["kernel"])
                    + np.asarray(p["Dense_0"]["bias"]), 0.)
  r = F.representation(model, v, jnp.asarray(x))
  assert r.shape == (6, 6) and r.dtype == jnp.float32
  np.testing.assert_allclose(r, hand, rtol=1e-5, atol=1e-6)
  # Pure: jit and grad work and agree with the eager value.
  rj = jax.jit(F.representation_fn(model))(v, x)
  np.testing.assert_allclose(rj, r, rtol=1e-6, atol=1e-6)
  g = jax.grad(lambda z: jnp.sum(F.representation(model, v, z)))(x)
  assert g.shape == x.shape and np.all(np.isfinite(g))


_LAST_DENSE = [("wong_mnist", {}, (8, 8, 1)), ("madry_mnist", {}, (8, 8, 1)),
               ("carlini_mnist", {}, (8, 8, 1)), ("gtsrb_cnn", {}, (8, 8, 3)),
               # ~10 s each to compile on 2 cores.
               pytest.param("preact_resnet18", {"width": 4}, (8, 8, 3),
                            marks=pytest.mark.slow),
               pytest.param("wide_resnet", {"depth": 10, "width": 1},
                            (8, 8, 3), marks=pytest.mark.slow)]


@pytest.mark.parametrize("name, kwargs, shape", _LAST_DENSE)
def test_representation_of_registered_models_gives_the_logits(name, kwargs,
                                                              shape):
  """logits = representation @ W + b of the model's last dense layer (the
  top-level `Dense_<k>` of highest k)."""
  model = models.get_model(name, num_classes=5, **kwargs)
  v = jax.jit(functools.partial(models.init_model, model,
                                input_shape=shape))(jax.random.key(1))
  x = jnp.asarray(_images(3, shape))
  r, logits = jax.jit(lambda v, x: (F.representation(model, v, x),
                                    model.apply(v, x)))(v, x)
  dense = sorted((k for k in v["params"] if k.startswith("Dense_")),
                 key=lambda k: int(k.split("_")[1]))[-1]
  w, b = v["params"][dense]["kernel"], v["params"][dense]["bias"]
  assert r.shape == (3, w.shape[0])
  np.testing.assert_allclose(r @ w + b, logits, rtol=1e-4, atol=1e-4)


def test_representation_without_a_dense_layer_raises():
  model = models.get_model("metzen_detector")
  v = jax.eval_shape(functools.partial(models.init_model, model,
                                       input_shape=(8, 8, 1)),
                     jax.random.key(0))
  with pytest.raises(ValueError, match="no flax.linen.Dense"):
    jax.eval_shape(F.representation_fn(model), v, jnp.zeros((1, 8, 8, 1)))


# --------------------------------------------------------------------------
# robust_dataset
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny():
  model = Tiny()
  return model, model.init(jax.random.key(0), jnp.zeros((1, 4, 4, 1)))


def test_robust_dataset_decreases_the_representation_distance(tiny):
  model, v = tiny
  x, y = _images(10), np.arange(10, dtype=np.int32) % 3
  out = F.robust_dataset(F.representation_fn(model), v, x, y,
                         key=jax.random.key(3), steps=40, step_size=0.05,
                         batch_size=4, device_batch_size=4)
  assert out.images.shape == x.shape and out.images.dtype == np.float32
  assert out.images.min() >= 0. and out.images.max() <= 1.
  np.testing.assert_array_equal(out.labels, y)
  assert np.all(out.start_index != np.arange(10))
  assert np.all((out.start_index >= 0) & (out.start_index < 10))
  assert np.all(np.isfinite(out.distance))
  assert np.all(out.distance < out.initial_distance)
  assert out.reduction < 0.5
  # The starts are the other images; the recorded initial distances are
  # theirs.
  r = np.asarray(F.representation(model, v, x))
  r0 = r[out.start_index]
  hand = np.linalg.norm(r0 - r, axis=1) / np.linalg.norm(r, axis=1)
  np.testing.assert_allclose(out.initial_distance, hand, rtol=1e-5)
  # Each example's result depends only on the example (not the batch).
  again = F.robust_dataset(F.representation_fn(model), v, x, y,
                           key=jax.random.key(3), steps=40, step_size=0.05,
                           batch_size=8, device_batch_size=4)
  np.testing.assert_array_equal(again.images, out.images)


def test_robust_dataset_from_noise(tiny):
  model, v = tiny
  x, y = _images(4), np.zeros(4, np.int32)
  out = F.robust_dataset(F.representation_fn(model), v, x, y,
                         key=jax.random.key(0), steps=5, start="noise")
  np.testing.assert_array_equal(out.start_index, -1)
  assert np.all(out.distance <= out.initial_distance)


@pytest.mark.parametrize("kwargs, match", [
    (dict(steps=0), "steps"), (dict(steps=2.5), "steps"),
    (dict(step_size=0.), "step_size"), (dict(step_size=float("nan")),
                                        "step_size"),
    (dict(start="zeros"), "unknown start"),
    (dict(x=_images(1), y=np.zeros(1, np.int32)), "at least 2"),
    (dict(x=_images(4) + 1.), "bounds"),
    (dict(y=np.zeros(3, np.int32)), "y must be"),
    (dict(y=np.zeros(4, np.float32)), "y must be"),
    (dict(x=np.zeros((4, 4, 4, 1), np.int32)), "float images")])
def test_robust_dataset_bad_settings_raise(tiny, kwargs, match):
  model, v = tiny
  args = dict(x=_images(4), y=np.zeros(4, np.int32), key=jax.random.key(0),
              steps=2, step_size=0.1)
  args.update(kwargs)
  with pytest.raises(ValueError, match=match):
    F.robust_dataset(F.representation_fn(model), v, **args)


# --------------------------------------------------------------------------
# non_robust_dataset
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained():
  """Tiny trained on 3 classes of the synthetic templates."""
  ds = data.load("synthetic", "train")
  keep = ds.labels < 3
  ds = ds._replace(images=ds.images[keep], labels=ds.labels[keep],
                   num_classes=3)
  model = Tiny()
  res = training.fit(model, optax.adam(1e-2), ds, epochs=5, batch_size=32,
                     progress=False)
  return model, res.state.variables, ds


def test_non_robust_dataset_reaches_the_targets_within_eps(trained):
  model, v, ds = trained
  apply_fn = lambda variables, x: model.apply(variables, x)
  x, y = ds.images[:48], ds.labels[:48]
  assert np.mean(np.argmax(apply_fn(v, x), -1) == y) > 0.9
  t = F.target_labels(y, 3, "deterministic")
  out = F.non_robust_dataset(apply_fn, v, x, y, t, eps=2.0, steps=30,
                             step_size=0.2, batch_size=16,
                             device_batch_size=16)
  assert out.images.shape == x.shape and out.images.dtype == np.float32
  np.testing.assert_array_equal(out.labels, t)
  np.testing.assert_array_equal(out.source_labels, y)
  assert out.images.min() >= 0. and out.images.max() <= 1.
  d = np.linalg.norm((out.images - x).reshape(48, -1), axis=1)
  assert np.all(d <= 2.0 + 1e-5)
  np.testing.assert_allclose(out.distance, d, rtol=1e-5, atol=1e-6)
  pred = np.argmax(apply_fn(v, out.images), -1)
  np.testing.assert_array_equal(out.success, pred == t)
  assert out.success_rate > 0.9
  # Linf: inside the Linf ball.
  small = F.non_robust_dataset(apply_fn, v, x, y, t, eps=0.1, steps=5,
                               norm="linf")
  assert np.abs(small.images - x).max() <= 0.1 + 1e-6


@pytest.mark.parametrize("kwargs, match", [
    (dict(eps=0.), "eps"), (dict(eps=-1.), "eps"), (dict(steps=0), "steps"),
    (dict(step_size=-0.1), "step_size"),
    (dict(targets=np.full(4, 3, np.int32)), r"targets must lie in \[0, 3\)"),
    (dict(targets=np.full(4, -1, np.int32)), "targets must lie"),
    (dict(targets=np.zeros(5, np.int32)), "targets must be"),
    (dict(targets=np.zeros(4, np.float32)), "targets must be"),
    (dict(norm="l3"), "norm"),
    (dict(random_start=True), "random_start needs key")])
def test_non_robust_dataset_bad_settings_raise(trained, kwargs, match):
  model, v, ds = trained
  args = dict(x=ds.images[:4], y=ds.labels[:4],
              targets=np.ones(4, np.int32), eps=0.5, steps=2)
  args.update(kwargs)
  with pytest.raises(ValueError, match=match):
    F.non_robust_dataset(lambda variables, x: model.apply(variables, x), v,
                         **args)


def test_target_labels():
  y = np.array([0, 1, 2, 9, 5] * 40, np.int32)
  np.testing.assert_array_equal(F.target_labels(y[:5], 10, "deterministic"),
                                [1, 2, 3, 0, 6])
  t = F.target_labels(y, 10, "random", key=jax.random.key(0))
  assert t.dtype == np.int32 and t.shape == y.shape
  assert np.all(t != y) and t.min() >= 0 and t.max() < 10
  assert len(np.unique(t)) == 10  # every class is a target
  np.testing.assert_array_equal(
      t, F.target_labels(y, 10, "random", key=jax.random.key(0)))
  assert np.any(t != F.target_labels(y, 10, "random", key=jax.random.key(1)))
  # Per example: the first 5 targets do not depend on the rest.
  np.testing.assert_array_equal(
      F.target_labels(y[:5], 10, "random", key=jax.random.key(0)), t[:5])


@pytest.mark.parametrize("args, match", [
    ((np.zeros(3, np.int32), 10, "cyclic"), "unknown kind"),
    ((np.zeros(3, np.int32), 1, "deterministic"), "num_classes >= 2"),
    ((np.array([0, 10]), 10, "deterministic"), "must lie in"),
    ((np.zeros((3, 1), np.int32), 10, "deterministic"), r"\[N\] int"),
    ((np.zeros(3, np.int32), 10, "random"), "needs key")])
def test_target_labels_bad_settings_raise(args, match):
  with pytest.raises(ValueError, match=match):
    F.target_labels(*args)


# --------------------------------------------------------------------------
# robust_feature_toy
# --------------------------------------------------------------------------
def test_robust_feature_toy():
  ds = F.robust_feature_toy(jax.random.key(0), 400, (6, 6, 1), noise=0.1,
                            label_noise=0.2)
  assert ds.images.shape == (400, 6, 6, 1) and ds.num_classes == 2
  assert ds.images.dtype == np.float32 and ds.labels.dtype == np.int32
  assert ds.images.min() >= 0. and ds.images.max() <= 1.
  mean = ds.images.mean(axis=(1, 2, 3))
  # Every image is dark (pixels <= 0.2) or light (>= 0.8).
  assert np.all((ds.images.max(axis=(1, 2, 3)) <= 0.2 + 1e-6)
                | (ds.images.min(axis=(1, 2, 3)) >= 0.8 - 1e-6))
  light = mean > 0.5
  assert 150 < light.sum() < 250
  flipped = np.mean(light != (ds.labels == 1))
  assert 0.12 < flipped < 0.28  # label_noise 0.2
  clean = F.robust_feature_toy(jax.random.key(1), 400, (6, 6, 1),
                               noise=0.1, label_noise=0.)
  np.testing.assert_array_equal(clean.labels,
                                clean.images.mean(axis=(1, 2, 3)) > 0.5)


@pytest.mark.parametrize("kwargs, match", [
    (dict(size=0), "size"), (dict(image_shape=(4, 4)), "shape"),
    (dict(noise=0.3), "noise"), (dict(label_noise=0.5), "label_noise")])
def test_robust_feature_toy_bad_settings_raise(kwargs, match):
  args = dict(size=4, image_shape=(4, 4, 1))
  args.update(kwargs)
  with pytest.raises(ValueError, match=match):
    F.robust_feature_toy(jax.random.key(0), **args)


# --------------------------------------------------------------------------
# construct, stats
# --------------------------------------------------------------------------
def test_construct_each_kind_and_its_cache(trained, tmp_path, monkeypatch):
  model, v, ds = trained
  x, y = ds.images[:24], ds.labels[:24]
  key = jax.random.key(5)
  robust = F.Construction("robust", 5, 0.05)
  out = F.construct(robust, model, v, x, y, 3, key=key,
                    cache_dir=str(tmp_path), name="d_r")
  direct = F.robust_dataset(F.representation_fn(model), v, x, y, key=key,
                            steps=5, step_size=0.05)
  np.testing.assert_array_equal(out.images, direct.images)
  det = F.Construction("deterministic", 4, 0.2, eps=1.0)
  nr = F.construct(det, model, v, x, y, 3, key=key, cache_dir=str(tmp_path),
                   name="d_det")
  np.testing.assert_array_equal(nr.labels, (y + 1) % 3)
  rand = F.construct(F.Construction("random", 4, 0.2, eps=1.0), model, v, x,
                     y, 3, key=key)
  np.testing.assert_array_equal(rand.labels, F.target_labels(
      y, 3, "random", key=key))
  assert len(list(tmp_path.iterdir())) == 2
  # Read back, not rebuilt; another setting or key builds anew.
  monkeypatch.setattr(F, "robust_dataset", None)
  again = F.construct(robust, model, v, x, y, 3, key=key,
                      cache_dir=str(tmp_path), name="d_r")
  for a, b in zip(again, out):
    np.testing.assert_array_equal(a, b)
  with pytest.raises(TypeError):
    F.construct(robust._replace(steps=6), model, v, x, y, 3, key=key,
                cache_dir=str(tmp_path), name="d_r")
  # stats
  s = out.stats(x)
  assert s["size"] == 24 and s["reduction"] == out.reduction
  assert s["to_original"] == pytest.approx(F.median_l2(out.images, x))
  assert s["to_start"] == pytest.approx(F.median_l2(out.images,
                                                    x[out.start_index]))
  t = nr.stats(x)
  assert t["success_rate"] == nr.success_rate
  assert t["max_distance"] <= 1.0 + 1e-5
  with pytest.raises(ValueError, match="unknown kind"):
    F.construct(F.Construction("cyclic", 1, 0.1), model, v, x, y, 3, key=key)
  with pytest.raises(ValueError, match="needs eps"):
    F.construct(F.Construction("random", 1, 0.1), model, v, x, y, 3, key=key)


def test_median_l2():
  a = np.zeros((3, 2, 2, 1), np.float32)
  b = a + np.array([1., 2., 3.]).reshape(3, 1, 1, 1)
  assert F.median_l2(a, b) == pytest.approx(4.)  # |2 * ones(4)| = 4


# --------------------------------------------------------------------------
# RobustFeatureToy
# --------------------------------------------------------------------------
def test_robust_feature_toy_study_settings():
  toy = F.RobustFeatureToy(size=64, test_size=32, side=4, hidden=(16,),
                           eps_points=6)
  np.testing.assert_allclose(toy.eps, np.geomspace(1e-3, 0.5, 6))
  key = jax.random.key(0)
  train, test = toy.data(key, "train"), toy.data(key, "test")
  assert train.size == 64 and test.size == 32 and train.image_shape == (
      4, 4, 1)
  np.testing.assert_array_equal(test.labels,
                                test.images.mean(axis=(1, 2, 3)) > 0.5)
  np.testing.assert_array_equal(train.images, F.robust_feature_toy(
      jax.random.fold_in(key, 1), 64, (4, 4, 1), noise=0.1,
      label_noise=0.1).images)
  built = toy.models()
  assert set(built) == set(F.TOY_MODELS)
  assert built["toy_linear"][1].name == "madry"
  assert built["toy_mlp"][0].hidden == (16,)
  with pytest.raises(ValueError, match="eps_min < eps_max"):
    F.RobustFeatureToy(eps_min=0.5, eps_max=0.1).eps


@pytest.mark.slow  # trains two models
def test_robust_feature_toy_study_run():
  toy = F.RobustFeatureToy(size=128, test_size=64, side=8, hidden=(64, 64),
                           label_noise=0.2, epochs=60, batch_size=32,
                           eps_points=8)
  out = toy.run(jax.random.key(0), seed=0, steps=10, batch_size=64)
  assert set(out) == set(F.TOY_MODELS)
  for r in out.values():
    assert len(r["accuracy"]) == 8 and r["eps"] == toy.eps.tolist()
    assert r["accuracy"][0] <= r["clean_accuracy"] + 1e-9
    assert 0 <= r["train_accuracy"] <= 1
  # The robust linear model needs the larger eps (the toy's point).
  assert out["toy_linear"]["eps_at_half"] > out["toy_mlp"]["eps_at_half"]
