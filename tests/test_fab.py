"""Tests for advjax/attacks/fab.py."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import optimize

from advjax import projections
from advjax.attacks.fab import fab, hyperplane_projection


def _reference(t, w, c, norm):
  """The minimal norm of d with w . d = c and 0 <= t + d <= 1 (SciPy's LP
  for Linf/L1, SLSQP for L2), or None if infeasible."""
  d_dim = t.shape[0]
  box = list(zip(-t, 1 - t))
  if norm == "linf":
    res = optimize.linprog(
        np.r_[np.zeros(d_dim), 1.],
        A_ub=np.block([[np.eye(d_dim), -np.ones((d_dim, 1))],
                       [-np.eye(d_dim), -np.ones((d_dim, 1))]]),
        b_ub=np.zeros(2 * d_dim), A_eq=np.r_[w, 0.][None], b_eq=[c],
        bounds=box + [(0, None)])
    return res.x[-1] if res.success else None
  if norm == "l1":
    res = optimize.linprog(np.ones(2 * d_dim), A_eq=np.r_[w, -w][None],
                           b_eq=[c], bounds=[(0, 1 - v) for v in t] +
                           [(0, v) for v in t])
    return res.fun if res.success else None
  res = optimize.minimize(
      lambda z: z @ z, np.zeros(d_dim), jac=lambda z: 2 * z, bounds=box,
      constraints=[{"type": "eq", "fun": lambda z: w @ z - c,
                    "jac": lambda z: w}], method="SLSQP",
      options={"ftol": 1e-16, "maxiter": 1000})
  ok = res.success and abs(w @ res.x - c) < 1e-9
  return float(np.sqrt(max(res.fun, 0.))) if ok else None


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_hyperplane_projection_is_the_exact_minimal_step(norm):
  rs = np.random.RandomState(0)
  b, d = 40, 7
  t = rs.uniform(0, 1, (b, d))
  t[::7, 2], t[::5, 3] = 0., 1.  # points on the box's faces
  w = rs.normal(size=(b, d))
  w[::3, 0] = 0.
  c = rs.normal(size=b) * rs.choice([1e-3, 0.1, 1., 3.], b)
  step = np.asarray(hyperplane_projection(jnp.asarray(t, jnp.float32),
                                          jnp.asarray(w, jnp.float32),
                                          jnp.asarray(c, jnp.float32), norm),
                    np.float64)
  assert np.all(t + step >= -1e-6) and np.all(t + step <= 1 + 1e-6)
  checked = 0
  for i in range(b):
    ref = _reference(t[i], w[i], c[i], norm)
    if ref is None:  # unreachable in the box: the step goes all the way
      assert abs(w[i] @ step[i]) <= abs(c[i]) + 1e-5
      continue
    checked += 1
    np.testing.assert_allclose(w[i] @ step[i], c[i], rtol=1e-4, atol=1e-5)
    mine = {"linf": np.max(np.abs(step[i])), "l2": np.linalg.norm(step[i]),
            "l1": np.sum(np.abs(step[i]))}[norm]
    np.testing.assert_allclose(mine, ref, rtol=1e-5, atol=1e-7)
  assert checked > 25


@pytest.fixture(scope="module")
def affine():
  rs = np.random.RandomState(0)
  w = jnp.asarray(rs.normal(size=(16, 5)), jnp.float32)
  b = jnp.asarray(rs.normal(size=5), jnp.float32)
  model_fn = lambda x: x.reshape(x.shape[0], -1) @ w + b
  x = jnp.asarray(rs.uniform(0.4, 0.6, (24, 4, 4, 1)), jnp.float32)
  return model_fn, w, b, x, jnp.argmax(model_fn(x), -1)


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_fab_finds_the_minimal_perturbation_of_an_affine_model(affine, norm):
  model_fn, w, b, x, y = affine
  flat = x.reshape(x.shape[0], -1)
  logits = model_fn(x)
  best = np.full(x.shape[0], np.inf)
  for l in range(5):  # the misclassified region is the union of halfspaces
    normal = w[:, l][None] - w[:, y].T
    c = logits[jnp.arange(x.shape[0]), y] - logits[:, l]
    d = hyperplane_projection(flat, normal, c, norm)
    n = np.asarray(projections.lp_norm(d, norm))
    best = np.minimum(best, np.where(np.asarray(y) != l, n, np.inf))
  r = jax.jit(lambda x, y: fab(model_fn, x, y, norm=norm,
                               return_result=True))(x, y)
  assert bool(jnp.all(r.success))
  ratio = np.asarray(r.distance) / best
  assert ratio.min() >= 1 - 1e-5 and ratio.max() <= 1.01, ratio
  np.testing.assert_allclose(
      r.distance, projections.lp_norm(r.x_adv - x, norm), rtol=1e-6)
  assert bool(jnp.all(jnp.argmax(model_fn(r.x_adv), -1) != y))


def test_targeted_fab_follows_the_target_boundary(affine):
  model_fn, w, b, x, y = affine
  t = (y + 2) % 5
  r = fab(model_fn, x, y, norm="l2", targeted=True, targets=t,
          return_result=True)
  flat = x.reshape(x.shape[0], -1)
  normal = w[:, t].T - w[:, y].T
  gap = model_fn(x)[jnp.arange(24), y] - model_fn(x)[jnp.arange(24), t]
  to_target = np.asarray(projections.lp_norm(
      hyperplane_projection(flat, normal, gap, "l2"), "l2"))
  # It ends misclassified, at most the distance to the target's boundary.
  assert bool(jnp.all(r.success))
  assert np.all(np.asarray(r.distance) <= to_target * 1.01)


def test_restarts_and_misclassified_inputs(affine):
  model_fn, _, _, x, y = affine
  wrong = (y + 1) % 5
  r = fab(model_fn, x, wrong, return_result=True)
  mis = np.asarray(jnp.argmax(model_fn(x), -1) != wrong)
  np.testing.assert_array_equal(np.asarray(r.x_adv)[mis], np.asarray(x)[mis])
  assert np.all(np.asarray(r.distance)[mis] == 0)
  one = fab(model_fn, x, y, steps=20, return_result=True)
  more = fab(model_fn, x, y, steps=20, restarts=3, eps=0.3,
             key=jax.random.key(0), return_result=True)
  assert np.all(np.asarray(more.distance) <= np.asarray(one.distance) + 1e-7)
  with pytest.raises(ValueError, match="pass eps and key"):
    fab(model_fn, x, y, restarts=2)
  with pytest.raises(ValueError, match="norm"):
    fab(model_fn, x, y, norm="l0")
