"""Random keys for one batch or for each example.

Every attack with randomness takes `key`: either one `jax.random.key` for the
whole batch, or a `[B]` array of keys, one per example. With per-example
keys each example's random draws depend only on its own key, never on the
batch it sits in, so an example attacked alone, in a batch of 64 or of 360,
or on any device gets the same draws (the evaluators derive them as
`fold_in(key, global_index)`). The helpers here make both forms work with
one code path: `draw` samples `[B, ...]` arrays, `split` and `fold_in` keep
the form of the key they get.
"""
from typing import Callable, Sequence

import jax
import jax.numpy as jnp

from advjax.types import Array, PRNGKey

__all__ = ["as_key", "is_batched", "draw", "split", "fold_in",
           "example_keys", "check_key"]


def as_key(key: PRNGKey) -> PRNGKey:
  """A typed key array: legacy raw `uint32` keys are wrapped."""
  if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
    return key
  return jax.random.wrap_key_data(key)


def is_batched(key: PRNGKey) -> bool:
  """Whether `key` holds one key per example (shape `[B]`)."""
  return as_key(key).ndim == 1


def check_key(key: PRNGKey, batch: int, name: str = "attack") -> PRNGKey:
  """Validates a batch key or `[B]` per-example keys; returns a typed key."""
  if key is None:
    raise ValueError(f"{name}: needs key=jax.random.key(seed) (or [B] "
                     "per-example keys).")
  key = as_key(key)
  if key.ndim > 1 or (key.ndim == 1 and key.shape[0] != batch):
    raise ValueError(f"{name}: key must be one key or [B] = [{batch}] "
                     f"per-example keys, got a key array of shape "
                     f"{tuple(key.shape)}.")
  return key


def draw(sample: Callable[[PRNGKey, Sequence[int]], Array], key: PRNGKey,
         shape: Sequence[int]) -> Array:
  """`sample(key, shape)` for a batch key, or per example for `[B]` keys.

  With per-example keys, example `b` gets `sample(key[b], (1,) +
  shape[1:])[0]`: the draw it would get in a batch of one.
  """
  key = as_key(key)
  shape = tuple(shape)
  if key.ndim == 0:
    return sample(key, shape)
  return jax.vmap(lambda k: sample(k, (1,) + shape[1:])[0])(key)


def split(key: PRNGKey, num: int) -> PRNGKey:
  """`num` independent keys of the same form: `[num]` or `[num, B]`."""
  key = as_key(key)
  if key.ndim == 0:
    return jax.random.split(key, num)
  return jnp.swapaxes(jax.vmap(lambda k: jax.random.split(k, num))(key), 0, 1)


def fold_in(key: PRNGKey, data) -> PRNGKey:
  """`jax.random.fold_in` for a batch key or each of `[B]` keys."""
  key = as_key(key)
  if key.ndim == 0:
    return jax.random.fold_in(key, data)
  return jax.vmap(lambda k: jax.random.fold_in(k, data))(key)


def example_keys(key: PRNGKey, index: Array) -> PRNGKey:
  """`[B]` keys `fold_in(key, index[b])`: an example's key from its global
  index, independent of its batch, position, device or process."""
  key = as_key(key)
  return jax.vmap(lambda i: jax.random.fold_in(key, i))(
      jnp.asarray(index, jnp.uint32))
