"""Private helpers shared by the reference models."""

import jax

__all__ = ["check_nhwc", "flatten"]


def check_nhwc(x: jax.Array, model_name: str) -> None:
  """Raises a clear error unless `x` is a rank-4 NHWC batch.

  Args:
    x: the model input; expected `[B, H, W, C]`.
    model_name: the calling model's class name, for the message.

  Raises:
    ValueError: if `x` does not have rank 4.
  """
  if x.ndim != 4:
    raise ValueError(
        f"{model_name} expects a float NHWC batch [B, H, W, C]; got an array "
        f"of shape {tuple(x.shape)} (rank {x.ndim}). Add a batch axis with "
        "x[None] for a single example, or a channel axis with x[..., None] "
        "for grey images.")


def flatten(x: jax.Array) -> jax.Array:
  """Flattens `[B, ...]` to `[B, prod(...)]`."""
  return x.reshape((x.shape[0], -1))
