"""Universality, robustness and detectability of adversarial perturbations across the epochs of adversarial training.

    python -m benchmarks.universality --dataset digits   # ~7 min, 2 CPU cores

Reproduces Metzen (2018) and D'Costa & Sriramanan's checks: a standard
model, then adversarial training (BI loss only, predicted labels) with
every epoch kept, studied per epoch and across epochs by
`advjax.analysis.EpochStudy` (accuracies clean / BI / FGSM / DeepFool /
universal, sharedness, destruction rates, noise crossover, detectors and
Figure 7's detector perturbation; temporal stability profiles, MaxMin and
MinMax, Figure 2's cost-change correlation, Figure 3's universal transfer,
detectors across epochs). Measured on digits
(benchmarks/results/universality-digits): over 20 epochs the mean
sharedness falls 3.7 % -> 1.4 %, BI accuracy rises 52.8 % -> 76.1 %;
MaxMin 0.775, MinMax 0.767; Figure 2's r = +0.107 (published -0.293); BI /
FGSM / DeepFool detectors 97.1 / 95.6 / 73.4 %; six of twelve claims hold,
two partly, four fail. Presets: digits, synthetic, mnist,
cifar10 (Metzen's setting), gtsrb (Appendix H; --model gtsrb_cnn for
Appendix I). Writes results.json, results.md and figures to --workdir
(default runs/universality-<dataset>); each epoch's analysis is cached
beside its checkpoint.
"""
import dataclasses
import functools
import os
from typing import Optional, Tuple

import jax
import numpy as np

from advjax import analysis, data, evaluation, report, run, training
from advjax import transforms
from advjax.training import recipes
from advjax.attacks import deepfool, gradient
from benchmarks.proj import universality as metzen

F = run.field
I, R, T = Optional[int], Optional[float], Optional[Tuple[float, ...]]


@dataclasses.dataclass(frozen=True)
class UniversalityConfig(run.Config):
  """Settings (the standard model's training from `run.Config`); None
  fields take the dataset's preset (Metzen's values in brackets)."""
  adv_epochs: I = F(None, "adversarial epochs, each kept (250)", ge=1)
  adv_learning_rate: R = F(None, "their Adam rate (1e-4)", gt=0)
  sigma: float = F(0., "clean-loss weight (0)", ge=0, le=1)
  eps: R = F(None, "BI radius (4/255)", gt=0)
  bi_steps: I = F(None, "BI iterations (10)", ge=1)
  bi_step_size: R = F(None, "BI step (1/255)", gt=0)
  uni_eps: R = F(None, "universal radius (10/255)", gt=0)
  uni_step_size: R = F(None, "universal step (2.5/255)", gt=0)
  uni_iterations: I = F(None, "universal updates (200)", ge=1)
  uni_batch_size: I = F(None, "universal m (128)", ge=1)
  uni_batches_per_update: I = F(None, "universal K (10)", ge=1)
  analysis_examples: I = F(None, "inputs analysed (0: all)", ge=0)
  profile_examples: I = F(None, "inputs of the profiles (256)", ge=1)
  cost_change_examples: I = F(None, "Figure 2's training inputs", ge=0)
  transfer_epochs: Optional[Tuple[int, ...]] = F(None, "Figure 3's epochs",
                                                 ge=0)
  brightness: T = F(None, "brightness deltas")
  contrast: T = F(None, "contrast factors", gt=0)
  blur: T = F(None, "blur sigmas (px)", gt=0)
  noise: T = F(None, "noise stds", gt=0)
  jpeg: T = F(None, "JPEG qualities", gt=0)
  noise_sweep: T = F(None, "noise stds of the crossover", gt=0)
  deepfool_steps: int = F(50, "DeepFool iterations", ge=1)
  detector_epochs: I = F(None, "detector training epochs (20)", ge=1)
  detector_features: Optional[Tuple[int, int, int]] = F(None, "detector "
                                                        "widths", ge=1)
  detector_every: I = F(None, "a detector every n epochs", ge=1)
  noise_magnitudes: T = F(None, "uniform noise of the stability check")
  holdout: I = F(None, "training images held out as the test set", ge=0)
  figure_epochs: int = F(6, "epochs in the perturbation figures", ge=1)


