"""Goodfellow, Shlens & Szegedy 2015: FGSM, the linear explanation, and FGSM
adversarial training.

    python -m benchmarks.goodfellow --dataset digits   # ~3 minutes, 2 CPU cores

- **Logistic regression on two classes** (3 vs 7; a two-class softmax
  regression, whose logit difference is `w.x + b`): clean error and error
  under FGSM at `eps` (on a linear model FGSM is the exact worst case in
  the Linf box: `clip(x - eps sign(w_y - w_other))`, checked against the
  attack's output), and the paper's Figure 2: the weights, their sign (the
  optimal perturbation), 3s and 7s and their FGSM versions (figure2.png).
- **A shallow softmax and a maxout network** (2 x 240 units x 5 pieces)
  under FGSM: error and mean confidence on the misclassified examples.
- **FGSM adversarial training** of the maxout network with
  `alpha = 0.5` (`training.methods.fgsm_mix`, true labels, as the paper),
  early-stopped on the FGSM error of a validation split held out of the
  training split: clean and adversarial test error and confidence, against
  training on +-eps sign noise and on U(-eps, eps) noise
  (`training.methods.noise_mix`) and against L1 weight decay
  (`training.l1_decay`; the paper's 0.0025).
- **Transfer** between the standard and the adversarially trained maxout
  networks: each one's FGSM examples fed to the other.

Every model but the logistic regression trains on the training split less
the validation rows, and is early-stopped on the validation split (FGSM
error for the adversarially and noise-trained models, clean error for the
others; every epoch is kept and the best restored). The published numbers
(MNIST) are printed beside ours with a verdict per claim. Other presets:
--dataset mnist (the paper's eps 0.25), cifar10 (eps 0.1; a maxout MLP, not
the paper's conv maxout). Writes results.json, results.md, figure2.png and
errors.png to --workdir (default runs/goodfellow-<dataset>).
"""
import dataclasses
import functools
import os
from typing import Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm import tqdm

from advjax.report import legacy
from advjax import models, report, run, training
from advjax.attacks import gradient

# Goodfellow et al. 2015 (MNIST unless noted): error %, mean confidence on
# the misclassified %.
PUBLISHED = {
    "logistic": {"clean_error": 1.6, "fgsm_error": 99},
    "softmax": {"fgsm_error": 99.9, "confidence": 79.3},
    "maxout": {"clean_error": 0.94, "fgsm_error": 89.4, "confidence": 97.6},
    "maxout_fgsm": {"clean_error": 0.84, "fgsm_error": 17.9,
                    "confidence": 81.4},
    "maxout_sign_noise": {"fgsm_error": 86.2, "confidence": 97.3},
    "maxout_uniform_noise": {"fgsm_error": 90.4, "confidence": 97.8},
    "conv_maxout_cifar10": {"fgsm_error": 87.15, "confidence": 96.6},
}
# FGSM examples of the row's model, error of the other (Goodfellow, sec. 6).
PUBLISHED_TRANSFER = {"maxout->maxout_fgsm": 19.6,
                      "maxout_fgsm->maxout": 40.9}
LABEL = {"logistic": "Logistic regression (3 vs 7)",
         "softmax": "Shallow softmax", "maxout": "Maxout",
         "maxout_fgsm": "Maxout, FGSM adversarial training (alpha 0.5)",
         "maxout_sign_noise": "Maxout, +-eps sign-noise training",
         "maxout_uniform_noise": "Maxout, U(-eps, eps) noise training",
         "maxout_l1": "Maxout, L1 weight decay"}
MODELS = tuple(LABEL)
NOISE = {"maxout_sign_noise": "+-eps sign noise",
         "maxout_uniform_noise": "U(-eps, eps) noise"}
ADVERSARIAL_STOP = ("maxout_fgsm", "maxout_sign_noise",
                    "maxout_uniform_noise")


