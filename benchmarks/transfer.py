"""Szegedy et al. 2014's transfer tables, and transfer across CNNs.

    python -m benchmarks.transfer --dataset digits   # ~12 minutes, 2 CPU cores

Three studies of adversarial examples made for one model and fed to others:

- **Cross-model (Szegedy's Table 2).** FC10(lambda) softmax regressions
  with weight decay lambda = 1e-4, 1e-2, 1 (an L2 penalty lambda/2 |w|^2),
  the sigmoid networks FC100-100-10 and FC200-200-10 and AE400-10 (a
  softmax on a pretrained autoencoder's 400 features), all on the whole
  training split. For each, L-BFGS adversarial examples of the first
  `attack_examples` training images (untargeted, each image's smallest
  perturbation found by the search over c); the error every model makes on
  every model's examples; the average distortion `sqrt(sum r^2 / n)` per
  image (n pixels), averaged; and Gaussian-noise rows (stddev 0.1, 0.3).
- **Cross-training-set (Tables 3-4).** The training split cut into disjoint
  halves P1 and P2: FC100-100-10 and FC123-456-10 on P1, FC100-100-10' on
  P2; their error on P1, P2 and the test split; L-BFGS examples of the first
  `attack_examples` test images for each; the cross table; the same
  perturbations amplified to stddev `amplify_stddev`; Gaussian noise of the
  same stddevs.
- **Across convolutional architectures** (D'Costa & Sriramanan; Kurakin et
  al.). Wong's, Madry's and Carlini's CNNs and a PreAct ResNet-18, standard
  training; FGSM and PGD (Linf, `eps`) and CW-L2 (minimal L2) examples of
  the test images made on each and evaluated on every one; one matrix per
  attack (cnn_transfer.png).

The published numbers (MNIST) are printed beside ours with a verdict per
claim. Other presets: --dataset mnist (the paper's data), cifar10 (the
CNN study on CIFAR-10 at 8/255; the FC nets on its flattened pixels).
Writes results.json, results.md, cross_model.png and cnn_transfer.png to
--workdir (default runs/transfer-<dataset>); the trained models are
checkpointed there and a rerun reloads them.
"""
import dataclasses
import functools
import os
from typing import Dict, NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from advjax.report import legacy
from advjax import data, models, report, run, training
from advjax.analysis.transfer import fooled_across
from advjax.attacks import base, carlini_wagner_l2, gradient, lbfgs

# Szegedy et al. 2014 (MNIST). Table 2: rows = the model the examples were
# made for, columns = the model evaluated (error %), and the distortion.
CROSS_MODEL = ("fc10-1e-4", "fc10-1e-2", "fc10-1", "fc100_100_10",
               "fc200_200_10", "ae400_10")
LABEL = {"fc100_100_10": "FC100-100-10",
         "fc200_200_10": "FC200-200-10", "ae400_10": "AE400-10",
         "p1-fc100_100_10": "FC100-100-10 (P1)",
         "p1-fc123_456_10": "FC123-456-10 (P1)",
         "p2-fc100_100_10": "FC100-100-10' (P2)",
         "wong_mnist": "Wong CNN", "madry_mnist": "Madry CNN",
         "carlini_mnist": "Carlini CNN", "carlini_cifar": "Carlini CNN",
         "preact_resnet18": "PreAct ResNet-18"}
PUBLISHED_TABLE2 = {
    "fc10-1e-4": ((100, 11.7, 22.7, 2, 3.9, 2.7), 0.062),
    "fc10-1e-2": ((87.1, 100, 35.2, 35.9, 27.3, 9.8), 0.1),
    "fc10-1": ((71.9, 76.2, 100, 48.1, 47, 34.4), 0.14),
    "fc100_100_10": ((28.9, 13.7, 21.1, 100, 6.6, 2), 0.058),
    "fc200_200_10": ((38.2, 14, 23.8, 20.3, 100, 2.7), 0.065),
    "ae400_10": ((23.4, 16, 24.8, 9.4, 6.6, 100), 0.086),
    "noise 0.1": ((5.0, 10.1, 18.3, 0, 0, 0.8), 0.1),
    "noise 0.3": ((15.6, 11.3, 22.7, 5, 4.3, 3.1), 0.3),
}
CROSS_TRAINING = ("p1-fc100_100_10", "p1-fc123_456_10", "p2-fc100_100_10")
# Table 3: error on P1, P2, test (%), min. av. distortion.
PUBLISHED_TABLE3 = {"p1-fc100_100_10": (0, 2.4, 2, 0.062),
                    "p1-fc123_456_10": (0, 2.5, 2.1, 0.059),
                    "p2-fc100_100_10": (2.3, 0, 2.1, 0.058)}
