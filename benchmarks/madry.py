"""Madry et al. adversarial training vs standard training, under PGD and AutoAttack.

    python -m benchmarks.madry --dataset digits      # ~1 minute on 2 CPU cores

Measured on digits (eps 0.2, Wong's CNN, 360 test images): standard 97.5 %
clean, 0.3 % under PGD-20 x 4 and AutoAttack; Madry-trained 98.1 % clean,
58.6 % under PGD-20 x 4 and 53.3 % under AutoAttack, which breaks 19
examples PGD calls robust. Other presets: --dataset mnist (eps 0.3, PGD-40
step 0.01, Madry's CNN), cifar10 (eps 8/255, PGD-7 step 2/255, PreAct
ResNet-18, SGD piecewise), fashion_mnist, cifar100, svhn_cropped; --method
madry | fgsm_mix | fgsm_rs | trades | mart | standard; --eps-warmup-epochs N
ramps the training eps up from 0 over N epochs. Writes results.json,
results.md, robust_accuracy_vs_eps.png and attack_convergence.png to
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


def _refine(cfg, preset):
  if cfg.method not in METHODS:
    raise ValueError(f"Unknown method {cfg.method!r}; use one of {METHODS}.")
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
  figures = {"robust_accuracy_vs_eps.png": functools.partial(
      report.line_plot, x=eps_grid(cfg),
      series={n: r["accuracy_vs_eps"] for n, r in ms.items()},
      xlabel="eps (Linf)", ylabel=f"accuracy under {attack} (%)",
      title=f"{cfg.dataset}: robust accuracy vs eps", marker=".",
      vline=cfg.eps, vline_label="training eps"),
             "attack_convergence.png": functools.partial(
                 _plot_convergence, cfg, results)}
  return report.Report("\n".join(md), figures, claims(cfg, results))


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
  return out


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
