"""Szegedy et al. 2014's transfer tables, and transfer across CNNs.

    python -m benchmarks.transfer --dataset digits   # ~15 minutes, 2 CPU cores

Table 2: L-BFGS examples made on FC10(lambda), FC100-100-10, FC200-200-10
and AE400-10, judged by all, beside noise. Tables 3-4: two nets on half P1
of the training split, one on P2; their examples as made and amplified.
Across CNNs (D'Costa & Sriramanan; Kurakin et al.): FGSM, PGD and CW-L2 on
four (`analysis.transfer_study`: keyed by index, not by batch).
"""
import dataclasses
import functools
import os
from typing import Optional, Tuple

import jax
import numpy as np

from advjax import analysis, data, models, report, run, training
from advjax.attacks import carlini_wagner_l2, gradient, lbfgs

STUDIES = ("cross_model", "cross_training", "cnn")
CROSS_TRAINING = ("p1-fc100_100_10", "p1-fc123_456_10", "p2-fc100_100_10")
SECTIONS = {  # the studies' tables (results["extra"][study])
    "cross_model": "Table 2: L-BFGS examples of the first training images "
                   "made on each row's model, and Gaussian noise; distortion "
                   "`sqrt(sum r^2 / n)` per image, averaged",
    "cross_training": "Table 4: L-BFGS examples of the first test images made"
                      " on each row's model (P1, P2: disjoint halves of the "
                      "training split), amplified, and noise",
    "cnn_fgsm": "Across CNNs: FGSM", "cnn_pgd": "Across CNNs: PGD",
    "cnn_cw_l2": "Across CNNs: CW-L2 (distortion: mean L2)"}
LABEL = {"fc100_100_10": "FC100-100-10", "fc200_200_10": "FC200-200-10",
         "ae400_10": "AE400-10", "p1-fc100_100_10": "FC100-100-10 (P1)",
         "p1-fc123_456_10": "FC123-456-10 (P1)",
         "p2-fc100_100_10": "FC100-100-10' (P2)", "wong_mnist": "Wong CNN",
         "madry_mnist": "Madry CNN", "carlini_mnist": "Carlini CNN",
         "carlini_cifar": "Carlini CNN", "preact_resnet18": "PreAct ResNet-18"}


@dataclasses.dataclass(frozen=True)
class TransferConfig(run.Config):
  """Settings (beyond `advjax.run.Config`'s, which train every model)."""
  studies: Tuple[str, ...] = run.field(STUDIES, "studies", choices=STUDIES)
  weight_decays: Tuple[float, ...] = run.field(
      (1e-4, 1e-2, 1.), "FC10's lambda (an L2 penalty lambda/2 |w|^2)", ge=0)
  autoencoder_epochs: Optional[int] = run.field(None, "AE400-10's "
                                                "pretraining epochs", ge=0)
  attack_examples: Optional[int] = run.field(None, "images attacked (the "
                                             "first ones)", ge=1)
  lbfgs_steps: int = run.field(30, "L-BFGS iterations per constant c", ge=1)
  lbfgs_search_steps: int = run.field(8, "constants c tried per image", ge=1)
  noise_stddevs: Tuple[float, ...] = run.field((0.1, 0.3), "Table 2's "
                                                "noise rows", gt=0)
  amplify_stddev: float = run.field(0.1, "Table 4's amplified stddev", gt=0)
  cnn_models: Optional[Tuple[str, ...]] = run.field(
      None, "the CNN study's architectures", choices=models.list_models())
  cnn_epochs: Optional[int] = run.field(None, "their epochs (Adam)", ge=1)
  cnn_learning_rate: float = run.field(1e-3, "their learning rate", gt=0)
  resnet_width: Optional[int] = run.field(None, "the ResNet's width", ge=1)
  eps: Optional[float] = run.field(None, "FGSM's, PGD's Linf eps", ge=0)
  pgd_steps: int = run.field(20, "PGD steps (random start)", ge=1)
  cw_steps: int = run.field(100, "CW-L2's Adam steps", ge=1)
  cw_search_steps: int = run.field(5, "CW-L2's binary search steps", ge=1)


