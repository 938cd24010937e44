"""Adversarial perturbations across the epochs of a training run.

Metzen (2018, "Universality, robustness, and detectability of adversarial
perturbations under adversarial training") keeps every epoch of an
adversarial training and asks, per epoch and across epochs, how the
remaining perturbations behave. `EpochStudy` is that study as an evaluator
over a run's kept epochs (`training.epoch_variables`):

- per epoch (`EpochStudy.epoch`): accuracy clean, under each attack (test
  inputs, and the main attack on training inputs), under a universal
  perturbation fitted on the training and on the test inputs; the
  sharedness and cost change of the main attack's perturbations
  (`batched_transfer`); their destruction rate under a transform grid and
  a sweep of Gaussian noise (`analysis.destruction_grid`); noise and flip
  stability; at chosen epochs, a detector per attack and the universal
  perturbation that most activates the main attack's detector;
- across epochs (`EpochStudy.across`): the temporal stability profile
  `P[t1, t2] = p(y | x + xi_t1; theta_t2)` of the profile inputs, the
  error rate of each epoch's examples on every model, the universal
  perturbations of source epochs on every model, and the cost change of
  the first epoch's perturbations on training inputs (sharedness) against
  that on later models (stability) with their log-log correlation;
- `detectability`: each detector on every detector epoch's examples;
- `summarize`: the numbers a report reads (first and late epochs).

Every map over examples goes through `evaluation.map_batched` (attacks by
`evaluation.adversarial_examples`, predictions by `evaluation.predict`),
so no number depends on the batch size.
"""
import functools
from typing import (Any, Callable, Dict, Mapping, NamedTuple, Optional,
                    Sequence, Tuple)

import jax
import jax.numpy as jnp
import numpy as np

from advjax import losses, models, transforms
from advjax.analysis import destruction, detection, stability
from advjax.analysis import transfer as tr
from advjax.attacks.universal import apply_universal, universal
from advjax.evaluation import batching
from advjax.evaluation.adversarial import adversarial_examples
from advjax.evaluation.predict import predict
from advjax.types import Bounds

__all__ = ["batched_transfer", "mean_cost_change", "fit_universal",
           "detectability", "Unbounded", "EpochStudy", "summarize",
           "mean_destruction", "epoch_figures", "epoch_tables"]


class Unbounded(NamedTuple):
  """A minimal-perturbation attack (DeepFool) in the bounded attacks'
  contract: `eps` is accepted and ignored."""
  attack: Callable

  def __call__(self, model_fn, x, y, *, eps=None, **kwargs):
    del eps
    return self.attack(model_fn, x, y, **kwargs)


@functools.lru_cache(maxsize=32)
def _transfer_fn(apply_fn: Callable, bounds: Bounds):
  def fn(consts, batch):
    variables, delta = consts
    res = tr.perturbation_transfer(lambda z: apply_fn(variables, z),
                                   batch["x"], batch["y"], delta,
                                   bounds=bounds)
    return {"fooled": res.fooled.T, "cost_change": res.cost_change.T}
  return fn


def batched_transfer(apply_fn: Callable, variables, x, y, delta, *,
                     bounds: Bounds = (0., 1.),
                     **map_kwargs) -> tr.TransferResult:
  """`analysis.perturbation_transfer` on `map_batched`: every
  perturbation `delta [P, ...]` added to every input of `x [N, ...]`,
  the inputs in batches (the perturbations replicated).

  Returns:
    `TransferResult` of `[P, N]` host arrays.
  """
  out = batching.map_batched(
      _transfer_fn(apply_fn, tuple(bounds)),
      {"x": np.asarray(x), "y": np.asarray(y, np.int32)},
      (variables, jnp.asarray(delta)), **map_kwargs)
  return tr.TransferResult(out["fooled"].T, out["cost_change"].T)


def mean_cost_change(apply_fn: Callable, variables, x, y, delta,
                     **map_kwargs) -> np.ndarray:
  """`[P]`: each perturbation's mean cross-entropy change over the inputs
  `x` (Metzen's Figure 2 x axis, his sharedness on training inputs)."""
  return batched_transfer(apply_fn, variables, x, y, delta,
                          **map_kwargs).cost_change.mean(1)


