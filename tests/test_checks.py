"""Input checks that hold under `jax.jit` and `vmap` (advjax.checks).

Every public attack, jitted with eps, labels and images as traced
arguments, must stop with the same words as its eager check for a negative
or NaN eps, a label out of range, a NaN pixel and a pixel outside the box,
and run unchanged on valid input.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from advjax import attacks, checks, models
from advjax.attacks import gradient

K = 10
SHAPE = (6, 6, 1)


@pytest.fixture(scope="module")
def model_fn():
  model = models.get_model("fc10", num_classes=K)
  return models.model_fn(model, models.init_model(model, jax.random.key(0),
                                                  SHAPE))


KEY = jax.random.key(1)
# name -> (attack keywords without eps, takes eps); tiny step counts: the
# checks are what is under test.
ATTACKS = {
    "fgm": (attacks.fgm, {}, True),
    "fgsm": (attacks.fgsm, {}, True),
    "pgd": (attacks.pgd, dict(key=KEY, steps=2), True),
    "bim": (attacks.bim, dict(steps=2), True),
    "illc": (attacks.illc, dict(steps=2), True),
    "noise": (attacks.noise, dict(key=KEY), True),
    "apgd": (attacks.apgd, dict(key=KEY, steps=2), True),
    "apgd_t": (attacks.apgd_t, dict(key=KEY, steps=2), True),
    "fab": (attacks.fab, dict(key=KEY, steps=2), True),
    "square": (attacks.square, dict(key=KEY, queries=2), True),
    "universal": (attacks.universal, dict(key=KEY, iterations=1,
                                          batch_size=4), True),
    "wasserstein": (attacks.wasserstein, dict(key=KEY, steps=1,
                                              sinkhorn_iterations=5), True),
    "carlini_wagner_l2": (attacks.carlini_wagner_l2, dict(
        steps=2, binary_search_steps=1), False),
    "carlini_wagner_linf": (attacks.carlini_wagner_linf, dict(steps=2),
                            False),
    "carlini_wagner_l0": (attacks.carlini_wagner_l0, dict(steps=2), False),
    "deepfool": (attacks.deepfool, dict(steps=2), False),
    "jsma": (attacks.jsma, dict(gamma=0.1), False),
    "lbfgs": (attacks.lbfgs, dict(steps=2, search_steps=1), False),
    "spatial_grid": (attacks.spatial_grid, dict(angles=2, shifts=1), False),
    "spatial_worst_of_k": (attacks.spatial_worst_of_k, dict(key=KEY, k=2),
                           False),
    "spatial_pgd": (attacks.spatial_pgd, dict(key=KEY, steps=2), False),
    "fgsm_search": (gradient.fgsm_search, dict(grid=2), False),
    "igs_search": (gradient.igs_search, dict(steps=2, bisections=1), False),
}


def _jitted(model_fn, name):
  """The attack with x, y and eps traced (eps ignored where it takes none)."""
  fn, kwargs, takes_eps = ATTACKS[name]

  def run(x, y, eps):
    out = fn(model_fn, x, y, **kwargs, **({"eps": eps} if takes_eps else {}))
    return getattr(out, "x_adv", out)

  return jax.jit(run), takes_eps


# The run-time error surfaces as XLA's runtime error (JaxRuntimeError; a
# ValueError where JAX re-raises it from a loop) holding the message.
RUNTIME_ERRORS = (jax.errors.JaxRuntimeError, ValueError)


def _raises(call, *args, match: str):
  with pytest.raises(RUNTIME_ERRORS, match=match):
    jax.block_until_ready(call(*args))


def _inputs():
  x = jax.random.uniform(jax.random.key(2), (4, *SHAPE), jnp.float32)
  return x, jnp.array([1, 2, 3, 4], jnp.int32), jnp.float32(0.1)


# One attack of each kind in the default run, every attack with -m slow.
DEFAULT = ("pgd", "square", "fab", "deepfool")


@pytest.mark.parametrize("name", [
    n if n in DEFAULT else pytest.param(n, marks=pytest.mark.slow)
    for n in sorted(ATTACKS)])
def test_every_attack_checks_traced_values_under_jit(model_fn, name):
  call, takes_eps = _jitted(model_fn, name)
  x, y, eps = _inputs()
  out = jax.block_until_ready(call(x, y, eps))  # valid input runs
  # x_adv [B, ...]; universal's one perturbation [H, W, C]
  assert out.shape[-3:] == SHAPE and np.isfinite(np.asarray(out)).all()
  if takes_eps:
    for bad in (-1., np.nan):
      _raises(call, x, y, jnp.float32(bad),  # bim's check is pgd's
              match=r"\w+: eps must be finite and >= 0")
  for bad in (K, -1):
    _raises(call, x, y.at[2].set(bad), eps,
            match=fr"labels must be in \[0, {K}\)")
  _raises(call, x.at[1, 0, 0, 0].set(jnp.nan), y, eps,
          match="x contains NaN")
  _raises(call, x.at[1, 0, 0, 0].set(1.5), y, eps,
          match=r"x must lie inside bounds \(0.0, 1.0\)")


def test_the_eager_check_still_names_the_values(model_fn):
  x, y, _ = _inputs()
  with pytest.raises(ValueError, match=r"pgd: eps must be >= 0, got -1.0"):
    attacks.pgd(model_fn, x, y, eps=-1., key=KEY, steps=2)
  with pytest.raises(ValueError, match=r"labels must be in \[0, 10\), got "
                     r"\[10\] at indices \[2\]"):
    attacks.pgd(model_fn, x, y.at[2].set(10), eps=.1, key=KEY, steps=2)


def test_checked_results_are_the_unchecked_ones(model_fn):
  """The checks change nothing on valid input: the jitted attack (traced
  values, run-time checks) returns the eager attack's result bit for bit."""
  x, y, eps = _inputs()
  pgd = functools.partial(attacks.pgd, model_fn, key=KEY, steps=3)
  eager = pgd(x, y, eps=0.1)
  jitted = jax.jit(lambda x, y, e: pgd(x, y, eps=e))(x, y, eps)
  np.testing.assert_array_equal(np.asarray(eager), np.asarray(jitted))


def test_a_bad_example_under_vmap_stops_the_batch(model_fn):
  """Per-example eps under vmap: the good batch runs, one bad eps stops it
  (the batch's predicates are reduced, one check, no per-example call)."""
  x, y, _ = _inputs()
  one = lambda x, y, e: attacks.pgd(model_fn, x[None], y[None], eps=e,
                                    key=KEY, steps=2)[0]
  call = jax.jit(jax.vmap(one))
  good = jnp.full((4,), 0.1, jnp.float32)
  assert call(x, y, good).shape == x.shape
  _raises(call, x, y, good.at[3].set(-0.1), match="pgd: eps must be finite")


def test_runtime_check_passes_its_value_through_grad():
  f = lambda v: jnp.sum(checks.runtime_check(v, v < -1, "v >= -1") ** 2)
  np.testing.assert_allclose(jax.jit(jax.grad(f))(jnp.float32(3.)), 6.)
  with pytest.raises(RUNTIME_ERRORS, match="v >= -1"):
    jax.block_until_ready(jax.jit(jax.grad(f))(jnp.float32(-3.)))


def test_concrete_values_get_no_runtime_check():
  x = jnp.zeros((2, 3))
  assert not checks.traced(x)
  jax.jit(lambda v: (checks.traced(v) or pytest.fail("not traced"), v)[1])(x)
