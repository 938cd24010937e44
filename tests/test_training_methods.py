"""Tests for advjax/training/methods.py and fit's collapse warning: methods
as values, the eps schedule, MART's loss, the per-epoch history."""
import warnings

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from advjax import data, losses, models, training
from advjax.attacks import gradient as G
from advjax.training import methods as M


@pytest.fixture(scope="module")
def batch():
  d = data.load("digits", "train")
  return d.images[:32], d.labels[:32]


def _state(opt=None):
  model = models.get_model("wong_mnist")
  opt = opt or optax.sgd(0.1)
  return model, opt, training.create_train_state(model, opt, jax.random.key(0),
                                                 (8, 8, 1))


def _params_equal(a, b, atol=1e-6):
  return all(np.allclose(u, v, atol=atol) for u, v in zip(
      jax.tree.leaves(a), jax.tree.leaves(b)))


def test_a_method_is_a_value_the_step_does_not_look_up(batch):
  """A Method built in the test, under a name no preset has, trains: the
  step reads its fields only. Here: the mean of the clean and the FGSM loss,
  which is fgsm_mix at sigma 0.5."""
  model, opt, state = _state()
  ce = lambda l, y: jnp.mean(losses.cross_entropy(l, y))
  mine = training.Method(
      "my_mix", attack=G.fgsm, eps=0.1, uses_clean=True,
      loss=lambda o: 0.5 * ce(o.clean, o.labels) + 0.5 * ce(o.adv, o.labels))
  a, m_a = training.make_train_step(model, opt, mine)(state, *batch)
  b, m_b = training.make_train_step(model, opt, "fgsm_mix", eps=0.1)(state,
                                                                     *batch)
  assert _params_equal(a.params, b.params)
  np.testing.assert_allclose(float(m_a["loss"]), float(m_b["loss"]),
                             rtol=1e-6)
  with pytest.raises(TypeError, match="takes no keywords"):
    training.make_train_step(model, opt, mine, eps=0.2)
  with pytest.raises(ValueError, match="'trades' takes no sigma"):
    M.get("trades", sigma=0.5)
  with pytest.raises(ValueError, match="eps"):
    M.madry(eps=-0.1)


def test_eps_schedule_is_evaluated_at_the_step(batch):
  """With eps = linear_schedule(0 -> 0.3 over 10 steps) the step attacks at
  the scheduled radius: 0 at step 0 (Madry's update is then the standard
  one, x_adv = x) and 0.15 at step 5."""
  model, opt, state = _state()
  schedule = optax.linear_schedule(0., 0.3, 10)
  step = jax.jit(training.make_train_step(model, opt, "madry", eps=schedule))
  at0, m0 = step(state, *batch)
  std, _ = training.make_train_step(model, opt, "standard")(state, *batch)
  assert float(m0["eps"]) == 0.
  assert _params_equal(at0.params, std.params, atol=1e-5)
  at5, m5 = step(state._replace(step=jnp.int32(5)), *batch)
  np.testing.assert_allclose(float(m5["eps"]), 0.15, rtol=1e-6)
  fixed, _ = jax.jit(training.make_train_step(model, opt, "madry", eps=0.15))(
      state._replace(step=jnp.int32(5)), *batch)
  assert _params_equal(at5.params, fixed.params, atol=1e-6)


def test_mart_loss_by_hand():
  """MART's loss: BCE(p_adv, y) + beta KL(p_clean || p_adv) (1 - p_clean(y)),
  BCE = -log p_adv(y) - log(1 - max_{k != y} p_adv(k))."""
  rng = np.random.default_rng(0)
  clean, adv = rng.normal(size=(2, 5, 4)).astype(np.float32) * 2
  y = np.array([0, 1, 2, 3, 1])
  beta = 3.
  sm = lambda z: np.exp(z) / np.exp(z).sum(-1, keepdims=True)
  pc, pa = sm(clean), sm(adv)
  rows = np.arange(5)
  other = pa.copy()
  other[rows, y] = -1
  bce = -np.log(pa[rows, y]) - np.log(1 - other.max(-1))
  kl = np.sum(pc * (np.log(pc) - np.log(pa)), -1)
  want = bce.mean() + beta * np.mean(kl * (1 - pc[rows, y]))
  got = M.mart(0.1, beta=beta).loss(M.LossInputs(jnp.asarray(clean),
                                                 jnp.asarray(adv), y, None))
  np.testing.assert_allclose(float(got), want, rtol=1e-5)


def test_every_preset_builds_by_name_and_lists_its_keywords():
  for name in training.METHODS:
    kwargs = {"teacher": lambda x: x} if name == "distillation" else {}
    method = M.get(name, **kwargs)
    assert method.name == name
    assert (method.attack is None) == (name in ("standard", "distillation"))
  with pytest.raises(ValueError, match="Unknown training method 'free'"):
    M.get("free")


class Constant(nn.Module):
  """A model that predicts class 0 for everything (zero weights in use)."""

  @nn.compact
  def __call__(self, x, train=False):
    return nn.Dense(10, kernel_init=nn.initializers.zeros,
                    bias_init=lambda *_: jnp.arange(10., 0., -1.))(
                        0. * x.reshape(x.shape[0], -1))


