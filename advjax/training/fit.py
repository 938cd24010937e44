"""`fit`: a resumable, sharded training run, with a per-epoch history that
notices when training collapses.
"""
import logging
import os
import time
import warnings
from typing import Any, Callable, Dict, NamedTuple, Optional, Union

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from tqdm import tqdm

from advjax import checkpoint, data, models, sharding
from advjax.training import methods
from advjax.training.step import TrainState, create_train_state, make_train_step

__all__ = ["FitResult", "TrainingCollapseWarning", "fit", "collapsed",
           "restore_epoch"]

_log = logging.getLogger(__name__)


class TrainingCollapseWarning(UserWarning):
  """An epoch of training looked collapsed (see `collapsed`)."""


class FitResult(NamedTuple):
  """Output of `fit`.

  Attributes:
    state: the final train state (on the host's default placement).
    history: per epoch, the means over its steps (run in this call) of the
      step's metrics (`loss`, `accuracy`, `top_class_share`, with an attack
      `adv_accuracy` and `eps`), `seconds`, `images_per_second` and
      `collapsed` (see `collapsed`).
    resumed_from: the step restored from the workdir (None: fresh start).
    variables (property): the trained model's variables, `{'params': ...,
      'batch_stats': ...}` (no 'batch_stats' without batch norm), ready for
      `models.model_fn(model, result.variables)`, `model.apply` or an
      evaluation's `apply_fn`; `state.variables`.
  """
  state: TrainState
  history: list
  resumed_from: Optional[int]

  @property
  def variables(self) -> Dict[str, Any]:
    """The trained variables (`state.variables`)."""
    return self.state.variables


