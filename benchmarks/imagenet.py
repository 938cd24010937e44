"""FGSM, BIM, PGD and CW-L2 on a pretrained VGG11 over an ImageNet subset.

    python -m benchmarks.imagenet --data-dir DIR --checkpoint vgg11.pth \\
        --class-index imagenet_class_index.json   # GPU; ~7 h on 2 CPU cores

The fourth source study (seed 004): torchvision's VGG11 pretrained on
ImageNet (`vgg11-8a719046.pth`, the user's download; converted by
`advjax.zoo`, ImageNet normalisation built in), 30 classes x 5 validation
images that the model classifies correctly, attacked with untargeted FGSM,
BIM and PGD at eps 0.1 and 0.6 (its Tables 1-2, the step counts of its
tables), targeted FGSM and BIM towards a random other class over an eps
grid (its Figure 6: top-5 accuracy vs eps), and targeted CW-L2 (its Table
3: target reached, top-1 / top-5, and top-1 / top-5 accuracy after the
attack). eps is in [0, 1] pixel units (the paper does not say which units
its eps has). `DIR` is an ImageFolder directory (`DIR/validation/<wnid>/*`
or `DIR/val/<wnid>/*`) or, with `--dataset imagenet2012`, a prepared tfds
copy; `--classes 30 --per-class 5` pick the first 30 classes of the index
and the first 5 correctly classified images of each. Writes results.json,
results.md, targeted.png and examples.png to --workdir (default
runs/imagenet-folder).

Cost: about 600 input gradients per image (500 of them CW-L2's 5 x 100
steps, fewer with its early abort); one VGG11 input gradient at 224x224
takes 0.28 s on 2 CPU cores (measured, batch 8), so ~7 hours for the 150
images there, minutes on a GPU. Not run here: no ImageNet images or VGG11
weights can be downloaded on this machine.

Published (VGG11, 150 images; top-1 / top-5 %): eps 0.1: natural 100 / 100,
FGSM 2.6 / 19.3, BIM (1 step) 2.6 / 26, PGD (6 steps) 30 / 72.6; eps 0.6:
FGSM 2 / 7.9, BIM (2 steps) 0.6 / 10.6, PGD 12.6 / 33.9; CW-L2: target
reached 100 / 100, accuracy 100 / 51.73 (as printed: its caption calls the
second row the misclassification rate).
"""
import dataclasses
import functools
import os
from typing import Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from advjax.report import legacy
from advjax import data, evaluation, report, run
from advjax.attacks import carlini_wagner_l2, gradient

# Seed 004, Tables 1-3: (top-1 %, top-5 %) per method and eps.
PUBLISHED = {
    0.1: {"natural": (100, 100), "fgsm": (2.6, 19.3), "bim": (2.6, 26),
          "pgd": (30, 72.6)},
    0.6: {"natural": (100, 100), "fgsm": (2, 7.9), "bim": (0.6, 10.6),
          "pgd": (12.6, 33.9)},
}
PUBLISHED_CW = {"target_reached": (100, 100), "accuracy": (100, 51.73)}
TOP_K = (1, 5)


