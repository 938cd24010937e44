"""Kurakin et al.'s physical-world study of adversarial images, per example.

Kurakin, Goodfellow and Bengio (2017) print clean and adversarial images on
one page, photograph it, and ask how many adversarial images the photo (or
a brightness, contrast, blur, noise or JPEG transform) "destroys": brings
back to the true class (eq. (1), `destruction.destruction_rate`), on a
random set of images and on a prefiltered one (`destruction.prefilter`).

- `physical_world`: per example, on the batched map, whether the clean
  image and each attack's adversarial image are classified correctly
  (top-k), with their class probabilities; the same after a simulated
  print and photograph (`transforms.print_photo`; an example's clean and
  adversarial images get the same draws, as on one page); and each
  adversarial image under every transform of a grid
  (`transforms.transform_grid`), top-1.
- `PhysicalWorld.stats(name, where)`: the numbers of a set of examples;
  `summary()` those of the random and the prefiltered sets.
- `photographs`: an example's photo redrawn (for a figure).
- `PhysicalWorldEvaluator`: the whole study on a model (the attacks run
  by `evaluation.adversarial_examples`), with a few figure examples.

Every draw comes from `fold_in(key, global_index)`, so no result depends
on the batch size or the number of devices.
"""
import functools
from typing import (Any, Callable, Dict, Mapping, NamedTuple, Optional,
                    Sequence, Tuple)

import jax
import numpy as np

from advjax import rng, transforms
from advjax.analysis.destruction import (correct_under, destruction_rate,
                                         prefilter)
from advjax.evaluation import batching
from advjax.evaluation.adversarial import adversarial_examples
from advjax.evaluation.predict import predict
from advjax.evaluation.robust_accuracy import in_top_k
from advjax.types import PRNGKey

__all__ = ["PhysicalWorld", "physical_world", "photographs",
           "PhysicalWorldEvaluator"]


class PhysicalWorld(NamedTuple):
  """Per-example results of the study (`physical_world`).

  Attributes:
    labels: `[N]` the true labels.
    top_k: the k of the top-k results.
    correct: image set ('clean' and each attack's name) -> `[N, len(top_k)]`
      bool: the label among the k largest logits.
    probs: image set -> `[N, K]` class probabilities.
    photo: image set -> `[N, len(top_k)]` bool, after the simulated photo.
    transformed: attack -> transform name -> `[N]` bool, top-1 correct
      under the transform.
    random: `[N]` bool, the random set (None: every example).
    confidence: the prefilter's probability threshold.
    figure: a few examples shown in a figure: 'y', 'images' and 'pred'
      (image set and its photo -> `[n, ...]`), or None.
  """
  labels: np.ndarray
  top_k: Tuple[int, ...]
  correct: Dict[str, np.ndarray]
  probs: Dict[str, np.ndarray]
  photo: Dict[str, np.ndarray]
  transformed: Dict[str, Dict[str, np.ndarray]]
  random: Optional[np.ndarray] = None
  confidence: float = 0.8
  figure: Optional[Dict[str, Any]] = None

  def prefiltered(self, name: str) -> np.ndarray:
    """`[N]` bool, the prefiltered set of attack `name`: clean right and
    adversarial wrong, both with top-1 probability above `confidence`."""
    return prefilter(self.labels, self.probs["clean"], self.probs[name],
                     self.confidence)

  def stats(self, name: str, where: Optional[np.ndarray] = None) -> dict:
    """The numbers of attack `name` on the examples `where` (`[N]` bool;
    None: all): 'n', 'fooled' (clean right, adversarial wrong, top-1),
    'destruction' (transform name -> rate) and 'photo': the accuracies
    ('clean', 'adversarial', 'photo_clean', 'photo_adversarial') and the
    destruction rates ('destruction'), one per k. A rate or accuracy of
    nothing is NaN."""
    s = (np.ones(len(self.labels), bool) if where is None
         else np.asarray(where, bool))
    c, a = self.correct["clean"][s], self.correct[name][s]
    pa = self.photo[name][s]
    mean = lambda v: (v.mean(0).tolist() if len(v)
                      else [float("nan")] * len(self.top_k))
    return {
        "n": int(s.sum()), "fooled": int((c[:, 0] & ~a[:, 0]).sum()),
        "destruction": {t: destruction_rate(c[:, 0], a[:, 0], v[s])
                        for t, v in self.transformed[name].items()},
        "photo": {"clean": mean(c), "adversarial": mean(a),
                  "photo_clean": mean(self.photo["clean"][s]),
                  "photo_adversarial": mean(pa), "destruction": [
                      destruction_rate(c[:, j], a[:, j], pa[:, j])
                      for j in range(len(self.top_k))]}}

  def summary(self) -> dict:
    """'top_k', 'sets' ('random' and 'prefiltered' -> attack -> `stats`)
    and 'figure'."""
    return {"top_k": list(self.top_k), "figure": self.figure, "sets": {
        "random": {m: self.stats(m, self.random) for m in self.transformed},
        "prefiltered": {m: self.stats(m, self.prefiltered(m))
                        for m in self.transformed}}}


def _keys(key: Optional[PRNGKey]):
  """The photo's, the transforms' and the random set's keys."""
  return tuple(jax.random.split(
      jax.random.key(0) if key is None else rng.as_key(key), 3))


