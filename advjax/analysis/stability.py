"""Does a perturbation survive noise or a flip? (D'Costa & Sriramanan's
checks of the universality study.)

Both report, among the examples the perturbation fools, the fraction still
fooled after the change, beside the control: the clean images' accuracy
under the same change (a perturbation that "survives" a change that already
breaks the clean classifier proves nothing).

D'Costa & Sriramanan's single-perturbation studies run on the batched map
(`evaluation.map_batched`, per-example keys): `eps_sweep` attacks each input
at every eps of a grid, `epsilon_cliff` finds where along it the target
class takes over (their Table 1), `perturbed_probs` classifies inputs with
one perturbation (and noise) added, `first_reaching` picks the first input
a directed attack drives to its target, and `perturbation_checks` reuses
its perturbation under noise, on the mirrored input and on other inputs
(their Figures 14-16).
"""
import functools
from typing import Callable, Dict, NamedTuple, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from advjax import rng
from advjax.analysis.transfer import misclassified
from advjax.attacks import base
from advjax.evaluation import batching
from advjax.evaluation.predict import predict
from advjax.types import Array, Bounds, ModelFn, PRNGKey

__all__ = ["noise_stability", "flip_stability",
           "EpsSweep", "eps_sweep", "Cliff", "epsilon_cliff",
           "perturbed_probs", "first_reaching", "perturbation_checks",
           "cliff_study", "reused_perturbation"]


def _still_fooled(fooled, fooled_after):
  n = int(fooled.sum())
  return float((fooled & fooled_after).sum() / n) if n else float("nan")


def noise_stability(model_fn: ModelFn, x: Array, x_adv: Array, y: Array, *,
                    key: PRNGKey, magnitudes: Sequence[float],
                    bounds: Bounds = (0., 1.)) -> Dict[str, list]:
  """Uniform noise `U(-a, a)` added to each adversarial (and clean) image.

  Args:
    model_fn: pure `[B, ...] -> [B, K]` logits.
    x, x_adv: `[N, ...]` clean and adversarial images; y: `[N]` labels.
    key: the noise: example i's draw at magnitude j from
      `fold_in(fold_in(key, j), i)` (`rng.example_keys`: independent of N
      and of the other examples), the same for its clean and adversarial
      image.
    magnitudes: the a's (in the units of the box).
    bounds: noisy images are clipped into the box.

  Returns:
    `{"magnitude": [...], "still_fooled": [...], "clean_accuracy": [...]}`:
    per magnitude, the fraction of fooled examples still fooled and the
    clean accuracy under the same noise.
  """
  fooled = misclassified(model_fn, x_adv, y)
  out = {"magnitude": [], "still_fooled": [], "clean_accuracy": []}
  index = np.arange(x.shape[0])
  for i, a in enumerate(magnitudes):
    u = jax.vmap(lambda k, a=a: jax.random.uniform(
        k, x.shape[1:], x.dtype, -a, a))(rng.example_keys(
            jax.random.fold_in(rng.as_key(key), i), index))
    out["magnitude"].append(float(a))
    out["still_fooled"].append(_still_fooled(
        fooled, misclassified(model_fn, jnp.clip(x_adv + u, *bounds), y)))
    out["clean_accuracy"].append(float(1. - misclassified(
        model_fn, jnp.clip(x + u, *bounds), y).mean()))
  return out


def flip_stability(model_fn: ModelFn, x: Array, x_adv: Array, y: Array, *,
                   bounds: Bounds = (0., 1.)) -> Dict[str, float]:
  """Left-right flips (axis 2 of NHWC).

  Returns:
    `flipped_adversarial`: fraction of fooled examples whose flipped
    adversarial image `flip(x + delta)` is still misclassified (the
    perturbation moves with the image); `perturbation_on_flipped`: the
    same for `flip(x) + delta` (the perturbation stays where it was while
    the image moves); both among examples whose flipped clean image is
    classified correctly, so a flip that alone changes the class is not
    counted; `flipped_clean_accuracy`: the control.
  """
  flip = lambda z: z[:, :, ::-1]
  delta = x_adv - x
  flip_ok = ~misclassified(model_fn, flip(x), y)
  fooled = misclassified(model_fn, x_adv, y) & flip_ok
  return {
      "flipped_adversarial": _still_fooled(
          fooled, misclassified(model_fn, flip(x_adv), y)),
      "perturbation_on_flipped": _still_fooled(
          fooled, misclassified(model_fn, jnp.clip(flip(x) + delta, *bounds), y)),
      "flipped_clean_accuracy": float(flip_ok.mean()),
  }