@dataclasses.dataclass(frozen=True)
class ImageNetConfig(run.Config):
  """Settings (beyond `advjax.run.Config`'s; `dataset` is 'folder',
  'imagenet2012' or 'imagenette').

  Attributes:
    checkpoint: the PyTorch checkpoint (torchvision's vgg11 by default).
    arch: its `advjax.zoo` architecture.
    class_index: `imagenet_class_index.json` (or a text file of wnids) for a
      folder dataset, so labels are ImageNet's.
    split: the split the images come from.
    classes: how many classes (the first of the index), or 0 for all.
    per_class: images per class.
    only_correct: keep only images the model classifies correctly (the
      study's choice), the first `per_class` of each class among
      `candidates_per_class`.
    candidates_per_class: images per class looked at to find them.
    size: the centre crop (224).
    eps: the untargeted radii (Tables 1-2).
    bim_steps: BIM's steps at each eps (the study's 1 and 2).
    pgd_steps: PGD's steps (6).
    targeted_eps: the eps grid of the targeted FGSM / BIM (Figure 6).
    targeted_bim_steps: the targeted BIM's steps.
    cw_steps, cw_search_steps, cw_learning_rate: CW-L2's Adam steps, binary
      search steps and step size.
    examples: images in the figure of clean / perturbation / adversarial.
    device_batch_size: examples per device per call.
  """
  dataset: str = "folder"
  checkpoint: Optional[str] = None
  arch: str = "vgg11"
  class_index: Optional[str] = None
  split: str = "validation"
  classes: int = 30
  per_class: int = 5
  only_correct: bool = True
  candidates_per_class: int = 20
  size: int = 224
  eps: Tuple[float, ...] = (0.1, 0.6)
  bim_steps: Tuple[int, ...] = (1, 2)
  pgd_steps: int = 6
  targeted_eps: Tuple[float, ...] = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1,
                                     0.3, 0.6)
  targeted_bim_steps: int = 10
  cw_steps: int = 100
  cw_search_steps: int = 5
  cw_learning_rate: float = 0.01
  examples: int = 4
  eval_batch_size: int = 32
  device_batch_size: Optional[int] = None


_PRESET = dict(model=None, epochs=0, batch_size=1, optimizer="sgd",
               learning_rate=0.0, weight_decay=0.0, schedule="constant")
PRESETS = {"folder": _PRESET, "imagenet2012": _PRESET, "imagenette": _PRESET}


def _refine(cfg, preset):
  if not cfg.checkpoint:
    raise ValueError("benchmarks.imagenet needs --checkpoint FILE: the "
                     "PyTorch checkpoint of the model (torchvision's "
                     "vgg11-8a719046.pth for the study).")
  if len(cfg.bim_steps) != len(cfg.eps):
    raise ValueError(f"--bim-steps needs one step count per eps "
                     f"({len(cfg.eps)}); got {cfg.bim_steps}.")
  if min(cfg.eps + cfg.targeted_eps) < 0:
    raise ValueError("eps must be >= 0.")
  return preset


def load_data(cfg):
  """The candidate images: the first `classes` classes, up to
  `candidates_per_class` images each (lazily: decoded when read)."""
  kwargs = {"size": cfg.size, "classes": cfg.classes or None,
            "per_class": None}
  if cfg.dataset == "folder" and cfg.class_index:
    kwargs["class_index"] = cfg.class_index
  pool = data.load(cfg.dataset, cfg.split, data_dir=cfg.data_dir, **kwargs)
  labels = np.asarray(pool.labels)
  keep = np.concatenate([np.flatnonzero(labels == c)[:(
      cfg.candidates_per_class if cfg.only_correct else cfg.per_class)]
                         for c in np.unique(labels)])
  images = np.asarray(pool.images[keep])
  test = data.Dataset(images, labels[keep].astype(np.int32),
                      pool.num_classes, pool.name, pool.split,
                      pool.class_names)
  return None, test


def models_to_evaluate(cfg, env):
  del env
  return {cfg.arch: run.LoadTorch(cfg.arch, cfg.checkpoint, {})}


def _select(cfg, env, variables):
  """Per class, the first `per_class` images (correctly classified ones
  with `only_correct`)."""
  x, y = env.test.images, env.test.labels
  predict = jax.jit(lambda v, z: jnp.argmax(env.apply_fn(v, z), -1))
  pred = np.concatenate([np.asarray(predict(variables, x[i:i + 32]))
                         for i in range(0, len(x), 32)])
  rows, short = [], {}
  for c in np.unique(y):
    idx = np.flatnonzero(y == c)
    if cfg.only_correct:
      idx = idx[pred[idx] == c]
    if len(idx) < cfg.per_class:
      short[int(c)] = int(len(idx))
    rows.append(idx[:cfg.per_class])
  rows = np.concatenate(rows)
  return x[rows], y[rows], {"candidates": int(len(x)),
                            "candidate_top1": float(np.mean(pred == y)),
                            "classes_short": short}


def _bim(model_fn, x, y, *, eps, steps, targeted=False):
  """BIM with step size eps / steps (so its last step reaches eps)."""
  return gradient.bim(model_fn, x, y, eps=eps, steps=steps,
                      step_size=eps / steps, targeted=targeted)


