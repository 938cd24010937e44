"""Robust accuracy over an eps sweep: one compiled function, every example counted.

The dataset goes through the shared iterator (`batching.map_examples`):
fixed calls of `device_batch` examples per device, the last one padded and
masked, sharded over every device (and process). Inside one call the eps of
the sweep are attacked in turn by `lax.map` (eps is a traced input, so any
sweep reuses the compilation; memory is one call's examples, or
`eps_per_call` times that when several eps are attacked at once). Each
example's attack key is `fold_in(fold_in(key, j), global_index)` for the
sweep's j-th eps, so the per-example result does not depend on the batch
size, the devices or an interruption (with `workdir`).
"""
import functools
import warnings
from typing import Any, Callable, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from tqdm import tqdm

from advjax import checks, rng, sharding
from advjax.attacks import base
from advjax.evaluation import batching
from advjax.evaluation.predict import (ProbabilityOutputsWarning,
                                      probability_rows, probability_warning)
from advjax.types import Array, PRNGKey

__all__ = ["RobustAccuracy", "make_robust_accuracy_fn", "robust_accuracy",
           "in_top_k",
           "pad_batch", "describe_attack", "RobustAccuracyEvaluator"]

ApplyFn = Callable[[Any, Array], Array]  # (variables, x) -> logits


class RobustAccuracy(NamedTuple):
  """Robust accuracy of a model over an eps sweep.

  Attributes:
    eps: `[E]` the budgets.
    accuracy: `[E]` fraction of examples still correctly classified.
    clean_accuracy: accuracy on the clean inputs.
    correct: `[E, N]` bool, per example and eps.
    clean_correct: `[N]` bool.
    top_k: the k of the top-k results (`()` when none were asked for).
    correct_topk: `[E, N, len(top_k)]` bool: the true label among the k
      largest logits of the adversarial input (`[E, N, 0]` without top_k).
    clean_correct_topk: `[N, len(top_k)]` bool, on the clean inputs.
    target_topk: `[E, N, len(top_k)]` bool: for a targeted evaluation, the
      target among the k largest logits (None when untargeted).
  """
  eps: np.ndarray
  accuracy: np.ndarray
  clean_accuracy: float
  correct: np.ndarray
  clean_correct: np.ndarray
  top_k: tuple = ()
  correct_topk: Optional[np.ndarray] = None
  clean_correct_topk: Optional[np.ndarray] = None
  target_topk: Optional[np.ndarray] = None

  @property
  def accuracy_topk(self) -> np.ndarray:
    """`[E, len(top_k)]` top-k accuracy per eps."""
    return self.correct_topk.mean(axis=1)

  @property
  def clean_accuracy_topk(self) -> np.ndarray:
    """`[len(top_k)]` top-k accuracy on the clean inputs."""
    return self.clean_correct_topk.mean(axis=0)

  @property
  def target_success_topk(self) -> Optional[np.ndarray]:
    """`[E, len(top_k)]`: fraction of examples whose target is in the top
    k (None when untargeted)."""
    return None if self.target_topk is None else self.target_topk.mean(1)

  def summary(self) -> dict:
    """The numbers a report needs (no per-example arrays): eps, accuracy
    per eps, clean accuracy, and the top-k ones when asked for."""
    out = {"eps": np.asarray(self.eps).tolist(),
           "accuracy": np.asarray(self.accuracy).tolist(),
           "clean_accuracy": float(self.clean_accuracy)}
    if self.top_k:
      out.update(top_k=list(self.top_k),
                 accuracy_topk=self.accuracy_topk.tolist(),
                 clean_accuracy_topk=self.clean_accuracy_topk.tolist())
      if self.target_topk is not None:
        out["target_success_topk"] = self.target_success_topk.tolist()
    return out

  def table(self) -> str:
    """A markdown table eps | robust accuracy (| top-k ... when asked)."""
    ks = [f" top-{k} |" for k in self.top_k]
    head = "| eps | accuracy |" + "".join(ks)
    rule = "|---:|---:|" + "---:|" * len(ks)
    clean = "".join(f" {100 * a:.2f} % |" for a in (
        self.clean_accuracy_topk if self.top_k else ()))
    rows = [head, rule, f"| clean | {100 * self.clean_accuracy:.2f} % |"
            + clean]
    for j, (e, a) in enumerate(zip(self.eps, self.accuracy)):
      tk = "".join(f" {100 * v:.2f} % |" for v in (
          self.accuracy_topk[j] if self.top_k else ()))
      rows.append(f"| {e:.4g} | {100 * a:.2f} % |" + tk)
    return "\n".join(rows)


