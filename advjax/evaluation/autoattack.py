"""AutoAttack (Croce & Hein 2020): the standard robustness evaluation, in JAX.

The cascade of the reference (fra31/auto-attack):

| version | attacks, in order |
|---|---|
| `standard` | APGD-CE, APGD-T (targeted DLR, the top 9 classes), FAB-T (9 targets), Square (5000 queries) |
| `plus` | APGD-CE and APGD-DLR (5 restarts each), FAB (5 restarts), Square, APGD-T, FAB-T |
| `rand` | APGD-CE and APGD-DLR with expectation over 20 draws of a randomised model |

Each attack runs only on the points still robust, and an example is robust
when no attack broke it within eps: the worst case per example. Restarts
and target classes are stages of their own, so an example broken by the
2nd target is not attacked with the 3rd (as in the reference).

Survivors are passed on by *compaction* (`survivors='compact'`, the
default): after every stage the examples still robust are gathered into
new full calls, so a stage costs what its survivors cost. Masking
(`survivors='mask'`: every stage runs on every clean-correct example and
only the robust ones are updated) gives the same per-example results and is
kept to measure the difference (`benchmarks.autoattack` reports both).

Everything goes through `batching.map_examples`: calls of a fixed
per-device shape over every device, each example's random key
`fold_in(fold_in(key, stage), global_index)`, so the result of every
example is the same for any batch size, device count or process count.
With a workdir each stage saves its results every few steps; a restarted
evaluation skips what is done and ends with the same results.
"""
import time
import warnings
import weakref
from typing import Any, Callable, NamedTuple, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from advjax import checks, projections, rng, sharding
from advjax.attacks.apgd import apgd
from advjax.attacks.fab import fab
from advjax.attacks.square import square
from advjax.evaluation import batching
from advjax.evaluation.predict import (ProbabilityOutputsWarning,
                                      probability_rows, probability_warning)
from advjax.evaluation.outcomes import to_bits

__all__ = ["AutoAttackResult", "Stage", "autoattack_stages", "autoattack",
           "AutoAttackEvaluator", "AutoAttackRepeats", "autoattack_repeats",
           "VERSIONS", "ATTACKS"]

VERSIONS = ("standard", "plus", "rand", "custom")
ATTACKS = ("apgd-ce", "apgd-dlr", "fab", "square", "apgd-t", "fab-t")


class Stage(NamedTuple):
  """One step of the cascade.

  Attributes:
    attack: the attack it belongs to ('apgd-ce', 'apgd-t', ...).
    name: a unique name ('apgd-t-3': the class ranked 3rd as target).
    kind: 'apgd', 'apgd_t', 'fab', 'square'.
    rank: the target's rank at the clean input (targeted kinds), else 0.
    options: static keywords of the attack (loss, restarts, random start).
  """
  attack: str
  name: str
  kind: str
  rank: int = 0
  options: Tuple[Tuple[str, Any], ...] = ()


def autoattack_stages(version: str, num_classes: int,
                      attacks: Optional[Sequence[str]] = None,
                      restarts: Optional[int] = None) -> Tuple[Stage, ...]:
  """The stages of a version (or of a custom list of `attacks`).

  Args:
    version: 'standard', 'plus', 'rand' or 'custom'.
    num_classes: K; targeted attacks use `min(9, K - 1)` target classes.
    attacks: the attack names for 'custom' (a subset of `ATTACKS`, in
      order).
    restarts: overrides the restarts of the untargeted attacks.
  """
  if version not in VERSIONS:
    raise ValueError(f"autoattack: version must be one of {VERSIONS}, got "
                     f"{version!r}.")
  if version == "custom":
    if not attacks:
      raise ValueError("autoattack: version='custom' needs attacks=[...] "
                       f"from {ATTACKS}.")
    bad = [a for a in attacks if a not in ATTACKS]
    if bad:
      raise ValueError(f"autoattack: unknown attacks {bad}; use {ATTACKS}.")
    names, r = list(attacks), restarts or 1
  elif attacks is not None:
    raise ValueError(f"autoattack: attacks= is only for version='custom' "
                     f"(version {version!r} fixes them).")
  elif version == "standard":
    names, r = ["apgd-ce", "apgd-t", "fab-t", "square"], restarts or 1
  elif version == "plus":
    names = ["apgd-ce", "apgd-dlr", "fab", "square", "apgd-t", "fab-t"]
    r = restarts or 5
  else:
    names, r = ["apgd-ce", "apgd-dlr"], restarts or 1
  targets = range(2, min(9, num_classes - 1) + 2)
  out = []
  for a in names:
    if a in ("apgd-ce", "apgd-dlr"):
      loss = "ce" if a == "apgd-ce" else "dlr"
      out += [Stage(a, f"{a}-{i}" if r > 1 else a, "apgd", 0,
                    (("loss", loss),)) for i in range(r)]
    elif a == "fab":
      out += [Stage(a, f"fab-{i}" if r > 1 else a, "fab", 0,
                    (("random_start", i > 0), ("targeted", False)))
              for i in range(r)]
    elif a == "square":
      out.append(Stage(a, a, "square"))
    elif a == "apgd-t":
      out += [Stage(a, f"apgd-t-{t}", "apgd_t", t) for t in targets]
    else:
      out += [Stage(a, f"fab-t-{t}", "fab", t, (("random_start", False),
                                                 ("targeted", True)))
              for t in targets]
  return tuple(out)


