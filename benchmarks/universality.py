"""Universality, robustness and detectability of adversarial perturbations across the epochs of adversarial training.

    python -m benchmarks.universality --dataset digits   # ~7 min, 2 CPU cores

Measured on digits (benchmarks/results/universality-digits/results.md, where
every number the paper publishes stands beside this run's): over 20 epochs
of BI adversarial training (sigma 0) the mean sharedness falls 3.7 % ->
1.4 %, BI accuracy rises 52.8 % -> 76.1 % and universal 38.1 % -> 75.0 %;
mean MaxMin 0.775, MinMax 0.767 (19.5 % of 256 inputs stable, none
oscillating); Figure 2's log-log Pearson r is +0.107 (p = 0.04; published
-0.293); BI / FGSM / DeepFool detectors 97.2 / 95.5 / 73.4 %. Five of
twelve claims hold, three partly, four not (see the report).

Reproduces Metzen (2018, "Universality, robustness, and detectability of
adversarial perturbations under adversarial training") and D'Costa &
Sriramanan's reproducibility checks: a standard model, then adversarial
training (`sigma = 0`: the BI loss only; BI from the predicted labels),
every epoch kept. Per epoch: accuracy clean, under BI (test and training
inputs: the learning curve, Appendix A), FGSM, DeepFool and a universal
perturbation (Appendix D's update, true labels) fitted on the training set
and on the test set (Appendix E); the sharedness of the per-input BI
perturbations (Appendix C); their destruction rate under brightness,
contrast, blur, noise and JPEG (BI, FGSM, DeepFool: section 3.3, Appendix
F) and under a sweep of Gaussian noise (the crossover of section 3.3);
detectors of BI, FGSM and DeepFool examples (section 3.4, Appendix G) and
the universal perturbation that most activates each BI detector (Figure 7);
noise and flip stability (D'Costa & Sriramanan). Across epochs: the temporal
stability profile of each test input, `P[t1, t2] = p(y | x + xi_t1;
theta_t2)`, its MaxMin and MinMax (Figures 1 and 10); the BI examples of
each epoch on every model (Figure 9); the cost change of the epoch-0
perturbations on other training inputs against that on later models, and
their log-log Pearson correlation (Figure 2); the universal perturbations
of chosen epochs on every model (Figure 3); detectors across epochs. Writes
results.json, results.md (the published numbers beside these, a verdict per
claim) and PNG figures to --workdir (default runs/universality-<dataset>);
models and per-epoch analyses are kept there, and a rerun resumes or
reloads them. Other presets: --dataset mnist, cifar10 (Metzen's CIFAR-10
setting: PreAct ResNet-18, 200 + 250 epochs), gtsrb (Appendix H: eps 8/255,
universal 20/255, 25 + 175 epochs, 4209 training images held out; add
--model gtsrb_cnn for Appendix I's CNN); these need the data (tfds or raw
files; GTSRB's raw folders, see `advjax.data`) and a GPU.

The adversarial training is the runner's second model (`TrainSpec` built
from the standard model's variables, its own epochs and learning rate,
every epoch checkpointed); its evaluation is the across-epoch study
(`training.restore_epoch` of each kept epoch), each epoch's analysis cached
(`run.cached`) beside the checkpoints.
"""
import dataclasses
import functools
import os
from typing import Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from advjax.report import legacy
from advjax import analysis, data, report, run, training, transforms
from advjax.analysis import transfer as tr
from advjax.attacks import deepfool, gradient
from advjax.attacks.universal import apply_universal, universal
from advjax.models import MetzenDetector


@dataclasses.dataclass(frozen=True)
class UniversalityConfig(run.Config):
  """Settings (the standard model's training from `advjax.run.Config`).

  Attributes:
    adv_epochs: epochs of adversarial training (each one kept).
    adv_learning_rate: its Adam learning rate (constant).
    sigma: weight of the clean loss in the adversarial training loss
      (Metzen: 0, the BI loss only).
    eps, bi_steps, bi_step_size: the BI adversary (training and analysis;
      Metzen: 4/255, 10 iterations of 1/255).
    uni_eps, uni_step_size, uni_iterations, uni_batch_size,
      uni_batches_per_update: the universal perturbation (Metzen: 10/255,
      2.5/255, 200, m = 128, K = 10 on CIFAR-10).
    analysis_examples: test inputs of the per-epoch analyses, and training
      inputs of the training-set BI accuracy (0: all).
    profile_examples: test inputs of the temporal stability profiles (the
      first of the analysis inputs; Metzen: 256).
    cost_change_examples: training inputs the epoch-0 perturbations are
      transferred to (Figure 2; Metzen: 10000; 0: all).
    transfer_epochs: epochs whose universal perturbations are applied to
      every epoch's model (Figure 3: 0, 5 and 51 of 250); None: those
      scaled to adv_epochs.
    brightness, contrast, blur, noise, jpeg: the transforms' parameters
      (Kurakin et al.'s: brightness +-delta, contrast x mu, Gaussian blur
      sigma in pixels, Gaussian noise std, in the units of the box; JPEG
      quality).
    noise_sweep: Gaussian noise stds of the destruction-rate crossover (BI;
      Metzen: the standard model's rate is lower for sigma < 5/255, higher
      for sigma > 7/255).
    deepfool_steps: DeepFool's iterations.
    detector_epochs, detector_features, detector_every: the detectors (one
      per adversary, trained on the training set's clean / adversarial
      pairs at epochs 0, 1, every `detector_every` and the last).
    noise_magnitudes: uniform noise of the stability check.
    holdout: hold out this many training images (a seeded sample) as the
      test set instead of the dataset's test split (Metzen on GTSRB: 4209
      of 39209; 0: the test split).
    figure_epochs: epochs shown in the perturbation figures.
  """
  adv_epochs: Optional[int] = None
  adv_learning_rate: Optional[float] = None
  sigma: float = 0.
  eps: Optional[float] = None
  bi_steps: Optional[int] = None
  bi_step_size: Optional[float] = None
  uni_eps: Optional[float] = None
  uni_step_size: Optional[float] = None
  uni_iterations: Optional[int] = None
  uni_batch_size: Optional[int] = None
  uni_batches_per_update: Optional[int] = None
  analysis_examples: Optional[int] = None
  profile_examples: Optional[int] = None
  cost_change_examples: Optional[int] = None
  transfer_epochs: Optional[Tuple[int, ...]] = None
  brightness: Optional[Tuple[float, ...]] = None
  contrast: Optional[Tuple[float, ...]] = None
  blur: Optional[Tuple[float, ...]] = None
  noise: Optional[Tuple[float, ...]] = None
  jpeg: Optional[Tuple[float, ...]] = None
  noise_sweep: Optional[Tuple[float, ...]] = None
  deepfool_steps: int = 50
  detector_epochs: Optional[int] = None
  detector_features: Optional[Tuple[int, int, int]] = None
  detector_every: Optional[int] = None
  noise_magnitudes: Optional[Tuple[float, ...]] = None
  holdout: Optional[int] = None
  figure_epochs: int = 6


_TRANSFORMS_255 = dict(  # Kurakin et al.'s magnitudes on the 0..255 scale
    brightness=(-30., -15., 15., 30.), contrast=(0.7, 0.85, 1.15, 1.3),
    blur=(0.5, 1.0), noise=(5., 10., 20.), jpeg=(75., 50., 20.))
# Metzen's noise crossover: below 5, above 7 (of 255, at BI eps 4/255).
_SWEEP_255 = (1., 2., 3., 4., 5., 6., 7., 8., 10., 12., 15., 20.)
PAPER_EPOCHS = 250  # of adversarial training on CIFAR-10
PAPER_EPS = 4 / 255
CROSSOVER = (5 / 255, 7 / 255)


def _scaled(levels):
  """Kurakin's transform magnitudes (and the noise sweep) for images in
  [0, 1]."""
  out = dict(_TRANSFORMS_255)
  for k in ("brightness", "noise"):
    out[k] = tuple(v / levels for v in out[k])
  out["noise_sweep"] = tuple(v / levels for v in _SWEEP_255)
  return out


# Metzen's CIFAR-10 setting (section 3, Appendix D): BI eps 4/255, alpha
# 1/255, 10 iterations; 200 epochs of SGD, then 250 of adversarial training
# (sigma 0); universal 10/255, 2.5/255, m 128, K 10, 200 iterations.
_CIFAR = dict(
    model="preact_resnet18", epochs=200, batch_size=128, optimizer="sgd",
    learning_rate=0.1, weight_decay=5e-4, schedule="piecewise",
    adv_epochs=PAPER_EPOCHS, adv_learning_rate=1e-4, eps=4 / 255,
    bi_steps=10, bi_step_size=1 / 255, uni_eps=10 / 255,
    uni_step_size=2.5 / 255, uni_iterations=200, uni_batch_size=128,
    uni_batches_per_update=10, analysis_examples=1000, profile_examples=256,
    cost_change_examples=10000, detector_epochs=20,
    detector_features=(96, 192, 192), detector_every=10, holdout=0,
    noise_magnitudes=(2 / 255, 4 / 255, 8 / 255, 16 / 255), **_scaled(255.))
