"""The throughput evaluator: interleaved timed calls, medians, min and max,
and the machine they ran on.

`time_calls(calls, repeats)` times each call once as a warm-up (for JAX:
compilation), then `repeats` rounds in which every call runs once, in
order, to completion (the calls end with `jax.block_until_ready`). Each
item's `Timing` holds the median with the min and max, so noise is
visible, and interleaving makes a change in machine load (a shared host)
hit all items alike, which keeps the ratios between them meaningful.
`timing_fields` turns a `Timing` of a batch into report fields (images/s,
ms per batch or step, min, max, every call); `machine()` records the
devices, versions and cores.

Around them, what every timing benchmark needs:

- compiled calls: `jit_call`, `attack_call` (an attack with its radii and
  keys traced);
- peers side by side: `Item` / `Peer`, `time_items` (a peer in another
  runtime timed in a second group, so thread pools never overlap; one in
  the same runtime `together`), `time_groups`, `ratio`;
- quality checks of every library's outputs: `adversarial_quality`,
  `score_adversarials`, `success_rates`;
- the Wasserstein projection at several stopping rules, scored against
  the converged projection: `sinkhorn_settings`, `time_projections`,
  `ProjectionReference`;
- training: `StepCall`, `step_agreement`, `epoch_fields`, `max_abs_diff`;
  host memory: `peak_host_bytes`;
- the tables of their results: `items_table`, `scored_table`,
  `pairs_table`, `projection_table`, with `peer_columns` (why a peer is
  missing), `rate_cell`, `span_cell`, `quality_cell`, `machine_line`.

Used by `benchmarks.speed`, `benchmarks.train_speed` and
`benchmarks.data_loading`.
"""
import contextlib
import functools
import os
import platform
import statistics
import time
import tracemalloc
from typing import Any, Callable, Dict, NamedTuple, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import jaxlib
import numpy as np
from tqdm import tqdm

from advjax import checks, models, sharding, sinkhorn
from advjax.report import markdown

__all__ = [
    "Timing", "time_calls", "time_once", "timing_fields", "machine",
    "jit_call", "attack_call", "time_groups", "Peer", "Item", "time_items",
    "ratio", "adversarial_quality", "score_adversarials", "success_rates",
    "peak_host_bytes", "sinkhorn_settings", "ProjectionReference",
    "time_projections", "rate_cell", "span_cell", "peer_cells",
    "quality_cell", "projection_table", "items_table", "scored_table",
    "pairs_table", "peer_missing", "peer_columns", "machine_line",
    "StepCall", "step_agreement", "epoch_fields", "max_abs_diff",
    "check_cost",
]


class Timing(NamedTuple):
  """Wall-clock times of one measured item, in seconds.

  Attributes:
    median: median of the timed calls.
    min: fastest timed call.
    max: slowest timed call.
    first_call: the warm-up call (includes compilation for JAX).
    times: every timed call, in order.
  """
  median: float
  min: float
  max: float
  first_call: float
  times: Tuple[float, ...]


def time_once(call: Callable[[], object]) -> float:
  """Seconds of one call (the first of a JAX call includes compilation)."""
  t0 = time.perf_counter()
  call()
  return time.perf_counter() - t0



def time_calls(calls: Sequence[Callable[[], object]], repeats: int,
               on_call: Optional[Callable[[int], None]] = None
               ) -> list[Timing]:
  """Times each call once as a warm-up, then `repeats` interleaved rounds.

  Every round calls each function once, in order, so a change in machine
  load during the measurement is shared by all of them.

  Args:
    calls: functions that run their work to completion (for JAX they must
      end with `jax.block_until_ready`).
    repeats: timed calls per function, >= 1.
    on_call: called with the index of each function before it runs (for a
      progress bar).

  Returns:
    One `Timing` per call, in order.
  """
  on_call = on_call or (lambda i: None)
  first = []
  for i, call in enumerate(calls):
    on_call(i)
    first.append(time_once(call))
  times = [[] for _ in calls]
  for _ in range(repeats):
    for i, call in enumerate(calls):
      on_call(i)
      times[i].append(time_once(call))
  return [Timing(statistics.median(t), min(t), max(t), f, tuple(t))
          for t, f in zip(times, first)]