@dataclasses.dataclass(frozen=True)
class GoodfellowConfig(run.Config):
  """Settings (beyond `advjax.run.Config`'s, which train every model).

  Attributes:
    models: which of the study's models to train and evaluate.
    eps: FGSM's Linf radius (attack and adversarial training).
    classes: the two classes of the logistic regression (the paper's 3, 7).
    alpha: the clean loss's weight in adversarial and noise training.
    l1: the L1 weight decay coefficient (the paper's 0.0025 made its maxout
      network stall at 5 % training error).
    hidden, pieces: the maxout network's units per layer and pieces.
    dropout: the maxout network's dropout rate in training.
    validation: training rows held out for early stopping.
  """
  models: Tuple[str, ...] = MODELS
  eps: Optional[float] = None
  classes: Tuple[int, ...] = (3, 7)
  alpha: float = 0.5
  l1: float = 0.0025
  hidden: Tuple[int, ...] = (240, 240)
  pieces: int = 5
  dropout: float = 0.0
  validation: Optional[int] = None


_COMMON = dict(model="maxout", optimizer="adam", learning_rate=1e-3,
               weight_decay=0., schedule="constant")
PRESETS = {
    "digits": dict(_COMMON, epochs=40, batch_size=64, eps=0.25,
                   validation=200),
    "synthetic": dict(_COMMON, epochs=2, batch_size=32, eps=0.25,
                      validation=32),
    "mnist": dict(_COMMON, epochs=40, batch_size=128, eps=0.25,
                  validation=10000, dropout=0.2),
    "cifar10": dict(_COMMON, epochs=40, batch_size=128, eps=0.1,
                    validation=5000, dropout=0.2),
}


def _refine(cfg, preset):
  unknown = set(cfg.models) - set(MODELS)
  if not cfg.models or unknown:
    raise ValueError(f"models must be some of {MODELS}; got {cfg.models}.")
  if cfg.eps is not None and cfg.eps < 0:
    raise ValueError(f"eps must be >= 0; got {cfg.eps}.")
  if len(cfg.classes) != 2 or cfg.classes[0] == cfg.classes[1]:
    raise ValueError(f"classes must be two different labels; got "
                     f"{cfg.classes}.")
  if not 0 <= cfg.alpha <= 1:
    raise ValueError(f"alpha must be in [0, 1]; got {cfg.alpha}.")
  if cfg.l1 < 0:
    raise ValueError(f"l1 must be >= 0; got {cfg.l1}.")
  if cfg.validation is not None and cfg.validation < 1:
    raise ValueError("validation must be >= 1 (rows held out for early "
                     "stopping).")
  return preset


def resolve(cfg):
  return run.resolve(BENCHMARK, cfg)


def split_validation(train, n: int):
  """`(training rows, validation rows)`: the last `n` rows held out."""
  if n >= train.images.shape[0]:
    raise ValueError(f"validation ({n}) must be smaller than the training "
                     f"split ({train.images.shape[0]} rows).")
  cut = lambda s: train._replace(images=np.asarray(train.images[s]),
                                 labels=np.asarray(train.labels[s]))
  return cut(slice(0, -n)), cut(slice(-n, None))


def two_classes(dataset, classes):
  """The rows of the two `classes`, relabelled 0 and 1."""
  labels = np.asarray(dataset.labels)
  keep = np.isin(labels, classes)
  if not keep.any():
    raise ValueError(f"No rows of classes {classes} in {dataset.name} "
                     f"{dataset.split}.")
  return dataset._replace(
      images=np.asarray(dataset.images)[keep],
      labels=(labels[keep] == classes[1]).astype(np.int32), num_classes=2,
      class_names=tuple(str(c) for c in classes))


def _maxout(cfg, k):
  return models.Maxout(num_classes=k, hidden=tuple(cfg.hidden),
                       pieces=cfg.pieces, dropout_rate=cfg.dropout)


def architecture(cfg, name: str, num_classes: int):
  """The module of one of the study's models."""
  if name == "logistic":
    return models.FC10(num_classes=2)
  if name == "softmax":
    return models.FC10(num_classes=num_classes)
  return _maxout(cfg, num_classes)


