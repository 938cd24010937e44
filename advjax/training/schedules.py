"""Schedules of a training method's radius.

`eps_warmup(eps, warmup_epochs, train_size, batch_size)`: the radius of
adversarial training ramped linearly from 0 over the first epochs (a
method's `eps` may be an optax schedule of the step), which keeps large
radii from collapsing the training at its start.
"""
from typing import Union

import optax

__all__ = ["eps_warmup"]


def eps_warmup(eps: float, warmup_epochs: int, train_size: int,
               batch_size: int) -> Union[float, optax.Schedule]:
  """`eps` reached linearly from 0 after `warmup_epochs` epochs of
  `train_size // batch_size` steps (at least 1), then held; `eps` itself
  when `warmup_epochs` is 0.

  Raises:
    ValueError: warmup_epochs < 0 or batch_size < 1.
  """
  if warmup_epochs < 0 or batch_size < 1:
    raise ValueError(f"eps_warmup: need warmup_epochs >= 0 and batch_size >= "
                     f"1, got {warmup_epochs}, {batch_size}.")
  if not warmup_epochs:
    return eps
  return optax.linear_schedule(
      0., eps, warmup_epochs * max(train_size // batch_size, 1))