def check_cost(calls: Dict[str, Callable[[], Any]], rounds: int,
               progress: bool = False) -> Dict[str, Dict[str, Any]]:
  """What advjax's run-time input checks (`checks.runtime_check`) cost.

  Each round runs every call compiled with the checks and compiled without
  them (`checks.without_runtime_checks`: the caches cleared, so each is
  traced anew), a warm-up call then a timed one each, alternating, so load
  changes are shared.

  Args:
    calls: name -> a call that runs its work to completion (ending with
      `jax.block_until_ready`); it must trace its programs when called
      (jit inside, or `evaluation` functions).
    rounds: timed calls per setting, >= 1.

  Returns:
    name -> {'checked_s', 'unchecked_s' (medians), 'ratio' (checked /
    unchecked), 'checked_times', 'unchecked_times'}.
  """
  out = {}
  bar = tqdm(total=2 * rounds * len(calls), desc="input checks' cost",
             disable=not progress, leave=False)
  for name, call in calls.items():
    times = {True: [], False: []}
    for _ in range(rounds):
      for on in (True, False):
        with (contextlib.nullcontext() if on
              else checks.without_runtime_checks()):
          if on:
            jax.clear_caches()  # compiled anew, as the unchecked one
          call()
          times[on].append(time_once(call))
        bar.update()
    med = {k: statistics.median(v) for k, v in times.items()}
    out[name] = {"checked_s": med[True], "unchecked_s": med[False],
                 "ratio": med[True] / med[False],
                 "checked_times": times[True],
                 "unchecked_times": times[False]}
  bar.close()
  return out


def timing_fields(t: Timing, batch: int, *, per: str = "batch",
                  prefix: str = "") -> dict:
  """The report fields of a timing of `batch` images per call.

  Args:
    t: a `Timing` (seconds).
    batch: images per call.
    per: what one call is, in the name of its field ('batch', 'step').
    prefix: put before every key (e.g. 'peer_').

  Returns:
    `{images_per_s, ms_per_<per>, ms_min, ms_max, ms_all, first_call_s}`,
    each key after `prefix`; the ms fields in milliseconds, first_call_s in
    seconds.
  """
  fields = {"images_per_s": batch / t.median, f"ms_per_{per}": 1e3 * t.median,
            "ms_min": 1e3 * t.min, "ms_max": 1e3 * t.max,
            "ms_all": [1e3 * s for s in t.times], "first_call_s": t.first_call}
  return {prefix + k: v for k, v in fields.items()}


def machine() -> dict:
  """What the numbers were measured on: the first JAX device's kind and
  platform, the backend, the device and CPU counts, the jax, jaxlib and
  python versions, the processor, and whether a GPU was used."""
  dev = jax.devices()[0]
  return {"device_kind": dev.device_kind, "platform": dev.platform,
          "jax_backend": jax.default_backend(),
          "jax_devices": jax.device_count(), "cpu_count": os.cpu_count(),
          "jax": jax.__version__, "jaxlib": jaxlib.__version__,
          "python": platform.python_version(),
          "processor": platform.processor() or platform.machine(),
          "gpu_used": jax.default_backend() == "gpu"}


def jit_call(fn: Callable, *args) -> Callable[[], Any]:
  """`fn` jitted, as a call on `args` that runs it to completion
  (`jax.block_until_ready`): an item for `time_calls`. Arrays among `args`
  are traced, so a sweep over their values compiles once."""
  jitted = jax.jit(fn)
  return lambda: jax.block_until_ready(jitted(*args))


def attack_call(model: Any, variables: Any, attack: Callable, x, y,
                traced: Optional[Dict[str, Any]] = None, **static
                ) -> Callable[[], Any]:
  """`attack(model_fn, x, y, **traced, **static)` of a flax model, jitted
  on the variables, images, labels and the `traced` keywords (radii,
  constants, keys: arguments, so a sweep over their values compiles once;
  Python floats become float32), as a call run to completion (`jit_call`).
  `static` keywords (step counts, norms) are compiled in."""
  traced = {k: v if isinstance(v, jax.Array) else jnp.float32(v)
            for k, v in (traced or {}).items()}
  return jit_call(lambda v, x, y, kw: attack(
      models.model_fn(model, v), x, y, **kw, **static), variables, x, y,
                  traced)