class EpsSweep(NamedTuple):
  """An attack of each input at every eps of a grid (`eps_sweep`).

  Attributes:
    eps: `[L]` the radii.
    probs: `[N, L, K]` float32 softmax of each adversarial input.
    delta: `[N, L, ...]` each perturbation, `x_adv - x`.
  """
  eps: np.ndarray
  probs: np.ndarray
  delta: np.ndarray

  @property
  def pred(self) -> np.ndarray:
    """`[N, L]` the predicted class of each adversarial input."""
    return self.probs.argmax(-1)

  @property
  def linf(self) -> np.ndarray:
    """`[N, L]` each perturbation's Linf norm."""
    return np.abs(self.delta).reshape(self.delta.shape[:2] + (-1,)).max(-1)

  def first_fooled(self, y) -> np.ndarray:
    """`[N]` the first radius index whose prediction is not `y` (-1: none)."""
    wrong = self.pred != np.asarray(y)[:, None]
    return np.where(wrong.any(1), wrong.argmax(1), -1)

  def delta_at(self, index) -> np.ndarray:
    """`[N, ...]` each example's perturbation at its radius index (zero
    where the index is -1)."""
    index = np.asarray(index)
    d = self.delta[np.arange(len(index)), np.maximum(index, 0)]
    return np.where((index >= 0).reshape((-1,) + (1,) * (d.ndim - 1)), d, 0)


@functools.lru_cache(maxsize=64)
def _sweep_fn(apply_fn: Callable, attack: Callable):
  takes_key = base.takes_key(attack)

  def fn(consts, batch):
    variables, eps = consts
    x, b, l = batch["x"], batch["x"].shape[0], eps.shape[0]
    xb = jnp.repeat(x, l, axis=0)
    model_fn = lambda z: apply_fn(variables, z)
    kw = {}
    if takes_key:  # one key per (example, eps): fold_in(key_n, l)
      kw["key"] = jax.vmap(lambda k: jax.vmap(
          lambda j: jax.random.fold_in(k, j))(jnp.arange(l)))(
              batch["key"]).reshape(-1)
    adv = attack(model_fn, xb, jnp.repeat(batch["y"], l),
                 eps=jnp.tile(eps, b), **kw)
    probs = jax.nn.softmax(model_fn(adv).astype(jnp.float32), -1)
    return {"probs": probs.reshape(b, l, -1),
            "delta": (adv - xb).reshape((b, l) + x.shape[1:])}
  return fn


def eps_sweep(apply_fn: Callable, variables, x, y, eps: Sequence[float], *,
              attack: Callable, key: Optional[PRNGKey] = None,
              **map_kwargs) -> EpsSweep:
  """Attacks every input of `x` at every radius of `eps`, on the batched
  map (an example's result does not depend on the batch).

  Args:
    apply_fn: `(variables, x) -> logits`; variables its variables.
    x: `[N, H, W, C]` inputs; y: `[N]` the labels the attack is given (the
      targets of a targeted attack).
    eps: `[L]` radii (traced: one compilation for any values).
    attack: `attack(model_fn, x, y, eps=[B], [key=])` with its settings
      fixed (a `functools.partial` of `attacks.pgd`, say); keep it one
      object across calls (the compiled program is cached per attack).
    key: the attack's randomness: example n at radius l draws from
      `fold_in(fold_in(key, n), l)` (default `jax.random.key(0)`).
    **map_kwargs: `map_batched`'s batch_size, mesh, device_batch_size,
      index, progress, desc.

  Returns:
    `EpsSweep` of the examples mapped (all, or `index`'s).
  """
  eps = np.asarray(eps, np.float32).reshape(-1)
  if eps.size == 0 or eps.min() < 0:
    raise ValueError(f"eps_sweep: eps must be nonnegative radii, got {eps}.")
  out = batching.map_batched(
      _sweep_fn(apply_fn, attack),
      {"x": np.asarray(x), "y": np.asarray(y, np.int32)}, (variables, eps),
      key=jax.random.key(0) if key is None else key, **map_kwargs)
  return EpsSweep(eps, out["probs"], out["delta"])


