"""One program, any number of devices: a ('data',) mesh, sharded batches.

The training state is replicated, batches are sharded along their leading
axis over every device of the mesh, and steps are compiled with `jax.jit`
and explicit shardings (GSPMD inserts the gradient all-reduce). Multi-host
runs (TPU pods, GPU clusters) call `initialize_distributed()` first; each
process then loads only its slice of every global batch (`process_slice`),
and `shard_batch` assembles the global array. No `pmap`.
"""
import os
import sys
from typing import Any, Callable, Optional, Sequence

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

__all__ = [
    "DATA_AXIS", "make_mesh", "batch_sharding", "replicated", "shard_batch",
    "replicate", "jit_sharded", "initialize_distributed", "process_slice",
    "check_batch_size", "split_host_cpu",
]

DATA_AXIS = "data"


def make_mesh(devices: Optional[Sequence[jax.Device]] = None) -> Mesh:
  """A 1-D `('data',)` mesh over `devices` (default: every device)."""
  devices = list(jax.devices() if devices is None else devices)
  return jax.make_mesh((len(devices),), (DATA_AXIS,),
                       axis_types=(AxisType.Auto,), devices=devices)


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (batch) axis split over the 'data' axis."""
  return NamedSharding(mesh, P(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
  """A full copy on every device."""
  return NamedSharding(mesh, P())


def check_batch_size(global_batch: int, mesh: Mesh) -> None:
  """Raises a clear error if the global batch does not split evenly."""
  n = mesh.size
  if global_batch % n:
    lower = (global_batch // n) * n
    raise ValueError(
        f"The global batch size {global_batch} is not divisible by the {n} "
        f"devices of the mesh; use a multiple of {n} (e.g. {max(lower, n)} or "
        f"{lower + n}).")


def shard_batch(batch: Any, mesh: Mesh) -> Any:
  """Places a host batch (pytree of arrays, leading axis = batch) on the mesh.

  Single process: the arrays are the global batch. Multi-process: each
  process passes its local slice and the global array is assembled.
  """
  sharding = batch_sharding(mesh)

  def put(a):
    a = np.asarray(a)
    check_batch_size(a.shape[0] * jax.process_count(), mesh)
    if jax.process_count() == 1:
      return jax.device_put(a, sharding)
    return jax.make_array_from_process_local_data(sharding, a)

  return jax.tree.map(put, batch)


def replicate(tree: Any, mesh: Mesh) -> Any:
  """Places every leaf of `tree` on every device of the mesh.

  Multi-process: every process passes the same host values and each
  places them on its own devices (`device_put` cannot reach another
  process's devices); typed PRNG keys travel as their key data.
  """
  sharding = replicated(mesh)
  if jax.process_count() == 1:
    return jax.device_put(tree, sharding)

  def put(a):
    if isinstance(a, jax.Array) and not a.is_fully_addressable:
      return a  # already a global array
    if isinstance(a, jax.Array) and jax.dtypes.issubdtype(
        a.dtype, jax.dtypes.prng_key):
      return jax.random.wrap_key_data(put(jax.random.key_data(a)),
                                      impl=jax.random.key_impl(a))
    a = np.asarray(a)
    return jax.make_array_from_callback(a.shape, sharding, lambda i: a[i])

  return jax.tree.map(put, tree)


def jit_sharded(step: Callable, mesh: Mesh, *, donate_state: bool = True,
                num_batch_args: int = 1) -> Callable:
  """`jax.jit(step)` for `step(state, *batch) -> (state, metrics)`.

  The state (first argument) is replicated in and out (and donated), the
  batch arguments are sharded on 'data', the metrics replicated.
  """
  rep, data = replicated(mesh), batch_sharding(mesh)
  return jax.jit(step, in_shardings=(rep,) + (data,) * num_batch_args,
                 out_shardings=(rep, rep),
                 donate_argnums=(0,) if donate_state else ())


def split_host_cpu(argv: Optional[Sequence[str]] = None,
                   skip_flag: str = "--no-split-cpu") -> bool:
  """Splits a CPU-only host into one XLA device per core, so a benchmark
  runs on every core the way it runs on every GPU of a multi-GPU host.

  Adds `--xla_force_host_platform_device_count=<cores>` to XLA_FLAGS. It
  only takes effect before JAX starts its backend (the first array or
  device query), so call it at the top of a benchmark module; results of
  `map_batched` and the evaluators do not depend on the device count.

  Args:
    argv: the command line (default `sys.argv`).
    skip_flag: leave XLA_FLAGS alone when this flag is in `argv`.

  Returns:
    Whether XLA_FLAGS was changed (not when it sets a count already or
    `skip_flag` is given).
  """
  argv = sys.argv if argv is None else argv
  flags = os.environ.get("XLA_FLAGS", "")
  if "xla_force_host_platform_device_count" in flags or skip_flag in argv:
    return False
  os.environ["XLA_FLAGS"] = (f"{flags} --xla_force_host_platform_device_"
                             f"count={os.cpu_count() or 1}").strip()
  return True


def initialize_distributed(enabled: bool, **kwargs) -> None:
  """`jax.distributed.initialize(**kwargs)` when `enabled` (multi-host runs).

  On TPU pods and SLURM/Open MPI clusters the arguments are discovered from
  the environment; elsewhere pass coordinator_address, num_processes and
  process_id.
  """
  if enabled:
    jax.distributed.initialize(**kwargs)


def process_slice(global_batch: int) -> slice:
  """This process's rows of every global batch (its local data slice)."""
  n, i = jax.process_count(), jax.process_index()
  if global_batch % n:
    raise ValueError(f"The global batch size {global_batch} is not divisible "
                     f"by the {n} processes.")
  per = global_batch // n
  return slice(i * per, (i + 1) * per)