def models_to_train(cfg, env):
  k = env.test.num_classes
  fit_rows, _ = split_validation(env.train, cfg.validation)
  methods = {
      "logistic": training.methods.standard(),
      "softmax": training.methods.standard(),
      "maxout": training.methods.standard(),
      "maxout_fgsm": training.methods.fgsm_mix(cfg.eps, sigma=cfg.alpha),
      "maxout_sign_noise": training.methods.noise_mix(
          cfg.eps, distribution="sign", sigma=cfg.alpha),
      "maxout_uniform_noise": training.methods.noise_mix(
          cfg.eps, distribution="uniform", sigma=cfg.alpha),
      "maxout_l1": training.methods.standard(),
  }
  specs = {}
  for name in cfg.models:
    extra = {}
    if name == "maxout_l1":
      extra = dict(optimizer=lambda opt: optax.chain(
          training.l1_decay(cfg.l1), opt), settings={"l1": cfg.l1})
    elif name in NOISE:
      extra = dict(settings={"noise": NOISE[name]})
    specs[name] = run.TrainSpec(
        methods[name], model=architecture(cfg, name, k),
        train=(two_classes(fit_rows, cfg.classes) if name == "logistic"
               else fit_rows),
        fit_kwargs={"epoch_checkpoints": True},
        optimizer=extra.get("optimizer"),
        settings={"eps": cfg.eps, "alpha": cfg.alpha,
                  "validation": cfg.validation, **extra.get("settings", {})})
  return specs


class _Model:
  """One model's jitted prediction and FGSM."""

  def __init__(self, module, eps):
    self.module, self.eps = module, eps
    self.logits = jax.jit(lambda v, x: module.apply(v, x, train=False))
    self.fgsm = jax.jit(lambda v, x, y: gradient.fgsm(
        lambda z: module.apply(v, z, train=False), x, y, eps=eps))

  def adversarial(self, v, x, y, batch=512):
    return np.concatenate([np.asarray(self.fgsm(v, x[i:i + batch],
                                                y[i:i + batch]))
                           for i in range(0, len(x), batch)])

  def probs(self, v, x, batch=1024):
    return np.concatenate([np.asarray(jax.nn.softmax(self.logits(
        v, x[i:i + batch]))) for i in range(0, len(x), batch)])


def error_and_confidence(probs: np.ndarray, y: np.ndarray):
  """`(error, mean confidence on the misclassified)`: the fraction
  misclassified and the mean of their top softmax probability (NaN when
  none is)."""
  wrong = probs.argmax(-1) != y
  conf = float(probs.max(-1)[wrong].mean()) if wrong.any() else float("nan")
  return float(wrong.mean()), conf


def _like(cfg, env, name):
  """A train state shaped like the one `name` trained with (for
  `restore_epoch`)."""
  spec = models_to_train(dataclasses.replace(cfg, models=(name,)), env)[name]
  opt = run.make_optimizer(cfg, 1)
  if spec.optimizer is not None:
    opt = spec.optimizer(opt)
  return training.create_train_state(spec.model, opt, jax.random.key(0),
                                     env.test.images.shape[1:])


def early_stopped(cfg, env, name, model: _Model, val):
  """`(epoch, variables, validation errors per epoch)`: the kept epoch
  with the lowest validation error (FGSM error for the adversarially and
  noise-trained models, clean error for the others)."""
  like = _like(cfg, env, name)
  x, y = np.asarray(val.images), np.asarray(val.labels)
  errors, best = [], None
  for epoch in tqdm(range(1, cfg.epochs + 1), desc=f"early stopping {name}",
                    disable=not cfg.progress, leave=False):
    v = jax.device_get(training.restore_epoch(
        os.path.join(cfg.workdir, name), like, epoch).variables)
    xe = model.adversarial(v, x, y) if name in ADVERSARIAL_STOP else x
    err = float(np.mean(model.probs(v, xe).argmax(-1) != y))
    errors.append(err)
    if best is None or err < best[0]:
      best = (err, epoch, v)
  return best[1], best[2], errors