# Table 4: rows the examples' source, columns the evaluated model (%).
PUBLISHED_TABLE4 = {
    "p1-fc100_100_10": (100, 26.2, 5.9),
    "p1-fc123_456_10": (6.25, 100, 5.1),
    "p2-fc100_100_10": (8.2, 8.2, 100),
    "noise": (2.2, 2.6, 2.4),
    "amplified p1-fc100_100_10": (100, 98, 43),
    "amplified p1-fc123_456_10": (96, 100, 22),
    "amplified p2-fc100_100_10": (27, 50, 100),
    "amplified noise": (2.6, 2.8, 2.7),
}
CNN_ATTACKS = ("fgsm", "pgd", "cw_l2")
ATTACK_LABEL = {"fgsm": "FGSM", "pgd": "PGD", "cw_l2": "CW-L2"}


@dataclasses.dataclass(frozen=True)
class TransferConfig(run.Config):
  """Settings (beyond `advjax.run.Config`'s, which train every model).

  Attributes:
    studies: which of 'cross_model', 'cross_training', 'cnn' to run.
    weight_decays: FC10's lambda in the cross-model table (an L2 penalty
      lambda/2 |w|^2 in the loss; the other models train with
      `weight_decay`).
    autoencoder_epochs: reconstruction epochs of AE400-10's autoencoder
      before its softmax is trained (the encoder is then frozen).
    attack_examples: images attacked per study (the first of the training
      split for the cross-model table, of the test split for the others).
    lbfgs_steps, lbfgs_search_steps: L-BFGS iterations per constant c and
      constants tried per image.
    noise_stddevs: the Gaussian-noise rows of the cross-model table.
    amplify_stddev: the stddev the cross-training perturbations are scaled
      to (Table 4's lower half).
    cnn_models: the CNN study's architectures (`advjax.models` names).
    cnn_epochs: their training epochs (Adam at `cnn_learning_rate`).
    resnet_width: the PreAct ResNet-18's base width (the paper's 64; 16 on
      the 8x8 digits, where 64 trains at ~2 s a step on 2 CPU cores).
    cnn_learning_rate: their learning rate.
    eps: FGSM's and PGD's Linf radius in the CNN study.
    pgd_steps: PGD's steps (step 2.5 eps / steps, random start).
    cw_steps, cw_search_steps: CW-L2's Adam steps and binary search steps.
    attack_batch_size: images per attack call.
  """
  studies: Tuple[str, ...] = ("cross_model", "cross_training", "cnn")
  weight_decays: Tuple[float, ...] = (1e-4, 1e-2, 1.)
  autoencoder_epochs: Optional[int] = None
  attack_examples: Optional[int] = None
  lbfgs_steps: int = 30
  lbfgs_search_steps: int = 8
  noise_stddevs: Tuple[float, ...] = (0.1, 0.3)
  amplify_stddev: float = 0.1
  cnn_models: Optional[Tuple[str, ...]] = None
  cnn_epochs: Optional[int] = None
  cnn_learning_rate: float = 1e-3
  resnet_width: Optional[int] = None
  eps: Optional[float] = None
  pgd_steps: int = 20
  cw_steps: int = 100
  cw_search_steps: int = 5
  attack_batch_size: int = 256


_MNIST_CNNS = ("wong_mnist", "madry_mnist", "carlini_mnist",
               "preact_resnet18")