@functools.lru_cache(maxsize=32)
def _universal_fn(apply_fn: Callable, settings: Tuple):
  kw = dict(settings)

  def fit(variables, x, y, key, targeted):
    return universal(lambda z: apply_fn(variables, z), x, y, key=key,
                     targeted=targeted, return_result=True,
                     **{**kw, "batch_size": min(kw.get("batch_size", 128),
                                                x.shape[0])})
  return jax.jit(fit, static_argnames="targeted")


def fit_universal(apply_fn: Callable, variables, x, y, *, key,
                  targeted: bool = False, **settings):
  """`attacks.universal` of the model `(apply_fn, variables)` on `(x, y)`
  (its `UniversalResult`), compiled once per `apply_fn` and settings (the
  variables traced: every epoch of a run shares a compilation); the
  minibatch size is capped at `len(x)`."""
  return _universal_fn(apply_fn, tuple(sorted(settings.items())))(
      variables, jnp.asarray(x), jnp.asarray(y, jnp.int32), key,
      targeted=targeted)


@functools.lru_cache(maxsize=32)
def _apply_jit(apply_fn: Callable):
  """`apply_fn` compiled once, the variables traced: every epoch of a run
  shares its compilations."""
  return jax.jit(apply_fn)


def detectability(detectors: Mapping[int, detection.Detector], x,
                  x_adv: Mapping[int, Any]) -> np.ndarray:
  """`[E, E]`: the balanced accuracy of the detector of epoch `e1` (row,
  in `detectors`' order) on the clean inputs `x` and the adversarial
  examples of epoch `e2` (column)."""
  return np.asarray([[detection.detector_accuracy(d, x, x_adv[t2])
                      for t2 in detectors] for d in detectors.values()])


@functools.lru_cache(maxsize=8)
def _detector_apply(features: Tuple[int, ...]):
  model = models.MetzenDetector(num_classes=2, features=features)
  return models.apply_fn(model)


def _acc(pred, y) -> float:
  return float(np.mean(np.asarray(pred) == np.asarray(y)))


def _summary(values: np.ndarray) -> Dict[str, Any]:
  if not values.size:
    return {"mean": None, "min": None, "max": None, "quantiles": None,
            "values": []}
  return {"mean": float(values.mean()), "min": float(values.min()),
          "max": float(values.max()),
          "quantiles": np.quantile(values, [0.5, 0.9, 0.99]).tolist(),
          "values": values.tolist()}