def pad_batch(x: np.ndarray, y: np.ndarray, batch_size: int):
  """Pads `(x, y)` to `batch_size` rows; returns `(x, y, mask)`."""
  n = x.shape[0]
  mask = np.zeros((batch_size,), bool)
  mask[:n] = True
  if n == batch_size:
    return x, y, mask
  pad = batch_size - n
  x = np.concatenate([x, np.repeat(x[:1], pad, axis=0)])
  y = np.concatenate([y, np.repeat(y[:1], pad, axis=0)])
  return x, y, mask


class _Compiled:
  """A per-call function and its jitted, sharded versions (one per mesh)."""

  def __init__(self, fn: Callable):
    self.fn = fn
    self._jitted = {}

  def jit(self, mesh) -> Callable:
    k = (tuple(d.id for d in mesh.devices.flat), mesh.axis_names)
    if k not in self._jitted:
      self._jitted[k] = batching.jit_per_example(self.fn, mesh)
    return self._jitted[k]


def in_top_k(logits: Array, labels: Array, top_k: Sequence[int]) -> Array:
  """`[B, len(top_k)]` bool: `labels` among the k largest `logits` (fewer
  than k logits strictly larger; a tie counts for the label)."""
  own = jnp.take_along_axis(logits, labels[:, None], axis=-1)
  rank = jnp.sum(logits > own, axis=-1)
  return rank[:, None] < jnp.asarray(tuple(top_k), jnp.int32)[None]


def make_robust_accuracy_fn(apply_fn: ApplyFn, attack: Callable,
                            eps_per_call: int = 1,
                            top_k: Sequence[int] = (),
                            targeted: bool = False) -> _Compiled:
  """The per-call evaluation of `attack` over an eps sweep, to reuse its
  compilation across `robust_accuracy` calls (`compiled=`).

  Args:
    apply_fn: `(variables, x [B, ...]) -> logits [B, K]`, inference mode.
    attack: `attack(model_fn, x, y, *, eps, [key]) -> x_adv` with every other
      hyperparameter fixed (e.g. `functools.partial(pgd, steps=40)`); `key`
      is `[B]` per-example keys.
    eps_per_call: eps attacked at once (vmapped) in each step of the sweep.
    top_k: also report whether the label is among the k largest logits.
    targeted: the batch holds targets `t`, which the attack receives as its
      labels (an attack with `targeted=True`); accuracy is still against
      the true labels `y`, and `target_topk` says whether `t` was reached.

  Returns:
    An object whose `.fn(consts, batch)` maps `consts = (variables, eps [E],
    eps_index [E], key)` and a batch (`x`, `y`, [`t`], `index`, `mask`) to
    `{'clean': [B], 'correct': [B, E], 'probabilities': [B]}` (the clean
    output looks like probabilities: `probability_rows`), plus `clean_topk`
    `[B, K]`, `correct_topk` `[B, E, K]` (and `target_topk`) with `top_k`
    (padding rows False).
  """
  top_k = tuple(int(k) for k in top_k)

  def batch_fn(consts, batch):
    variables, eps, eps_index, key = consts
    x, y, mask = batch["x"], batch["y"], batch["mask"]
    labels = batch["t"] if targeted else y
    model_fn = lambda z: apply_fn(variables, z)
    logits = model_fn(x)
    out = {"clean": (jnp.argmax(logits, axis=-1) == y) & mask,
           "probabilities": probability_rows(logits)}
    if top_k:
      out["clean_topk"] = in_top_k(logits, y, top_k) & mask[:, None]

    def one_eps(args):
      e, j = args
      keys = rng.example_keys(jax.random.fold_in(key, j), batch["index"])
      x_adv = base.call_attack(attack, model_fn, x, labels, eps=e, key=keys)
      adv_logits = model_fn(x_adv)
      res = {"correct": jnp.argmax(adv_logits, axis=-1) == y}
      if top_k:
        res["correct_topk"] = in_top_k(adv_logits, y, top_k)
        if targeted:
          res["target_topk"] = in_top_k(adv_logits, labels, top_k)
      return res

    per_eps = lax.map(one_eps, (eps, eps_index),
                      batch_size=eps_per_call if eps_per_call > 1 else None)
    out["correct"] = per_eps["correct"].T & mask[:, None]
    for name in ("correct_topk", "target_topk"):
      if name in per_eps:  # [E, B, K] -> [B, E, K]
        out[name] = per_eps[name].transpose(1, 0, 2) & mask[:, None, None]
    return out

  return _Compiled(batch_fn)


