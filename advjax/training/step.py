"""The train state and the pure, jittable train and eval steps.

`make_train_step(model, optimizer, method)` returns a pure
`step(state, x, y) -> (state, metrics)` for any `training.Method` (or the
name of a preset, built with the keywords given): jit it (with buffer
donation; `advjax.sharding.jit_sharded` is the multi-device form). The step
reads the method's fields and never its name: with an attack it computes
the adversarial batch at the scheduled radius `eps_at(method, step)`, in
inference mode (batch norm frozen, no dropout) and with no gradient into the
parameters; the clean batch goes through the training forward pass (in one
call with the adversarial batch) only when the loss uses it. Per-step keys
are `fold_in(state key, step)`.
"""
from typing import Any, Callable, Dict, NamedTuple, Optional, Sequence, Union

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from advjax import losses, models
from advjax.attacks import base
from advjax.training import methods
from advjax.types import Array, PRNGKey

__all__ = ["TrainState", "create_train_state", "make_train_step",
           "make_eval_step"]


class TrainState(NamedTuple):
  """Everything a training run needs to continue exactly.

  Attributes:
    params: model parameters.
    batch_stats: batch-norm statistics (`{}` for models without batch norm).
    opt_state: the optax state.
    step: int32 scalar, number of steps taken.
    rng: raw key data (`jax.random.key_data`), so checkpoints hold plain
      arrays; `state.key` is the typed key.
    variables (property): `{'params': ..., 'batch_stats': ...}` (no
      'batch_stats' without batch norm), ready for `model.apply`,
      `models.model_fn(model, state.variables)` or an evaluation's
      `apply_fn`.
  """
  params: Any
  batch_stats: Any
  opt_state: Any
  step: Array
  rng: Array

  @property
  def key(self) -> PRNGKey:
    return jax.random.wrap_key_data(self.rng)

  @property
  def variables(self) -> Dict[str, Any]:
    """The Flax variables for `model.apply` (inference or attack)."""
    if self.batch_stats:
      return {"params": self.params, "batch_stats": self.batch_stats}
    return {"params": self.params}


def create_train_state(model: nn.Module, optimizer: optax.GradientTransformation,
                       key: PRNGKey, input_shape: Sequence[int]) -> TrainState:
  """Initialises a model and its optimizer state.

  Args:
    model: a Flax module with `__call__(x, train)`, or `__call__(x)`
      without batch norm or dropout (`models.apply_kwargs`).
    optimizer: any optax transformation.
    key: `jax.random.key`; split into the init key and the state key.
    input_shape: per-example `(H, W, C)`.
  """
  k_init, k_state = jax.random.split(key)
  variables = models.init_model(model, k_init, input_shape)
  params = variables["params"]
  return TrainState(params=params,
                    batch_stats=variables.get("batch_stats", {}),
                    opt_state=optimizer.init(params),
                    step=jnp.zeros((), jnp.int32),
                    rng=jax.random.key_data(k_state))


