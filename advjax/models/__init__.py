"""Reference Flax models and a registry by name.

Every model is a `flax.linen.Module` whose `__call__(x, train=False)` maps a
float NHWC batch `[B, H, W, C]` to logits `[B, num_classes]`. Attacks consume
a pure function instead of a module (DESIGN.md section 2); `model_fn` builds
one:

  model = get_model("preact_resnet18")
  variables = init_model(model, jax.random.key(0), (32, 32, 3))
  logits = model_fn(model, variables)(x)   # inference mode, no mutation

A user's own module may also leave `train` out (`__call__(x)`, called as
`model.apply(variables, x)`) when it has no batch norm and no dropout to
switch. `apply_kwargs` is the one place that tells the two apart: training
steps call `model.apply(variables, x, mutable=["batch_stats"],
rngs={"dropout": key}, **apply_kwargs(model, True, variables))`.
"""

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from advjax.models.cnn import CarliniCIFAR
from advjax.models.cnn import CarliniCNN
from advjax.models.cnn import CarliniMNIST
from advjax.models.cnn import GTSRBCNN
from advjax.models.cnn import MadryCNN
from advjax.models.cnn import MetzenDetector
from advjax.models.cnn import WongCNN
from advjax.models.mlp import AE400_10
from advjax.models.mlp import FC10
from advjax.models.mlp import FC100_100_10
from advjax.models.mlp import FC123_456_10
from advjax.models.mlp import FC200_200_10
from advjax.models.mlp import MLP
from advjax.models.mlp import Maxout
from advjax.models.resnet import PreActBlock
from advjax.models.resnet import PreActResNet18
from advjax.models.resnet import WideResNet

__all__ = [
    "MODELS",
    "get_model",
    "list_models",
    "init_model",
    "apply_kwargs",
    "apply_fn",
    "random_case",
    "compute_dtype",
    "model_fn",
    "has_batch_norm",
    "WongCNN",
    "MadryCNN",
    "CarliniCNN",
    "CarliniMNIST",
    "CarliniCIFAR",
    "GTSRBCNN",
    "MetzenDetector",
    "MLP",
    "FC10",
    "FC100_100_10",
    "FC200_200_10",
    "FC123_456_10",
    "AE400_10",
    "Maxout",
    "PreActBlock",
    "PreActResNet18",
    "WideResNet",
]

MODELS: dict[str, type[nn.Module]] = {
    "wong_mnist": WongCNN,
    "madry_mnist": MadryCNN,
    "carlini_mnist": CarliniMNIST,
    "carlini_cifar": CarliniCIFAR,
    "preact_resnet18": PreActResNet18,
    "wide_resnet": WideResNet,
    "gtsrb_cnn": GTSRBCNN,
    "metzen_detector": MetzenDetector,
    "mlp": MLP,
    "fc10": FC10,
    "fc100_100_10": FC100_100_10,
    "fc200_200_10": FC200_200_10,
    "fc123_456_10": FC123_456_10,
    "ae400_10": AE400_10,
    "maxout": Maxout,
}


def list_models() -> list[str]:
  """Returns the registered model names, sorted."""
  return sorted(MODELS)


def get_model(name: str, num_classes: int | None = None,
              **kwargs: Any) -> nn.Module:
  """Builds a registered model by name.

  Args:
    name: one of `list_models()`.
    num_classes: number of output logits K; None keeps the model's own
      default (10, and 43 for 'gtsrb_cnn').
    **kwargs: further model attributes, e.g. `width=8` for
      'preact_resnet18' or `depth=34` for 'wide_resnet'; every model takes
      `dtype` (`'bfloat16'` or `jnp.bfloat16`: the compute dtype of its
      layers, with float32 parameters and float32 logits).

  Returns:
    The unbound `flax.linen.Module`.

  Raises:
    ValueError: if `name` is not registered (the message lists the known
      names), if `num_classes < 1`, or if the model rejects its attributes
      (e.g. a WideResNet depth).
  """
  if name not in MODELS:
    raise ValueError(
        f"Unknown model {name!r}; known models: {', '.join(list_models())}.")
  if "dtype" in kwargs:
    kwargs["dtype"] = compute_dtype(kwargs["dtype"])
  if num_classes is None:
    return MODELS[name](**kwargs)
  if num_classes < 1:
    raise ValueError(f"num_classes must be >= 1; got {num_classes}.")
  return MODELS[name](num_classes=num_classes, **kwargs)