class Cliff(NamedTuple):
  """Where along an eps sweep the target class takes over (`epsilon_cliff`).

  Attributes:
    jump: `[N]` the largest rise of the target's probability between two
      consecutive radii (0 with fewer than two).
    at: `[N]` the radius index that rise ends at (0 with none).
    first: `[N]` the first radius index predicted as the target, -1 if
      none is.
  """
  jump: np.ndarray
  at: np.ndarray
  first: np.ndarray

  @property
  def reaches(self) -> np.ndarray:
    """`[N]` bool: the target is predicted at some radius."""
    return self.first >= 0


def epsilon_cliff(probs, target: int) -> Cliff:
  """D'Costa & Sriramanan's epsilon cliff (Table 1): per example of an eps
  sweep, the largest one-step rise of the target's probability and the
  first radius predicted as the target.

  Args:
    probs: `[N, L, K]` probabilities along the sweep (`EpsSweep.probs`),
      radii increasing.
    target: the target class.
  """
  probs = np.asarray(probs)
  if probs.ndim != 3 or not 0 <= target < probs.shape[-1]:
    raise ValueError(f"epsilon_cliff: probs must be [N, L, K] and target a "
                     f"class, got {probs.shape} and {target}.")
  rise = np.diff(probs[..., target], axis=1)
  hit = probs.argmax(-1) == target
  if rise.shape[1] == 0:
    rise = np.zeros((probs.shape[0], 1))
  return Cliff(rise.max(1), np.where(rise.max(1) > 0, rise.argmax(1) + 1, 0),
               np.where(hit.any(1), hit.argmax(1), -1))


NOISES = (None, "uniform", "sign")


@functools.lru_cache(maxsize=64)
def _perturbed_fn(apply_fn: Callable, noise: Optional[str], bounds: Bounds):
  def fn(consts, batch):
    variables, low, high = consts
    z = batch["x"] + batch["delta"]
    if noise == "uniform":
      z = z + jax.random.uniform(batch["key"], z.shape, z.dtype, low, high)
    elif noise == "sign":
      z = z + high * jax.random.rademacher(batch["key"], z.shape, z.dtype)
    logits = apply_fn(variables, jnp.clip(z, *bounds)[None])[0]
    return jax.nn.softmax(logits.astype(jnp.float32), -1)
  return fn


def perturbed_probs(apply_fn: Callable, variables, x, delta, *,
                    noise: Optional[str] = None, low: float = 0.,
                    high: float = 0., key: Optional[PRNGKey] = None,
                    bounds: Bounds = (0., 1.), **map_kwargs) -> np.ndarray:
  """`[N, K]` the probabilities of `clip(x + delta + u)` for each input, on
  the batched map; `u` is drawn per example from `fold_in(key, n)`, so two
  calls with the same key and inputs draw the same noise.

  Args:
    apply_fn: `(variables, x) -> logits`; variables its variables.
    x: `[N, ...]` inputs.
    delta: one perturbation `[...]` added to every input, or `[N, ...]`.
    noise: None; 'uniform': `u ~ U(low, high)` per pixel; 'sign': `u =
      +-high` per pixel (Rademacher).
    low, high: the noise's range (traced).
    key: the noise's key (default `jax.random.key(0)`).
    bounds: the box the sum is clipped into.
    **map_kwargs: `map_batched`'s batch_size, mesh, device_batch_size,
      progress.
  """
  if noise not in NOISES:
    raise ValueError(f"perturbed_probs: noise must be one of {NOISES}, got "
                     f"{noise!r}.")
  x = np.asarray(x)
  return batching.map_batched(
      _perturbed_fn(apply_fn, noise, tuple(bounds)),
      {"x": x, "delta": np.broadcast_to(np.asarray(delta, x.dtype), x.shape)},
      (variables, np.float32(low), np.float32(high)), per_example=True,
      key=jax.random.key(0) if key is None else key, **map_kwargs)


