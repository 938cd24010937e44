"""Universality, robustness and detectability of adversarial perturbations across the epochs of adversarial training.

    python -m benchmarks.universality --dataset digits   # ~1.5 min, 2 CPU cores

Measured on digits (benchmarks/results/universality-digits, README): over
20 epochs of BI fine-tuning the mean sharedness of per-input perturbations
falls 3.7 % -> 1.5 %, accuracy under BI rises 52.5 % -> 77.2 % and under a
universal perturbation 50.8 % -> 74.2 %; four of Metzen's five claims hold
(the universal one partly: its loss shrinks as much as BI's).

Reproduces the experiments of Metzen (2018) and D'Costa & Sriramanan's
reproducibility report: a standard model fine-tuned with BI adversarial
training (predicted labels), every epoch kept; per epoch the accuracy under a
universal perturbation and under per-input BI perturbations, the sharedness
and cost-change transfer of the per-input perturbations, their destruction
rate under brightness, contrast, blur, noise and JPEG (BI, FGSM, DeepFool), a
detector's accuracy; across epochs the temporal stability profile and the
detectors' transfer; the perturbations under uniform noise and flips. Writes
results.json, results.md (stating per claim of the paper whether the run
supports it) and PNG figures to --workdir (default runs/universality-<dataset>);
models are checkpointed there and a rerun resumes or reloads them. Other
presets: --dataset mnist, cifar10 (Metzen's CIFAR-10 setting; need the data
prepared with tensorflow-datasets, and a GPU).

The adversarial fine-tuning is the runner's second model (`TrainSpec`
built from the standard model's variables, its own epochs and learning
rate, every epoch checkpointed); its evaluation is the across-epoch study
(`training.restore_epoch` of each kept epoch).
"""
import dataclasses
import functools
import os
from typing import Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from advjax import analysis, report, run, training, transforms
from advjax.attacks import deepfool, gradient
from advjax.attacks.universal import apply_universal, universal

@dataclasses.dataclass(frozen=True)
class UniversalityConfig(run.Config):
  """Settings (the standard model's training from `advjax.run.Config`).

  Attributes:
    adv_epochs: epochs of adversarial fine-tuning (each one kept).
    adv_learning_rate: its Adam learning rate (constant).
    sigma: weight of the clean half of the adversarial training loss.
    eps, bi_steps, bi_step_size: the BI adversary (training and analysis).
    uni_eps, uni_step_size, uni_iterations, uni_batch_size,
      uni_batches_per_update: the universal perturbation (Metzen: 10/255,
      2.5/255, 200, m = 128, K = 10 on CIFAR-10).
    analysis_examples: test inputs of the sharedness, transfer, stability
      and destruction analyses (0: all).
    brightness, contrast, blur, noise, jpeg: the transforms' parameters
      (Kurakin et al.'s: brightness +-delta, contrast x mu, Gaussian blur
      sigma in pixels, Gaussian noise std, in the units of the box; JPEG
      quality).
    deepfool_steps: DeepFool's iterations.
    detector_epochs, detector_features, detector_every: the detector
      (trained on the training set's clean / BI pairs every
      `detector_every` epochs, and at the last one).
    noise_magnitudes: uniform noise of the stability check.
    figure_epochs: epochs shown in the perturbation and scatter figures.
  """
  adv_epochs: Optional[int] = None
  adv_learning_rate: Optional[float] = None
  sigma: float = 0.5
  eps: Optional[float] = None
  bi_steps: Optional[int] = None
  bi_step_size: Optional[float] = None
  uni_eps: Optional[float] = None
  uni_step_size: Optional[float] = None
  uni_iterations: Optional[int] = None
  uni_batch_size: Optional[int] = None
  uni_batches_per_update: Optional[int] = None
  analysis_examples: Optional[int] = None
  brightness: Optional[Tuple[float, ...]] = None
  contrast: Optional[Tuple[float, ...]] = None
  blur: Optional[Tuple[float, ...]] = None
  noise: Optional[Tuple[float, ...]] = None
  jpeg: Optional[Tuple[float, ...]] = None
  deepfool_steps: int = 50
  detector_epochs: Optional[int] = None
  detector_features: Optional[Tuple[int, int, int]] = None
  detector_every: Optional[int] = None
  noise_magnitudes: Optional[Tuple[float, ...]] = None
  figure_epochs: int = 6


_TRANSFORMS_255 = dict(  # Kurakin et al.'s magnitudes on the 0..255 scale
    brightness=(-30., -15., 15., 30.), contrast=(0.7, 0.85, 1.15, 1.3),
    blur=(0.5, 1.0), noise=(5., 10., 20.), jpeg=(75., 50., 20.))


