"""Detectability: a network trained to tell clean from adversarial inputs.

Metzen, Genewein, Fischer, Bischoff (ICLR 2017) train a small detector
(`advjax.models.MetzenDetector`) on clean inputs (label 0) and their
adversarial versions (label 1), balanced, and report its accuracy on held-out
pairs; in the universality study (Metzen 2018, Figure 6) one detector per
epoch of adversarial training, tested on the adversarial examples of its own
epoch and of the others. Training goes through `advjax.training.fit` (optax,
the device mesh, a progress bar).
"""
from typing import Any, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from advjax import models, training
from advjax.types import Array

__all__ = ["Detector", "train_detector", "detector_accuracy"]


class Detector(NamedTuple):
  """A trained detector: `predict(x)` is True for inputs it calls
  adversarial."""
  model: Any
  variables: Any

  def logits(self, x: Array) -> Array:
    return models.model_fn(self.model, self.variables)(x)

  def predict(self, x: Array) -> Array:
    return jnp.argmax(self.logits(x), -1) == 1


def train_detector(x_clean: Array, x_adv: Array, *, seed: int = 0,
                   epochs: int = 20, batch_size: int = 64,
                   learning_rate: float = 1e-3,
                   features: Sequence[int] = (96, 192, 192), mesh=None,
                   progress: bool = False,
                   workdir: Optional[str] = None) -> Detector:
  """Trains a `MetzenDetector` on `x_clean` (class 0) vs `x_adv` (class 1).

  Args:
    x_clean, x_adv: `[N, ...]` images (the pairs of one attack).
    seed: init and data order.
    epochs, batch_size, learning_rate: Adam training of the detector
      (cosine-decayed learning rate).
    features: the detector's three convolution widths (Metzen: 96, 192,
      192).
    mesh, progress, workdir: as `advjax.training.fit` (workdir: checkpoint
      and resume the detector's training).

  Returns:
    `Detector`.
  """
  x_clean, x_adv = np.asarray(x_clean), np.asarray(x_adv)
  if x_clean.shape[1:] != x_adv.shape[1:] or x_clean.ndim != 4:
    raise ValueError(f"train_detector: clean {x_clean.shape} and adversarial "
                     f"{x_adv.shape} images must be [N, H, W, C] alike.")
  images = np.concatenate([x_clean, x_adv])
  labels = np.concatenate([np.zeros(len(x_clean), np.int32),
                           np.ones(len(x_adv), np.int32)])
  model = models.MetzenDetector(num_classes=2, features=tuple(features))
  steps = epochs * max(images.shape[0] // batch_size, 1)
  res = training.fit(model, optax.adam(optax.cosine_decay_schedule(
      learning_rate, steps)), (images, labels), epochs=epochs,
                     batch_size=batch_size, seed=seed, mesh=mesh,
                     progress=progress, workdir=workdir, desc="detector")
  return Detector(model, jax.device_get(res.state.variables))


def detector_accuracy(detector: Detector, x_clean: Array,
                      x_adv: Array) -> float:
  """Balanced accuracy: the mean of the fraction of clean inputs called
  clean and the fraction of adversarial inputs called adversarial."""
  clean_ok = np.asarray(~detector.predict(x_clean)).mean()
  adv_ok = np.asarray(detector.predict(x_adv)).mean()
  return float((clean_ok + adv_ok) / 2.)