def test_fit_warns_when_training_collapses_and_history_is_epoch_means():
  """A constant prediction at chance is flagged with a warning that names
  the fix; the history holds the means over the epoch's steps (here the
  share of class 0 among the trained examples)."""
  train = data.load("digits", "train")
  with pytest.warns(training.TrainingCollapseWarning,
                    match="Lower the learning rate"):
    res = training.fit(Constant(), optax.sgd(0.), train, epochs=3,
                       batch_size=64, progress=False)
  # The first epoch has nothing to compare its loss with.
  assert [h["collapsed"] for h in res.history] == [False, True, True]
  seen = np.concatenate([yb for _, yb in data.iterate_batches(
      (train.images, train.labels), 64, shuffle=True, seed=0, epoch=0,
      drop_remainder=True)])
  np.testing.assert_allclose(res.history[0]["accuracy"], np.mean(seen == 0),
                             atol=1e-6)
  assert res.history[0]["top_class_share"] == 1.
  # Adversarial training that collapses is told to ramp eps up.
  with pytest.warns(training.TrainingCollapseWarning, match="Ramp eps up"):
    training.fit(Constant(), optax.sgd(0.), train, method="madry", eps=0.1,
                 steps=1, epochs=2, batch_size=64, progress=False)


def test_collapse_rule():
  chance = {"accuracy": 0.11, "top_class_share": 0.3, "loss": 2.3026}
  assert not training.collapsed(chance, None, 10)   # nothing to compare
  assert training.collapsed(chance, {"loss": 2.3030}, 10)  # flat loss
  assert not training.collapsed(chance, {"loss": 2.6}, 10)  # loss falls
  constant = {**chance, "top_class_share": 0.95}
  assert training.collapsed(constant, {"loss": 2.35}, 10)  # falls 2 %
  assert not training.collapsed(constant, {"loss": 2.6}, 10)
  assert not training.collapsed({**chance, "accuracy": 0.4}, {"loss": 2.3},
                                10)
  # Two classes: 57.8 % is above the chance band (55 %), 52 % is in it.
  two = {"accuracy": 0.578, "top_class_share": 0.92, "loss": 0.58}
  assert not training.collapsed(two, {"loss": 0.67}, 2)
  assert training.collapsed({**two, "accuracy": 0.52, "loss": 0.69},
                            {"loss": 0.693}, 2)


def test_a_learning_run_is_not_flagged():
  train = data.load("digits", "train")
  with warnings.catch_warnings():
    warnings.simplefilter("error", training.TrainingCollapseWarning)
    res = training.fit(models.get_model("wong_mnist"), optax.adam(3e-3), train,
                       epochs=2, batch_size=64, progress=False)
  assert not any(h["collapsed"] for h in res.history)
  assert res.history[-1]["accuracy"] > 0.5


def test_the_wasserstein_recipe_builds_its_three_models():
  from advjax.training import recipes
  w = recipes.WASSERSTEIN["digits"]
  specs = recipes.wasserstein_methods(
      {k: w[k] for k in recipes.WASSERSTEIN_TRAINING if k in w})
  assert {n: m.name for n, (m, _) in specs.items()} == \
      recipes.WASSERSTEIN_METHODS
  linf, settings = specs["linf"]
  assert linf.eps == w["linf_eps"] and settings["linf_steps"] == 10
  assert specs["wasserstein"][0].eps == w["train_eps0"]
  assert specs["wasserstein"][1]["train_steps"] == 20
  # Wong et al.'s binarised-input row, on request only.
  with_bin = recipes.wasserstein_methods(
      {k: w[k] for k in recipes.WASSERSTEIN_TRAINING if k in w}, 0.5)
  assert list(with_bin) == [*specs, "binarized"]
  method, settings = with_bin["binarized"]
  assert method.name == "binarized" and settings == {"binarize_threshold": .5}


def test_random_crop_shifts_by_whole_pixels_within_the_pad():
  """Each image is one of the (2 pad + 1)^2 zero-filled integer shifts of
  itself; pad 0 is the identity; the shifts are drawn per example."""
  x = jnp.asarray(np.random.RandomState(0).rand(16, 6, 6, 1), jnp.float32)
  crop = M.get("random_crop", pad=1)
  assert crop.name == "random_crop" and crop.uses_clean is False
  out = np.asarray(crop.attack(None, x, None, eps=0., key=jax.random.key(0)))
  assert out.shape == x.shape and out.dtype == x.dtype
  pad = np.pad(np.asarray(x), ((0, 0), (1, 1), (1, 1), (0, 0)))
  crops = [pad[:, 1 - dy:7 - dy, 1 - dx:7 - dx] for dy in (-1, 0, 1)
           for dx in (-1, 0, 1)]
  which = [int(np.argmin([np.abs(out[b] - c[b]).max() for c in crops]))
           for b in range(16)]
  for b, i in enumerate(which):
    assert np.abs(out[b] - crops[i][b]).max() < 1e-5
  assert len(set(which)) > 1  # not one shift for the whole batch
  same = M.random_crop(pad=0).attack(None, x, None, eps=0.,
                                     key=jax.random.key(1))
  np.testing.assert_allclose(np.asarray(same), np.asarray(x), atol=1e-6)
  with pytest.raises(ValueError, match="pad"):
    M.random_crop(pad=-1)


def test_the_spatial_recipe_builds_engstroms_models():
  from advjax.training import recipes
  specs = recipes.engstrom_methods((30., 0.5), (40., 1.), k=4, crop_pad=1)
  assert {n: m.name for n, (m, _) in specs.items()} == recipes.ENGSTROM_METHODS
  # The checkpoint settings name the ranges in pixels, as trained.
  assert specs["augment"][1] == specs["spatial"][1] == dict(
      train_max_angle=30., train_max_shift=0.5, train_k=4)
  assert specs["augment40"][1] == dict(train_max_angle=40.,
                                       train_max_shift=1.)
  assert specs["crop"][1] == {"crop_pad": 1}
  assert all(m.attack is not None for m, _ in specs.values())