PRESETS = {
    # Embedded 8x8 digits (17 grey levels): the radii are scaled up as the
    # other digits presets (eps 0.1, where BI fools about half the standard
    # model's test digits; universal 0.2, alpha eps / 4 as Metzen's); 20
    # epochs of adversarial training stand for Metzen's 250 (his epochs 5,
    # 15 and 51 become 1, 1 and 4); the detector is narrower.
    "digits": dict(
        model="wong_mnist", epochs=30, batch_size=64, optimizer="adam",
        learning_rate=5e-3, weight_decay=0., schedule="cosine",
        adv_epochs=20, adv_learning_rate=1e-3, eps=0.1, bi_steps=10,
        bi_step_size=0.025, uni_eps=0.2, uni_step_size=0.05,
        uni_iterations=200, uni_batch_size=128, uni_batches_per_update=10,
        analysis_examples=0, profile_examples=256, cost_change_examples=0,
        detector_epochs=6, detector_features=(32, 64, 64), detector_every=4,
        holdout=0, noise_magnitudes=(0.05, 0.1, 0.2, 0.3),
        brightness=(-0.2, -0.1, 0.1, 0.2), contrast=(0.7, 0.85, 1.15, 1.3),
        blur=(0.5, 1.0), noise=(0.05, 0.1, 0.2), jpeg=(75., 50., 20.),
        # Metzen's 1..20 of 255 at eps 4/255, times eps / (4/255) = 6.4.
        noise_sweep=(0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.175, 0.2, 0.25,
                     0.3)),
    # Seconds: a smoke test of the whole pipeline, not a result.
    "synthetic": dict(
        model="wong_mnist", epochs=1, batch_size=32, optimizer="adam",
        learning_rate=2e-3, weight_decay=0., schedule="constant",
        adv_epochs=2, adv_learning_rate=1e-3, eps=0.1, bi_steps=2,
        bi_step_size=0.05, uni_eps=0.2, uni_step_size=0.05,
        uni_iterations=3, uni_batch_size=16, uni_batches_per_update=1,
        analysis_examples=48, profile_examples=16, cost_change_examples=64,
        detector_epochs=1, detector_features=(4, 8, 8), detector_every=1,
        holdout=0, noise_magnitudes=(0.1,), brightness=(0.1,),
        contrast=(0.8,), blur=(1.0,), noise=(0.1,), jpeg=(50.,),
        noise_sweep=(0.05, 0.3), deepfool_steps=3),
    "mnist": dict(
        model="madry_mnist", epochs=20, batch_size=128, optimizer="adam",
        learning_rate=1e-3, weight_decay=0., schedule="cosine",
        adv_epochs=20, adv_learning_rate=1e-4, eps=0.1, bi_steps=10,
        bi_step_size=0.025, uni_eps=0.2, uni_step_size=0.05,
        uni_iterations=200, uni_batch_size=128, uni_batches_per_update=10,
        analysis_examples=1000, profile_examples=256,
        cost_change_examples=10000, detector_epochs=10,
        detector_features=(96, 192, 192), detector_every=2, holdout=0,
        noise_magnitudes=(0.05, 0.1, 0.2, 0.3),
        **{**_scaled(255.), "noise_sweep": tuple(
            v * 0.1 / PAPER_EPS / 255 for v in _SWEEP_255)}),
    "cifar10": _CIFAR,
    # Appendix H: eps 8/255 (training and per-input perturbations),
    # universal 20/255, 25 epochs of standard training then 175 of
    # adversarial training, 35000 training images and 4209 held out for
    # evaluation; otherwise section 3's settings. Appendix I: the same with
    # --model gtsrb_cnn.
    "gtsrb": {**_CIFAR, **dict(
        epochs=25, adv_epochs=175, eps=8 / 255, uni_eps=20 / 255,
        holdout=4209)},
}

TRANSFORM_KINDS = ("brightness", "contrast", "blur", "noise", "jpeg")
METZEN_KINDS = ("brightness", "contrast", "blur")  # section 3.3's rises
ADVERSARIES = ("bi", "fgsm", "deepfool")

# The paper's claims (Metzen 2018: abstract, sections 3.1-3.5, Appendices
# A-G), each checked by `_claims` against this run's numbers.
CLAIMS = {
    "shared": "Adversarial training makes the remaining perturbations less "
              "shared: each fools fewer other inputs (Appendix C).",
    "correlation": "A perturbation's sharedness and its stability are "
                   "anti-correlated: its mean cost change on other training "
                   "inputs against its cost change on later models, "
                   "log-log (Figure 2: Pearson -0.293, p < 1e-18).",
    "universal": "Adversarial training is particularly effective against "
                 "universal perturbations: accuracy under them recovers far "
                 "more than under per-input (singular) perturbations, for "
                 "the respective epoch's perturbation and for those of "
                 "other epochs (Figure 3).",
    "universal_test": "Universal perturbations fitted on the test data are "
                      "no more effective than those fitted on the training "
                      "data (Appendix E).",
    "singular": "Adversarial training does not consistently remove singular "
                "perturbations on unseen inputs: for some test inputs a "
                "perturbation fools every model, and accuracy under BI "
                "stays well below clean accuracy.",
    "stable_dominant": "Stable perturbations (small MaxMin) are the "
                       "dominant failure case; oscillations (large MaxMin, "
                       "small MinMax) are fewer (Appendix B).",
    "overfitting": "Adversarial training overfits to the perturbations of "
                   "the training data: BI accuracy on the training inputs "
                   "gets close to 100 %, far above that on test inputs "
                   "(Appendix A).",
    "destruction": "The remaining perturbations are less robust to "
                   "brightness, contrast and blur: their destruction rate "
                   "rises over adversarial training (section 3.3, BI; "
                   "Appendix F, FGSM and DeepFool).",
    "noise_crossover": "Under additive Gaussian noise the standard model's "
                       "perturbations have a smaller destruction rate for "
                       "weak noise (sigma < 5/255) but a higher one for "
                       "strong noise (sigma > 7/255) than the adversarially "
                       "trained models' (section 3.3).",
    "detectable": "Even singular perturbations remain detectable: a "
                  "detector separates clean from adversarial inputs at "
                  "every epoch (> 90 %), and detectors transfer across "
                  "epochs (section 3.4).",
    "detect_attacks": "FGSM perturbations are easier and DeepFool ones "
                      "harder to detect than BI's, and all stay detectable "
                      "(Appendix G).",
    "detector_pattern": "The detector does not pick up one global pattern: "
                        "a universal perturbation maximising its output is "
                        "called adversarial with a mean probability of 12 % "
                        "or less after epoch 0 (Figure 7).",
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
               "detector_epochs", "detector_every", "deepfool_steps",
               "profile_examples"):
    if getattr(cfg, name) < 1:
      raise ValueError(f"UniversalityConfig.{name} must be >= 1, got "
                       f"{getattr(cfg, name)}.")
  for name in ("analysis_examples", "cost_change_examples", "holdout"):
    if getattr(cfg, name) < 0:
      raise ValueError(f"UniversalityConfig.{name} must be >= 0, got "
                       f"{getattr(cfg, name)}.")
  if not 0. <= cfg.sigma <= 1.:
    raise ValueError(f"UniversalityConfig.sigma must be in [0, 1], got "
                     f"{cfg.sigma}.")
  if not cfg.noise_sweep or min(cfg.noise_sweep) <= 0:
    raise ValueError("UniversalityConfig.noise_sweep must be positive noise "
                     f"stds, got {cfg.noise_sweep}.")
  if cfg.transfer_epochs is not None and not all(
      0 <= t <= cfg.adv_epochs for t in cfg.transfer_epochs):
    raise ValueError(f"UniversalityConfig.transfer_epochs must lie in [0, "
                     f"adv_epochs = {cfg.adv_epochs}], got "
                     f"{cfg.transfer_epochs}.")
  return preset


def paper_epoch(t: int, adv_epochs: int) -> int:
  """Metzen's epoch `t` (of 250 epochs of adversarial training) scaled to
  a run of `adv_epochs`: 0 stays 0 (the standard model), others are at
  least 1 and at most the last."""
  if t == 0:
    return 0
  return int(min(max(round(t * adv_epochs / PAPER_EPOCHS), 1), adv_epochs))


def transfer_epochs(cfg) -> Tuple[int, ...]:
  """The epochs of Figure 3's universal perturbations (0, 5, 51 of 250)."""
  if cfg.transfer_epochs is not None:
    return tuple(dict.fromkeys(int(t) for t in cfg.transfer_epochs))
  return tuple(dict.fromkeys(paper_epoch(t, cfg.adv_epochs)
                             for t in (0, 5, 51)))


def detector_epochs(cfg) -> Tuple[int, ...]:
  """Epochs with detectors: 0, 1 (Metzen's fixed detectors are of epochs
  0, 1 and the last), every `detector_every` and the last."""
  every = range(0, cfg.adv_epochs + 1, cfg.detector_every)
  return tuple(sorted({0, min(1, cfg.adv_epochs), cfg.adv_epochs, *every}))


def _bi(cfg):
  return functools.partial(gradient.bim, steps=cfg.bi_steps,
                           step_size=cfg.bi_step_size)


def _fine_tuning(cfg):
  """The config fields of the adversarial training."""
  return dict(epochs=cfg.adv_epochs, learning_rate=cfg.adv_learning_rate,
              optimizer="adam", weight_decay=0., schedule="constant")


def load_splits(cfg):
  """The training and test splits: with `holdout`, `holdout` training
  images (a sample seeded by `cfg.seed`) are the test set and the rest the
  training set (Metzen's GTSRB split); else None (the dataset's splits).

  Note: GTSRB's training images come in tracks of 30 views of one sign, so
  a random hold-out shares signs with the training set (the official test
  split does not: `--holdout 0`)."""
  if not cfg.holdout:
    return None
  full = data.load(cfg.dataset, "train", data_dir=cfg.data_dir, lazy=False)
  if cfg.holdout >= full.size:
    raise ValueError(f"UniversalityConfig.holdout = {cfg.holdout} leaves no "
                     f"training images of {full.size}.")
  order = np.random.default_rng(cfg.seed).permutation(full.size)
  test_idx = np.sort(order[:cfg.holdout])
  train_idx = np.sort(order[cfg.holdout:])
  if cfg.train_limit:
    train_idx = train_idx[:cfg.train_limit]
  if cfg.eval_limit:
    test_idx = test_idx[:cfg.eval_limit]
  part = lambda idx, split: full._replace(
      images=full.images[idx], labels=full.labels[idx], split=split)
  return part(train_idx, "train"), part(test_idx, "holdout")


