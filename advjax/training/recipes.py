"""The papers' training recipes per dataset, shared by the benchmark configs
that train the same models (`benchmarks.madry`, `benchmarks.autoattack`):
architecture, epochs, batch, optimizer and schedule, the Linf radius and the
PGD of training and of evaluation.

MNIST: Madry et al. 2018 (eps 0.3, PGD-40 step 0.01, Adam 1e-4, Madry's
CNN); CIFAR-10: Madry et al. / Rice et al. 2020 (eps 8/255, PGD-7 step
2/255, PreAct ResNet-18, SGD 0.1 piecewise, weight decay 5e-4); digits: the
embedded 8x8 data in about a minute on 2 CPU cores. Wasserstein: Wong,
Schmidt, Kolter 2019's three models (standard, Linf PGD-trained,
Wasserstein-trained with the adaptive radius), shared by
`benchmarks.wasserstein` and `benchmarks.spatial`. Spatial: Engstrom et
al. 2019's spatially trained models (`engstrom_methods`) and the spatial
study's presets (`ENGSTROM`: Wasserstein's training, Engstrom's attacks).
Universality: Metzen 2018's study across the epochs of adversarial training
(`METZEN`, `benchmarks.universality`).
"""

import functools
from typing import Any, Dict, Mapping, Optional, Tuple

from advjax.attacks.wasserstein import wasserstein_search
from advjax.training import methods

__all__ = ["MADRY", "METHOD_RECIPES", "WASSERSTEIN", "WASSERSTEIN_TRAINING",
           "WASSERSTEIN_METHODS", "wasserstein_methods", "ENGSTROM_METHODS",
           "engstrom_methods", "ENGSTROM", "METZEN", "METZEN_EPOCHS",
           "METZEN_EPS"]

_MNIST = dict(model="madry_mnist", epochs=100, batch_size=50, eps=0.3,
              train_steps=40, train_step_size=0.01, eval_steps=100,
              eval_restarts=10, optimizer="adam", learning_rate=1e-4,
              weight_decay=0., schedule="constant")
_CIFAR = dict(model="preact_resnet18", epochs=100, batch_size=128,
              eps=8 / 255, train_steps=7, train_step_size=2 / 255,
              eval_steps=20, eval_restarts=5, optimizer="sgd",
              learning_rate=0.1, weight_decay=5e-4, schedule="piecewise")
MADRY = {
    "digits": dict(model="wong_mnist", epochs=100, batch_size=64, eps=0.2,
                   train_steps=10, train_step_size=0.05, eval_steps=20,
                   eval_restarts=4, optimizer="adam", learning_rate=5e-3,
                   weight_decay=0., schedule="cosine"),
    "synthetic": dict(model="wong_mnist", epochs=2, batch_size=32, eps=0.1,
                      train_steps=3, train_step_size=0.05, eval_steps=5,
                      eval_restarts=1, optimizer="adam", learning_rate=2e-3,
                      weight_decay=0., schedule="constant"),
    "mnist": _MNIST,
    "fashion_mnist": {**_MNIST, "eps": 0.1, "train_step_size": 0.01},
    "cifar10": _CIFAR,
    "cifar100": _CIFAR,
    "svhn_cropped": {**_CIFAR, "learning_rate": 0.01, "epochs": 40},
}

# A method's own recipe on a dataset, over MADRY's: Wong, Rice, Kolter
# 2020's FGSM-RS on CIFAR-10 (a cyclic schedule, 15 epochs).
METHOD_RECIPES = {("cifar10", "fgsm_rs"): dict(epochs=15, schedule="cyclic",
                                                learning_rate=0.2)}

_WASSERSTEIN_MNIST = dict(
    # Wong et al.'s MNIST setting: their CNN, SGD 0.1 (momentum 0.9, weight
    # decay 5e-4), batch 128; adaptive radius 0.1 x 1.4 every 5 of 50 steps.
    model="wong_mnist", epochs=100, batch_size=128, optimizer="sgd",
    learning_rate=0.1, weight_decay=5e-4, schedule="piecewise", eps=1.0,
    lam=1000., train_eps0=0.1, train_factor=1.4, train_grow_every=5,
    train_steps=50, train_sinkhorn_iterations=50,
    # The Linf-robust comparison model: their MNIST Linf model had eps 0.1.
    linf_eps=0.1, linf_steps=40, linf_step_size=0.01,
    # The reference's attack defaults (eps0 0.01, x1.1 every 10 of 400
    # steps) top out at radius 0.45, below the table's 1.0: grow every 5.
    search_eps0=0.01, search_factor=1.1, search_grow_every=5,
    search_steps=400, linf_eval_eps=(0.05, 0.1, 0.2, 0.3),
    linf_eval_steps=40, linf_eval_restarts=4)
