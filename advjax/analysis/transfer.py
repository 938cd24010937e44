"""Which perturbation fools which input, and which model.

- `perturbation_transfer`: each input's own perturbation added to every
  other input (Metzen 2018: *sharedness*, the fraction of other inputs a
  perturbation fools, Appendix C; the *cost change* on its own input and on
  the others, Figure 2). Shared perturbations fool many inputs (a universal
  perturbation is the extreme); singular ones fool only their own.
- `fooled_across`: adversarial examples made against one model, judged by
  others: the transfer matrix between models, or across the epochs of a
  training run.
- `probability_across`, `temporal_profile`: the probability of the true
  class across epochs per test input, the profile P[t1, t2] and its MaxMin
  and MinMax (Figures 1 and 10).
- `cost_change_across`, `log_log_pearson`: a perturbation's cost change
  under later models (its stability) against its mean cost change on other
  inputs (its sharedness), and their correlation (Figure 2).

Transfer between models on the batched map (`evaluation.map_batched`:
per-example keys `fold_in(key, global_index)`, so no result depends on the
batch size); a model is `(apply_fn, variables)`:

- `transfer_study`: Szegedy et al. 2014's protocol (Tables 2 and 4): an
  attack's examples made on each model judged by every model, beside
  Gaussian-noise and amplified controls;
- `transfer_examples`: an attack's adversarial examples made on each
  source model; `transfer_matrix`: every target's error on every row of
  inputs, `off_diagonal_mean`;
- `rms` (Szegedy's distortion), `mean_distortion`, and the controls:
  `amplified` (each perturbation scaled to a distortion) and
  `gaussian_noise`; `error_rate`.
"""
import functools
from typing import (Any, Callable, Dict, List, Mapping, NamedTuple, Optional,
                    Sequence, Tuple)

import jax
import jax.numpy as jnp
import numpy as np

from advjax import losses
from advjax.evaluation import batching
from advjax.evaluation.adversarial import adversarial_examples
from advjax.evaluation.predict import predict
from advjax.types import Array, Bounds, ModelFn

__all__ = ["TransferResult", "perturbation_transfer", "sharedness",
           "cost_change_own_vs_others", "misclassified", "fooled_across",
           "true_class_probability", "probability_across",
           "cost_change_across", "LogCorrelation", "log_log_pearson",
           "StabilityProfile", "temporal_profile", "Model", "rms",
           "mean_distortion", "amplified", "gaussian_noise", "error_rate",
           "transfer_examples", "transfer_matrix", "off_diagonal_mean",
           "transfer_study"]


class TransferResult(NamedTuple):
  """Perturbation i (row) on input j (column).

  Attributes:
    fooled: `[P, N]` bool, `clip(x_j + delta_i)` is misclassified.
    cost_change: `[P, N]` `J(x_j + delta_i, y_j) - J(x_j, y_j)`
      (cross-entropy).
  """
  fooled: Array
  cost_change: Array


def perturbation_transfer(model_fn: ModelFn, x: Array, y: Array, delta: Array,
                          *, bounds: Bounds = (0., 1.)) -> TransferResult:
  """Adds every perturbation to every input.

  Pure and jittable; memory is one `[N, ...]` batch at a time
  (`lax.map` over the perturbations).

  Args:
    model_fn: pure `[B, ...] -> [B, K]` logits.
    x: `[N, ...]` inputs; y: `[N]` labels.
    delta: `[P, ...]` perturbations; `delta[i]` was made for `x[i]` when
      the own-input diagonal is to mean anything (`P <= N`).
    bounds: each perturbed image is clipped into the box.

  Returns:
    `TransferResult` with `[P, N]` arrays.
  """
  if delta.shape[1:] != x.shape[1:]:
    raise ValueError(f"perturbation_transfer: perturbations {delta.shape} do "
                     f"not match the inputs {x.shape}.")
  base_cost = losses.cross_entropy(model_fn(x), y)

  def one(d):
    logits = model_fn(jnp.clip(x + d[None], *bounds))
    return (jnp.argmax(logits, -1) != y,
            losses.cross_entropy(logits, y) - base_cost)

  fooled, cost = jax.lax.map(one, delta)
  return TransferResult(fooled, cost)


