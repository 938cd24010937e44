"""The one batch iterator every evaluator uses, and the store that resumes it.

`map_examples` runs a per-example computation over a list of global example
indices, on every device of a `('data',)` mesh (and every process of a
multi-host run, each feeding only its own rows):

- the indices are cut into calls of `device_batch * mesh.size` rows; the
  last call is padded (with copies of its first row) and masked, so every
  example is counted and one compilation serves every call;
- each call is one jitted, sharded program whose per-device shape is always
  `[device_batch, ...]`. XLA's kernels (YNNPACK/Eigen dots and
  convolutions on CPU, cuBLAS/cuDNN on GPU) sum in an order that depends on
  the shape they are compiled for, so an example's result can differ in the
  last bits between batch sizes (measured: Wong's CNN, batch 40 vs 360 on
  CPU). With the per-device shape fixed, and every random draw made from
  the example's own key (`fold_in(key, global_index)`, see `advjax.rng`),
  an example's result is bit-identical for any `batch_size`, any number of
  devices or processes, any position in any call, and across restarts;
- `batch_size` is the number of examples per step: the unit of progress
  and of saving; it never changes a result.

`ResultStore` keeps per-example results of an evaluation in a workdir,
written atomically every few calls, with a manifest that identifies the
evaluation (model, data, settings); a restarted evaluation skips the
examples already done, and a workdir of another evaluation is an error.
"""
import functools
import hashlib
import json
import os
from typing import Any, Callable, Dict, Mapping, NamedTuple, Optional

import jax
import numpy as np
from tqdm import tqdm

from advjax import data as data_lib
from advjax import sharding

__all__ = ["DEFAULT_DEVICE_BATCH", "Plan", "make_plan", "map_examples",
           "map_batched",
           "jit_per_example", "ResultStore", "EvaluationMismatchError",
           "fingerprint_arrays", "fingerprint_tree", "as_data"]

# Examples per device per call: the shape every evaluator compiles for.
DEFAULT_DEVICE_BATCH = 64


class EvaluationMismatchError(ValueError):
  """A workdir holds results of a different evaluation."""


class Plan(NamedTuple):
  """How an evaluation is cut into calls.

  Attributes:
    mesh: the `('data',)` mesh the calls run on.
    device_batch: examples per device per call (the compiled shape).
    batch_size: examples per step (progress and saving granularity), a
      multiple of `call_size`.
  """
  mesh: Any
  device_batch: int
  batch_size: int

  @property
  def call_size(self) -> int:
    """Global rows of one call: `device_batch * number of devices`."""
    return self.device_batch * self.mesh.size