class AutoAttackResult(NamedTuple):
  """Per-example results of `autoattack`; accuracies derive from them.

  Attributes:
    robust: `[N]` bool, no attack broke the example within eps.
    x_adv: `[N, ...]` the adversarial example found (x where robust).
    clean: `[N]` bool, the clean input is classified correctly.
    broken_by: `[N]` int: index into `attacks` of the attack that broke the
      example (0 'clean': misclassified already), -1 where robust.
    distance: `[N]` `|x_adv - x|` in `norm` (0 where robust).
    attacks: ('clean', 'apgd-ce', ...): the attacks in order.
    accuracy: `[len(attacks)]` robust accuracy after each attack.
    seconds: `[len(attacks)]` wall time per attack in this run (compilation
      included; 0 for what was restored from a workdir).
    norm, eps, version: the threat model and the version run.
  """
  robust: np.ndarray
  x_adv: np.ndarray
  clean: np.ndarray
  broken_by: np.ndarray
  distance: np.ndarray
  attacks: Tuple[str, ...]
  accuracy: np.ndarray
  seconds: np.ndarray
  norm: str
  eps: float
  version: str

  @property
  def robust_accuracy(self) -> float:
    """Fraction of examples robust to every attack."""
    return float(self.robust.mean())

  @property
  def clean_accuracy(self) -> float:
    """Fraction of clean inputs classified correctly."""
    return float(self.clean.mean())

  def summary(self) -> dict:
    """The numbers a report needs (no per-example arrays): robust and
    clean accuracy, per stage the robust accuracy after it, the examples
    it broke and its seconds; the threat model."""
    return {"robust_accuracy": self.robust_accuracy,
            "clean_accuracy": self.clean_accuracy,
            "stages": dict(zip(self.attacks, np.asarray(
                self.accuracy).tolist())),
            "broken": {a: int(np.sum(self.broken_by == i))
                       for i, a in enumerate(self.attacks)},
            "seconds": dict(zip(self.attacks, np.asarray(
                self.seconds).tolist())),
            "norm": self.norm, "eps": float(self.eps),
            "version": self.version}

  def table(self) -> str:
    """Markdown: robust accuracy and time after each attack."""
    rows = [f"| attack ({self.version}, {self.norm} eps {self.eps:.4g}) | "
            "robust accuracy | broken here | seconds |",
            "|---|---:|---:|---:|"]
    for i, name in enumerate(self.attacks):
      rows.append(f"| {name} | {100 * self.accuracy[i]:.2f} % | "
                  f"{int(np.sum(self.broken_by == i))} | "
                  f"{self.seconds[i]:.1f} |")
    return "\n".join(rows)