def models(cfg, env):
  """The standard model, then its adversarial training (Adam at
  `adv_learning_rate`, every epoch kept; epoch 0 is the standard model)."""
  lo, hi = float(np.min(env.test.images)), float(np.max(env.test.images))
  if lo < 0 or hi > 1:
    raise ValueError(f"{cfg.dataset}: the study's transforms assume images "
                     f"in [0, 1], got [{lo:g}, {hi:g}].")
  split = dict(holdout=cfg.holdout)
  adv = lambda trained: run.TrainSpec(
      training.methods.fgsm_mix(cfg.eps, attack=_bi(cfg), sigma=cfg.sigma,
                                predicted_labels=True),
      dict(eps=cfg.eps, bi_steps=cfg.bi_steps, bi_step_size=cfg.bi_step_size,
           sigma=cfg.sigma, init="standard", **split),
      dict(init_variables=trained["standard"], epoch_checkpoints=True),
      _fine_tuning(cfg))
  return {"standard": run.TrainSpec(training.methods.standard(), split),
          "adversarial": adv}


class _Epoch:
  """The compiled computations of one epoch's model (variables as
  arguments, so every epoch reuses one compilation)."""

  def __init__(self, cfg, apply_fn):
    mf = lambda v: (lambda z: apply_fn(v, z))
    bi = _bi(cfg)
    self.batch = 512
    self.logits = jax.jit(apply_fn)
    self.bi = jax.jit(lambda v, x, y: bi(mf(v), x, y, eps=cfg.eps))
    self.fgsm = jax.jit(lambda v, x, y: gradient.fgsm(mf(v), x, y,
                                                      eps=cfg.eps))
    self.deepfool = jax.jit(lambda v, x, y: deepfool(
        mf(v), x, y, steps=cfg.deepfool_steps))
    fit = lambda f, x, y, key, **kw: universal(
        f, x, y, key=key, eps=cfg.uni_eps, step_size=cfg.uni_step_size,
        iterations=cfg.uni_iterations,
        batch_size=min(cfg.uni_batch_size, x.shape[0]),
        batches_per_update=cfg.uni_batches_per_update, return_result=True,
        **kw)
    self.universal = jax.jit(lambda v, x, y, key: fit(mf(v), x, y, key))
    self.transfer = jax.jit(lambda v, x, y, d: analysis.perturbation_transfer(
        mf(v), x, y, d))
    self.detector = MetzenDetector(
        num_classes=2, features=tuple(cfg.detector_features))
    det_fn = lambda dv: (lambda z: self.detector.apply(dv, z, train=False))
    # Figure 7: the universal perturbation that maximises the detector's
    # log-probability of 'adversarial' (targeted at class 1).
    self.detector_universal = jax.jit(lambda dv, x, key: fit(
        det_fn(dv), x, jnp.ones((x.shape[0],), jnp.int32), key,
        targeted=True))
    self.detector_prob = jax.jit(
        lambda dv, x: jax.nn.softmax(det_fn(dv)(x), -1)[:, 1])

  def model_fn(self, v):
    return lambda z: self.logits(v, z)

  def batched(self, fn, v, *arrays):
    """`fn(v, *arrays)` in chunks of `self.batch` rows, on the host."""
    n = arrays[0].shape[0]
    return np.concatenate([np.asarray(fn(v, *(a[i:i + self.batch]
                                             for a in arrays)))
                           for i in range(0, n, self.batch)])

  def predict(self, v, x):
    return self.batched(lambda v, z: jnp.argmax(self.logits(v, z), -1), v,
                        x)


def _accuracy(pred, y):
  return float(np.mean(np.asarray(pred) == np.asarray(y)))


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


def _analyse_epoch(cfg, ep, v, t, train, x, y, key, detector_due):
  """Everything measured on one epoch's model alone; returns (row,
  arrays)."""
  k_uni, k_uni_test, k_noise, k_tf, k_sweep, k_det = jax.random.split(
      jax.random.fold_in(key, t), 6)
  x_tr, y_tr = jnp.asarray(train.images), jnp.asarray(train.labels)
  n_tr = min(cfg.analysis_examples or x_tr.shape[0], x_tr.shape[0])
  clean_pred = ep.predict(v, x)
  correct = clean_pred == np.asarray(y)
  x_bi = jnp.asarray(ep.batched(ep.bi, v, x, y))
  uni = ep.universal(v, x_tr, y_tr, k_uni)  # Appendix D: true labels
  uni_test = ep.universal(v, x, y, k_uni_test)  # Appendix E
  row = {
      "epoch": t,
      "clean_accuracy": _accuracy(clean_pred, y),
      "bi_accuracy": _accuracy(ep.predict(v, x_bi), y),
      "train_clean_accuracy": _accuracy(ep.predict(v, x_tr[:n_tr]),
                                        y_tr[:n_tr]),
      "train_bi_accuracy": _accuracy(ep.predict(v, ep.batched(
          ep.bi, v, x_tr[:n_tr], y_tr[:n_tr])), y_tr[:n_tr]),
      "universal_accuracy": _accuracy(
          ep.predict(v, apply_universal(x, uni.perturbation)), y),
      "universal_test_accuracy": _accuracy(
          ep.predict(v, apply_universal(x, uni_test.perturbation)), y),
      "universal_loss_history": np.asarray(uni.loss_history).tolist(),
  }
  tf = ep.transfer(v, x, y, x_bi - x)
  shared = analysis.sharedness(tf.fooled, correct)
  fooled_own = np.asarray(jnp.diagonal(tf.fooled)) & correct
  own, others = analysis.cost_change_own_vs_others(tf.cost_change)
  row["sharedness"] = {
      "mean": float(shared[fooled_own].mean()) if fooled_own.any() else None,
      "min": float(shared[fooled_own].min()) if fooled_own.any() else None,
      "max": float(shared[fooled_own].max()) if fooled_own.any() else None,
      "quantiles": (np.quantile(shared[fooled_own], [0.5, 0.9, 0.99]).tolist()
                    if fooled_own.any() else None),
      "values": shared[fooled_own].tolist()}
  row["cost_change"] = {"own": own.tolist(), "others": others.tolist()}
  model_fn = ep.model_fn(v)
  adversarials = {"bi": x_bi,
                  "fgsm": jnp.asarray(ep.batched(ep.fgsm, v, x, y)),
                  "deepfool": jnp.asarray(ep.batched(ep.deepfool, v, x, y))}
  tfs = _transforms(cfg, k_tf)
  row["destruction_rate"] = {
      adv: analysis.destruction_rates(model_fn, x, xa, y,
                                      {n: f for n, (_, _, f) in tfs.items()},
                                      clean_correct=correct)
      for adv, xa in adversarials.items()}
  row["noise_sweep"] = list(analysis.destruction_rates(
      model_fn, x, x_bi, y, {
          str(i): functools.partial(transforms.gaussian_noise,
                                    key=jax.random.fold_in(k_sweep, i),
                                    sigma=s)
          for i, s in enumerate(cfg.noise_sweep)},
      clean_correct=correct).values())
  row["adversarial_accuracy"] = {
      adv: _accuracy(ep.predict(v, xa), y) for adv, xa in adversarials.items()}
  row["noise_stability"] = analysis.noise_stability(
      model_fn, x, x_bi, y, key=k_noise, magnitudes=cfg.noise_magnitudes)
  row["flip_stability"] = analysis.flip_stability(model_fn, x, x_bi, y)
  arrays = {"x_bi": np.asarray(x_bi), "xi": np.asarray(uni.perturbation),
            "xi_test": np.asarray(uni_test.perturbation), "detectors": None}
  if detector_due:
    arrays.update(_detectors(cfg, ep, v, t, x_tr, x, adversarials, k_det))
    row["detector_universal"] = arrays.pop("detector_universal")
  return row, arrays


