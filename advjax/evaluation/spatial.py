"""Spatial robustness: accuracy under rotations and translations.

`spatial_robustness` evaluates one threat model `(max_angle degrees,
max_shift pixels)` with the five attacks of Engstrom et al. (2019):

- natural: no transform;
- random: one uniformly drawn transform per example (`spatial_random`);
- worst_of_k: the worst of `k` uniform draws (`spatial_worst_of_k`);
- first_order: projected sign ascent on (angle, tx, ty) from a uniform
  start (`spatial_pgd`);
- grid: the exhaustive search over `angles x shifts x shifts` evenly
  spaced points (`spatial_grid`).

Accuracy under an attack is the accuracy on the transformed images it
returns. The three random attacks draw from the same per-example key, so
the random transform is the first of the `k` and the first-order attack's
start: worst_of_k <= random and first_order <= random hold per example.
Runs on the shared iterator (`batching.map_examples`): sharded, and per
example deterministic for any batch size or device count.

`SpatialRanges` evaluates several threat models at once (Engstrom et al.'s
30 degrees / 3 px beside D'Costa & Sriramanan's smaller ranges), ranges
given in nominal pixels (of 28-px MNIST, say) scaled to the images, each
grid of a fixed spacing; its summary keeps the grid's per-example outcome
(`outcomes.to_bits`) for per-example comparisons across models.
"""
from typing import Callable, Dict, NamedTuple, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from advjax import checks, rng, sharding
from advjax.attacks import spatial as spatial_attacks
from advjax.evaluation import batching, outcomes
from advjax.evaluation.robust_accuracy import _Compiled

__all__ = ["ATTACKS", "SpatialRobustness", "spatial_robustness",
           "SpatialRobustnessEvaluator", "grid_points", "range_label",
           "SpatialRanges", "SpatialRangesResult"]

ATTACKS = ("natural", "random", "worst_of_k", "first_order", "grid")


class SpatialRobustness(NamedTuple):
  """Per-example outcomes of the spatial attacks on one threat model.

  Attributes:
    correct: attack name (`ATTACKS`) -> `[N]` bool, classified correctly
      after the attack's transform.
    grid_angle, grid_tx, grid_ty: `[N]` the transform the grid attack
      chose (degrees, pixels).
    grid_pred: `[N]` the prediction on it.
  """
  correct: Dict[str, np.ndarray]
  grid_angle: np.ndarray
  grid_tx: np.ndarray
  grid_ty: np.ndarray
  grid_pred: np.ndarray

  @property
  def accuracy(self) -> Dict[str, float]:
    """Attack name -> accuracy."""
    return {a: float(np.mean(c)) for a, c in self.correct.items()}

  def summary(self) -> dict:
    """Attack name -> accuracy (`{'accuracy': ...}`)."""
    return {"accuracy": self.accuracy}


def grid_points(max_value: float, step: float) -> int:
  """Points per grid axis with spacing about `step`: `2 round(max / step)
  + 1` (odd, so the identity is on the grid)."""
  return 2 * int(round(max_value / step)) + 1


_CACHE: Dict[tuple, _Compiled] = {}