PRESETS = recipes.METZEN


def refine(cfg, preset):
  adv = cfg.adv_epochs or preset["adv_epochs"]
  if any(t > adv for t in cfg.transfer_epochs or ()):
    raise run.ConfigError(f"transfer_epochs {cfg.transfer_epochs} must lie "
                          f"in [0, adv_epochs = {adv}].")
  return preset


def transfer_epochs(cfg) -> Tuple[int, ...]:
  """Figure 3's epochs (0, 5, 51 of 250, scaled) or the config's."""
  return tuple(dict.fromkeys(cfg.transfer_epochs or (
      metzen.paper_epoch(t, cfg.adv_epochs) for t in (0, 5, 51))))


def detector_epochs(cfg) -> Tuple[int, ...]:
  """0, 1, every `detector_every` and the last."""
  return tuple(sorted({0, min(1, cfg.adv_epochs), cfg.adv_epochs,
                       *range(0, cfg.adv_epochs + 1, cfg.detector_every)}))


def shown_epochs(cfg):
  n = cfg.adv_epochs + 1
  return sorted({int(t) for t in np.linspace(0, n - 1, min(
      cfg.figure_epochs, n)).astype(int)})


def few_epochs(cfg):
  """0, Metzen's 5, 15, 51 (scaled) and the last."""
  return sorted({metzen.paper_epoch(t, cfg.adv_epochs) for t in (0, 5, 15, 51,
                                                          251)})


def load_splits(cfg):
  """With `holdout`: that many training images (a sample seeded by
  `cfg.seed`) as the test set (Metzen's GTSRB split); else None."""
  if not cfg.holdout:
    return None
  lim = lambda d, n: d._replace(images=d.images[:n or None],
                               labels=d.labels[:n or None])
  train, test = data.hold_out(data.load(
      cfg.dataset, "train", data_dir=cfg.data_dir, lazy=False),
                              cfg.holdout, seed=cfg.seed)
  return lim(train, cfg.train_limit), lim(test, cfg.eval_limit)


def models(cfg, env):
  """The standard model, then its adversarial training (Adam, every epoch
  kept; epoch 0 is the standard model)."""
  bi = functools.partial(gradient.bim, steps=cfg.bi_steps,
                         step_size=cfg.bi_step_size)
  return {"standard": run.TrainSpec(training.methods.standard(),
                                    dict(holdout=cfg.holdout)),
          "adversarial": lambda trained: run.TrainSpec(
              training.methods.fgsm_mix(cfg.eps, attack=bi, sigma=cfg.sigma,
                                        predicted_labels=True),
              dict(eps=cfg.eps, bi_steps=cfg.bi_steps, init="standard",
                   bi_step_size=cfg.bi_step_size, sigma=cfg.sigma,
                   holdout=cfg.holdout),
              dict(init_variables=trained["standard"],
                   epoch_checkpoints=True),
              dict(epochs=cfg.adv_epochs, learning_rate=cfg.adv_learning_rate,
                   optimizer="adam", weight_decay=0., schedule="constant"))}


def study(cfg) -> analysis.EpochStudy:
  return analysis.EpochStudy(
      cfg.eps, (("bi", functools.partial(gradient.bim, steps=cfg.bi_steps,
                                         step_size=cfg.bi_step_size)),
                ("fgsm", gradient.fgsm),
                ("deepfool", analysis.Unbounded(functools.partial(
                    deepfool, steps=cfg.deepfool_steps)))),
      dict(eps=cfg.uni_eps, step_size=cfg.uni_step_size,
           iterations=cfg.uni_iterations, batch_size=cfg.uni_batch_size,
           batches_per_update=cfg.uni_batches_per_update),
      transforms.transform_grid(**{k: getattr(cfg, k) for k in (
          "brightness", "contrast", "blur", "noise", "jpeg")}),
      cfg.noise_sweep, cfg.noise_magnitudes, cfg.analysis_examples,
      cfg.profile_examples, cfg.cost_change_examples, cfg.detector_epochs,
      tuple(cfg.detector_features), seed=cfg.seed,
      key=jax.random.key(cfg.seed + 11), batch_size=cfg.eval_batch_size)