def time_groups(groups: Sequence[Sequence[Tuple[str, Callable[[], Any]]]],
                repeats: int, desc: str = "", progress: bool = False
                ) -> list[list[Timing]]:
  """Times groups of `(label, call)`, one group after the other, each with
  `time_calls` (interleaved within the group), under one progress bar
  showing the label of the call running.

  Returns:
    Per group, one `Timing` per call, in order.
  """
  bar = tqdm(total=sum(len(g) for g in groups) * (repeats + 1), desc=desc,
             disable=not progress)
  timings = []
  for group in groups:

    def on_call(i, group=group):
      bar.set_postfix_str(group[i][0], refresh=False)
      bar.update()

    timings.append(time_calls([call for _, call in group], repeats, on_call))
  bar.close()
  return timings


class Peer(NamedTuple):
  """Another library's equivalent of a measured item.

  Attributes:
    name: what it is ('torchattacks.PGD').
    batch: images per call (a Python loop over images is timed on fewer).
    call: runs it to completion.
  """
  name: str
  batch: int
  call: Callable[[], Any]


class Item(NamedTuple):
  """One measured row: advjax's call and its peer's, if any.

  Attributes:
    fields: the row's description (attack, norm, steps, ...).
    batch: images per call.
    call: runs advjax's item to completion.
    peer: a `Peer`, or None.
  """
  fields: Dict[str, Any]
  batch: int
  call: Callable[[], Any]
  peer: Optional[Peer] = None


PEER_FIELDS = ("peer_images_per_s", "peer_ms_per_batch", "peer_ms_min",
               "peer_ms_max", "peer_ratio")


def ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
  """`a / b`, None when either is missing or `b` is 0 (a ratio column:
  advjax images/s over a peer's)."""
  return a / b if a is not None and b else None


def time_items(items: Sequence[Item], repeats: int, desc: str = "",
               progress: bool = False, together: bool = False
               ) -> list[Tuple[Dict[str, Any], Timing, Optional[Timing]]]:
  """Times the items' advjax calls (one group), then their peers' (a second
  group, so the two runtimes' thread pools never overlap); with `together`
  (a peer in the same runtime: Foolbox on JAX), every item beside its peer
  in one interleaved group.

  Returns:
    Per item: its row (its fields, `timing_fields` of its batch, 'peer' the
    peer's name, the peer's fields with prefix 'peer_' (None where it has
    none) and `peer_ratio` = advjax images/s / the peer's), its `Timing`
    and the peer's (or None).
  """
  paired = [i for i in items if i.peer is not None]
  label = lambda i: " ".join(str(v) for v in list(i.fields.values())[:2])
  if together:
    calls = [c for i in items for c in [(label(i), i.call)] + (
        [(label(i) + " peer", i.peer.call)] if i.peer else [])]
    [timings] = time_groups([calls], repeats, desc, progress)
    it = iter(timings)
    own, peer = [], []
    for i in items:
      own.append(next(it))
      if i.peer:
        peer.append(next(it))
  else:
    own, peer = time_groups(
        [[(label(i), i.call) for i in items],
         [(label(i) + " peer", i.peer.call) for i in paired]],
        repeats, desc, progress)
  peer = dict(zip(map(id, paired), peer))
  out = []
  for item, t in zip(items, own):
    tp = peer.get(id(item))
    row = {**item.fields, **timing_fields(t, item.batch),
           "peer": item.peer and item.peer.name, **dict.fromkeys(PEER_FIELDS)}
    if tp is not None:
      row.update(timing_fields(tp, item.peer.batch, prefix="peer_"))
      row["peer_ratio"] = ratio(row["images_per_s"], row["peer_images_per_s"])
    out.append((row, t, tp))
  return out


def adversarial_quality(predict: Callable[[Any], Any], x_adv, x, y,
                        prefix: str = "", targets=None) -> Dict[str, Any]:
  """Adversarials of any library scored alike by one model.

  Args:
    predict: images `[B, ...]` -> predicted classes `[B]`.
    x_adv: the adversarials `[B, ...]`.
    x: the inputs `[B, ...]`.
    y: their labels `[B]`.
    prefix: put before every key ('peer_').
    targets: `[B]` target classes of a targeted attack (success: the
      prediction is the target), or None (success: it is not `y`).

  Returns:
    `success_rate`, and over the successful examples `mean_l2` (L2
    distance) and `mean_l0` (features changed by more than 1e-6), None
    when none succeeded; each key after `prefix`.
  """
  x_adv, x = np.asarray(x_adv), np.asarray(x)
  pred = np.asarray(predict(x_adv))
  success = (pred == np.asarray(targets) if targets is not None
             else pred != np.asarray(y))
  d = (x_adv - x).reshape(len(x), -1)
  l2, l0 = np.sqrt(np.sum(d ** 2, axis=1)), np.sum(np.abs(d) > 1e-6, axis=1)
  mean = lambda v: float(np.mean(v[success])) if success.any() else None
  return {prefix + "success_rate": float(np.mean(success)),
          prefix + "mean_l2": mean(l2), prefix + "mean_l0": mean(l0)}