def fit(model: nn.Module, optimizer: optax.GradientTransformation,
        train_data, *, method: Union[str, methods.Method] = "standard",
        epochs: int = 1,
        batch_size: int = 128, seed: int = 0, workdir: Optional[str] = None,
        save_every: int = 100, keep: int = 3, settings: Optional[dict] = None,
        mesh=None, log_every: int = 10, progress: bool = True,
        desc: str = "train", init_variables: Optional[Dict[str, Any]] = None,
        epoch_checkpoints: bool = False,
        on_metrics: Optional[Callable[[str, int, Dict[str, Any]], None]] = None,
        **step_kwargs) -> FitResult:
  """Trains `model` on `train_data` with `method`, resuming from `workdir`.

  Deterministic given `seed`: epoch `e` visits batches in the order of
  `data.iterate_batches(shuffle=True, seed=seed, epoch=e)` (last partial
  batch dropped) and step `t` draws its keys from `fold_in(key, t)`. A run
  killed and resumed from its last checkpoint therefore ends with exactly
  the parameters of an uninterrupted run.

  Args:
    model, optimizer: as `make_train_step`.
    train_data: an `advjax.data.Dataset` or `(images, labels)`.
    method: a `training.Method` or a preset's name (built with
      `step_kwargs`).
    epochs: passes over the data.
    batch_size: global batch size (divisible by the mesh's device count).
    seed: seeds init, data order and attack keys.
    workdir: checkpoint directory (None: no checkpoints).
    save_every: checkpoint period in steps (the end is always saved).
    keep: checkpoints kept.
    settings: JSON-able run description checked on resume.
    mesh: an `advjax.sharding` mesh (default: every local device).
    log_every: fetch metrics to the host every this many steps.
    progress: show a progress bar (loss, clean and adversarial accuracy).
    desc: the progress bar's label.
    init_variables: start from these model variables (`{'params', ...}`,
      e.g. a standard model's `state.variables`) instead of a fresh init:
      fine-tuning; the optimizer state starts fresh.
    epoch_checkpoints: also keep the state before the first epoch and at
      the end of every epoch in `workdir/epochs` (step = epochs done), for
      studies across the epochs of training; read them back with
      `restore_epoch`. Needs `workdir`.
    on_metrics: called as `on_metrics('step', step, metrics)` every
      `log_every` steps (the step's metrics as floats) and as
      `on_metrics('epoch', step, entry)` after each epoch (its history
      entry): a TensorBoard writer, say.
    **step_kwargs: the preset's keywords (eps, attack, sigma, ...), as
      `make_train_step`.

  Returns:
    `FitResult`.

  Warns:
    TrainingCollapseWarning: after an epoch that looks collapsed (clean
      accuracy at chance with a constant prediction or a flat loss).
  """
  method = methods.get(method, **step_kwargs)
  images, labels = ((train_data.images, train_data.labels)
                    if hasattr(train_data, "images") else train_data)
  images, labels = data.as_array(images), data.as_array(labels)
  mesh = mesh or sharding.make_mesh()
  sharding.check_batch_size(batch_size, mesh)
  steps_per_epoch = images.shape[0] // batch_size
  if steps_per_epoch == 0:
    raise ValueError(f"batch_size {batch_size} is larger than the "
                     f"{images.shape[0]} training examples.")
  total = epochs * steps_per_epoch
  state = create_train_state(model, optimizer, jax.random.key(seed),
                             images.shape[1:])
  if init_variables is not None:
    state = _with_variables(state, init_variables)
  if epoch_checkpoints and workdir is None:
    raise ValueError("fit: epoch_checkpoints=True needs a workdir.")
  ckpt, resumed_from = None, None
  if workdir is not None:
    ckpt = checkpoint.Checkpointer(
        workdir, save_every=save_every, keep=keep,
        settings={"method": method.name, "epochs": epochs,
                  "batch_size": batch_size, "seed": seed, **(settings or {})})
    if ckpt.latest_step is not None:
      state = ckpt.restore(state)
      resumed_from = int(state.step)
      _log.info("%s: " + ("resuming from step %d of %d (%s)"
                          if resumed_from < total else "trained already "
                          "(step %d of %d): reusing its checkpoint in %s"),
                desc, resumed_from, total, ckpt.directory)
  epochs_ckpt = _epoch_checkpointer(workdir) if epoch_checkpoints else None
  if epochs_ckpt is not None and epochs_ckpt.latest_step is None:
    epochs_ckpt.save(0, state, force=True)
  state = sharding.replicate(state, mesh)
  step_fn = sharding.jit_sharded(make_train_step(model, optimizer, method),
                                 mesh, num_batch_args=2)
  start = int(state.step)
  history = []
  num_classes = _num_classes(model, state, jax.ShapeDtypeStruct(
      (1,) + tuple(images.shape[1:]), images.dtype))
  bar = tqdm(total=total, initial=start, desc=desc, disable=not progress,
             dynamic_ncols=True)
  t_epoch = time.perf_counter()
  for epoch in range(start // steps_per_epoch, epochs):
    # Each process reads (with Records: from storage) only its own rows of
    # every global batch, a step ahead of the device.
    skip = max(start - epoch * steps_per_epoch, 0)
    batches = data.prefetch(data.iterate_batches(
        (images, labels), batch_size, shuffle=True, seed=seed, epoch=epoch,
        drop_remainder=True, rows=sharding.process_slice(batch_size),
        first=skip))
    logged = []  # the epoch's step metrics, on device (no host sync)
    for i, (xb, yb) in enumerate(batches, start=skip):
      t = epoch * steps_per_epoch + i
      xb, yb = sharding.shard_batch((xb, yb), mesh)
      state, metrics = step_fn(state, xb, yb)
      logged.append(metrics)
      if ckpt is not None:
        ckpt.save(t + 1, state)
      if (t + 1) % log_every == 0 or i == steps_per_epoch - 1:
        values = {k: float(v) for k, v in metrics.items()}
        if on_metrics is not None:
          on_metrics("step", t + 1, values)
        bar.set_postfix(epoch=epoch,
                        **{k: f"{v:.3f}" for k, v in values.items()})
        bar.update(t + 1 - bar.n)
    seconds = time.perf_counter() - t_epoch
    t_epoch = time.perf_counter()
    if epochs_ckpt is not None:
      epochs_ckpt.save(epoch + 1, state, force=True)
    if logged:
      n_steps = len(logged)
      means = {k: float(jnp.mean(jnp.stack([m[k] for m in logged])))
               for k in logged[0]}
      entry = {"epoch": epoch, "seconds": seconds,
               "images_per_second": n_steps * batch_size / seconds, **means}
      entry["collapsed"] = collapsed(entry, history[-1] if history else None,
                                     num_classes)
      if entry["collapsed"]:
        warnings.warn(_collapse_message(entry, history, num_classes),
                      TrainingCollapseWarning, stacklevel=2)
      history.append(entry)
      if on_metrics is not None:
        on_metrics("epoch", (epoch + 1) * steps_per_epoch, entry)
  bar.close()
  if ckpt is not None:
    if int(state.step) != (ckpt.latest_step or -1):
      ckpt.save(int(state.step), state, force=True)
    ckpt.wait()
    ckpt.close()
  if epochs_ckpt is not None:
    epochs_ckpt.wait()
    epochs_ckpt.close()
  return FitResult(state, history, resumed_from)


def _num_classes(model, state, x):
  out = jax.eval_shape(models.apply_fn(model), state.variables, x)
  return out.shape[-1]


def collapsed(epoch: Dict[str, Any], previous: Optional[Dict[str, Any]],
              num_classes: int) -> bool:
  """Whether an epoch of `fit`'s history looks like a collapsed run.

  Collapsed: the clean accuracy is at chance (within a tenth of the way
  from chance to 100 %: 19 % with 10 classes) and, against the previous
  epoch, the loss is flat (within 1 %), or the model predicts one class
  for nearly everything (over 90 % of its predictions) while the loss
  falls by under 5 %. The first epoch, with nothing to compare, and a run
  whose loss still falls are not flagged.
  """
  chance = 1. / max(num_classes, 1)
  if (previous is None or num_classes < 2
      or epoch.get("accuracy", 1.) > chance + 0.1 * (1. - chance)):
    return False
  change = (previous["loss"] - epoch["loss"]) / max(abs(previous["loss"]),
                                                   1e-12)
  return abs(change) <= 0.01 or (epoch.get("top_class_share", 0.) > 0.9
                                 and change < 0.05)


def _collapse_message(entry, history, num_classes):
  prev = f"{history[-1]['loss']:.4f} -> " if history else ""
  return (
      f"fit: epoch {entry['epoch']} looks collapsed: clean accuracy "
      f"{100 * entry['accuracy']:.1f} % is at chance ({num_classes} classes), "
      f"{100 * entry['top_class_share']:.0f} % of the predictions are one "
      f"class, loss {prev}{entry['loss']:.4f}. " + (
          "Ramp eps up from 0 (e.g. eps=optax.linear_schedule(0., eps, "
          "warmup_steps)) or lower the learning rate." if "eps" in entry
          else "Lower the learning rate, or check the labels and inputs."))


def _with_variables(state: TrainState, variables: Dict[str, Any]) -> TrainState:
  """`state` with its parameters and batch statistics replaced (shapes
  checked, so a checkpoint of another model is reported, not broadcast)."""
  params = variables["params"]
  want = jax.tree.map(lambda a: (a.shape, a.dtype), state.params)
  got = jax.tree.map(lambda a: (a.shape, a.dtype), params)
  if jax.tree.structure(want) != jax.tree.structure(got) or want != got:
    raise ValueError("fit: init_variables do not match the model (other "
                     "architecture or number of classes).")
  # Copies: the compiled step donates the state's buffers, which must not
  # delete the caller's arrays.
  copy = lambda tree: jax.tree.map(lambda a: jnp.array(a, copy=True), tree)
  return state._replace(params=copy(params),
                        batch_stats=copy(variables.get("batch_stats",
                                                       state.batch_stats)))


def _epoch_checkpointer(workdir: str) -> checkpoint.Checkpointer:
  return checkpoint.Checkpointer(os.path.join(workdir, "epochs"),
                                 save_every=1, keep=None)


def restore_epoch(workdir: str, like: TrainState, epoch: int) -> TrainState:
  """The state `fit(..., epoch_checkpoints=True)` kept after `epoch` epochs
  (0: before training), shaped like `like` (e.g. `create_train_state`).

  Raises:
    advjax.checkpoint.CheckpointError: that epoch was not kept (the run has
      not reached it, or was trained without `epoch_checkpoints`).
  """
  ckpt = _epoch_checkpointer(workdir)
  try:
    steps = ckpt.all_steps()
    if epoch not in steps:
      raise checkpoint.CheckpointError(
          f"No checkpoint of epoch {epoch} in {ckpt.directory} (kept: "
          f"{sorted(steps)}); train with epoch_checkpoints=True up to that "
          "epoch.")
    return ckpt.restore(like, step=epoch)
  finally:
    ckpt.close()


def kept_epochs(workdir: str) -> list:
  """The epochs `fit(..., epoch_checkpoints=True)` kept in `workdir`
  (ascending; [] when none)."""
  directory = os.path.join(workdir, "epochs", "checkpoints")
  if not os.path.isdir(directory):
    return []
  return sorted(int(n) for n in os.listdir(directory) if n.isdigit())


def epoch_variables(workdir: str, epoch: int) -> dict:
  """The model variables `fit(..., epoch_checkpoints=True)` kept after
  `epoch` epochs (0: before training), read without rebuilding the
  optimizer (`checkpoint.load_variables`).

  Raises:
    advjax.checkpoint.CheckpointError: that epoch was not kept.
  """
  kept = kept_epochs(workdir)
  if epoch not in kept:
    raise checkpoint.CheckpointError(
        f"No checkpoint of epoch {epoch} in {os.path.join(workdir, 'epochs')}"
        f" (kept: {kept}); train with epoch_checkpoints=True up to that "
        "epoch.")
  return checkpoint.load_variables(os.path.join(workdir, "epochs"), epoch)