def _compiled(apply_fn, k, pgd_steps, angles, shifts) -> _Compiled:
  """The per-call evaluation; the range is an argument, so one compilation
  per grid size serves every model and threat model."""
  cache_key = (apply_fn, k, pgd_steps, angles, shifts)
  if cache_key in _CACHE:
    return _CACHE[cache_key]

  def fn(consts, batch):
    variables, max_angle, max_shift, key = consts
    x, y, mask = batch["x"], batch["y"], batch["mask"]
    model_fn = lambda z: apply_fn(variables, z)
    keys = rng.example_keys(key, batch["index"])
    kw = dict(max_angle=max_angle, max_shift=max_shift, return_result=True)
    rand = spatial_attacks.spatial_random(model_fn, x, y, key=keys, **kw)
    worst = spatial_attacks.spatial_worst_of_k(model_fn, x, y, key=keys,
                                               k=k, **kw)
    first = spatial_attacks.spatial_pgd(model_fn, x, y, key=keys,
                                        steps=pgd_steps, **kw)
    grid = spatial_attacks.spatial_grid(model_fn, x, y, angles=angles,
                                        shifts=shifts, **kw)
    correct = {"natural": jnp.argmax(model_fn(x), -1) == y,
               "random": ~rand.fooled, "worst_of_k": ~worst.fooled,
               "first_order": ~first.fooled, "grid": ~grid.fooled}
    out = {a: c & mask for a, c in correct.items()}
    out.update(grid_angle=grid.angle, grid_tx=grid.tx, grid_ty=grid.ty,
               grid_pred=jnp.argmax(model_fn(grid.x_adv), -1))
    return out

  _CACHE[cache_key] = _Compiled(fn)
  return _CACHE[cache_key]


def spatial_robustness(apply_fn: Callable, variables, x, y, *,
                       max_angle: float, max_shift: float, angles: int,
                       shifts: int, k: int = 10, pgd_steps: int = 200,
                       key=None, batch_size: int = 256, mesh=None,
                       device_batch_size: Optional[int] = None,
                       progress: bool = False) -> SpatialRobustness:
  """Accuracy under the five spatial attacks, per example.

  Args:
    apply_fn: `(variables, x) -> logits`, inference mode.
    variables: the model's variables.
    x: `[N, H, W, C]` images; y: `[N]` int labels.
    max_angle: rotations in `[-max_angle, max_angle]` degrees.
    max_shift: translations in `[-max_shift, max_shift]` pixels (x and y).
    angles, shifts: grid points per axis (odd includes the identity; see
      `grid_points`).
    k: draws of worst-of-k.
    pgd_steps: steps of the first-order attack.
    key: `jax.random.key` (default `key(0)`); per-example keys derive from
      it and the global index.
    batch_size, mesh, device_batch_size, progress: as `robust_accuracy`.

  Returns:
    `SpatialRobustness`.
  """
  x, y = np.asarray(x), np.asarray(y)
  if x.ndim != 4:
    raise ValueError("spatial_robustness: x must be [N, H, W, C] images, got "
                     f"shape {x.shape}.")
  if not (max_angle >= 0 and max_shift >= 0):
    raise ValueError("spatial_robustness: max_angle and max_shift must be >= "
                     f"0, got {max_angle}, {max_shift}.")
  if min(angles, shifts, k) < 1 or pgd_steps < 0:
    raise ValueError("spatial_robustness: angles, shifts and k must be >= 1 "
                     f"and pgd_steps >= 0, got {angles}, {shifts}, {k}, "
                     f"{pgd_steps}.")
  checks.check_attack_inputs(lambda z: apply_fn(variables, z), x, y,
                             name="spatial_robustness")
  key = rng.as_key(jax.random.key(0) if key is None else key)
  plan = batching.make_plan(batch_size, mesh, device_batch_size)
  fn = _compiled(apply_fn, k, pgd_steps, angles, shifts).jit(plan.mesh)
  consts = sharding.replicate((variables, np.float32(max_angle),
                               np.float32(max_shift), key), plan.mesh)
  bar = tqdm(total=x.shape[0], desc=f"spatial {max_angle:g} deg / "
             f"{max_shift:.3g} px", disable=not progress, leave=False)
  out = batching.map_examples(fn, consts, {"x": x, "y": y},
                              np.arange(x.shape[0]), plan, bar=bar)
  bar.close()
  return SpatialRobustness({a: out[a] for a in ATTACKS}, out["grid_angle"],
                           out["grid_tx"], out["grid_ty"], out["grid_pred"])


