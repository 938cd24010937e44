"""The adversarial loss landscape of a model: how an attack's loss climbs
(attack convergence) and how the maxima of many random starts spread
(loss concentration).

- `attack_convergence`: the mean adversarial loss at each PGD iteration for
  several first-order steps (sign, SGD, Adam): does the attack reach the
  same maximum whichever step it takes (Madry et al. 2018), and is Adam a
  better inner optimiser than SGD (D'Costa & Sriramanan)?
- `loss_concentration`: per input, the loss at the end of many PGD runs,
  each from its own uniform random start (Madry et al.: 10^5 restarts
  reach similar losses, none much higher).

Both run on `map_batched`: every random start comes from the example's own
key (`fold_in(key, global index)`), so the numbers do not depend on the
batch size or the number of devices.
"""
import functools
from typing import Any, Callable, Dict, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from advjax import losses
from advjax.attacks import gradient
from advjax.evaluation import batching
from advjax.types import PRNGKey

__all__ = ["AttackConvergence", "attack_convergence",
           "AttackConvergenceEvaluator", "LossConcentration",
           "loss_concentration", "LossConcentrationEvaluator"]

# label -> the `optimizer` of `gradient.pgd`.
STEPS = {"sign": "steepest", "sgd": "sgd", "adam": "adam"}


class AttackConvergence(NamedTuple):
  """Mean adversarial loss per PGD iteration, per inner step.

  Attributes:
    curves: label ('sign', 'sgd', 'adam') -> `[steps]` mean cross-entropy
      over the examples before each step.
    sgd_learning_rate: the SGD step's learning rate (its first step moves
      pixels as far on average as a sign step).
  """
  curves: Dict[str, np.ndarray]
  sgd_learning_rate: float

  @property
  def final(self) -> Dict[str, float]:
    """label -> the loss before the last step."""
    return {k: float(c[-1]) for k, c in self.curves.items()}

  def summary(self) -> Dict[str, list]:
    """label -> the curve (a list)."""
    return {k: np.asarray(c).tolist() for k, c in self.curves.items()}


@functools.lru_cache(maxsize=64)
def _mean_abs_grad_fn(apply_fn: Callable):
  def fn(variables, batch):
    g = jax.grad(lambda z: jnp.sum(losses.cross_entropy(
        apply_fn(variables, z), batch["y"])))(batch["x"])
    return jnp.mean(jnp.abs(g).reshape(g.shape[0], -1), axis=1)
  return fn


@functools.lru_cache(maxsize=64)
def _history_fn(apply_fn: Callable, steps: int, optimizer: str, norm: str):
  def fn(consts, batch):
    variables, eps, lr = consts
    res = gradient.pgd(lambda z: apply_fn(variables, z), batch["x"],
                       batch["y"], eps=eps, key=batch["key"], norm=norm,
                       steps=steps, step_size=lr, optimizer=optimizer,
                       return_result=True, unroll=1)
    return res.loss_history.T  # [b, steps]
  return fn


def attack_convergence(apply_fn: Callable, variables, x, y, *, eps: float,
                       key: PRNGKey, steps: int = 100,
                       step_size: Optional[float] = None,
                       optimizers: Sequence[str] = ("sign", "sgd", "adam"),
                       norm: str = "linf", **map_kwargs) -> AttackConvergence:
  """PGD's mean loss per iteration for each inner step.

  Args:
    apply_fn: `(variables, x [B, ...]) -> logits [B, K]`.
    variables: the model's variables.
    x: `[N, ...]` inputs; y: `[N]` labels.
    eps: the radius.
    key: random starts (per example, from its global index).
    steps: PGD iterations.
    step_size: the sign and Adam step (default 2.5 eps / steps); SGD's
      learning rate is `step_size / mean |grad|` at x, so that its first
      step moves pixels as far on average (its raw gradient has no natural
      scale).
    optimizers: labels of `STEPS`.
    norm: the threat model's norm.
    **map_kwargs: `map_batched`'s batch_size, mesh, device_batch_size,
      progress.

  Returns:
    An `AttackConvergence`.
  """
  unknown = [o for o in optimizers if o not in STEPS]
  if unknown:
    raise ValueError(f"attack_convergence: unknown steps {unknown}; use "
                     f"{sorted(STEPS)}.")
  arrays = {"x": np.asarray(x), "y": np.asarray(y, np.int32)}
  step = 2.5 * eps / steps if step_size is None else step_size
  grad = batching.map_batched(_mean_abs_grad_fn(apply_fn), arrays,
                              variables, **map_kwargs)
  sgd_lr = step / max(float(np.mean(grad)), 1e-12)
  curves = {}
  for label in optimizers:
    lr = sgd_lr if label == "sgd" else step
    history = batching.map_batched(
        _history_fn(apply_fn, steps, STEPS[label], norm), arrays,
        (variables, jnp.float32(eps), jnp.float32(lr)), key=key,
        desc=f"convergence {label}", **map_kwargs)
    curves[label] = history.mean(axis=0)
  return AttackConvergence(curves, sgd_lr)


