"""Minimal distance: the smallest adversarial perturbation per example.

For minimal-norm attacks (FAB, DeepFool, Carlini-Wagner, ...), the result
of an evaluation is a distance per example rather than a bit: the size, in
`norm`, of the smallest misclassified point the attack found (inf where it
found none, 0 where the clean input is already misclassified). Robust
accuracy at any eps follows from it without rerunning the attack. Runs on
the shared iterator (`batching.map_examples`): sharded, deterministic per
example, resumable.

`every_target` runs a targeted attack from each input towards every other
class; `target_cases` reduces those distances to Carlini & Wagner's best,
average and worst case (their Table IV).
"""
import time
from typing import Any, Callable, Dict, NamedTuple, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from advjax import checks, projections, rng, sharding
from advjax.attacks import base
from advjax.evaluation import batching
from advjax.evaluation.robust_accuracy import describe_attack

__all__ = ["MinimalDistance", "minimal_distance", "MinimalDistanceEvaluator",
           "DISTANCES", "pixels_changed", "target_cases", "EveryTarget",
           "every_target", "EveryTargetEvaluator", "CASES"]


class MinimalDistance(NamedTuple):
  """Per-example minimal distances found by an attack.

  Attributes:
    distance: `[N]` size of the smallest adversarial perturbation found
      (inf where none was found, 0 where x is misclassified).
    success: `[N]` bool, an adversarial example was found (or x is
      misclassified).
    x_adv: `[N, ...]` that example (x where none was found).
    clean: `[N]` bool, x is classified correctly.
    norm: the norm of `distance`.
  """
  distance: np.ndarray
  success: np.ndarray
  x_adv: np.ndarray
  clean: np.ndarray
  norm: str

  def accuracy_at(self, eps) -> np.ndarray:
    """Robust accuracy at each eps: the fraction with distance > eps."""
    eps = np.atleast_1d(np.asarray(eps, np.float64))
    return np.array([np.mean(self.distance > e) for e in eps])

  @property
  def median(self) -> float:
    """Median distance over the clean-correct examples (inf if over half
    were never fooled)."""
    d = self.distance[self.clean]
    return float(np.median(d)) if d.size else float("nan")

  def summary(self) -> dict:
    """The numbers a report needs: the norm, clean accuracy, the success
    rate and the median, mean and quartiles of the distances found (over
    the clean-correct examples; inf where none was found)."""
    d = self.distance[self.clean]
    found = d[np.isfinite(d)]
    q = (np.percentile(d, [25, 50, 75]).tolist() if d.size
         else [float("nan")] * 3)
    return {"norm": self.norm, "clean_accuracy": float(self.clean.mean()),
            "success_rate": float(self.success[self.clean].mean())
            if d.size else float("nan"),
            "median": self.median, "quartiles": q,
            "mean_found": float(found.mean()) if found.size
            else float("nan")}

  def table(self, eps: Sequence[float]) -> str:
    """Markdown: robust accuracy at each eps."""
    acc = self.accuracy_at(eps)
    rows = [f"| eps ({self.norm}) | robust accuracy |", "|---:|---:|"]
    rows += [f"| {e:.4g} | {100 * a:.2f} % |" for e, a in zip(eps, acc)]
    return "\n".join(rows)


DISTANCES = ("linf", "l2", "l1", "l0", "wasserstein")


def pixels_changed(delta):
  """Per example, the pixels of `[B, H, W, C]` (or features of `[B, D]`)
  that changed, channels counted together (Carlini & Wagner's L0)."""
  changed = jnp.abs(delta) > 0
  if changed.ndim == 4:
    changed = changed.any(-1)
  return changed.reshape(changed.shape[0], -1).sum(1).astype(jnp.float32)


def _fn(apply_fn, attack, norm, targeted):
  def fn(consts, batch):
    variables, key = consts
    x, y, mask = batch["x"], batch["y"], batch["mask"]
    model_fn = lambda z: apply_fn(variables, z)
    kwargs = {"key": rng.example_keys(key, batch["index"])} if (
        base.takes_key(attack)) else {}
    out = attack(model_fn, x, y, **kwargs)
    x_adv = out[0] if isinstance(out, tuple) else out
    # Targeted: y are the targets; "clean" is x not yet classified as y.
    clean = (jnp.argmax(model_fn(x), axis=-1) == y) != targeted
    wrong = (jnp.argmax(model_fn(x_adv), axis=-1) != y) != targeted
    if norm == "wasserstein":  # a radius search reports the radius it needed
      d = out.eps
    elif norm == "l0":
      d = pixels_changed(x_adv - x)
    else:
      d = projections.lp_norm(x_adv - x, norm)
    distance = jnp.where(~clean, 0., jnp.where(wrong, d, jnp.inf))
    return {"distance": distance, "success": (~clean | wrong) & mask,
            "clean": clean & mask,
            "x_adv": jnp.where(projections.per_example(clean & wrong, x.ndim),
                               x_adv, x)}
  return fn