def _stage_fn(apply_fn, stage: Stage, norm: str, bounds, stochastic: bool,
              steps: int, queries: int, eot_iter: int):
  """The per-call function of one stage: `(consts, batch) -> fooled, x_adv,
  distance`, with consts `(variables, eps, key)`."""
  opts = dict(stage.options)

  def fn(consts, batch):
    variables, eps, key, rank = consts
    x, y, index, mask = batch["x"], batch["y"], batch["index"], batch["mask"]
    keys = rng.example_keys(key, index)
    k_attack, k_check = rng.split(keys, 2)
    if stochastic:
      model = lambda z, k: apply_fn(variables, z, k)
      det = lambda z: model(z, rng.fold_in(k_check, 0))
    else:
      model = det = lambda z: apply_fn(variables, z)
    if stage.rank:  # the target: the class ranked `rank` at the clean x
      logits = det(x)
      targets = jnp.take_along_axis(
          jnp.argsort(logits, axis=-1),
          jnp.broadcast_to(logits.shape[-1] - rank, (x.shape[0], 1)),
          axis=-1)[:, 0].astype(jnp.int32)
    if stage.kind == "apgd":
      x_adv = apgd(model if stochastic else det, x, y, eps=eps,
                            key=k_attack, norm=norm, steps=steps,
                            loss=opts["loss"], stochastic=stochastic,
                            eot_iter=eot_iter if stochastic else 1,
                            bounds=bounds)
    elif stage.kind == "apgd_t":
      x_adv = apgd(det, x, y, eps=eps, key=k_attack, norm=norm,
                            steps=steps, loss="dlr_targeted",
                            targets=targets, bounds=bounds)
    elif stage.kind == "fab":
      x_adv = fab(det, x, y, key=k_attack, norm=norm, steps=steps,
                          eps=eps, random_start=opts["random_start"],
                          targeted=opts["targeted"],
                          targets=targets if opts["targeted"] else None,
                          bounds=bounds)
    else:
      x_adv = square(det, x, y, eps=eps, key=k_attack, norm=norm,
                                queries=queries, p_init=0.8, bounds=bounds)
    wrong = jnp.argmax(det(x_adv), axis=-1) != y
    distance = projections.lp_norm(x_adv - x, norm)
    within = distance <= eps * (1. + 1e-5) + 1e-7
    return {"fooled": wrong & within & mask, "x_adv": x_adv,
            "distance": distance}

  return fn


def _clean_fn(apply_fn, stochastic):
  def fn(consts, batch):
    variables, _, key, _ = consts
    if stochastic:
      keys = rng.example_keys(key, batch["index"])
      logits = apply_fn(variables, batch["x"], keys)
    else:
      logits = apply_fn(variables, batch["x"])
    return {"correct": (jnp.argmax(logits, axis=-1) == batch["y"]) &
                       batch["mask"],
            "probabilities": probability_rows(logits)}
  return fn