def first_reaching(apply_fn: Callable, variables, x, candidates, *,
                   target: int, eps: Sequence[float], attack: Callable,
                   chunk: int = 16, **map_kwargs
                   ) -> Tuple[Optional[int], int, Optional[EpsSweep]]:
  """The first of `candidates` that a directed attack drives to `target`
  at some radius of `eps` (`eps_sweep`, `chunk` candidates at a time,
  stopping after the chunk that holds one).

  Returns:
    `(position in candidates or None, candidates swept, its EpsSweep of
    one example or None)`.
  """
  candidates = np.asarray(candidates, np.int64)
  map_kwargs.setdefault("device_batch_size", chunk)
  y = np.full(len(x), target, np.int32)
  for start in range(0, candidates.size, chunk):
    s = eps_sweep(apply_fn, variables, x, y, eps, attack=attack,
                  index=candidates[start:start + chunk], **map_kwargs)
    hits = np.flatnonzero(epsilon_cliff(s.probs, target).reaches)
    if hits.size:
      h = int(hits[0])
      return start + h, start + h + 1, EpsSweep(s.eps, s.probs[h:h + 1],
                                                s.delta[h:h + 1])
  return None, int(candidates.size), None


def _top2(p):
  order = [int(k) for k in np.argsort(p)[::-1][:2]]
  return order, [float(p[k]) for k in order]


