"""What belongs to Metzen's study alone (big_vision's `configs/proj/`): the
readers of `benchmarks/universality.py`'s results behind its claims and its
published rows (Metzen 2018 on CIFAR-10 and GTSRB, beside this run's).
"""
import functools

import numpy as np

from advjax import analysis, report
from advjax.training import recipes

PAPER_EPOCHS, PAPER_EPS = recipes.METZEN_EPOCHS, recipes.METZEN_EPS
CROSSOVER = (5 / 255, 7 / 255)  # Metzen's noise thresholds at 4/255
ADVERSARIES = ("bi", "fgsm", "deepfool")


def paper_epoch(t: int, adv_epochs: int) -> int:
  """Metzen's epoch t (of 250) scaled to `adv_epochs` (0 stays 0)."""
  return 0 if t == 0 else int(min(max(round(t * adv_epochs / PAPER_EPOCHS),
                                      1), adv_epochs))


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