class EpochStudy(NamedTuple):
  """Metzen's study of perturbations over the epochs of a run.

  Attributes:
    eps: the attacks' radius.
    attacks: `(name, attack)` pairs (`attack(model_fn, x, y, *, eps)`,
      e.g. `functools.partial(gradient.bim, steps=10, step_size=...)`);
      the first is the main one (sharedness, profiles, detector
      perturbation).
    universal: `attacks.universal`'s settings (eps, step_size,
      iterations, batch_size, batches_per_update).
    grid: `transforms.Transform`s of the destruction rates.
    noise_sweep: Gaussian noise stds of the main attack's crossover.
    noise_magnitudes: uniform noise of `analysis.noise_stability`.
    train_examples: training inputs of the training-set accuracies (0:
      all).
    profile_examples: the first test inputs of the stability profiles.
    cost_change_examples: training inputs of Figure 2's sharedness (0:
      all).
    detector_epochs, detector_features, detector_batch: the detectors
      (`analysis.train_detector`'s epochs, features, batch size).
    seed: the detectors' seeds (`seed + 7 epoch + attack index`).
    key: `jax.random.key` of every draw (folded with the epoch).
    batch_size, device_batch_size: `map_batched`'s (never change a
      result).
  """
  eps: float
  attacks: Tuple[Tuple[str, Callable], ...]
  universal: Mapping[str, Any]
  grid: Sequence[transforms.Transform] = ()
  noise_sweep: Sequence[float] = ()
  noise_magnitudes: Sequence[float] = ()
  train_examples: int = 0
  profile_examples: int = 256
  cost_change_examples: int = 0
  detector_epochs: int = 20
  detector_features: Tuple[int, ...] = (96, 192, 192)
  detector_batch: int = 64
  seed: int = 0
  key: Any = None
  batch_size: int = 256
  device_batch_size: Optional[int] = None

  @property
  def _map(self) -> Dict[str, Any]:
    return dict(batch_size=self.batch_size,
                device_batch_size=self.device_batch_size)

  def _keys(self, t: int):
    key = jax.random.key(0) if self.key is None else self.key
    return jax.random.split(jax.random.fold_in(key, t), 6)

  def _adv(self, apply_fn, v, x, y, attack):
    return adversarial_examples(apply_fn, v, x, y, attack=attack,
                                eps=self.eps, **self._map)

  def epoch(self, apply_fn: Callable, variables, t: int, test, train,
            detectors: bool = False) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """Everything measured on the model of epoch `t` alone.

    Args:
      apply_fn: `(variables, x) -> logits`; variables: epoch t's.
      t: the epoch (folded into the key).
      test, train: `(images, labels)` pairs of numpy arrays.
      detectors: train the detectors at this epoch.

    Returns:
      `(row, arrays)`: the numbers (JSON-able) and the arrays the
      analyses across epochs need: 'x_adv' (the main attack's test
      examples), 'xi' and 'xi_test' (the universal perturbations), and
      with detectors 'detectors', 'adversarials', 'xi_detector'.
    """
    k_uni, k_uni_test, k_noise, k_tf, k_sweep, k_det = self._keys(t)
    x, y = np.asarray(test[0]), np.asarray(test[1])
    x_tr, y_tr = np.asarray(train[0]), np.asarray(train[1])
    n_tr = min(self.train_examples or len(x_tr), len(x_tr))
    kw = self._map
    pred = lambda z: predict(apply_fn, variables, z, **kw)
    clean = pred(x)
    correct = clean == y
    advs = {n: self._adv(apply_fn, variables, x, y, a)
            for n, a in self.attacks}
    main, attack = self.attacks[0]
    x_adv = advs[main]
    uni = fit_universal(apply_fn, variables, x_tr, y_tr, key=k_uni,
                        **self.universal)
    uni_test = fit_universal(apply_fn, variables, x, y, key=k_uni_test,
                             **self.universal)
    tf = batched_transfer(apply_fn, variables, x, y, x_adv - x, **kw)
    fooled_own = np.diagonal(tf.fooled) & correct
    own, others = tr.cost_change_own_vs_others(tf.cost_change)
    grid = lambda xa, g, key: destruction.destruction_grid(
        apply_fn, variables, x, xa, y, g, key=key, **kw)
    model_fn = functools.partial(_apply_jit(apply_fn), variables)
    row = {
        "epoch": t, "clean_accuracy": _acc(clean, y),
        "attack_accuracy": _acc(pred(x_adv), y),
        "train_clean_accuracy": _acc(pred(x_tr[:n_tr]), y_tr[:n_tr]),
        "train_attack_accuracy": _acc(pred(self._adv(
            apply_fn, variables, x_tr[:n_tr], y_tr[:n_tr], attack)),
                                  y_tr[:n_tr]),
        "universal_accuracy": _acc(pred(np.asarray(apply_universal(
            x, uni.perturbation))), y),
        "universal_test_accuracy": _acc(pred(np.asarray(apply_universal(
            x, uni_test.perturbation))), y),
        "universal_loss_history": np.asarray(uni.loss_history).tolist(),
        "sharedness": _summary(tr.sharedness(tf.fooled, correct)[fooled_own]),
        "cost_change": {"own": own.tolist(), "others": others.tolist()},
        "adversarial_accuracy": {n: _acc(pred(xa), y)
                                 for n, xa in advs.items()},
        "noise_stability": stability.noise_stability(
            model_fn, x, x_adv, y, key=k_noise,
            magnitudes=self.noise_magnitudes),
        "flip_stability": stability.flip_stability(model_fn, x, x_adv, y)}
    row["destruction_rate"] = {n: grid(xa, self.grid, k_tf)
                               for n, xa in advs.items()}
    row["noise_sweep"] = list(grid(x_adv, transforms.transform_grid(
        noise=self.noise_sweep), k_sweep).values())
    arrays = {"x_adv": x_adv, "xi": np.asarray(uni.perturbation),
              "xi_test": np.asarray(uni_test.perturbation)}
    if detectors:
      arrays.update(self._detectors(apply_fn, variables, t, x_tr, x, advs,
                                    k_det))
      row["detector_universal"] = arrays.pop("detector_universal")
    return row, arrays

  def _detectors(self, apply_fn, v, t, x_tr, x, advs, key):
    """A detector per attack on the training inputs and their examples
    (from the predicted labels); the universal perturbation that most
    activates the main attack's detector (Figure 7)."""
    y_pred = predict(apply_fn, v, x_tr, **self._map)
    dets = {}
    for i, (name, attack) in enumerate(self.attacks):
      dets[name] = detection.train_detector(
          x_tr, self._adv(apply_fn, v, x_tr, y_pred, attack),
          seed=self.seed + 7 * t + i, epochs=self.detector_epochs,
          features=self.detector_features, batch_size=min(
              self.detector_batch, (len(x_tr) // 8) * 8))
    main = self.attacks[0][0]
    det_apply = _detector_apply(tuple(self.detector_features))
    dv = dets[main].variables
    xi = np.asarray(fit_universal(
        det_apply, dv, x_tr, np.ones(len(x_tr), np.int32), key=key,
        targeted=True, **self.universal).perturbation)
    prob = lambda z: float(np.mean(predict(
        det_apply, dv, z, output="probs", **self._map)[:, 1]))
    return {"detectors": dets, "adversarials": advs, "xi_detector": xi,
            "detector_universal": {
                "perturbed": prob(np.asarray(apply_universal(x, xi))),
                "clean": prob(x), "attack": prob(advs[main])}}

  def across(self, apply_fn: Callable, variables_of: Callable[[int], Any],
             epochs: Sequence[int], test, train,
             x_adv: Mapping[int, Any], xi: Mapping[int, Any],
             sources: Sequence[int]) -> Dict[str, Any]:
    """The analyses that pair one epoch's perturbations with another's
    model, each model loaded once (`variables_of(t)`).

    Args:
      epochs: the epochs, in order (the first is Figure 2's source).
      test, train: `(images, labels)`.
      x_adv: epoch -> the main attack's test examples (`epoch`'s).
      xi: epoch -> the universal perturbation fitted on training inputs.
      sources: epochs whose universal perturbations meet every model.
    """
    x, y = np.asarray(test[0]), np.asarray(test[1])
    n_p = min(self.profile_examples, len(x))
    t_n, kw = len(epochs), self._map
    stacked = np.concatenate([np.asarray(x_adv[t])[:n_p] for t in epochs])
    y_all = np.tile(y[:n_p], t_n)
    probs = np.zeros((t_n, t_n, n_p))
    fooled = np.zeros((t_n, t_n, n_p), bool)
    uni = np.zeros((len(sources), t_n))
    future = np.zeros((t_n, len(x)))
    x0 = np.asarray(x_adv[epochs[0]])
    m = min(self.cost_change_examples or len(train[0]), len(train[0]))
    current = None
    for j, t in enumerate(epochs):
      v = variables_of(t)
      p = predict(apply_fn, v, stacked, output="probs", **kw)
      probs[:, j] = p[np.arange(len(y_all)), y_all].reshape(t_n, n_p)
      fooled[:, j] = (p.argmax(-1) != y_all).reshape(t_n, n_p)
      for i, s in enumerate(sources):
        uni[i, j] = _acc(predict(apply_fn, v, np.asarray(apply_universal(
            x, jnp.asarray(xi[s]))), **kw), y)
      ce = lambda z: np.asarray(losses.cross_entropy(jnp.asarray(predict(
          apply_fn, v, z, output="logits", **kw)), jnp.asarray(y)))
      future[j] = ce(x0) - ce(x)
      if j == 0:
        current = mean_cost_change(apply_fn, v, np.asarray(train[0])[:m],
                                   np.asarray(train[1])[:m], x0 - x, **kw)
    prof = tr.temporal_profile(probs)
    future_mean = future[1:].mean(0) if t_n > 1 else future[0]
    corr = tr.log_log_pearson(current, future_mean)
    return {
        "temporal_stability": {
            "inputs": int(n_p), "mean_profile": prof.mean,
            "max_min": prof.max_min, "min_max": prof.min_max,
            "mean_max_min": float(prof.max_min.mean()),
            "mean_min_max": float(prof.min_max.mean()),
            "fractions": prof.fractions(),
            "examples": {k: {"index": i, "profile": probs[:, :, i]}
                         for k, i in prof.examples().items()},
            "transfer_error": fooled.mean(-1)},
        "cost_change_transfer": {
            "current_train": current, "future_test": future_mean,
            "train_inputs": int(m), "pearson_r": corr.r,
            "p_value": corr.p, "pairs": corr.n, "dropped": corr.dropped},
        "universal_transfer": {"sources": list(sources), "accuracy": uni}}

  def run(self, apply_fn: Callable, variables_of: Callable[[int], Any],
          epochs: Sequence[int], test, train, *,
          detector_epochs: Sequence[int] = (), sources: Sequence[int] = (),
          cache: Optional[Callable[[int, Any, Callable], Any]] = None,
          progress: bool = False) -> Dict[str, Any]:
    """The whole study over the kept `epochs` of a run.

    Args:
      apply_fn: `(variables, x) -> logits`.
      variables_of: epoch -> variables (`run.epoch_variables`).
      epochs: the epochs, ascending (the first: the model before the
        studied training).
      test, train: `(images, labels)`.
      detector_epochs: epochs with detectors.
      sources: epochs whose universal perturbations meet every model.
      cache: `cache(t, variables, compute) -> compute()` or a saved
        result (e.g. `run.cached`), per epoch.
      progress: a progress bar over the epochs.

    Returns:
      'epochs' (the rows of `epoch`), `across`'s entries, 'detectability'
      (epochs and, per attack, `detectability`'s matrix) and the arrays
      'universal' (epoch -> xi, xi_test) and 'detector_perturbations'
      (epoch -> xi_detector).
    """
    from tqdm import tqdm  # pylint: disable=g-import-not-at-top
    cache = cache or (lambda t, v, compute: compute())
    rows, x_adv, xis, kept = [], {}, {}, {}
    for t in tqdm(epochs, desc="epochs", disable=not progress):
      v = variables_of(t)
      row, arrays = cache(t, v, lambda v=v, t=t: self.epoch(
          apply_fn, v, t, test, train, t in detector_epochs))
      rows.append(row)
      x_adv[t] = arrays["x_adv"]
      xis[t] = {k: arrays[k] for k in ("xi", "xi_test", "xi_detector")
                if k in arrays}
      if "detectors" in arrays:
        kept[t] = arrays
    out = self.across(apply_fn, variables_of, epochs, test, train, x_adv,
                      {t: d["xi"] for t, d in xis.items()}, sources)
    x = np.asarray(test[0])
    out["detectability"] = {"epochs": list(kept), "accuracy": {
        n: detectability({t: a["detectors"][n] for t, a in kept.items()}, x,
                         {t: a["adversarials"][n] for t, a in kept.items()})
        for n, _ in self.attacks}}
    out["universal"] = xis
    return {"test_examples": len(x), "epochs": rows, **out}


def _scalars(row: Mapping[str, Any]) -> Dict[str, float]:
  nan = lambda v: float("nan") if v is None else float(v)
  out = {k: float(row[k]) for k in (
      "clean_accuracy", "attack_accuracy", "train_attack_accuracy",
      "universal_accuracy", "universal_test_accuracy")}
  out.update({f"{k}_accuracy": float(v)
              for k, v in row["adversarial_accuracy"].items()})
  out.update(sharedness=nan(row["sharedness"]["mean"]),
             sharedness_max=nan(row["sharedness"]["max"]))
  return out


def mean_destruction(row: Mapping[str, Any], attack: str,
                     kinds: Sequence[str]) -> float:
  """The mean destruction rate of `attack`'s examples in an `EpochStudy`
  row over the transforms of `kinds` (NaN rates left out)."""
  v = [d for name, d in row["destruction_rate"][attack].items()
       if d == d and name.split()[0].lower() in kinds]
  return float(np.mean(v)) if v else float("nan")


def summarize(results: Mapping[str, Any], late_divisor: int = 3,
              kinds: Sequence[str] = ("brightness", "contrast", "blur")
              ) -> Dict[str, Any]:
  """The numbers a report of `EpochStudy.run` reads: each epoch's scalars
  at the first epoch and averaged over the late ones (the last
  `1 / late_divisor` of the epochs after the first, at least one: single
  epochs are noisy), and the summaries of the destruction rates,
  detectors and learning curve.

  Returns:
    'late_epochs' `(first, last)`; 'first' and 'late': name -> value
    (accuracies clean / attack / train_attack / universal /
    universal_test / `<attack>_accuracy`, mean and max sharedness);
    'destruction': attack -> `(first, late)` mean rate under `kinds`;
    'noise_sweep': `(first, late)` rates per std; 'detector_own': attack
    -> each detector's accuracy on its own epoch; 'detector_from': attack
    -> epoch -> the detector's worst accuracy on the other epochs;
    'detector_universal': epoch -> mean p(adversarial) under its
    perturbation; 'plateau_epoch': the first epoch whose attack accuracy
    is within 0.01 of the best.
  """
  rows = list(results["epochs"])
  later = rows[1:] or rows
  late = later[-max(1, len(later) // late_divisor):]
  mean = lambda f: float(np.nanmean([f(r) for r in late]))
  first = _scalars(rows[0])
  det = results["detectability"]
  e = list(det["epochs"])
  own, worst = {}, {}
  for a, m in det["accuracy"].items():
    m = np.asarray(m, float)
    own[a] = np.diag(m).tolist()
    worst[a] = {t: float(np.nanmin(np.delete(m[i], i))) if len(e) > 1
                else float(m[i, i]) for i, t in enumerate(e)}
  best = max(r["attack_accuracy"] for r in rows)
  return {
      "late_epochs": (late[0]["epoch"], late[-1]["epoch"]),
      "first": first,
      "late": {k: mean(lambda r, k=k: _scalars(r)[k]) for k in first},
      "destruction": {a: (mean_destruction(rows[0], a, kinds), mean(
          lambda r, a=a: mean_destruction(r, a, kinds)))
                      for a in rows[0]["destruction_rate"]},
      "noise_sweep": (list(rows[0]["noise_sweep"]), np.nanmean(
          [r["noise_sweep"] for r in late], 0).tolist()),
      "detector_own": own, "detector_from": worst,
      "detector_universal": {r["epoch"]: r["detector_universal"]["perturbed"]
                             for r in rows if "detector_universal" in r},
      "plateau_epoch": next(r["epoch"] for r in rows
                            if r["attack_accuracy"] >= best - 0.01)}


def epoch_figures(results: Mapping[str, Any], *, few: Sequence[int] = (),
                  noise_sweep: Sequence[float] = (),
                  noise_mark: Optional[Tuple[float, str]] = None,
                  detectors: Sequence[int] = ()) -> Dict[str, Any]:
  """The figures of an `EpochStudy.run` result (Metzen's Figures 1, 2, 3,
  8, 9, 10, 11, 6; `advjax.report` figures by kind), file name -> figure.

  Args:
    results: `EpochStudy.run`'s result.
    few: epochs whose examples (Figure 9) and noise curves are drawn.
    noise_sweep: the stds of the noise crossover (`EpochStudy`'s).
    noise_mark: `(std, label)` a reference line on the crossover.
    detectors: epochs whose detectors are drawn across epochs.
  """
  from advjax import report  # pylint: disable=g-import-not-at-top
  rows, ts = results["epochs"], results["temporal_stability"]
  t, series = [x["epoch"] for x in rows], lambda f: [f(x) for x in rows]
  cc, ut = results["cost_change_transfer"], results["universal_transfer"]
  det, s = results["detectability"], summarize(results)
  attacks = list(rows[0]["destruction_rate"])
  curves = lambda f, keys, **kw: report.Line(
      {k: series(lambda x, k=k: f(x, k)) for k in keys}, x=t,
      xlabel="epoch", percent=True, marker=".", **kw)
  a, b = np.asarray(cc["current_train"]), np.asarray(cc["future_test"])
  keep, err = (a > 0) & (b > 0), np.asarray(ts["transfer_error"])
  heat = lambda m, title: report.Heatmap(
      m, xlabel="model of epoch t2", ylabel="perturbation of epoch t1",
      title=title, annotate=False, cmap="gray", vmin=0, vmax=1,
      origin="lower")
  return {
      "accuracy.png": curves(lambda x, k: x[k], (
          "clean_accuracy", "attack_accuracy", "train_attack_accuracy",
          "universal_accuracy"), ylabel="accuracy (%)",
          title="Learning curve (Figure 8)"),
      "universal_transfer.png": report.Line({
          "respective epoch": series(lambda x: x["universal_accuracy"]),
          **{f"perturbation of epoch {e}": v for e, v in zip(
              ut["sources"], ut["accuracy"])}}, x=t, xlabel="epoch of the "
          "model", ylabel="accuracy (%)", percent=True, marker=".",
          title="Universal perturbations across epochs (Figure 3)"),
      "sharedness.png": report.Box(
          [x["sharedness"]["values"] or [np.nan] for x in rows], t, "epoch",
          "fraction of other inputs fooled", "Sharedness (Figure 11)"),
      "cost_change.png": report.Scatter(
          {"first epoch's perturbations": (a[keep], b[keep])}, "mean cost "
          "change on training inputs", "mean cost change on later models",
          f"Figure 2: r = {cc['pearson_r']:+.3f}", logx=True, logy=True),
      "temporal_stability.png": report.Panels(
          [heat(ts["mean_profile"], "mean profile")] + [heat(
              e["profile"], f"{k} (input {e['index']})")
              for k, e in ts["examples"].items()],
          title="Temporal stability profiles P[t1, t2] (Figure 1)"),
      "maxmin_minmax.png": report.Scatter(
          {"inputs": (ts["min_max"], ts["max_min"])}, "MinMax", "MaxMin",
          f"{ts['inputs']} test inputs (Figure 10)", diagonal=True,
          xlim=(-0.02, 1.02), ylim=(-0.02, 1.02)),
      "bi_transfer.png": report.Line(
          {"respective epoch": np.diag(err), **{
              f"examples of epoch {e}": err[e] for e in few}},
          x=t, xlabel="epoch of the model", ylabel="error rate (%)",
          percent=True, marker=".", title="Examples across epochs "
          "(Figure 9)"),
      "destruction_rate.png": report.Panels([curves(
          lambda x, k, a=a: mean_destruction(x, a, (k,)),
          transforms.PHOTOMETRIC_KINDS, ylabel="destruction rate (%)",
          title=a, ylim=(0, 100)) for a in attacks], sharey=True),
      "noise_crossover.png": report.Line(
          {f"epoch {x['epoch']}": x["noise_sweep"] for x in rows
           if x["epoch"] in few}, x=noise_sweep,
          xlabel="Gaussian noise std", ylabel="destruction rate (%)",
          percent=True, marker="o", vlines=[noise_mark] if noise_mark
          else (), title="Examples under noise: the crossover"),
      "detectability.png": report.Panels([report.Line(
          {"respective epoch": s["detector_own"][a], **{
              f"detector of epoch {e}": np.asarray(det["accuracy"][a])[
                  det["epochs"].index(e)] for e in sorted(set(detectors))
              if e in det["epochs"]}}, x=det["epochs"],
          xlabel="epoch of the perturbations", title=a,
          ylabel="detector accuracy (%)", percent=True, marker=".")
          for a in attacks], sharey=True),
      "stability.png": report.Line({
          f"{k}, epoch {x['epoch']}": (x["noise_stability"]["magnitude"],
                                       f(x["noise_stability"]))
          for x in (rows[0], rows[-1]) for k, f in (
              ("adversarial still fooled", lambda n: n["still_fooled"]),
              ("clean misclassified", lambda n: 1 - np.asarray(
                  n["clean_accuracy"])))}, xlabel="uniform noise a",
          ylabel="%", percent=True, marker="o",
          title="Perturbations under noise (D'Costa & Sriramanan)")}


def epoch_tables(results: Mapping[str, Any], *, few: Sequence[int] = (),
                 noise_sweep: Sequence[float] = ()) -> list:
  """The tables of an `EpochStudy.run` result (`advjax.report` blocks):
  per epoch, the examples of the `few` epochs on each other's models, the
  noise crossover (first vs late epochs), Figure 7's detector
  probabilities and the stability checks of the first and last epochs."""
  from advjax import report  # pylint: disable=g-import-not-at-top
  rows = {str(x["epoch"]): x for x in results["epochs"]}
  ts, s = results["temporal_stability"], summarize(results)
  err = np.asarray(ts["transfer_error"])
  first, last = results["epochs"][0], results["epochs"][-1]
  attacks = list(first["adversarial_accuracy"])
  return [
      report.records_table(rows, [
          ("clean", "clean_accuracy", "%"),
          (attacks[0], "attack_accuracy", "%"),
          (f"{attacks[0]} (train)", "train_attack_accuracy", "%"),
          ("universal", "universal_accuracy", "%"),
          ("universal (test-fitted)", "universal_test_accuracy", "%"),
          *((a, f"adversarial_accuracy.{a}", "%") for a in attacks[1:]),
          ("sharedness", "sharedness.mean", "%"),
          *((f"destruction {a}", lambda x, a=a: mean_destruction(
              x, a, transforms.PHOTOMETRIC_KINDS), "%") for a in attacks)],
          first="epoch", caption=f"Per epoch ({results['test_examples']} "
          "test inputs; destruction: mean over every transform):"),
      f"Temporal stability ({ts['inputs']} inputs): mean MaxMin "
      f"{ts['mean_max_min']:.3f}, MinMax {ts['mean_min_max']:.3f}.",
      report.curve_table(list(few), {f"model {t}": err[list(few), t]
                                     for t in few},
                         first="examples of epoch", caption="Error rate "
                         "of each epoch's examples on other models "
                         "(Figure 9):"),
      report.curve_table(list(noise_sweep), dict(zip(
          ("first epoch", "late"), s["noise_sweep"])), first="noise std",
                         caption="Destruction rate under Gaussian noise:"),
      report.records_table(
          {t: x["detector_universal"] for t, x in rows.items()
           if "detector_universal" in x},
          [(k, k, "%") for k in ("perturbed", "clean", "attack")],
          first="epoch", caption="Mean p(adversarial) of the main attack's "
          "detector (Figure 7):"),
      report.records_table(
          {str(x["epoch"]): x for x in (first, last)},
          [(f"still fooled, noise {a:g}", lambda x, i=i: x[
              "noise_stability"]["still_fooled"][i], "%")
           for i, a in enumerate(first["noise_stability"]["magnitude"])] + [
               (k, f"flip_stability.{k}", "%") for k in (
                   "flipped_adversarial", "perturbation_on_flipped")],
          first="epoch", caption="Stability (D'Costa & Sriramanan):")]
