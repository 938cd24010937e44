"""Mixed precision: bfloat16 compute, float32 parameters, state and losses."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from advjax import data, evaluation, models, training
from advjax.attacks import cw
from advjax.attacks.deepfool import deepfool
from advjax.attacks import gradient as G

SMALL = {"preact_resnet18": {"width": 4}, "wide_resnet": {"depth": 10,
                                                          "width": 1}}


@pytest.mark.parametrize("name", models.list_models())
def test_every_model_takes_bfloat16_with_float32_parameters(name):
  kw = SMALL.get(name, {})
  spec = jax.ShapeDtypeStruct((2, 8, 8, 1), jnp.float32)
  m32 = models.get_model(name, **kw)
  m16 = models.get_model(name, dtype="bfloat16", **kw)
  assert m16.dtype == jnp.bfloat16
  init = lambda m: jax.eval_shape(m.init, jax.random.key(0), spec)
  v32, v16 = init(m32), init(m16)
  # The same parameter tree, shapes and dtype: checkpoints are shared.
  assert jax.tree.structure(v32) == jax.tree.structure(v16)
  for a, b in zip(jax.tree.leaves(v32), jax.tree.leaves(v16)):
    assert (a.shape, b.dtype) == (b.shape, jnp.float32)
  assert jax.eval_shape(m16.apply, v16, spec).dtype == jnp.float32


@pytest.mark.parametrize("name", [
    "wong_mnist", pytest.param("wide_resnet", marks=pytest.mark.slow)])
def test_bfloat16_logits_and_gradients_are_close(name):
  kw = SMALL.get(name, {})
  m32 = models.get_model(name, **kw)
  m16 = models.get_model(name, dtype="bfloat16", **kw)
  v = models.init_model(m32, jax.random.key(0), (8, 8, 1))
  x = jax.random.uniform(jax.random.key(1), (3, 8, 8, 1))
  l32, l16 = jax.jit(m32.apply)(v, x), jax.jit(m16.apply)(v, x)
  # bf16 keeps 8 bits of mantissa: close, not equal.
  scale = float(jnp.abs(l32).max()) + 1e-6
  assert 0 < float(jnp.abs(l32 - l16).max()) < 0.1 * scale
  grad = jax.jit(jax.grad(lambda z: m16.apply(v, z).sum()))(x)
  assert grad.dtype == jnp.float32 and bool(jnp.isfinite(grad).all())


def test_bad_dtype_is_a_clear_error():
  with pytest.raises(ValueError, match="float32, bfloat16 or float16"):
    models.get_model("wong_mnist", dtype="int8")
  with pytest.raises(ValueError, match="Unknown dtype"):
    models.get_model("wong_mnist", dtype="bfloat17")


@pytest.mark.slow  # a precision parity check: CI runs it
def test_attack_invariants_hold_in_bfloat16(digits_model):
  model = digits_model.model.clone(dtype=jnp.bfloat16)
  fn = lambda x: model.apply(digits_model.variables, x)
  x, y = digits_model.x_test[:32], digits_model.y_test[:32]
  pgd = functools.partial(G.pgd, key=jax.random.key(0))
  for attack, eps, norm in ((G.fgsm, 0.1, "linf"), (pgd, 0.1, "linf"),
                            (functools.partial(pgd, norm="l2"), 1.0, "l2")):
    x_adv = attack(fn, x, y, eps=eps)
    assert x_adv.dtype == jnp.float32
    assert float(x_adv.min()) >= 0. and float(x_adv.max()) <= 1.
    d = (x_adv - x).reshape(32, -1)
    size = (jnp.abs(d).max(1) if norm == "linf"
            else jnp.linalg.norm(d, axis=1))
    assert float(size.max()) <= eps * (1 + 1e-5) + 1e-6
    assert float(jnp.mean(jnp.argmax(fn(x_adv), -1) == y)) < float(
        jnp.mean(jnp.argmax(fn(x), -1) == y))
  for x_adv in (deepfool(fn, x, y),
                cw.carlini_wagner_l2(fn, x, y, steps=20,
                                     binary_search_steps=2)):
    assert x_adv.dtype == jnp.float32
    assert float(x_adv.min()) >= 0. and float(x_adv.max()) <= 1.


def test_bfloat16_robust_accuracy_within_a_point_of_float32(digits_model):
  """PGD-20 robust accuracy of the trained digits model (360 test images):
  bf16 compute moves it by at most one point."""
  accs = []
  for dtype in (jnp.float32, jnp.bfloat16):
    model = digits_model.model.clone(dtype=dtype)
    ra = evaluation.robust_accuracy(
        lambda v, x, m=model: m.apply(v, x), digits_model.variables,
        np.asarray(digits_model.x_test), np.asarray(digits_model.y_test),
        attack=functools.partial(G.pgd, steps=20), eps=[0.05, 0.1],
        key=jax.random.key(0), progress=False)
    accs.append(ra.accuracy)
  assert np.all(np.abs(accs[0] - accs[1]) <= 0.01), accs
  assert np.all(accs[0] < 0.9)  # the attack does something


def test_bfloat16_madry_training_keeps_float32_state():
  train = data.load("digits", "train", limit=256)
  model = models.get_model("wong_mnist", dtype="bfloat16")
  res = training.fit(model, optax.adam(3e-3), train, method="madry", eps=0.1,
                     steps=3, epochs=4, batch_size=64, progress=False)
  for leaf in jax.tree.leaves((res.state.params, res.state.opt_state)):
    if jnp.issubdtype(leaf.dtype, jnp.floating):
      assert leaf.dtype == jnp.float32
  first, last = res.history[0], res.history[-1]
  assert isinstance(last["loss"], float)
  assert last["loss"] < first["loss"]