class SpatialRobustnessEvaluator(NamedTuple):
  """`spatial_robustness` as an evaluator: settings now, `run` on a model."""
  max_angle: float
  max_shift: float
  angles: int
  shifts: int
  k: int = 10
  pgd_steps: int = 200
  key: object = None
  batch_size: int = 256
  progress: bool = False

  def run(self, apply_fn: Callable, variables, data) -> SpatialRobustness:
    """Evaluates `apply_fn(variables, .)` on `data` (a Dataset or (x, y))."""
    x, y = batching.as_data(data)
    return spatial_robustness(apply_fn, variables, x, y, **self._asdict())


def range_label(max_angle: float, max_shift: float) -> str:
  """A range's name, 'max_angle:max_shift' ('30:3'; the command-line form)."""
  return f"{max_angle:g}:{max_shift:g}"


class SpatialRangesResult(NamedTuple):
  """`spatial_robustness` at each range of a `SpatialRanges`.

  Attributes:
    labels: per range, its `range_label`.
    results: per range, the `SpatialRobustness`.
    keep: the grid transforms of the first `keep` examples (at the first
      range) go into the summary.
  """
  labels: Tuple[str, ...]
  results: Tuple[SpatialRobustness, ...]
  keep: int = 0

  def summary(self) -> dict:
    """Per range label: the accuracy per attack ('accuracy') and the grid's
    per-example outcome ('grid_correct', `outcomes.to_bits`); the grid
    transforms (angle, tx, ty) and predictions of the first `keep`
    examples at the first range ('worst')."""
    first, ranges = self.results[0], list(zip(self.labels, self.results))
    return {"accuracy": {name: r.accuracy for name, r in ranges},
            "grid_correct": {name: outcomes.to_bits(r.correct["grid"])
                             for name, r in ranges},
            "worst": {k: np.asarray(getattr(first, "grid_" + k))[
                :self.keep].tolist() for k in ("angle", "tx", "ty", "pred")}}


class SpatialRanges(NamedTuple):
  """`spatial_robustness` at several ranges, as an evaluator: settings now,
  `run` on a model.

  Attributes:
    ranges: `(max_angle degrees, max_shift nominal pixels)` pairs.
    scale: pixels per nominal pixel (the shifts used are `max_shift
      scale`; e.g. 8 / 28 for MNIST's pixels on 8x8 digits).
    angle_step, shift_step: the grid spacing (degrees, nominal pixels):
      `grid_points(max, step)` points per axis, the identity included.
    k, pgd_steps, batch_size, progress: as `spatial_robustness`.
    key: `jax.random.key` (default `key(0)`); range `t` draws from
      `fold_in(key, t)`.
    keep: examples whose worst grid transform the summary keeps.
  """
  ranges: Sequence[Tuple[float, float]]
  scale: float = 1.
  angle_step: float = 0.5
  shift_step: float = 1.
  k: int = 10
  pgd_steps: int = 200
  key: object = None
  batch_size: int = 256
  progress: bool = False
  keep: int = 0

  def grids(self) -> list:
    """Per range, the grid points per axis `[angles, shifts, shifts]`."""
    return [[grid_points(a, self.angle_step),
             *[grid_points(s, self.shift_step)] * 2] for a, s in self.ranges]

  def run(self, apply_fn: Callable, variables, data) -> SpatialRangesResult:
    """Evaluates `apply_fn(variables, .)` on `data` (a Dataset or (x, y))
    at every range."""
    x, y = batching.as_data(data)
    key = rng.as_key(jax.random.key(0) if self.key is None else self.key)
    results = tuple(spatial_robustness(
        apply_fn, variables, x, y, max_angle=a, max_shift=s * self.scale,
        angles=g[0], shifts=g[1], k=self.k, pgd_steps=self.pgd_steps,
        key=jax.random.fold_in(key, t), batch_size=self.batch_size,
        progress=self.progress)
                    for t, ((a, s), g) in enumerate(zip(self.ranges,
                                                        self.grids())))
    return SpatialRangesResult(tuple(range_label(a, s) for a, s in
                                     self.ranges), results, self.keep)