def _pgd(model_fn, x, y, *, eps, key, steps):
  """Madry's PGD: random start, step 2.5 eps / steps."""
  return gradient.pgd(model_fn, x, y, eps=eps, key=key, steps=steps,
                      step_size=2.5 * eps / steps)


def _cw(model_fn, x, y, *, eps, steps, search_steps, learning_rate):
  """Targeted CW-L2 (no radius: `eps` is ignored)."""
  del eps
  return carlini_wagner_l2(model_fn, x, y, targeted=True, steps=steps,
                           binary_search_steps=search_steps,
                           learning_rate=learning_rate)


def _ra(cfg, env, variables, x, y, attack, eps, targets=None, seed=0):
  r = evaluation.robust_accuracy(
      env.apply_fn, variables, x, y, attack=attack, eps=eps,
      batch_size=cfg.eval_batch_size, device_batch_size=cfg.device_batch_size,
      key=jax.random.key(seed), progress=cfg.progress, top_k=TOP_K,
      targets=targets)
  out = {"eps": [float(e) for e in r.eps],
         "top1": r.accuracy_topk[:, 0].tolist(),
         "top5": r.accuracy_topk[:, 1].tolist(),
         "clean_top1": float(r.clean_accuracy_topk[0]),
         "clean_top5": float(r.clean_accuracy_topk[1])}
  if targets is not None:
    out["target_top1"] = r.target_success_topk[:, 0].tolist()
    out["target_top5"] = r.target_success_topk[:, 1].tolist()
  return out


def evaluate(cfg, env, name, variables):
  """Tables 1-3 and Figure 6 of the study on one model."""
  del name
  x, y, selection = _select(cfg, env, variables)
  rng = np.random.default_rng(cfg.seed)
  k = env.test.num_classes
  targets = ((y + 1 + rng.integers(0, k - 1, len(y))) % k).astype(np.int32)
  out = {"n": int(len(y)), "selection": selection,
         "class_names": [env.test.class_names[c] if env.test.class_names
                         else str(c) for c in np.unique(y)],
         "untargeted": {}}
  for eps, bim_steps in zip(cfg.eps, cfg.bim_steps):
    rows = {
        "fgsm": _ra(cfg, env, variables, x, y, gradient.fgsm, [eps]),
        "bim": _ra(cfg, env, variables, x, y,
                   functools.partial(_bim, steps=bim_steps), [eps]),
        "pgd": _ra(cfg, env, variables, x, y,
                   functools.partial(_pgd, steps=cfg.pgd_steps), [eps]),
    }
    rows["natural"] = {"top1": [rows["fgsm"]["clean_top1"]],
                       "top5": [rows["fgsm"]["clean_top5"]]}
    out["untargeted"][f"{eps:g}"] = {**rows, "bim_steps": bim_steps}
  out["targeted"] = {
      "fgsm": _ra(cfg, env, variables, x, y,
                  functools.partial(gradient.fgsm, targeted=True),
                  list(cfg.targeted_eps), targets),
      "bim": _ra(cfg, env, variables, x, y,
                 functools.partial(_bim, steps=cfg.targeted_bim_steps,
                                   targeted=True),
                 list(cfg.targeted_eps), targets),
  }
  out["cw"] = _ra(cfg, env, variables, x, y, functools.partial(
      _cw, steps=cfg.cw_steps, search_steps=cfg.cw_search_steps,
      learning_rate=cfg.cw_learning_rate), [0.0], targets)
  out["examples"] = _examples(cfg, env, variables, x, y, targets)
  return out