def score_adversarials(items: Sequence[Item], measured, predict, x, y,
                       targets=None,
                       run_peer: Optional[Callable[[Peer], Tuple[Any, Dict]]]
                       = None) -> list[Dict[str, Any]]:
  """The rows of `time_items` with the quality of every library's
  adversarials (`adversarial_quality`, one model scoring all).

  Args:
    items: the timed `Item`s; each call returns a result with `x_adv` and
      `n_iters` (an attack's `return_result=True`), on the first
      `item.batch` images of `x`; `fields['targeted']` marks an item
      attacking `targets`.
    measured: `time_items(items, ...)`.
    predict: images -> predicted classes.
    x, y: the images `[B, ...]` and labels `[B]` the items attack.
    targets: `[B]` targets of the targeted items.
    run_peer: `peer -> (x_adv [m, ...] like x, more row fields)`; default
      `(peer.call(), {})`.

  Returns:
    The rows, each with ms_per_image, median_iters, success_rate, mean_l2,
    mean_l0, and where the peer ran peer_ms_per_image, the peer's quality
    (prefix 'peer_') and advjax's on the peer's images ('matched_'); None
    where it did not.
  """
  run_peer = run_peer or (lambda peer: (peer.call(), {}))
  for it, (row, t, t_peer) in zip(items, measured):
    out = it.call()
    tg = targets if it.fields.get("targeted") else None
    score = lambda adv, m, prefix, tg=tg: adversarial_quality(
        predict, adv, x[:m], y[:m], prefix, None if tg is None else tg[:m])
    row.update(ms_per_image=1e3 * t.median / it.batch,
               median_iters=float(np.median(np.asarray(out.n_iters))),
               **score(out.x_adv, it.batch, ""), **dict.fromkeys(
                   ("peer_ms_per_image", *(
                       p + k for p in ("peer_", "matched_") for k in (
                           "success_rate", "mean_l2", "mean_l0")))))
    if t_peer is not None:
      m = it.peer.batch
      adv, extra = run_peer(it.peer)
      row.update(peer_ms_per_image=1e3 * t_peer.median / m, **extra,
                 **score(adv, m, "peer_"), **score(out.x_adv[:m], m,
                                                   "matched_"))
  return [row for row, _, _ in measured]


def success_rates(items: Sequence[Item], measured, predict, y
                  ) -> list[Dict[str, Any]]:
  """The rows of `time_items` with each library's success rate
  (`success_rate`, `peer_success_rate`: the prediction is not the label)
  on its item's first `item.batch` labels `y`; an item's calls return its
  adversarials."""
  rate = lambda adv, b: float(np.mean(np.asarray(predict(adv))
                                      != np.asarray(y[:b])))
  for it, (row, _, _) in zip(items, measured):
    row.update(success_rate=rate(it.call(), it.batch),
               peer_success_rate=None if it.peer is None else rate(
                   it.peer.call(), it.peer.batch))
  return [row for row, _, _ in measured]


def peak_host_bytes(call: Callable[[], Any]) -> Tuple[Any, int]:
  """Runs `call` under `tracemalloc`; returns its result and the peak of
  the Python and numpy host memory allocated meanwhile, in bytes (device
  buffers are not counted)."""
  tracemalloc.start()
  tracemalloc.reset_peak()
  try:
    out = call()
    peak = tracemalloc.get_traced_memory()[1]
  finally:
    tracemalloc.stop()
  return out, peak


def sinkhorn_settings(tol: float, relaxation: float, tols: Sequence[float],
                      relaxations: Sequence[float]
                      ) -> list[Tuple[float, float]]:
  """The `(tol, relaxation)` rows of a projection timing, each once, the
  default `(tol, relaxation)` first.

  Raises:
    ValueError: `tols` and `relaxations` differ in length.
  """
  if len(tols) != len(relaxations):
    raise ValueError(f"tols {tuple(tols)} and relaxations "
                     f"{tuple(relaxations)} must be as long.")
  return list(dict.fromkeys([(tol, relaxation), *zip(tols, relaxations)]))