WASSERSTEIN = {
    # Embedded 8x8 digits: ~10 minutes on 2 CPU cores. The radius 0.2 is where
    # the standard model is nearly always fooled (as MNIST at 1.0); the
    # training attack is shortened (20 steps, growing every 2, Sinkhorn
    # capped at 20 iterations) to keep Wasserstein training ~4 minutes.
    "digits": dict(
        model="wong_mnist", epochs=30, batch_size=64, optimizer="adam",
        learning_rate=5e-3, weight_decay=0., schedule="cosine", eps=0.2,
        lam=1000., train_eps0=0.02, train_factor=1.4, train_grow_every=2,
        train_steps=20, train_sinkhorn_iterations=20, linf_eps=0.2,
        linf_steps=10, linf_step_size=0.05, search_eps0=0.01,
        search_factor=1.1, search_grow_every=5, search_steps=300,
        linf_eval_eps=(0.05, 0.1, 0.15, 0.2, 0.3), linf_eval_steps=20,
        linf_eval_restarts=2),
    # Seconds: a smoke test of the whole pipeline, not a result.
    "synthetic": dict(
        model="wong_mnist", epochs=1, batch_size=32, optimizer="adam",
        learning_rate=2e-3, weight_decay=0., schedule="constant", eps=0.1,
        lam=1000., train_eps0=0.05, train_factor=1.4, train_grow_every=1,
        train_steps=2, train_sinkhorn_iterations=5, linf_eps=0.1,
        linf_steps=2, linf_step_size=0.05, search_eps0=0.01,
        search_factor=1.5, search_grow_every=1, search_steps=8,
        linf_eval_eps=(0.05, 0.1), linf_eval_steps=2, linf_eval_restarts=1),
    "mnist": _WASSERSTEIN_MNIST,
    # Wong et al.'s CIFAR-10 setting: ResNet-18, lam 3000, adaptive radius
    # 0.01 x 1.5 every 5 of 50 steps; search 0.001 x 1.17 every 10 of 400.
    # The Linf-robust comparison: their CIFAR Linf model had eps 2/255.
    "cifar10": dict(
        model="preact_resnet18", epochs=100, batch_size=128, optimizer="sgd",
        learning_rate=0.1, weight_decay=5e-4, schedule="piecewise", eps=0.1,
        lam=3000., train_eps0=0.01, train_factor=1.5, train_grow_every=5,
        train_steps=50, train_sinkhorn_iterations=50, linf_eps=2 / 255,
        linf_steps=7, linf_step_size=0.5 / 255, search_eps0=0.001,
        search_factor=1.17, search_grow_every=10, search_steps=400,
        linf_eval_eps=(1 / 255, 2 / 255, 4 / 255, 8 / 255),
        linf_eval_steps=20, linf_eval_restarts=2),
}

# The settings `wasserstein_methods` reads (fields of WASSERSTEIN's presets).
WASSERSTEIN_TRAINING = ("lam", "kernel_size", "train_eps0", "train_factor",
                        "train_grow_every", "train_steps",
                        "train_sinkhorn_iterations", "linf_eps", "linf_steps",
                        "linf_step_size")
WASSERSTEIN_METHODS = {"standard": "standard", "linf": "madry",
                       "wasserstein": "wasserstein_adaptive"}


