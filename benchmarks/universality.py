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
PAPER_EPOCHS, PAPER_EPS = recipes.METZEN_EPOCHS, recipes.METZEN_EPS
CROSSOVER = (5 / 255, 7 / 255)  # Metzen's noise thresholds at 4/255
ADVERSARIES = ("bi", "fgsm", "deepfool")


def refine(cfg, preset):
  adv = cfg.adv_epochs or preset["adv_epochs"]
  if any(t > adv for t in cfg.transfer_epochs or ()):
    raise run.ConfigError(f"transfer_epochs {cfg.transfer_epochs} must lie "
                          f"in [0, adv_epochs = {adv}].")
  return preset


def paper_epoch(t: int, adv_epochs: int) -> int:
  """Metzen's epoch t (of 250) scaled to `adv_epochs` (0 stays 0)."""
  return 0 if t == 0 else int(min(max(round(t * adv_epochs / PAPER_EPOCHS),
                                      1), adv_epochs))


def transfer_epochs(cfg) -> Tuple[int, ...]:
  """Figure 3's epochs (0, 5, 51 of 250, scaled) or the config's."""
  return tuple(dict.fromkeys(cfg.transfer_epochs or (
      paper_epoch(t, cfg.adv_epochs) for t in (0, 5, 51))))


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
  return sorted({paper_epoch(t, cfg.adv_epochs) for t in (0, 5, 15, 51,
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



# The report: numbers read from the study (results.models.adversarial).
S = lambda r: r["models"]["adversarial"]
V = lambda r: analysis.summarize(S(r))
pct = functools.partial(report.cell, unit="%")
late = lambda k: lambda c, r: V(r)["late"][k]
first = lambda k: lambda c, r: V(r)["first"][k]
last = lambda k: lambda c, r: S(r)["epochs"][-1][k]
span = lambda r: "epochs {}-{}".format(*V(r)["late_epochs"])
at = lambda t, k="mean": lambda c, r: S(r)["epochs"][paper_epoch(
    t, c.adv_epochs)]["sharedness"][k]


def crossover(cfg, r):
  """Epoch 0 minus late BI destruction rate below and above Metzen's noise
  thresholds (scaled by eps / (4/255))."""
  s, (d0, dl) = np.asarray(cfg.noise_sweep), V(r)["noise_sweep"]
  diff = np.asarray(d0, float) - np.asarray(dl, float)
  lo, hi = (c * cfg.eps / PAPER_EPS for c in CROSSOVER)
  m = lambda k: float(np.nanmean(diff[k])) if k.any() else float("nan")
  return m(s < lo), m(s > hi), lo, hi


def score(evidence, full, part=False):
  """1 when every criterion of a claim is met, 0.5 the partial ones."""
  return report.Measured(1. if full else 0.5 if part else 0., evidence)


def _universal(cfg, r):
  v, ut = V(r), S(r)["universal_transfer"]
  loss = lambda w, k: v[w]["clean_accuracy"] - v[w][k]
  div = lambda a, b: a / b if b > 0 else float("nan")
  u0 = loss("first", "universal_accuracy")
  ru = div(loss("late", "universal_accuracy"), u0)
  rb = div(loss("late", "attack_accuracy"), loss("first", "attack_accuracy"))
  lo, hi = v["late_epochs"]
  other = v["late"]["clean_accuracy"] - np.asarray(ut["accuracy"])[
      :, lo:hi + 1].mean(1).min()
  return score(f"universal loss x{ru:.2f}, BI loss x{rb:.2f}; epochs "
               f"{ut['sources']}' perturbations cost {pct(other)} (epoch 0 "
               f"own {pct(u0)})", ru < 0.7 and ru < rb - 0.1 and other <= u0,
               ru < 0.7)


def _crossing(cfg, r):
  weak, strong, lo, hi = crossover(cfg, r)
  return report.Measured(int(weak < 0) + int(strong > 0), f"epoch 0 - "
                         f"{span(r)}: {100 * weak:+.1f} points below "
                         f"{lo:.3g}, {100 * strong:+.1f} above {hi:.3g}")


def _detectable(cfg, r):
  own, fixed = min(V(r)["detector_own"]["bi"]), [
      t for t in (1, cfg.adv_epochs) if t in V(r)["detector_from"]["bi"]]
  other = min(V(r)["detector_from"]["bi"][t] for t in fixed)
  return score(f"own epoch min {pct(own)}; detectors of {fixed} on the "
               f"others min {pct(other)}", own > 0.9 and other > 0.9,
               own > 0.8 and other > 0.7)


def _attacks(cfg, r):
  own = {a: float(np.mean(V(r)["detector_own"][a])) for a in ADVERSARIES}
  return score(", ".join(f"{a} {pct(v)}" for a, v in own.items()),
               own["fgsm"] >= own["bi"] >= own["deepfool"]
               and min(own.values()) > 0.8, min(own.values()) > 0.8)


def _pattern(cfg, r):
  du = V(r)["detector_universal"]
  worst = max(v for t, v in du.items() if t >= 1)
  return report.Measured(worst, f"epoch 0 {pct(du[0])}, epochs >= 1 at most "
                         f"{pct(worst)}")


def _overfit(cfg, r):
  tb, te = (V(r)["late"][k] for k in ("train_attack_accuracy",
                                      "attack_accuracy"))
  return score(f"{span(r)}: training {pct(tb)}, test {pct(te)}",
               tb > 0.9 and tb - te > 0.1, tb - te > 0.1)


def _singular(cfg, r):
  st = S(r)["temporal_stability"]["fractions"]["stable"]
  gap = V(r)["late"]["clean_accuracy"] - V(r)["late"]["attack_accuracy"]
  return score(f"stable {pct(st)}; {span(r)}: BI {pct(gap)} below clean",
               st > 0.05 and gap > 0.1)


def _destruction(cfg, r):
  d = V(r)["destruction"]
  return report.Measured(sum(b - a >= 0.02 for a, b in d.values()), ", ".join(
      f"{k} {pct(a)} -> {pct(b)}" for k, (a, b) in d.items()))


def _stable(cfg, r):
  fr = S(r)["temporal_stability"]["fractions"]
  return report.Measured(fr["stable"] - fr["oscillating"], ", ".join(
      f"{k} {pct(v)}" for k, v in fr.items()))


def _correlation(cfg, r):
  cc = S(r)["cost_change_transfer"]
  return score(f"r = {cc['pearson_r']:+.3f}, p = {cc['p_value']:.2g} "
               f"({cc['pairs']} pairs, {cc['dropped']} dropped)",
               cc["pearson_r"] < 0 and cc["p_value"] < 0.01,
               cc["pearson_r"] < 0)


SCORE = lambda q: dict(holds=report.at_least(1), partly=report.at_least(
    0.5), quantity=f"criteria met (1: {q})")
COUNT = lambda n, q: dict(holds=report.at_least(n),
                          partly=report.at_least(1), quantity=q)
CLAIMS = [
    report.Claim("Adversarial training makes the remaining perturbations "
                 "less shared: each fools fewer other inputs (Appendix C)",
                 report.ratio(late("sharedness"), first("sharedness")),
                 report.below(0.8), quantity="late / epoch-0 sharedness"),
    report.Claim("A perturbation's sharedness and stability are anti-"
                 "correlated, log-log (Figure 2: r = -0.293, p < 1e-18)",
                 _correlation, **SCORE("r < 0, p < 0.01; 0.5: r < 0")),
    report.Claim("Adversarial training is particularly effective against "
                 "universal perturbations, its own epoch's and others' "
                 "(Figure 3)", _universal, **SCORE(
                     "universal loss < 0.7x, by 0.1 below BI's, others' no "
                     "worse than epoch 0's; 0.5: < 0.7x")),
    report.Claim("Universal perturbations fitted on test data are no more "
                 "effective than those fitted on training data (Appendix E)",
                 report.difference(late("universal_accuracy"), late(
                     "universal_test_accuracy"), "%"),
                 report.at_most(0.05), quantity="accuracy gap"),
    report.Claim("Adversarial training does not remove singular "
                 "perturbations on unseen inputs", _singular, **SCORE(
                     "stable > 5 %, BI gap > 10 points")),
    report.Claim("Stable perturbations (small MaxMin) are the dominant "
                 "failure case, oscillations fewer (Appendix B)", _stable,
                 report.above(0), quantity="stable - oscillating"),
    report.Claim("Adversarial training overfits to the training data's "
                 "perturbations: BI accuracy on training inputs near 100 %, "
                 "far above test (Appendix A)", _overfit, **SCORE(
                     "training > 90 %, 10 points above test; 0.5: the "
                     "gap")),
    report.Claim("The remaining perturbations are less robust to "
                 "brightness, contrast and blur (section 3.3, Appendix F)",
                 _destruction, **COUNT(3, "adversaries whose rate rises by "
                                       ">= 2 points")),
    report.Claim("Gaussian noise destroys the standard model's perturbations"
                 " less for sigma < 5/255, more for sigma > 7/255 (3.3)",
                 _crossing, **COUNT(2, "sides of the crossover that hold")),
    report.Claim("Singular perturbations remain detectable (> 90 %), and "
                 "detectors transfer across epochs (section 3.4)",
                 _detectable, **SCORE("own > 90 %, across > 90 %; 0.5: "
                                      "> 80 %, > 70 %")),
    report.Claim("FGSM perturbations are easier and DeepFool ones harder to "
                 "detect than BI's, all detectable (Appendix G)", _attacks,
                 **SCORE("that order, all > 80 %; 0.5: all > 80 %")),
    report.Claim("The detector picks up no global pattern: the perturbation "
                 "maximising it scores <= 12 % after epoch 0 (Figure 7)",
                 _pattern, report.at_most(0.12), report.below(0.5),
                 "max p(adversarial)"),
]

def _per_kind(cfg, r):
  lo = V(r)["late_epochs"][0]
  rate = lambda x, k: analysis.mean_destruction(x, "bi", (k,))
  return ", ".join(f"{k} {pct(rate(S(r)['epochs'][0], k))} -> " + pct(
      np.nanmean([rate(x, k) for x in S(r)["epochs"][lo:]]))
                   for k in ("brightness", "contrast", "blur", "noise"))


C10, GT = "Metzen 2018, CIFAR-10", "Metzen 2018, GTSRB"
e3 = lambda c: max(paper_epoch(3, c.adv_epochs), 1)
PUBLISHED = [report.Published(C10, s, v, q, ours=f, dataset="cifar10")
             for s, v, q, f in (
    ("standard model", 94.1, "clean accuracy", first("clean_accuracy")),
    ("standard model", 0.5, "BI accuracy", first("attack_accuracy")),
    ("after training", "~90 %", "clean accuracy", last("clean_accuracy")),
    ("after training", "~62 %", "BI accuracy", last("attack_accuracy")),
    ("after training", "~68 %", "FGSM accuracy", lambda c, r: S(r)[
        "epochs"][-1]["adversarial_accuracy"]["fgsm"]),
    ("after training", 97.7, "BI accuracy, training inputs",
     last("train_attack_accuracy")),
    ("250 epochs", "~25", "epoch test BI accuracy stops improving",
     lambda c, r: str(V(r)["plateau_epoch"])),
    ("1000 inputs", "-0.293, p < 1e-18", "Figure 2's log-log Pearson r",
     lambda c, r: "{pearson_r:+.3f}, p = {p_value:.2g}".format(**S(r)[
         "cost_change_transfer"])),
    ("epoch 0", 12., "universal accuracy", first("universal_accuracy")),
    ("epochs >= 3", ">= 80 %", "universal accuracy, min", lambda c, r: min(
        x["universal_accuracy"] for x in S(r)["epochs"][e3(c):])),
    ("epochs >= 3", ">= 80 %", "universal accuracy under epochs 0, 5, 51's "
     "perturbations, min", lambda c, r: np.min(np.asarray(S(r)[
         "universal_transfer"]["accuracy"])[:, e3(c):])),
    ("late epochs", "nearly identical", "universal accuracy, test- vs "
     "training-fitted", lambda c, r: report.difference(late(
         "universal_test_accuracy"), late("universal_accuracy"), "%")(
             c, r).evidence),
    ("epoch 0", 6.3, "mean sharedness", at(0)),
    ("epoch 0", 3.3, "min sharedness", at(0, "min")),
    ("epoch 1", 1.1, "mean sharedness", at(1)),
    ("epoch 15", 0.8, "mean sharedness", at(15)),
    ("epoch 251", 0.5, "mean sharedness", at(251)),
    ("epoch 251", "< 1 %", "max sharedness", at(251, "max")),
    ("epochs 5, 15 on later models", ">= 20 %", "BI error rate, min",
     lambda c, r: min(np.min(np.asarray(S(r)["temporal_stability"][
         "transfer_error"])[s, s:]) for s in (paper_epoch(5, c.adv_epochs),
                                              paper_epoch(15, c.adv_epochs)))),
    ("other epochs' BI examples", "no more successful than white-box",
     "error rate: most successful source vs own (epochs >= 1)",
     lambda c, r: " vs ".join(pct(float(np.mean(m[1:]))) for m in (
         np.asarray(S(r)["temporal_stability"]["transfer_error"]).max(0),
         np.diag(S(r)["temporal_stability"]["transfer_error"])))),
    ("256 inputs", "stable > oscillating", "stable / oscillating / robust",
     lambda c, r: " / ".join(pct(v) for v in S(r)["temporal_stability"][
         "fractions"].values())),
    ("BI, FGSM, DeepFool", "rises", "destruction rate (brightness, "
     "contrast, blur), epoch 0 -> late", lambda c, r: _destruction(
         c, r).evidence),
    ("noise sigma 5/255, 7/255", "crossover", "destruction rate epoch 0 - "
     "late, below / above", lambda c, r: _crossing(c, r).evidence),
    ("every epoch", "> 90 %", "BI detector accuracy, min", lambda c, r: min(
        V(r)["detector_own"]["bi"])),
    ("epochs 1, 251 on the others", "> 90 %", "BI detector accuracy, min",
     lambda c, r: min(V(r)["detector_from"]["bi"][t]
                      for t in (1, c.adv_epochs))),
    ("epoch 0 on the others", "not reliable", "BI detector accuracy, min",
     lambda c, r: V(r)["detector_from"]["bi"][0]),
    ("FGSM / BI / DeepFool", "FGSM easier, DeepFool harder", "detector "
     "accuracy", lambda c, r: _attacks(c, r).evidence),
    ("epochs >= 1", "<= 12 %", "p(adversarial) of the detector's "
     "perturbation, max", lambda c, r: _pattern(c, r).value))] + [
    report.Published(GT, f"{arch} (App. {app}), eps 8/255", v, q,
                     dataset="gtsrb", ours=lambda c, r, f=f, a=arch: f(
                         c, r) if (c.dataset, c.model) == ("gtsrb", a)
                     else None)
    for arch, app, values in (("preact_resnet18", "H", (
        "95.2 % / 100 %", "~40 % -> > 98 %", "up under brightness, lower "
        "contrast, noise; blur up (weak), slightly down (strong)",
        "close to 100 %; epochs 26, 195 transfer nearly perfectly")), (
            "gtsrb_cnn", "I", ("90 % / 97 %", "~60 % -> > 95 %", "up under "
                               "brightness, contrast, noise; blur first "
                               "down, later back", "close to 100 %; epochs"
                               " 25, 195 transfer nearly perfectly")))
    for (q, f), v in zip((
        ("BI accuracy after training, test / training", lambda c, r:
         f"{pct(last('attack_accuracy')(c, r))} / "
         f"{pct(last('train_attack_accuracy')(c, r))}"),
        ("universal accuracy, before -> after", lambda c, r:
         f"{pct(first('universal_accuracy')(c, r))} -> "
         f"{pct(last('universal_accuracy')(c, r))}"),
        ("BI destruction rate per transform, before -> late", _per_kind),
        ("BI detectability, own epoch / fixed detectors", lambda c, r:
         pct(min(V(r)["detector_own"]["bi"])) + " / " + pct(min(
             V(r)["detector_from"]["bi"][t] for t in (1, c.adv_epochs))))),
        values)]


def body(cfg, r):
  return [
      f"Epoch 0: the standard model ({cfg.epochs} epochs); then "
      f"{cfg.adv_epochs} epochs of adversarial training (BI eps "
      f"{cfg.eps:.4g}, {cfg.bi_steps} x {cfg.bi_step_size:.4g}, sigma "
      f"{cfg.sigma:g}); universal eps {cfg.uni_eps:.4g}. Metzen's epochs 1,"
      f" 5, 15, 51, 251 (of 250) are here "
      f"{[paper_epoch(t, cfg.adv_epochs) for t in (1, 5, 15, 51, 251)]}. "
      f"Late = {span(r)}. DeepFool is unbounded." + (
          " Digits caveat: the images take 17 grey levels; a perturbation "
          "leaves that grid, a cue any detector learns (an upper bound of "
          "the paper's detectability, and why one universal perturbation "
          "activates it on every input)." if cfg.dataset == "digits" else ""),
      *analysis.epoch_tables(S(r), few=few_epochs(cfg),
                             noise_sweep=cfg.noise_sweep)]


def figures(cfg, r):
  dp, p = S(r)["detector_perturbations"], S(r)["perturbations"]
  return {**analysis.epoch_figures(
      S(r), few=few_epochs(cfg), noise_sweep=cfg.noise_sweep,
      noise_mark=(CROSSOVER[0] * cfg.eps / PAPER_EPS, "Metzen's 5/255, "
                  "scaled"), detectors=(0, min(1, cfg.adv_epochs),
                                        cfg.adv_epochs)),
          "universal_perturbations.png": report.image_grid(
              [report.perturbation(d, f"epoch {e} ({k})")
               for k in ("xi", "xi_test") for e, d in zip(p["epochs"], p[k])]
              + [np.clip(np.asarray(S(r)["figure_image"]) + d, 0, 1)
                 for d in p["xi"]], ncols=len(p["epochs"]),
              title="Universal perturbations fitted on training / test "
              "data, and a test image with the first (Figures 4, 13)"),
          "detector_perturbations.png": report.image_grid(
              [report.perturbation(d, f"epoch {e}") for e, d in zip(
                  dp["epochs"], dp["xi"])], title="Perturbations "
              "maximising the BI detector (Figure 7)")}


REPORT = report.Report(
    "{dataset}: universality, robustness and detectability across "
    "adversarial training (Metzen 2018), {model}", body, PUBLISHED, CLAIMS,
    figures)
BENCHMARK = run.Benchmark("universality", UniversalityConfig, PRESETS,
                          models, evaluate, REPORT, doc=__doc__,
                          refine=refine, data=load_splits)

if __name__ == "__main__":
  run.main(BENCHMARK)
