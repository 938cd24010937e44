"""Checkpoints with orbax: periodic saves, keep-last-N, exact resume.

A run's `workdir` holds orbax step directories and `run.json`, the settings
the run was started with. Resuming compares them with the new settings, so a
different model or optimizer is reported instead of silently mis-restored;
a checkpoint that cannot be read raises `CheckpointError`, never a silent
restart from scratch.
"""
import json
import os
from typing import Any, Mapping, Optional

import jax
import orbax.checkpoint as ocp

__all__ = ["CheckpointError", "Checkpointer", "load_variables", "run_settings"]


class CheckpointError(RuntimeError):
  """A checkpoint that is corrupt or does not match the run."""


class Checkpointer:
  """Saves and restores a training state pytree in `directory`.

  Args:
    directory: the run's workdir (created if missing).
    save_every: save when `step % save_every == 0` (and when forced).
    keep: number of most recent checkpoints kept (None: all).
    settings: JSON-able run settings; stored on first use and compared on
      resume (keys that differ raise `CheckpointError`).
  """

  def __init__(self, directory: str, *, save_every: int = 100, keep: Optional[int] = 3,
               settings: Optional[Mapping[str, Any]] = None):
    self.directory = os.path.abspath(directory)
    os.makedirs(self.directory, exist_ok=True)
    self._check_settings(dict(settings or {}))
    options = ocp.CheckpointManagerOptions(
        save_interval_steps=save_every, max_to_keep=keep, create=True,
        enable_async_checkpointing=False)
    try:
      self._manager = ocp.CheckpointManager(
          os.path.join(self.directory, "checkpoints"), options=options)
    except Exception as e:  # orbax raises many types for unreadable dirs.
      raise CheckpointError(
          f"Cannot open the checkpoints in {self.directory}: {e}. Use a new "
          "--workdir or delete this one.") from e

  def _check_settings(self, settings):
    path = os.path.join(self.directory, "run.json")
    if os.path.exists(path):
      try:
        with open(path) as f:
          saved = json.load(f)
      except (OSError, ValueError) as e:
        raise CheckpointError(f"{path} is unreadable ({e}); the workdir is "
                              "corrupt: use a new --workdir.") from e
      diff = {k: (saved.get(k), v) for k, v in settings.items()
              if k in saved and saved[k] != v}
      if diff:
        lines = ", ".join(f"{k}: saved {a!r} vs now {b!r}"
                          for k, (a, b) in diff.items())
        raise CheckpointError(
            f"The workdir {self.directory} holds a run with other settings "
            f"({lines}). Resume with the same settings, or use a new "
            "--workdir.")
    else:
      with open(path, "w") as f:
        json.dump(settings, f, indent=2, sort_keys=True, default=str)

  @property
  def latest_step(self) -> Optional[int]:
    return self._manager.latest_step()

  def all_steps(self) -> list:
    """The steps of the checkpoints kept, ascending."""
    return sorted(self._manager.all_steps())

  def save(self, step: int, state: Any, *, force: bool = False) -> bool:
    """Saves `state` at `step` if due (or forced); returns whether it saved."""
    return self._manager.save(step, args=ocp.args.StandardSave(state),
                              force=force)

  def restore(self, like: Any, step: Optional[int] = None) -> Any:
    """Restores the checkpoint at `step` (default latest) shaped like `like`.

    Raises:
      CheckpointError: nothing to restore, or the checkpoint is corrupt or
        does not match `like` (other model, optimizer or shapes).
    """
    step = self.latest_step if step is None else step
    if step is None:
      raise CheckpointError(f"No checkpoint in {self.directory}.")
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
    try:
      restored = self._manager.restore(
          step, args=ocp.args.StandardRestore(abstract))
    except Exception as e:  # orbax/tensorstore raise many types here.
      raise CheckpointError(
          f"Checkpoint step {step} in {self.directory} cannot be restored: "
          f"{type(e).__name__}: {e}. It is corrupt or was written by another "
          f"model/optimizer. Delete {os.path.join(self.directory, 'checkpoints', str(step))} "
          "to resume from an earlier one, or use a new --workdir.") from e
    got = jax.tree.structure(restored)
    want = jax.tree.structure(like)
    if got != want:
      raise CheckpointError(
          f"Checkpoint step {step} in {self.directory} has another structure "
          f"than this run's state ({got} vs {want}); use a new --workdir.")
    for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(like)):
      if a.shape != b.shape or a.dtype != b.dtype:
        raise CheckpointError(
            f"Checkpoint step {step} in {self.directory} holds an array "
            f"{a.shape} {a.dtype} where the run has {b.shape} {b.dtype}; "
            "use a new --workdir.")
    return restored

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.close()


def run_settings(workdir: str) -> dict:
  """The settings a training run in `workdir` was started with (its
  `run.json`), or {} if it has none."""
  path = os.path.join(os.path.abspath(workdir), "run.json")
  if not os.path.exists(path):
    return {}
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError) as e:
    raise CheckpointError(f"{path} is unreadable ({e}).") from e


def load_variables(workdir: str, step: Optional[int] = None) -> dict:
  """The model variables (`params`, `batch_stats` if any) of a training
  run's checkpoint, without rebuilding its optimizer.

  Args:
    workdir: a `training.fit` workdir (holds `checkpoints/`).
    step: the checkpoint step (default: the latest).

  Returns:
    `{'params': ..., 'batch_stats': ...}` host arrays, ready for
    `model.apply`.

  Raises:
    CheckpointError: no checkpoint there, or it cannot be read.
  """
  directory = os.path.join(os.path.abspath(workdir), "checkpoints")
  if not os.path.isdir(directory):
    raise CheckpointError(
        f"No training checkpoints in {os.path.abspath(workdir)} (expected "
        f"{directory}, written by advjax.training.fit(workdir=...)).")
  try:
    manager = ocp.CheckpointManager(
        directory, item_handlers=ocp.StandardCheckpointHandler())
    step = manager.latest_step() if step is None else step
    if step is None:
      raise CheckpointError(f"No checkpoint in {directory}.")
    # Restored onto this process's first device, whatever mesh or process
    # layout wrote it (a target from the saved shapes: without one orbax
    # refuses a checkpoint written under another topology).
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    target = jax.tree.map(
        lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
        manager.item_metadata(step))
    state = manager.restore(step, args=ocp.args.StandardRestore(target))
  except CheckpointError:
    raise
  except Exception as e:  # orbax/tensorstore raise many types here.
    raise CheckpointError(
        f"The checkpoint at step {step} in {directory} cannot be read: "
        f"{type(e).__name__}: {e}.") from e
  if not isinstance(state, dict) or "params" not in state:
    raise CheckpointError(f"{directory} step {step} is not an advjax training "
                          "state (no 'params').")
  variables = {"params": state["params"]}
  if state.get("batch_stats"):
    variables["batch_stats"] = state["batch_stats"]
  return jax.device_get(variables)
