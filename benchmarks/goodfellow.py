"""Goodfellow, Shlens & Szegedy 2015: FGSM, the linear explanation, and FGSM
adversarial training.

    python -m benchmarks.goodfellow --dataset digits   # ~3 minutes, 2 CPU cores

Logistic regression on 3 vs 7 (FGSM = `analysis.logistic_fgsm`), softmax
and maxout networks under FGSM (error; confidence on the misclassified),
maxout trained with FGSM, on noise, with L1 decay; FGSM transfer; each
early-stopped on held-out training rows. Measured on digits (eps 0.25):
maxout 2.8 % clean / 99.7 % FGSM error, FGSM-trained 4.4 % / 38.1 %,
noise-trained 96-97 %. Presets: mnist, cifar10. Writes results.json,
results.md, figure2.png and errors.png to --workdir.
"""
import dataclasses
from typing import Optional, Tuple

import numpy as np
import optax

from advjax import analysis, data, evaluation, models, report, run, training
from advjax.attacks import gradient

LABEL = {"logistic": "logistic (3 vs 7)", "softmax": "softmax",
         "maxout": "maxout", "maxout_fgsm": "maxout, FGSM training",
         "maxout_sign_noise": "maxout, sign noise", "maxout_uniform_noise":
         "maxout, uniform noise", "maxout_l1": "maxout, L1"}
MODELS = tuple(LABEL)
NOISE = {"maxout_sign_noise": ("sign", "+-eps sign noise"),
         "maxout_uniform_noise": ("uniform", "U(-eps, eps) noise")}
PAIR = ("maxout", "maxout_fgsm")
KEYS = ("clean_error", "fgsm_error", "fgsm_confidence")


@dataclasses.dataclass(frozen=True)
class GoodfellowConfig(run.Config):
  """Settings (beyond `advjax.run.Config`'s, which train every model)."""
  models: Tuple[str, ...] = run.field(MODELS, "the models", choices=MODELS)
  eps: Optional[float] = run.field(None, "FGSM's Linf radius (attack and "
                                   "training)", ge=0)
  classes: Tuple[int, ...] = run.field((3, 7), "the logistic regression's "
                                       "two classes", ge=0)
  alpha: float = run.field(0.5, "the clean loss's weight in FGSM and noise "
                           "training", ge=0, le=1)
  l1: float = run.field(0.0025, "the L1 weight decay", ge=0)
  hidden: Tuple[int, ...] = run.field((240, 240), "maxout units", ge=1)
  pieces: int = run.field(5, "maxout pieces per unit", ge=1)
  dropout: Optional[float] = run.field(None, "maxout dropout in training",
                                       ge=0, lt=1)
  validation: Optional[int] = run.field(None, "training rows held out for "
                                        "early stopping", ge=1)


_COMMON = dict(model="maxout", optimizer="adam", learning_rate=1e-3,
               weight_decay=0., schedule="constant", epochs=40, eps=0.25,
               dropout=0.)
_LARGE = dict(_COMMON, batch_size=128, dropout=0.2)
PRESETS = {"digits": dict(_COMMON, batch_size=64, validation=200),
           "synthetic": dict(_COMMON, epochs=2, batch_size=32, validation=32),
           "mnist": dict(_LARGE, validation=10000),
           "cifar10": dict(_LARGE, eps=0.1, validation=5000)}


def refine(cfg, preset):
  if len(cfg.classes) != 2 or cfg.classes[0] == cfg.classes[1]:
    raise run.ConfigError("GoodfellowConfig.classes (--classes) must be two "
                          f"different labels; got {cfg.classes}.")
  return preset


def architecture(cfg, name: str, num_classes: int):
  if name in ("logistic", "softmax"):
    return models.FC10(num_classes=2 if name == "logistic" else num_classes)
  return models.Maxout(num_classes=num_classes, hidden=tuple(cfg.hidden),
                       pieces=cfg.pieces, dropout_rate=cfg.dropout)


def models_to_train(cfg, env):
  fit_rows, _ = data.hold_out(env.train, cfg.validation)
  method = {"maxout_fgsm": training.methods.fgsm_mix(cfg.eps, sigma=cfg.alpha),
            **{n: training.methods.noise_mix(cfg.eps, distribution=d,
                                             sigma=cfg.alpha)
               for n, (d, _) in NOISE.items()}}
  settings = {"maxout_l1": {"l1": cfg.l1},
              **{n: {"noise": text} for n, (_, text) in NOISE.items()}}
  l1 = lambda opt: optax.chain(training.l1_decay(cfg.l1), opt)
  return {name: run.TrainSpec(
      method.get(name, training.methods.standard()), {
          "eps": cfg.eps, "alpha": cfg.alpha, "validation": cfg.validation,
          **settings.get(name, {})}, {"epoch_checkpoints": True},
      model=architecture(cfg, name, env.test.num_classes),
      train=(data.select_classes(fit_rows, cfg.classes) if name == "logistic"
             else fit_rows), optimizer=l1 if name == "maxout_l1" else None)
          for name in cfg.models}


