"""Per-example surrogate losses `[B, K], [B] -> [B]` used by attacks and training.

Convention: an untargeted attack *maximises* `loss(logits, y)`; a targeted one
maximises `-loss(logits, target)` (see `attack_objective`).
"""
from typing import Callable, Union

import jax
import jax.numpy as jnp
import optax

from advjax.types import Array, LossFn

__all__ = [
    "cross_entropy", "margin", "cw_loss", "kl_divergence", "dlr",
    "dlr_targeted", "get_loss", "attack_objective", "LOSSES",
]


def cross_entropy(logits: Array, labels: Array) -> Array:
  """Softmax cross-entropy per example.

  Args:
    logits: `[B, K]` float logits.
    labels: `[B]` int class indices.

  Returns:
    `[B]` loss.
  """
  return optax.softmax_cross_entropy_with_integer_labels(logits, labels)


def margin(logits: Array, labels: Array) -> Array:
  """Logit margin `z_y - max_{j != y} z_j` (positive iff classified as y).

  Args:
    logits: `[B, K]` float logits.
    labels: `[B]` int class indices.

  Returns:
    `[B]` margin.
  """
  num_classes = logits.shape[-1]
  onehot = jax.nn.one_hot(labels, num_classes, dtype=bool)
  z_y = jnp.sum(jnp.where(onehot, logits, 0.), axis=-1)
  z_other = jnp.max(jnp.where(onehot, -jnp.inf, logits), axis=-1)
  return z_y - z_other


def cw_loss(logits: Array, labels: Array) -> Array:
  """Carlini–Wagner margin loss `max_{j != y} z_j - z_y` (the negated margin).

  References:
    Carlini & Wagner, "Towards Evaluating the Robustness of Neural Networks",
    IEEE S&P 2017 (objective f_6).
  """
  return -margin(logits, labels)


def kl_divergence(logits_p: Array, logits_q: Array) -> Array:
  """KL(p || q) per example between the softmax distributions of two logits.

  Used by TRADES with `p` the clean and `q` the adversarial prediction.

  Args:
    logits_p: `[B, K]` logits of the reference distribution.
    logits_q: `[B, K]` logits of the second distribution.

  Returns:
    `[B]` KL divergence (>= 0).
  """
  log_p = jax.nn.log_softmax(logits_p)
  log_q = jax.nn.log_softmax(logits_q)
  return jnp.sum(jnp.exp(log_p) * (log_p - log_q), axis=-1)


def dlr(logits: Array, labels: Array) -> Array:
  """Difference-of-logits-ratio loss (untargeted), scale invariant.

  `-(z_y - max_{j != y} z_j) / (z_pi1 - z_pi3 + 1e-12)` with `z_pi` the sorted
  logits. Requires at least 3 classes.

  References:
    Croce & Hein, "Reliable evaluation of adversarial robustness with an
    ensemble of diverse parameter-free attacks", ICML 2020.
  """
  if logits.shape[-1] < 3:
    raise ValueError(f"dlr needs >= 3 classes, got {logits.shape[-1]}.")
  z_sorted = jnp.sort(logits, axis=-1)
  return -margin(logits, labels) / (z_sorted[:, -1] - z_sorted[:, -3] + 1e-12)


def dlr_targeted(logits: Array, labels: Array, targets: Array) -> Array:
  """Targeted difference-of-logits-ratio loss (APGD-T), to maximise.

  `-(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2 + 1e-12)` with `z_pi` the
  sorted logits (descending): it grows as the target logit `z_t` overtakes
  the true one, and is invariant to shifting and to positive scaling of
  the logits. Requires at least 4 classes.

  Args:
    logits: `[B, K]` float logits.
    labels: `[B]` int true classes.
    targets: `[B]` int target classes.

  Returns:
    `[B]` loss.

  References:
    Croce & Hein, ICML 2020 (section 4, "targeted DLR").
  """
  if logits.shape[-1] < 4:
    raise ValueError(f"dlr_targeted needs >= 4 classes, got "
                     f"{logits.shape[-1]}.")
  z_sorted = jnp.sort(logits, axis=-1)
  z_y = jnp.take_along_axis(logits, labels[:, None], axis=-1)[:, 0]
  z_t = jnp.take_along_axis(logits, targets[:, None], axis=-1)[:, 0]
  scale = z_sorted[:, -1] - 0.5 * (z_sorted[:, -3] + z_sorted[:, -4])
  return -(z_y - z_t) / (scale + 1e-12)


LOSSES = {
    "ce": cross_entropy,
    "cross_entropy": cross_entropy,
    "cw": cw_loss,
    "margin": cw_loss,
    "dlr": dlr,
}


def get_loss(loss: Union[str, LossFn]) -> LossFn:
  """Returns a loss function given its name (`ce`, `cw`, `dlr`) or a callable."""
  if callable(loss):
    return loss
  try:
    return LOSSES[loss]
  except KeyError:
    raise ValueError(
        f"Unknown loss {loss!r}; use one of {sorted(LOSSES)} or pass a "
        "callable (logits [B, K], labels [B]) -> [B].") from None


def attack_objective(loss: Union[str, LossFn],
                     targeted: bool) -> Callable[[Array, Array], Array]:
  """The per-example quantity an attack maximises.

  Untargeted: `loss(logits, y)` (move away from the true class). Targeted:
  `-loss(logits, target)` (move towards the target class).
  """
  fn = get_loss(loss)
  if targeted:
    return lambda logits, labels: -fn(logits, labels)
  return fn
