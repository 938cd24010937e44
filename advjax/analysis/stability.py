"""Does a perturbation survive noise or a flip? (D'Costa & Sriramanan's
checks of the universality study.)

Both report, among the examples the perturbation fools, the fraction still
fooled after the change, beside the control: the clean images' accuracy
under the same change (a perturbation that "survives" a change that already
breaks the clean classifier proves nothing).
"""
from typing import Dict, Sequence

import jax
import jax.numpy as jnp

from advjax.analysis.transfer import misclassified
from advjax.types import Array, Bounds, ModelFn, PRNGKey

__all__ = ["noise_stability", "flip_stability"]


def _still_fooled(fooled, fooled_after):
  n = int(fooled.sum())
  return float((fooled & fooled_after).sum() / n) if n else float("nan")


def noise_stability(model_fn: ModelFn, x: Array, x_adv: Array, y: Array, *,
                    key: PRNGKey, magnitudes: Sequence[float],
                    bounds: Bounds = (0., 1.)) -> Dict[str, list]:
  """Uniform noise `U(-a, a)` added to each adversarial (and clean) image.

  Args:
    model_fn: pure `[B, ...] -> [B, K]` logits.
    x, x_adv: `[N, ...]` clean and adversarial images; y: `[N]` labels.
    key: the noise (the same draw for clean and adversarial images).
    magnitudes: the a's (in the units of the box).
    bounds: noisy images are clipped into the box.

  Returns:
    `{"magnitude": [...], "still_fooled": [...], "clean_accuracy": [...]}`:
    per magnitude, the fraction of fooled examples still fooled and the
    clean accuracy under the same noise.
  """
  fooled = misclassified(model_fn, x_adv, y)
  out = {"magnitude": [], "still_fooled": [], "clean_accuracy": []}
  for i, a in enumerate(magnitudes):
    u = jax.random.uniform(jax.random.fold_in(key, i), x.shape, x.dtype,
                           -a, a)
    out["magnitude"].append(float(a))
    out["still_fooled"].append(_still_fooled(
        fooled, misclassified(model_fn, jnp.clip(x_adv + u, *bounds), y)))
    out["clean_accuracy"].append(float(1. - misclassified(
        model_fn, jnp.clip(x + u, *bounds), y).mean()))
  return out


def flip_stability(model_fn: ModelFn, x: Array, x_adv: Array, y: Array, *,
                   bounds: Bounds = (0., 1.)) -> Dict[str, float]:
  """Left-right flips (axis 2 of NHWC).

  Returns:
    `flipped_adversarial`: fraction of fooled examples whose flipped
    adversarial image `flip(x + delta)` is still misclassified (the
    perturbation moves with the image); `perturbation_on_flipped`: the
    same for `flip(x) + delta` (the perturbation stays where it was while
    the image moves); both among examples whose flipped clean image is
    classified correctly, so a flip that alone changes the class is not
    counted; `flipped_clean_accuracy`: the control.
  """
  flip = lambda z: z[:, :, ::-1]
  delta = x_adv - x
  flip_ok = ~misclassified(model_fn, flip(x), y)
  fooled = misclassified(model_fn, x_adv, y) & flip_ok
  return {
      "flipped_adversarial": _still_fooled(
          fooled, misclassified(model_fn, flip(x_adv), y)),
      "perturbation_on_flipped": _still_fooled(
          fooled, misclassified(model_fn, jnp.clip(flip(x) + delta, *bounds), y)),
      "flipped_clean_accuracy": float(flip_ok.mean()),
  }
