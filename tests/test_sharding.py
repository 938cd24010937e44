"""Tests for advjax/sharding.py on 8 simulated CPU devices (conftest.py)."""
import jax
import numpy as np
import optax
import pytest

from advjax import data, models, sharding, training


def _setup(method, model_name="preact_resnet18"):
  kw = {"width": 4} if model_name == "preact_resnet18" else {}
  model = models.get_model(model_name, **kw)
  opt = optax.sgd(0.1, momentum=0.9)
  state = training.create_train_state(model, opt, jax.random.key(0), (8, 8, 1))
  kw = {} if method == "standard" else {"eps": 0.1}
  step = training.make_train_step(model, opt, method, **kw)
  d = data.load("digits", "train")
  return state, step, d.images[:64], d.labels[:64]


def test_eight_devices_are_simulated():
  assert jax.device_count() == 8


# Batch norm (PreAct ResNet) with a standard step; the attack inside a Madry
# step with Wong's CNN (cheaper to compile).
@pytest.mark.parametrize("method,model_name", [
    pytest.param("standard", "preact_resnet18", marks=pytest.mark.slow),
    ("madry", "wong_mnist")])  # the ResNet case is slow (39 s); CI runs it
def test_sharded_step_equals_single_device_step(method, model_name):
  state, step, x, y = _setup(method, model_name)
  results = []
  for devices in (jax.devices()[:1], jax.devices()):
    mesh = sharding.make_mesh(devices)
    st = sharding.replicate(state, mesh)
    fn = sharding.jit_sharded(step, mesh, donate_state=False, num_batch_args=2)
    xb, yb = sharding.shard_batch((x, y), mesh)
    assert len(xb.sharding.device_set) == len(devices)
    new, metrics = fn(st, xb, yb)
    new, metrics = fn(new, xb, yb)  # two steps: momentum and batch stats too
    results.append((new, metrics))
    # The state's shardings are unchanged by a step.
    for a, b in zip(jax.tree.leaves(st), jax.tree.leaves(new)):
      assert b.sharding.is_equivalent_to(a.sharding, a.ndim)
      assert b.sharding.is_fully_replicated
  (one, m1), (eight, m8) = results
  for a, b in zip(jax.tree.leaves(one), jax.tree.leaves(eight)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5,
                               rtol=1e-5)
  for k in m1:
    np.testing.assert_allclose(float(m1[k]), float(m8[k]), atol=1e-5)


def test_batch_not_divisible_by_devices_is_a_clear_error():
  mesh = sharding.make_mesh()
  with pytest.raises(ValueError, match="not divisible by the 8 devices"):
    sharding.shard_batch((np.zeros((12, 8, 8, 1), np.float32),), mesh)
  with pytest.raises(ValueError, match="multiple of 8"):
    training.fit(models.get_model("wong_mnist"), optax.sgd(0.1),
                 data.load("digits", "train"), batch_size=100, progress=False)


def test_process_slice_single_process():
  assert sharding.process_slice(64) == slice(0, 64)


def test_split_host_cpu_sets_one_device_per_core_once(monkeypatch):
  import os  # pylint: disable=import-outside-toplevel
  monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_foo")
  assert sharding.split_host_cpu(argv=["prog"])
  assert os.environ["XLA_FLAGS"] == (
      f"--xla_cpu_foo --xla_force_host_platform_device_count="
      f"{os.cpu_count() or 1}")
  assert not sharding.split_host_cpu(argv=["prog"])  # a count is set
  monkeypatch.delenv("XLA_FLAGS")
  assert not sharding.split_host_cpu(argv=["prog", "--no-split-cpu"])
  assert "XLA_FLAGS" not in os.environ