class ProjectionReference(NamedTuple):
  """Another projection solver timed beside `project_wasserstein`.

  Attributes:
    call: runs it on the batch (timed).
    once: `() -> (z, iterations)` of that run.
    maxiters: its iteration bound.
    converged: `() -> (z, iterations)` run to convergence in float64, or
      None (then `converged_status` says why).
    converged_status: why there is no converged run.
    info: more fields of its results ('directory').
  """
  call: Callable[[], Any]
  once: Callable[[], Tuple[Any, Optional[int]]]
  maxiters: int
  converged: Optional[Callable[[], Tuple[Any, Optional[int]]]] = None
  converged_status: str = "ok"
  info: Dict[str, Any] = {}


def time_projections(x, w, *, eps: float, lam: float, kernel_size: int,
                     settings: Sequence[Tuple[float, float]],
                     max_iterations: int, repeats: int,
                     reference: Optional[ProjectionReference] = None,
                     reference_status: str = "off",
                     converged_tol: float = 1e-13,
                     converged_max_iterations: int = 5000,
                     progress: bool = False) -> Dict[str, Any]:
  """Times `sinkhorn.project_wasserstein` (jitted; eps, lam, tol and
  relaxation traced) at each `(tol, relaxation)` setting, and a reference
  solver in the same rounds; every row is scored by its distance to the
  converged projection z* (advjax in float64 at `converged_tol`), so
  speeds are compared at a stated accuracy.

  Args:
    x: images `[B, H, W, C]` in [0, 1] (the mass to keep).
    w: the points to project `[B, H, W, C]`.
    eps: the Wasserstein radius, cost per unit mass.
    lam: entropy regularisation.
    kernel_size: the transport window k (odd).
    settings: `(tol, relaxation)` per row (`sinkhorn_settings`).
    max_iterations: iteration bound of every row.
    repeats: timed calls per row after one warm-up call.
    reference: a `ProjectionReference`, or None.
    reference_status: why there is no reference (when None).
    converged_tol, converged_max_iterations: the stopping rule of z*.
    progress: show a progress bar.

  Returns:
    `{status 'ok', batch, image_shape, max_iterations, zero_pixel_fraction,
    converged_point {tol, dtype, median_iters, converged}, rows, the first
    row's fields, reference}`; each row: tol, relaxation, `timing_fields`,
    median_iters, max_iters, converged (count), max_abs_error (to z*),
    max_cost_minus_eps. The reference's: status, maxiters, iterations, its
    timing fields, max_abs_error, converged_agreement {status,
    reference_iters, max_abs_diff} (both converged), speed_ratio (the first
    row's images/s over its) and matched (the fastest row at least as
    accurate: tol, relaxation, speed_ratio; None if none is).
  """
  b = len(x)

  @functools.partial(jax.jit, static_argnames="max_iterations")
  def project(x, w, eps, lam, tol, relaxation, max_iterations):
    return sinkhorn.project_wasserstein(
        x, w, eps=eps, lam=lam, kernel_size=kernel_size,
        max_iterations=max_iterations, tol=tol, relaxation=relaxation)

  def call(tol, relaxation, dtype=jnp.float32, iterations=max_iterations):
    args = [jnp.asarray(v, dtype) for v in (x, w, eps, lam, tol, relaxation)]
    return lambda: jax.block_until_ready(
        project(*args, max_iterations=iterations))

  with jax.enable_x64(True):
    star = call(converged_tol, settings[0][1], jnp.float64,
                converged_max_iterations)()
    z_star = np.asarray(star.z)
  error = lambda z: float(np.max(np.abs(np.asarray(z) - z_star)))
  calls = [(f"tol {tol} relaxation {r}", call(tol, r)) for tol, r in settings]
  if reference is not None:
    calls.append(("reference", reference.call))
  [timings] = time_groups([calls], repeats, "sinkhorn", progress)
  rows = []
  for (tol, relaxation), (_, c), t in zip(settings, calls, timings):
    out = c()
    n_iters = np.asarray(out.n_iters)
    rows.append({
        "tol": tol, "relaxation": relaxation, **timing_fields(t, b),
        "median_iters": float(np.median(n_iters)),
        "max_iters": int(np.max(n_iters)),
        "converged": int(np.sum(np.asarray(out.converged))),
        "max_abs_error": error(out.z),
        "max_cost_minus_eps": float(np.max(np.asarray(out.cost)) - eps)})
  result = {
      "status": "ok", "batch": b, "image_shape": list(np.shape(x)[1:]),
      "max_iterations": max_iterations,
      "zero_pixel_fraction": float(np.mean(np.asarray(x) == 0)),
      "converged_point": {
          "tol": converged_tol, "dtype": "float64",
          "median_iters": float(np.median(np.asarray(star.n_iters))),
          "converged": int(np.sum(np.asarray(star.converged)))},
      "rows": rows, **rows[0], "reference": {"status": reference_status}}
  if reference is None:
    return result
  ref_z, ref_iters = reference.once()
  ref = result["reference"] = {
      "status": "ok", **reference.info, "maxiters": reference.maxiters,
      "iterations": ref_iters, **timing_fields(timings[-1], b),
      "max_abs_error": error(ref_z)}
  agreement = {"status": reference.converged_status}
  if reference.converged is not None:
    z_tight, tight_iters = reference.converged()
    agreement = {"status": "ok", "reference_iters": tight_iters,
                 "max_abs_diff": error(z_tight)}
  ref["converged_agreement"] = agreement
  speed = lambda r: ratio(r["images_per_s"], ref["images_per_s"])
  ref["speed_ratio"] = speed(rows[0])
  best = max((r for r in rows if r["max_abs_error"] <= ref["max_abs_error"]),
             key=lambda r: r["images_per_s"], default=None)
  ref["matched"] = None if best is None else {
      "tol": best["tol"], "relaxation": best["relaxation"],
      "speed_ratio": speed(best)}
  return result