def _detectors(cfg, ep, v, t, x_tr, x, adversarials, key):
  """One detector per adversary on the training set's clean / adversarial
  pairs (the attacks from the predicted labels), and Figure 7's
  perturbation of the BI detector."""
  y_pred = jnp.asarray(ep.predict(v, x_tr))
  attacks = {"bi": ep.bi, "fgsm": ep.fgsm, "deepfool": ep.deepfool}
  detectors = {}
  for i, adv in enumerate(ADVERSARIES):
    x_tr_adv = ep.batched(attacks[adv], v, x_tr, y_pred)
    detectors[adv] = analysis.train_detector(
        x_tr, x_tr_adv, seed=cfg.seed + 7 * t + i,
        epochs=cfg.detector_epochs, features=cfg.detector_features,
        batch_size=min(64, (x_tr.shape[0] // 8) * 8))
  dv = detectors["bi"].variables
  xi = ep.detector_universal(dv, x_tr, key).perturbation
  prob = lambda z: float(np.mean(ep.batched(ep.detector_prob, dv, z)))
  return {
      "detectors": detectors,
      "adversarials": {k: np.asarray(a) for k, a in adversarials.items()},
      "xi_detector": np.asarray(xi),
      "detector_universal": {
          "perturbed": prob(apply_universal(x, xi)), "clean": prob(x),
          "bi": prob(adversarials["bi"])}}


def evaluate(cfg, env, name, variables):
  """The standard model: its clean accuracy; the adversarial one: the
  study over every kept epoch (each epoch's own analysis cached beside the
  checkpoints), then across epochs."""
  n = cfg.analysis_examples or env.test.size
  x, y = jnp.asarray(env.test.images[:n]), jnp.asarray(env.test.labels[:n])
  ep = _Epoch(cfg, env.apply_fn)
  if name == "standard":
    return {"clean_accuracy": _accuracy(ep.predict(variables, x), y)}
  like = training.create_train_state(
      env.model, run.make_optimizer(
          dataclasses.replace(cfg, **_fine_tuning(cfg)), 1),
      jax.random.key(0), x.shape[1:])
  workdir = os.path.join(cfg.workdir, name)
  load = lambda t: jax.device_get(training.restore_epoch(
      workdir, like, t).variables)
  key = jax.random.key(cfg.seed + 11)
  epochs = list(range(cfg.adv_epochs + 1))
  det_epochs = detector_epochs(cfg)
  sources = transfer_epochs(cfg)
  n_p = min(cfg.profile_examples, int(n))
  shown = _shown_epochs(cfg)
  # Kept across epochs: the profile inputs' BI examples, the epoch-0 ones,
  # the universal perturbations; at detector epochs, the detectors and the
  # test inputs' adversarial examples.
  rows, x_bi_profile, xis, kept, x_bi0 = [], [], {}, {}, None
  for t in tqdm(epochs, desc="epochs", disable=not cfg.progress):
    v = load(t)
    row, arrays = run.cached(
        cfg, os.path.join(workdir, f"analysis_epoch_{t}.pkl"), v,
        lambda: _analyse_epoch(cfg, ep, v, t, env.train, x, y, key,
                               t in det_epochs))
    rows.append(row)
    x_bi_profile.append(arrays["x_bi"][:n_p])
    x_bi0 = arrays["x_bi"] if t == 0 else x_bi0
    xis[t] = {k: arrays[k] for k in ("xi", "xi_test", "xi_detector")
              if k in arrays}
    if arrays["detectors"] is not None:
      kept[t] = {k: arrays[k] for k in ("detectors", "adversarials")}
  across = _across_epochs(cfg, ep, load, env.train, epochs, x, y,
                          x_bi_profile, x_bi0, xis, sources)
  return {
      "test_examples": int(n), "epochs": rows, **across,
      "detectability": {
          "epochs": list(det_epochs), "accuracy": {
              adv: [[analysis.detector_accuracy(
                  kept[t1]["detectors"][adv], x,
                  kept[t2]["adversarials"][adv]) for t2 in det_epochs]
                    for t1 in det_epochs] for adv in ADVERSARIES}},
      "perturbations": {
          "epochs": shown,
          "train": np.stack([xis[t]["xi"] for t in shown]),
          "test": np.stack([xis[t]["xi_test"] for t in shown])},
      "detector_perturbations": {
          "epochs": list(det_epochs),
          "xi": np.stack([xis[t]["xi_detector"] for t in det_epochs])},
      "figure_image": np.asarray(x[0])}


def _shown_epochs(cfg):
  n = cfg.adv_epochs + 1
  return [int(t) for t in np.unique(np.linspace(
      0, n - 1, min(cfg.figure_epochs, n)).astype(int))]


def _across_epochs(cfg, ep, load, train, epochs, x, y, x_bi_profile, x_bi0,
                   xis, sources):
  """The analyses that pair one epoch's perturbations with another's
  model: one pass over the models, each restored once."""
  n_p = x_bi_profile[0].shape[0]
  y_p = y[:n_p]  # the profile inputs
  t_n = len(epochs)
  probs = np.zeros((t_n, t_n, n_p))
  fooled = np.zeros((t_n, t_n, n_p), bool)
  x_bis = np.concatenate(x_bi_profile)  # [T * n_p, ...]: one call per model
  y_all = np.tile(np.asarray(y_p), t_n)
  uni = np.zeros((len(sources), t_n))
  future = np.zeros((t_n, x.shape[0]))
  current = None
  for t2 in tqdm(epochs, desc="across epochs", disable=not cfg.progress):
    v = load(t2)
    f = ep.model_fn(v)
    logits = ep.batched(ep.logits, v, x_bis)
    p = np.asarray(jax.nn.softmax(jnp.asarray(logits, jnp.float32), -1))
    probs[:, t2] = p[np.arange(y_all.size), y_all].reshape(t_n, n_p)
    fooled[:, t2] = (logits.argmax(-1) != y_all).reshape(t_n, n_p)
    for i, s in enumerate(sources):
      uni[i, t2] = _accuracy(ep.predict(v, apply_universal(
          x, jnp.asarray(xis[s]["xi"]))), y)
    future[t2] = tr.cost_change_across([f], x, jnp.asarray(x_bi0), y)[0]
    if t2 == 0:
      current = _cost_change_on_training_inputs(cfg, ep, v, train, x, x_bi0)
  prof = tr.temporal_profile(probs)
  future_mean = future[1:].mean(0) if t_n > 1 else future[0]
  corr = tr.log_log_pearson(current, future_mean)
  examples = prof.examples()
  return {
      "temporal_stability": {
          "inputs": int(n_p), "mean_profile": prof.mean,
          "max_min": prof.max_min, "min_max": prof.min_max,
          "mean_max_min": float(prof.max_min.mean()),
          "mean_min_max": float(prof.min_max.mean()),
          "fractions": prof.fractions(),
          "examples": {k: {"index": i, "profile": probs[:, :, i]}
                       for k, i in examples.items()},
          "bi_transfer_error": fooled.mean(-1)},
      "cost_change_transfer": {
          "current_train": current, "future_test": future_mean,
          "train_inputs": int(min(cfg.cost_change_examples
                                  or train.images.shape[0],
                                  train.images.shape[0])),
          "pearson_r": corr.r, "p_value": corr.p, "pairs": corr.n,
          "dropped": corr.dropped},
      "universal_transfer": {"sources": list(sources), "accuracy": uni}}


def _cost_change_on_training_inputs(cfg, ep, v, train, x, x_bi0):
  """Figure 2's x axis: each epoch-0 perturbation's mean cost change over
  `cost_change_examples` training inputs under the epoch-0 model."""
  m = min(cfg.cost_change_examples or train.images.shape[0],
          train.images.shape[0])
  delta = jnp.asarray(x_bi0) - x
  total = np.zeros(delta.shape[0])
  for i in range(0, m, 2048):
    x_j = jnp.asarray(train.images[i:min(i + 2048, m)])
    y_j = jnp.asarray(train.labels[i:min(i + 2048, m)])
    total += np.asarray(ep.transfer(v, x_j, y_j, delta).cost_change).sum(1)
  return total / m


# --------------------------------------------------------------------------
# Claims, report, figures (from the results alone).
# --------------------------------------------------------------------------
def _mean_rate(row, adversary, kinds=None):
  vals = [r for k, r in row["destruction_rate"][adversary].items()
          if r == r and (kinds is None or k.split()[0].lower() in kinds)]
  return float(np.mean(vals)) if vals else float("nan")


def _kind_rate(row, adversary, kind):
  return _mean_rate(row, adversary, (kind,))


def _late(rows):
  """The last third of the adversarial-training epochs (at least one):
  single epochs are noisy (the universal perturbation is refitted each
  time)."""
  adv = rows[1:] or rows
  return adv[-max(1, len(adv) // 3):]


class _View:
  """The study's results with the derived numbers the claims and the
  report share."""

  def __init__(self, cfg, results):
    self.cfg, self.r = cfg, results
    self.rows = results["epochs"]
    self.first, self.last = self.rows[0], self.rows[-1]
    self.late = _late(self.rows)
    self.span = f"epochs {self.late[0]['epoch']}-{self.late[-1]['epoch']}"
    self.ts = results["temporal_stability"]
    self.det = results["detectability"]
    # Metzen's thresholds scaled by this run's eps (his: at 4/255).
    self.scale = cfg.eps / PAPER_EPS

  def late_mean(self, f):
    return float(np.nanmean([f(r) for r in self.late]))

  def row(self, t):
    return self.rows[min(t, len(self.rows) - 1)]

  def shared(self, r, what="mean"):
    m = r["sharedness"][what]
    return float("nan") if m is None else m

  def det_matrix(self, adv):
    return np.asarray(self.det["accuracy"][adv])

  def det_own(self, adv):
    return np.diag(self.det_matrix(adv))

  def det_row(self, adv, t):
    """Detector of epoch t on the other epochs' perturbations."""
    e = self.det["epochs"]
    if t not in e:
      return np.array([np.nan])
    i = e.index(t)
    m = self.det_matrix(adv)
    return np.delete(m[i], i) if len(e) > 1 else m[i]

  def sweep(self):
    """(sigmas, epoch-0 rates, late mean rates) of the noise sweep."""
    s = np.asarray(self.cfg.noise_sweep)
    d0 = np.asarray(self.first["noise_sweep"], float)
    dl = np.nanmean(np.asarray([r["noise_sweep"] for r in self.late],
                               float), 0)
    return s, d0, dl

  def crossover(self):
    """Mean epoch-0 minus late destruction rate below and above Metzen's
    thresholds (scaled)."""
    s, d0, dl = self.sweep()
    lo, hi = (c * self.scale for c in CROSSOVER)
    weak, strong = s < lo, s > hi
    diff = d0 - dl
    mean = lambda m: float(np.nanmean(diff[m])) if m.any() else float("nan")
    return mean(weak), mean(strong), lo, hi

  def detector_universal(self):
    """(epoch, Figure 7's probabilities) at each detector epoch."""
    return [(r["epoch"], r["detector_universal"]) for r in self.rows
            if "detector_universal" in r]


def _claims(cfg, results) -> dict:
  """Per claim of `CLAIMS`: the evidence (numbers) and a verdict, 'yes',
  'partly' or 'no', by the rule stated in the evidence."""
  w = _View(cfg, results)
  first, span, late_mean = w.first, w.span, w.late_mean
  out = {}

  s0, s1 = w.shared(first), late_mean(w.shared)
  out["shared"] = dict(
      evidence=f"mean sharedness of the BI perturbations (fraction of other "
               f"test inputs each fools): epoch 0 {100 * s0:.2f} %, {span} "
               f"{100 * s1:.2f} % (yes: below 0.8x)",
      supported="yes" if s1 < 0.8 * s0 else "no")

  cc = results["cost_change_transfer"]
  r, p = cc["pearson_r"], cc["p_value"]
  out["correlation"] = dict(
      evidence=f"Pearson r of log mean cost change on {cc['train_inputs']} "
               f"training inputs vs log mean cost change on the models of "
               f"epochs 1-{cfg.adv_epochs}: {r:+.3f} (p = {p:.2g}, "
               f"{cc['pairs']} perturbations; {cc['dropped']} with a cost "
               "change <= 0 left out) (yes: r < 0 and p < 0.01; partly: "
               "r < 0)",
      supported=("yes" if r < 0 and p < 0.01 else "partly" if r < 0
                 else "no"))

  def damage_ratio(key):
    d0 = first["clean_accuracy"] - first[key]
    d1 = late_mean(lambda r: r["clean_accuracy"] - r[key])
    return d0, d1, d1 / d0 if d0 > 0 else float("nan")
  u0, u1, ru = damage_ratio("universal_accuracy")
  b0, b1, rb = damage_ratio("bi_accuracy")
  ut = results["universal_transfer"]
  late_idx = [r["epoch"] for r in w.late]
  other = np.asarray(ut["accuracy"])[:, late_idx]
  other_loss = float(np.mean([r["clean_accuracy"] for r in w.late])
                     - other.mean(1).min())
  out["universal"] = dict(
      evidence=f"accuracy lost to the universal perturbation: epoch 0 "
               f"{100 * u0:.1f} points, {span} {100 * u1:.1f} (x{ru:.2f}); "
               f"to BI: {100 * b0:.1f} -> {100 * b1:.1f} (x{rb:.2f}); the "
               f"perturbations of epochs {ut['sources']} cost the {span} "
               f"models at most {100 * other_loss:.1f} points (yes: the "
               "universal loss shrinks below 0.7x, by 0.1 more than BI's, "
               "and the other epochs' cost no more than epoch 0's own; "
               "partly: below 0.7x only)",
      supported=("yes" if ru < 0.7 and ru < rb - 0.1 and other_loss <= u0
                 else "partly" if ru < 0.7 else "no"))

  gap = late_mean(lambda r: r["universal_accuracy"]
                  - r["universal_test_accuracy"])
  out["universal_test"] = dict(
      evidence=f"{span}: accuracy under the test-fitted universal "
               f"perturbation {100 * late_mean(lambda r: r['universal_test_accuracy']):.1f} %, "
               f"under the training-fitted one "
               f"{100 * late_mean(lambda r: r['universal_accuracy']):.1f} % "
               f"(test-fitted {100 * gap:+.1f} points more effective; yes: "
               "at most 5 points)",
      supported="yes" if gap <= 0.05 else "no")

  fr = w.ts["fractions"]
  bgap = late_mean(lambda r: r["clean_accuracy"] - r["bi_accuracy"])
  out["singular"] = dict(
      evidence=f"{100 * fr['stable']:.1f} % of {w.ts['inputs']} test inputs "
               "have a perturbation that every model gives the true class "
               f"below 0.5 (MaxMin < 0.5); {span}: BI accuracy "
               f"{100 * bgap:.1f} points below clean (yes: > 5 % and the "
               "gap > 10 points)",
      supported="yes" if fr["stable"] > 0.05 and bgap > 0.1 else "no")

  near = float(np.mean(np.asarray(w.ts["max_min"])
                       - np.asarray(w.ts["min_max"]) < 0.2))
  out["stable_dominant"] = dict(
      evidence=f"of {w.ts['inputs']} test inputs: stable (MaxMin < 0.5) "
               f"{100 * fr['stable']:.1f} %, oscillating (MinMax < 0.5 <= "
               f"MaxMin) {100 * fr['oscillating']:.1f} %, robust (MinMax "
               f">= 0.5) {100 * fr['robust']:.1f} %; {100 * near:.1f} % "
               "within 0.2 of the diagonal (yes: stable > oscillating)",
      supported="yes" if fr["stable"] > fr["oscillating"] else "no")

  tb = late_mean(lambda r: r["train_bi_accuracy"])
  te = late_mean(lambda r: r["bi_accuracy"])
  out["overfitting"] = dict(
      evidence=f"{span}: BI accuracy on training inputs {100 * tb:.1f} %, "
               f"on test inputs {100 * te:.1f} % (yes: training > 90 % and "
               "10 points above test; partly: 10 points above only)",
      supported=("yes" if tb > 0.9 and tb - te > 0.1 else
                 "partly" if tb - te > 0.1 else "no"))

  rises = {a: (_mean_rate(first, a, METZEN_KINDS),
               late_mean(lambda r: _mean_rate(r, a, METZEN_KINDS)))
           for a in ADVERSARIES}
  n_up = sum(b - a >= 0.02 for a, b in rises.values())
  out["destruction"] = dict(
      evidence="mean destruction rate under brightness, contrast and blur, "
               f"epoch 0 -> {span}: " + ", ".join(
                   f"{k} {100 * a:.1f} % -> {100 * b:.1f} %"
                   for k, (a, b) in rises.items())
               + " (yes: up by >= 2 points for all three adversaries; "
               "partly: for one or two)",
      supported=("yes" if n_up == 3 else "partly" if n_up else "no"))

  weak, strong, lo, hi = w.crossover()
  out["noise_crossover"] = dict(
      evidence=f"BI destruction rate under Gaussian noise, epoch 0 minus "
               f"{span}: {100 * weak:+.1f} points on average for sigma < "
               f"{lo:.3g}, {100 * strong:+.1f} for sigma > {hi:.3g} "
               f"(Metzen's 5/255 and 7/255 times eps / (4/255) = "
               f"{w.scale:.2f}) (yes: < 0 below and > 0 above; partly: one "
               "of the two)",
      supported=("yes" if weak < 0 and strong > 0 else
                 "partly" if weak < 0 or strong > 0 else "no"))

  diag = w.det_own("bi")
  fixed = [t for t in (1, cfg.adv_epochs) if t in w.det["epochs"]]
  trans = np.concatenate([w.det_row("bi", t) for t in fixed])
  out["detectable"] = dict(
      evidence=f"BI detector accuracy on its own epoch: min "
               f"{100 * diag.min():.1f} %, mean {100 * diag.mean():.1f} %; "
               f"detectors of epochs {fixed} on the other epochs' "
               f"perturbations: min {100 * np.nanmin(trans):.1f} % (yes: "
               "> 90 % on its own epoch always and > 90 % across epochs; "
               "partly: > 80 % and > 70 %)",
      supported=("yes" if diag.min() > 0.9 and np.nanmin(trans) > 0.9 else
                 "partly" if diag.min() > 0.8 and np.nanmin(trans) > 0.7
                 else "no"))

  own = {a: float(w.det_own(a).mean()) for a in ADVERSARIES}
  order = own["fgsm"] >= own["bi"] >= own["deepfool"]
  out["detect_attacks"] = dict(
      evidence="mean detector accuracy on its own epoch: " + ", ".join(
          f"{a} {100 * v:.1f} %" for a, v in own.items())
               + " (yes: FGSM >= BI >= DeepFool and all > 80 %; partly: "
               "all > 80 % only)",
      supported=("yes" if order and min(own.values()) > 0.8 else
                 "partly" if min(own.values()) > 0.8 else "no"))

  du = [(t, d) for t, d in w.detector_universal() if t >= 1]
  worst = max(d["perturbed"] for _, d in du) if du else float("nan")
  d0 = dict(w.detector_universal()).get(0, {}).get("perturbed", float("nan"))
  out["detector_pattern"] = dict(
      evidence=f"mean probability 'adversarial' of test inputs plus the "
               f"detector-maximising universal perturbation: epoch 0 "
               f"{100 * d0:.1f} %, epochs >= 1 at most {100 * worst:.1f} % "
               "(yes: <= 12 %; partly: < 50 %)",
      supported=("yes" if worst <= 0.12 else "partly" if worst < 0.5
                 else "no"))
  for k in out:
    out[k]["claim"] = CLAIMS[k]
  return out


def make_report(cfg, results):
  study = _study(results)
  claims = _claims(cfg, study)
  return legacy.Report(_report(cfg, study, claims), {
      name: functools.partial(draw, cfg, study)
      for name, draw in FIGURES.items()}, [
          legacy.Claim(c["claim"], c["supported"] == "yes",
                       f"{c['evidence']}; supported: {c['supported']}")
          for c in claims.values()])


def _study(results):
  """The adversarial model's study, with the run's times and devices."""
  ms = results["models"]
  return {**ms["adversarial"], "devices": results["devices"],
          "train_seconds": sum(m["train_seconds"] for m in ms.values()),
          "adversarial_training_history": ms["adversarial"]["history"]}


def _pct(v, digits=1):
  return "-" if v is None or v != v else f"{100 * v:.{digits}f} %"


def _published(cfg, w: _View, claims):
  """Rows (quantity, dataset, published, this run, reading) of every
  number the paper gives for this experiment."""
  rows, last, first = [], w.last, w.first
  e = lambda t: paper_epoch(t, cfg.adv_epochs)
  verdict = lambda k: claims[k]["supported"]
  cc = w.r["cost_change_transfer"]
  ut = w.r["universal_transfer"]
  uni_late = [r["universal_accuracy"] for r in w.rows
              if r["epoch"] >= e(3) and r["epoch"] > 0]
  uni_other = np.asarray(ut["accuracy"])[:, [r["epoch"] for r in w.rows
                                             if r["epoch"] >= max(e(3), 1)]]
  sweep_w = w.crossover()
  sh = lambda t, what="mean": _pct(w.shared(w.row(e(t)), what), 2)
  du = w.detector_universal()
  du_late = max((d["perturbed"] for t, d in du if t >= 1),
                default=float("nan"))
  bt = np.asarray(w.ts["bi_transfer_error"])
  later_err = lambda s: float(np.min(bt[s, s:])) if s < len(bt) else np.nan
  yes = lambda ok: "yes" if ok else "**no**"
  white = np.diag(bt)
  black = bt.max(0)  # the worst source per target
  kinds = lambda a: ", ".join(
      f"{k} {_pct(_kind_rate(first, a, k))} -> "
      f"{_pct(w.late_mean(lambda r: _kind_rate(r, a, k)))}"
      for k in ("brightness", "contrast", "blur", "noise"))
  det_fixed = {t: np.nanmin(w.det_row("bi", t)) for t in (0, 1, cfg.adv_epochs)}
  c10, gt = "CIFAR-10", "GTSRB"
  rows += [
      ("standard model: clean accuracy", c10, "94.1 %",
       _pct(first["clean_accuracy"]), ""),
      ("standard model: BI accuracy", c10, "0.5 %",
       _pct(first["bi_accuracy"]), ""),
      ("after adversarial training: clean accuracy", c10, "~90 %",
       _pct(last["clean_accuracy"]), ""),
      ("after adversarial training: BI accuracy (test)", c10, "~62 %",
       _pct(last["bi_accuracy"]), ""),
      ("after adversarial training: FGSM accuracy (test)", c10, "~68 %",
       _pct(last["adversarial_accuracy"]["fgsm"]), ""),
      ("after adversarial training: BI accuracy (training data)", c10,
       "97.7 % (close to 100 %)", _pct(last["train_bi_accuracy"]),
       verdict("overfitting")),
      ("test BI accuracy stops improving after", c10,
       "~25 of 250 epochs", _plateau(w.rows), ""),
      ("sharedness vs stability, log-log Pearson r (Figure 2)", c10,
       "-0.293, p < 1e-18 (1000 inputs)",
       f"{cc['pearson_r']:+.3f}, p = {cc['p_value']:.2g} ({cc['pairs']})",
       verdict("correlation")),
      ("universal perturbation: accuracy at epoch 0", c10, "12 %",
       _pct(first["universal_accuracy"]), ""),
      (f"universal: accuracy from epoch 3 (here {max(e(3), 1)}) on, own "
       "perturbation", c10, ">= 80 %",
       f"min {_pct(min(uni_late, default=np.nan))} (from epoch 3: "
       f"{_pct(min((r['universal_accuracy'] for r in w.rows[3:]), default=np.nan))})",
       yes(min(uni_late, default=0) >= 0.8)),
      (f"universal: perturbations of epochs 0, 5, 51 (here "
       f"{ut['sources']}) on those models", c10, ">= 80 %",
       f"min {_pct(np.min(uni_other) if uni_other.size else np.nan)}",
       yes(uni_other.size and np.min(uni_other) >= 0.8)
       + f"; claim: {verdict('universal')}"),
      ("universal fitted on test vs training data (Appendix E)", c10,
       "nearly identical",
       f"{_pct(w.late_mean(lambda r: r['universal_test_accuracy']))} vs "
       f"{_pct(w.late_mean(lambda r: r['universal_accuracy']))} ({w.span})",
       verdict("universal_test")),
      ("sharedness, epoch 0: mean / min", c10, "6.3 % / 3.3 %",
       f"{sh(0)} / {sh(0, 'min')}", ""),
      (f"sharedness, epoch 1 (here {e(1)})", c10, "1.1 %", sh(1), ""),
      (f"sharedness, epoch 15 (here {e(15)})", c10, "0.8 %", sh(15), ""),
      (f"sharedness, epoch 251 (here {e(251)})", c10, "0.5 %", sh(251),
       verdict("shared")),
      ("most shared perturbation after 251 epochs", c10, "< 1 %",
       sh(251, "max"), yes(w.shared(w.row(e(251)), "max") < 0.01)),
      ("BI examples of epochs 5, 15 (here " + f"{e(5)}, {e(15)}" + ") on "
       "every later model: error rate (Appendix A, test)", c10, ">= 20 %",
       f"min {_pct(min(later_err(e(5)), later_err(e(15))))}",
       yes(min(later_err(e(5)), later_err(e(15))) >= 0.2)),
      ("black-box (other epochs' BI examples) vs white-box error", c10,
       "black-box no more successful",
       f"most successful source {_pct(float(np.mean(black[1:])))} vs own "
       f"{_pct(float(np.mean(white[1:])))} (mean over epochs >= 1)",
       yes(np.all(black[1:] <= white[1:] + 0.02))),
      ("MaxMin vs MinMax, 256 inputs (Figure 10)", c10,
       "mostly near the diagonal; stable (lower left) more frequent than "
       "oscillating (upper left)",
       f"stable {_pct(w.ts['fractions']['stable'])}, oscillating "
       f"{_pct(w.ts['fractions']['oscillating'])}, robust "
       f"{_pct(w.ts['fractions']['robust'])}; mean MaxMin "
       f"{w.ts['mean_max_min']:.2f}, MinMax {w.ts['mean_min_max']:.2f}",
       verdict("stable_dominant")),
      ("destruction rate, BI: up under brightness, contrast, blur "
       "(section 3.3)", c10, "rises", kinds("bi"), verdict("destruction")),
      ("destruction rate under noise: standard model lower for sigma < 5, "
       "higher for sigma > 7 (of 255)", c10, "crossover",
       f"epoch 0 minus late: {100 * sweep_w[0]:+.1f} points below "
       f"{sweep_w[2]:.3g}, {100 * sweep_w[1]:+.1f} above {sweep_w[3]:.3g}",
       verdict("noise_crossover")),
      ("destruction rate, FGSM (Appendix F): up except under noise "
       "(down)", c10, "rises; noise falls", kinds("fgsm"), ""),
      ("destruction rate, DeepFool (Appendix F): up except under noise "
       "(down)", c10, "rises; noise falls", kinds("deepfool"), ""),
      ("BI detector accuracy, respective epoch", c10, "> 90 % at every "
       "epoch", f"min {_pct(w.det_own('bi').min())}", verdict("detectable")),
      ("BI detectors of epochs 1 and 251 on every other epoch", c10,
       "> 90 %", f"min {_pct(min(det_fixed[1], det_fixed[cfg.adv_epochs]))}",
       yes(min(det_fixed[1], det_fixed[cfg.adv_epochs]) > 0.9)),
      ("BI detector of epoch 0 on later epochs", c10, "not reliable",
       f"min {_pct(det_fixed[0])}", yes(det_fixed[0] < 0.9)),
      ("FGSM / BI / DeepFool detectability (Appendix G)", c10,
       "FGSM easier, DeepFool harder than BI", " / ".join(
           _pct(w.det_own(a).mean()) for a in ("fgsm", "bi", "deepfool")),
       verdict("detect_attacks")),
      ("detector-maximising universal perturbation: mean p(adversarial), "
       "epochs >= 1 (Figure 7)", c10, "<= 12 %", f"max {_pct(du_late)}",
       verdict("detector_pattern")),
  ]
  # Appendices H (ResNet) and I (CNN), measured by a GTSRB run of that
  # architecture.
  measured = {
      "BI accuracy after training, test / training":
          f"{_pct(last['bi_accuracy'])} / {_pct(last['train_bi_accuracy'])}",
      "universal (eps 20) accuracy, before -> after":
          f"{_pct(first['universal_accuracy'])} -> "
          f"{_pct(last['universal_accuracy'])}",
      "destruction rate over training": kinds("bi"),
      "BI detectability, respective epoch and fixed detectors":
          f"min {_pct(w.det_own('bi').min())} / "
          f"{_pct(min(det_fixed[1], det_fixed[cfg.adv_epochs]))}"}
  published = {
      "preact_resnet18": ("ResNet (Appendix H, eps 8)", (
          "95.2 % / 100 %", "~40 % -> > 98 %",
          "up under brightness, lower contrast, noise; blur up (weak), "
          "slightly down (strong)",
          "close to 100 %; epochs 26, 195 transfer nearly perfectly")),
      "gtsrb_cnn": ("CNN (Appendix I, eps 8)", (
          "90 % / 97 %", "~60 % -> > 95 %",
          "up under brightness, contrast, noise; blur first down, later "
          "back", "close to 100 %; epochs 25, 195 transfer nearly "
          "perfectly"))}
  for arch, (name, values) in published.items():
    ran = cfg.dataset == "gtsrb" and cfg.model == arch
    rows += [(f"{name}: {q}", gt, v, m if ran else
              f"not measured (needs --dataset gtsrb --model {arch})", "")
             for (q, m), v in zip(measured.items(), values)]
  return rows


def _plateau(rows):
  """The first epoch whose test BI accuracy is within 1 point of the best."""
  bi = [r["bi_accuracy"] for r in rows]
  best = max(bi)
  t = next(r["epoch"] for r, b in zip(rows, bi) if b >= best - 0.01)
  return f"epoch {t} of {rows[-1]['epoch']}"


def _report(cfg, results, claims) -> str:
  w = _View(cfg, results)
  rows = w.rows
  lines = [
      f"# {cfg.dataset}: universality, robustness and detectability across "
      f"adversarial training (Metzen 2018), {cfg.model}",
      "",
      f"Epoch 0: the standard model ({cfg.epochs} epochs). Then "
      f"{cfg.adv_epochs} epochs of adversarial training: {cfg.sigma:g} "
      f"clean + {1 - cfg.sigma:g} BI loss, BI eps {cfg.eps:.4g}, "
      f"{cfg.bi_steps} steps of {cfg.bi_step_size:.4g}, predicted labels "
      f"(Metzen: sigma 0, eps 4/255, 10 steps of 1/255, 250 epochs). "
      f"Universal perturbation (Appendix D, `xi <- Clip(xi + alpha / K "
      f"sum_k sgn(grad_k))`, true labels): eps {cfg.uni_eps:.4g}, alpha "
      f"{cfg.uni_step_size:.4g}, {cfg.uni_iterations} iterations, m = "
      f"{cfg.uni_batch_size}, K = {cfg.uni_batches_per_update}, fitted on "
      f"the training set and, separately, on the test inputs. Analyses on "
      f"{results['test_examples']} test inputs; stability profiles on the "
      f"first {w.ts['inputs']}.",
  ]
  if cfg.adv_epochs != PAPER_EPOCHS:
    lines += ["", f"Metzen's epochs (of {PAPER_EPOCHS}) are scaled to this "
              f"run's {cfg.adv_epochs}: 1 -> {paper_epoch(1, cfg.adv_epochs)}"
              f", 5 -> {paper_epoch(5, cfg.adv_epochs)}, 15 -> "
              f"{paper_epoch(15, cfg.adv_epochs)}, 51 -> "
              f"{paper_epoch(51, cfg.adv_epochs)}, 251 -> "
              f"{paper_epoch(251, cfg.adv_epochs)}."]
  lines += [
      "", "## Published numbers beside this run", "",
      f"Every number the paper gives for this experiment, with the dataset "
      f"it was measured on; 'this run' is {cfg.dataset}. Absolute levels do "
      "not carry over between datasets (no verdict on those); the last "
      "column says whether this run shows what the row states (a "
      "threshold or a direction), or gives the verdict of the claim the "
      "row belongs to (see Claims checked).", "",
      report.table(("quantity", "paper's data", "published", "this run",
                    "holds here"), _published(cfg, w, claims), "lllll")]
  contra = [f"**{k}**: {c['evidence']}" for k, c in claims.items()
            if c["supported"] != "yes"]
  if contra:
    lines += ["", f"Where this run does not support the paper "
              f"({len(contra)} of {len(claims)} claims):", ""]
    lines += [f"- {c}" for c in contra]
  lines += [
      "", "## Per epoch", "",
      "| epoch | clean | BI | BI (train) | universal (train-fitted / "
      "test-fitted) | FGSM | DeepFool | mean sharedness | destruction BI / "
      "FGSM / DeepFool | detector BI / FGSM / DeepFool |",
      "|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
  det = w.det
  for r in rows:
    t = r["epoch"]
    d = (" / ".join(_pct(w.det_matrix(a)[det["epochs"].index(t)][
        det["epochs"].index(t)]) for a in ADVERSARIES)
         if t in det["epochs"] else "-")
    lines.append(
        f"| {t} | {_pct(r['clean_accuracy'])} | {_pct(r['bi_accuracy'])} | "
        f"{_pct(r['train_bi_accuracy'])} | "
        f"{_pct(r['universal_accuracy'])} / "
        f"{_pct(r['universal_test_accuracy'])} | "
        f"{_pct(r['adversarial_accuracy']['fgsm'])} | "
        f"{_pct(r['adversarial_accuracy']['deepfool'])} | "
        f"{_pct(r['sharedness']['mean'])} | "
        + " / ".join(_pct(_mean_rate(r, a)) for a in ADVERSARIES)
        + f" | {d} |")
  ts = w.ts
  lines += [
      "", "DeepFool is a minimal-perturbation attack (unbounded): its "
      "accuracy is that of its failures. Destruction rates are means over "
      "all the transforms (per transform in results.json).", "",
      "## Temporal stability", "",
      f"`P_i[t1, t2] = p(y_i | x_i + xi_t1; theta_t2)` per test input, over "
      f"every pair of epochs; per input `MaxMin = min_t1 max_t2 P` and "
      f"`MinMax = max_t2 min_t1 P` (then averaged, or counted): mean MaxMin "
      f"{ts['mean_max_min']:.3f}, mean MinMax {ts['mean_min_max']:.3f}; "
      f"stable perturbation (MaxMin < 0.5) {_pct(ts['fractions']['stable'])}"
      f", oscillation (MinMax < 0.5 <= MaxMin) "
      f"{_pct(ts['fractions']['oscillating'])}, robust (MinMax >= 0.5) "
      f"{_pct(ts['fractions']['robust'])} of {ts['inputs']} inputs "
      "(temporal_stability.png: Figure 1's three kinds of profile; "
      "maxmin_minmax.png: Figure 10).", "",
      "BI examples of chosen epochs on every model (error rate, Figure 9):",
      "", "| perturbation of epoch | " + " | ".join(
          f"model {t}" for t in _few(cfg)) + " |",
      "|---:|" + "---:|" * len(_few(cfg))]
  bt = np.asarray(ts["bi_transfer_error"])
  for s in _few(cfg):
    lines.append(f"| {s} | " + " | ".join(_pct(bt[s, t]) for t in _few(cfg))
                 + " |")
  s, d0, dl = w.sweep()
  lines += [
      "", "## Destruction rate under Gaussian noise (the crossover)", "",
      f"BI examples, noise std sigma (Metzen's thresholds 5/255 and 7/255 "
      f"scale to {CROSSOVER[0] * w.scale:.3g} and "
      f"{CROSSOVER[1] * w.scale:.3g} at this eps):", "",
      "| sigma | epoch 0 | " + w.span + " (mean) |", "|---:|---:|---:|"]
  lines += [f"| {a:.4g} | {_pct(b)} | {_pct(c)} |" for a, b, c in
            zip(s, d0, dl)]
  first, last = w.first, w.last
  lines += [
      "", "## Detector-maximising universal perturbations (Figure 7)", "",
      "Mean probability 'adversarial' from the BI detector of each epoch:",
      "", "| epoch | test inputs + perturbation | clean | BI examples |",
      "|---:|---:|---:|---:|"]
  lines += [f"| {t} | {_pct(d['perturbed'])} | {_pct(d['clean'])} | "
            f"{_pct(d['bi'])} |" for t, d in w.detector_universal()]
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
              "bound of what the paper measures. It is also why one "
              "universal perturbation activates the detector on every "
              "input here (Figure 7's check), where on CIFAR-10 it did "
              "not: a single global pattern, leaving the grid, is all the "
              "detector needs."]
  if cfg.holdout:
    lines += ["", f"Test set: {cfg.holdout} training images held out "
              "(Metzen's GTSRB split; random, so it shares signs' tracks "
              "with the training set)."]
  lines += ["", f"Training {results['train_seconds'] / 60:.1f} min on "
            f"{results['devices'][0]} x {len(results['devices'])}."]
  return "\n".join(lines)


def _few(cfg):
  """A handful of epochs for tables: 0, Metzen's 5, 15, 51 (scaled) and
  the last."""
  return sorted({paper_epoch(t, cfg.adv_epochs) for t in (0, 5, 15, 51,
                                                          251)})


# Figures: name -> draw(cfg, results, path).
def _save(fig, path):
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  report.pyplot().close(fig)


def _fig_accuracy(cfg, results, path):
  rows = results["epochs"]
  t = [r["epoch"] for r in rows]
  legacy.line_plot(
      path, t,
      {"clean": [r["clean_accuracy"] for r in rows],
       "BI (test)": [r["bi_accuracy"] for r in rows],
       "BI (training inputs)": [r["train_bi_accuracy"] for r in rows],
       "FGSM": [r["adversarial_accuracy"]["fgsm"] for r in rows],
       "universal": [r["universal_accuracy"] for r in rows]},
      xlabel="epoch of adversarial training", ylabel="accuracy (%)",
      title="Learning curve (Figure 8)", marker="o")


def _show(a):
  a = np.asarray(a)
  return a[..., 0] if a.shape[-1] == 1 else a


def _fig_perturbations(cfg, results, path):
  plt = report.pyplot()
  p = results["perturbations"]
  rows = {r["epoch"]: r for r in results["epochs"]}
  x = np.asarray(results["figure_image"])
  shown = p["epochs"]
  fig, axes = plt.subplots(3, len(shown), figsize=(1.9 * len(shown), 6.2),
                           squeeze=False)
  for j, t in enumerate(shown):
    for i, (kind, key) in enumerate((("train", "universal_accuracy"),
                                     ("test", "universal_test_accuracy"))):
      xi = np.asarray(p[kind][j])
      axes[i, j].imshow(_show(xi / (2 * cfg.uni_eps) + 0.5), cmap="RdBu_r",
                        vmin=0, vmax=1)
      axes[i, j].set_title(f"epoch {t} ({kind})\nacc "
                           f"{100 * rows[t][key]:.0f} %", fontsize=8)
    axes[2, j].imshow(_show(np.clip(x + np.asarray(p["train"][j]), 0, 1)),
                      cmap="gray", vmin=0, vmax=1)
    for ax in axes[:, j]:
      ax.axis("off")
  fig.suptitle(f"Universal perturbations (eps {cfg.uni_eps:.3g}) fitted on "
               "training / test data, and one test image with the first "
               "(Figures 4, 13)", fontsize=9)
  _save(fig, path)


def _fig_universal_transfer(cfg, results, path):
  rows = results["epochs"]
  ut = results["universal_transfer"]
  series = {"respective epoch": [r["universal_accuracy"] for r in rows],
            "respective epoch, fitted on test data":
                [r["universal_test_accuracy"] for r in rows]}
  for s, acc in zip(ut["sources"], ut["accuracy"]):
    series[f"perturbation of epoch {s}"] = acc
  legacy.line_plot(path, [r["epoch"] for r in rows], series,
                   xlabel="epoch of the model", ylabel="accuracy (%)",
                   title="Universal perturbations across epochs (Figures 3, "
                         "12)", marker=".")


def _fig_sharedness(cfg, results, path):
  plt = report.pyplot()
  rows = results["epochs"]
  t = [r["epoch"] for r in rows]
  fig, ax = plt.subplots(figsize=(6, 3.8))
  vals = [np.asarray(r["sharedness"]["values"]) for r in rows]
  ax.boxplot([v if v.size else [np.nan] for v in vals], positions=t,
             showfliers=False)
  ax.plot(t, [v.mean() if v.size else np.nan for v in vals], "o-",
          label="mean")
  ax.set_xlabel("epoch of adversarial training")
  ax.set_ylabel("fraction of other inputs fooled")
  ax.set_title("Sharedness of per-input BI perturbations (Figure 11)")
  ax.legend()
  _save(fig, path)


def _fig_cost_change(cfg, results, path):
  plt = report.pyplot()
  cc = results["cost_change_transfer"]
  a, b = np.asarray(cc["current_train"]), np.asarray(cc["future_test"])
  keep = (a > 0) & (b > 0)
  fig, ax = plt.subplots(figsize=(5.5, 4.2))
  ax.scatter(a[keep], b[keep], s=6, alpha=0.5)
  ax.set_xscale("log")
  ax.set_yscale("log")
  ax.tick_params(which="minor", labelbottom=False, labelleft=False)
  ax.set_xlabel(f"mean cost change on {cc['train_inputs']} training inputs "
                "(sharedness)", fontsize=8)
  ax.set_ylabel(f"mean cost change on epochs 1-{cfg.adv_epochs} (stability)",
                fontsize=8)
  ax.set_title(f"Epoch-0 BI perturbations (Figure 2): r = "
               f"{cc['pearson_r']:+.3f}, p = {cc['p_value']:.1g}", fontsize=9)
  _save(fig, path)


def _fig_profiles(cfg, results, path):
  plt = report.pyplot()
  ts = results["temporal_stability"]
  names = {"robust": "largest MinMax", "stable": "smallest MaxMin",
           "oscillating": "largest MaxMin - MinMax"}
  panels = [(f"mean over {ts['inputs']} inputs\nmean MaxMin "
             f"{ts['mean_max_min']:.2f}, MinMax {ts['mean_min_max']:.2f}",
             np.asarray(ts["mean_profile"]))] + [
      (f"{names[k]} (input {e['index']})\nMaxMin "
       f"{np.asarray(e['profile']).max(1).min():.2f}, MinMax "
       f"{np.asarray(e['profile']).min(0).max():.2f}",
       np.asarray(e["profile"])) for k, e in ts["examples"].items()]
  fig, axes = plt.subplots(1, len(panels), figsize=(3.3 * len(panels), 3.6),
                           constrained_layout=True)
  for ax, (title, p) in zip(axes, panels):
    im = ax.imshow(p, cmap="gray", vmin=0, vmax=1, origin="lower")
    ax.set_xlabel("model of epoch t2")
    ax.set_title(title, fontsize=8)
  axes[0].set_ylabel("perturbation of epoch t1")
  fig.colorbar(im, ax=list(axes), shrink=0.8, label="p(true class)")
  fig.suptitle("Temporal stability profiles P[t1, t2] (Figure 1)",
               fontsize=9)
  fig.savefig(path, dpi=120)
  plt.close(fig)


def _fig_maxmin(cfg, results, path):
  plt = report.pyplot()
  ts = results["temporal_stability"]
  fig, ax = plt.subplots(figsize=(4.6, 4.4))
  ax.scatter(ts["min_max"], ts["max_min"], s=8, alpha=0.5)
  ax.plot([0, 1], [0, 1], color="gray", lw=1, ls="--")
  ax.set_xlim(-0.02, 1.02)
  ax.set_ylim(-0.02, 1.02)
  ax.set_xlabel("MinMax")
  ax.set_ylabel("MaxMin")
  ax.set_title(f"{ts['inputs']} test inputs (Figure 10)", fontsize=9)
  _save(fig, path)


def _fig_bi_transfer(cfg, results, path):
  bt = np.asarray(results["temporal_stability"]["bi_transfer_error"])
  t = list(range(bt.shape[0]))
  series = {"respective epoch (white-box)": np.diag(bt)}
  for s in _few(cfg):
    series[f"BI examples of epoch {s}"] = bt[s]
  legacy.line_plot(path, t, series, xlabel="epoch of the model",
                   ylabel="error rate (%)",
                   title="BI examples across epochs, test (Figure 9)",
                   marker=".")


def _fig_destruction(cfg, results, path):
  plt = report.pyplot()
  rows = results["epochs"]
  t = [r["epoch"] for r in rows]
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
  _save(fig, path)


def _fig_crossover(cfg, results, path):
  rows = results["epochs"]
  sweep = np.asarray(cfg.noise_sweep)
  series = {f"epoch {r['epoch']}": r["noise_sweep"]
            for r in rows if r["epoch"] in _few(cfg)}
  legacy.line_plot(path, sweep, series, xlabel="Gaussian noise std sigma",
                   ylabel="destruction rate (%)",
                   title="BI examples under noise: the crossover",
                   marker="o", vline=CROSSOVER[0] * cfg.eps / PAPER_EPS,
                   vline_label="Metzen's 5/255, scaled")


def _fig_detectability(cfg, results, path):
  plt = report.pyplot()
  det = results["detectability"]
  e = det["epochs"]
  fig, axes = plt.subplots(1, len(ADVERSARIES),
                           figsize=(4.2 * len(ADVERSARIES), 3.6), sharey=True)
  for ax, adv in zip(axes, ADVERSARIES):
    acc = 100 * np.asarray(det["accuracy"][adv])
    ax.plot(e, np.diag(acc), "o-", label="respective epoch")
    for t in sorted({0, min(1, cfg.adv_epochs), cfg.adv_epochs}):
      ax.plot(e, acc[e.index(t)], ".--", label=f"detector of epoch {t}")
    ax.set_ylim(40, 100)
    ax.set_xlabel("epoch of the perturbations")
    ax.set_title(f"{adv} (Figures 6, 16)", fontsize=9)
    ax.grid(alpha=0.3)
  axes[0].set_ylabel("detector accuracy (%)")
  axes[-1].legend(fontsize=7)
  _save(fig, path)


def _fig_detector_perturbations(cfg, results, path):
  plt = report.pyplot()
  dp = results["detector_perturbations"]
  du = {r["epoch"]: r["detector_universal"] for r in results["epochs"]
        if "detector_universal" in r}
  n = len(dp["epochs"])
  fig, axes = plt.subplots(1, n, figsize=(1.9 * n, 2.4), squeeze=False)
  for ax, t, xi in zip(axes[0], dp["epochs"], dp["xi"]):
    ax.imshow(_show(np.asarray(xi) / (2 * cfg.uni_eps) + 0.5),
              cmap="RdBu_r", vmin=0, vmax=1)
    ax.set_title(f"epoch {t}\np(adv) {100 * du[t]['perturbed']:.0f} %",
                 fontsize=8)
    ax.axis("off")
  fig.suptitle("Perturbations maximising the BI detector (Figure 7)",
               fontsize=9)
  _save(fig, path)


def _fig_stability(cfg, results, path):
  plt = report.pyplot()
  rows = results["epochs"]
  fig, ax = plt.subplots(figsize=(5.5, 3.8))
  for r in (rows[0], rows[-1]):
    ns = r["noise_stability"]
    ax.plot(ns["magnitude"], 100 * np.asarray(ns["still_fooled"]), "o-",
            label=f"adversarial still fooled, epoch {r['epoch']}")
    ax.plot(ns["magnitude"], 100 - 100 * np.asarray(ns["clean_accuracy"]),
            "x--", label=f"clean misclassified, epoch {r['epoch']}")
  ax.set_xlabel("uniform noise magnitude a")
  ax.set_ylabel("%")
  ax.set_ylim(0, 100)
  ax.set_title("Perturbations under added noise (D'Costa & Sriramanan)")
  ax.legend(fontsize=7)
  _save(fig, path)


FIGURES = {
    "accuracy.png": _fig_accuracy,
    "universal_perturbations.png": _fig_perturbations,
    "universal_transfer.png": _fig_universal_transfer,
    "sharedness.png": _fig_sharedness,
    "cost_change.png": _fig_cost_change,
    "temporal_stability.png": _fig_profiles,
    "maxmin_minmax.png": _fig_maxmin,
    "bi_transfer.png": _fig_bi_transfer,
    "destruction_rate.png": _fig_destruction,
    "noise_crossover.png": _fig_crossover,
    "detectability.png": _fig_detectability,
    "detector_perturbations.png": _fig_detector_perturbations,
    "stability.png": _fig_stability,
}


BENCHMARK = run.Benchmark("universality", UniversalityConfig, PRESETS, models,
                          evaluate, make_report, doc=__doc__, refine=_refine,
                          data=load_splits)

if __name__ == "__main__":
  run.main(BENCHMARK)