def minimal_distance(apply_fn: Callable, variables, x, y, *,
                     attack: Callable, norm: str, targeted: bool = False,
                     key=None, batch_size: int = 256, mesh=None,
                     device_batch_size: Optional[int] = None,
                     workdir: Optional[str] = None,
                     progress: bool = False) -> MinimalDistance:
  """The minimal adversarial distance an attack finds, per example.

  Args:
    apply_fn: `(variables, x) -> logits`, inference mode.
    variables: the model's variables.
    x: `[N, ...]` float inputs; y: `[N]` int labels (with `targeted`, the
      target classes).
    attack: a minimal-norm attack `attack(model_fn, x, y, [key=])` with its
      settings fixed (e.g. `functools.partial(fab, norm='l2', steps=100)`);
      it may return `x_adv` or a result whose first field is `x_adv`.
    norm: the norm the distance is measured in ('linf', 'l2', 'l1'),
      'l0' (pixels changed, channels together), or 'wasserstein': the
      radius a search reports (`attack` returns a `SearchResult`, e.g. a
      partial of `wasserstein_search`).
    targeted: `y` are targets and `attack` a targeted one: success is the
      prediction `y` (distance 0 and `clean` False where x already is).
    key: `jax.random.key` for randomised attacks (per-example keys derive
      from it and the global index).
    batch_size, mesh, device_batch_size, workdir, progress: as
      `robust_accuracy`.

  Returns:
    `MinimalDistance`.
  """
  if norm not in DISTANCES:
    raise ValueError(f"minimal_distance: unknown norm {norm!r}; use one of "
                     f"{DISTANCES}.")
  x = np.asarray(x)
  y = np.asarray(y)
  checks.check_attack_inputs(lambda z: apply_fn(variables, z), x, y,
                             name="minimal_distance")
  key = rng.as_key(jax.random.key(0) if key is None else key)
  plan = batching.make_plan(batch_size, mesh, device_batch_size)
  n = x.shape[0]
  fields = ("distance", "success", "clean", "x_adv")
  result = {"distance": np.zeros((n,), np.float32),
            "success": np.zeros((n,), bool), "clean": np.zeros((n,), bool),
            "x_adv": x.copy()}
  todo = np.arange(n)
  store = None
  if workdir is not None:
    store = batching.ResultStore(workdir, {
        "evaluator": "minimal_distance", "attack": describe_attack(attack),
        "norm": norm, "targeted": bool(targeted), "key": np.asarray(jax.random.key_data(key)).tolist(),
        "n": n, "data": batching.fingerprint_arrays(x, y),
        "variables": batching.fingerprint_tree(variables),
        "device_batch": plan.device_batch})
    saved = store.load("distance")
    if saved is not None:
      for f in fields:
        result[f][saved["index"]] = saved[f]
      todo = np.setdiff1d(todo, saved["index"])
  fn = batching.jit_per_example(_fn(apply_fn, attack, norm, targeted), plan.mesh)
  consts = sharding.replicate((variables, key), plan.mesh)
  save = (lambda idx, out: store.save("distance", {"index": idx, **out})
          ) if store is not None else None
  bar = tqdm(total=n, initial=n - todo.size, desc="minimal distance",
             disable=not progress, leave=False)
  out = batching.map_examples(fn, consts, {"x": x, "y": y}, todo, plan,
                              on_step=save, bar=bar)
  bar.close()
  for f in fields:
    if todo.size:
      result[f][todo] = out[f]
  return MinimalDistance(norm=norm, **result)


class MinimalDistanceEvaluator(NamedTuple):
  """`minimal_distance` as an evaluator: settings now, `run` on a model."""
  attack: Callable
  norm: str
  targeted: bool = False
  key: Any = None
  batch_size: int = 256
  device_batch_size: Optional[int] = None
  workdir: Optional[str] = None
  progress: bool = False

  def run(self, apply_fn: Callable, variables, data) -> MinimalDistance:
    """Evaluates `apply_fn(variables, .)` on `data` (a Dataset or (x, y))."""
    x, y = batching.as_data(data)
    return minimal_distance(apply_fn, variables, x, y, attack=self.attack,
                            norm=self.norm, targeted=self.targeted,
                            key=self.key,
                            batch_size=self.batch_size,
                            device_batch_size=self.device_batch_size,
                            workdir=self.workdir, progress=self.progress)


CASES = ("best", "average", "worst")


def target_cases(distance, success) -> Dict[str, Dict[str, Any]]:
  """Best, average and worst case of distances to several targets per input.

  Carlini & Wagner's Table IV: best = each input's easiest reached target,
  worst = its hardest (a success only if every target was reached),
  average = every (input, target) pair.

  Args:
    distance: `[N, T]` distances (any value where not a success).
    success: `[N, T]` bool, the target was reached.

  Returns:
    `{case: {'success': fraction, 'distortion': mean over the successes,
    None where there are none}}` for the cases 'best', 'average', 'worst'.
  """
  distance = np.asarray(distance)
  success = np.asarray(success, bool)
  any_ok, all_ok = success.any(1), success.all(1)
  best = np.where(success, distance, np.inf).min(1)
  worst = np.where(success, distance, -np.inf).max(1)

  def case(values, ok):
    return {"success": float(np.mean(ok)) if ok.size else float("nan"),
            "distortion": float(np.mean(values[ok])) if ok.any() else None}

  return {"best": case(best, any_ok), "average": case(distance, success),
          "worst": case(worst, all_ok)}