def rate_cell(images_per_s: float) -> str:
  """Images/s to 3 significant digits, without exponents ('1234', '56.7',
  '0.123')."""
  return (f"{images_per_s:.0f}" if images_per_s >= 100
          else f"{images_per_s:.3g}")


def span_cell(row: Dict[str, Any], prefix: str = "") -> str:
  """A timing row's 'ms min-max' cell ('10.2-11.5')."""
  return f"{row[prefix + 'ms_min']:.1f}-{row[prefix + 'ms_max']:.1f}"


def quality_cell(row: Dict[str, Any], prefix: str = "") -> str:
  """An `adversarial_quality` as one cell: '80%, 0.106' (success rate, mean
  L2 of the successful ones), for an L0 row (`row['norm'] == 'l0'`) '69%,
  L0 36.3'; '-' where a figure is missing."""
  rate, l0 = row[prefix + "success_rate"], row.get("norm") == "l0"
  d = row[prefix + ("mean_l0" if l0 else "mean_l2")]
  return (markdown.percent(rate, 0) + "%, " + "L0 " * l0
          + ("-" if d is None else format(d, ".1f" if l0 else ".3f")))


def projection_table(result: Dict[str, Any],
                     max_iterations: Optional[int] = None) -> markdown.Table:
  """The table of a `time_projections` result: one row per advjax setting,
  then the reference's (or why it was skipped): stopping rule, images/s,
  ms per batch with min-max, iterations, converged examples and the error
  to the converged point. `max_iterations`: the rows' bound, when the
  result does not hold it."""
  b, ref = result["batch"], result["reference"]
  max_iterations = max_iterations or result.get("max_iterations")
  rows = [(f"advjax project_wasserstein (jit), relaxation "
           f"{r['relaxation']:g}", f"per example, dual change < {r['tol']:g}"
           f" (1 + abs g), max {max_iterations}",
           f"{r['images_per_s']:.0f}", f"{r['ms_per_batch']:.1f}",
           span_cell(r), f"median {r['median_iters']:.0f}, max "
           f"{r['max_iters']}", f"{r['converged']}/{b}",
           f"{r['max_abs_error']:.1e}") for r in result["rows"]]
  if ref["status"] != "ok":
    rows.append(("reference projected_sinkhorn", "-",
                 f"skipped: {ref['status']}", "-", "-", "-", "-", "-"))
  else:
    it = ref["iterations"]
    rows.append((
        "reference projected_sinkhorn (torch)", "whole batch, objective "
        f"change <= 1e-4 + 1e-4 abs obj, maxiters {ref['maxiters']}",
        f"{ref['images_per_s']:.1f}", f"{ref['ms_per_batch']:.1f}",
        span_cell(ref), f"{'?' if it is None else it} (batch)",
        "-" if it is None else
        ("no (hit maxiters)" if it > ref["maxiters"] else "yes"),
        f"{ref['max_abs_error']:.1e}"))
  return markdown.Table(("solver", "stopping rule", "images/s", "ms/batch",
                         "ms min-max", "iterations", "converged", "error"),
                        rows, "ll" + "r" * 6)