PRESETS = {
    "digits": dict(model="fc100_100_10", epochs=60, batch_size=64,
                   optimizer="adam", learning_rate=1e-3, weight_decay=0.,
                   schedule="constant", autoencoder_epochs=60,
                   attack_examples=256, cnn_models=_MNIST_CNNS,
                   cnn_epochs=8, eps=0.2, resnet_width=16),
    "synthetic": dict(model="fc100_100_10", epochs=2, batch_size=32,
                      optimizer="adam", learning_rate=1e-3, weight_decay=0.,
                      schedule="constant", autoencoder_epochs=2,
                      attack_examples=16, cnn_models=("wong_mnist",
                                                      "carlini_mnist"),
                      cnn_epochs=1, eps=0.1, resnet_width=8),
    "mnist": dict(model="fc100_100_10", epochs=30, batch_size=128,
                  optimizer="adam", learning_rate=1e-3, weight_decay=0.,
                  schedule="constant", autoencoder_epochs=20,
                  attack_examples=1000, cnn_models=_MNIST_CNNS,
                  cnn_epochs=10, eps=0.3, resnet_width=64),
    "cifar10": dict(model="fc100_100_10", epochs=30, batch_size=128,
                    optimizer="adam", learning_rate=1e-3, weight_decay=0.,
                    schedule="constant", autoencoder_epochs=20,
                    attack_examples=1000,
                    cnn_models=("wong_mnist", "madry_mnist", "carlini_cifar",
                                "preact_resnet18"),
                    cnn_epochs=30, eps=8 / 255, resnet_width=64),
}
STUDIES = ("cross_model", "cross_training", "cnn")


def _refine(cfg, preset):
  unknown = set(cfg.studies) - set(STUDIES)
  if not cfg.studies or unknown:
    raise ValueError(f"studies must be some of {STUDIES}; got "
                     f"{cfg.studies}.")
  if not cfg.weight_decays or min(cfg.weight_decays) < 0:
    raise ValueError(f"weight_decays must be >= 0 (one per FC10); got "
                     f"{cfg.weight_decays}.")
  if min(cfg.noise_stddevs + (cfg.amplify_stddev,)) <= 0:
    raise ValueError("noise_stddevs and amplify_stddev must be > 0.")
  if cfg.eps is not None and cfg.eps < 0:
    raise ValueError(f"eps must be >= 0; got {cfg.eps}.")
  if cfg.attack_examples is not None and cfg.attack_examples < 1:
    raise ValueError("attack_examples must be >= 1.")
  for name in cfg.cnn_models or ():
    if name not in models.MODELS:
      raise ValueError(f"Unknown cnn_models entry {name!r}; known: "
                       f"{models.list_models()}.")
  return preset


def resolve(cfg):
  return run.resolve(BENCHMARK, cfg)


def _fc10_name(lam: float) -> str:
  """'fc10-1e-4', 'fc10-0.003', 'fc10-1': FC10 at weight decay lam."""
  exp = np.log10(lam) if lam > 0 else 0.5
  if lam < 1 and exp == round(exp):
    return f"fc10-1e{int(round(exp))}"
  return f"fc10-{lam:g}"


def cross_model_names(cfg) -> Tuple[str, ...]:
  """The cross-model table's models, in order (FC10 per weight decay)."""
  return tuple(_fc10_name(w) for w in cfg.weight_decays) + (
      "fc100_100_10", "fc200_200_10", "ae400_10")


def architecture(cfg, name: str, num_classes: int):
  """The module of a model of this benchmark, from its name."""
  base = name.split("-", 1)[1] if name.startswith(("p1-", "p2-", "cnn-")) \
      else name
  if base.startswith("fc10-"):
    base = "fc10"
  kwargs = {"width": cfg.resnet_width} if base == "preact_resnet18" else {}
  return models.get_model(base, num_classes=num_classes, **kwargs)


