"""Tests for advjax/attacks/gradient.py (FGSM/FGM, BIM, ILLC, PGD)."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from advjax import losses, projections
from advjax.attacks import gradient as G

KEY = jax.random.key(0)


def linear_model(w, b=None):
  """Multiclass linear model on flattened inputs: logits = x W + b."""
  b = jnp.zeros(w.shape[1]) if b is None else b
  return lambda x: x.reshape(x.shape[0], -1) @ w + b


def binary_model(w):
  """Two-class model with logits [0, w.x]: loss for y=0 grows along +w."""
  return lambda x: jnp.stack(
      [jnp.zeros(x.shape[0]), x.reshape(x.shape[0], -1) @ w.ravel()], -1)


@pytest.fixture(scope="module")
def setup():
  w = jax.random.normal(jax.random.key(1), (4 * 4 * 2, 5))
  x = jax.random.uniform(jax.random.key(2), (6, 4, 4, 2))
  y = jnp.array([0, 1, 2, 3, 4, 0])
  return linear_model(w), x, y


def _attacks(norm):
  """(name, attack) pairs that take (model_fn, x, y, *, eps, key)."""
  out = [
      ("fgm", lambda f, x, y, eps, key: G.fgm(f, x, y, eps=eps, norm=norm)),
      ("pgd", lambda f, x, y, eps, key: G.pgd(f, x, y, eps=eps, key=key,
                                              norm=norm, steps=7)),
      ("pgd_restarts", lambda f, x, y, eps, key: G.pgd(
          f, x, y, eps=eps, key=key, norm=norm, steps=5, restarts=3)),
      ("pgd_adam", lambda f, x, y, eps, key: G.pgd(
          f, x, y, eps=eps, key=key, norm=norm, steps=5, optimizer="adam")),
      ("pgd_optax_sgd", lambda f, x, y, eps, key: G.pgd(
          f, x, y, eps=eps, key=key, norm=norm, steps=5,
          optimizer=optax.sgd(0.5))),
      ("pgd_targeted_cw", lambda f, x, y, eps, key: G.pgd(
          f, x, y, eps=eps, key=key, norm=norm, steps=5, loss="cw",
          targeted=True)),
      ("noise", lambda f, x, y, eps, key: G.noise(f, x, y, eps=eps, key=key,
                                                  norm=norm)),
  ]
  if norm == "linf":
    out += [
        ("fgsm", lambda f, x, y, eps, key: G.fgsm(f, x, y, eps=eps)),
        ("bim", lambda f, x, y, eps, key: G.bim(f, x, y, eps=eps, steps=5)),
        ("illc", lambda f, x, y, eps, key: G.illc(f, x, y, eps=eps, steps=5)),
    ]
  return out


CASES = [(norm, name, fn) for norm in projections.NORMS
         for name, fn in _attacks(norm)]
IDS = [f"{norm}-{name}" for norm, name, _ in CASES]


@pytest.mark.parametrize("norm,name,attack", CASES, ids=IDS)
def test_invariants(setup, norm, name, attack):
  f, x, y = setup
  x_np = np.array(x)
  eps = {"linf": 0.1, "l2": 0.5, "l1": 1.5}[norm]
  x_adv = attack(f, x, y, eps, KEY)
  assert x_adv.shape == x.shape and x_adv.dtype == x.dtype
  assert np.all(np.isfinite(np.asarray(x_adv)))
  # In the ball (relative slack for float32 sums) and in the box.
  dist = np.asarray(projections.lp_norm(x_adv - x, norm))
  assert np.all(dist <= eps * (1 + 1e-5) + 1e-6), (name, dist)
  assert float(x_adv.min()) >= 0. and float(x_adv.max()) <= 1.
  # Input untouched.
  np.testing.assert_array_equal(np.asarray(x), x_np)
  # eps = 0 is the identity.
  np.testing.assert_allclose(attack(f, x, y, 0., KEY), x, atol=1e-7)
  # Per-example eps: example i stays within eps_i.
  eps_b = jnp.linspace(0., eps, x.shape[0])
  dist_b = projections.lp_norm(attack(f, x, y, eps_b, KEY) - x, norm)
  assert np.all(np.asarray(dist_b) <= np.asarray(eps_b) * (1 + 1e-5) + 1e-6)


@pytest.mark.parametrize("norm,name,attack", CASES, ids=IDS)
def test_same_key_same_output_and_jit(setup, norm, name, attack):
  f, x, y = setup
  eps = {"linf": 0.1, "l2": 0.5, "l1": 1.5}[norm]
  a = attack(f, x, y, eps, KEY)
  np.testing.assert_array_equal(a, attack(f, x, y, eps, KEY))
  jitted = jax.jit(lambda x, y, eps, key: attack(f, x, y, eps, key))
  np.testing.assert_allclose(jitted(x, y, eps, KEY), a, atol=1e-6)


def test_bfloat16_dtype_kept():
  w = jax.random.normal(jax.random.key(3), (16, 3))
  f = lambda x: x.reshape(x.shape[0], -1).astype(jnp.float32) @ w
  x = jax.random.uniform(KEY, (2, 4, 4, 1)).astype(jnp.bfloat16)
  y = jnp.array([0, 1])
  assert G.fgsm(f, x, y, eps=0.1).dtype == jnp.bfloat16
  out = G.pgd(f, x, y, eps=0.1, key=KEY, steps=3)
  assert out.dtype == jnp.bfloat16
  assert float(jnp.max(jnp.abs(out.astype(jnp.float32) - x))) <= 0.1 + 1e-2


# ---------------------------------------------------------------- closed forms
def test_fgsm_is_eps_sign_w_and_optimal():
  w = jax.random.normal(jax.random.key(4), (1, 6, 6, 1))
  f = binary_model(w)
  x = jax.random.uniform(KEY, (3, 6, 6, 1), minval=0.3, maxval=0.7)
  y = jnp.zeros(3, jnp.int32)
  eps = 0.2
  delta = G.fgsm(f, x, y, eps=eps) - x
  np.testing.assert_allclose(delta, eps * jnp.sign(jnp.broadcast_to(w, x.shape)),
                             atol=1e-6)
  # Optimal: no corner of the ball increases w.x more (max is eps * |w|_1).
  gain = jnp.sum(delta * w, axis=(1, 2, 3))
  np.testing.assert_allclose(gain, eps * jnp.sum(jnp.abs(w)), rtol=1e-5)
  corners = projections.random_sphere(KEY, (256, 6, 6, 1), eps, "linf")
  assert float(jnp.max(jnp.sum(corners * w, axis=(1, 2, 3)))) <= float(
      gain[0]) + 1e-5


@pytest.mark.parametrize("restarts,optimizer", [(1, None), (3, None),
                                                (1, "adam")])
def test_pgd_linf_reaches_the_corner_of_a_linear_model(restarts, optimizer):
  w = jax.random.normal(jax.random.key(5), (1, 5, 5, 1))
  f = binary_model(w)
  x = jax.random.uniform(KEY, (4, 5, 5, 1), minval=0.3, maxval=0.7)
  y = jnp.zeros(4, jnp.int32)
  x_adv = G.pgd(f, x, y, eps=0.1, key=KEY, steps=20, restarts=restarts,
                optimizer=optimizer, step_size=0.025)
  np.testing.assert_allclose(x_adv - x,
                             0.1 * jnp.sign(jnp.broadcast_to(w, x.shape)),
                             atol=1e-5)


def test_l2_step_direction_is_w_over_norm():
  w = jax.random.normal(jax.random.key(6), (1, 4, 4, 1))
  f = binary_model(w)
  x = jnp.full((2, 4, 4, 1), 0.5)
  y = jnp.zeros(2, jnp.int32)
  u = jnp.broadcast_to(w / jnp.linalg.norm(w), x.shape)
  np.testing.assert_allclose(G.fgm(f, x, y, eps=0.3, norm="l2") - x, 0.3 * u,
                             atol=1e-6)
  # One PGD step of step_size from x moves by exactly step_size * w / |w|.
  x1 = G.pgd(f, x, y, eps=1.0, norm="l2", steps=1, step_size=0.05,
             random_start=False)
  np.testing.assert_allclose(x1 - x, 0.05 * u, atol=1e-6)
  # PGD converges to the L2 optimum eps * w / |w|.
  xk = G.pgd(f, x, y, eps=0.3, norm="l2", steps=30, step_size=0.3, key=KEY)
  np.testing.assert_allclose(xk - x, 0.3 * u, atol=1e-5)


def test_l1_fgm_moves_the_largest_weight_and_pgd_reaches_the_optimum():
  w = jnp.array([0.1, -2.0, 0.5, 0.3, -0.4, 0.2, 0.1, 0.05, 0.3]).reshape(
      1, 3, 3, 1)
  f = binary_model(w)
  x = jnp.full((1, 3, 3, 1), 0.5)
  y = jnp.zeros(1, jnp.int32)
  delta = G.fgm(f, x, y, eps=0.3, norm="l1") - x
  expected = jnp.zeros_like(x).at[0, 0, 1, 0].set(-0.3)
  np.testing.assert_allclose(delta, expected, atol=1e-6)
  x_adv = G.pgd(f, x, y, eps=0.3, norm="l1", steps=30, key=KEY)
  gain = float(jnp.sum((x_adv - x) * w))
  assert gain >= 0.95 * 0.3 * 2.0, gain


def test_random_start_outside_box_does_not_freeze_pixels():
  # Black image, loss grows with every pixel. A start below 0 is moved into
  # the box; one step must then move every pixel up by the step size.
  w = jnp.ones((1, 4, 4, 1))
  f = binary_model(w)
  x = jnp.zeros((2, 4, 4, 1))
  y = jnp.zeros(2, jnp.int32)
  x1 = G.pgd(f, x, y, eps=0.3, key=KEY, steps=1, step_size=0.1)
  assert float(x1.min()) >= 0.1 - 1e-6  # every pixel moved by >= one step


def test_restarts_keep_the_highest_loss_per_example(digits_model):
  f = digits_model.model_fn
  x, y = digits_model.x_test[:32], digits_model.y_test[:32]
  kw = dict(eps=0.1, steps=3, norm="l2")
  best = G.pgd(f, x, y, key=KEY, restarts=4, return_result=True, **kw)
  singles = [G.pgd(f, x, y, key=k, return_result=True, **kw)
             for k in jax.random.split(KEY, 4)]
  stacked = jnp.stack([s.loss for s in singles])
  # 1e-4: the vmapped restarts and the single runs batch convolutions
  # differently, so float32 losses differ in the last digits.
  np.testing.assert_allclose(best.loss, stacked.max(axis=0), rtol=1e-4,
                             atol=1e-6)
  np.testing.assert_allclose(
      best.loss, losses.cross_entropy(f(best.x_adv), y), rtol=1e-4, atol=1e-6)
  assert best.loss_history.shape == (3, 32)


@pytest.mark.slow  # the determinism check across batch sizes; CI runs it (README)
def test_batch_consistency_for_deterministic_attacks(digits_model):
  f = digits_model.model_fn
  x, y = digits_model.x_test[:8], digits_model.y_test[:8]
  attacks = {
      "fgsm": functools.partial(G.fgsm, eps=0.1),
      "bim": functools.partial(G.bim, eps=0.1, steps=5),
      "pgd_l2": functools.partial(G.pgd, eps=0.5, norm="l2", steps=5,
                                  random_start=False),
      "pgd_l1": functools.partial(G.pgd, eps=2., norm="l1", steps=5,
                                  random_start=False),
  }
  for name, attack in attacks.items():
    batch = attack(f, x, y)
    for i in (0, 5):
      alone = attack(f, x[i:i + 1], y[i:i + 1])
      np.testing.assert_allclose(alone[0], batch[i], atol=1e-6, err_msg=name)


def test_no_recompilation_across_an_eps_sweep(setup):
  f, x, y = setup
  traces = []

  def attack(x, y, eps, key):
    traces.append(1)
    return G.pgd(f, x, y, eps=eps, key=key, steps=3)

  jitted = jax.jit(attack)
  for eps in (0.0, 0.05, 0.1, 0.3):
    jitted(x, y, eps, KEY).block_until_ready()
  jitted(x, y, jnp.linspace(0, 0.1, x.shape[0]), KEY)  # [B] eps: one more
  assert len(traces) == 2


def test_bim_defaults_follow_kurakin():
  # eps = 4/255 -> min(4 + 4, 1.25 * 4) = 5 steps of 1/255.
  assert G.kurakin_steps(4. / 255) == 5
  assert G.kurakin_steps(16. / 255, (0., 1.), "bim") == 20
  # Kurakin et al.'s sweep (levels of 255), and eps 0: one step.
  assert [G.kurakin_steps(e / 255) for e in (0, 2, 4, 8, 16, 32, 64, 128)] == [
      1, 3, 5, 10, 20, 36, 68, 132]
  assert G.kurakin_steps(8., (0., 255.)) == 10  # one level of the box
  with pytest.raises(ValueError, match="traced"):
    jax.jit(lambda e: G.kurakin_steps(e))(0.1)
  w = jax.random.normal(jax.random.key(7), (1, 4, 4, 1))
  x = jnp.full((1, 4, 4, 1), 0.5)
  y = jnp.zeros(1, jnp.int32)
  delta = G.bim(binary_model(w), x, y, eps=4. / 255) - x
  np.testing.assert_allclose(jnp.abs(delta), 4. / 255, atol=1e-6)


def test_bim_relative_step_adds_up_to_eps():
  """Steps of eps / steps: on a linear model every step moves each pixel
  the same way, so `steps` of them land on the corner at eps, as FGSM's one
  step does; half-size steps reach eps / 2. eps may be traced."""
  w = jax.random.normal(jax.random.key(7), (1, 4, 4, 1))
  x = jnp.full((1, 4, 4, 1), 0.5)
  y = jnp.zeros(1, jnp.int32)
  f = binary_model(w)
  fgsm = G.fgsm(f, x, y, eps=0.1)
  for steps in (1, 3):
    np.testing.assert_allclose(G.bim(f, x, y, eps=0.1, steps=steps,
                                     relative_step=1.), fgsm, atol=1e-6)
  half = jax.jit(lambda e: G.bim(f, x, y, eps=e, steps=4,
                                 relative_step=0.5))(0.1)
  np.testing.assert_allclose(jnp.abs(half - x), 0.05, atol=1e-6)
  with pytest.raises(ValueError, match="not both"):
    G.bim(f, x, y, eps=0.1, steps=2, step_size=0.1, relative_step=1.)


# ------------------------------------------------------- on a trained model
@pytest.mark.slow  # a strength check on the trained digits model (default run: under ten minutes); CI runs it (README)
def test_targeted_attacks_reach_the_target(digits_model):
  f = digits_model.model_fn
  x, y = digits_model.x_test[:100], digits_model.y_test[:100]
  target = (y + 1 + jax.random.randint(KEY, y.shape, 0, 9)) % 10
  assert not bool(jnp.any(target == y))
  for norm, eps in (("linf", 0.3), ("l2", 3.0), ("l1", 12.0)):
    x_adv = G.pgd(f, x, target, eps=eps, key=KEY, norm=norm, steps=20,
                  step_size=eps / 8, targeted=True, l1_sparsity=0.05)
    hit = float(jnp.mean(jnp.argmax(f(x_adv), -1) == target))
    assert hit >= 0.9, (norm, hit)
  for loss in ("ce", "cw"):
    x_adv = G.pgd(f, x, target, eps=0.3, key=KEY, steps=20, loss=loss,
                  targeted=True, optimizer="adam", step_size=0.04)
    assert float(jnp.mean(jnp.argmax(f(x_adv), -1) == target)) >= 0.9, loss


def test_illc_moves_towards_the_least_likely_class(digits_model):
  f = digits_model.model_fn
  x, y = digits_model.x_test[:100], digits_model.y_test[:100]
  y_ll = jnp.argmin(f(x), -1)
  x_adv = G.illc(f, x, y, eps=0.3, steps=40, step_size=0.01)
  hit = float(jnp.mean(jnp.argmax(f(x_adv), -1) == y_ll))
  assert hit >= 0.8, hit


@pytest.mark.parametrize("norm,eps_list", [
    ("linf", (0.05, 0.1, 0.2)),
    ("l2", (0.5, 1.0, 2.0)),
])
def test_strength_ordering_pgd_fgsm_noise(digits_model, norm, eps_list):
  f = digits_model.model_fn
  x, y = digits_model.x_test, digits_model.y_test
  acc = lambda xa: float(jnp.mean(jnp.argmax(f(xa), -1) == y))
  for eps in eps_list:
    a_pgd = acc(G.pgd(f, x, y, eps=eps, key=KEY, norm=norm, steps=40))
    a_fgm = acc(G.fgm(f, x, y, eps=eps, norm=norm))
    a_noise = acc(G.noise(f, x, y, eps=eps, key=KEY, norm=norm))
    assert a_pgd <= a_fgm <= a_noise, (eps, a_pgd, a_fgm, a_noise)
  assert a_pgd < a_noise - 0.3  # at the largest eps PGD is far stronger


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("attack", [
    functools.partial(G.fgsm, eps=0.1),
    functools.partial(G.pgd, eps=0.1, key=KEY),
    functools.partial(G.bim, eps=0.1, steps=2),
], ids=["fgsm", "pgd", "bim"])
def test_bad_inputs_raise_clear_errors(setup, attack):
  f, x, y = setup
  with pytest.raises(ValueError, match="rank"):
    attack(f, x[0, 0, 0], y[:1])
  with pytest.raises(ValueError, match="eps must be >= 0"):
    attack.func(f, x, y, **{**attack.keywords, "eps": -0.1})
  with pytest.raises(ValueError, match=r"labels must be in \[0, 5\)"):
    attack(f, x, y.at[0].set(7))
  with pytest.raises(ValueError, match="labels must be in"):
    attack(f, x, y.at[0].set(-1))
  with pytest.raises(TypeError, match="float"):
    attack(f, (x * 255).astype(jnp.uint8), y)
  with pytest.raises(TypeError, match="integer"):
    attack(f, x, y.astype(jnp.float32))
  with pytest.raises(ValueError, match="NaN"):
    attack(f, x.at[2, 0, 0, 0].set(jnp.nan), y)
  with pytest.raises(ValueError, match="shape"):
    attack(f, x, y[:3])
  with pytest.raises(ValueError, match="inside bounds"):
    attack(f, x + 2., y)
  with pytest.raises(ValueError, match="lo < hi"):
    attack(f, x, y, bounds=(1., 0.))


def test_pgd_specific_errors(setup):
  f, x, y = setup
  with pytest.raises(ValueError, match="key"):
    G.pgd(f, x, y, eps=0.1)
  with pytest.raises(ValueError, match="Unknown norm"):
    G.pgd(f, x, y, eps=0.1, key=KEY, norm="l3")
  with pytest.raises(ValueError, match="random_start"):
    G.pgd(f, x, y, eps=0.1, key=KEY, restarts=2, random_start=False)
  with pytest.raises(ValueError, match="optimizer"):
    G.pgd(f, x, y, eps=0.1, key=KEY, optimizer="rmsprop")
  with pytest.raises(ValueError, match="model_fn must map"):
    G.pgd(lambda z: z, x, y, eps=0.1, key=KEY)
  with pytest.raises(ValueError, match="pass steps explicitly"):
    jax.jit(lambda e: G.bim(f, x, y, eps=e))(0.1)


# Minimal-eps searches (Carlini & Wagner's FGSM and IGS baselines).
def _linear(n=6, d=16):
  """A linear binary model and points at known Linf distances from its
  boundary: targeted sign steps towards class 1 gain eps |w|_1."""
  rng = np.random.default_rng(0)
  w = rng.choice([-1., 1.], d) * rng.uniform(0.5, 1.5, d)
  b = -0.5 * w.sum()
  eps_min = np.linspace(0.0512, 0.1973, n)  # off the FGSM grid
  # x = 0.5 moved along w so that w.x + b = -eps_min |w|_1 (class 0).
  x = 0.5 - np.outer(eps_min * np.abs(w).sum(), w) / (w @ w)
  assert x.min() - eps_min.max() > 0 and x.max() + eps_min.max() < 1

  def model_fn(z):
    v = z.reshape(z.shape[0], -1) @ jnp.asarray(w, jnp.float32) + b
    return jnp.stack([-v / 2, v / 2], 1)

  return model_fn, x.reshape(n, d, 1, 1).astype(np.float32), eps_min


def test_fgsm_and_igs_find_the_smallest_eps():
  model_fn, x, eps_min = _linear()
  t = jnp.ones(len(x), jnp.int32)
  adv = jax.jit(lambda x: G.fgsm_search(model_fn, x, t, grid=200))(x)
  found = np.abs(np.asarray(adv) - x).reshape(len(x), -1).max(1)
  assert np.all(np.asarray(jnp.argmax(model_fn(adv), 1)) == 1)
  assert np.all((found >= eps_min - 1e-6) & (found <= eps_min + 1 / 200 + 1e-6))
  # Untargeted away from class 0: in a binary model, the same eps.
  un = jax.jit(lambda x: G.fgsm_search(model_fn, x, 1 - t, grid=200,
                                       targeted=False))(x)
  np.testing.assert_array_equal(un, adv)
  adv = jax.jit(lambda x: G.igs_search(model_fn, x, t, steps=10,
                                       bisections=12))(x)
  found = np.abs(np.asarray(adv) - x).reshape(len(x), -1).max(1)
  assert np.all(np.asarray(jnp.argmax(model_fn(adv), 1)) == 1)
  assert np.all((found >= eps_min - 1e-6) & (found <= eps_min + 2 ** -11))