def physical_world(apply_fn: Callable, variables, x, y,
                   adversarial: Mapping[str, np.ndarray], *,
                   grid: Sequence[transforms.Transform],
                   chain: transforms.PhotoChain,
                   key: Optional[PRNGKey] = None,
                   top_k: Sequence[int] = (1,),
                   **map_kwargs) -> PhysicalWorld:
  """Kurakin et al.'s per-example results on clean and adversarial images.

  Args:
    apply_fn: `(variables, x) -> logits`; variables its variables.
    x: `[N, H, W, C]` clean images in [0, 1]; y: `[N]` labels.
    adversarial: attack name -> `[N, H, W, C]` its adversarial images
      (`evaluation.adversarial_examples`); no attack named 'clean'.
    grid: the transforms of the destruction rates (`transforms.
      transform_grid`), applied to the adversarial images.
    chain: the simulated photo's strengths.
    key: the draws' key (default `key(0)`); the photo's and the
      transforms' keys are split from it, and example n's draws come from
      `fold_in(that key, n)` (`correct_under`): the same photo for its
      clean and its adversarial images.
    top_k: the k of the top-k results.
    **map_kwargs: `map_batched`'s batch_size, mesh, device_batch_size,
      progress.

  Raises:
    ValueError: an attack named 'clean'.
  """
  if "clean" in adversarial:
    raise ValueError("physical_world: 'clean' names the clean images; "
                     "rename that attack.")
  y = np.asarray(y, np.int32)
  top_k = tuple(int(k) for k in top_k)
  photo_key, grid_key, _ = _keys(key)
  images = {"clean": x, **adversarial}
  logits = {k: predict(apply_fn, variables, v, output="logits", **map_kwargs)
            for k, v in images.items()}
  return PhysicalWorld(
      y, top_k, {k: np.asarray(in_top_k(v, y, top_k))
                 for k, v in logits.items()},
      {k: np.asarray(jax.nn.softmax(v, -1)) for k, v in logits.items()},
      {k: correct_under(apply_fn, variables, v, y, [chain], key=photo_key,
                        top_k=top_k, **map_kwargs)[chain.name]
       for k, v in images.items()},
      {k: correct_under(apply_fn, variables, v, y, grid, key=grid_key,
                        **map_kwargs) for k, v in adversarial.items()})


@functools.lru_cache(maxsize=32)
def _photo_fn(chain: transforms.PhotoChain):
  def fn(_, batch):
    return transforms.print_photo(batch["x"], chain,
                                  key=rng.fold_in(batch["key"], 0))
  return fn


def photographs(x, chain: transforms.PhotoChain, index, *,
                key: Optional[PRNGKey] = None, **map_kwargs) -> np.ndarray:
  """The simulated photos of the examples `index` of `x` (`[N, ...]`),
  with the draws `physical_world(..., key=key)` made for them: `[n, ...]`
  (what the model saw, for a figure)."""
  return batching.map_batched(_photo_fn(chain), {"x": x}, None,
                              key=_keys(key)[0], index=np.asarray(index),
                              **map_kwargs)


class PhysicalWorldEvaluator(NamedTuple):
  """The study on a model: each attack's adversarial images at `eps`,
  `physical_world`, the random set (`random_examples` drawn from the
  key; 0: every example) and the first `figure_examples` of the first
  attack's prefiltered set (else of the random set) with their photos.

  Attributes: as the arguments of `physical_world`, and
    attacks: name -> `attack(model_fn, x, y, *, eps)` (hyperparameters
      fixed with functools.partial).
    eps: their budget.
  """
  attacks: Mapping[str, Callable]
  eps: float
  grid: Sequence[transforms.Transform]
  chain: transforms.PhotoChain
  key: Optional[PRNGKey] = None
  top_k: Sequence[int] = (1,)
  confidence: float = 0.8
  random_examples: int = 0
  figure_examples: int = 0
  batch_size: int = 256
  progress: bool = False

  def run(self, apply_fn: Callable, variables, data) -> PhysicalWorld:
    """Evaluates `apply_fn(variables, .)` on `data` (a Dataset or (x, y))."""
    x, y = batching.as_data(data)
    kw = dict(batch_size=self.batch_size, progress=self.progress)
    adv = {m: adversarial_examples(apply_fn, variables, x, y, attack=a,
                                   eps=self.eps, **kw)
           for m, a in self.attacks.items()}
    world = physical_world(apply_fn, variables, x, y, adv, grid=self.grid,
                           chain=self.chain, key=self.key, top_k=self.top_k,
                           **kw)
    n = len(y)
    order = np.asarray(jax.random.permutation(_keys(self.key)[2], n))
    random = np.isin(np.arange(n), order[:self.random_examples or n])
    world = world._replace(random=random, confidence=self.confidence)
    first = world.prefiltered(next(iter(adv)))
    idx = np.flatnonzero(first if first.any() else random)[
        :self.figure_examples]
    images = {}
    for k, v in {"clean": x, **adv}.items():
      images[k] = v[idx]
      images[f"{k} photo"] = photographs(v, self.chain, idx, key=self.key,
                                         **kw)
    return world._replace(figure={"y": y[idx], "images": images, "pred": {
        k: predict(apply_fn, variables, v, **kw) for k, v in images.items()}})
