"""Models as people write them: a user's own Flax module, with or without
a `train` argument, through training, attacks and evaluation
(advjax/models `apply_kwargs`, training.fit, evaluation's probability
warning, checks' single-image message)."""
import functools
import warnings

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from advjax import attacks, data, evaluation, models, training


class TinyCNN(nn.Module):
  """A user's CNN: no `train` argument."""
  softmax: bool = False

  @nn.compact
  def __call__(self, x):
    x = nn.relu(nn.Conv(8, (3, 3))(x))
    x = nn.Dense(10)(x.reshape((x.shape[0], -1)))
    return jax.nn.softmax(x) if self.softmax else x


class TinyBN(nn.Module):
  """Batch norm and dropout switched by `train`."""

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = nn.Conv(4, (3, 3))(x)
    x = nn.relu(nn.BatchNorm(use_running_average=not train)(x))
    x = nn.Dropout(0.1, deterministic=not train)(x)
    return nn.Dense(10)(x.reshape((x.shape[0], -1)))


class Deterministic(nn.Module):
  """The switch named as flax's Dropout names it."""

  @nn.compact
  def __call__(self, x, deterministic: bool = True):
    x = nn.Dropout(0.5, deterministic=deterministic)(x)
    return nn.Dense(10)(x.reshape((x.shape[0], -1)))


class BNWithoutTrain(nn.Module):
  """Batch norm that cannot be switched to its running averages."""

  @nn.compact
  def __call__(self, x):
    x = nn.BatchNorm(use_running_average=False)(x)
    return nn.Dense(10)(x.reshape((x.shape[0], -1)))


@pytest.fixture(scope="module")
def digits():
  d = data.load("digits", "train")
  return d.images[:64], d.labels[:64]


def test_apply_kwargs_reads_the_signature():
  assert models.apply_kwargs(TinyCNN()) == {}
  assert models.apply_kwargs(TinyCNN(), True) == {}
  assert models.apply_kwargs(TinyBN(), True) == {"train": True}
  assert models.apply_kwargs(models.get_model("wong_mnist")) == {
      "train": False}


def test_module_without_train_fits_attacks_and_evaluates(digits):
  x, y = digits
  model = TinyCNN()
  fit = training.fit(model, optax.adam(1e-2), (x, y), epochs=1,
                     batch_size=16, progress=False)
  assert len(fit.history) == 1 and np.isfinite(fit.history[0]["loss"])
  # FitResult.variables is what model_fn and apply take.
  assert set(fit.variables) == {"params"}
  f = models.model_fn(model, fit.variables)
  np.testing.assert_allclose(f(x[:8]), model.apply(fit.variables, x[:8]),
                             atol=1e-6)
  x_adv = attacks.pgd(f, x[:8], y[:8], eps=0.1, steps=3,
                      key=jax.random.key(1))
  assert x_adv.shape == x[:8].shape
  assert float(jnp.max(jnp.abs(x_adv - x[:8]))) <= 0.1 + 1e-6
  with warnings.catch_warnings():
    warnings.simplefilter("error", evaluation.ProbabilityOutputsWarning)
    res = evaluation.robust_accuracy(
        models.apply_fn(model), fit.variables, x[:16], y[:16],
        attack=functools.partial(attacks.pgd, steps=2), eps=[0., 0.1],
        batch_size=16)
  assert res.correct.shape == (2, 16)
  assert res.accuracy[1] <= res.accuracy[0]


def test_module_with_batch_norm_and_train_still_trains(digits):
  x, y = digits
  model = TinyBN()
  variables = models.init_model(model, jax.random.key(0), (8, 8, 1))
  fit = training.fit(model, optax.sgd(0.05), (x, y), epochs=1,
                     batch_size=16, progress=False)
  assert set(fit.variables) == {"params", "batch_stats"}
  # The running averages moved away from their init.
  moved = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))),
                       fit.variables["batch_stats"], variables["batch_stats"])
  assert max(jax.tree.leaves(moved)) > 0
  # model_fn runs inference mode: an example's logits do not depend on
  # its batch.
  f = models.model_fn(model, fit.variables)
  np.testing.assert_allclose(f(x[:8])[:1], f(x[:1]), atol=1e-5)