def evaluate(cfg, env, name, variables):
  """Clean and FGSM error (and confidence) of the early-stopped model."""
  del variables
  k = env.test.num_classes
  model = _Model(architecture(cfg, name, k), cfg.eps)
  _, val = split_validation(env.train, cfg.validation)
  test = env.test
  if name == "logistic":
    val, test = two_classes(val, cfg.classes), two_classes(test, cfg.classes)
  epoch, v, val_errors = early_stopped(cfg, env, name, model, val)
  x, y = np.asarray(test.images), np.asarray(test.labels)
  x_adv = model.adversarial(v, x, y)
  clean = error_and_confidence(model.probs(v, x), y)
  adv = error_and_confidence(model.probs(v, x_adv), y)
  out = {"epoch": epoch, "validation_error": val_errors,
         "clean_error": clean[0], "fgsm_error": adv[0],
         "fgsm_confidence": adv[1], "n": int(len(y))}
  if name == "logistic":
    out.update(_logistic_extras(cfg, v, x, y, x_adv))
  if name == "maxout_l1":
    train_rows, _ = split_validation(env.train, cfg.validation)
    out["train_error"] = float(np.mean(model.probs(
        v, np.asarray(train_rows.images)).argmax(-1)
        != np.asarray(train_rows.labels)))
  return out


def logistic_fgsm(w: np.ndarray, x: np.ndarray, y: np.ndarray, eps: float,
                  b: float = 0.) -> np.ndarray:
  """FGSM on binary logistic regression in closed form: the loss gradient
  of `p(1|x) = sigmoid(w.x + b)` has the sign of `-(2y - 1) w`, so
  `x_adv = clip(x - eps (2y - 1) sign(w))` (where `w.x + b` decides the
  class; `b` does not enter)."""
  del b
  s = (2 * np.asarray(y) - 1).reshape((-1,) + (1,) * (x.ndim - 1))
  return np.clip(x - eps * s * np.sign(w)[None], 0., 1.)


def _logistic_extras(cfg, v, x, y, x_adv):
  k = np.asarray(v["params"]["Dense_0"]["kernel"])
  w = (k[:, 1] - k[:, 0]).reshape(x.shape[1:])
  closed = logistic_fgsm(w, x, y, cfg.eps)
  n = min(10, len(x))
  # A few images for figure2.png, kept in the results (so --report-only
  # redraws it from results.json).
  return {"closed_form_max_abs_diff": float(np.abs(closed - x_adv).max()),
          "figure": {"w": w, "x": x[:n], "x_adv": x_adv[:n], "y": y[:n]}}


def extra(cfg, env, trained):
  """Transfer between the standard and the FGSM-trained maxout networks."""
  del trained
  pair = ("maxout", "maxout_fgsm")
  if not set(pair) <= set(cfg.models):
    return {}
  k = env.test.num_classes
  _, val = split_validation(env.train, cfg.validation)
  x, y = np.asarray(env.test.images), np.asarray(env.test.labels)
  nets = {}
  for name in pair:
    model = _Model(architecture(cfg, name, k), cfg.eps)
    _, v, _ = early_stopped(cfg, env, name, model, val)
    nets[name] = (model, v)
  out = {}
  for src, dst in (pair, pair[::-1]):
    model, v = nets[src]
    x_adv = model.adversarial(v, x, y)
    other, ov = nets[dst]
    out[f"{src}->{dst}"] = error_and_confidence(other.probs(ov, x_adv), y)[0]
  return {"transfer": out}


# --------------------------------------------------------------------------
# The report.
# --------------------------------------------------------------------------
def _pct(v):
  return "-" if v is None or v != v else report.percent(v, 2)


def _pub(name, key):
  v = PUBLISHED.get(name, {}).get(key)
  return "-" if v is None else f"{v:g}"