def _examples(cfg, env, variables, x, y, targets):
  """A few images, their FGSM / PGD (first eps) and CW-L2 versions."""
  n = min(cfg.examples, len(y))
  if n == 0:
    return {}
  xs, ys, ts = x[:n], y[:n], targets[:n]
  model_fn = lambda z: env.apply_fn(variables, z)
  eps = cfg.eps[0]
  advs = {
      f"FGSM eps {eps:g}": gradient.fgsm(model_fn, xs, ys, eps=eps),
      f"PGD-{cfg.pgd_steps} eps {eps:g}": _pgd(
          model_fn, xs, ys, eps=eps, key=jax.random.key(cfg.seed),
          steps=cfg.pgd_steps),
      "CW-L2 (targeted)": _cw(model_fn, xs, ts, eps=0.,
                              steps=cfg.cw_steps,
                              search_steps=cfg.cw_search_steps,
                              learning_rate=cfg.cw_learning_rate),
  }
  preds = {k: np.asarray(jnp.argmax(model_fn(v), -1)).tolist()
           for k, v in advs.items()}
  # The images go to an .npz beside the results, not into results.json.
  path = os.path.join(cfg.workdir, "examples.npz")
  np.savez_compressed(path, x=np.asarray(xs), **{
      f"adv{i}": np.asarray(v) for i, v in enumerate(advs.values())})
  return {"file": path, "attacks": list(advs), "y": ys.tolist(),
          "targets": ts.tolist(),
          "clean_pred": np.asarray(jnp.argmax(model_fn(xs), -1)).tolist(),
          "pred": preds}


def _pct(v):
  return report.percent(v, 1)


def _table(cfg, results) -> str:
  rows = [f"# Attacks on {cfg.arch} over an ImageNet subset "
          f"({cfg.dataset}, {jax.default_backend()})", ""]
  for name, c in results["models"].items():
    sel = c["selection"]
    rows += [f"## {name}: {c['n']} images ({len(c['class_names'])} classes"
             f" x up to {cfg.per_class}; picked from {sel['candidates']} "
             f"candidates, top-1 {_pct(sel['candidate_top1'])} % on them"
             + (f"; classes with too few correct: {sel['classes_short']}"
                if sel["classes_short"] else "") + ")", ""]
    for eps, t in c["untargeted"].items():
      pub = PUBLISHED.get(float(eps), {})
      rows += [f"### Untargeted, eps {eps} (the study's Table "
               f"{1 if float(eps) == 0.1 else 2 if float(eps) == 0.6 else '-'}"
               ")", "",
               "| method | steps | top-1 % | top-5 % | published top-1 | "
               "published top-5 |", "|---|---:|---:|---:|---:|---:|"]
      steps = {"natural": "-", "fgsm": 1, "bim": t["bim_steps"],
               "pgd": cfg.pgd_steps}
      for m in ("natural", "fgsm", "bim", "pgd"):
        p = pub.get(m, (None, None))
        rows.append(f"| {m.upper() if m != 'natural' else 'Natural'} | "
                    f"{steps[m]} | {_pct(t[m]['top1'][0])} | "
                    f"{_pct(t[m]['top5'][0])} | "
                    f"{'-' if p[0] is None else p[0]} | "
                    f"{'-' if p[1] is None else p[1]} |")
      rows.append("")
    rows += ["### Targeted FGSM and BIM (the study's Figure 6: top-5 "
             "accuracy vs eps; targeted.png)", "",
             "| eps | FGSM top-5 acc % | FGSM target in top-5 % | "
             f"BIM-{cfg.targeted_bim_steps} top-5 acc % | BIM target in "
             "top-5 % |", "|---:|---:|---:|---:|---:|"]
    tg = c["targeted"]
    for j, e in enumerate(tg["fgsm"]["eps"]):
      rows.append(f"| {e:g} | {_pct(tg['fgsm']['top5'][j])} | "
                  f"{_pct(tg['fgsm']['target_top5'][j])} | "
                  f"{_pct(tg['bim']['top5'][j])} | "
                  f"{_pct(tg['bim']['target_top5'][j])} |")
    cw = c["cw"]
    rows += ["", f"### Targeted CW-L2 ({cfg.cw_search_steps} x "
             f"{cfg.cw_steps} steps; the study's Table 3)", "",
             "| metric | top-1 % | top-5 % | published top-1 | published "
             "top-5 |", "|---|---:|---:|---:|---:|",
             f"| target reached | {_pct(cw['target_top1'][0])} | "
             f"{_pct(cw['target_top5'][0])} | "
             f"{PUBLISHED_CW['target_reached'][0]} | "
             f"{PUBLISHED_CW['target_reached'][1]} |",
             f"| accuracy after the attack | {_pct(cw['top1'][0])} | "
             f"{_pct(cw['top5'][0])} | - | - |",
             f"| misclassified after the attack | "
             f"{_pct(1 - cw['top1'][0])} | {_pct(1 - cw['top5'][0])} | "
             f"{PUBLISHED_CW['accuracy'][0]} | "
             f"{PUBLISHED_CW['accuracy'][1]} |", "",
             "(The study prints its second row as 'Accuracy' 100 / 51.73 "
             "and calls it the misclassification rate in its caption; it "
             "is set beside ours as misclassification.)", ""]
  return "\n".join(rows)