def test_misnamed_switch_fails_at_once_with_the_fix():
  with pytest.raises(TypeError, match=r"takes 'deterministic' but no "
                     r"'train'.*Rename 'deterministic' to 'train' "
                     r"\(deterministic = not train\)"):
    models.init_model(Deterministic(), jax.random.key(0), (8, 8, 1))
  with pytest.raises(TypeError, match="'deterministic'"):
    training.fit(Deterministic(), optax.sgd(0.1),
                 (np.zeros((8, 8, 8, 1), np.float32), np.zeros(8, np.int32)),
                 batch_size=8, progress=False)


def test_batch_norm_without_train_is_an_error():
  with pytest.raises(ValueError, match=r"has batch norm.*takes no 'train' "
                     r"argument.*use_running_average=not train"):
    models.init_model(BNWithoutTrain(), jax.random.key(0), (8, 8, 1))


def _softmax_case(softmax):
  model = TinyCNN(softmax=softmax)
  variables = models.init_model(model, jax.random.key(0), (8, 8, 1))
  x = jax.random.uniform(jax.random.key(1), (16, 8, 8, 1))
  y = jnp.argmax(model.apply(variables, x), -1).astype(jnp.int32)
  return models.apply_fn(model), variables, np.asarray(x), np.asarray(y)


def test_probability_rows():
  p = jax.nn.softmax(jax.random.normal(jax.random.key(0), (5, 10)))
  np.testing.assert_array_equal(evaluation.probability_rows(p), [True] * 5)
  np.testing.assert_array_equal(
      evaluation.probability_rows(jnp.log(p)), [False] * 5)
  # A row summing to 1 with a negative entry is no distribution.
  assert not evaluation.probability_rows(jnp.array([[1.5, -0.5]]))[0]


def test_softmax_outputs_warn_in_robust_accuracy():
  f, v, x, y = _softmax_case(True)
  attack = functools.partial(attacks.pgd, steps=1)
  with pytest.warns(evaluation.ProbabilityOutputsWarning,
                    match=r"look like probabilities.*remove the final "
                    "softmax") as record:
    evaluation.robust_accuracy(f, v, x, y, attack=attack, eps=[0.1],
                               batch_size=8, device_batch_size=1)
  assert len(record) == 1  # one warning for two steps of 8
  assert record[0].filename == __file__  # points at the caller
  f, v, x, y = _softmax_case(False)
  with warnings.catch_warnings():
    warnings.simplefilter("error", evaluation.ProbabilityOutputsWarning)
    evaluation.robust_accuracy(f, v, x, y, attack=attack, eps=[0.1])


def test_softmax_outputs_warn_in_autoattack():
  kw = dict(norm="linf", eps=0.05, version="custom", attacks=["square"],
            queries=2, batch_size=8, device_batch_size=1)
  f, v, x, y = _softmax_case(True)
  with pytest.warns(evaluation.ProbabilityOutputsWarning,
                    match="^autoattack: the model's outputs look like "
                    "probabilities") as record:
    evaluation.autoattack(f, v, x, y, **kw)
  assert len(record) == 1
  f, v, x, y = _softmax_case(False)
  with warnings.catch_warnings():
    warnings.simplefilter("error", evaluation.ProbabilityOutputsWarning)
    evaluation.autoattack(f, v, x, y, **kw)


@pytest.mark.parametrize("y", [np.int32(3), np.array([3], np.int32)])
def test_single_image_message(y):
  model = TinyCNN()
  variables = models.init_model(model, jax.random.key(0), (8, 8, 1))
  x = np.zeros((8, 8, 1), np.float32)
  with pytest.raises(ValueError, match=r"x of shape \(8, 8, 1\) looks like "
                     r"a single image \[H, W, C\].*x\[None\]"):
    attacks.pgd(models.model_fn(model, variables), x, y, eps=0.1,
                key=jax.random.key(0))