_ADAM = dict(optimizer="adam", weight_decay=0., schedule="constant")
_FC = dict(_ADAM, model="fc100_100_10", learning_rate=1e-3)
_CNNS = ("wong_mnist", "madry_mnist", "carlini_mnist", "preact_resnet18")
PRESETS = {
    "digits": dict(_FC, epochs=60, batch_size=64, autoencoder_epochs=60,
                   attack_examples=256, cnn_models=_CNNS, cnn_epochs=8,
                   eps=0.2, resnet_width=16),
    "synthetic": dict(_FC, epochs=2, batch_size=32, autoencoder_epochs=2,
                      attack_examples=16, cnn_models=_CNNS[:3:2],
                      cnn_epochs=1, eps=0.1, resnet_width=8),
    **{d: dict(_FC, epochs=30, batch_size=128, autoencoder_epochs=20,
               attack_examples=1000, cnn_models=cnns, cnn_epochs=epochs,
               eps=eps, resnet_width=64) for d, cnns, epochs, eps in (
                   ("mnist", _CNNS, 10, 0.3), ("cifar10", _CNNS[:2] + (
                       "carlini_cifar", "preact_resnet18"), 30, 8 / 255))}}


def fc10_name(lam: float) -> str:
  """'fc10-1e-4', 'fc10-0.003', 'fc10-1': FC10 at weight decay lam."""
  exp = np.log10(lam) if lam > 0 else 0.5
  return (f"fc10-1e{int(round(exp))}" if lam < 1 and exp == round(exp)
          else f"fc10-{lam:g}")


def cross_model_names(cfg) -> Tuple[str, ...]:
  """Table 2's models, in order (an FC10 per weight decay)."""
  return tuple(map(fc10_name, cfg.weight_decays)) + (
      "fc100_100_10", "fc200_200_10", "ae400_10")


def label(name: str) -> str:
  """A row's name in the tables ('FC10(1e-4)', 'PreAct ResNet-18')."""
  name = name.removeprefix("cnn-")
  if name.startswith("amplified "):
    return f"{label(name[10:])}, amplified"
  return f"FC10({name[5:]})" if name[:5] == "fc10-" else LABEL.get(name, name)


