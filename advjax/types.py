"""Type aliases shared across advjax.

Every attack consumes a `ModelFn`: a pure function from a batch of images
`[B, H, W, C]` to logits `[B, K]`. Losses are per example: `[B, K], [B] -> [B]`.
"""
from typing import Callable, Tuple, Union

import jax

__all__ = [
    "Array", "ArrayLike", "PRNGKey", "ModelFn", "LossFn", "ProjectFn", "InitFn",
    "Bounds", "Scalar",
]

Array = jax.Array
ArrayLike = jax.typing.ArrayLike
PRNGKey = jax.Array
Scalar = Union[float, jax.Array]
Bounds = Tuple[float, float]

# [B, ...] images -> [B, K] logits.
ModelFn = Callable[[Array], Array]
# (logits [B, K], labels [B]) -> per-example loss [B].
LossFn = Callable[[Array, Array], Array]
# (delta [B, ...], x [B, ...]) -> feasible delta [B, ...].
ProjectFn = Callable[[Array, Array], Array]
# (key, x [B, ...]) -> initial perturbation delta [B, ...].
InitFn = Callable[[PRNGKey, Array], Array]