def _claims(cfg, m, ex):
  claims = []
  if "logistic" in m:
    lg = m["logistic"]
    claims.append(legacy.Claim(
        "FGSM is the exact worst case for logistic regression: the attack "
        "equals the closed form clip(x - eps (2y-1) sign(w))",
        lg["closed_form_max_abs_diff"] < 1e-5,
        f"max |difference| {lg['closed_form_max_abs_diff']:.2e}"))
    claims.append(legacy.Claim(
        f"FGSM at eps {cfg.eps:g} breaks logistic regression on 3 vs 7 "
        "(published MNIST: 1.6 % -> 99 % error)",
        lg["fgsm_error"] > 0.9 and lg["fgsm_error"] > lg["clean_error"],
        f"{_pct(lg['clean_error'])} % -> {_pct(lg['fgsm_error'])} %"))
  for name in ("softmax", "maxout"):
    if name in m:
      claims.append(legacy.Claim(
          f"FGSM at eps {cfg.eps:g} fools the {LABEL[name].lower()} on most "
          f"inputs (published MNIST: {_pub(name, 'fgsm_error')} %)",
          m[name]["fgsm_error"] > 0.5,
          f"{_pct(m[name]['fgsm_error'])} % error, confidence "
          f"{_pct(m[name]['fgsm_confidence'])} %"))
  if {"maxout", "maxout_fgsm"} <= set(m):
    s, a = m["maxout"], m["maxout_fgsm"]
    claims.append(legacy.Claim(
        "FGSM adversarial training cuts the FGSM error sharply (published: "
        "89.4 % -> 17.9 %)", a["fgsm_error"] < 0.5 * s["fgsm_error"],
        f"{_pct(s['fgsm_error'])} % -> {_pct(a['fgsm_error'])} %"))
    claims.append(legacy.Claim(
        "... without hurting clean error (published: 0.94 % -> 0.84 %; "
        "within 1 point here)",
        a["clean_error"] <= s["clean_error"] + 0.01,
        f"{_pct(s['clean_error'])} % -> {_pct(a['clean_error'])} %"))
    claims.append(legacy.Claim(
        "The adversarially trained model is less confident on its mistakes "
        "(published: 97.6 % -> 81.4 %)",
        a["fgsm_confidence"] < s["fgsm_confidence"],
        f"{_pct(s['fgsm_confidence'])} % -> "
        f"{_pct(a['fgsm_confidence'])} %"))
    for noise in ("maxout_sign_noise", "maxout_uniform_noise"):
      if noise in m:
        claims.append(legacy.Claim(
            f"Training on {NOISE[noise]} does not buy FGSM robustness, "
            "even early-stopped on its FGSM error (published: "
            f"{_pub(noise, 'fgsm_error')} % vs 17.9 % with FGSM training)",
            m[noise]["fgsm_error"] > 2 * a["fgsm_error"],
            f"{_pct(m[noise]['fgsm_error'])} % vs {_pct(a['fgsm_error'])} %"))
    if "maxout_l1" in m:
      claims.append(legacy.Claim(
          f"Adversarial training beats L1 weight decay ({cfg.l1:g}) on FGSM "
          "error", a["fgsm_error"] < m["maxout_l1"]["fgsm_error"],
          f"{_pct(a['fgsm_error'])} % vs "
          f"{_pct(m['maxout_l1']['fgsm_error'])} % (L1 training error "
          f"{_pct(m['maxout_l1']['train_error'])} %; the paper: L1 at "
          "0.0025 stalls at 5 % training error)"))
  tr = ex.get("transfer")
  if tr:
    fwd, back = tr["maxout->maxout_fgsm"], tr["maxout_fgsm->maxout"]
    claims.append(legacy.Claim(
        "The standard model's FGSM examples transfer less to the "
        "adversarially trained one than the reverse (published: 19.6 % vs "
        "40.9 %)", fwd < back, f"{_pct(fwd)} % vs {_pct(back)} %"))
  return claims