def early_stopped(cfg, apply_fn, name, val):
  """The kept epoch of lowest validation (FGSM, if so trained) error."""
  attack = gradient.fgsm if name in ("maxout_fgsm", *NOISE) else None
  return evaluation.early_stopping(
      lambda v: evaluation.error_confidence(
          apply_fn, v, val.images, val.labels, attack=attack, eps=cfg.eps,
          batch_size=cfg.eval_batch_size).error,
      lambda epoch: run.epoch_variables(cfg, name, epoch),
      range(1, cfg.epochs + 1), progress=cfg.progress, desc=f"stop {name}")


def evaluate(cfg, env, name, _):
  """Clean and FGSM error (and confidence) of the early-stopped model."""
  rows, val = data.hold_out(env.train, cfg.validation)
  test = env.test
  if name == "logistic":
    val, test = (data.select_classes(d, cfg.classes) for d in (val, test))
  stop = early_stopped(cfg, env.apply_fn, name, val)
  judge = lambda d, **kw: evaluation.error_confidence(
      env.apply_fn, stop.variables, d.images, d.labels, eps=cfg.eps,
      batch_size=cfg.eval_batch_size, **kw)
  adv = judge(test, attack=gradient.fgsm, keep_inputs=True)
  out = {"epoch": stop.epoch, "validation_error": stop.scores.tolist(),
         "clean_error": judge(test).error, "fgsm_error": adv.error,
         "fgsm_confidence": adv.confidence_on_errors, "n": test.size}
  if name == "logistic":  # the closed form; Figure 2's arrays
    k = np.asarray(stop.variables["params"]["Dense_0"]["kernel"])
    w = (k[:, 1] - k[:, 0]).reshape(test.image_shape)
    closed = analysis.logistic_fgsm(w, test.images, test.labels, eps=cfg.eps)
    out.update(closed_form_max_abs_diff=float(np.abs(
        closed - adv.inputs).max()), figure={
            "w": w, "x": test.images[:10], "x_adv": adv.inputs[:10]})
  if name == "maxout_l1":
    out["train_error"] = judge(rows).error
  return out


def extra(cfg, env, _):
  """FGSM transfer between the standard and the FGSM-trained maxout nets."""
  if not set(PAIR) <= set(cfg.models):
    return {}
  module = architecture(cfg, "maxout", env.test.num_classes)
  apply_fn = lambda v, x: module.apply(v, x, train=False)
  _, val = data.hold_out(env.train, cfg.validation)
  nets = {n: early_stopped(cfg, apply_fn, n, val).variables for n in PAIR}
  return {"transfer": {f"{a}->{b}": evaluation.error_confidence(
      apply_fn, nets[b], env.test.images, env.test.labels,
      attack=gradient.fgsm, eps=cfg.eps, source=nets[a],
      batch_size=cfg.eval_batch_size).error for a, b in (PAIR, PAIR[::-1])}}


def body(cfg, results):
  m = results["models"]
  return [report.records_table({LABEL[n]: m[n] for n in MODELS if n in m}, [
      ("epoch", "epoch", ""), *((k.replace("_", " "), k, "%") for k in (
          *KEYS, "train_error"))], caption="Test error; confidence: the mean "
      "top softmax probability on the misclassified FGSM examples.")]


MNIST = {"logistic": (1.6, 99, None), "softmax": (None, 99.9, 79.3),  # KEYS
         "maxout": (0.94, 89.4, 97.6), "maxout_fgsm": (0.84, 17.9, 81.4),
         "maxout_sign_noise": (None, 86.2, 97.3),
         "maxout_uniform_noise": (None, 90.4, 97.8)}
_SRC = "Goodfellow et al. 2015"
PUBLISHED = [
    report.Published(_SRC, f"MNIST, {LABEL[n]}", v, k.replace("_", " "),
                     dataset="mnist", ours=report.value_of(f"models.{n}.{k}"))
    for n, values in MNIST.items() for k, v in zip(KEYS, values)
    if v is not None] + [
    report.Published(_SRC, "CIFAR-10, conv maxout, eps 0.1", v, q,
                     dataset="cifar10")
    for q, v in (("fgsm error", 87.15), ("fgsm confidence", 96.6))] + [
    report.Published(_SRC, f"MNIST, FGSM examples of {a} judged by {b}", v,
                     "error", dataset="mnist",
                     ours=report.value_of(f"extra.transfer.{a}->{b}"))
    for a, b, v in ((*PAIR, 19.6), (*PAIR[::-1], 40.9))]

