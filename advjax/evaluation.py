"""Robust accuracy over an eps sweep: one compiled function, every example counted.

The dataset is cut into batches of a fixed size; the last one is padded and
masked (as big_vision's evaluators do), so one compilation serves every batch
and no example is silently dropped. The eps of a sweep are attacked together
in the same compiled call: the batch is tiled once per eps and attacked with
per-example eps (`[E * B]`), eps being a traced input, so any sweep reuses the
compilation. Tiling rather than `lax.map` over eps keeps the attack out of a
loop body, where XLA's CPU backend runs convolution gradients 3-4x slower
(see `advjax.attacks.base.resolve_unroll`); `eps_per_call` bounds the memory
(E * B examples at once) by attacking the sweep in chunks.
"""
from typing import Any, Callable, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from advjax.attacks import base
from advjax.types import Array, PRNGKey

__all__ = ["RobustAccuracy", "make_robust_accuracy_fn", "robust_accuracy",
           "pad_batch"]

ApplyFn = Callable[[Any, Array], Array]  # (variables, x) -> logits


class RobustAccuracy(NamedTuple):
  """Robust accuracy of a model over an eps sweep.

  Attributes:
    eps: `[E]` the budgets.
    accuracy: `[E]` fraction of examples still correctly classified.
    clean_accuracy: accuracy on the clean inputs.
    correct: `[E, N]` bool, per example and eps.
    clean_correct: `[N]` bool.
  """
  eps: np.ndarray
  accuracy: np.ndarray
  clean_accuracy: float
  correct: np.ndarray
  clean_correct: np.ndarray

  def table(self) -> str:
    """A markdown table eps | robust accuracy."""
    rows = ["| eps | accuracy |", "|---:|---:|",
            f"| clean | {100 * self.clean_accuracy:.2f} % |"]
    rows += [f"| {e:.4g} | {100 * a:.2f} % |"
             for e, a in zip(self.eps, self.accuracy)]
    return "\n".join(rows)


def pad_batch(x: np.ndarray, y: np.ndarray, batch_size: int):
  """Pads `(x, y)` to `batch_size` rows; returns `(x, y, mask)`."""
  n = x.shape[0]
  mask = np.zeros((batch_size,), bool)
  mask[:n] = True
  if n == batch_size:
    return x, y, mask
  pad = batch_size - n
  x = np.concatenate([x, np.repeat(x[:1], pad, axis=0)])
  y = np.concatenate([y, np.repeat(y[:1], pad, axis=0)])
  return x, y, mask


def make_robust_accuracy_fn(apply_fn: ApplyFn, attack: Callable) -> Callable:
  """Compiles the per-batch evaluation of `attack` over an eps sweep.

  Args:
    apply_fn: `(variables, x [B, ...]) -> logits [B, K]`, inference mode.
    attack: `attack(model_fn, x, y, *, eps, [key]) -> x_adv` with every other
      hyperparameter fixed (e.g. `functools.partial(pgd, steps=40)`).

  Returns:
    A jitted `fn(variables, x, y, mask, eps [E], key) -> (clean_correct [B],
    correct [E, B])` where padded rows (mask False) are reported False.
  """
  def batch_fn(variables, x, y, mask, eps, key):
    model_fn = lambda z: apply_fn(variables, z)
    clean = jnp.argmax(model_fn(x), axis=-1) == y

    def one_eps(args):
      e, k = args
      x_adv = base.call_attack(attack, model_fn, x, y, eps=e, key=k)
      return (jnp.argmax(model_fn(x_adv), axis=-1) == y) & mask

    keys = jax.random.split(key, eps.shape[0])
    return clean & mask, jax.lax.map(one_eps, (eps, keys))

  return jax.jit(batch_fn)


def robust_accuracy(apply_fn: ApplyFn, variables, x, y, *, attack: Callable,
                    eps: Sequence[float], batch_size: int = 256,
                    key: Optional[PRNGKey] = None, progress: bool = False,
                    compiled: Optional[Callable] = None,
                    eps_per_call: Optional[int] = None) -> RobustAccuracy:
  """Clean and robust accuracy of a model under `attack` at every eps.

  Every example is counted: the last batch is padded and masked.

  Args:
    apply_fn: `(variables, x) -> logits`, inference mode (batch norm frozen).
    variables: the model's variables.
    x: `[N, ...]` float inputs inside the attack's bounds.
    y: `[N]` int labels.
    attack: `attack(model_fn, x, y, *, eps, [key])` (hyperparameters fixed
      with functools.partial).
    eps: the sweep, a sequence of budgets >= 0.
    batch_size: examples per compiled batch.
    key: `jax.random.key`; folded with the batch index.
    progress: show a progress bar over batches.
    compiled: a function from `make_robust_accuracy_fn(apply_fn, attack)` to
      reuse its compilation across calls.
    eps_per_call: attack at most this many eps per compiled call (memory:
      `eps_per_call * batch_size` examples at once); default all of them.

  Returns:
    `RobustAccuracy`.

  Raises:
    ValueError / TypeError: bad inputs (see `check_attack_inputs`).
  """
  x = np.asarray(x)
  y = np.asarray(y)
  eps = np.asarray(eps, np.float32).reshape(-1)
  if eps.size == 0:
    raise ValueError("robust_accuracy: eps must list at least one budget.")
  if batch_size < 1:
    raise ValueError(f"robust_accuracy: batch_size must be >= 1, got "
                     f"{batch_size}.")
  if x.shape[0] == 0:
    raise ValueError("robust_accuracy: x is empty.")
  bounds = getattr(attack, "keywords", {}).get("bounds", (0., 1.))
  model_fn = lambda z: apply_fn(variables, z)
  if not np.all(np.isfinite(eps)):
    raise ValueError(f"robust_accuracy: eps must be finite, got {eps}.")
  if np.any(eps < 0):
    raise ValueError(f"robust_accuracy: eps must be >= 0, got {eps}.")
  base.check_attack_inputs(model_fn, x, y, bounds=bounds,
                           name="robust_accuracy")
  if key is None:
    key = jax.random.key(0)
  fn = compiled or make_robust_accuracy_fn(apply_fn, attack)
  n = x.shape[0]
  batch_size = min(batch_size, n)
  chunk = min(eps_per_call or eps.size, eps.size)
  num_chunks = -(-eps.size // chunk)
  # Pad the sweep to whole chunks with its last eps; padded rows are dropped.
  eps_padded = np.concatenate(
      [eps, np.full(num_chunks * chunk - eps.size, eps[-1], np.float32)])
  clean, correct = [], []
  starts = list(range(0, n, batch_size))
  bar = tqdm(total=len(starts) * num_chunks, desc="robust accuracy",
             disable=not progress, leave=False)
  for i, s in enumerate(starts):
    xb, yb, mask = pad_batch(x[s:s + batch_size], y[s:s + batch_size],
                             batch_size)
    m = int(mask.sum())
    rows = []
    for j in range(num_chunks):
      c, r = fn(variables, xb, yb, mask, eps_padded[j * chunk:(j + 1) * chunk],
                jax.random.fold_in(jax.random.fold_in(key, i), j))
      rows.append(np.asarray(r)[:, :m])
      bar.update()
    clean.append(np.asarray(c)[:m])
    correct.append(np.concatenate(rows)[:eps.size])
  bar.close()
  clean = np.concatenate(clean)
  correct = np.concatenate(correct, axis=1)
  return RobustAccuracy(eps=eps, accuracy=correct.mean(axis=1),
                        clean_accuracy=float(clean.mean()), correct=correct,
                        clean_correct=clean)