halves = lambda cfg, train: data.hold_out(  # Szegedy's P1, P2
    train, train.size // 2, seed=cfg.seed)[::-1]


def models_to_train(cfg, env):
  k, standard = env.test.num_classes, training.methods.standard()
  specs = {}
  if "cross_model" in cfg.studies:
    for lam in cfg.weight_decays:
      specs[fc10_name(lam)] = run.TrainSpec(standard, model="fc10", config={
          "weight_decay": lam})
    for name in ("fc100_100_10", "fc200_200_10"):
      specs[name] = run.TrainSpec(standard, model=name)
    ae = models.get_model("ae400_10", num_classes=k)
    pretrained = run.cached(
        cfg, os.path.join(cfg.workdir, "ae400_10", "autoencoder.pkl"),
        {"images": env.train.images[:256], "labels": env.train.labels},
        lambda: jax.device_get(training.pretrain_autoencoder(
            ae, env.train, epochs=cfg.autoencoder_epochs,
            batch_size=cfg.batch_size, seed=cfg.seed, progress=cfg.progress)))
    specs["ae400_10"] = run.TrainSpec(
        standard, model=ae, fit_kwargs={"init_variables": pretrained},
        optimizer=lambda opt: training.freeze(opt, ("encoder", "decoder")),
        settings={"autoencoder_epochs": cfg.autoencoder_epochs,
                  "frozen": "encoder,decoder"})
  if "cross_training" in cfg.studies:
    for name, part in zip(CROSS_TRAINING, (0, 0, 1)):
      specs[name] = run.TrainSpec(standard, model=name.split("-", 1)[1],
                                  train=halves(cfg, env.train)[part])
  for name in cfg.cnn_models if "cnn" in cfg.studies else ():
    width = {"width": cfg.resnet_width} if name == "preact_resnet18" else {}
    specs[f"cnn-{name}"] = run.TrainSpec(
        standard, model=models.get_model(name, num_classes=k, **width),
        config=dict(_ADAM, epochs=cfg.cnn_epochs,
                    learning_rate=cfg.cnn_learning_rate))
  return specs


def evaluate(cfg, env, name, variables):
  """A model's clean error on the training and test splits."""
  return {f"{s}_error": analysis.error_rate((env.apply_fn, variables), *d)
          for s, d in (("train", env.train[:2]), ("test", env.test[:2]))}


def extra(cfg, env, trained):
  """The studies of `cfg.studies`, each example keyed by its index."""
  kw = dict(batch_size=cfg.eval_batch_size, progress=cfg.progress)
  key = lambda i: jax.random.key(cfg.seed + i)
  nets = lambda names: {n: (env.apply_fns[n], trained[n]) for n in names}
  first = lambda d: (np.asarray(d.images[:cfg.attack_examples], np.float32),
                     np.asarray(d.labels[:cfg.attack_examples], np.int32))
  l_bfgs = functools.partial(lbfgs, targeted=False, steps=cfg.lbfgs_steps,
                             search_steps=cfg.lbfgs_search_steps)
  out = {}
  if "cross_model" in cfg.studies:  # Table 2, on training images
    out["cross_model"] = analysis.transfer_study(
        nets(cross_model_names(cfg)), *first(env.train), attack=l_bfgs,
        noise=cfg.noise_stddevs, noise_key=key(2), **kw)
  if "cross_training" in cfg.studies:  # Tables 3 and 4, on test images
    ms = nets(CROSS_TRAINING)
    out["cross_training"] = dict(analysis.transfer_study(
        ms, *first(env.test), attack=l_bfgs, matched_noise=True,
        amplify=cfg.amplify_stddev, noise_key=key(3), **kw), clean_error={
            m: [analysis.error_rate(net, d.images, d.labels, **kw) for d in (
                *halves(cfg, env.train), env.test)] for m, net in ms.items()})
  if "cnn" in cfg.studies:
    ms, (x, y) = nets(f"cnn-{m}" for m in cfg.cnn_models), first(env.test)
    attacks = {"fgsm": (gradient.fgsm, cfg.eps), "pgd": (functools.partial(
        gradient.pgd, steps=cfg.pgd_steps), cfg.eps), "cw_l2": (
            functools.partial(carlini_wagner_l2, steps=cfg.cw_steps,
                              binary_search_steps=cfg.cw_search_steps), None)}
    out.update({f"cnn_{a}": analysis.transfer_study(
        ms, x, y, attack=f, eps=e, key=key(1), norm="l2", **kw)
                for a, (f, e) in attacks.items()})
    out["cnn_clean_error"] = float(np.mean([analysis.error_rate(
        net, x, y, **kw) for net in ms.values()]))  # mean over the CNNs
  return out


def body(cfg, results):
  ex = results.get("extra", {})
  return [report.records_table(
      {label(n): m for n, m in results["models"].items()},
      [("train error", "train_error", "%"), ("test error", "test_error", "%")],
      caption="Clean error:")] + [report.Table(
          ("examples \\ error of", *map(label, r["models"]), "distortion"),
          [(label(k), *(report.cell(e, "%") for e in v),
            report.cell(r["distortion"][k], ".3f"))
           for k, v in r["error"].items()],
          caption=f"{SECTIONS[s]} ({r['n']} images):")
                                  for s, r in ex.items() if s in SECTIONS]


# Szegedy et al. 2014 on MNIST: Table 2 row -> (errors of its 6 models,
# distortion); 3: model -> (error on P1 / P2 / test, distortion); 4: errors.
TABLE2 = {"fc10-1e-4": ("100 / 11.7 / 22.7 / 2 / 3.9 / 2.7", 0.062),
          "fc10-1e-2": ("87.1 / 100 / 35.2 / 35.9 / 27.3 / 9.8", 0.1),
          "fc10-1": ("71.9 / 76.2 / 100 / 48.1 / 47 / 34.4", 0.14),
          "fc100_100_10": ("28.9 / 13.7 / 21.1 / 100 / 6.6 / 2", 0.058),
          "fc200_200_10": ("38.2 / 14 / 23.8 / 20.3 / 100 / 2.7", 0.065),
          "ae400_10": ("23.4 / 16 / 24.8 / 9.4 / 6.6 / 100", 0.086),
          "noise 0.1": ("5.0 / 10.1 / 18.3 / 0 / 0 / 0.8", 0.1),
          "noise 0.3": ("15.6 / 11.3 / 22.7 / 5 / 4.3 / 3.1", 0.3)}
TABLE3 = {"p1-fc100_100_10": ("0 / 2.4 / 2", 0.062),
          "p1-fc123_456_10": ("0 / 2.5 / 2.1", 0.059),
          "p2-fc100_100_10": ("2.3 / 0 / 2.1", 0.058)}
TABLE4 = {"p1-fc100_100_10": "100 / 26.2 / 5.9",
          "p1-fc123_456_10": "6.25 / 100 / 5.1",
          "p2-fc100_100_10": "8.2 / 8.2 / 100", "noise": "2.2 / 2.6 / 2.4",
          "amplified p1-fc100_100_10": "100 / 98 / 43",
          "amplified p1-fc123_456_10": "96 / 100 / 22",
          "amplified p2-fc100_100_10": "27 / 50 / 100",
          "amplified noise": "2.6 / 2.8 / 2.7"}


def _ours(study, key, row):  # our row ('12.5 / 3.1 / ...') or one number
  def ours(cfg, results):
    v = results["extra"][study][key][row]
    return v if isinstance(v, float) else " / ".join(map(report.percent, v))
  return ours


PUBLISHED = [report.Published(
    f"Szegedy et al. 2014, Table {t}", f"MNIST, {label(row)}", v if isinstance(
        v, str) else v[key == "distortion"], q, "", _ours(study, key, row),
    "mnist") for t, study, key, q, table in (
        (2, "cross_model", "error", "error %", TABLE2),
        (2, "cross_model", "distortion", "distortion", TABLE2),
        (3, "cross_training", "clean_error", "error % P1 / P2 / test", TABLE3),
        (3, "cross_training", "distortion", "distortion", TABLE3),
        (4, "cross_training", "error", "error %", TABLE4))
             for row, v in table.items()]


def _weight_decay(cfg, results):  # FC10's least distortion increase
  d = results["extra"]["cross_model"]["distortion"]
  dist = [d[fc10_name(w)] for w in sorted(cfg.weight_decays)]
  return report.Measured(float(np.min(np.diff(dist))), " < ".join(
      f"{v:.3f}" for v in dist))


GAPS = (("Adversarial examples generalise across models: the others' error "
         "exceeds that of Gaussian noise (of the first, larger, stddev)",
         "cross_model.off_diagonal", "cross_model.controls.0.error", 0),
        ("Adversarial examples generalise across disjoint training sets: the "
         "others' error exceeds that of noise of the same stddev",
         "cross_training.off_diagonal", "cross_training.controls.0.error", 0),
        ("Amplified, they transfer more (published: 22-98 %)",
         "cross_training.amplified_off_diagonal",
         "cross_training.off_diagonal", 0),
        ("Amplified, they fool more than noise of that stddev",
         "cross_training.amplified_off_diagonal",
         "cross_training.controls.1.error", 0),
        *(c for a in ("fgsm", "pgd") for c in (
            (f"{a.upper()} examples transfer across CNNs (D'Costa & "
             "Sriramanan, Kurakin et al.): error over the mean clean error",
             f"cnn_{a}.off_diagonal", "cnn_clean_error", 0.1),
            (f"Minimal CW-L2 examples transfer less than {a.upper()}'s",
             f"cnn_{a}.off_diagonal", "cnn_cw_l2.off_diagonal", 0))))
CLAIMS = [  # GAPS: claims on a difference a - b of two results (extra.*)
    report.Claim("Every model's own L-BFGS examples are all misclassified",
                 report.present(lambda cfg, results: min(
                     results["extra"]["cross_model"]["own"])),
                 report.at_least(0.99), quantity="min own error"),
    report.Claim("Stronger weight decay needs a larger distortion (MNIST: "
                 "0.062 < 0.1 < 0.14)", report.present(_weight_decay),
                 report.above(0), quantity="min increase")] + [
    report.Claim(text, report.present(report.difference(
        f"extra.{a}", f"extra.{b}", "%")), report.above(bound),
                 quantity=f"{a} - {b}")
    for text, a, b, bound in GAPS]


def figures(cfg, results):
  ex = results.get("extra", {})
  heat = lambda s: report.Heatmap(
      [ex[s]["error"][m] for m in ex[s]["models"]], *[list(map(
          label, ex[s]["models"]))] * 2, "evaluated on", "examples made on",
      title(s), True, vmin=0, vmax=100)
  title = lambda s: s[4:].upper().replace("_", "-") if s[:4] == "cnn_" else (
      "L-BFGS (Table 2)")
  cnn = [s for s in SECTIONS if s.startswith("cnn_") and s in ex]
  out = {"cross_model.png": heat("cross_model")} if "cross_model" in ex else {}
  return {**out, **({"cnn_transfer.png": report.Panels(
      [heat(s) for s in cnn], title="Error % across CNNs")} if cnn else {})}


REPORT = report.Report("Transfer of adversarial examples ({dataset})", body,
                       PUBLISHED, CLAIMS, figures)
BENCHMARK = run.Benchmark("transfer", TransferConfig, PRESETS,
                          models_to_train, evaluate, REPORT, doc=__doc__,
                          extra=extra)

if __name__ == "__main__":
  run.main(BENCHMARK)