has = lambda *names: lambda cfg, r: set(names) <= set(r["models"])
vs = lambda key, a, b: report.difference(f"models.{a}.{key}",
                                         f"models.{b}.{key}", "%")
CLAIMS = [  # the published numbers beside them: PUBLISHED
    report.Claim("FGSM is the exact worst case for logistic regression: "
                 "clip(x - eps (2y-1) sign(w))", "models.logistic.closed_"
                 "form_max_abs_diff", report.below(1e-5), None,
                 "max |FGSM - closed form|", has("logistic")),
    report.Claim("FGSM breaks logistic regression", "models.logistic."
                 "fgsm_error", report.above(0.9), report.above(0.5),
                 "FGSM error", has("logistic")),
    report.Claim("FGSM fools the network on most inputs", lambda cfg, r: {
        n: r["models"][n]["fgsm_error"] for n in ("softmax", "maxout")
        if n in r["models"]}, report.above(0.5), quantity="FGSM error"),
    report.Claim("FGSM training cuts the FGSM error sharply", report.ratio(
        "models.maxout_fgsm.fgsm_error", "models.maxout.fgsm_error"),
                 report.below(0.5), None, "trained / standard", has(*PAIR)),
    report.Claim("... without hurting clean error", vs(
        "clean_error", "maxout_fgsm", "maxout"), report.at_most(0.01), None,
                 "trained - standard", has(*PAIR)),
    report.Claim("The FGSM-trained model is less confident on its mistakes",
                 vs("fgsm_confidence", "maxout_fgsm", "maxout"),
                 report.below(0), None, "trained - standard", has(*PAIR)),
    report.Claim("Noise training does not buy FGSM robustness, even early-"
                 "stopped on FGSM error", lambda cfg, r: {n: report.ratio(
                     f"models.{n}.fgsm_error", "models.maxout_fgsm.fgsm_error")(
                         cfg, r) for n in NOISE if n in r["models"]},
                 report.above(2), None, "noise / FGSM", has("maxout_fgsm")),
    report.Claim("FGSM training beats L1 weight decay on FGSM error (the "
                 "paper's L1 0.0025 stalls at 5 % training error)",
                 vs("fgsm_error", "maxout_fgsm", "maxout_l1"), report.below(0),
                 None, "FGSM - L1", has("maxout_fgsm", "maxout_l1")),
    report.Claim("The standard model's FGSM examples transfer less to the "
                 "FGSM-trained one than the reverse", report.difference(
                     "extra.transfer.maxout->maxout_fgsm",
                     "extra.transfer.maxout_fgsm->maxout", "%"),
                 report.below(0), None, "forward - reverse",
                 lambda cfg, r: "transfer" in r["extra"])]


def figures(cfg, results):
  m = results["models"]
  names = [n for n in MODELS if n in m]
  out = {"errors.png": report.Bar([LABEL[n] for n in names], {k: [m[n][
      f"{k.lower()}_error"] for n in names] for k in ("clean", "FGSM")},
                                  ylabel="test error (%)", percent=True)}
  if "logistic" in m:  # Figure 2: w and the images; sign(w) and FGSM's
    f = {k: np.asarray(v) for k, v in m["logistic"]["figure"].items()}
    lim = float(np.abs(f["w"]).max()) or 1.
    out["figure2.png"] = report.Panels(
        [report.Image(f["w"], "w", "RdBu", -lim, lim),
         *report.image_grid(f["x"], [f"classes {tuple(cfg.classes)}"]).panels,
         report.Image(np.sign(f["w"]), "sign(w)", vmin=-1.),
         *report.image_grid(f["x_adv"], [f"FGSM, eps {cfg.eps:g}"]).panels],
        ncols=len(f["x"]) + 1, panel_size=(1.2, 1.4))
  return out


REPORT = report.Report(
    title="Goodfellow et al. 2015 ({dataset}, FGSM eps {eps:g})", body=body,
    published=PUBLISHED, claims=CLAIMS, figures=figures)

BENCHMARK = run.Benchmark("goodfellow", GoodfellowConfig, PRESETS,
                          models_to_train, evaluate, REPORT, doc=__doc__,
                          refine=refine, extra=extra)

if __name__ == "__main__":
  run.main(BENCHMARK)