def wasserstein_methods(s: Mapping[str, Any],
                        binarize_threshold: Optional[float] = None
                        ) -> Dict[str, Tuple[methods.Method, Dict[str, Any]]]:
  """Wong et al.'s three models as `(Method, checkpoint settings)`, from the
  `WASSERSTEIN_TRAINING` settings `s` (`kernel_size` defaults to 5): the
  standard model; Madry PGD at `linf_eps`; the adaptive Wasserstein radius
  from `train_eps0`, grown by `train_factor` every `train_grow_every` of
  `train_steps` steps (Sinkhorn capped at `train_sinkhorn_iterations`).
  With `binarize_threshold`, a fourth: their table's binarised-input model
  (`methods.binarized`)."""
  s = {"kernel_size": 5, **s}
  linf = {k: s[k] for k in ("linf_eps", "linf_steps", "linf_step_size")}
  adaptive = {k: s[k] for k in ("lam", "kernel_size", "train_eps0",
                                "train_factor", "train_grow_every",
                                "train_steps", "train_sinkhorn_iterations")}
  search = functools.partial(
      wasserstein_search, factor=s["train_factor"],
      grow_every=s["train_grow_every"], max_steps=s["train_steps"],
      lam=s["lam"], kernel_size=s["kernel_size"],
      sinkhorn_iterations=s["train_sinkhorn_iterations"])

  def adaptive_attack(model_fn, x, y, *, eps, key):
    return search(model_fn, x, y, key=key, eps0=eps)

  out = {
      "standard": (methods.standard(), {}),
      "linf": (methods.madry(s["linf_eps"], steps=s["linf_steps"],
                             step_size=s["linf_step_size"]), linf),
      "wasserstein": (methods.wasserstein_adaptive(
          s["train_eps0"], attack=adaptive_attack), adaptive),
  }
  if binarize_threshold is not None:
    out["binarized"] = (methods.binarized(binarize_threshold),
                        {"binarize_threshold": binarize_threshold})
  return out


ENGSTROM_METHODS = {"augment": "spatial_augment",
                    "augment40": "spatial_augment", "spatial": "spatial",
                    "crop": "random_crop"}


def engstrom_methods(train_range: Tuple[float, float] = (30., 3.),
                     wide_range: Tuple[float, float] = (40., 4.), *,
                     k: int = 10, crop_pad: int = 4
                     ) -> Dict[str, Tuple[methods.Method, Dict[str, Any]]]:
  """Engstrom et al. 2019's spatially trained models as `(Method,
  checkpoint settings)`; ranges are `(max_angle degrees, max_shift
  pixels)`: 'augment' (Aug. 30: one uniformly drawn rotation and
  translation in `train_range` per example), 'augment40' (Aug. 40: the
  same in `wide_range`), 'spatial' (worst-of-`k` in `train_range`) and
  'crop' (random crops of `crop_pad` pixels: CIFAR-10's and ImageNet's
  'Standard' rows)."""
  train = dict(zip(("max_angle", "max_shift"), train_range))
  wide = dict(zip(("max_angle", "max_shift"), wide_range))
  kept = lambda r, **more: {f"train_{n}": v for n, v in {**r, **more}.items()}
  return {
      "augment": (methods.spatial_augment(**train), kept(train, k=k)),
      "augment40": (methods.spatial_augment(**wide), kept(wide)),
      "spatial": (methods.spatial(k=k, **train), kept(train, k=k)),
      "crop": (methods.random_crop(pad=crop_pad), {"crop_pad": crop_pad}),
  }


def _engstrom(dataset: str, shift_scale: float, pgd_steps: int,
              grid=(0.5, 1.)) -> Dict[str, Any]:
  w = WASSERSTEIN[dataset]
  return {**{k: w[k] for k in ("model", "epochs", "batch_size", "optimizer",
                               "learning_rate", "weight_decay", "schedule")},
          "shift_scale": shift_scale, "pgd_steps": pgd_steps,
          "grid_angle_step": grid[0], "grid_shift_step": grid[1]}


# The spatial study's presets: Wasserstein's training (its models are
# trained alongside), Engstrom et al.'s first-order attack (200 steps) and
# grid (0.5 degree, 1 nominal px steps). Shifts are nominal pixels of 28-px
# MNIST; on the 8x8 digits each is 8/28 px (3 px -> 0.857 px).
ENGSTROM = {"digits": _engstrom("digits", 8 / 28, 200),
            "synthetic": _engstrom("synthetic", 8 / 28, 5, (10., 3.)),
            "mnist": _engstrom("mnist", 1., 200),
            "cifar10": _engstrom("cifar10", 1., 200)}


