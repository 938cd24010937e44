"""Test configuration: 8 simulated CPU devices, float32 defaults.

XLA_FLAGS must be set before JAX is imported anywhere, so it is set here at
import time of the conftest (pytest imports conftest before test modules).

Compilations are shared through JAX's persistent cache in a directory that
is fresh for each test run (keyed by xdist's run id, so both workers, the
subprocesses and the notebook kernels of one run share it, and no run
reuses another's): the suite compiles many identical programs (the same
model trained in several tests, reload runs, a fixture built in each
worker), and XLA:CPU compilation is most of its time.
"""
import os
import tempfile
import uuid

_flags = os.environ.get("XLA_FLAGS", "")
if "xla_force_host_platform_device_count" not in _flags:
  os.environ["XLA_FLAGS"] = (
      _flags + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
_run_id = os.environ.setdefault("PYTEST_XDIST_TESTRUNUID", uuid.uuid4().hex)
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(
    tempfile.gettempdir(), f"advjax-tests-jax-cache-{_run_id}"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")

import gzip  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture
def digits_idx(tmp_path):
  """A directory holding sklearn's digits as MNIST IDX files (8x8 uint8),
  for the lazy readers (`data.load('mnist', split, dir, lazy=True)`): the
  train split plain (read record by record), the test split gzipped (read
  whole)."""
  return _write_digits_idx(tmp_path / "digits_idx")


def _write_digits_idx(directory):
  import numpy as np  # pylint: disable=import-outside-toplevel
  from advjax import data  # pylint: disable=import-outside-toplevel
  os.makedirs(directory, exist_ok=True)
  for split in ("train", "test"):
    ds = data.load("digits", split)
    images = np.round(ds.images[..., 0] * 255).astype(np.uint8)
    names = data.DATASETS["mnist"].raw_files[split]
    for name, a in zip(names, (images, ds.labels.astype(np.uint8))):
      payload = bytes([0, 0, 8, a.ndim]) + b"".join(
          int(d).to_bytes(4, "big") for d in a.shape) + a.tobytes()
      path = os.path.join(directory, name)
      if split == "test":
        with gzip.open(path + ".gz", "wb") as f:
          f.write(payload)
      else:
        with open(path, "wb") as f:
          f.write(payload)
  return str(directory)


class TrainedModel:
  """A small model trained on the digits, for attack-strength tests."""

  def __init__(self, model, variables, x_test, y_test):
    self.model = model
    self.variables = variables
    self.x_test = x_test
    self.y_test = y_test

  def apply_fn(self, variables, x):
    return self.model.apply(variables, x, train=False)

  @property
  def model_fn(self):
    return lambda x: self.apply_fn(self.variables, x)


@pytest.fixture(scope="session")
def digits_model():
  """Wong's CNN trained 400 Adam steps on the digits train split (~97 % test)."""
  import jax
  import jax.numpy as jnp
  import optax
  from advjax import data, losses, models

  train = data.load("digits", "train")
  test = data.load("digits", "test")
  model = models.get_model("wong_mnist", num_classes=10)
  variables = models.init_model(model, jax.random.key(0), (8, 8, 1))
  params = variables["params"]
  opt = optax.adam(3e-3)
  opt_state = opt.init(params)
  x_all, y_all = jnp.asarray(train.images), jnp.asarray(train.labels)

  @jax.jit
  def step(params, opt_state, idx):
    def loss_fn(p):
      logits = model.apply({"params": p}, x_all[idx], train=False)
      return jnp.mean(losses.cross_entropy(logits, y_all[idx]))
    g = jax.grad(loss_fn)(params)
    updates, opt_state = opt.update(g, opt_state, params)
    return optax.apply_updates(params, updates), opt_state

  key = jax.random.key(1)
  for i in range(400):
    idx = jax.random.choice(jax.random.fold_in(key, i), x_all.shape[0], (128,),
                            replace=False)
    params, opt_state = step(params, opt_state, idx)
  return TrainedModel(model, {"params": params}, jnp.asarray(test.images),
                      jnp.asarray(test.labels))


def pytest_sessionfinish(session):
  """The run's compilation cache goes when the run ends (controller only)."""
  if hasattr(session.config, "workerinput"):
    return
  import shutil  # pylint: disable=import-outside-toplevel
  cache = os.environ.get("JAX_COMPILATION_CACHE_DIR", "")
  if os.path.basename(cache).startswith("advjax-tests-jax-cache-"):
    shutil.rmtree(cache, ignore_errors=True)