def _scaled(levels):
  """Kurakin's transform magnitudes for images in [0, 1]."""
  out = dict(_TRANSFORMS_255)
  for k in ("brightness", "noise"):
    out[k] = tuple(v / levels for v in out[k])
  return out


# Metzen's CIFAR-10 setting (BI eps 4/255, alpha 1/255, Kurakin's step
# count; universal 10/255, 2.5/255, m 128, K 10, 200 iterations).
_CIFAR = dict(
    model="preact_resnet18", epochs=100, batch_size=128, optimizer="sgd",
    learning_rate=0.1, weight_decay=5e-4, schedule="piecewise",
    adv_epochs=20, adv_learning_rate=1e-4, eps=4 / 255, bi_steps=5,
    bi_step_size=1 / 255, uni_eps=10 / 255, uni_step_size=2.5 / 255,
    uni_iterations=200, uni_batch_size=128, uni_batches_per_update=10,
    analysis_examples=1000, detector_epochs=20,
    detector_features=(96, 192, 192), detector_every=2,
    noise_magnitudes=(2 / 255, 4 / 255, 8 / 255, 16 / 255), **_scaled(255.))
PRESETS = {
    # Embedded 8x8 digits (17 grey levels): the radii are scaled up as the
    # other digits presets (eps 0.1 where BI fools about half the standard
    # model's test digits; universal 0.2); the detector is narrower and the
    # universal fit uses K = 5, for about 4 minutes on 2 CPU cores.
    "digits": dict(
        model="wong_mnist", epochs=30, batch_size=64, optimizer="adam",
        learning_rate=5e-3, weight_decay=0., schedule="cosine",
        adv_epochs=20, adv_learning_rate=1e-3, eps=0.1, bi_steps=10,
        bi_step_size=0.02, uni_eps=0.2, uni_step_size=0.05,
        uni_iterations=200, uni_batch_size=128, uni_batches_per_update=5,
        analysis_examples=0, detector_epochs=6,
        detector_features=(32, 64, 64), detector_every=4,
        noise_magnitudes=(0.05, 0.1, 0.2, 0.3),
        brightness=(-0.2, -0.1, 0.1, 0.2), contrast=(0.7, 0.85, 1.15, 1.3),
        blur=(0.5, 1.0), noise=(0.05, 0.1, 0.2), jpeg=(75., 50., 20.)),
    # Seconds: a smoke test of the whole pipeline, not a result.
    "synthetic": dict(
        model="wong_mnist", epochs=1, batch_size=32, optimizer="adam",
        learning_rate=2e-3, weight_decay=0., schedule="constant",
        adv_epochs=2, adv_learning_rate=1e-3, eps=0.1, bi_steps=2,
        bi_step_size=0.05, uni_eps=0.2, uni_step_size=0.05,
        uni_iterations=3, uni_batch_size=16, uni_batches_per_update=1,
        analysis_examples=48, detector_epochs=1,
        detector_features=(4, 8, 8), detector_every=1,
        noise_magnitudes=(0.1,), brightness=(0.1,), contrast=(0.8,),
        blur=(1.0,), noise=(0.1,), jpeg=(50.,), deepfool_steps=3),
    "mnist": dict(
        model="madry_mnist", epochs=20, batch_size=128, optimizer="adam",
        learning_rate=1e-3, weight_decay=0., schedule="cosine",
        adv_epochs=20, adv_learning_rate=1e-4, eps=0.1, bi_steps=10,
        bi_step_size=0.01, uni_eps=0.2, uni_step_size=0.05,
        uni_iterations=200, uni_batch_size=128, uni_batches_per_update=10,
        analysis_examples=1000, detector_epochs=10,
        detector_features=(96, 192, 192), detector_every=2,
        noise_magnitudes=(0.05, 0.1, 0.2, 0.3), **_scaled(255.)),
    "cifar10": _CIFAR,
}

TRANSFORM_KINDS = ("brightness", "contrast", "blur", "noise", "jpeg")
ADVERSARIES = ("bi", "fgsm", "deepfool")

# The paper's claims (Metzen 2018, abstract and sections 4-6), each checked
# by `_claims` against this run's numbers.
CLAIMS = {
    "shared": "Adversarial training makes the remaining perturbations less "
              "shared: each fools fewer other inputs.",
    "universal": "Adversarial training is particularly effective against "
                 "universal perturbations: accuracy under them recovers far "
                 "more than under per-input (singular) perturbations.",
    "singular": "Adversarial training does not consistently remove singular "
                "perturbations on unseen inputs: test inputs stay "
                "vulnerable at some epoch (MinMax) and accuracy under BI "
                "stays well below clean accuracy.",
    "destruction": "The remaining perturbations are less robust to image "
                   "transformations: their destruction rate rises over "
                   "adversarial training.",
    "detectable": "Even singular perturbations remain detectable: a "
                  "detector separates clean from adversarial inputs at "
                  "every epoch, and detectors transfer across epochs.",
}