def halves(train, seed: int):
  """P1 and P2: the training split cut in two disjoint halves (a fixed
  permutation of `seed`)."""
  n = train.images.shape[0]
  order = np.random.default_rng(seed).permutation(n)
  cut = lambda idx: train._replace(images=np.asarray(train.images)[
      np.sort(idx)], labels=np.asarray(train.labels)[np.sort(idx)])
  return cut(order[:n // 2]), cut(order[n // 2:])


def models_to_train(cfg, env):
  k = env.test.num_classes
  specs = {}
  if "cross_model" in cfg.studies:
    for lam in cfg.weight_decays:
      specs[_fc10_name(lam)] = run.TrainSpec(
          training.methods.standard(), model="fc10",
          config={"weight_decay": lam})
    for name in ("fc100_100_10", "fc200_200_10"):
      specs[name] = run.TrainSpec(training.methods.standard(), model=name)
    ae = models.get_model("ae400_10", num_classes=k)
    pretrained = run.cached(
        cfg, os.path.join(cfg.workdir, "ae400_10", "autoencoder.pkl"),
        {"images": env.train.images[:256], "labels": env.train.labels},
        lambda: jax.device_get(
            training.pretrain_autoencoder(
                ae, env.train, epochs=cfg.autoencoder_epochs,
                batch_size=cfg.batch_size, seed=cfg.seed,
                progress=cfg.progress)))
    specs["ae400_10"] = run.TrainSpec(
        training.methods.standard(), model=ae,
        fit_kwargs={"init_variables": pretrained},
        optimizer=lambda opt: training.freeze(opt, ("encoder", "decoder")),
        settings={"autoencoder_epochs": cfg.autoencoder_epochs,
                  "frozen": "encoder,decoder"})
  if "cross_training" in cfg.studies:
    p1, p2 = halves(env.train, cfg.seed)
    for name, part in zip(CROSS_TRAINING, (p1, p1, p2)):
      specs[name] = run.TrainSpec(training.methods.standard(),
                                  model=name.split("-", 1)[1], train=part)
  if "cnn" in cfg.studies:
    for name in cfg.cnn_models:
      specs[f"cnn-{name}"] = run.TrainSpec(
          training.methods.standard(),
          model=architecture(cfg, name, k),
          config={"epochs": cfg.cnn_epochs, "optimizer": "adam",
                  "learning_rate": cfg.cnn_learning_rate,
                  "weight_decay": 0., "schedule": "constant"})
  return specs


def _predict(env, variables, x, batch: int = 1024) -> np.ndarray:
  fn = jax.jit(lambda v, z: jnp.argmax(env.apply_fn(v, z), -1))
  return np.concatenate([np.asarray(fn(variables, x[i:i + batch]))
                         for i in range(0, len(x), batch)])


def evaluate(cfg, env, name, variables):
  """A model's clean error on the training and test splits (P1 / P2:
  `cross_training`)."""
  del cfg, name
  err = lambda d: float(np.mean(_predict(env, variables, np.asarray(
      d.images)) != np.asarray(d.labels)))
  return {"train_error": err(env.train), "test_error": err(env.test)}


def rms(delta: np.ndarray) -> np.ndarray:
  """Szegedy's distortion per image: `sqrt(sum r^2 / n)` over its n
  pixels."""
  d = np.asarray(delta, np.float64).reshape(len(delta), -1)
  return np.sqrt(np.mean(d * d, axis=1))


def amplify(x: np.ndarray, delta: np.ndarray, stddev: float) -> np.ndarray:
  """`clip(x + delta * stddev / rms(delta))` per image (images whose
  perturbation is 0 stay unchanged)."""
  r = rms(delta)
  scale = np.where(r > 0, stddev / np.maximum(r, 1e-12), 0.)
  return np.clip(x + delta * scale.reshape((-1,) + (1,) * (x.ndim - 1)),
                 0., 1.).astype(np.float32)


def gaussian(x: np.ndarray, stddev: float, seed: int) -> np.ndarray:
  """`clip(x + N(0, stddev^2))`."""
  noise = np.random.default_rng(seed).normal(0., stddev, x.shape)
  return np.clip(x + noise, 0., 1.).astype(np.float32)


class _Compiled:
  """Jitted inference and attacks per architecture, the variables passed
  as arguments: the models of one architecture (the three FC10s, the two
  FC100-100-10s) share one compilation."""

  def __init__(self):
    self._cache = {}

  def _get(self, key, build):
    if key not in self._cache:
      self._cache[key] = build()
    return self._cache[key]

  def model_fn(self, module, variables):
    """`x -> logits` of the module at `variables` (jitted)."""
    apply = self._get(("apply", repr(module)), lambda: jax.jit(
        lambda v, z: module.apply(v, z, train=False)))
    return functools.partial(apply, variables)

  def attack(self, attack, module, variables, x, y, batch, desc, progress,
             **kw):
    """`attack`'s examples of `x` in batches, with a progress bar."""
    def build():
      def run_attack(v, xb, yb, key):
        fn = lambda z: module.apply(v, z, train=False)
        if base.takes_key(attack):
          return attack(fn, xb, yb, key=key, **kw)
        return attack(fn, xb, yb, **kw)
      return jax.jit(run_attack)
    fn = self._get((attack, repr(module), tuple(sorted(kw.items()))), build)
    out = []
    for i in tqdm(range(0, len(x), batch), desc=desc, disable=not progress,
                  leave=False):
      out.append(np.asarray(fn(variables, x[i:i + batch], y[i:i + batch],
                               jax.random.key(i))))
    return np.concatenate(out)


class _Nets(NamedTuple):
  """The models of one study: name -> module, variables, model_fn."""
  modules: Dict
  variables: Dict
  fns: Dict
  compiled: "_Compiled"


def _nets(cfg, env, trained, names, compiled: "_Compiled") -> _Nets:
  k = env.test.num_classes
  modules = {n: architecture(cfg, n, k) for n in names}
  variables = {n: trained[n] for n in names}
  fns = {n: compiled.model_fn(modules[n], variables[n]) for n in names}
  return _Nets(modules, variables, fns, compiled)


def _attack_each(cfg, nets: _Nets, attack, label, x, y, **kw):
  """Per source model: `attack`'s examples of `x` made on it."""
  return {n: nets.compiled.attack(attack, nets.modules[n], nets.variables[n],
                                  x, y, cfg.attack_batch_size,
                                  f"{label} on {n}", cfg.progress, **kw)
          for n in nets.modules}


def _lbfgs_examples(cfg, nets: _Nets, x, y):
  """Per source model: its L-BFGS examples (untargeted, the smallest
  perturbation the search over c finds)."""
  return _attack_each(cfg, nets, lbfgs, "L-BFGS", x, y, targeted=False,
                      steps=cfg.lbfgs_steps,
                      search_steps=cfg.lbfgs_search_steps)


def _error_rows(fns, names, x_by_row, y):
  """row -> [error of each model in `names`] on the images of that row."""
  fooled = fooled_across([fns[n] for n in names], list(x_by_row.values()), y)
  return {row: fooled[i].mean(1).tolist()
          for i, row in enumerate(x_by_row)}


def cross_model(cfg, env, trained, compiled) -> Dict:
  """Szegedy's Table 2 on the first `attack_examples` training images."""
  names = cross_model_names(cfg)
  nets = _nets(cfg, env, trained, names, compiled)
  fns = nets.fns
  n = cfg.attack_examples
  x = np.asarray(env.train.images[:n], np.float32)
  y = np.asarray(env.train.labels[:n], np.int32)
  advs = _lbfgs_examples(cfg, nets, x, y)
  rows = dict(advs)
  for s in cfg.noise_stddevs:
    rows[f"noise {s:g}"] = gaussian(x, s, cfg.seed)
  errors = _error_rows(fns, names, rows, y)
  distortion = {r: float(np.mean(rms(v - x))) for r, v in rows.items()}
  own = {m: errors[m][i] for i, m in enumerate(names)}  # the diagonal
  return {"models": list(names), "n": int(n), "error": errors,
          "distortion": distortion, "own_error": own}


def _predict_fn(fn, x):
  return np.asarray(jnp.argmax(fn(x), -1))


def cross_training(cfg, env, trained, compiled) -> Dict:
  """Szegedy's Tables 3-4 on the first `attack_examples` test images."""
  names = CROSS_TRAINING
  nets = _nets(cfg, env, trained, names, compiled)
  fns = nets.fns
  p1, p2 = halves(env.train, cfg.seed)
  clean = {m: [float(np.mean(_predict_fn(fns[m], np.asarray(d.images))
                             != np.asarray(d.labels)))
               for d in (p1, p2, env.test)] for m in names}
  n = cfg.attack_examples
  x = np.asarray(env.test.images[:n], np.float32)
  y = np.asarray(env.test.labels[:n], np.int32)
  advs = _lbfgs_examples(cfg, nets, x, y)
  distortion = {m: float(np.mean(rms(advs[m] - x))) for m in names}
  matched = float(np.mean(list(distortion.values())))
  rows = dict(advs)
  rows["noise"] = gaussian(x, matched, cfg.seed)
  for m in names:
    rows[f"amplified {m}"] = amplify(x, advs[m] - x, cfg.amplify_stddev)
  rows["amplified noise"] = gaussian(x, cfg.amplify_stddev, cfg.seed + 1)
  return {"models": list(names), "n": int(n), "clean_error": clean,
          "distortion": distortion, "noise_stddev": matched,
          "error": _error_rows(fns, names, rows, y)}


def _cnn_attack(cfg, name):
  if name == "fgsm":
    return gradient.fgsm, {"eps": cfg.eps}
  if name == "pgd":
    return gradient.pgd, {"eps": cfg.eps, "steps": cfg.pgd_steps,
                          "step_size": 2.5 * cfg.eps / cfg.pgd_steps}
  return carlini_wagner_l2, {"steps": cfg.cw_steps,
                             "binary_search_steps": cfg.cw_search_steps}


def cnn_transfer(cfg, env, trained, compiled) -> Dict:
  """Each CNN's FGSM, PGD and CW-L2 examples judged by every CNN."""
  names = tuple(f"cnn-{m}" for m in cfg.cnn_models)
  nets = _nets(cfg, env, trained, names, compiled)
  fns = nets.fns
  n = cfg.attack_examples
  x = np.asarray(env.test.images[:n], np.float32)
  y = np.asarray(env.test.labels[:n], np.int32)
  clean = {m: float(np.mean(_predict_fn(fns[m], x) != y)) for m in names}
  out = {"models": list(names), "n": int(n), "clean_error": clean,
         "error": {}, "l2": {}}
  for attack_name in CNN_ATTACKS:
    attack, kw = _cnn_attack(cfg, attack_name)
    advs = _attack_each(cfg, nets, attack, attack_name, x, y, **kw)
    out["error"][attack_name] = _error_rows(fns, names, advs, y)
    out["l2"][attack_name] = {
        m: float(np.mean(np.sqrt(((advs[m] - x) ** 2).reshape(n, -1).sum(1))))
        for m in names}
  return out


def extra(cfg, env, trained):
  """The three studies (those in `cfg.studies`)."""
  compiled = _Compiled()
  studies = {"cross_model": cross_model, "cross_training": cross_training,
             "cnn": cnn_transfer}
  return {name: study(cfg, env, trained, compiled)
          for name, study in studies.items() if name in cfg.studies}


# --------------------------------------------------------------------------
# The report.
# --------------------------------------------------------------------------
def _pct(v):
  return report.percent(v, 1)


def _label(name):
  name = name.removeprefix("cnn-")
  if name.startswith("fc10-"):
    return f"FC10({name[5:]})"
  return LABEL.get(name, name)


def _pub(v):
  return "-" if v is None else f"{v:g}"


def _off_diagonal(error, names):
  return [error[s][j] for s in names for j, t in enumerate(names) if t != s]


def _cross_model_section(cfg, r):
  names = r["models"]
  header = ["examples for \\ error of"] + [_label(m) for m in names] + [
      "av. distortion", "published (MNIST): errors", "published distortion"]
  rows = []
  for row, errors in r["error"].items():
    pub = PUBLISHED_TABLE2.get(row)
    label = (f"Gaussian noise, stddev {row.split()[1]}" if row.startswith(
        "noise") else _label(row))
    rows.append([label] + [_pct(e) for e in errors] + [
        f"{r['distortion'][row]:.3f}",
        " / ".join(f"{v:g}" for v in pub[0]) if pub else "-",
        _pub(pub[1]) if pub else "-"])
  return "\n".join([
      f"## Cross-model generalization (Szegedy et al.'s Table 2): L-BFGS "
      f"examples of the first {r['n']} training images", "",
      "Error (%) of each column's model on the row's images; the "
      "distortion is `sqrt(sum r^2 / n)` per image, averaged. The published "
      "columns are in the same model order.", "",
      report.table(header, rows), ""])


def _cross_training_section(cfg, r):
  names = r["models"]
  rows = []
  for m in names:
    pub = PUBLISHED_TABLE3[m]
    rows.append([_label(m)] + [_pct(e) for e in r["clean_error"][m]] + [
        f"{r['distortion'][m]:.3f}",
        " / ".join(f"{v:g}" for v in pub)])
  table3 = report.table(
      ("model", "error on P1 %", "error on P2 %", "error on test %",
       "min av. distortion", "published (MNIST): P1 / P2 / test / dist."),
      rows)
  rows = []
  for row, errors in r["error"].items():
    base = row.removeprefix("amplified ")
    label = ("Gaussian noise" if base == "noise" else
             f"Distorted for {_label(base)}")
    if row == "amplified noise":
      label += f", stddev {cfg.amplify_stddev:g}"
    elif row.startswith("amplified"):
      label += f", amplified to stddev {cfg.amplify_stddev:g}"
    elif base == "noise":
      label += f", stddev {r['noise_stddev']:.3f}"
    else:
      label += f" (av. stddev {r['distortion'][base]:.3f})"
    pub = PUBLISHED_TABLE4.get(row)
    rows.append([label] + [_pct(e) for e in errors] + [
        " / ".join(f"{v:g}" for v in pub) if pub else "-"])
  table4 = report.table(["images"] + [_label(m) for m in names] + [
      "published (MNIST)"], rows)
  return "\n".join([
      "## Cross-training-set generalization (Tables 3-4)", "",
      "P1 and P2: disjoint halves of the training split. Table 3, clean "
      "error:", "", table3, "",
      f"Table 4, error (%) on L-BFGS examples of the first {r['n']} test "
      "images:", "", table4, ""])


def _cnn_section(cfg, r):
  names = r["models"]
  parts = [f"## Transfer across convolutional architectures ({r['n']} test "
           f"images; FGSM and PGD-{cfg.pgd_steps} at eps {cfg.eps:.4g}, "
           f"CW-L2 {cfg.cw_search_steps} x {cfg.cw_steps})", "",
           "Clean error: " + ", ".join(
               f"{_label(m)} {_pct(r['clean_error'][m])} %" for m in names)
           + ".", ""]
  for a in CNN_ATTACKS:
    rows = [[_label(s)] + [_pct(e) for e in r["error"][a][s]] + [
        f"{r['l2'][a][s]:.3f}"] for s in names]
    parts += [f"### {ATTACK_LABEL[a]}: error (%) of each column's model",
              "", report.table(["examples made on"] + [_label(m) for m in
                                                       names] + ["mean L2"],
                               rows), ""]
  return "\n".join(parts)


def _claims(cfg, ex):
  claims = []
  cm = ex.get("cross_model")
  if cm:
    names = cm["models"]
    own = [cm["own_error"][m] for m in names]
    claims.append(legacy.Claim(
        "Every model's own L-BFGS examples are all misclassified (100 % "
        "error on the diagonal)", min(own) >= 0.99,
        "own error " + ", ".join(f"{_label(m)} {_pct(e)} %" for m, e in
                                 zip(names, own))))
    off = np.mean(_off_diagonal(cm["error"], names))
    noise = [k for k in cm["error"] if k.startswith("noise")]
    noise_err = np.mean(cm["error"][noise[0]]) if noise else 0.
    claims.append(legacy.Claim(
        "Adversarial examples generalise across models: the other models' "
        f"mean error on them exceeds Gaussian noise of stddev "
        f"{noise[0].split()[1] if noise else '-'} (a larger distortion)",
        bool(off > noise_err),
        f"off-diagonal mean {_pct(off)} % vs noise {_pct(noise_err)} %; "
        "published (MNIST): off-diagonal 2-87 %, noise 0.1: 0-18 %"))
    fc10 = [_fc10_name(w) for w in sorted(cfg.weight_decays)]
    dist = [cm["distortion"][m] for m in fc10]
    claims.append(legacy.Claim(
        "Stronger weight decay needs a larger distortion (FC10(1e-4) < "
        "FC10(1e-2) < FC10(1): 0.062 < 0.1 < 0.14 on MNIST)",
        bool(np.all(np.diff(dist) > 0)),
        ", ".join(f"{_label(m)}: {d:.3f}" for m, d in zip(fc10, dist))))
  ct = ex.get("cross_training")
  if ct:
    names = ct["models"]
    off = np.mean(_off_diagonal(ct["error"], names))
    amp = {f"amplified {s}": ct["error"][f"amplified {s}"] for s in names}
    amp_off = np.mean([amp[f"amplified {s}"][j] for s in names
                       for j, t in enumerate(names) if t != s])
    noise = np.mean(ct["error"]["noise"])
    claims.append(legacy.Claim(
        "Adversarial examples generalise across disjoint training sets: "
        "the other models' error exceeds noise of the same stddev",
        bool(off > noise),
        f"off-diagonal mean {_pct(off)} % vs noise {_pct(noise)} % "
        "(published MNIST: 5.1-26.2 % vs 2.2-2.6 %)"))
    claims.append(legacy.Claim(
        f"Amplified to stddev {cfg.amplify_stddev:g}, they transfer much "
        "more (published: 22-98 %), while noise of that stddev does not",
        bool(amp_off > off and amp_off > np.mean(
            ct["error"]["amplified noise"])),
        f"off-diagonal {_pct(off)} % -> {_pct(amp_off)} %; noise "
        f"{_pct(np.mean(ct['error']['amplified noise']))} %"))
  cnn = ex.get("cnn")
  if cnn:
    names = cnn["models"]
    clean = np.mean(list(cnn["clean_error"].values()))
    off = {a: np.mean(_off_diagonal(cnn["error"][a], names))
           for a in CNN_ATTACKS}
    claims.append(legacy.Claim(
        "FGSM and PGD examples transfer across CNN architectures (the "
        "targets' error well above their clean error; D'Costa & "
        "Sriramanan, Kurakin et al.)",
        bool(min(off["fgsm"], off["pgd"]) > clean + 0.1),
        f"off-diagonal FGSM {_pct(off['fgsm'])} %, PGD {_pct(off['pgd'])} "
        f"% vs clean {_pct(clean)} %"))
    claims.append(legacy.Claim(
        "Minimal CW-L2 examples transfer worst (they stop at the source's "
        "decision boundary)", bool(off["cw_l2"] < min(off["fgsm"],
                                                       off["pgd"])),
        f"off-diagonal CW-L2 {_pct(off['cw_l2'])} % vs FGSM "
        f"{_pct(off['fgsm'])} %, PGD {_pct(off['pgd'])} %"))
  return claims


def _heatmap(path, panels, names, title):
  plt = report.pyplot()
  fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.9),
                           squeeze=False)
  labels = [_label(m) for m in names]
  for ax, (panel, error) in zip(axes[0], panels.items()):
    rows = [r for r in error if r in names]
    m = 100 * np.asarray([error[r] for r in rows])
    ax.imshow(m, vmin=0, vmax=100, cmap="viridis")
    for i in range(m.shape[0]):
      for j in range(m.shape[1]):
        ax.text(j, i, f"{m[i, j]:.0f}", ha="center", va="center",
                color="w" if m[i, j] < 60 else "k", fontsize=7)
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right",
                  fontsize=7)
    ax.set_yticks(range(len(rows)), [_label(r) for r in rows], fontsize=7)
    ax.set_xlabel("evaluated on")
    ax.set_title(panel, fontsize=9)
  axes[0][0].set_ylabel("examples made on")
  fig.suptitle(title, fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def make_report(cfg, results):
  ex = results.get("extra", {})
  parts = [f"# Transfer of adversarial examples ({cfg.dataset}, "
           f"{jax.default_backend()})", "",
           "Published numbers: Szegedy et al. 2014 on MNIST (FC nets on "
           "28x28 images); ours on the dataset named in the title.", ""]
  trained = [[_label(n), _pct(m["train_error"]), _pct(m["test_error"])]
             for n, m in results["models"].items()]
  parts += ["## Models (clean error %)", "",
            report.table(("model", "on the training split", "on test"),
                         trained), ""]
  figures = {}
  if "cross_model" in ex:
    parts.append(_cross_model_section(cfg, ex["cross_model"]))
    figures["cross_model.png"] = lambda p: _heatmap(
        p, {"L-BFGS (Table 2)": ex["cross_model"]["error"]},
        ex["cross_model"]["models"], "Cross-model error (%)")
  if "cross_training" in ex:
    parts.append(_cross_training_section(cfg, ex["cross_training"]))
  if "cnn" in ex:
    parts.append(_cnn_section(cfg, ex["cnn"]))
    figures["cnn_transfer.png"] = lambda p: _heatmap(
        p, {ATTACK_LABEL[a]: ex["cnn"]["error"][a] for a in CNN_ATTACKS},
        ex["cnn"]["models"], "Transfer across CNNs: error (%)")
  return legacy.Report("\n".join(parts), figures, _claims(cfg, ex))


BENCHMARK = run.Benchmark("transfer", TransferConfig, PRESETS,
                          models_to_train, evaluate, make_report,
                          doc=__doc__, refine=_refine, extra=extra)


def main(argv=None):
  return run.main(BENCHMARK, argv)


if __name__ == "__main__":
  main()