def evaluate(cfg, env, name, variables):
  """The standard model: clean accuracy; the adversarial one: the study
  over every kept epoch (each epoch's analysis cached)."""
  n = cfg.analysis_examples or env.test.size
  test = (np.asarray(env.test.images[:n]), np.asarray(env.test.labels[:n]))
  if name == "standard":
    return {"clean_accuracy": evaluation.accuracy(
        env.apply_fn, variables, *test, batch_size=cfg.eval_batch_size)}
  out = study(cfg).run(
      env.apply_fn, lambda t: run.epoch_variables(cfg, name, t),
      range(cfg.adv_epochs + 1), test, (env.train.images, env.train.labels),
      detector_epochs=detector_epochs(cfg), sources=transfer_epochs(cfg),
      cache=lambda t, v, f: run.cached(cfg, os.path.join(
          cfg.workdir, name, f"analysis_epoch_{t}.pkl"), v, f),
      progress=cfg.progress)
  xi = out.pop("universal")
  shown = shown_epochs(cfg)
  return {**out, "figure_image": test[0][0], "perturbations": {
      "epochs": shown, **{k: np.stack([xi[t][k] for t in shown])
                          for k in ("xi", "xi_test")}},
          "detector_perturbations": {"epochs": list(detector_epochs(cfg)),
                                     "xi": np.stack([
                                         xi[t]["xi_detector"]
                                         for t in detector_epochs(cfg)])}}



def body(cfg, r):
  ours = [metzen.paper_epoch(t, cfg.adv_epochs) for t in (1, 5, 15, 51, 251)]
  return [
      f"Epoch 0: the standard model ({cfg.epochs} epochs); then "
      f"{cfg.adv_epochs} epochs of adversarial training (BI eps "
      f"{cfg.eps:.4g}, {cfg.bi_steps} x {cfg.bi_step_size:.4g}, sigma "
      f"{cfg.sigma:g}); universal eps {cfg.uni_eps:.4g}. Metzen's epochs 1,"
      f" 5, 15, 51, 251 (of 250) are here {ours}. "
      f"Late = {metzen.span(r)}. DeepFool is unbounded." + (
          " Digits caveat: the images take 17 grey levels; a perturbation "
          "leaves that grid, a cue any detector learns (an upper bound of "
          "the paper's detectability, and why one universal perturbation "
          "activates it on every input)." if cfg.dataset == "digits" else ""),
      *analysis.epoch_tables(metzen.S(r), few=few_epochs(cfg),
                             noise_sweep=cfg.noise_sweep)]


def figures(cfg, r):
  dp, p = metzen.S(r)["detector_perturbations"], metzen.S(r)["perturbations"]
  return {**analysis.epoch_figures(
      metzen.S(r), few=few_epochs(cfg), noise_sweep=cfg.noise_sweep,
      noise_mark=(metzen.CROSSOVER[0] * cfg.eps / metzen.PAPER_EPS,
                  "Metzen's 5/255, scaled"),
      detectors=(0, min(1, cfg.adv_epochs), cfg.adv_epochs)),
          "universal_perturbations.png": report.image_grid(
              [report.perturbation(d, f"epoch {e} ({k})")
               for k in ("xi", "xi_test") for e, d in zip(p["epochs"], p[k])]
              + [np.clip(np.asarray(metzen.S(r)["figure_image"]) + d, 0, 1)
                 for d in p["xi"]], ncols=len(p["epochs"]),
              title="Universal perturbations fitted on training / test "
              "data, and a test image with the first (Figures 4, 13)"),
          "detector_perturbations.png": report.image_grid(
              [report.perturbation(d, f"epoch {e}") for e, d in zip(
                  dp["epochs"], dp["xi"])], title="Perturbations "
              "maximising the BI detector (Figure 7)")}


REPORT = report.Report(
    "{dataset}: universality, robustness and detectability across "
    "adversarial training (Metzen 2018), {model}", body, metzen.PUBLISHED,
    metzen.CLAIMS, figures, stand_ins={"digits": ("cifar10",)})
BENCHMARK = run.Benchmark("universality", UniversalityConfig, PRESETS,
                          models, evaluate, REPORT, doc=__doc__,
                          refine=refine, data=load_splits)

if __name__ == "__main__":
  run.main(BENCHMARK)