def describe_attack(attack: Callable) -> str:
  """A stable description of an attack (function and fixed keywords), for
  the manifest of a resumable evaluation."""
  if isinstance(attack, functools.partial):
    kw = ", ".join(f"{k}={v!r}" for k, v in sorted(attack.keywords.items()))
    return f"{describe_attack(attack.func)}({kw})"
  return f"{getattr(attack, '__module__', '')}." \
         f"{getattr(attack, '__qualname__', type(attack).__name__)}"


def robust_accuracy(apply_fn: ApplyFn, variables, x, y, *, attack: Callable,
                    eps: Sequence[float], batch_size: int = 256,
                    key: Optional[PRNGKey] = None, progress: bool = False,
                    compiled: Optional[_Compiled] = None,
                    eps_per_call: int = 1, mesh=None,
                    device_batch_size: Optional[int] = None,
                    workdir: Optional[str] = None,
                    save_every: int = 1, top_k: Sequence[int] = (),
                    targets=None) -> RobustAccuracy:
  """Clean and robust accuracy of a model under `attack` at every eps.

  Every example is counted (the last call is padded and masked), every
  device of `mesh` is used, and each example's result depends only on the
  example, its global index, `key`, eps and `device_batch_size`: it is
  bit-identical for any `batch_size` and any number of devices.

  Args:
    apply_fn: `(variables, x) -> logits`, inference mode (batch norm frozen).
    variables: the model's variables.
    x: `[N, ...]` float inputs inside the attack's bounds.
    y: `[N]` int labels.
    attack: `attack(model_fn, x, y, *, eps, [key])` (hyperparameters fixed
      with functools.partial); it receives `[B]` per-example keys.
    eps: the sweep, a sequence of budgets >= 0.
    batch_size: examples per step (progress and saving; not the compiled
      shape, see `device_batch_size`).
    key: `jax.random.key`; default `key(0)`.
    progress: show a progress bar over examples.
    compiled: from `make_robust_accuracy_fn(apply_fn, attack)`, to reuse
      its compilation across calls.
    eps_per_call: eps attacked at once (vmapped); memory grows with it.
      Part of the compiled shape, so results depend on it (as on
      `device_batch_size`).
    mesh: the `('data',)` mesh (default: every device).
    device_batch_size: examples per device per call (default
      `batching.DEFAULT_DEVICE_BATCH`).
    workdir: save per-example results there every `save_every` steps and
      resume from them.
    save_every: steps between saves.
    top_k: also the top-k accuracy for each k (e.g. `(1, 5)` on
      ImageNet), clean and per eps (`correct_topk`).
    targets: `[N]` int target labels for a targeted attack (one built with
      `targeted=True`): the attack receives them, accuracy is against `y`,
      and with `top_k` `target_topk` records whether each target was
      reached.

  Returns:
    `RobustAccuracy`.

  Raises:
    ValueError / TypeError: bad inputs (see `check_attack_inputs`);
    `batching.EvaluationMismatchError`: a workdir of another evaluation.

  Warns:
    ProbabilityOutputsWarning: the model's outputs on the first
      batch look like probabilities, not logits (`probability_rows`).
  """
  x, y = batching.as_data((x, y), lazy=True)  # Records stay unread
  eps = np.asarray(eps, np.float32).reshape(-1)
  if eps.size == 0:
    raise ValueError("robust_accuracy: eps must list at least one budget.")
  if x.shape[0] == 0:
    raise ValueError("robust_accuracy: x is empty.")
  if not np.all(np.isfinite(eps)):
    raise ValueError(f"robust_accuracy: eps must be finite, got {eps}.")
  if np.any(eps < 0):
    raise ValueError(f"robust_accuracy: eps must be >= 0, got {eps}.")
  if eps_per_call < 1:
    raise ValueError(f"robust_accuracy: eps_per_call must be >= 1, got "
                     f"{eps_per_call}.")
  top_k = tuple(int(k) for k in top_k)
  if any(k < 1 for k in top_k):
    raise ValueError(f"robust_accuracy: top_k must be >= 1, got {top_k}.")
  bounds = getattr(attack, "keywords", {}).get("bounds", (0., 1.))
  checks.check_attack_inputs(lambda z: apply_fn(variables, z), x, y,
                             bounds=bounds, name="robust_accuracy")
  columns = {"x": x, "y": y}
  if targets is not None:
    targets = np.asarray(targets)
    if targets.shape != (x.shape[0],) or not np.issubdtype(targets.dtype,
                                                          np.integer):
      raise ValueError(f"robust_accuracy: targets must be [N] = "
                       f"[{x.shape[0]}] int labels; got {targets.dtype} of "
                       f"shape {targets.shape}.")
    columns["t"] = targets.astype(np.int32)
  key = rng.as_key(jax.random.key(0) if key is None else key)
  plan = batching.make_plan(batch_size, mesh, device_batch_size)
  compiled = compiled or make_robust_accuracy_fn(
      apply_fn, attack, eps_per_call, top_k, targets is not None)
  fn = compiled.jit(plan.mesh)
  n = x.shape[0]
  kk = len(top_k)
  shapes = {"clean": (), "correct": (eps.size,)}
  if top_k:
    shapes.update(clean_topk=(kk,), correct_topk=(eps.size, kk))
    if targets is not None:
      shapes["target_topk"] = (eps.size, kk)
  res = {name: np.zeros((n,) + shape, bool) for name, shape in shapes.items()}
  todo = np.arange(n)
  store = None
  if workdir is not None:
    store = batching.ResultStore(workdir, {
        "evaluator": "robust_accuracy", "attack": describe_attack(attack),
        "eps": eps.tolist(), "key": np.asarray(
            jax.random.key_data(key)).tolist(),
        "n": n, "data": batching.fingerprint_arrays(x, y),
        "variables": batching.fingerprint_tree(variables),
        "device_batch": plan.device_batch, "eps_per_call": eps_per_call,
        "top_k": list(top_k), "targets": None if targets is None else
        batching.fingerprint_arrays(targets)})
    saved = store.load("sweep")
    if saved is not None:
      for name in res:
        res[name][saved["index"]] = saved[name]
      todo = np.setdiff1d(todo, saved["index"])
  consts = sharding.replicate(
      (variables, jnp.asarray(eps), jnp.arange(eps.size, dtype=jnp.int32),
       key), plan.mesh)
  pending = []
  checked = []

  def on_step(index, out):
    if not checked:  # the first batch's clean outputs
      checked.append(True)
      msg = probability_warning(out["probabilities"],
                                        "robust_accuracy")
      if msg:  # to robust_accuracy's caller (on_step <- map_examples <- it)
        warnings.warn(msg, ProbabilityOutputsWarning, stacklevel=4)
    if store is not None:
      pending.append((index, out))
      if len(pending) >= save_every:
        flush()

  def flush():
    if pending:
      store.save("sweep", {
          "index": np.concatenate([p[0] for p in pending]),
          **{name: np.concatenate([p[1][name] for p in pending])
             for name in res}})
      pending.clear()

  bar = tqdm(total=n, initial=n - todo.size, desc="robust accuracy",
             disable=not progress, leave=False)
  out = batching.map_examples(fn, consts, columns, todo, plan,
                              on_step=on_step, bar=bar)
  bar.close()
  if store is not None:
    flush()
  if todo.size:
    for name in res:
      res[name][todo] = out[name]
  correct = res["correct"].T
  empty = np.zeros((eps.size, n, 0), bool)
  return RobustAccuracy(
      eps=eps, accuracy=correct.mean(axis=1),
      clean_accuracy=float(res["clean"].mean()), correct=correct,
      clean_correct=res["clean"], top_k=top_k,
      correct_topk=res["correct_topk"].transpose(1, 0, 2) if top_k else empty,
      clean_correct_topk=res.get("clean_topk", np.zeros((n, 0), bool)),
      target_topk=(res["target_topk"].transpose(1, 0, 2)
                   if "target_topk" in res else None))


class RobustAccuracyEvaluator(NamedTuple):
  """`robust_accuracy` as an evaluator: settings now, `run` on a model.

  Attributes: as the keywords of `robust_accuracy`.
  """
  attack: Callable
  eps: Sequence[float]
  batch_size: int = 256
  key: Optional[PRNGKey] = None
  device_batch_size: Optional[int] = None
  workdir: Optional[str] = None
  progress: bool = False
  top_k: Sequence[int] = ()

  def run(self, apply_fn: ApplyFn, variables, data) -> RobustAccuracy:
    """Evaluates `apply_fn(variables, .)` on `data` (a Dataset or (x, y))."""
    x, y = batching.as_data(data, lazy=True)
    return robust_accuracy(apply_fn, variables, x, y, attack=self.attack,
                           eps=self.eps, batch_size=self.batch_size,
                           key=self.key, progress=self.progress,
                           device_batch_size=self.device_batch_size,
                           workdir=self.workdir, top_k=self.top_k)
