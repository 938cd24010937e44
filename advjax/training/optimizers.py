"""Optimizer pieces beyond a config's optimizer: an L1 penalty, frozen
parameters, an autoencoder's reconstruction pretraining.

- `l1_decay(coeff)`: adds `coeff * sign(w)` to the gradient (the
  subgradient of `coeff * |w|_1`), the regulariser Goodfellow et al. 2015
  compare adversarial training with; chain it before the optimizer.
- `freeze(optimizer, prefixes)`: the optimizer with zero updates for the
  parameters under the named top-level modules (a softmax trained on a
  fixed encoder).
- `pretrain_autoencoder`: trains a model's reconstruction
  (`model.apply(v, x, reconstruct=True)`, e.g. `models.AE400_10`) with Adam
  on the mean squared error; its variables start the classifier's training
  (`fit(init_variables=...)`).
"""
from typing import Any, Dict, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from tqdm import tqdm

from advjax import models

__all__ = ["l1_decay", "freeze", "pretrain_autoencoder"]


def l1_decay(coeff: float) -> optax.GradientTransformation:
  """`updates + coeff * sign(params)`: the L1 penalty `coeff |w|_1`'s
  subgradient (biases included, as optax's `add_decayed_weights`).

  Raises:
    ValueError: `coeff < 0`.
  """
  if coeff < 0:
    raise ValueError(f"l1_decay: coeff must be >= 0, got {coeff}.")

  def update(updates, state, params=None):
    if params is None:
      raise ValueError("l1_decay needs the params: call update(grads, "
                       "state, params).")
    return jax.tree.map(lambda g, w: g + coeff * jnp.sign(w), updates,
                        params), state

  return optax.GradientTransformation(lambda params: optax.EmptyState(),
                                      update)


def freeze(optimizer: optax.GradientTransformation,
           prefixes: Sequence[str]) -> optax.GradientTransformation:
  """`optimizer` for every parameter except those under the top-level
  modules `prefixes` (e.g. `('encoder',)`), which get zero updates."""
  prefixes = tuple(prefixes)

  def labels(params):
    return {k: jax.tree.map(lambda _, k=k: ("frozen" if k in prefixes
                                            else "train"), v)
            for k, v in params.items()}

  return optax.multi_transform({"train": optimizer,
                                "frozen": optax.set_to_zero()}, labels)


def pretrain_autoencoder(model: nn.Module, train: Any, *, epochs: int,
                         batch_size: int = 128, learning_rate: float = 1e-3,
                         seed: int = 0, progress: bool = True
                         ) -> Dict[str, Any]:
  """Trains `model`'s reconstruction on `train.images` (Adam, mean squared
  error; labels unused) from a fresh init.

  Args:
    model: a module with `apply(v, x, reconstruct=True) -> x_hat`.
    train: a `data.Dataset` (or anything with `.images [N, H, W, C]`).
    epochs, batch_size, learning_rate, seed: the optimisation.
    progress: a progress bar over the epochs.

  Returns:
    The variables (`{'params': ...}`), every module initialised (the
    classifier's head untrained).

  Raises:
    ValueError: epochs or batch_size < 1.
  """
  if epochs < 1 or batch_size < 1:
    raise ValueError(f"pretrain_autoencoder: epochs and batch_size must be "
                     f">= 1, got {epochs}, {batch_size}.")
  images = np.asarray(train.images, np.float32)
  key = jax.random.key(seed)
  variables = models.init_model(model, key, images.shape[1:])
  opt = optax.adam(learning_rate)
  params = variables["params"]
  opt_state = opt.init(params)

  @jax.jit
  def step(params, opt_state, x):
    def loss(p):
      x_hat = model.apply({**variables, "params": p}, x, reconstruct=True)
      return jnp.mean((x_hat - x) ** 2)
    value, grads = jax.value_and_grad(loss)(params)
    updates, opt_state = opt.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, value

  for epoch in tqdm(range(epochs), desc="pretrain autoencoder",
                    disable=not progress, leave=False):
    order = np.random.default_rng(seed + epoch).permutation(len(images))
    for i in range(0, max(len(images) - batch_size, 0) + 1, batch_size):
      params, opt_state, _ = step(params, opt_state,
                                      images[order[i:i + batch_size]])
  return {**variables, "params": params}
