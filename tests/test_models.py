"""Tests for advjax.models: the reference model zoo and its registry."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from advjax import models
from advjax.models import cnn
from advjax.models import resnet

NAMES = (
    "wong_mnist",
    "madry_mnist",
    "carlini_mnist",
    "carlini_cifar",
    "preact_resnet18",
    "wide_resnet",
    "gtsrb_cnn",
    "metzen_detector",
    "mlp",
    "fc10",
    "fc100_100_10",
    "fc200_200_10",
    "fc123_456_10",
    "ae400_10",
    "maxout",
)
BN_NAMES = ("preact_resnet18", "wide_resnet")
DROPOUT_NAMES = ("carlini_mnist", "carlini_cifar", "gtsrb_cnn")
# Small ResNets keep the suite fast; full sizes are checked by parameter count.
SMALL_KWARGS = {
    "preact_resnet18": dict(width=8),
    "wide_resnet": dict(depth=10, width=1),
}
MNIST_NAMES = ("wong_mnist", "madry_mnist", "carlini_mnist", "mlp", "fc10",
               "fc100_100_10", "fc200_200_10", "fc123_456_10", "ae400_10",
               "maxout")
DIGITS = (8, 8, 1)
# Digits-sized models use a non-default class count, so every test on them
# also checks that num_classes is respected (model init dominates run time).
DIGITS_CLASSES = 7
BATCH = 4
# Compiling parameter initialisers dominates this module's run time on CPU:
# one jitted init per model, with an rbg key (about 3x cheaper to compile than
# threefry), keeps it short. Any typed key works with init_model.
INIT_KEY = jax.random.key(0, impl="rbg")


def native_shape(name):
  return (28, 28, 1) if name in MNIST_NAMES else (32, 32, 3)


def small_model(name, num_classes=10, **kwargs):
  return models.get_model(
      name, num_classes=num_classes, **{**SMALL_KWARGS.get(name, {}), **kwargs})


@functools.cache
def model_and_variables(name, shape=DIGITS):
  num_classes = DIGITS_CLASSES if shape == DIGITS else 10
  model = small_model(name, num_classes=num_classes)
  return model, init(model, shape)


def init(model, shape):
  return jax.jit(models.init_model, static_argnums=(0, 2))(
      model, INIT_KEY, shape)


def images(shape, batch=BATCH, seed=1):
  rng = np.random.default_rng(seed)
  return jnp.asarray(rng.uniform(size=(batch,) + tuple(shape)), jnp.float32)


def trained_batch_stats(model, variables, x):
  """One train-mode pass, so running statistics are no longer 0 and 1."""
  _, updates = model.apply(
      variables, x, train=True, mutable=["batch_stats"],
      rngs={"dropout": jax.random.key(2)})
  return {**variables, **updates}


def count_params(model, shape):
  variables = jax.eval_shape(
      lambda: models.init_model(model, jax.random.key(0), shape))
  params = jax.tree.leaves(variables["params"])
  return sum(int(np.prod(p.shape)) for p in params)


# Registry.


def test_registry_lists_every_model():
  assert models.list_models() == sorted(NAMES)
  assert set(models.MODELS) == set(NAMES)
  for name in NAMES:
    assert isinstance(models.get_model(name), models.MODELS[name])


def test_registry_classes_are_reexported():
  assert models.MODELS["wong_mnist"] is models.WongCNN is cnn.WongCNN
  assert models.MODELS["madry_mnist"] is models.MadryCNN
  assert models.MODELS["carlini_mnist"] is models.CarliniMNIST
  assert models.MODELS["carlini_cifar"] is models.CarliniCIFAR
  assert models.MODELS["gtsrb_cnn"] is models.GTSRBCNN
  assert models.MODELS["preact_resnet18"] is models.PreActResNet18
  assert models.MODELS["wide_resnet"] is models.WideResNet is resnet.WideResNet
  for name in models.__all__:
    assert hasattr(models, name)


def test_unknown_model_name_lists_known_names():
  with pytest.raises(ValueError, match="Unknown model 'resnet50'") as info:
    models.get_model("resnet50")
  for name in NAMES:
    assert name in str(info.value)


def test_get_model_rejects_bad_num_classes():
  with pytest.raises(ValueError, match="num_classes"):
    models.get_model("wong_mnist", num_classes=0)


def test_get_model_passes_kwargs():
  model = models.get_model("wide_resnet", num_classes=100, depth=16, width=2)
  assert (model.num_classes, model.depth, model.width) == (100, 16, 2)


@pytest.mark.parametrize("depth", [4, 11, 27, 29])
def test_wide_resnet_bad_depth(depth):
  with pytest.raises(ValueError, match=r"\(depth - 4\) % 6 == 0"):
    models.WideResNet(depth=depth)
  with pytest.raises(ValueError, match=f"depth={depth}"):
    models.get_model("wide_resnet", depth=depth)


def test_wide_resnet_bad_width():
  with pytest.raises(ValueError, match="width"):
    models.WideResNet(width=0)


def test_gtsrb_default_num_classes():
  assert models.GTSRBCNN().num_classes == 43
  assert models.get_model("gtsrb_cnn", num_classes=43).num_classes == 43
  assert models.get_model("gtsrb_cnn").num_classes == 43
  assert models.get_model("wong_mnist").num_classes == 10


# Shapes, dtypes, finiteness.


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("resolution", ["digits", "native"])
def test_logits_shape_dtype_finite(name, resolution):
  if resolution == "digits":
    shape, num_classes = DIGITS, DIGITS_CLASSES
  else:
    shape, num_classes = native_shape(name), 10
  model, variables = model_and_variables(name, shape)
  assert model.num_classes == num_classes
  logits = models.model_fn(model, variables)(images(shape))
  assert logits.shape == (BATCH, num_classes)
  assert logits.dtype == jnp.float32
  assert np.all(np.isfinite(logits))


def test_carlini_valid_padding_at_native_resolution():
  model = models.CarliniMNIST(padding="VALID")
  variables = jax.eval_shape(
      lambda: models.init_model(model, jax.random.key(0), (28, 28, 1)))
  logits = jax.eval_shape(
      lambda v, x: models.model_fn(model, v)(x), variables,
      jax.ShapeDtypeStruct((2, 28, 28, 1), jnp.float32))
  assert logits.shape == (2, 10)
  # 28 -> 26 -> 24 -> 12 -> 10 -> 8 -> 4: a 4 * 4 * 64 = 1024-wide dense input.
  assert variables["params"]["Dense_0"]["kernel"].shape == (1024, 200)


@pytest.mark.parametrize(
    "model, shape, expected",
    [
        (models.WongCNN(), (28, 28, 1), 166_406),
        (models.MadryCNN(), (28, 28, 1), 3_274_634),
        (models.CarliniMNIST(padding="VALID"), (28, 28, 1), 312_202),
        (models.PreActResNet18(), (32, 32, 3), 11_172_170),
        (models.WideResNet(depth=28, width=10), (32, 32, 3), 36_479_194),
    ],
    ids=["wong", "madry", "carlini_mnist", "preact_resnet18", "wrn_28_10"])
def test_published_parameter_counts(model, shape, expected):
  # Counts of the reference PyTorch/TF models (BN scale and bias included).
  assert count_params(model, shape) == expected


def test_rank_check():
  model, variables = model_and_variables("wong_mnist")
  with pytest.raises(ValueError, match=r"NHWC batch \[B, H, W, C\]"):
    models.model_fn(model, variables)(jnp.zeros(DIGITS))


# Variables.


@pytest.mark.parametrize("name", NAMES)
def test_init_model_collections(name):
  _, variables = model_and_variables(name)
  assert isinstance(variables, dict)
  if name in BN_NAMES:
    assert set(variables) == {"params", "batch_stats"}
    assert models.has_batch_norm(variables)
  else:
    assert set(variables) == {"params"}
    assert not models.has_batch_norm(variables)
  assert not models.has_batch_norm({"params": {}, "batch_stats": {}})


@pytest.mark.parametrize("shape", [(8, 8), (1, 8, 8, 1), (0, 8, 1)])
def test_init_model_bad_input_shape(shape):
  with pytest.raises(ValueError, match=r"\(H, W, C\)"):
    models.init_model(models.WongCNN(), jax.random.key(0), shape)


# model_fn purity.


@pytest.mark.parametrize("name", NAMES)
def test_model_fn_is_pure(name):
  model, variables = model_and_variables(name)
  x = images(DIGITS)
  if models.has_batch_norm(variables):
    variables = trained_batch_stats(model, variables, x)
  before = jax.tree.map(np.array, variables)

  f = models.model_fn(model, variables)
  first, second = f(x), f(x)
  np.testing.assert_array_equal(first, second)

  jitted = jax.jit(lambda v, x: models.model_fn(model, v)(x))(variables, x)
  np.testing.assert_allclose(jitted, first, atol=1e-5, rtol=1e-5)

  jax.tree.map(np.testing.assert_array_equal, before,
               jax.tree.map(np.array, variables))


@pytest.mark.parametrize("name", NAMES)
def test_inference_is_per_example(name):
  model, variables = model_and_variables(name)
  x = images(DIGITS)
  if models.has_batch_norm(variables):
    variables = trained_batch_stats(model, variables, x)
  f = models.model_fn(model, variables)
  batched = f(x)
  for i in range(x.shape[0]):
    np.testing.assert_allclose(f(x[i:i + 1]), batched[i:i + 1],
                               atol=1e-5, rtol=1e-5)


# Batch norm and dropout in train mode.


@pytest.mark.parametrize("name", BN_NAMES)
def test_train_mode_updates_batch_stats(name):
  model, variables = model_and_variables(name)
  x = images(DIGITS)
  logits, updates = model.apply(
      variables, x, train=True, mutable=["batch_stats"])
  assert logits.shape == (BATCH, DIGITS_CLASSES)
  assert set(updates) == {"batch_stats"}
  old = jax.tree.leaves(variables["batch_stats"])
  new = jax.tree.leaves(updates["batch_stats"])
  assert len(old) == len(new)
  assert any(not np.allclose(a, b) for a, b in zip(old, new))
  # Train-mode batch norm normalises with batch statistics, so the result
  # differs from inference with the initial running averages.
  assert not np.allclose(logits, models.model_fn(model, variables)(x))


@pytest.mark.parametrize("name", DROPOUT_NAMES)
def test_dropout_only_in_train_mode(name):
  model, variables = model_and_variables(name)
  x = images(DIGITS)

  def train_apply(seed):
    return model.apply(variables, x, train=True,
                       rngs={"dropout": jax.random.key(seed)})

  np.testing.assert_array_equal(train_apply(0), train_apply(0))
  assert not np.allclose(train_apply(0), train_apply(1))
  # Inference needs no rng and ignores dropout.
  np.testing.assert_array_equal(model.apply(variables, x),
                                models.model_fn(model, variables)(x))


def test_wide_resnet_dropout():
  model, variables = model_and_variables("wide_resnet")
  model = model.clone(dropout_rate=0.3)  # Dropout has no variables.
  x = images(DIGITS)

  def train_apply(seed):
    logits, _ = model.apply(variables, x, train=True, mutable=["batch_stats"],
                            rngs={"dropout": jax.random.key(seed)})
    return logits

  assert not np.allclose(train_apply(0), train_apply(1))


# Gradients.


@pytest.mark.parametrize("name", NAMES)
def test_input_gradients_flow(name):
  model, variables = model_and_variables(name)
  x = images(DIGITS)
  grad_fn = jax.jit(jax.grad(
      lambda v, x: jnp.sum(models.model_fn(model, v)(x)), argnums=1))
  grad = grad_fn(variables, x)
  assert grad.shape == x.shape
  assert np.all(np.isfinite(grad))
  assert np.any(grad != 0)
  # Each example's gradient is its own: none is identically zero.
  assert np.all(np.abs(grad).reshape(x.shape[0], -1).max(axis=1) > 0)


# The fully connected networks of Szegedy et al. and Goodfellow et al.


def test_fully_connected_parameter_counts_at_mnist_size():
  shape = (28, 28, 1)
  assert count_params(models.FC10(), shape) == 784 * 10 + 10
  assert count_params(models.FC100_100_10(), shape) == (
      784 * 100 + 100 + 100 * 100 + 100 + 100 * 10 + 10)
  assert count_params(models.FC123_456_10(), shape) == (
      784 * 123 + 123 + 123 * 456 + 456 + 456 * 10 + 10)
  # Encoder, decoder and head are all created by init.
  assert count_params(models.AE400_10(), shape) == (
      784 * 400 + 400 + 400 * 784 + 784 + 400 * 10 + 10)
  assert count_params(models.Maxout(), shape) == (
      784 * 1200 + 1200 + 240 * 1200 + 1200 + 240 * 10 + 10)


def test_fc10_is_softmax_regression_and_mlp_layers_are_as_written():
  x = images(DIGITS)
  model = models.FC10(num_classes=2)
  v = init(model, DIGITS)
  k, b = v["params"]["Dense_0"]["kernel"], v["params"]["Dense_0"]["bias"]
  np.testing.assert_allclose(model.apply(v, x), x.reshape(BATCH, -1) @ k + b,
                             rtol=1e-5, atol=1e-6)
  mlp = models.MLP(hidden=(5,), activation="tanh", num_classes=3)
  v = init(mlp, DIGITS)
  p = v["params"]
  h = jnp.tanh(x.reshape(BATCH, -1) @ p["Dense_0"]["kernel"]
               + p["Dense_0"]["bias"])
  np.testing.assert_allclose(
      mlp.apply(v, x), h @ p["Dense_1"]["kernel"] + p["Dense_1"]["bias"],
      rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match="Unknown activation 'elu'"):
    init(models.MLP(activation="elu"), DIGITS)


def test_maxout_takes_the_max_of_its_pieces():
  x = images(DIGITS)
  model = models.Maxout(hidden=(3,), pieces=4, num_classes=2)
  v = init(model, DIGITS)
  p = v["params"]
  z = x.reshape(BATCH, -1) @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"]
  h = z.reshape(BATCH, 3, 4).max(-1)
  np.testing.assert_allclose(
      model.apply(v, x), h @ p["Dense_1"]["kernel"] + p["Dense_1"]["bias"],
      rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match="pieces must be >= 1"):
    init(models.Maxout(pieces=0), DIGITS)


def test_autoencoder_reconstructs_in_the_box_and_classifies_from_its_code():
  x = images(DIGITS)
  model = models.AE400_10(hidden=6, num_classes=3)
  v = init(model, DIGITS)
  assert set(v["params"]) == {"encoder", "decoder", "head"}
  rec = model.apply(v, x, reconstruct=True)
  assert rec.shape == x.shape and float(rec.min()) >= 0 and rec.max() <= 1
  p = v["params"]
  code = jax.nn.sigmoid(x.reshape(BATCH, -1) @ p["encoder"]["kernel"]
                        + p["encoder"]["bias"])
  np.testing.assert_allclose(
      model.apply(v, x), code @ p["head"]["kernel"] + p["head"]["bias"],
      rtol=1e-5, atol=1e-6)


def test_random_case_is_labelled_by_its_own_model():
  apply_fn, variables, x, y = models.random_case("wong_mnist", 12, (28, 28, 1))
  assert x.shape == (12, 28, 28, 1) and x.dtype == np.float32
  assert y.shape == (12,) and y.dtype == np.int32
  assert 0 <= x.min() and x.max() < 1
  np.testing.assert_array_equal(
      np.argmax(apply_fn(variables, x), -1), y)  # clean accuracy 1
  again = models.random_case("wong_mnist", 12, (28, 28, 1))
  np.testing.assert_array_equal(again[2], x)  # the same default keys
  other = models.random_case("wong_mnist", 12, (28, 28, 1),
                             data_key=jax.random.key(7))
  assert not np.array_equal(other[2], x)
