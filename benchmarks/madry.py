"""Madry et al. adversarial training vs standard training, under PGD and AutoAttack.

    python -m benchmarks.madry --dataset digits   # ~1.5 minutes, 2 CPU cores

Measured on digits (eps 0.2, Wong's CNN, 360 test images): standard 97.2 %
clean, 0.3 % under PGD-20 x 4 and AutoAttack; Madry-trained 97.8 % clean,
59.4 % under PGD-20 x 4 and 55.6 % under AutoAttack, which breaks 14
examples PGD calls robust. Madry et al.'s loss concentration (10^3 PGD-100
restarts on each of the first 5 test images): the best restart is 0-18 %
above the median one on the standard model (losses on a few plateaus), up
to 2.1x on the robust one (tiny losses, 0.25 -> 0.53). D'Costa &
Sriramanan's claims (Adam vs SGD, the drop past the training eps) are
checked too. Other presets: --dataset mnist (eps 0.3, PGD-40
step 0.01, Madry's CNN), cifar10 (eps 8/255, PGD-7 step 2/255, PreAct
ResNet-18, SGD piecewise), fashion_mnist, cifar100, svhn_cropped; --method
madry | fgsm_mix | fgsm_rs | trades | mart | standard; --eps-warmup-epochs N
ramps the training eps up from 0 over N epochs. Writes results.json,
results.md, robust_accuracy_vs_eps.png, attack_convergence.png and
loss_concentration.png to
--workdir (default runs/madry-<dataset>); trained models are checkpointed
there and a rerun resumes or reloads them.
"""
import dataclasses
import functools
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from advjax import evaluation, losses, report, run, training
from advjax.attacks import gradient
from advjax.training import methods, recipes


@dataclasses.dataclass(frozen=True)
class MadryConfig(run.Config):
  """Settings of a run; None fields take the dataset's preset.

  Attributes:
    method: the adversarial training method (a training preset).
    eps: the Linf radius of training and evaluation (e.g. 0.3, 0.0314).
    eps_warmup_epochs: ramp the training eps linearly from 0 over this many
      epochs (0: the full eps from the first step).
    train_steps: PGD steps of the inner attack.
    train_step_size: PGD step size of the inner attack.
    eval_steps: PGD steps of the evaluation.
    eval_restarts: PGD random restarts of the evaluation.
    eps_grid_points: points of the evaluation eps grid, 0 .. 2 eps.
    sigma: fgsm_mix's clean weight.
    predicted_labels: fgsm_mix attacks the predicted labels.
    beta: the robustness weight of trades and mart.
    convergence_steps: PGD steps of the attack-convergence curves.
    convergence_examples: test examples of the convergence curves.
    autoattack: run AutoAttack (standard) at eps on each model.
    autoattack_steps: APGD/FAB iterations of AutoAttack.
    autoattack_queries: Square's queries.
    concentration_examples: test images (the first ones) of the loss
      concentration study (Madry et al.: PGD from many random starts).
    concentration_restarts: random restarts per image (Madry et al.: 10^5;
      10^3 run in seconds on CPU), batched under one jit per image.
    concentration_steps: PGD steps of each restart (step 2.5 eps / steps).
    concentration_bins: histogram bins of the final losses.
  """
  method: str = "madry"
  eps: Optional[float] = None
  eps_warmup_epochs: int = 0
  train_steps: Optional[int] = None
  train_step_size: Optional[float] = None
  eval_steps: Optional[int] = None
  eval_restarts: Optional[int] = None
  eps_grid_points: int = 17
  sigma: float = 0.5
  predicted_labels: bool = True
  beta: float = 6.0
  convergence_steps: int = 100
  convergence_examples: int = 256
  autoattack: bool = True
  autoattack_steps: int = 100
  autoattack_queries: int = 5000
  concentration_examples: int = 5
  concentration_restarts: int = 1000
  concentration_steps: int = 100
  concentration_bins: int = 40


PRESETS = recipes.MADRY
# Wong, Rice, Kolter 2020: FGSM-RS with a cyclic schedule, 15 epochs.
METHOD_PRESETS = {("cifar10", "fgsm_rs"): dict(epochs=15, schedule="cyclic",
                                                learning_rate=0.2)}
METHODS = ("madry", "fgsm_mix", "fgsm_rs", "trades", "mart", "standard")