def items_table(rows: Sequence[Dict[str, Any]], peer_status: str, *,
                first: Sequence[Tuple[str, Any, str]] = (
                    ("attack", "attack", ""), ("norm", "norm", "")),
                extra: Sequence[Tuple[str, Any, str]] = (),
                peer: str = "torch") -> markdown.Table:
  """The side-by-side table of `time_items` rows: the `first` columns
  (`(header, path or function, unit)`), images/s, ms per batch and its
  min-max, the `extra` columns, then the peer's images/s and the ratio
  advjax / peer (or why the peer is missing, `peer_columns`)."""
  columns = [*first, ("images/s", "images_per_s", ".0f"),
             ("ms/batch", "ms_per_batch", ".1f"), ("ms min-max", span_cell, ""),
             *extra]
  columns += peer_columns([(f"{peer} images/s", "peer_images_per_s", ".0f"),
                           (f"advjax / {peer}", "peer_ratio", ".2f")],
                          peer_status)
  return markdown.rows_table(rows, columns, align=(
      "l" * len(first) + "r" * (len(columns) - len(first))))


def scored_table(rows: Sequence[Dict[str, Any]], peer_status: str, *,
                 peer: str = "torch",
                 peer_extra: Sequence[Tuple[str, Any, str]] = ()
                 ) -> markdown.Table:
  """The table of `score_adversarials` rows (with 'attack', 'setting',
  'batch', 'peer_batch' fields): speed beside the quality of the
  adversarials (`quality_cell`), advjax's then the peer's (advjax's on the
  peer's images in parentheses), `peer_extra` columns among the peer's."""
  rate = lambda key: lambda r: rate_cell(r[key])
  columns = [("attack", "attack", ""), ("setting", "setting", ""),
             ("batch", "batch", ""), ("images/s", rate("images_per_s"), ""),
             ("ms/image", "ms_per_image", ".3g"),
             ("ms/batch min-max", span_cell, ""),
             ("iterations", "median_iters", ".0f"),
             ("success, mean L2 (L0)", quality_cell, "")]
  columns += peer_columns([
      (f"{peer} batch", "peer_batch", ""),
      (f"{peer} images/s", rate("peer_images_per_s"), ""), *peer_extra,
      (f"{peer} success, mean L2 or L0 (advjax on those images)", lambda r:
       f"{quality_cell(r, 'peer_')} ({quality_cell(r, 'matched_')})", ""),
      (f"advjax / {peer}", "peer_ratio", ".2f")], peer_status, why_at=1)
  return markdown.rows_table(rows, columns, align="ll" + "r" * (
      len(columns) - 2))


def pairs_table(rows: Sequence[Dict[str, Any]], peer: str) -> markdown.Table:
  """The table of `time_items(..., together=True)` rows with success
  rates ('success_rate', 'peer_success_rate'): attack, norm, batch, ms of
  each, the ratio and both success rates."""
  pct = lambda v: markdown.percent(v, 0)
  return markdown.rows_table(rows, [
      ("attack", "attack", ""), ("norm", "norm", ""), ("batch", "batch", ""),
      ("advjax ms", "ms_per_batch", ".1f"),
      (f"{peer} ms", "peer_ms_per_batch", ".1f"),
      (f"advjax / {peer}", "peer_ratio", ".2f"),
      (f"success advjax / {peer} (%)", lambda r: pct(r["success_rate"])
       + " / " + pct(r["peer_success_rate"]), "")], align="ll" + "r" * 5)


def peer_missing(row: Dict[str, Any], status: str) -> Optional[str]:
  """Why a side-by-side row has no peer figures: 'not installed' or 'off'
  (from the peers' `status`, 'ok' when they ran) or 'n/a' (this row has
  no peer); None when it has them."""
  if status != "ok":
    return "not installed" if "not installed" in status else "off"
  return "n/a" if row.get("peer") is None else None


def peer_columns(columns: Sequence[Tuple[str, Any, str]], status: str,
                 why_at: int = 0) -> list[Tuple[str, Any, str]]:
  """Table columns `(header, path or function, unit)` (`report.rows_table`)
  of a peer's figures, each showing '-' on a row without them, but column
  `why_at`, which says why (`peer_missing`)."""
  def wrap(i, source, unit):
    def value(row):
      why = peer_missing(row, status)
      if why is not None:
        return why if i == why_at else "-"
      v = source(row) if callable(source) else markdown.get_path(row, source)
      return v if isinstance(v, str) else markdown.cell(v, unit)
    return value

  return [(h, wrap(i, s, u), u) for i, (h, s, u) in enumerate(columns)]