def compute_dtype(dtype) -> Any:
  """The jnp dtype a model computes in, from a name or a dtype; only
  float32, bfloat16 and float16 are accepted."""
  try:
    d = jnp.dtype(dtype)
  except TypeError as e:
    raise ValueError(f"Unknown dtype {dtype!r}; use 'float32', 'bfloat16' "
                     "or 'float16'.") from e
  if d not in (jnp.dtype(jnp.float32), jnp.dtype(jnp.bfloat16),
               jnp.dtype(jnp.float16)):
    raise ValueError(f"A model computes in float32, bfloat16 or float16, "
                     f"not {d}.")
  return d.type


def init_model(
    model: nn.Module,
    key: jax.Array,
    input_shape: Sequence[int],
) -> dict[str, Any]:
  """Initialises a model's variables with a batch of one example.

  Args:
    model: a model from this package, or any module with the same
      contract, with or without `train` (`apply_kwargs`).
    key: a `jax.random.key` for the parameter initialisers.
    input_shape: per-example shape `(H, W, C)`, e.g. `(28, 28, 1)`.

  Returns:
    A dict with 'params' and, for models with batch norm, 'batch_stats'
    (running mean 0 and variance 1).

  Raises:
    ValueError: if `input_shape` is not `(H, W, C)` with positive sizes,
      or the model has batch norm but no `train` argument.
    TypeError: the model's training switch is not named `train`
      (`apply_kwargs`).
  """
  input_shape = tuple(int(d) for d in input_shape)
  if len(input_shape) != 3 or min(input_shape) < 1:
    raise ValueError(
        "input_shape must be the per-example shape (H, W, C) with positive "
        f"sizes, e.g. (28, 28, 1); got {input_shape}.")
  x = jnp.zeros((1,) + input_shape, jnp.float32)
  variables = dict(model.init({"params": key}, x, **apply_kwargs(model)))
  apply_kwargs(model, False, variables)  # batch norm needs `train`
  return variables


# Names people give the training switch that advjax does not guess at, with
# how `train` relates to each (`deterministic` and `use_running_average`
# are its negation, so a guess in the wrong direction would run dropout in
# evaluation): one argument name everywhere, said at once, is clearer.
_TRAIN_ALIASES = {"training": "train", "is_training": "train",
                  "is_train": "train", "deterministic": "not train",
                  "use_running_average": "not train", "eval": "not train",
                  "is_eval": "not train", "inference": "not train"}


@functools.lru_cache(maxsize=None)
def _takes_train(cls: type) -> bool:
  """Whether `cls.__call__` takes `train` (its signature read once)."""
  params = inspect.signature(cls.__call__).parameters
  if "train" in params:
    return True
  other = [p for p in params if p in _TRAIN_ALIASES]
  if other:
    name = other[0]
    raise TypeError(
        f"{cls.__name__}.__call__ takes {name!r} but no 'train' argument; "
        "advjax calls a model as model.apply(variables, x, train=True) to "
        "train and train=False to evaluate (model.apply(variables, x) for a "
        f"model with neither). Rename {name!r} to 'train' ({name} = "
        f"{_TRAIN_ALIASES[name]}), or wrap the module in one whose "
        f"__call__(self, x, train=False) calls it with "
        f"{name}={_TRAIN_ALIASES[name]}.")
  return False