def perturbation_checks(apply_fn: Callable, variables, x, y, i: int, delta,
                        *, target: int, eps: float, noise_high: float,
                        draws: int, key: PRNGKey, level_deltas=None,
                        bounds: Bounds = (0., 1.), **map_kwargs
                        ) -> Dict[str, object]:
  """D'Costa & Sriramanan's Figures 14-16: the directed perturbation
  `delta` of input `i` (radius `eps`) reused, on the batched map.

  - Figure 14: under `draws` draws of uniform noise in `[0, noise_high]`
    per pixel (and the same noise on the clean input, the control);
  - Figure 15: on the mirrored (left-right) input; with `level_deltas`
    (`[L, ...]`, the perturbations at increasing radii), the first whose
    perturbation fools the mirror;
  - Figure 16: on every other input, with sign noise of `eps` as the
    control, and on the one the model is least sure of (smallest gap
    between its top two probabilities).

  Args:
    apply_fn, variables: the model; x: `[N, H, W, C]` inputs, y: `[N]`.
    i: the input the perturbation was made for; delta: `[H, W, C]`.
    target: the class the perturbation aims at.
    key: the noise draws (`fold_in(key, 0)`: uniform, `1`: sign).

  Returns:
    The measured numbers (fractions, classes, probabilities; see the
    keys), the pictured images under 'images' and the class the model
    predicts for each under 'preds'.
  """
  x, y = np.asarray(x), np.asarray(y)
  clip = lambda z: np.clip(z, *bounds)
  probs = lambda z, d=0., **kw: perturbed_probs(
      apply_fn, variables, z, d, bounds=bounds, **kw, **map_kwargs)
  label, mirror = int(y[i]), x[i, :, ::-1]
  p_clean = predict(apply_fn, variables, x, output="probs", **map_kwargs)
  p_adv, p_mirror, p_mirror_adv = probs(
      np.stack([x[i], mirror, mirror]), np.stack([delta, 0 * delta, delta]))
  noise = dict(noise="uniform", high=noise_high, key=rng.fold_in(key, 0))
  tiled = np.repeat(x[i:i + 1], draws, 0)
  p_noisy, p_noise_only = probs(tiled, delta, **noise), probs(tiled, **noise)
  noisy0 = clip(x[i] + delta + np.asarray(jax.random.uniform(
      rng.fold_in(rng.fold_in(key, 0), 0), x.shape[1:], x.dtype, 0.,
      noise_high)))
  others = np.setdiff1d(np.arange(len(y)), [i])
  pred = p_clean.argmax(-1)[others]
  moved = probs(x[others], delta).argmax(-1)
  control = probs(x[others], noise="sign", high=eps,
                  key=rng.fold_in(key, 1)).argmax(-1)
  to_target = (moved == target) & (pred != target)
  same = y[others] == label
  gap = np.diff(np.sort(p_clean[others], -1)[:, -2:], axis=-1)[:, 0]
  j = int(others[np.argmin(gap)])
  j_classes, j_before = _top2(p_clean[j])
  p_j = probs(x[j:j + 1], delta)[0]
  needed = None
  if level_deltas is not None:
    wrong = probs(np.repeat(mirror[None], len(level_deltas), 0),
                  level_deltas).argmax(-1) != label
    needed = int(wrong.argmax()) if wrong.any() else None
  return {
      "index": int(i), "label": label, "clean_confidence": float(
          p_clean[i, label]),
      "adv_pred": int(p_adv.argmax()), "adv_confidence": float(p_adv.max()),
      "noise_fooled": float(np.mean(p_noisy.argmax(-1) != label)),
      "noise_target": float(np.mean(p_noisy.argmax(-1) == target)),
      "noise_first_pred": int(p_noisy[0].argmax()),
      "noise_first_confidence": float(p_noisy[0].max()),
      "noise_only_correct": float(np.mean(p_noise_only.argmax(-1) == label)),
      "mirror_clean_confidence": float(p_mirror[label]),
      "mirror_clean_target_prob": float(p_mirror[target]),
      "mirror_adv_pred": int(p_mirror_adv.argmax()),
      "mirror_adv_confidence": float(p_mirror_adv.max()),
      "mirror_adv_target_prob": float(p_mirror_adv[target]),
      "mirror_fooled": bool(p_mirror_adv.argmax() != label),
      "mirror_level_needed": needed, "others": int(others.size),
      "others_moved": float(np.mean(moved != pred)),
      "others_moved_control": float(np.mean(control != pred)),
      "others_to_target": float(to_target.mean()),
      "same_label_to_target": (float(to_target[same].mean()) if same.any()
                               else None),
      "unsure_index": j, "unsure_label": int(y[j]),
      "unsure_classes": j_classes, "unsure_before": j_before,
      "unsure_after": [float(p_j[k]) for k in j_classes],
      "unsure_after_pred": int(p_j.argmax()),
      "unsure_swapped": bool(p_j.argmax() == j_classes[1]),
      "preds": {"clean": int(p_clean[i].argmax()), "adv": int(p_adv.argmax()),
                "noisy": int(p_noisy[0].argmax()), "mirror": int(
                    p_mirror.argmax()), "mirror_adv": int(
                        p_mirror_adv.argmax()), "unsure": int(
                            p_clean[j].argmax()),
                "unsure_adv": int(p_j.argmax())},
      "images": {"clean": x[i], "delta": np.asarray(delta),
                 "adv": clip(x[i] + delta), "noisy": noisy0, "mirror": mirror,
                 "mirror_adv": clip(mirror + delta), "unsure": x[j],
                 "unsure_adv": clip(x[j] + delta)}}