def resolve(config: UniversalityConfig) -> UniversalityConfig:
  """Fills None fields from the dataset's preset; checks the settings."""
  return run.fill_preset(config, PRESETS, "universality", _refine)


def _refine(config, preset):
  cfg = dataclasses.replace(config, **{k: v for k, v in preset.items()
                                       if getattr(config, k) is None})
  for name in ("eps", "bi_step_size", "uni_eps", "uni_step_size",
               "adv_learning_rate"):
    if not getattr(cfg, name) > 0:
      raise ValueError(f"UniversalityConfig.{name} must be > 0, got "
                       f"{getattr(cfg, name)}.")
  for name in ("epochs", "adv_epochs", "batch_size", "bi_steps",
               "uni_iterations", "uni_batch_size", "uni_batches_per_update",
               "detector_epochs", "detector_every", "deepfool_steps"):
    if getattr(cfg, name) < 1:
      raise ValueError(f"UniversalityConfig.{name} must be >= 1, got "
                       f"{getattr(cfg, name)}.")
  if not 0. <= cfg.sigma <= 1.:
    raise ValueError(f"UniversalityConfig.sigma must be in [0, 1], got "
                     f"{cfg.sigma}.")
  return preset


def _bi(cfg):
  return functools.partial(gradient.bim, steps=cfg.bi_steps,
                           step_size=cfg.bi_step_size)



def _fine_tuning(cfg):
  """The config fields of the adversarial fine-tuning."""
  return dict(epochs=cfg.adv_epochs, learning_rate=cfg.adv_learning_rate,
              optimizer="adam", weight_decay=0., schedule="constant")


def models(cfg, env):
  """The standard model, then its adversarial fine-tuning (Adam at
  `adv_learning_rate`, every epoch kept; epoch 0 is the standard model)."""
  lo, hi = float(np.min(env.test.images)), float(np.max(env.test.images))
  if lo < 0 or hi > 1:
    raise ValueError(f"{cfg.dataset}: the study's transforms assume images "
                     f"in [0, 1], got [{lo:g}, {hi:g}].")
  adv = lambda trained: run.TrainSpec(
      training.methods.fgsm_mix(cfg.eps, attack=_bi(cfg), sigma=cfg.sigma,
                                predicted_labels=True),
      dict(eps=cfg.eps, bi_steps=cfg.bi_steps, bi_step_size=cfg.bi_step_size,
           sigma=cfg.sigma, init="standard"),
      dict(init_variables=trained["standard"], epoch_checkpoints=True),
      _fine_tuning(cfg))
  return {"standard": run.TrainSpec(training.methods.standard()),
          "adversarial": adv}


def evaluate(cfg, env, name, variables):
  """The standard model: its clean accuracy; the adversarial one: the
  study over every kept epoch."""
  n = cfg.analysis_examples or env.test.size
  x, y = jnp.asarray(env.test.images[:n]), jnp.asarray(env.test.labels[:n])
  ep = _Epoch(cfg, env.apply_fn)
  if name == "standard":
    return {"clean_accuracy": _accuracy(ep.predict(variables, x), y)}
  like = training.create_train_state(
      env.model, run.make_optimizer(
          dataclasses.replace(cfg, **_fine_tuning(cfg)), 1),
      jax.random.key(0), x.shape[1:])
  key = jax.random.key(cfg.seed + 11)
  epochs = list(range(cfg.adv_epochs + 1))
  rows, x_bis, xis, per_epoch, detectors = [], [], [], [], {}
  for t in tqdm(epochs, desc="epochs", disable=not cfg.progress):
    v = jax.device_get(training.restore_epoch(
        os.path.join(cfg.workdir, name), like, t).variables)
    due = t % cfg.detector_every == 0 or t == epochs[-1]
    row, arrays = _analyse_epoch(cfg, ep, v, t, env.train, x, y, key, due)
    rows.append(row)
    x_bis.append(arrays["x_bi"])
    xis.append(arrays["xi"])
    per_epoch.append(v)
    if arrays["detector"] is not None:
      detectors[t] = arrays["detector"]
  fooled = analysis.fooled_across([ep.model_fn(v) for v in per_epoch],
                                  [jnp.asarray(a) for a in x_bis], y)
  profile = analysis.temporal_profile(fooled)
  det_epochs = sorted(detectors)
  return {
      "test_examples": int(n), "epochs": rows,
      "temporal_stability": {
          "profile": profile.profile.tolist(), "max_min": profile.max_min,
          "min_max": profile.min_max,
          "max_min_from": profile.max_min_from.tolist()},
      "detectability": {"epochs": det_epochs, "accuracy": [
          [analysis.detector_accuracy(detectors[t1], x, x_bis[t2])
           for t2 in det_epochs] for t1 in det_epochs]},
      "universal_perturbations": np.stack(xis),
      "figure_image": np.asarray(x[0])}