def sharedness(fooled: Array, clean_correct: Array) -> np.ndarray:
  """Per perturbation i: the fraction of the *other* correctly classified
  inputs j != i that `delta_i` fools (`fooled` from `perturbation_transfer`,
  `[P, N]`)."""
  f = np.asarray(fooled, bool)
  c = np.asarray(clean_correct, bool)
  p, n = f.shape
  others = np.ones((p, n), bool)
  others[np.arange(p), np.arange(p)] = False
  mask = others & c[None, :]
  return (f & mask).sum(1) / np.maximum(mask.sum(1), 1)


def cost_change_own_vs_others(cost_change: Array):
  """`(own [P], others [P])`: the cost change on the perturbation's own
  input (the diagonal) and its mean over the other inputs (Figure 2's
  axes)."""
  c = np.asarray(cost_change)
  p, n = c.shape
  own = c[np.arange(p), np.arange(p)]
  others = (c.sum(1) - own) / max(n - 1, 1)
  return own, others


def misclassified(model_fn: ModelFn, x: Array, y: Array) -> np.ndarray:
  """`[N]` bool on the host: `model_fn(x)`'s prediction is not `y`."""
  return np.asarray(jnp.argmax(model_fn(x), -1) != jnp.asarray(y))


def fooled_across(model_fns: Sequence[ModelFn], x_advs: Sequence[Array],
                  y: Array) -> np.ndarray:
  """`[S, T, N]` bool: the adversarial examples `x_advs[s]` (made against
  source s) misclassified by target model `model_fns[t]`. Jit the model
  functions; this loops over sources and targets on the host."""
  return np.stack([np.stack([misclassified(f, xa, y) for f in model_fns])
                   for xa in x_advs])


def true_class_probability(model_fn: ModelFn, x: Array,
                           y: Array) -> np.ndarray:
  """`[N]` on the host: `p(y | x)`, the softmax of `model_fn(x)` at `y`."""
  logits = model_fn(x)
  p = jax.nn.softmax(logits.astype(jnp.float32), -1)
  return np.asarray(jnp.take_along_axis(p, jnp.asarray(y)[:, None], -1)[:, 0])


def probability_across(model_fns: Sequence[ModelFn], x_advs: Sequence[Array],
                       y: Array) -> np.ndarray:
  """`[S, T, N]`: the probability target model `model_fns[t]` gives the
  true class `y` of the adversarial examples `x_advs[s]` (made against
  source s), `p(y | x_advs[s]; theta_t)`: `temporal_profile`'s input. Jit
  the model functions; this loops over sources and targets on the host."""
  return np.stack([np.stack([true_class_probability(f, xa, y)
                             for f in model_fns]) for xa in x_advs])


def cost_change_across(model_fns: Sequence[ModelFn], x: Array, x_adv: Array,
                       y: Array) -> np.ndarray:
  """`[T, N]`: `J(theta_t, x_adv, y) - J(theta_t, x, y)` (cross-entropy)
  under each model: a perturbation's cost change on its own input under
  other parameters (Metzen 2018's stability, Figure 2)."""
  return np.stack([np.asarray(losses.cross_entropy(f(x_adv), y)
                              - losses.cross_entropy(f(x), y))
                   for f in model_fns])


class LogCorrelation(NamedTuple):
  """Pearson correlation of `log a` and `log b` over the pairs where both
  are positive (Metzen 2018, Figure 2: -0.293, p < 1e-18).

  Attributes:
    r: the correlation coefficient (NaN with fewer than 3 pairs).
    p: its two-sided p-value (no correlation).
    n: pairs used.
    dropped: pairs left out (a value <= 0 has no logarithm).
  """
  r: float
  p: float
  n: int
  dropped: int


def log_log_pearson(a: Array, b: Array) -> LogCorrelation:
  """`LogCorrelation` of the `[N]` arrays `a` and `b`."""
  # pylint: disable-next=g-import-not-at-top
  from scipy import stats
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  if a.shape != b.shape or a.ndim != 1:
    raise ValueError(f"log_log_pearson: a {a.shape} and b {b.shape} must be "
                     "[N] alike.")
  keep = (a > 0) & (b > 0) & np.isfinite(a) & np.isfinite(b)
  n = int(keep.sum())
  if n < 3:
    return LogCorrelation(float("nan"), float("nan"), n, a.size - n)
  la, lb = np.log(a[keep]), np.log(b[keep])
  if la.std() == 0 or lb.std() == 0:
    return LogCorrelation(float("nan"), float("nan"), n, a.size - n)
  r, p = stats.pearsonr(la, lb)
  return LogCorrelation(float(r), float(p), n, a.size - n)