class EveryTarget(NamedTuple):
  """Minimal distances from each input to every target (`every_target`).

  Attributes:
    distance: `[N, T]` distance to each target (inf: not reached).
    success: `[N, T]` bool, the target was reached.
    x_adv: `[N, T, ...]` the adversarial example found per target (x where
      none was).
    targets: `[N, T]` int, the targets: `(label + 1 .. label + K - 1) mod
      K`; untargeted, one column, the label.
    norm: the norm of `distance`.
    targeted: whether the attack was targeted.
    seconds: wall-clock seconds the attacks took (`every_target`).
  """
  distance: np.ndarray
  success: np.ndarray
  x_adv: np.ndarray
  targets: np.ndarray
  norm: str
  targeted: bool
  seconds: float = float("nan")

  def cases(self) -> Dict[str, Any]:
    """`target_cases`; untargeted, the best case only (average and worst
    None: there is no target to average over)."""
    out = target_cases(self.distance, self.success)
    return out if self.targeted else {**out, "average": None, "worst": None}

  def summary(self) -> Dict[str, Any]:
    """The norm, the best, average and worst cases (`cases`) and the
    seconds taken."""
    return {"norm": self.norm, **self.cases(), "seconds": self.seconds}

  def by_target(self, x, num_classes: int) -> Tuple[np.ndarray, np.ndarray]:
    """The examples in target order: `[N, K, ...]` images, column `t` the
    example reaching class `t` and the input itself at its own label, and
    `[N, K]` success (True at the label): a source x target grid (Carlini
    & Wagner's Figures 3-5).

    Args:
      x: `[N, ...]` the inputs attacked.
      num_classes: K.
    """
    if not self.targeted:
      raise ValueError("EveryTarget.by_target: an untargeted attack has no "
                       "target columns.")
    n = self.x_adv.shape[0]
    images = np.repeat(np.asarray(x)[:, None], num_classes, axis=1)
    success = np.ones((n, num_classes), bool)
    rows = np.arange(n)[:, None]
    images[rows, self.targets] = self.x_adv
    success[rows, self.targets] = self.success
    return images, success


def every_target(apply_fn: Callable, variables, x, y, *, attack: Callable,
                 norm: str, num_classes: int, targeted: bool = True,
                 **kwargs) -> EveryTarget:
  """The minimal distance from each input to every other class.

  Each input is attacked towards each class but its label (targeted), the
  `N x (K - 1)` pairs on `minimal_distance` (so per pair deterministic and
  independent of the batch size); untargeted, once per input.

  Args:
    apply_fn, variables: the model (`minimal_distance`).
    x: `[N, ...]` inputs; y: `[N]` int labels.
    attack: a targeted minimal-norm attack `attack(model_fn, x, targets)`
      (untargeted: `attack(model_fn, x, y)`).
    norm: `minimal_distance`'s norm ('l0' counts pixels changed).
    num_classes: K.
    targeted: every target, or one untargeted run per input.
    **kwargs: `minimal_distance`'s key, batch_size, mesh,
      device_batch_size, workdir, progress.

  Returns:
    `EveryTarget`.
  """
  x, y = np.asarray(x), np.asarray(y).astype(np.int32)
  n = x.shape[0]
  if targeted:
    targets = ((y[:, None] + np.arange(1, num_classes)[None, :])
               % num_classes).astype(np.int32)
    xs = np.repeat(x, num_classes - 1, axis=0)
  else:
    targets, xs = y[:, None], x
  start = time.perf_counter()
  md = minimal_distance(apply_fn, variables, xs, targets.reshape(-1),
                        attack=attack, norm=norm, targeted=targeted, **kwargs)
  t = targets.shape[1]
  return EveryTarget(md.distance.reshape(n, t), md.success.reshape(n, t),
                     md.x_adv.reshape((n, t) + x.shape[1:]), targets, norm,
                     targeted, time.perf_counter() - start)


class EveryTargetEvaluator(NamedTuple):
  """`every_target` as an evaluator: settings now, `run` on a model."""
  attack: Callable
  norm: str
  num_classes: int
  targeted: bool = True
  key: Any = None
  batch_size: int = 256
  device_batch_size: Optional[int] = None
  progress: bool = False

  def run(self, apply_fn: Callable, variables, data) -> EveryTarget:
    """Evaluates `apply_fn(variables, .)` on `data` (a Dataset or (x, y))."""
    x, y = batching.as_data(data)
    return every_target(apply_fn, variables, x, y, attack=self.attack,
                        norm=self.norm, num_classes=self.num_classes,
                        targeted=self.targeted, key=self.key,
                        batch_size=self.batch_size,
                        device_batch_size=self.device_batch_size,
                        progress=self.progress)