FIGURES = ("accuracy.png", "universal_perturbations.png", "sharedness.png",
           "cost_change.png", "temporal_stability.png",
           "destruction_rate.png", "detectability.png", "stability.png")


def make_report(cfg, results):
  study = _study(results)
  claims = _claims(study)
  return report.Report(_report(cfg, study), {
      name: functools.partial(_figures, cfg, study, only=name)
      for name in FIGURES}, [
          report.Claim(c["claim"], c["supported"] == "yes",
                       f"{c['evidence']}; supported: {c['supported']}")
          for c in claims.values()])


def _study(results):
  """The adversarial model's study, with the run's times and devices."""
  ms = results["models"]
  return {**ms["adversarial"], "devices": results["devices"],
          "train_seconds": sum(m["train_seconds"] for m in ms.values()),
          "adversarial_training_history": ms["adversarial"]["history"]}


_JPEG = jax.jit(transforms.jpeg)  # quality traced: one compilation


def _transforms(cfg, key):
  """name -> (kind, value, images -> images)."""
  out = {}
  for v in cfg.brightness:
    out[f"brightness {v:+g}"] = ("brightness", v, functools.partial(
        transforms.brightness, delta=v))
  for v in cfg.contrast:
    out[f"contrast x{v:g}"] = ("contrast", v, functools.partial(
        transforms.contrast, mu=v))
  for v in cfg.blur:
    out[f"blur sigma {v:g}"] = ("blur", v, functools.partial(
        transforms.gaussian_blur, sigma=v))
  for i, v in enumerate(cfg.noise):
    out[f"noise std {v:g}"] = ("noise", v, functools.partial(
        transforms.gaussian_noise, key=jax.random.fold_in(key, i), sigma=v))
  for v in cfg.jpeg:
    out[f"JPEG quality {v:g}"] = ("jpeg", v, functools.partial(_JPEG,
                                                                quality=v))
  return out


class _Epoch:
  """The compiled computations of one epoch's model (variables as
  arguments, so every epoch reuses one compilation)."""

  def __init__(self, cfg, apply_fn):
    mf = lambda v: (lambda z: apply_fn(v, z))
    bi = _bi(cfg)
    self.logits = jax.jit(lambda v, x: apply_fn(v, x))
    self.bi = jax.jit(lambda v, x, y: bi(mf(v), x, y, eps=cfg.eps))
    self.fgsm = jax.jit(lambda v, x, y: gradient.fgsm(mf(v), x, y,
                                                      eps=cfg.eps))
    self.deepfool = jax.jit(lambda v, x, y: deepfool(
        mf(v), x, y, steps=cfg.deepfool_steps))
    self.universal = jax.jit(lambda v, x, y, key: universal(
        mf(v), x, y, key=key, eps=cfg.uni_eps, step_size=cfg.uni_step_size,
        iterations=cfg.uni_iterations,
        batch_size=min(cfg.uni_batch_size, x.shape[0]),
        batches_per_update=cfg.uni_batches_per_update, return_result=True))
    self.transfer = jax.jit(lambda v, x, y, d: analysis.perturbation_transfer(
        mf(v), x, y, d))

  def model_fn(self, v):
    return lambda z: self.logits(v, z)

  def predict(self, v, x, batch=1024):
    return np.concatenate([np.asarray(jnp.argmax(self.logits(v, x[i:i + batch]),
                                                 -1))
                           for i in range(0, x.shape[0], batch)])


def _accuracy(pred, y):
  return float(np.mean(np.asarray(pred) == np.asarray(y)))