class StabilityProfile(NamedTuple):
  """Temporal stability profiles of test inputs across T epochs (Metzen
  2018, section 3.1, Figures 1 and 10).

  With `P_i[t1, t2] = p(y_i | x_i + xi_{i,t1}; theta_{t2})`, the
  probability the model of epoch t2 gives the true class of input i
  perturbed by the perturbation made for it against the model of epoch t1:

  - `max_min[i] = min_t1 max_t2 P_i[t1, t2]` (the paper's MaxMin: the
    maximum over each row, then the minimum of those): small when a
    *stable* perturbation fools every model;
  - `min_max[i] = max_t2 min_t1 P_i[t1, t2]` (MinMax: the minimum over each
    column, then the maximum): large when one model classifies every
    perturbation of the input correctly. `min_max <= max_min` always;
    large MaxMin with small MinMax is an *oscillation*.

  Both are per input, over every t1 and t2 (earlier models included).

  Attributes:
    profile: `[T, T, N]` `P[t1, t2, i]`.
  """
  profile: np.ndarray

  @property
  def mean(self) -> np.ndarray:
    """`[T, T]` the profile averaged over the inputs."""
    return self.profile.mean(-1)

  @property
  def max_min(self) -> np.ndarray:
    """`[N]` `min_t1 max_t2 P_i[t1, t2]`."""
    return self.profile.max(1).min(0)

  @property
  def min_max(self) -> np.ndarray:
    """`[N]` `max_t2 min_t1 P_i[t1, t2]`."""
    return self.profile.min(0).max(0)

  def fractions(self, threshold: float = 0.5) -> Dict[str, float]:
    """The inputs' failure cases (Appendix B's corners), at `threshold`:
    `stable` (MaxMin < threshold: some perturbation fools every model),
    `oscillating` (MinMax < threshold <= MaxMin: every perturbation is
    defeated at some epoch but no epoch defeats all), `robust` (MinMax >=
    threshold: one model defeats every perturbation)."""
    hi, lo = self.max_min, self.min_max
    return {"stable": float(np.mean(hi < threshold)),
            "oscillating": float(np.mean((lo < threshold) & (hi >= threshold))),
            "robust": float(np.mean(lo >= threshold))}

  def examples(self) -> Dict[str, int]:
    """Inputs whose profiles show each case (Figure 1): `robust` (the
    largest MinMax), `stable` (the smallest MaxMin), `oscillating` (the
    largest MaxMin - MinMax)."""
    hi, lo = self.max_min, self.min_max
    return {"robust": int(np.argmax(lo)), "stable": int(np.argmin(hi)),
            "oscillating": int(np.argmax(hi - lo))}


def temporal_profile(probabilities: Array) -> StabilityProfile:
  """The `StabilityProfile` of `probabilities [T, T, N]`
  (`probability_across` of the epochs' models and their own adversarial
  examples: `P[t1, t2, i] = p(y_i | x_adv_{t1, i}; theta_{t2})`).

  Raises:
    ValueError: not `[T, T, N]`, or values outside `[0, 1]` (pass
      probabilities, not logits or fooled bits).
  """
  p = np.asarray(probabilities)
  if p.ndim != 3 or p.shape[0] != p.shape[1]:
    raise ValueError(f"temporal_profile: probabilities must be [T, T, N], "
                     f"got {p.shape}.")
  if p.dtype == bool or not (np.all(p >= 0) and np.all(p <= 1)):
    raise ValueError("temporal_profile: probabilities must be floats in "
                     "[0, 1] (p(y | x + xi_t1; theta_t2)); got "
                     f"{p.dtype} in [{p.min()}, {p.max()}].")
  return StabilityProfile(p.astype(np.float64))


# --------------------------------------------------------------------------
# Transfer between models, on the batched map.
# --------------------------------------------------------------------------
# A model: `(apply_fn, variables)`, `apply_fn(variables, x [B, ...]) ->
# logits [B, K]` (the runner's `env.apply_fns[name]`, `trained[name]`).
Model = Tuple[Callable, Any]