def peer_cells(row: Dict[str, Any], status: str,
               cells: Callable[[Dict[str, Any]], Sequence[str]],
               width: int, at: int = 0) -> Tuple[str, ...]:
  """The peer cells of a side-by-side row: `cells(row)` when the peer
  ran, else why not (`peer_missing`) in cell `at` of `width` and '-' in
  the rest."""
  why = peer_missing(row, status)
  if why is None:
    return tuple(cells(row))
  return ("-",) * at + (why,) + ("-",) * (width - 1 - at)


class StepCall:
  """A training step jitted on one mesh (`sharding.jit_sharded`: state
  replicated and donated, the batch sharded on 'data') that carries its
  state forward from call to call, on one batch: an item for `time_calls`.

  Attributes:
    metrics: the last call's metrics (None before the first).
  """

  def __init__(self, step: Callable, host_state: Any, x, y, mesh):
    """`step(state, x, y) -> (state, metrics)` on `mesh`, starting from
    `host_state` (host arrays, copied onto the mesh: every `StepCall` has
    its own buffers, so donation never reaches another's state)."""
    self._step = sharding.jit_sharded(step, mesh, num_batch_args=2)
    self._state = sharding.replicate(host_state, mesh)
    self._x, self._y = sharding.shard_batch((x, y), mesh)
    self.metrics = None

  def __call__(self) -> None:
    self._state, self.metrics = self._step(self._state, self._x, self._y)
    jax.block_until_ready((self._state, self.metrics))

  @property
  def params(self) -> Any:
    """The current parameters, on the host."""
    return jax.device_get(self._state.params)


def step_agreement(a: StepCall, b: StepCall, names: Tuple[str, str]
                   ) -> Dict[str, float]:
  """How far two `StepCall`s of one step from one state and batch (on two
  meshes, say) agree after their calls so far: `loss_<name>` of each (the
  last metrics' 'loss'), `loss_abs_diff` and `params_max_abs_diff`."""
  la, lb = float(a.metrics["loss"]), float(b.metrics["loss"])
  return {f"loss_{names[0]}": la, f"loss_{names[1]}": lb,
          "loss_abs_diff": abs(lb - la),
          "params_max_abs_diff": max_abs_diff(a.params, b.params)}


def epoch_fields(seconds: Sequence[float], images: int) -> Dict[str, Any]:
  """The report fields of a training run's epoch times, the first (which
  includes compilation) apart.

  Args:
    seconds: every epoch's seconds, in order, at least 2.
    images: images trained on per epoch.

  Returns:
    `{compile_plus_epoch_s, epoch_s (median of the later epochs),
    epoch_s_min, epoch_s_max (of those), epoch_s_all, images_per_s (images
    / epoch_s)}`.

  Raises:
    ValueError: fewer than 2 epochs.
  """
  if len(seconds) < 2:
    raise ValueError(f"epoch_fields needs >= 2 epochs, got {len(seconds)}.")
  steady = list(seconds[1:])
  epoch_s = statistics.median(steady)
  return {"compile_plus_epoch_s": seconds[0], "epoch_s": epoch_s,
          "epoch_s_min": min(steady), "epoch_s_max": max(steady),
          "epoch_s_all": list(seconds), "images_per_s": images / epoch_s}


def max_abs_diff(a: Any, b: Any) -> float:
  """The largest absolute difference between two pytrees of one structure
  (parameters of the same model from two runs)."""
  return max((float(np.max(np.abs(np.asarray(u) - np.asarray(v))))
              for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b))),
             default=0.)


def machine_line(m: Dict[str, Any]) -> str:
  """A report's line saying what `machine()` recorded ('machine: cpu
  (cpu), 2 CPUs, 8 JAX device(s), jax 0.10.2, python 3.11.7; GPU used:
  no')."""
  gpu = m.get("gpu_used")
  return (f"machine: {m['device_kind']} ({m['platform']}), {m['cpu_count']} "
          f"CPUs, {m['jax_devices']} JAX device(s), jax {m['jax']}, python "
          f"{m['python']}" + ("" if gpu is None else
                              f"; GPU used: {'yes' if gpu else 'no'}"))
