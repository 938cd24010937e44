"""Destruction rate of adversarial examples under a transform.

Kurakin, Goodfellow, Bengio (2017), "Adversarial examples in the physical
world", eq. (1): the fraction of adversarial images that are no longer
misclassified after a transform T, among the images whose clean version was
classified correctly and whose adversarial version was not:

    d = sum_k C(X_k, y_k) (1 - C(X_k^adv, y_k)) C(T(X_k^adv), y_k)
        / sum_k C(X_k, y_k) (1 - C(X_k^adv, y_k))

with `C(X, y) = 1` when X is classified as y.
"""
import functools
from typing import Callable, Dict, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from advjax import rng, transforms
from advjax.analysis.transfer import misclassified
from advjax.evaluation import batching
from advjax.evaluation.predict import predict
from advjax.evaluation.robust_accuracy import in_top_k
from advjax.types import Array, ModelFn, PRNGKey

__all__ = ["destruction_rate", "destruction_rates", "correct_under",
           "destruction_grid", "prefilter"]


def destruction_rate(clean_correct, adv_correct, transformed_correct):
  """Kurakin et al.'s destruction rate from per-example correctness.

  Args:
    clean_correct: `[N]` bool, C(X_k, y_k).
    adv_correct: `[N]` bool, C(X_k^adv, y_k).
    transformed_correct: `[N]` bool, C(T(X_k^adv), y_k).

  Returns:
    The rate as a float, NaN when no example was correctly classified and
    then fooled (the rate is undefined: report it, do not guess).
  """
  c = np.asarray(clean_correct, bool)
  a = np.asarray(adv_correct, bool)
  t = np.asarray(transformed_correct, bool)
  if not c.shape == a.shape == t.shape or c.ndim != 1:
    raise ValueError(f"destruction_rate: the three arrays must be [N] of one "
                     f"length, got {c.shape}, {a.shape}, {t.shape}.")
  fooled = c & ~a
  n = int(fooled.sum())
  return float((fooled & t).sum() / n) if n else float("nan")


def destruction_rates(model_fn: ModelFn, x: Array, x_adv: Array, y: Array,
                      transforms: Dict[str, Callable[[Array], Array]],
                      clean_correct: Optional[Array] = None
                      ) -> Dict[str, float]:
  """The destruction rate of `x_adv` under each of `transforms`.

  Args:
    model_fn: pure `[B, ...] -> [B, K]` logits (jit it for speed).
    x, x_adv: `[N, ...]` clean and adversarial images.
    y: `[N]` labels.
    transforms: name -> `images -> images` (e.g. `functools.partial(
      advjax.transforms.brightness, delta=0.1)`).
    clean_correct: `[N]` bool, when already known.

  Returns:
    name -> rate (NaN when nothing was fooled).
  """
  c = (~misclassified(model_fn, x, y) if clean_correct is None
       else clean_correct)
  a = ~misclassified(model_fn, x_adv, y)
  return {name: destruction_rate(c, a, ~misclassified(model_fn, t(x_adv), y))
          for name, t in transforms.items()}


@functools.lru_cache(maxsize=64)
def _correct_under_fn(apply_fn: Callable, grid: tuple,
                      top_k: Optional[tuple] = None):
  def fn(variables, batch):
    out = {}
    for i, t in enumerate(grid):
      xt = transforms.apply(batch["x"], t, key=rng.fold_in(batch["key"], i))
      logits = apply_fn(variables, xt)
      out[t.name] = (jnp.argmax(logits, -1) == batch["y"] if top_k is None
                     else in_top_k(logits, batch["y"], top_k))
    return out
  return fn


def correct_under(apply_fn: Callable, variables, x, y,
                  grid: Sequence[transforms.Transform], *,
                  key: Optional[PRNGKey] = None,
                  top_k: Optional[Sequence[int]] = None,
                  **map_kwargs) -> Dict[str, np.ndarray]:
  """Per transform of `grid` (`transforms.transform_grid`), in its order,
  `[N]` bool: the transformed input is classified as `y`. On
  `map_batched`: the noise of transform i for example n is drawn from
  `fold_in(fold_in(key, n), i)`, so the clean and the adversarial image of
  an example get the same draw when called with the same key, and no draw
  depends on the batch.

  Args:
    apply_fn: `(variables, x) -> logits`; variables its variables.
    x: `[N, H, W, C]` images in [0, 1]; y: `[N]` labels.
    grid: the transforms (a `transforms.PhotoChain` is one too).
    key: the noise's key (default `jax.random.key(0)`).
    top_k: instead, `[N, len(top_k)]` bool per transform: `y` among the k
      largest logits, for each k.
    **map_kwargs: `map_batched`'s batch_size, mesh, device_batch_size,
      progress.
  """
  key = jax.random.key(0) if key is None else key
  top_k = None if top_k is None else tuple(int(k) for k in top_k)
  out = batching.map_batched(
      _correct_under_fn(apply_fn, tuple(grid), top_k),
      {"x": np.asarray(x), "y": np.asarray(y, np.int32)}, variables, key=key,
      **map_kwargs)
  return {t.name: out[t.name] for t in grid}  # in the grid's order


def destruction_grid(apply_fn: Callable, variables, x, x_adv, y,
                     grid: Sequence[transforms.Transform], *,
                     key: Optional[PRNGKey] = None,
                     **map_kwargs) -> Dict[str, float]:
  """Kurakin et al.'s destruction rate of `x_adv` under each transform of
  `grid` (name -> rate, NaN when nothing was fooled); see
  `correct_under` for the noise draws."""
  correct = lambda z: predict(apply_fn, variables, z,
                              **map_kwargs) == np.asarray(y)
  c, a = correct(x), correct(x_adv)
  after = correct_under(apply_fn, variables, x_adv, y, grid, key=key,
                        **map_kwargs)
  return {t.name: destruction_rate(c, a, after[t.name]) for t in grid}


def prefilter(y, clean_probs, adv_probs, confidence: float) -> np.ndarray:
  """Kurakin et al.'s prefiltered case: `[N]` bool, the clean image
  classified correctly and the adversarial one wrongly, each with top-1
  probability above `confidence` (strictly).

  Args:
    y: `[N]` labels.
    clean_probs, adv_probs: `[N, K]` class probabilities of the clean and
      the adversarial images (`evaluation.predict(..., output='probs')`).
    confidence: in (0, 1); the paper's 0.8.

  Raises:
    ValueError: confidence outside (0, 1), or shapes that do not match.
  """
  if not 0. < confidence < 1.:
    raise ValueError(f"prefilter: confidence must be in (0, 1), got "
                     f"{confidence}.")
  y, cp, ap = np.asarray(y), np.asarray(clean_probs), np.asarray(adv_probs)
  if cp.shape != ap.shape or cp.ndim != 2 or y.shape != cp.shape[:1]:
    raise ValueError(f"prefilter: need y [N] and probabilities [N, K], got "
                     f"{y.shape}, {cp.shape}, {ap.shape}.")
  return ((cp.argmax(-1) == y) & (cp.max(-1) > confidence)
          & (ap.argmax(-1) != y) & (ap.max(-1) > confidence))