def rms(delta: Array) -> np.ndarray:
  """`[N]` Szegedy et al.'s distortion of each perturbation of `delta [N,
  ...]`: `sqrt(sum r^2 / n)` over its n values."""
  d = np.asarray(delta, np.float64)
  d = d.reshape(d.shape[0], -1)
  return np.sqrt(np.mean(d * d, axis=1))


def mean_distortion(x: Array, inputs: Mapping[str, Array],
                    norm: str = "rms") -> Dict[str, float]:
  """row -> the mean over examples of `inputs[row] - x`'s size: `rms` or
  its 'l2' norm."""
  if norm not in ("rms", "l2"):
    raise ValueError(f"mean_distortion: norm must be 'rms' or 'l2', got "
                     f"{norm!r}.")
  x = np.asarray(x)
  scale = 1. if norm == "rms" else np.sqrt(x[0].size)
  return {row: float(np.mean(rms(np.asarray(v) - x)) * scale)
          for row, v in inputs.items()}


def amplified(x: Array, delta: Array, stddev: float, *,
              bounds: Bounds = (0., 1.)) -> np.ndarray:
  """`clip(x + delta * stddev / rms(delta))`: each perturbation scaled to
  distortion `stddev` (Szegedy's amplified rows, Table 4); an input whose
  perturbation is 0 stays unchanged. float32."""
  x = np.asarray(x)
  r = rms(delta)
  scale = np.where(r > 0, stddev / np.maximum(r, 1e-12), 0.)
  return np.clip(x + np.asarray(delta) * scale.reshape(
      (-1,) + (1,) * (x.ndim - 1)), *bounds).astype(np.float32)


@functools.lru_cache(maxsize=None)
def _noise_fn(bounds: Tuple[float, float]):
  def fn(stddev, example):
    x = example["x"]
    return jnp.clip(x + stddev * jax.random.normal(example["key"], x.shape,
                                                   x.dtype), *bounds)
  return fn


def gaussian_noise(x: Array, stddev: float, *, key,
                   bounds: Bounds = (0., 1.), **map_kwargs) -> np.ndarray:
  """`clip(x + N(0, stddev^2))` of every input, the noise of input i drawn
  from `fold_in(key, i)` (`map_batched`: it does not depend on the batch
  size); Szegedy's noise rows. float32.

  Args:
    x: `[N, ...]` inputs.
    stddev: the noise's standard deviation (traced).
    key: `jax.random.key`.
    bounds: the box the noisy inputs are clipped into.
    **map_kwargs: `map_batched`'s batch_size, mesh, device_batch_size,
      progress, desc.
  """
  return batching.map_batched(
      _noise_fn(tuple(float(b) for b in bounds)),
      {"x": np.asarray(x, np.float32)}, np.float32(stddev), key=key,
      per_example=True, **map_kwargs)


def error_rate(model: Model, x: Array, y: Array, **map_kwargs) -> float:
  """The fraction of `x` the model misclassifies (`evaluation.predict`)."""
  apply_fn, variables = model
  return float(np.mean(predict(apply_fn, variables, x, **map_kwargs)
                       != np.asarray(y)))


def transfer_examples(models: Mapping[str, Model], x: Array, y: Array, *,
                      attack: Callable, eps=None, key=None,
                      **map_kwargs) -> Dict[str, np.ndarray]:
  """source -> `attack`'s adversarial examples of `x` made on that model
  (`evaluation.adversarial_examples`: each example's randomness from
  `fold_in(key, index)`).

  Args:
    models: name -> `(apply_fn, variables)`, the sources.
    x: `[N, ...]` inputs; y: `[N]` labels (targets of a targeted attack).
    attack: `attack(model_fn, x, y, *, [eps], [key])`, its settings fixed;
      build it once (compiled programs are cached per attack object).
    eps: the budget; None for a minimal-norm attack (L-BFGS, CW-L2).
    key: `jax.random.key` (default `key(0)`).
    **map_kwargs: `map_batched`'s batch_size, device_batch_size, progress.
  """
  return {name: adversarial_examples(apply_fn, variables, x, y,
                                     attack=attack, eps=eps, key=key,
                                     desc=name, **map_kwargs)
          for name, (apply_fn, variables) in models.items()}