def autoattack(apply_fn: Callable, variables, x, y, *, norm: str = "linf",
               eps: float, version: str = "standard", key=None,
               batch_size: int = 256, mesh=None, workdir: Optional[str] = None,
               attacks: Optional[Sequence[str]] = None,
               restarts: Optional[int] = None, steps: int = 100,
               queries: int = 5000, eot_iter: int = 20,
               survivors: str = "compact",
               device_batch_size: Optional[int] = None,
               bounds=(0., 1.), save_every: int = 1,
               progress: bool = False) -> AutoAttackResult:
  """AutoAttack robust accuracy: the worst case of the cascade per example.

  Args:
    apply_fn: `(variables, x) -> logits`, inference mode; for
      `version='rand'` a randomised model `(variables, x, keys [B]) ->
      logits` whose randomness for example b comes from `keys[b]`.
    variables: the model's variables.
    x: `[N, H, W, C]` float images inside `bounds` (NHWC).
    y: `[N]` int labels.
    norm: 'linf' or 'l2'.
    eps: the radius (>= 0).
    version: 'standard', 'plus', 'rand' or 'custom' (with `attacks`).
    key: `jax.random.key` (default `key(0)`); every example's randomness
      derives from it and the example's index.
    batch_size: examples per step (progress and saving; results do not
      depend on it).
    mesh: the `('data',)` mesh (default: every device).
    workdir: save per-example results there and resume from them.
    attacks: for `version='custom'`, names from `ATTACKS`.
    restarts: restarts of the untargeted attacks (default per version).
    steps: APGD and FAB iterations (100).
    queries: Square's queries (5000).
    eot_iter: gradient draws averaged per APGD step for 'rand' (20).
    survivors: 'compact' or 'mask' (see the module docstring).
    device_batch_size: examples per device per call (the compiled shape;
      default `batching.DEFAULT_DEVICE_BATCH`).
    bounds: the box of valid inputs.
    save_every: steps between saves to the workdir.
    progress: show a progress bar over stages.

  Returns:
    `AutoAttackResult`.

  Raises:
    ValueError / TypeError: bad inputs (shape, layout, dtype, eps, labels,
      NaN, norm, version); `batching.EvaluationMismatchError` for a workdir
      of another evaluation.

  Warns:
    ProbabilityOutputsWarning: the model's outputs on the first
      batch look like probabilities, not logits (checked after the clean
      pass, before any attack).

  References:
    Croce & Hein, "Reliable evaluation of adversarial robustness with an
    ensemble of diverse parameter-free attacks", ICML 2020.
  """
  if norm not in ("linf", "l2"):
    raise ValueError(f"autoattack: norm must be 'linf' or 'l2', got {norm!r}"
                     " (L1 needs APGD-L1 of Croce & Hein 2021, not "
                     "implemented).")
  if survivors not in ("compact", "mask"):
    raise ValueError(f"autoattack: survivors must be 'compact' or 'mask', "
                     f"got {survivors!r}.")
  eps = float(eps)
  if not np.isfinite(eps) or eps < 0:
    raise ValueError(f"autoattack: eps must be finite and >= 0, got {eps}.")
  x = np.asarray(x)
  y = np.asarray(y)
  if x.ndim != 4:
    raise ValueError(f"autoattack: x must be NHWC images [N, H, W, C], got "
                     f"shape {x.shape}.")
  if x.shape[0] == 0:
    raise ValueError("autoattack: x is empty.")
  stochastic = version == "rand"
  key = rng.as_key(jax.random.key(0) if key is None else key)
  if stochastic:
    probe_keys = rng.example_keys(key, jnp.arange(x.shape[0]))
    det = lambda z: apply_fn(variables, z, probe_keys[:z.shape[0]])
  else:
    det = lambda z: apply_fn(variables, z)
  num_classes = checks.check_attack_inputs(det, x, y, eps=eps, bounds=bounds,
                                           name="autoattack").num_classes
  stages = autoattack_stages(version, num_classes, attacks, restarts)
  kinds = {s.kind for s in stages}
  if ("apgd_t" in kinds and num_classes < 4) or num_classes < 3:
    raise ValueError(f"autoattack: the DLR losses need >= 3 classes (the "
                     f"targeted one >= 4); the model has {num_classes}. Use "
                     "version='custom' without apgd-t/apgd-dlr.")
  plan = batching.make_plan(batch_size, mesh, device_batch_size)
  n = x.shape[0]
  names = ("clean",) + tuple(dict.fromkeys(s.attack for s in stages))
  seconds = np.zeros((len(names),))
  store = None
  if workdir is not None:
    store = batching.ResultStore(workdir, {
        "evaluator": "autoattack", "version": version, "norm": norm,
        "eps": eps, "stages": [s.name for s in stages], "steps": steps,
        "queries": queries, "eot_iter": eot_iter, "bounds": list(bounds),
        "key": np.asarray(jax.random.key_data(key)).tolist(), "n": n,
        "data": batching.fingerprint_arrays(x, y),
        "variables": batching.fingerprint_tree(variables),
        "device_batch": plan.device_batch})
  consts = sharding.replicate((variables, jnp.float32(eps)), plan.mesh)
  arrays = {"x": x, "y": y}
  bar = tqdm(total=len(stages) + 1, desc="autoattack", disable=not progress,
             leave=False)

  def run_stage(stage_name, fn, index, stage_key, rank=0):
    """Per-example outputs of one stage over `index`, resuming from and
    saving to the store."""
    done_index = np.zeros((0,), np.int64)
    saved = store.load(stage_name) if store else None
    if saved is not None:
      done_index = saved["index"]
    todo = np.setdiff1d(index, done_index) if done_index.size else index
    pending = []

    def flush():
      if pending and store is not None:
        store.save(stage_name, _pack(pending))
        pending.clear()

    def on_step(idx, out):
      pending.append((idx, out))
      if len(pending) >= save_every:
        flush()

    t0 = time.time()
    stage_consts = (consts[0], consts[1],
                    sharding.replicate(stage_key, plan.mesh),
                    sharding.replicate(jnp.int32(rank), plan.mesh))
    out = batching.map_examples(fn, stage_consts, arrays, todo, plan,
                                on_step=on_step if store else None)
    flush()
    if store is not None:
      store.mark_done(stage_name)
    return todo, out, saved, time.time() - t0

  # Clean accuracy.
  cache = _compiled(apply_fn, plan.mesh)
  if "clean" not in cache:
    cache["clean"] = batching.jit_per_example(_clean_fn(apply_fn, stochastic),
                                              plan.mesh)
  todo, out, saved, dt = run_stage("clean", cache["clean"], np.arange(n),
                                   rng.fold_in(key, 0))
  clean = np.zeros((n,), bool)
  if saved is not None:
    clean[saved["index"]] = saved["correct"]
  if todo.size:
    clean[todo] = out["correct"]
    msg = probability_warning(
        out["probabilities"][:plan.batch_size], "autoattack")
    if msg:
      warnings.warn(msg, ProbabilityOutputsWarning, stacklevel=2)
  seconds[0] += dt
  bar.update()
  robust = clean.copy()
  broken_by = np.where(clean, -1, 0).astype(np.int32)
  x_adv = x.copy()
  distance = np.zeros((n,), np.float32)
  for s_i, stage in enumerate(stages, start=1):
    a_i = names.index(stage.attack)
    index = np.flatnonzero(robust if survivors == "compact" else clean)
    if not robust.any():
      bar.update()
      continue
    # One compilation per kind of stage (the target rank is traced),
    # reused by later calls with the same apply_fn.
    sig = (stage.kind, stage.options, stage.rank > 0, norm, tuple(bounds),
           stochastic, steps, queries, eot_iter)
    if sig not in cache:
      cache[sig] = batching.jit_per_example(
          _stage_fn(apply_fn, stage, norm, bounds, stochastic, steps, queries,
                    eot_iter), plan.mesh)
    todo, out, saved, dt = run_stage(stage.name, cache[sig], index,
                                     rng.fold_in(key, s_i), stage.rank)
    seconds[a_i] += dt
    for idx, o in ((saved["index"], _unpack(saved, x)) if saved is not None
                   else (None, None), (todo, out)):
      if idx is None or not idx.size:
        continue
      hit = o["fooled"] & robust[idx]
      rows = idx[hit]
      robust[rows] = False
      broken_by[rows] = a_i
      x_adv[rows] = o["x_adv"][hit]
      distance[rows] = o["distance"][hit]
    bar.update()
    bar.set_postfix(robust=f"{100 * robust.mean():.1f}%")
  bar.close()
  accuracy = np.array([np.mean((broken_by == -1) | (broken_by > i))
                       for i in range(len(names))])
  return AutoAttackResult(robust=robust, x_adv=x_adv, clean=clean,
                          broken_by=broken_by, distance=distance,
                          attacks=names, accuracy=accuracy, seconds=seconds,
                          norm=norm, eps=eps, version=version)