def _figure2(cfg, m, path):
  arrays = m["logistic"]["figure"]
  w, x, x_adv = (np.asarray(arrays[k]) for k in ("w", "x", "x_adv"))
  plt = report.pyplot()
  n = len(x)
  fig, axes = plt.subplots(3, max(n, 2), figsize=(1.2 * max(n, 2), 4.2),
                           squeeze=False)
  for ax in axes.ravel():
    ax.axis("off")
  lim = np.abs(w).max() or 1.
  axes[0][0].imshow(w[..., 0], cmap="RdBu", vmin=-lim, vmax=lim)
  axes[0][0].set_title("w", fontsize=8)
  axes[0][1].imshow(np.sign(w[..., 0]), cmap="gray")
  axes[0][1].set_title("sign(w)", fontsize=8)
  for i in range(n):
    axes[1][i].imshow(x[i, ..., 0], cmap="gray", vmin=0, vmax=1)
    axes[2][i].imshow(x_adv[i, ..., 0], cmap="gray", vmin=0, vmax=1)
  axes[1][0].set_title(f"classes {cfg.classes[0]}, {cfg.classes[1]}",
                       fontsize=8, loc="left")
  axes[2][0].set_title(f"FGSM, eps {cfg.eps:g}", fontsize=8, loc="left")
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def _errors_plot(m, path):
  plt = report.pyplot()
  names = [n for n in MODELS if n in m]
  fig, ax = plt.subplots(figsize=(7, 3.6))
  pos = np.arange(len(names))
  ax.bar(pos - 0.2, [100 * m[n]["clean_error"] for n in names], 0.4,
         label="clean")
  ax.bar(pos + 0.2, [100 * m[n]["fgsm_error"] for n in names], 0.4,
         label="FGSM")
  ax.set_xticks(pos, [LABEL[n].replace(", ", "\n") for n in names],
                fontsize=6)
  ax.set_ylabel("test error (%)")
  ax.set_ylim(0, 100)
  ax.legend()
  ax.grid(alpha=0.3, axis="y")
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def make_report(cfg, results):
  m = results["models"]
  ex = results.get("extra", {})
  rows = []
  for name in MODELS:
    if name not in m:
      continue
    r = m[name]
    rows.append([LABEL[name], r["epoch"], _pct(r["clean_error"]),
                 _pub(name, "clean_error"), _pct(r["fgsm_error"]),
                 _pub(name, "fgsm_error"), _pct(r["fgsm_confidence"]),
                 _pub(name, "confidence")])
  parts = [f"# Goodfellow et al. 2015 ({cfg.dataset}, FGSM eps {cfg.eps:g}, "
           f"{jax.default_backend()})", "",
           "Published numbers: MNIST (the paper's maxout network; its "
           "adversarially trained one had 1600 units per layer, ours "
           f"{'-'.join(str(h) for h in cfg.hidden)} x {cfg.pieces} pieces). "
           "Test error %; confidence: the mean top softmax probability on "
           "the misclassified FGSM examples. Epoch: the early-stopped one.",
           "",
           report.table(("model", "epoch", "clean error", "published",
                         "FGSM error", "published", "confidence",
                         "published"), rows), "",
           f"Published on CIFAR-10 (conv maxout, eps 0.1): FGSM error "
           f"{PUBLISHED['conv_maxout_cifar10']['fgsm_error']} %, confidence "
           f"{PUBLISHED['conv_maxout_cifar10']['confidence']} %.", ""]
  if "logistic" in m:
    parts += [f"Logistic regression ({m['logistic']['n']} test images of "
              f"classes {cfg.classes}): FGSM equals the closed form within "
              f"{m['logistic']['closed_form_max_abs_diff']:.1e} "
              "(figure2.png: w, sign(w), the images, their FGSM versions).",
              ""]
  tr = ex.get("transfer")
  if tr:
    parts += ["## Transfer between the standard and the adversarially "
              "trained maxout networks", "",
              report.table(("FGSM examples of", "error of", "measured %",
                            "published %"), [
                  [LABEL[k.split("->")[0]], LABEL[k.split("->")[1]],
                   _pct(v), f"{PUBLISHED_TRANSFER[k]:g}"]
                  for k, v in tr.items()]), ""]
  figures = {"errors.png": functools.partial(_errors_plot, m)}
  if "logistic" in m:
    figures["figure2.png"] = functools.partial(_figure2, cfg, m)
  return legacy.Report("\n".join(parts), figures, _claims(cfg, m, ex))


BENCHMARK = run.Benchmark("goodfellow", GoodfellowConfig, PRESETS,
                          models_to_train, evaluate, make_report,
                          doc=__doc__, refine=_refine, extra=extra)


def main(argv=None):
  return run.main(BENCHMARK, argv)


if __name__ == "__main__":
  main()