def make_plan(batch_size: int = 256, mesh=None,
              device_batch_size: Optional[int] = None) -> Plan:
  """A `Plan` over `mesh` (default: every device).

  `batch_size` is rounded up to a multiple of the call size.
  """
  if batch_size < 1:
    raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
  device_batch = int(device_batch_size or DEFAULT_DEVICE_BATCH)
  if device_batch < 1:
    raise ValueError(f"device_batch_size must be >= 1, got {device_batch}.")
  mesh = mesh if mesh is not None else sharding.make_mesh()
  call = device_batch * mesh.size
  return Plan(mesh, device_batch, -(-batch_size // call) * call)


def jit_per_example(fn: Callable, mesh) -> Callable:
  """`jax.jit(fn)` for `fn(consts, batch) -> outputs`: `consts` replicated,
  `batch` and every output sharded along their leading (example) axis."""
  return jax.jit(fn, in_shardings=(sharding.replicated(mesh),
                                   sharding.batch_sharding(mesh)),
                 out_shardings=sharding.batch_sharding(mesh))


def _to_host(tree):
  if jax.process_count() == 1:
    return jax.device_get(tree)
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  return multihost_utils.process_allgather(tree, tiled=True)


def map_examples(fn: Callable, consts: Any, arrays: Mapping[str, np.ndarray],
                 index: np.ndarray, plan: Plan, *,
                 on_step: Optional[Callable[[np.ndarray, Dict[str, np.ndarray]],
                                            None]] = None,
                 bar: Optional[tqdm] = None) -> Dict[str, np.ndarray]:
  """Runs a jitted per-example `fn` over the examples `index`.

  Args:
    fn: from `jit_per_example`: `fn(consts, batch) -> {name: [rows, ...]}`.
      `batch` holds the rows of `arrays` plus `'index'` (int32 global
      indices) and `'mask'` (False on padding rows).
    consts: replicated inputs (variables, eps, key), already placed with
      `sharding.replicate` (or host values, placed on every call).
    arrays: host arrays `[N, ...]` indexed by the global indices, or
      `data.Records` read on access; each process gathers only its own
      rows (with `Records`, reads only them).
    index: `[n]` global indices to process, in order.
    plan: see `make_plan`.
    on_step: called after every step with the step's indices and its
      outputs (host arrays), e.g. to save them.
    bar: a progress bar advanced by the examples done.

  Returns:
    `{name: [n, ...]}` outputs, in the order of `index`.
  """
  index = np.asarray(index, np.int64)
  call = plan.call_size
  local = sharding.process_slice(call)
  outputs = []
  for step_start in range(0, index.shape[0], plan.batch_size):
    step_index = index[step_start:step_start + plan.batch_size]
    pending = []
    for s in range(0, step_index.shape[0], call):
      rows = step_index[s:s + call]
      n = rows.shape[0]
      mask = np.arange(call) < n
      rows = np.concatenate([rows, np.full((call - n,), rows[0], np.int64)])
      mine = rows[local]
      batch = {k: data_lib.as_array(v)[mine] for k, v in arrays.items()}
      batch["index"] = mine.astype(np.int32)
      batch["mask"] = mask[local]
      pending.append((n, fn(consts, sharding.shard_batch(batch, plan.mesh))))
    host = [(n, _to_host(out)) for n, out in pending]
    step_out = {k: np.concatenate([o[k][:n] for n, o in host])
                for k in host[0][1]}
    if on_step is not None:
      on_step(step_index, step_out)
    outputs.append(step_out)
    if bar is not None:
      bar.update(step_index.shape[0])
  if not outputs:
    return {}
  return {k: np.concatenate([o[k] for o in outputs]) for k in outputs[0]}


@functools.lru_cache(maxsize=256)
def _batched_program(fn: Callable, per_example: bool, with_key: bool, mesh):
  """The jitted, sharded program of `map_batched` for one `fn`, kept so
  that calling `map_batched` again with the same `fn` does not retrace.
  Returns `(program, jitted program, cell)`: the cell receives the
  output's tree structure when the program is traced."""
  cell = {}

  def program(consts, batch):
    user_consts, key = consts
    if with_key:
      batch = {**batch, "key": jax.vmap(
          lambda i: jax.random.fold_in(key, i))(batch["index"])}
    out = (jax.vmap(fn, in_axes=(None, 0))(user_consts, batch) if per_example
           else fn(user_consts, batch))
    leaves, cell["treedef"] = jax.tree.flatten(out)
    return {f"{i:04d}": leaf for i, leaf in enumerate(leaves)}

  return program, jit_per_example(program, mesh), cell


def map_batched(fn: Callable, arrays: Mapping[str, Any], consts: Any = None,
                *, key=None, per_example: bool = False, batch_size: int = 256,
                mesh=None, device_batch_size: Optional[int] = None,
                index: Optional[np.ndarray] = None, progress: bool = False,
                desc: str = "") -> Any:
  """Applies `fn` to every example of `arrays`: padded, masked, sharded
  over every device and process, with per-example keys.

  This is the one way advjax maps a computation over a dataset (the
  evaluators, the analyses and the benchmark configs all use it): the
  examples are cut into calls of a fixed shape (`device_batch_size` rows
  per device; the last call padded with copies of a real row and
  masked), so one compilation serves every call and an example's result
  does not depend on `batch_size`, the number of devices or processes,
  or its position (`map_examples`).

  Args:
    fn: `fn(consts, batch) -> outputs`, jittable. `batch` is a dict of the
      rows of `arrays` (`[b, ...]`) plus `'index'` (`[b]` int32 global
      indices), `'mask'` (`[b]` bool, False on padding rows) and, when
      `key` is given, `'key'` (`[b]` keys, `fold_in(key, index)`).
      `outputs`: any pytree of `[b, ...]` arrays. With `per_example`,
      `fn` sees one example (rows without the leading axis, a scalar
      index and key) and is vmapped. Keep `fn` one object across calls
      (a module-level function; the variables in `consts`): the compiled
      program is cached per `fn`.
    arrays: name -> `[N, ...]` host arrays (or `data.Records`).
    consts: a pytree replicated on every device (variables, eps).
    key: a `jax.random.key`, folded with each example's global index.
    per_example: vmap `fn` over the examples of a call.
    batch_size: examples per step (progress granularity; never changes a
      result).
    mesh: the `('data',)` mesh (default: every device).
    device_batch_size: rows per device per call (the compiled shape;
      default `DEFAULT_DEVICE_BATCH`).
    index: `[n]` the global indices to process (default: all, in order).
    progress: show a progress bar named `desc`.

  Returns:
    `outputs` with `[n, ...]` host (numpy) leaves, in the order of
    `index`.

  Raises:
    ValueError: arrays of different lengths, or none.
  """
  if not arrays:
    raise ValueError("map_batched: no arrays to map over.")
  sizes = {k: int(np.shape(v)[0]) if not hasattr(v, "shape") else
           int(v.shape[0]) for k, v in arrays.items()}
  if len(set(sizes.values())) != 1:
    raise ValueError(f"map_batched: arrays of different lengths {sizes}; "
                     "every array must have one row per example.")
  n = next(iter(sizes.values()))
  index = np.arange(n) if index is None else np.asarray(index, np.int64)
  if index.size and (index.min() < 0 or index.max() >= n):
    raise ValueError(f"map_batched: index outside [0, {n}).")
  plan = make_plan(batch_size, mesh, device_batch_size)
  raw, program, cell = _batched_program(fn, bool(per_example),
                                        key is not None, plan.mesh)
  if key is None:
    key = jax.random.key(0)  # unused: keeps the consts' structure fixed
  if not index.size:  # nothing to map: empty outputs of the right shapes
    batch = {k: data_lib.as_array(v)[:0] for k, v in arrays.items()}
    batch.update(index=np.zeros((0,), np.int32), mask=np.zeros((0,), bool))
    shapes = jax.eval_shape(raw, (consts, key), batch)
    return jax.tree.unflatten(cell["treedef"], [
        np.zeros(shapes[k].shape, shapes[k].dtype) for k in sorted(shapes)])
  bar = tqdm(total=index.shape[0], desc=desc, disable=not progress,
             leave=False, dynamic_ncols=True)
  try:
    out = map_examples(program, sharding.replicate((consts, key), plan.mesh),
                       arrays, index, plan, bar=bar)
  finally:
    bar.close()
  leaves = [out[k] for k in sorted(out)]
  return jax.tree.unflatten(cell["treedef"], leaves)


def fingerprint_arrays(*arrays) -> str:
  """A short hash of arrays' shapes, dtypes and values."""
  h = hashlib.sha256()
  for a in arrays:
    if hasattr(a, "fingerprint"):  # data.Records: the stored files, unread
      h.update(a.fingerprint.encode())
      continue
    a = np.ascontiguousarray(np.asarray(a))
    h.update(f"{a.shape}{a.dtype}".encode())
    h.update(a.tobytes())
  return h.hexdigest()[:16]


def fingerprint_tree(tree) -> str:
  """A short hash of every leaf of a pytree (e.g. model variables)."""
  leaves = jax.tree.leaves(jax.device_get(tree))
  return fingerprint_arrays(*leaves)


class ResultStore:
  """Per-example results of one evaluation, saved as they are computed.

  `workdir/manifest.json` identifies the evaluation (`fingerprint`: the
  model's and the data's hashes, the evaluator's settings); a workdir
  whose manifest differs raises `EvaluationMismatchError`. Results are
  `workdir/<stage>/part-NNNNNN.npz` files, each written to a temporary
  file and renamed (a run killed mid-write leaves no partial part). Only
  process 0 writes; in multi-host runs the workdir must be on a filesystem
  every process reads.

  Args:
    workdir: the directory (created if missing).
    fingerprint: JSON-able description of the evaluation.
  """

  def __init__(self, workdir: str, fingerprint: Mapping[str, Any]):
    self.workdir = os.path.abspath(workdir)
    self.fingerprint = json.loads(json.dumps(dict(fingerprint)))
    os.makedirs(self.workdir, exist_ok=True)
    path = os.path.join(self.workdir, "manifest.json")
    if os.path.exists(path):
      try:
        with open(path) as f:
          saved = json.load(f)
      except (OSError, ValueError) as e:
        raise EvaluationMismatchError(
            f"{path} is unreadable ({e}): the workdir is corrupt; delete it "
            "or use another workdir.") from e
      diff = {k: (saved.get(k), v) for k, v in self.fingerprint.items()
              if saved.get(k) != v}
      if diff:
        lines = "; ".join(f"{k}: saved {a!r}, now {b!r}"
                          for k, (a, b) in sorted(diff.items()))
        raise EvaluationMismatchError(
            f"{self.workdir} holds the results of a different evaluation "
            f"({lines}). Use another workdir, or delete this one to start "
            "over.")
    elif jax.process_index() == 0:
      self._atomic_write(path, json.dumps(self.fingerprint, indent=1,
                                          sort_keys=True).encode())

  @staticmethod
  def _atomic_write(path: str, payload: bytes) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
      f.write(payload)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)

  def _dir(self, stage: str) -> str:
    return os.path.join(self.workdir, stage)

  def load(self, stage: str) -> Optional[Dict[str, np.ndarray]]:
    """Every part saved for `stage`, concatenated; None if there is none."""
    d = self._dir(stage)
    if not os.path.isdir(d):
      return None
    names = sorted(n for n in os.listdir(d)
                   if n.startswith("part-") and n.endswith(".npz"))
    parts = []
    for n in names:
      try:
        with np.load(os.path.join(d, n)) as z:
          parts.append({k: z[k] for k in z.files})
      except Exception as e:  # zipfile/numpy raise several types.
        raise EvaluationMismatchError(
            f"{os.path.join(d, n)} is corrupt ({type(e).__name__}: {e}); "
            "delete that file to recompute its examples.") from e
    if not parts:
      return None
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

  def save(self, stage: str, arrays: Mapping[str, np.ndarray]) -> None:
    """Appends one part of `stage` (process 0 only)."""
    if jax.process_index() != 0:
      return
    d = self._dir(stage)
    os.makedirs(d, exist_ok=True)
    count = len([n for n in os.listdir(d) if n.startswith("part-")
                 and n.endswith(".npz")])
    path = os.path.join(d, f"part-{count:06d}.npz")
    tmp = f"{path}.tmp-{os.getpid()}.npz"
    np.savez(tmp, **{k: np.asarray(v) for k, v in arrays.items()})
    with open(tmp, "rb") as f:
      os.fsync(f.fileno())
    os.replace(tmp, path)

  def mark_done(self, stage: str, **info) -> None:
    """Records that `stage` is complete (with JSON-able `info`)."""
    if jax.process_index() != 0:
      return
    os.makedirs(self._dir(stage), exist_ok=True)
    self._atomic_write(os.path.join(self._dir(stage), "done.json"),
                       json.dumps(info).encode())

  def done(self, stage: str) -> Optional[dict]:
    """The info of a completed stage, or None."""
    path = os.path.join(self._dir(stage), "done.json")
    if not os.path.exists(path):
      return None
    with open(path) as f:
      return json.load(f)


def as_data(data, lazy: bool = False) -> tuple:
  """`(x, y)` host arrays from a `Dataset` (images, labels) or a pair.

  With `lazy`, `data.Records` (`data.load(..., lazy=True)`) are kept as they
  are, for evaluators that read only their own rows (`map_examples`)."""
  if hasattr(data, "images") and hasattr(data, "labels"):
    x, y = data.images, data.labels
  else:
    x, y = data
  convert = data_lib.as_array if lazy else np.asarray
  return convert(x), convert(y)