def _plot_targeted(results, path):
  plt = report.pyplot()
  fig, ax = plt.subplots(figsize=(5.5, 3.8))
  for name, c in results["models"].items():
    for m, style in (("fgsm", "o-"), ("bim", "s-")):
      t = c["targeted"][m]
      ax.plot(t["eps"], [100 * v for v in t["top5"]], style,
              label=f"{name} targeted {m.upper()}: top-5 accuracy")
      ax.plot(t["eps"], [100 * v for v in t["target_top5"]],
              style.replace("-", ":"),
              label=f"{name} targeted {m.upper()}: target in top-5")
  ax.set_xscale("log")
  ax.set_xlabel("eps (Linf, [0, 1] pixels)")
  ax.set_ylabel("%")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def _plot_examples(results, path):
  plt = report.pyplot()
  c = next(iter(results["models"].values()))
  ex = c["examples"]
  if not ex:
    return
  arrays = np.load(ex["file"])
  x = arrays["x"]
  names = ex["attacks"]
  n = len(x)
  fig, axes = plt.subplots(n, 1 + 2 * len(names),
                           figsize=(1.8 * (1 + 2 * len(names)), 1.9 * n),
                           squeeze=False)
  for i in range(n):
    axes[i, 0].imshow(np.clip(x[i], 0, 1))
    axes[i, 0].set_title(f"clean: {ex['clean_pred'][i]}", fontsize=7)
    for j, name in enumerate(names):
      adv = arrays[f"adv{j}"][i]
      delta = adv - x[i]
      scale = max(float(np.abs(delta).max()), 1e-12)
      axes[i, 1 + 2 * j].imshow(0.5 + 0.5 * delta / scale)
      axes[i, 1 + 2 * j].set_title(f"{name}\nx{1 / scale:.3g}", fontsize=6)
      axes[i, 2 + 2 * j].imshow(np.clip(adv, 0, 1))
      axes[i, 2 + 2 * j].set_title(f"-> {ex['pred'][name][i]}", fontsize=7)
  for ax in axes.flat:
    ax.axis("off")
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def claims(results):
  """What must hold whatever the model: the attacks only lower accuracy."""
  out = []
  for name, c in results["models"].items():
    for eps, t in c["untargeted"].items():
      nat = t["natural"]["top1"][0]
      ok = all(t[m]["top1"][0] <= nat + 1e-9 and
               t[m]["top1"][0] <= t[m]["top5"][0] + 1e-9
               for m in ("fgsm", "bim", "pgd"))
      out.append(legacy.Claim(
          f"{name}, eps {eps}: every attack's top-1 accuracy is at most the "
          "natural one and at most its own top-5", ok,
          ", ".join(f"{m} {_pct(t[m]['top1'][0])}/{_pct(t[m]['top5'][0])}"
                    for m in ("fgsm", "bim", "pgd"))))
  return out


def make_report(cfg, results) -> legacy.Report:
  return legacy.Report(
      _table(cfg, results),
      {"targeted.png": functools.partial(_plot_targeted, results),
       "examples.png": functools.partial(_plot_examples, results)},
      claims(results))


BENCHMARK = run.Benchmark("imagenet", ImageNetConfig, PRESETS,
                          models_to_evaluate, evaluate, make_report,
                          doc=__doc__, refine=_refine, data=load_data)

if __name__ == "__main__":
  run.main(BENCHMARK)