def _analyse_epoch(cfg, ep, v, t, train, x, y, key, detector_due):
  """Everything measured on one epoch's model; returns (row, arrays)."""
  k_uni, k_noise, k_tf = jax.random.split(jax.random.fold_in(key, t), 3)
  x_tr = jnp.asarray(train.images)
  y_tr_pred = jnp.asarray(ep.predict(v, x_tr))
  clean_pred = ep.predict(v, x)
  correct = clean_pred == np.asarray(y)
  x_bi = ep.bi(v, x, y)
  uni = ep.universal(v, x_tr, y_tr_pred, k_uni)
  xi = np.asarray(uni.perturbation)
  row = {
      "epoch": t,
      "clean_accuracy": _accuracy(clean_pred, y),
      "bi_accuracy": _accuracy(ep.predict(v, x_bi), y),
      "universal_accuracy": _accuracy(
          ep.predict(v, apply_universal(x, uni.perturbation)), y),
      "universal_loss_history": np.asarray(uni.loss_history).tolist(),
  }
  tr = ep.transfer(v, x, y, x_bi - x)
  shared = analysis.sharedness(tr.fooled, correct)
  fooled_own = np.asarray(jnp.diagonal(tr.fooled)) & correct
  own, others = analysis.cost_change_own_vs_others(tr.cost_change)
  row["sharedness"] = {
      "mean": float(shared[fooled_own].mean()) if fooled_own.any() else None,
      "quantiles": (np.quantile(shared[fooled_own], [0.5, 0.9, 0.99]).tolist()
                    if fooled_own.any() else None),
      "values": shared[fooled_own].tolist()}
  row["cost_change"] = {"own": own.tolist(), "others": others.tolist()}
  model_fn = ep.model_fn(v)
  adversarials = {"bi": x_bi, "fgsm": ep.fgsm(v, x, y),
                  "deepfool": ep.deepfool(v, x, y)}
  tfs = _transforms(cfg, k_tf)
  row["destruction_rate"] = {
      adv: analysis.destruction_rates(model_fn, x, xa, y,
                                      {n: f for n, (_, _, f) in tfs.items()},
                                      clean_correct=correct)
      for adv, xa in adversarials.items()}
  row["adversarial_accuracy"] = {
      adv: _accuracy(ep.predict(v, xa), y) for adv, xa in adversarials.items()}
  row["noise_stability"] = analysis.noise_stability(
      model_fn, x, x_bi, y, key=k_noise, magnitudes=cfg.noise_magnitudes)
  row["flip_stability"] = analysis.flip_stability(model_fn, x, x_bi, y)
  det = None
  if detector_due:
    x_tr_bi = np.concatenate([np.asarray(ep.bi(v, x_tr[i:i + 512],
                                               y_tr_pred[i:i + 512]))
                              for i in range(0, x_tr.shape[0], 512)])
    det = analysis.train_detector(
        x_tr, x_tr_bi, seed=cfg.seed + t, epochs=cfg.detector_epochs,
        features=cfg.detector_features,
        batch_size=min(64, (x_tr.shape[0] // 8) * 8))
  return row, {"x_bi": np.asarray(x_bi), "xi": xi, "detector": det}


# --------------------------------------------------------------------------
# Claims, report, figures (from the results alone).
# --------------------------------------------------------------------------
def _mean_rate(row, adversary):
  vals = [r for r in row["destruction_rate"][adversary].values()
          if r == r]  # NaN: nothing fooled
  return float(np.mean(vals)) if vals else float("nan")


def _late(rows):
  """The last third of the adversarial-training epochs (at least one): single
  epochs are noisy (the universal perturbation is refitted each time)."""
  adv = rows[1:] or rows
  return adv[-max(1, len(adv) // 3):]


def _claims(results) -> dict:
  """Per claim of `CLAIMS`: the evidence (numbers) and a verdict, 'yes',
  'partly' or 'no', by the rule stated in the evidence."""
  rows = results["epochs"]
  first, late = rows[0], _late(rows)
  late_mean = lambda f: float(np.nanmean([f(r) for r in late]))
  span = f"epochs {late[0]['epoch']}-{late[-1]['epoch']}"
  out = {}

  def mean_shared(r):
    m = r["sharedness"]["mean"]
    return float("nan") if m is None else m
  s0, s1 = mean_shared(first), late_mean(mean_shared)
  out["shared"] = dict(
      evidence=f"mean sharedness of the BI perturbations (fraction of other "
               f"test inputs each fools): epoch 0 {100 * s0:.2f} %, {span} "
               f"{100 * s1:.2f} % (yes: below 0.8x)",
      supported="yes" if s1 < 0.8 * s0 else "no")

  def damage_ratio(key):
    d0 = first["clean_accuracy"] - first[key]
    d1 = late_mean(lambda r: r["clean_accuracy"] - r[key])
    return d0, d1, d1 / d0 if d0 > 0 else float("nan")
  u0, u1, ru = damage_ratio("universal_accuracy")
  b0, b1, rb = damage_ratio("bi_accuracy")
  out["universal"] = dict(
      evidence=f"accuracy lost to the universal perturbation: epoch 0 "
               f"{100 * u0:.1f} points, {span} {100 * u1:.1f} (x{ru:.2f}); "
               f"to BI: {100 * b0:.1f} -> {100 * b1:.1f} (x{rb:.2f}) (yes: "
               "the universal loss shrinks below 0.7x and by 0.1 more than "
               "BI's; partly: below 0.7x only)",
      supported=("yes" if ru < 0.7 and ru < rb - 0.1 else
                 "partly" if ru < 0.7 else "no"))

  min_max = results["temporal_stability"]["min_max"]
  gap = late_mean(lambda r: r["clean_accuracy"] - r["bi_accuracy"])
  out["singular"] = dict(
      evidence=f"MinMax: {100 * min_max:.1f} % of test inputs are fooled at "
               f"every epoch by some epoch's BI perturbation; {span}: BI "
               f"accuracy {100 * gap:.1f} points below clean (yes: MinMax "
               "> 5 % and the gap > 10 points)",
      supported="yes" if min_max > 0.05 and gap > 0.1 else "no")

  rises = {a: (_mean_rate(first, a), late_mean(lambda r: _mean_rate(r, a)))
           for a in ADVERSARIES}
  n_up = sum(b - a >= 0.02 for a, b in rises.values())
  out["destruction"] = dict(
      evidence="mean destruction rate over the transforms, epoch 0 -> "
               f"{span}: " + ", ".join(
                   f"{k} {100 * a:.1f} % -> {100 * b:.1f} %"
                   for k, (a, b) in rises.items())
               + " (yes: up by >= 2 points for at least two adversaries; "
               "partly: for one)",
      supported="yes" if n_up >= 2 else "partly" if n_up == 1 else "no")

  acc = np.asarray(results["detectability"]["accuracy"])
  diag = np.diag(acc)
  off = acc[~np.eye(len(acc), dtype=bool)] if len(acc) > 1 else diag
  out["detectable"] = dict(
      evidence=f"detector accuracy on its own epoch: min {100 * diag.min():.1f} %, "
               f"mean {100 * diag.mean():.1f} %; on other epochs' "
               f"perturbations: mean {100 * off.mean():.1f} % (yes: > 80 % "
               "on its own epoch always and > 70 % across epochs)",
      supported="yes" if diag.min() > 0.8 and off.mean() > 0.7 else "no")
  for k in out:
    out[k]["claim"] = CLAIMS[k]
  return out


def _pct(v):
  return "-" if v is None or v != v else f"{100 * v:.1f} %"


def _report(cfg, results) -> str:
  rows = results["epochs"]
  lines = [
      f"# {cfg.dataset}: universality, robustness and detectability across "
      f"adversarial training (Metzen 2018), {cfg.model}",
      "",
      f"Epoch 0: the standard model ({cfg.epochs} epochs). Then "
      f"{cfg.adv_epochs} epochs of adversarial fine-tuning: {cfg.sigma:g} "
      f"clean + {1 - cfg.sigma:g} BI loss, BI eps {cfg.eps:g}, "
      f"{cfg.bi_steps} steps of {cfg.bi_step_size:g}, predicted labels. "
      f"Universal perturbation: eps {cfg.uni_eps:g}, step "
      f"{cfg.uni_step_size:g}, {cfg.uni_iterations} iterations, m = "
      f"{cfg.uni_batch_size}, K = {cfg.uni_batches_per_update}, fitted on "
      f"the training set. Analyses on {results['test_examples']} test inputs.",
      "",
      "| epoch | clean | BI | universal | FGSM | DeepFool | mean sharedness "
      "| destruction BI / FGSM / DeepFool | detector |",
      "|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
  det = results["detectability"]
  for r in rows:
    t = r["epoch"]
    d = (det["accuracy"][det["epochs"].index(t)][det["epochs"].index(t)]
         if t in det["epochs"] else None)
    lines.append(
        f"| {t} | {_pct(r['clean_accuracy'])} | {_pct(r['bi_accuracy'])} | "
        f"{_pct(r['universal_accuracy'])} | "
        f"{_pct(r['adversarial_accuracy']['fgsm'])} | "
        f"{_pct(r['adversarial_accuracy']['deepfool'])} | "
        f"{_pct(r['sharedness']['mean'])} | "
        + " / ".join(_pct(_mean_rate(r, a)) for a in ADVERSARIES)
        + f" | {_pct(d)} |")
  ts = results["temporal_stability"]
  lines += [
      "", "DeepFool is a minimal-perturbation attack (unbounded): its "
      "accuracy is that of its failures. Destruction rates are means over "
      "the transforms (per transform in results.json).", "",
      f"Temporal stability (BI perturbation of epoch t1 on the model of "
      f"epoch t2): MaxMin {_pct(ts['max_min'])} (some perturbation keeps "
      f"fooling every later model), MinMax {_pct(ts['min_max'])} (every "
      "epoch's model is fooled by some epoch's perturbation)."]
  first, last = rows[0], rows[-1]
  lines += [
      "", "## Stability checks (D'Costa & Sriramanan)", "",
      "Fraction of BI adversarial examples still misclassified after "
      "uniform noise U(-a, a) (clean accuracy under the same noise in "
      "brackets):", "",
      "| a | " + " | ".join(f"epoch {r['epoch']}" for r in (first, last)) + " |",
      "|---:|---:|---:|"]
  for i, a in enumerate(first["noise_stability"]["magnitude"]):
    cells = [f"{_pct(r['noise_stability']['still_fooled'][i])} "
             f"({_pct(r['noise_stability']['clean_accuracy'][i])})"
             for r in (first, last)]
    lines.append(f"| {a:g} | " + " | ".join(cells) + " |")
  lines += ["", "Flipped left-right (among inputs whose flipped clean image "
            "is still classified correctly):", "",
            "| epoch | flip(x + delta) still fooled | flip(x) + delta still "
            "fooled | flipped clean accuracy |", "|---:|---:|---:|---:|"]
  for r in (first, last):
    f = r["flip_stability"]
    lines.append(f"| {r['epoch']} | {_pct(f['flipped_adversarial'])} | "
                 f"{_pct(f['perturbation_on_flipped'])} | "
                 f"{_pct(f['flipped_clean_accuracy'])} |")
  if cfg.dataset == "digits":
    lines += ["", "Digits caveat: the images take 17 grey levels; any "
              "perturbation leaves that grid, a cue a detector can learn "
              "without learning anything about the perturbation's "
              "pattern, so the detector accuracies here are an upper "
              "bound of what the paper measures."]
  lines += ["", f"Training {results['train_seconds'] / 60:.1f} min on "
            f"{results['devices'][0]} x {len(results['devices'])}."]
  return "\n".join(lines)


def _figures(cfg, results, path, *, only):
  """Draws the figure `only` (of `FIGURES`) to `path` (the others of the
  shared code path to os.devnull)."""
  plt = report.pyplot()
  out = lambda name: path if name == only else os.devnull
  xis = np.asarray(results["universal_perturbations"])
  x = np.asarray(results["figure_image"])[None]
  rows = results["epochs"]
  t = [r["epoch"] for r in rows]
  report.line_plot(
      out("accuracy.png"), t,
      {"clean": [r["clean_accuracy"] for r in rows],
       "universal perturbation": [r["universal_accuracy"] for r in rows],
       "BI (per input)": [r["bi_accuracy"] for r in rows],
       "FGSM": [r["adversarial_accuracy"]["fgsm"] for r in rows]},
      xlabel="epoch of adversarial training", ylabel="test accuracy (%)",
      title="Accuracy across adversarial training", marker="o")

  shown = np.unique(np.linspace(0, len(rows) - 1,
                                min(cfg.figure_epochs, len(rows))).astype(int))
  fig, axes = plt.subplots(2, len(shown), figsize=(1.9 * len(shown), 4.2),
                           squeeze=False)
  for j, i in enumerate(shown):
    xi = xis[i]
    show = lambda a: a[..., 0] if a.shape[-1] == 1 else a
    axes[0, j].imshow(show(xi / (2 * cfg.uni_eps) + 0.5), cmap="RdBu_r",
                      vmin=0, vmax=1)
    axes[0, j].set_title(f"epoch {t[i]}\nacc {100 * rows[i]['universal_accuracy']:.0f} %",
                         fontsize=8)
    axes[1, j].imshow(show(np.clip(x[0] + xi, 0, 1)), cmap="gray",
                      vmin=0, vmax=1)
    for ax in axes[:, j]:
      ax.axis("off")
  fig.suptitle(f"Universal perturbations (eps {cfg.uni_eps:g}) and one test "
               "image with it", fontsize=9)
  fig.tight_layout()
  fig.savefig(out("universal_perturbations.png"), dpi=120)
  plt.close(fig)

  fig, ax = plt.subplots(figsize=(6, 3.8))
  vals = [np.asarray(r["sharedness"]["values"]) for r in rows]
  ax.boxplot([v if v.size else [np.nan] for v in vals], positions=t,
             showfliers=False)
  ax.plot(t, [v.mean() if v.size else np.nan for v in vals], "o-",
          label="mean")
  ax.set_xlabel("epoch of adversarial training")
  ax.set_ylabel("fraction of other inputs fooled")
  ax.set_title("Sharedness of per-input BI perturbations")
  ax.legend()
  fig.tight_layout()
  fig.savefig(out("sharedness.png"), dpi=120)
  plt.close(fig)

  fig, ax = plt.subplots(figsize=(5.5, 4.2))
  for i in (shown[0], shown[-1]):
    cc = rows[i]["cost_change"]
    ax.scatter(cc["own"], cc["others"], s=6, alpha=0.5,
               label=f"epoch {t[i]}")
  ax.set_xlabel("cost change on its own input")
  ax.set_ylabel("mean cost change on other inputs")
  ax.set_title("Transfer of per-input perturbations")
  ax.legend()
  fig.tight_layout()
  fig.savefig(out("cost_change.png"), dpi=120)
  plt.close(fig)

  ts = results["temporal_stability"]
  fig, ax = plt.subplots(figsize=(5, 4.2))
  im = ax.imshow(100 * np.asarray(ts["profile"]), cmap="viridis", vmin=0,
                 vmax=100, origin="lower")
  ax.set_xlabel("model of epoch t2")
  ax.set_ylabel("perturbation of epoch t1")
  ax.set_title(f"Fooled (%): MaxMin {100 * ts['max_min']:.0f} %, "
               f"MinMax {100 * ts['min_max']:.0f} %", fontsize=9)
  fig.colorbar(im, ax=ax)
  fig.tight_layout()
  fig.savefig(out("temporal_stability.png"), dpi=120)
  plt.close(fig)

  fig, axes = plt.subplots(1, len(ADVERSARIES),
                           figsize=(4.2 * len(ADVERSARIES), 3.8),
                           sharey=True)
  names = list(rows[0]["destruction_rate"]["bi"])
  kinds = {}  # "brightness +0.1" -> brightness: one curve per kind (mean)
  for name in names:
    kinds.setdefault(name.split()[0].lower(), []).append(name)
  for ax, adv_name in zip(axes, ADVERSARIES):
    for kind, members in kinds.items():
      ax.plot(t, [100 * np.nanmean([r["destruction_rate"][adv_name][m]
                                    for m in members]) for r in rows],
              marker=".", label=f"{kind} ({len(members)})")
    ax.set_title(f"destruction rate, {adv_name}")
    ax.set_xlabel("epoch")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
  axes[0].set_ylabel("%")
  axes[-1].legend(fontsize=7, title="mean over settings", title_fontsize=7)
  fig.tight_layout()
  fig.savefig(out("destruction_rate.png"), dpi=120)
  plt.close(fig)

  det = results["detectability"]
  acc = 100 * np.asarray(det["accuracy"])
  fig, axes = plt.subplots(1, 2, figsize=(9, 3.8))
  axes[0].plot(det["epochs"], np.diag(acc), "o-")
  axes[0].set_ylim(0, 100)
  axes[0].set_xlabel("epoch")
  axes[0].set_ylabel("detector accuracy (%)")
  axes[0].set_title("Detector on its own epoch")
  im = axes[1].imshow(acc, vmin=50, vmax=100, origin="lower")
  ticks = range(len(det["epochs"]))
  axes[1].set_xticks(ticks, det["epochs"])
  axes[1].set_yticks(ticks, det["epochs"])
  axes[1].set_xlabel("perturbations of epoch")
  axes[1].set_ylabel("detector of epoch")
  axes[1].set_title("Across epochs")
  fig.colorbar(im, ax=axes[1])
  fig.tight_layout()
  fig.savefig(out("detectability.png"), dpi=120)
  plt.close(fig)

  fig, ax = plt.subplots(figsize=(5.5, 3.8))
  for i in (shown[0], shown[-1]):
    ns = rows[i]["noise_stability"]
    ax.plot(ns["magnitude"], 100 * np.asarray(ns["still_fooled"]), "o-",
            label=f"adversarial still fooled, epoch {t[i]}")
    ax.plot(ns["magnitude"], 100 - 100 * np.asarray(ns["clean_accuracy"]),
            "x--", label=f"clean misclassified, epoch {t[i]}")
  ax.set_xlabel("uniform noise magnitude a")
  ax.set_ylabel("%")
  ax.set_ylim(0, 100)
  ax.set_title("Perturbations under added noise")
  ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(out("stability.png"), dpi=120)
  plt.close(fig)


BENCHMARK = run.Benchmark("universality", UniversalityConfig, PRESETS, models,
                          evaluate, make_report, doc=__doc__, refine=_refine)

if __name__ == "__main__":
  run.main(BENCHMARK)