class LossConcentration(NamedTuple):
  """Per input, the loss at the end of many PGD runs.

  Attributes:
    loss: `[N, R]` cross-entropy at the end of each restart.
    fooled: `[N, R]` bool, that restart's point is misclassified.
    labels: `[N]` the labels.
    bins: histogram bins of `summary`.
  """
  loss: np.ndarray
  fooled: np.ndarray
  labels: np.ndarray
  bins: int = 40

  @property
  def best_over_median(self) -> np.ndarray:
    """`[N]` the highest restart's loss over the median one's."""
    return self.loss.max(1) / np.maximum(np.median(self.loss, 1), 1e-12)

  def excess(self, floor: float = 0.5) -> np.ndarray:
    """`[N]` how far the best restart rises above the median one:
    `(max - median) / max(median, floor)`. The floor (in nats) keeps a
    robust model's tiny losses (0.01 -> 0.02 is 2x the median but nothing
    an attack can use) from reading as a spread; losses above it are
    compared relative to the median."""
    median = np.median(self.loss, 1)
    return (self.loss.max(1) - median) / np.maximum(median, floor)

  def summary(self) -> list:
    """Per input: quantiles, mean, std, `excess`, fraction of restarts
    fooling, histogram counts and edges."""
    out = []
    excess = self.excess()
    for i, (loss, fooled) in enumerate(zip(self.loss, self.fooled)):
      q = np.percentile(loss, [0, 1, 25, 50, 75, 99, 100])
      counts, edges = np.histogram(loss, bins=self.bins)
      out.append({"index": i, "label": int(self.labels[i]),
                  "quantiles": dict(zip(("min", "p1", "p25", "median", "p75",
                                         "p99", "max"), q.tolist())),
                  "mean": float(loss.mean()), "std": float(loss.std()),
                  "excess": float(excess[i]),
                  "fooled": float(fooled.mean()),
                  "counts": counts.tolist(), "edges": edges.tolist()})
    return out


@functools.lru_cache(maxsize=64)
def _restarts_fn(apply_fn: Callable, restarts: int, steps: int, norm: str):
  def fn(consts, example):
    variables, eps = consts
    model_fn = lambda z: apply_fn(variables, z)
    xb = jnp.repeat(example["x"][None], restarts, 0)
    yb = jnp.full((restarts,), example["y"])
    adv = gradient.pgd(model_fn, xb, yb, eps=eps,
                       key=jax.random.split(example["key"], restarts),
                       norm=norm, steps=steps)
    logits = model_fn(adv)
    return losses.cross_entropy(logits, yb), jnp.argmax(logits, -1) != yb
  return fn


def loss_concentration(apply_fn: Callable, variables, x, y, *, eps: float,
                       key: PRNGKey, restarts: int = 1000, steps: int = 100,
                       norm: str = "linf", bins: int = 40,
                       **map_kwargs) -> LossConcentration:
  """Madry et al.'s loss concentration: per input, the cross-entropy at the
  end of `restarts` PGD-`steps` runs (step 2.5 eps / steps), each from its
  own uniform random start (`split(fold_in(key, index), restarts)`), the
  restarts of one input batched together (one input per device per call
  by default).

  Args:
    apply_fn, variables: the model.
    x: `[N, ...]` inputs; y: `[N]` labels.
    eps, norm, steps: the attack.
    key: the random starts.
    restarts: runs per input (Madry et al.: 10^5).
    bins: histogram bins of the summary.
    **map_kwargs: `map_batched`'s keywords (device_batch_size defaults
      to 1: `restarts` rows per device).

  Returns:
    A `LossConcentration`.
  """
  if restarts < 1 or steps < 1 or bins < 1:
    raise ValueError(f"loss_concentration: restarts ({restarts}), steps "
                     f"({steps}) and bins ({bins}) must be >= 1.")
  map_kwargs.setdefault("device_batch_size", 1)
  map_kwargs.setdefault("batch_size", 1)
  loss, fooled = batching.map_batched(
      _restarts_fn(apply_fn, restarts, steps, norm),
      {"x": np.asarray(x), "y": np.asarray(y, np.int32)},
      (variables, jnp.float32(eps)), key=key, per_example=True,
      desc="loss concentration", **map_kwargs)
  return LossConcentration(loss, fooled, np.asarray(y), bins)


class AttackConvergenceEvaluator(NamedTuple):
  """`attack_convergence` on the first `examples` inputs of a dataset."""
  eps: float
  key: Any
  examples: int = 256
  steps: int = 100
  norm: str = "linf"
  progress: bool = False

  def run(self, apply_fn: Callable, variables, data) -> AttackConvergence:
    """Evaluates `apply_fn(variables, .)` on `data` (a Dataset or (x, y))."""
    x, y = batching.as_data(data)
    n = min(self.examples, x.shape[0])
    return attack_convergence(apply_fn, variables, x[:n], y[:n], eps=self.eps,
                              key=self.key, steps=self.steps, norm=self.norm,
                              progress=self.progress)


class LossConcentrationEvaluator(NamedTuple):
  """`loss_concentration` on the first `examples` inputs of a dataset."""
  eps: float
  key: Any
  examples: int = 5
  restarts: int = 1000
  steps: int = 100
  bins: int = 40
  norm: str = "linf"
  progress: bool = False

  def run(self, apply_fn: Callable, variables, data) -> LossConcentration:
    """Evaluates `apply_fn(variables, .)` on `data` (a Dataset or (x, y))."""
    x, y = batching.as_data(data)
    n = min(self.examples, x.shape[0])
    return loss_concentration(apply_fn, variables, x[:n], y[:n], eps=self.eps,
                              key=self.key, restarts=self.restarts,
                              steps=self.steps, norm=self.norm,
                              bins=self.bins, progress=self.progress)