# DESIGN.md section 5: (clean %, robust %, setting).
PUBLISHED = {
    ("mnist", "madry"): (98.5, 89.6, "Madry et al. 2018, PGD-100 x 50 restarts"),
    ("cifar10", "madry"): (87.3, 45.8, "Madry et al. 2018, PGD-20"),
    ("cifar10", "fgsm_rs"): (86.0, 46.0, "Wong et al. 2020, PGD-50 x 10"),
}
_DATASET_NAMES = {"mnist": "MNIST", "cifar10": "CIFAR-10"}
# What D'Costa & Sriramanan quote of Madry et al. and find themselves
# (dataset, finding); numbers only where the source gives them.
QUOTED = (
    ("MNIST", "Madry et al.'s Linf-trained net: 89 % under PGD (their "
     "Figure 4)"),
    ("CIFAR-10", "Madry et al.'s Linf-trained net: 45 % under PGD; in their "
     "challenge no attack brought it below 41 %"),
    ("MNIST, CIFAR-10", "Madry et al.: PGD from 10^5 random starts reaches "
     "relatively similar losses, no point of much higher loss (qualitative "
     "in the source)"),
    ("MNIST, CIFAR-10", "D'Costa & Sriramanan, Figure 6: their Linf-trained "
     "nets keep their accuracy up to the training eps; on MNIST a sharp drop "
     "shortly after (qualitative)"),
    ("ImageNet", "D'Costa & Sriramanan, Figure 18: at a fixed eps Adam (lr "
     "1e-3) is a much better PGD optimiser than SGD (lr 0.07) (qualitative)"),
)


def _refine(cfg, preset):
  if cfg.method not in METHODS:
    raise ValueError(f"Unknown method {cfg.method!r}; use one of {METHODS}.")
  for name in ("concentration_examples", "concentration_restarts",
               "concentration_steps", "concentration_bins"):
    if getattr(cfg, name) < 1:
      raise ValueError(f"MadryConfig.{name} must be >= 1, got "
                       f"{getattr(cfg, name)}.")
  return {**preset, **METHOD_PRESETS.get((cfg.dataset, cfg.method), {})}