def apply_kwargs(model: nn.Module, train: bool = False,
                 variables: Mapping[str, Any] | None = None
                 ) -> dict[str, bool]:
  """The keywords that put `model` in training or inference mode.

  A module whose `__call__` takes `train` gets `{'train': train}`; one
  without it (no batch norm, no dropout to switch) gets `{}` and is called
  as `model.apply(variables, x)`. The signature is read once per class.

  Args:
    model: a Flax module.
    train: training mode (batch statistics, dropout on) or inference.
    variables: the model's variables, to check that a module without
      `train` has no batch norm (which it could not switch to its running
      averages).

  Returns:
    `{'train': train}` or `{}`, for `model.apply(variables, x, **kw)`.

  Raises:
    TypeError: `__call__` names the switch otherwise ('training',
      'deterministic', 'is_training', 'use_running_average', ...): the
      message says to rename it to `train`.
    ValueError: `variables` hold batch-norm statistics and `__call__` takes
      no `train`.
  """
  if _takes_train(type(model)):
    return {"train": train}
  if variables is not None and has_batch_norm(variables):
    raise ValueError(
        f"{type(model).__name__} has batch norm ('batch_stats') but its "
        "__call__ takes no 'train' argument, so advjax cannot switch it "
        "from batch statistics (training) to running averages (evaluation). "
        "Add `train: bool = False` to __call__ and pass "
        "nn.BatchNorm(use_running_average=not train).")
  return {}


def apply_fn(model: nn.Module) -> Callable[[Any, jax.Array], jax.Array]:
  """`model`'s pure inference function, the `apply_fn` evaluations take.

  Args:
    model: a Flax module, with or without a `train` argument
      (`apply_kwargs`).

  Returns:
    `f(variables, x [B, H, W, C]) -> logits [B, K]`, in inference mode,
    nothing mutated.
  """
  apply_kwargs(model)  # a misnamed switch is reported here, not in a trace

  def apply(variables: Mapping[str, Any], x: jax.Array) -> jax.Array:
    return model.apply(variables, x, **apply_kwargs(model, False, variables))

  return apply


def random_case(
    name: str,
    n: int,
    input_shape: Sequence[int],
    *,
    init_key: jax.Array | None = None,
    data_key: jax.Array | None = None,
) -> tuple[Callable[..., jax.Array], dict[str, Any], Any, Any]:
  """A randomly initialised model on uniform inputs labelled with its own
  predictions: a test case of clean accuracy 1 by construction, with no
  data and no training (AutoAttack's parity checks against a reference).

  Args:
    name: a `MODELS` name.
    n: the number of inputs.
    input_shape: `(H, W, C)`.
    init_key: the parameters' key (default `key(0)`).
    data_key: the inputs' key (default `key(1)`).

  Returns:
    `(apply_fn, variables, x, y)`: `apply_fn(variables, x) -> logits` in
    inference mode, host variables, `[n, H, W, C]` float32 inputs in [0, 1)
    and `[n]` int32 labels, the argmax of the logits.
  """
  model = get_model(name)
  init_key = jax.random.key(0) if init_key is None else init_key
  data_key = jax.random.key(1) if data_key is None else data_key
  variables = jax.device_get(init_model(model, init_key, input_shape))
  f = apply_fn(model)
  x = jax.random.uniform(data_key, (n, *input_shape))
  y = jnp.argmax(f(variables, x), -1).astype(jnp.int32)
  return f, variables, *jax.device_get((x, y))


def model_fn(
    model: nn.Module,
    variables: Mapping[str, Any],
) -> Callable[[jax.Array], jax.Array]:
  """Adapts a model and its variables to the pure form attacks consume.

  The returned function runs the model in inference mode: batch norm uses
  its running averages (so each example's logits are independent of the
  rest of the batch), dropout is off, and nothing is mutated. Build it
  inside the caller's jitted function so `variables` are traced, not
  baked in as constants.

  Args:
    model: the module, with or without a `train` argument (`apply_kwargs`).
    variables: its variables, e.g. from `init_model`, a train state or
      `training.fit(...).variables`.

  Returns:
    `f(x)`: float images `[B, H, W, C]` -> logits `[B, num_classes]`.
  """
  return functools.partial(apply_fn(model), variables)


def has_batch_norm(variables: Mapping[str, Any]) -> bool:
  """Whether `variables` hold batch-norm running statistics.

  Args:
    variables: a model's variables, e.g. from `init_model`.

  Returns:
    True if there is a non-empty 'batch_stats' collection.
  """
  return bool(jax.tree.leaves(variables.get("batch_stats", {})))
