"""The sources made in memory: `digits` (scikit-learn's bundled 8x8 digits,
offline, with a fixed seeded stratified 80/20 train/test split) and
`synthetic` (deterministic class templates plus Gaussian noise), and
`mnist_like_images` (the digits upsampled and bordered like MNIST).
"""
from collections.abc import Sequence
from typing import Tuple

import numpy as np

from advjax.data.core import Dataset

__all__ = ["mnist_like_images"]


def _load_digits(split: str) -> Tuple[np.ndarray, np.ndarray]:
  # Imported here: scikit-learn takes about a second to import.
  # pylint: disable=g-import-not-at-top
  from sklearn import datasets as sk_datasets
  from sklearn import model_selection
  # pylint: enable=g-import-not-at-top
  digits = sk_datasets.load_digits()
  targets = digits.target
  train_idx, test_idx = model_selection.train_test_split(
      np.arange(targets.shape[0]), test_size=0.2, random_state=0,
      stratify=targets)
  idx = train_idx if split == "train" else test_idx
  images = digits.images[idx].astype(np.float32)[..., None] / np.float32(16)
  return images, targets[idx].astype(np.int32)


def _load_synthetic(split: str,
                    shape: Sequence[int] = (8, 8, 1),
                    num_classes: int = 10,
                    size: int = 512,
                    seed: int = 0,
                    noise: float = 0.25) -> Dataset:
  """Each class a fixed uniform template; examples are template + noise."""
  shape = tuple(int(s) for s in shape)
  if len(shape) != 3 or min(shape) <= 0:
    raise ValueError(f"shape must be (H, W, C) > 0, got {shape}.")
  if num_classes < 1 or size < 0 or seed < 0 or noise < 0:
    raise ValueError(
        "synthetic needs num_classes >= 1, size >= 0, seed >= 0, noise >= 0; "
        f"got {num_classes}, {size}, {seed}, {noise}.")
  # Separate streams: [seed, 0] would equal plain `seed` in SeedSequence.
  templates = np.random.default_rng((seed, 1)).uniform(
      size=(num_classes, *shape))
  rng = np.random.default_rng((seed, 2 if split == "train" else 3))
  labels = rng.permutation(np.arange(size) % num_classes)
  images = templates[labels] + noise * rng.standard_normal((size, *shape))
  images = np.clip(images, 0., 1.).astype(np.float32)
  return Dataset(images, labels.astype(np.int32), int(num_classes),
                 "synthetic", split)


def mnist_like_images(batch: int, image_shape: Sequence[int]) -> np.ndarray:
  """Deterministic MNIST-like images `[B, H, W, C]` float32 in [0, 1].

  sklearn's 8x8 digits (test split, in order, cycled), upsampled bilinearly
  to the inner `(H - 2r) x (W - 2r)` of the image, `r = round(H / 7)` (the
  4-pixel border of MNIST at 28), values below 0.05 set to 0, and copied to
  every channel; most pixels are exactly 0, as in MNIST.
  """
  import jax  # pylint: disable=import-outside-toplevel
  h, w, c = (int(d) for d in image_shape)
  r = int(round(h / 7))
  inner = (max(h - 2 * r, 1), max(w - 2 * r, 1))
  digits = _load_digits("test")[0]
  digits = digits[np.arange(batch) % digits.shape[0]]
  up = np.asarray(jax.image.resize(digits,
                                   (batch,) + inner + (1,), "bilinear"))
  up = np.where(up < 0.05, 0., np.clip(up, 0., 1.)).astype(np.float32)
  x = np.zeros((batch, h, w, 1), np.float32)
  x[:, r:r + inner[0], r:r + inner[1]] = up
  return np.repeat(x, c, axis=-1)