_CACHE = weakref.WeakKeyDictionary()


def _compiled(apply_fn, mesh) -> dict:
  """The jitted stage functions of `apply_fn` on `mesh` (kept while
  apply_fn lives, so repeated evaluations of a model compile once)."""
  try:
    per_fn = _CACHE.setdefault(apply_fn, {})
  except TypeError:  # not weak-referenceable: no reuse across calls
    per_fn = {}
  return per_fn.setdefault(
      (tuple(d.id for d in mesh.devices.flat), mesh.axis_names), {})


def _pack(pending):
  """One saved part of a stage: every processed index with its outcome, and
  the adversarial examples of the fooled ones only."""
  index = np.concatenate([p[0] for p in pending])
  out = {k: np.concatenate([p[1][k] for p in pending]) for k in pending[0][1]}
  if "fooled" not in out:
    return {"index": index, **out}
  hit = out["fooled"]
  return {"index": index, "fooled": hit, "adv_index": index[hit],
          "x_adv": out["x_adv"][hit], "distance": out["distance"][hit]}


def _unpack(saved, x):
  """The outputs of a saved stage in the shape `_stage_fn` returns them."""
  n = saved["index"].shape[0]
  x_adv = np.zeros((n,) + x.shape[1:], x.dtype)
  distance = np.zeros((n,), np.float32)
  pos = np.flatnonzero(saved["fooled"])
  x_adv[pos] = saved["x_adv"]
  distance[pos] = saved["distance"]
  return {"fooled": saved["fooled"], "x_adv": x_adv, "distance": distance}