# Metzen 2018 (universality across adversarial training): section 3 and
# Appendix D on CIFAR-10 (BI eps 4/255, 10 steps of 1/255; 200 epochs of
# SGD, then 250 of adversarial training; universal 10/255, 2.5/255, m 128,
# K 10, 200 iterations) and Kurakin et al.'s transforms (of 255).
METZEN_EPOCHS, METZEN_EPS = 250, 4 / 255
_SWEEP_255 = (1., 2., 3., 4., 5., 6., 7., 8., 10., 12., 15., 20.)
_KURAKIN = dict(brightness=(-30 / 255, -15 / 255, 15 / 255, 30 / 255),
                contrast=(0.7, 0.85, 1.15, 1.3), blur=(0.5, 1.0),
                noise=(5 / 255, 10 / 255, 20 / 255), jpeg=(75., 50., 20.),
                noise_sweep=tuple(v / 255 for v in _SWEEP_255))
_METZEN_CIFAR = dict(
    model="preact_resnet18", epochs=200, batch_size=128, optimizer="sgd",
    learning_rate=0.1, weight_decay=5e-4, schedule="piecewise",
    adv_epochs=METZEN_EPOCHS, adv_learning_rate=1e-4, eps=METZEN_EPS,
    bi_steps=10, bi_step_size=1 / 255, uni_eps=10 / 255,
    uni_step_size=2.5 / 255, uni_iterations=200, uni_batch_size=128,
    uni_batches_per_update=10, analysis_examples=1000, profile_examples=256,
    cost_change_examples=10000, detector_epochs=20,
    detector_features=(96, 192, 192), detector_every=10, holdout=0,
    noise_magnitudes=(2 / 255, 4 / 255, 8 / 255, 16 / 255), **_KURAKIN)
_METZEN_SMALL = dict(model="wong_mnist", optimizer="adam", weight_decay=0.,
                     eps=0.1, bi_steps=10, bi_step_size=0.025, uni_eps=0.2,
                     uni_step_size=0.05, uni_iterations=200,
                     uni_batch_size=128, uni_batches_per_update=10,
                     holdout=0, noise_magnitudes=(0.05, 0.1, 0.2, 0.3))
METZEN = {
    # 8x8 digits: radii scaled up (eps 0.1 fools about half the standard
    # model's digits); 20 epochs stand for Metzen's 250; Kurakin's
    # transforms and the noise sweep times eps / (4/255) = 6.4.
    "digits": {**_METZEN_SMALL, **dict(
        epochs=30, batch_size=64, learning_rate=5e-3, schedule="cosine",
        adv_epochs=20, adv_learning_rate=1e-3, analysis_examples=0,
        profile_examples=256, cost_change_examples=0, detector_epochs=6,
        detector_features=(32, 64, 64), detector_every=4,
        brightness=(-0.2, -0.1, 0.1, 0.2), contrast=(0.7, 0.85, 1.15, 1.3),
        blur=(0.5, 1.0), noise=(0.05, 0.1, 0.2), jpeg=(75., 50., 20.),
        noise_sweep=(0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.175, 0.2, 0.25,
                     0.3))},
    "synthetic": {**_METZEN_SMALL, **dict(  # seconds: a smoke test
        epochs=1, batch_size=32, learning_rate=2e-3, schedule="constant",
        adv_epochs=2, adv_learning_rate=1e-3, bi_steps=2, bi_step_size=0.05,
        uni_iterations=3, uni_batch_size=16, uni_batches_per_update=1,
        analysis_examples=48, profile_examples=16, cost_change_examples=64,
        detector_epochs=1, detector_features=(4, 8, 8), detector_every=1,
        noise_magnitudes=(0.1,), brightness=(0.1,), contrast=(0.8,),
        blur=(1.0,), noise=(0.1,), jpeg=(50.,), noise_sweep=(0.05, 0.3),
        deepfool_steps=3)},
    "mnist": {**_METZEN_SMALL, **_KURAKIN, **dict(
        model="madry_mnist", epochs=20, learning_rate=1e-3,
        schedule="cosine", batch_size=128, adv_epochs=20,
        adv_learning_rate=1e-4, analysis_examples=1000,
        profile_examples=256, cost_change_examples=10000, detector_epochs=10,
        detector_features=(96, 192, 192), detector_every=2,
        noise_sweep=tuple(v * 0.1 / METZEN_EPS / 255 for v in _SWEEP_255))},
    "cifar10": _METZEN_CIFAR,
    # Appendix H: eps 8/255, universal 20/255, 25 + 175 epochs, 4209
    # training images held out (Appendix I: --model gtsrb_cnn).
    "gtsrb": {**_METZEN_CIFAR, **dict(epochs=25, adv_epochs=175,
                                      eps=8 / 255, uni_eps=20 / 255,
                                      holdout=4209)},
}