def make_train_step(model: nn.Module, optimizer: optax.GradientTransformation,
                    method: Union[str, methods.Method] = "standard",
                    **preset_kwargs: Any) -> Callable:
  """Builds the pure training step of `method`.

  Args:
    model: Flax module, `__call__(x, train)` or `__call__(x)`
      (`models.apply_kwargs`).
    optimizer: optax transformation (learning-rate schedule inside).
    method: a `training.Method`, or the name of a preset
      (`training.METHODS`) built with `preset_kwargs` (e.g. `'madry', eps=0.3,
      steps=10`; see `advjax.training.methods`).
    **preset_kwargs: the preset's keywords (only with a name).

  Returns:
    `step(state, x [B, ...], y [B]) -> (state, metrics)`, pure; metrics are
    scalars: `loss`, `accuracy` (clean), `top_class_share` (the share of the
    batch predicted as its most common class: 1 for a constant prediction)
    and, with an attack, `adv_accuracy` (on the training adversarial
    examples) and `eps` (the radius of this step).
  """
  method = methods.get(method, **preset_kwargs)
  attack = method.attack

  def forward_train(params, batch_stats, x, key):
    variables = {"params": params}
    if batch_stats:
      variables["batch_stats"] = batch_stats
    logits, updates = model.apply(
        variables, x, mutable=["batch_stats"], rngs={"dropout": key},
        **models.apply_kwargs(model, True, variables))
    return logits, updates.get("batch_stats", batch_stats)

  def step(state: TrainState, x: Array, y: Array):
    key = jax.random.fold_in(state.key, state.step)
    k_attack, k_dropout = jax.random.split(key)
    model_fn = models.model_fn(model, state.variables)
    metrics = {}
    x_adv = None
    if attack is not None:
      clean_logits = jax.lax.stop_gradient(model_fn(x))
      metrics["accuracy"] = _accuracy(clean_logits, y)
      metrics["top_class_share"] = _top_class_share(clean_logits)
      extra = {}
      if method.attack_loss is not None:
        extra["loss"] = method.attack_loss(clean_logits)
      labels = (jnp.argmax(clean_logits, -1).astype(y.dtype)
                if method.attack_on_predictions else y)
      eps = methods.eps_at(method, state.step)
      x_adv = base.call_attack(attack, model_fn, x, labels, eps=eps,
                               key=k_attack, **extra)
      # Minimal-radius searches return a NamedTuple with x_adv first.
      x_adv = jax.lax.stop_gradient(getattr(x_adv, "x_adv", x_adv))
      metrics["eps"] = jnp.mean(jnp.asarray(eps, jnp.float32))
    with_clean = method.uses_clean or attack is None
    parts = ([x] if with_clean else []) + ([] if x_adv is None else [x_adv])
    teacher = (None if method.teacher is None
               else jax.lax.stop_gradient(method.teacher(x)))

    def loss_fn(params):
      logits, new_bs = forward_train(params, state.batch_stats,
                                     jnp.concatenate(parts), k_dropout)
      split = jnp.split(logits, len(parts))
      clean = split[0] if with_clean else None
      adv = split[-1] if x_adv is not None else None
      loss = method.loss(methods.LossInputs(clean, adv, y, teacher))
      return loss, (new_bs, split[-1])

    (loss, (new_bs, logits)), grads = jax.value_and_grad(
        loss_fn, has_aux=True)(state.params)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    metrics["loss"] = loss
    if attack is None:
      metrics["accuracy"] = _accuracy(logits, y)
      metrics["top_class_share"] = _top_class_share(logits)
    else:
      metrics["adv_accuracy"] = _accuracy(logits, y)
    new_state = state._replace(params=params, batch_stats=new_bs,
                               opt_state=opt_state, step=state.step + 1)
    return new_state, metrics

  return step


def _accuracy(logits, labels):
  return jnp.mean(jnp.argmax(logits, -1) == labels)


def _top_class_share(logits):
  counts = jnp.sum(jax.nn.one_hot(jnp.argmax(logits, -1), logits.shape[-1]), 0)
  return jnp.max(counts) / logits.shape[0]


def make_eval_step(model: nn.Module, attack: Optional[Callable] = None,
                   eps=0.) -> Callable:
  """Builds `eval_step(state, x, y, mask) -> metrics` (sums, for padding).

  Returns per-batch sums `correct`, `adv_correct` (when `attack` is given,
  attacked at `eps` with key `fold_in(state key, 2**30 + step)`), `loss`
  and `count`, with padded rows (mask False) excluded. For full eps sweeps
  with per-example results use `advjax.evaluation.robust_accuracy` with
  `apply_fn=models.apply_fn(model)` and `state.variables`.
  """

  def eval_step(state: TrainState, x: Array, y: Array, mask: Array):
    model_fn = models.model_fn(model, state.variables)
    logits = model_fn(x)
    m = mask.astype(jnp.float32)
    out = {"correct": jnp.sum((jnp.argmax(logits, -1) == y) * m),
           "loss": jnp.sum(losses.cross_entropy(logits, y) * m),
           "count": jnp.sum(m)}
    if attack is not None:
      key = jax.random.fold_in(state.key, 2 ** 30 + state.step)
      x_adv = base.call_attack(attack, model_fn, x, y, eps=eps, key=key)
      out["adv_correct"] = jnp.sum(
          (jnp.argmax(model_fn(x_adv), -1) == y) * m)
    return out

  return eval_step