def cliff_study(apply_fn: Callable, nets: Dict[str, object], x, y, *,
                label: int, target: int, eps: Sequence[float],
                attack: Callable, max_scan: int = 256,
                **map_kwargs) -> Dict[str, object]:
  """D'Costa & Sriramanan's Table 1 on each net of `nets`: the directed
  attack of the images of class `label` (the first `max_scan` of `x`)
  towards `target` at every radius of `eps` (`eps_sweep`,
  `epsilon_cliff`), and the sweep of one image: the first the first net
  classifies correctly and drives to the target (else the first it
  classifies correctly), for every net.

  Returns:
    `{'index': that image's index in x, net: {'pred', 'confidence',
    'target_prob', 'label_prob' (each [L] along the sweep), 'first' (the
    first radius index predicted as the target, -1: none), 'max_jump' (its
    largest one-step rise of the target probability), and over all images
    'images', 'images_reaching', 'images_jump_50' (rising by 0.5 in one
    step), 'max_jump_all', 'reach' (the largest Linf perturbation)}}`; {}
    without images of the class.
  """
  index = np.flatnonzero(np.asarray(y) == label)[:max_scan]
  out, chosen = {}, None
  for name, variables in nets.items() if index.size else ():
    s = eps_sweep(apply_fn, variables, x, np.full(len(x), target), eps,
                  attack=attack, index=index, **map_kwargs)
    c = epsilon_cliff(s.probs, target)
    if chosen is None:
      right = s.pred[:, 0] == label
      fits = right & c.reaches
      chosen = int(np.argmax(fits) if fits.any() else np.argmax(right))
      out["index"] = int(index[chosen])
    p = s.probs[chosen]
    out[name] = {"pred": p.argmax(-1), "confidence": p.max(-1),
                 "target_prob": p[:, target], "label_prob": p[:, label],
                 "first": int(c.first[chosen]),
                 "max_jump": float(c.jump[chosen]), "images": int(index.size),
                 "images_reaching": int(c.reaches.sum()),
                 "images_jump_50": int((c.jump >= 0.5).sum()),
                 "max_jump_all": float(c.jump.max()),
                 "reach": float(s.linf[:, -1].max())}
  return out


def reused_perturbation(apply_fn: Callable, variables, x, y, *, target: int,
                        eps: Sequence[float], attack: Callable,
                        noise_factor: float, draws: int, key: PRNGKey,
                        max_scan: int = 256, **map_kwargs
                        ) -> Dict[str, object]:
  """D'Costa & Sriramanan's Figures 12-16: a directed perturbation reused.

  The image: the first of `x` (up to `max_scan` candidates) not of class
  `target`, classified correctly and so is its mirror image, that the
  directed `attack` drives to `target` at some radius of `eps`
  (`first_reaching`). Its perturbation at the smallest radius whose target
  probability is within 0.01 of the sweep's best (the source's attack
  converged, at 99.97 %) is reused (`perturbation_checks`, noise up to
  `noise_factor` times that radius).

  Returns:
    `{'found', 'scanned'}` and, when found, `perturbation_checks`'s
    numbers with 'level' (the radius index), 'eps', 'first_level' (the
    first predicted as the target), its target probability
    'first_level_target_prob' and 'target_prob' along the sweep.
  """
  x, y = np.asarray(x), np.asarray(y)
  pred = lambda z: predict(apply_fn, variables, z, **map_kwargs)
  cand = np.flatnonzero((pred(x) == y) & (pred(x[:, :, ::-1]) == y)
                        & (y != target))[:max_scan]
  c, scanned, s = first_reaching(apply_fn, variables, x, cand, target=target,
                                 eps=eps, attack=attack, **map_kwargs)
  if c is None:
    return {"found": False, "scanned": scanned}
  pt, first = s.probs[0, :, target], int(np.argmax(s.pred[0] == target))
  level = max(first, int(np.argmax(pt >= pt.max() - 0.01)))
  e = float(s.eps[level])
  return {"found": True, "scanned": scanned, "level": level, "eps": e,
          "first_level": first, "first_level_target_prob": float(pt[first]),
          "target_prob": pt, **perturbation_checks(
              apply_fn, variables, x, y, int(cand[c]), s.delta[0, level],
              target=target, eps=e, noise_high=noise_factor * e, draws=draws,
              key=key, level_deltas=s.delta[0], **map_kwargs)}