def train_method(cfg, env) -> training.Method:
  """The config's adversarial training method, its eps ramped up over
  `eps_warmup_epochs` when set."""
  eps = cfg.eps
  if cfg.eps_warmup_epochs:
    steps_per_epoch = max(env.train.size // cfg.batch_size, 1)
    eps = optax.linear_schedule(0., cfg.eps,
                                cfg.eps_warmup_epochs * steps_per_epoch)
  pgd = dict(steps=cfg.train_steps, step_size=cfg.train_step_size)
  build = {
      "madry": lambda: methods.madry(eps, **pgd),
      "trades": lambda: methods.trades(eps, beta=cfg.beta, **pgd),
      "mart": lambda: methods.mart(eps, beta=cfg.beta, **pgd),
      "fgsm_mix": lambda: methods.fgsm_mix(
          eps, sigma=cfg.sigma, predicted_labels=cfg.predicted_labels),
      "fgsm_rs": lambda: methods.fgsm_rs(eps),
  }
  return build[cfg.method]()


def models(cfg, env):
  specs = {"standard": run.TrainSpec(methods.standard())}
  if cfg.method != "standard":
    specs[cfg.method] = run.TrainSpec(train_method(cfg, env), settings={
        k: getattr(cfg, k) for k in ("method", "eps", "eps_warmup_epochs",
                                     "train_steps", "train_step_size",
                                     "sigma", "predicted_labels", "beta")})
  return specs


def eps_grid(cfg):
  return np.linspace(0., 2. * cfg.eps, cfg.eps_grid_points)


def evaluate(cfg, env, name, variables):
  """PGD over the eps grid, AutoAttack at eps, attack convergence."""
  del name
  grid = eps_grid(cfg)
  i_eps = int(np.argmin(np.abs(grid - cfg.eps)))
  attack = functools.partial(gradient.pgd, steps=cfg.eval_steps,
                             restarts=cfg.eval_restarts)
  test = env.test
  ra = evaluation.robust_accuracy(
      env.apply_fn, variables, test.images, test.labels, attack=attack,
      eps=grid, batch_size=cfg.eval_batch_size,
      key=jax.random.key(cfg.seed + 1), progress=cfg.progress)
  out = {"clean_accuracy": ra.clean_accuracy,
         "robust_accuracy": float(ra.accuracy[i_eps]),
         "accuracy_vs_eps": ra.accuracy.tolist(), "autoattack": None}
  if cfg.autoattack:
    aa = evaluation.autoattack(
        env.apply_fn, variables, test.images, test.labels, eps=cfg.eps,
        key=jax.random.key(cfg.seed + 2), batch_size=cfg.eval_batch_size,
        steps=cfg.autoattack_steps, queries=cfg.autoattack_queries,
        progress=cfg.progress)
    out["autoattack"] = {
        "robust_accuracy": aa.robust_accuracy,
        "stages": dict(zip(aa.attacks, aa.accuracy.tolist())),
        "seconds": dict(zip(aa.attacks, aa.seconds.tolist())),
        "pgd_robust_broken": int(np.sum(ra.correct[i_eps] & ~aa.robust))}
  n = min(cfg.convergence_examples, test.size)
  out["convergence"] = _convergence(cfg, env.apply_fn, variables,
                                    jnp.asarray(test.images[:n]),
                                    jnp.asarray(test.labels[:n]))
  out["concentration"] = _concentration(cfg, env.apply_fn, variables, test)
  return out


def _concentration(cfg, apply_fn, variables, test):
  """Madry et al.'s loss concentration: per test image, the cross-entropy
  at the end of `concentration_restarts` PGD-`concentration_steps` runs at
  eps, each from its own uniform random start (per-restart keys, so a
  restart's run does not depend on the others), batched under one jit."""
  r = cfg.concentration_restarts

  @jax.jit
  def restarts(v, x, y, key):
    model_fn = lambda z: apply_fn(v, z)
    xb, yb = jnp.repeat(x[None], r, 0), jnp.full((r,), y)
    adv = gradient.pgd(model_fn, xb, yb, eps=cfg.eps,
                       key=jax.random.split(key, r),
                       steps=cfg.concentration_steps)
    logits = model_fn(adv)
    return losses.cross_entropy(logits, yb), jnp.argmax(logits, -1) != yb

  out = []
  key = jax.random.key(cfg.seed + 8)
  for i in range(min(cfg.concentration_examples, test.size)):
    loss, fooled = (np.asarray(a) for a in restarts(
        variables, jnp.asarray(test.images[i]), int(test.labels[i]),
        jax.random.fold_in(key, i)))
    q = np.percentile(loss, [0, 1, 25, 50, 75, 99, 100])
    counts, edges = np.histogram(loss, bins=cfg.concentration_bins)
    out.append({"index": i, "label": int(test.labels[i]),
                "quantiles": dict(zip(("min", "p1", "p25", "median", "p75",
                                       "p99", "max"), q.tolist())),
                "mean": float(loss.mean()), "std": float(loss.std()),
                "fooled": float(fooled.mean()),
                "counts": counts.tolist(), "edges": edges.tolist()})
  return out


def _convergence(cfg, apply_fn, variables, x, y):
  """Mean adversarial loss per PGD iteration for sign, SGD and Adam steps."""
  model_fn = lambda z: apply_fn(variables, z)
  steps = cfg.convergence_steps
  step = 2.5 * cfg.eps / steps
  # SGD gets the learning rate whose first step moves pixels as far, on
  # average, as a sign step (its raw gradient has no natural scale).
  g = jax.grad(lambda z: jnp.sum(losses.cross_entropy(model_fn(z), y)))(x)
  sgd_lr = step / max(float(jnp.mean(jnp.abs(g))), 1e-12)
  curves = {}
  for label, optimizer, lr in (("sign", "steepest", step),
                               ("sgd", "sgd", sgd_lr), ("adam", "adam", step)):
    fn = jax.jit(lambda x, y, key, lr=lr, optimizer=optimizer: gradient.pgd(
        model_fn, x, y, eps=cfg.eps, key=key, steps=steps, step_size=lr,
        optimizer=optimizer, return_result=True, unroll=1))
    res = fn(x, y, jax.random.key(cfg.seed + 7))
    curves[label] = np.asarray(jnp.mean(res.loss_history, axis=1)).tolist()
  return curves


def make_report(cfg, results) -> report.Report:
  ms = results["models"]
  attack = f"PGD-{cfg.eval_steps} x {cfg.eval_restarts}"
  e = f"{cfg.eps:.4g}"
  rows = []
  for name, r in ms.items():
    pub = PUBLISHED.get((cfg.dataset, r["method"]))
    aa = r["autoattack"]
    rows.append((name, report.percent(r["clean_accuracy"]) + " %",
                 report.percent(r["robust_accuracy"]) + " %",
                 "-" if aa is None else
                 report.percent(aa["robust_accuracy"]) + " %",
                 *((f"{pub[0]:.1f} %", f"{pub[1]:.1f} %", pub[2]) if pub
                   else ("-", "-", "-"))))
  md = [f"# {cfg.dataset}: standard vs {cfg.method} training, eps {e} "
        f"(Linf), {cfg.model}", "",
        report.table(("model", "clean", f"{attack} at eps {e}",
                      f"AutoAttack at eps {e}", "published clean",
                      "published robust", "published setting"), rows,
                     "lrrrrrl")]
  with_aa = {n: r["autoattack"] for n, r in ms.items() if r["autoattack"]}
  if with_aa:
    stages = list(next(iter(with_aa.values()))["stages"])
    md += ["", "AutoAttack (standard) robust accuracy (%) after each stage, "
           "and the examples PGD calls robust that it breaks:", "",
           report.table(("model", *stages, "broken PGD-robust"), [
               (n, *(report.percent(v) for v in a["stages"].values()),
                a["pgd_robust_broken"]) for n, a in with_aa.items()])]
  md += ["", "Training time (s): " + ", ".join(
      f"{n} {r['train_seconds']:.0f}" for n, r in ms.items()), "",
         f"Accuracy (%) under {attack} vs eps:", "",
         report.table(("eps", *ms), [
             (f"{g:.4g}", *(report.percent(r["accuracy_vs_eps"][i])
                            for r in ms.values()))
             for i, g in enumerate(eps_grid(cfg))], "r" * (1 + len(ms)))]
  md += ["", "Published, for the MNIST / CIFAR-10 presets (none on "
         f"{cfg.dataset}): "
         + "; ".join(f"{_DATASET_NAMES.get(d, d)} ({pub[2]}): "
                     f"{pub[0]:.1f} % clean, {pub[1]:.1f} % robust"
                     for (d, _), pub in PUBLISHED.items())
         + ". Quoted and found by D'Costa & Sriramanan:", "",
         report.table(("dataset", "finding"), QUOTED, "ll"), "",
         _concentration_section(cfg, ms)]
  figures = {"robust_accuracy_vs_eps.png": functools.partial(
      report.line_plot, x=eps_grid(cfg),
      series={n: r["accuracy_vs_eps"] for n, r in ms.items()},
      xlabel="eps (Linf)", ylabel=f"accuracy under {attack} (%)",
      title=f"{cfg.dataset}: robust accuracy vs eps", marker=".",
      vline=cfg.eps, vline_label="training eps"),
             "attack_convergence.png": functools.partial(
                 _plot_convergence, cfg, results),
             "loss_concentration.png": functools.partial(
                 _plot_concentration, cfg, ms)}
  return report.Report("\n".join(md), figures, claims(cfg, results))


def _concentration_section(cfg, ms) -> str:
  rows = []
  for name, r in ms.items():
    for c in r["concentration"]:
      q = c["quantiles"]
      rows.append((name, c["index"], c["label"], f"{q['min']:.3f}",
                   f"{q['median']:.3f}", f"{q['p99']:.3f}", f"{q['max']:.3f}",
                   f"{q['max'] / max(q['median'], 1e-12):.2f}",
                   f"{(q['p75'] - q['p25']) / max(q['median'], 1e-12):.2f}",
                   report.percent(c["fooled"])))
  return "\n".join([
      "## Loss concentration (Madry et al.)", "",
      f"Per test image, the cross-entropy after each of "
      f"{cfg.concentration_restarts} PGD-{cfg.concentration_steps} runs at "
      f"eps {cfg.eps:.4g} (step 2.5 eps / steps), each from its own uniform "
      "random start; histograms in loss_concentration.png. Madry et al. ran "
      "10^5 restarts (qualitative in the source).", "",
      report.table(("model", "test image", "label", "min", "median", "p99",
                    "max", "max / median", "IQR / median",
                    "restarts fooling %"), rows)])


def _concentrated(r) -> bool:
  """No restart much above the rest: on every image the best of the
  restarts within 10 % of the median restart's loss."""
  return all(c["quantiles"]["max"] <= 1.1 * c["quantiles"]["median"]
             for c in r["concentration"])


def claims(cfg, results):
  """Madry et al.'s findings, checked where there are two models."""
  ms = results["models"]
  if cfg.method not in ms:
    return []
  std, adv = ms["standard"], ms[cfg.method]
  out = [report.Claim(
      "adversarial training keeps robust accuracy at the training eps far "
      "above standard training's",
      adv["robust_accuracy"] > std["robust_accuracy"] + 0.2,
      f"{report.percent(adv['robust_accuracy'])} % vs "
      f"{report.percent(std['robust_accuracy'])} % under PGD")]
  if adv["autoattack"]:
    out.append(report.Claim(
        "AutoAttack is at least as strong as PGD (per example the worst "
        "case)", adv["autoattack"]["robust_accuracy"]
        <= adv["robust_accuracy"] + 1e-9,
        f"{report.percent(adv['autoattack']['robust_accuracy'])} % vs "
        f"{report.percent(adv['robust_accuracy'])} %"))
  final = {k: c[-1] for k, c in adv["convergence"].items()}
  out.append(report.Claim(
      "on the robust model PGD's loss reaches the same maximum whichever "
      "first-order step it takes (sign, SGD, Adam: within 10 %)",
      max(final.values()) <= 1.1 * min(final.values()),
      ", ".join(f"{k} {v:.3f}" for k, v in final.items())))
  ends = {n: {k: c[-1] for k, c in r["convergence"].items()}
          for n, r in ms.items()}
  out.append(report.Claim(
      "D'Costa & Sriramanan: at a fixed eps Adam is a better PGD optimiser "
      "than SGD (higher final loss on every model)",
      all(e["adam"] > e["sgd"] for e in ends.values()),
      "; ".join(f"{n}: adam {e['adam']:.3f}, sgd {e['sgd']:.3f}"
                for n, e in ends.items())))
  grid, acc = eps_grid(cfg), adv["accuracy_vs_eps"]
  at = lambda f: float(np.interp(f * cfg.eps, grid, acc))
  if grid[-1] >= 1.5 * cfg.eps - 1e-9:
    before, after = at(0.5) - at(1.), at(1.) - at(1.5)
    out.append(report.Claim(
        "D'Costa & Sriramanan, Figure 6: the adversarially trained net keeps"
        " its accuracy up to the training eps, then drops sharply (it loses "
        "more from eps to 1.5 eps than from 0.5 eps to eps)", after > before,
        f"{report.percent(at(0.5))} % at 0.5 eps, "
        f"{report.percent(at(1.))} % at eps, {report.percent(at(1.5))} % at "
        "1.5 eps"))
  for name, r in ms.items():
    gaps = ", ".join(
        f"{c['quantiles']['max'] / max(c['quantiles']['median'], 1e-12):.2f}"
        for c in r["concentration"])
    out.append(report.Claim(
        f"Madry et al.: PGD from random starts reaches similar losses, none "
        f"much higher ({name} model: the best of "
        f"{cfg.concentration_restarts} restarts within 10 % of the median "
        "one on every image)", _concentrated(r),
        f"max / median per image: {gaps}; restarts fooling: " + ", ".join(
            report.percent(c["fooled"]) + " %" for c in r["concentration"])))
  return out


def _plot_concentration(cfg, ms, path):
  """Rows: models; columns: test images; histograms of the final losses
  (log counts)."""
  plt = report.pyplot()
  names = list(ms)
  n = max(len(ms[m]["concentration"]) for m in names)
  fig, axes = plt.subplots(len(names), n, figsize=(2.4 * n, 2.1 * len(names)),
                           squeeze=False)
  for i, name in enumerate(names):
    for j in range(n):
      ax = axes[i][j]
      if j >= len(ms[name]["concentration"]):
        ax.axis("off")
        continue
      c = ms[name]["concentration"][j]
      edges = np.asarray(c["edges"])
      ax.stairs(np.maximum(np.asarray(c["counts"]), 0.5), edges, fill=True,
                color=f"C{i}", baseline=0.5)
      ax.set_yscale("log")
      ax.set_title(f"{name}, image {c['index']} ({c['label']})", fontsize=7)
      ax.tick_params(labelsize=6)
      if i == len(names) - 1:
        ax.set_xlabel("final loss (CE)", fontsize=7)
  fig.suptitle(f"{cfg.dataset}: final loss of {cfg.concentration_restarts} "
               f"PGD-{cfg.concentration_steps} restarts at eps {cfg.eps:.4g}",
               fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def _plot_convergence(cfg, results, path):
  plt = report.pyplot()
  names = list(results["models"])
  fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.6),
                           squeeze=False)
  for ax, name in zip(axes[0], names):
    for opt, curve in results["models"][name]["convergence"].items():
      ax.plot(np.arange(1, len(curve) + 1), curve, label=opt)
    ax.set_title(f"{name} model")
    ax.set_xlabel("PGD iteration")
    ax.set_ylabel("mean adversarial loss (CE)")
    ax.grid(alpha=0.3)
    ax.legend(title="inner step")
  fig.suptitle(f"{cfg.dataset}: attack convergence at eps {cfg.eps:.4g}")
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


BENCHMARK = run.Benchmark("madry", MadryConfig, PRESETS, models, evaluate,
                          make_report, doc=__doc__, refine=_refine)

if __name__ == "__main__":
  run.main(BENCHMARK)