class AutoAttackEvaluator(NamedTuple):
  """`autoattack` as an evaluator: settings now, `run` on a model."""
  norm: str = "linf"
  eps: float = 8 / 255
  version: str = "standard"
  key: Any = None
  batch_size: int = 256
  workdir: Optional[str] = None
  device_batch_size: Optional[int] = None
  progress: bool = False

  def run(self, apply_fn: Callable, variables, data) -> AutoAttackResult:
    """Evaluates `apply_fn(variables, .)` on `data` (a Dataset or (x, y))."""
    x, y = batching.as_data(data)
    return autoattack(apply_fn, variables, x, y, norm=self.norm,
                      eps=self.eps, version=self.version, key=self.key,
                      batch_size=self.batch_size, workdir=self.workdir,
                      device_batch_size=self.device_batch_size,
                      progress=self.progress)



class AutoAttackRepeats(NamedTuple):
  """`autoattack` run again on the same inputs (see `autoattack_repeats`).

  Attributes:
    first: the result of the first key's first call.
    seconds_cold, seconds_warm: wall time of its first call (compilation
      included) and of the same call repeated.
    warm_seconds: `[len(attacks)]` per-stage seconds of the repeat.
    warm_identical: the repeat gave the same per-example results.
    seconds_masked, masked_identical: with `survivors='mask'` (None when
      not run): its time and whether its results are the same.
    seed_accuracy: `[len(keys), len(attacks)]` the robust accuracy after
      each stage, per key.
  """
  first: AutoAttackResult
  seconds_cold: float
  seconds_warm: float
  warm_seconds: np.ndarray
  warm_identical: bool
  seconds_masked: Optional[float]
  masked_identical: Optional[bool]
  seed_accuracy: np.ndarray

  def summary(self) -> dict:
    """`first.summary()` with the timings, the identity checks, the stages
    per key and their mean, the largest distance, and the per-example
    robust outcomes as bits (`to_bits`)."""
    attacks = self.first.attacks
    per_key = [dict(zip(attacks, a)) for a in self.seed_accuracy.tolist()]
    return {**self.first.summary(),
            "seconds_cold": self.seconds_cold,
            "seconds_warm": self.seconds_warm,
            "warm_stage_seconds": dict(zip(attacks,
                                           self.warm_seconds.tolist())),
            "warm_identical": self.warm_identical,
            "seconds_masked": self.seconds_masked,
            "masked_identical": self.masked_identical,
            "stages_per_seed": per_key,
            "stages_mean": dict(zip(attacks, self.seed_accuracy.mean(
                0).tolist())),
            "max_distance": float(np.max(self.first.distance, initial=0.)),
            "robust": to_bits(self.first.robust)}


def _same(a: AutoAttackResult, b: AutoAttackResult) -> bool:
  return bool(np.array_equal(a.robust, b.robust) and
              np.array_equal(a.x_adv, b.x_adv))


def autoattack_repeats(apply_fn: Callable, variables, x, y, *,
                       keys: Sequence[Any], compare_masking: bool = False,
                       **kwargs) -> AutoAttackRepeats:
  """`autoattack` timed cold and warm, optionally with masked survivors,
  and over several keys: its speed, determinism and spread over seeds.

  Args:
    apply_fn, variables, x, y: as in `autoattack`.
    keys: one `jax.random.key` per run; the first is run twice (cold, then
      warm: the compiled calls reused) and, with `compare_masking`, once
      more with `survivors='mask'`.
    compare_masking: also time `survivors='mask'`.
    **kwargs: the other keywords of `autoattack` (not `key`, `survivors`).

  Returns:
    `AutoAttackRepeats`.

  Raises:
    ValueError: no keys.
  """
  if not len(keys):  # pylint: disable=g-explicit-length-test
    raise ValueError("autoattack_repeats: give at least one key.")

  def timed(key, **kw):
    t0 = time.perf_counter()
    r = autoattack(apply_fn, variables, x, y, key=key, **kwargs, **kw)
    return r, time.perf_counter() - t0

  cold, seconds_cold = timed(keys[0])
  warm, seconds_warm = timed(keys[0])
  seconds_masked = masked_identical = None
  if compare_masking:
    masked, seconds_masked = timed(keys[0], survivors="mask")
    masked_identical = _same(masked, cold)
  accuracy = [cold.accuracy] + [timed(k)[0].accuracy for k in keys[1:]]
  return AutoAttackRepeats(cold, seconds_cold, seconds_warm,
                           np.asarray(warm.seconds), _same(cold, warm),
                           seconds_masked, masked_identical,
                           np.asarray(accuracy, np.float64))