def transfer_matrix(models: Mapping[str, Model], inputs: Mapping[str, Array],
                    y: Array, **map_kwargs) -> Dict[str, List[float]]:
  """row -> the error of each target model (in `models`' order) on the
  inputs `inputs[row]` (labels `y`): the transfer matrix when the rows are
  each source's adversarial examples (its diagonal: a model's error on its
  own), with control rows (noise) beside them (Szegedy's Tables 2 and 4).
  """
  return {row: [error_rate(m, xs, y, **map_kwargs) for m in models.values()]
          for row, xs in inputs.items()}


def off_diagonal_mean(matrix: Mapping[str, Sequence[float]],
                      names: Sequence[str], prefix: str = "") -> float:
  """The mean error of the other models on each source's examples: over
  rows `prefix + s` for s in `names`, the columns of the other models
  (`transfer_matrix`'s columns in `names`' order)."""
  return float(np.mean([matrix[prefix + s][j] for s in names
                        for j, t in enumerate(names) if t != s]))


def transfer_study(models: Mapping[str, Model], x: Array, y: Array, *,
                   attack: Callable, eps=None, key=None,
                   noise: Sequence[float] = (), matched_noise: bool = False,
                   amplify: Optional[float] = None, noise_key=None,
                   norm: str = "rms", **map_kwargs) -> Dict[str, Any]:
  """Szegedy et al.'s transfer protocol: `attack`'s examples of `x` made on
  each model, judged by every model, beside controls.

  Rows (each a `transfer_matrix` row, with its mean distortion): one per
  source model (its examples); 'noise {s:g}' per `noise` stddev;
  'noise' (with `matched_noise`): noise of the sources' mean `rms`
  distortion; with `amplify`: 'amplified {source}' (its perturbations
  scaled to distortion `amplify`, `amplified`) and 'amplified noise'.
  Every noise row draws input i's noise from `fold_in(noise_key, i)` (the
  same draws, scaled).

  Args:
    models: name -> `(apply_fn, variables)`: the sources and the targets.
    x: `[N, ...]` inputs; y: `[N]` labels.
    attack, eps, key: as `transfer_examples`.
    noise: stddevs of the Gaussian-noise rows.
    matched_noise: add the 'noise' row at the sources' mean distortion.
    amplify: the distortion of the amplified rows (None: none).
    noise_key: the noise's `jax.random.key` (default `key(0)`).
    norm: the distortion reported, 'rms' or 'l2' (`mean_distortion`).
    **map_kwargs: `map_batched`'s batch_size, device_batch_size, progress.

  Returns:
    `{'models': names, 'n': N, 'error': {row: [T]}, 'distortion': {row:
    mean}, 'controls': [{'row', 'stddev', 'error'}] the noise rows (their
    mean error over the targets), 'own': [S] each model's error on its own
    examples, 'off_diagonal': the others' mean error on them, and with
    `amplify` 'amplified_off_diagonal'}`.
  """
  names = list(models)
  rows = transfer_examples(models, x, y, attack=attack, eps=eps, key=key,
                           **map_kwargs)
  stddev = {f"noise {s:g}": float(s) for s in noise}
  if matched_noise:
    stddev["noise"] = float(np.mean(list(mean_distortion(x, rows).values())))
  if amplify is not None:
    rows.update({f"amplified {m}": amplified(x, rows[m] - x, amplify)
                 for m in names})
    stddev["amplified noise"] = float(amplify)
  noise_key = jax.random.key(0) if noise_key is None else noise_key
  rows.update({r: gaussian_noise(x, s, key=noise_key, **map_kwargs)
               for r, s in stddev.items()})
  error = transfer_matrix(models, rows, y, **map_kwargs)
  out = {"models": names, "n": int(np.shape(y)[0]), "error": error,
         "distortion": mean_distortion(x, rows, norm),
         "controls": [{"row": r, "stddev": v, "error": float(np.mean(
             error[r]))} for r, v in stddev.items()],
         "own": [error[m][i] for i, m in enumerate(names)],
         "off_diagonal": off_diagonal_mean(error, names)}
  if amplify is not None:
    out["amplified_off_diagonal"] = off_diagonal_mean(error, names,
                                                      "amplified ")
  return out
