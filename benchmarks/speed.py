"""Attack throughput of advjax (images/s) vs gradient passes and peers.

    python -m benchmarks.speed --sinkhorn-reference DIR   # ~2.5 min, 2 cores
    python -m benchmarks.speed --no-minimal   # no DeepFool / CW / JSMA

A random model and batch: forward+backward (the unit), FGSM / FGM, PGD-k
and PGD-k x R (overhead: time / (gradient passes x fwd+bwd)) beside
torchattacks; DeepFool, CW-L2, JSMA and each library's success; Foolbox's
PGD; `project_wasserstein` at several tolerances (and Wong et al.'s
reference) against the converged point (benchmarks/results/speed).
"""
import dataclasses
from typing import Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from advjax import attacks, data, losses, models, report, run
from advjax.attacks import gradient
from advjax.evaluation import throughput as tp
from benchmarks.peers import foolbox_peer, projected_sinkhorn, torch_peers

OVERHEAD_TARGET = 1.15  # time(PGD-k) / (k * time(forward+backward)), CPU
# advjax / reference projected_sinkhorn (images/s); max |reference - z*|.
SINKHORN_SPEEDUP_TARGET, SINKHORN_AGREEMENT_TARGET = 5., 1e-4
REF = "sinkhorn.reference"  # its results
Ints, Floats, f = Tuple[int, ...], Tuple[float, ...], run.field


@dataclasses.dataclass(frozen=True)
class SpeedConfig(run.TimingConfig):
  model: str = f("wong_mnist", "model (torch replica: wong_mnist only)")
  dtype: str = f("float32", "compute dtype", choices=("float32", "bfloat16"))
  image_shape: Ints = f((28, 28, 1), "per-example (H, W, C)", ge=1)
  num_classes: int = f(10, "logits K", ge=1)
  batch: int = f(256, "images per batch B (caps every batch)", ge=1)
  steps: int = f(10, "PGD iterations k", ge=1)
  restarts: int = f(4, "random restarts R of the restart rows", ge=1)
  eps_linf: float = f(0.3, "Linf radius (FGSM, PGD)", ge=0)
  eps_l2: float = f(2.0, "L2 radius (FGM, PGD)", ge=0)
  peers: bool = f(True, "time torchattacks too when it imports")
  sinkhorn: bool = f(True, "time project_wasserstein")
  sinkhorn_batch: int = f(100, "images per projection", ge=1)
  sinkhorn_shape: Ints = f((28, 28, 1), "(H, W, C) projected", ge=1)
  sinkhorn_lam: float = f(1000., "entropy regularisation lam", gt=0)
  sinkhorn_kernel: int = f(5, "transport window k (odd)", ge=1)
  sinkhorn_eps: float = f(0.5, "Wasserstein radius per unit mass", ge=0)
  sinkhorn_max_iterations: int = f(400, "both solvers' bound", ge=2)
  sinkhorn_tol: float = f(1e-6, "advjax's default-row tolerance", gt=0)
  sinkhorn_relaxation: float = f(1.5, "its over-relaxation", gt=0, lt=2)
  sinkhorn_tols: Floats = f((1e-4, 1e-7, 1e-8, 1e-6, 1e-4),
                            "tolerances of further rows", gt=0)
  sinkhorn_relaxations: Floats = f((1.5, 1.5, 1.5, 1., 1.), "their "
                                   "over-relaxations", gt=0, lt=2)
  sinkhorn_noise: float = f(0.1, "std of the noise in w = x + noise", ge=0)
  sinkhorn_reference: Optional[str] = f(None, "locuslab/projected_sinkhorn "
                                        "checkout (None: no comparison)")
  minimal: bool = f(True, "time DeepFool, CW-L2 and JSMA")
  minimal_repeats: int = f(3, "timed calls per minimal row", ge=1)
  deepfool_steps: int = f(50, "DeepFool's iteration bound", ge=1)
  deepfool_overshoot: float = f(0.02, "DeepFool's overshoot", ge=0)
  deepfool_peer_batch: int = f(16, "torchattacks.DeepFool's images", ge=1)
  cw_batch: int = f(64, "images of the fixed-c CW-L2 rows", ge=1)
  cw_steps: int = f(100, "their Adam steps", ge=1)
  cw_const: float = f(1., "their constant c", ge=0)
  cw_lr: float = f(0.01, "Adam's step size of every CW-L2 row", gt=0)
  cw_paper_batch: int = f(16, "images of the paper-setting CW-L2 row", ge=1)
  cw_paper_steps: int = f(1000, "its Adam steps per search step", ge=1)
  cw_paper_search_steps: int = f(9, "its binary-search steps", ge=1)
  jsma_batch: int = f(64, "images of the JSMA row (target label + 1)", ge=1)
  jsma_peer_batch: int = f(4, "torchattacks.JSMA's images", ge=1)
  jsma_theta: float = f(1., "JSMA's change per feature")
  jsma_gamma: float = f(0.1, "JSMA's largest fraction changed", gt=0, le=1)
  foolbox: bool = f(True, "time Foolbox 3's PGD when it imports")
  foolbox_batches: Ints = f((256, 32), "Foolbox comparison batches", ge=1)


REQUIRES = [
    (lambda c: len(c.image_shape) == 3 == len(c.sinkhorn_shape),
     "image_shape and sinkhorn_shape must be (H, W, C)"),
    (lambda c: len(c.sinkhorn_tols) == len(c.sinkhorn_relaxations),
     "sinkhorn_tols and sinkhorn_relaxations must be as long"),
    (lambda c: (c.cw_paper_search_steps, c.cw_paper_steps) != (1, c.cw_steps),
     "the paper's CW-L2 row must differ from the fixed-c row (1 x cw_steps)")]


def _attacks(cfg, model, variables, x, y, key, net):
  k, r = cfg.steps, cfg.restarts
  peers = {} if net is None else torch_peers.torchattacks_peers(
      net, x, y, batch=cfg.batch, steps=k, eps_linf=cfg.eps_linf,
      eps_l2=cfg.eps_l2)
  fwd_bwd = lambda f, x, y: jax.grad(lambda z: jnp.sum(losses.cross_entropy(
      f(z), y)))(x)
  item = lambda attack, kind, k_, n, fun, traced=None, **kw: tp.Item(
      {"attack": attack, "norm": kind, "steps": k_, "restarts": n,
       "gradient_passes": max(k_, 1) * n}, cfg.batch, tp.attack_call(
           model, variables, fun, x, y, traced, **kw),
      peers.get((attack, kind)))
  items = [item("fwd+bwd", "-", 0, 1, fwd_bwd)]
  for norm, eps in (("linf", cfg.eps_linf), ("l2", cfg.eps_l2)):
    items += [item("FGSM" if norm == "linf" else "FGM", norm, 1, 1,
                   gradient.fgm, {"eps": eps}, norm=norm)] + [
        item(name, norm, k, n, gradient.pgd, {"eps": eps, "key": key},
             norm=norm, steps=k, restarts=n)
        for name, n in ((f"PGD-{k}", 1), (f"PGD-{k}x{r}", r))]
  return items


def _minimal(cfg, model, variables, x, y, net, predict):
  """DeepFool, CW-L2 and JSMA (and torchattacks') on the first images; `y`:
  the model's predictions, so every input starts correctly classified."""
  if not cfg.minimal:
    return {"status": "off (minimal=False)", "rows": []}
  c, targets = cfg, (y + 1) % cfg.num_classes
  k, lr, s, kp = c.cw_steps, c.cw_lr, c.cw_paper_search_steps, c.cw_paper_steps
  cw = ("CW", dict(c=c.cw_const, kappa=0, steps=k, lr=lr), c.cw_batch)
  peers = {} if net is None else torch_peers.minimal_peers(net, x, y, {
      a: (cls, kw, min(n, c.batch)) for a, (cls, kw, n) in {
          "DeepFool": ("DeepFool", dict(steps=c.deepfool_steps, overshoot=(
              c.deepfool_overshoot)), c.deepfool_peer_batch),
          f"CW-L2 1x{k}": cw, f"CW-L2 1x{k} abort": cw,
          "JSMA": ("JSMA", dict(theta=c.jsma_theta, gamma=c.jsma_gamma),
                   c.jsma_peer_batch)}.items()})

  def item(attack, setting, k_, search, n, fun, traced, kind="l2",
           labels=y, **static):
    n, peer = min(n, c.batch), peers.get(attack)
    return tp.Item({"attack": attack, "norm": kind, "setting": setting,
                    "steps": k_, "search_steps": search, "batch": n,
                    "peer_batch": peer and peer.batch,
                    "targeted": labels is not y}, n, tp.attack_call(
                        model, variables, fun, x[:n], labels[:n], traced,
                        return_result=True, **static), peer)

  fixed = f"c {c.cw_const:g} fixed, {k} Adam steps, lr {lr:g}"
  cw_l2 = lambda const, steps, search, abort: dict(
      fun=attacks.carlini_wagner_l2, traced=dict(
          initial_const=const, learning_rate=lr), steps=steps,
      binary_search_steps=search, abort_early=abort)
  items = [
      item("DeepFool", f"L2, {c.deepfool_steps} steps, overshoot "
           f"{c.deepfool_overshoot:g}, all classes", c.deepfool_steps, 0,
           c.batch, attacks.deepfool, {"overshoot": c.deepfool_overshoot},
           norm="l2", steps=c.deepfool_steps, num_candidates=c.num_classes),
      item(f"CW-L2 1x{k}", fixed + ", no early abort", k, 1, c.cw_batch,
           **cw_l2(c.cw_const, k, 1, False)),
      item(f"CW-L2 1x{k} abort", fixed + ", early abort (each library's)", k,
           1, c.cw_batch, **cw_l2(c.cw_const, k, 1, True)),
      item("JSMA", f"theta {c.jsma_theta:g}, gamma {c.jsma_gamma:g}, logits "
           "(JSMA-Z), target label + 1", 0, 0, c.jsma_batch, attacks.jsma,
           {}, kind="l0", labels=targets, theta=c.jsma_theta,
           gamma=c.jsma_gamma),
      item(f"CW-L2 {s}x{kp}", f"binary search from c 0.001, {s} x {kp} Adam "
           f"steps, lr {lr:g}, early abort", kp, s, c.cw_paper_batch,
           **cw_l2(1e-3, kp, s, True))]  # the paper's initial c
  measured = tp.time_items(items, c.minimal_repeats, "minimal", c.progress)
  return {"status": "ok", "rows": tp.score_adversarials(
      items, measured, predict, x, y, targets,
      None if net is None else torch_peers.run_counted(net))}


def _foolbox(cfg, model, variables, x, y, key, predict):
  why = ("off (foolbox=False)" if not cfg.foolbox
         else foolbox_peer.unavailable_reason())
  if why:
    return {"status": why, "rows": []}
  items = foolbox_peer.pgd_items(
      model, variables, x, y, key, eps={"linf": cfg.eps_linf, "l2":
                                        cfg.eps_l2}, steps=cfg.steps,
      batches=[min(b, cfg.batch) for b in cfg.foolbox_batches])
  measured = tp.time_items(items, cfg.repeats, "foolbox", cfg.progress, True)
  return {"status": "ok", "version": foolbox_peer.version(),
          "rows": tp.success_rates(items, measured, predict, y)}


def _sinkhorn(cfg):
  if not cfg.sinkhorn:
    return {"status": "off (sinkhorn=False)"}
  x = data.mnist_like_images(cfg.sinkhorn_batch, cfg.sinkhorn_shape)
  w = x + np.asarray(cfg.sinkhorn_noise * jax.random.normal(
      jax.random.fold_in(jax.random.key(cfg.seed), 1), x.shape, jnp.float32))
  kw = dict(eps=cfg.sinkhorn_eps, lam=cfg.sinkhorn_lam,
            kernel_size=cfg.sinkhorn_kernel)
  ref, why = projected_sinkhorn.projection_reference(
      cfg.sinkhorn_reference, x, w, maxiters=cfg.sinkhorn_max_iterations - 1,
      **kw)
  return tp.time_projections(
      x, w, settings=tp.sinkhorn_settings(
          cfg.sinkhorn_tol, cfg.sinkhorn_relaxation, cfg.sinkhorn_tols,
          cfg.sinkhorn_relaxations), max_iterations=cfg.sinkhorn_max_iterations,
      repeats=cfg.repeats, reference=ref, reference_status=why,
      progress=cfg.progress, **kw)


def measure(cfg):
  k_params, k_x, k_y, key = jax.random.split(jax.random.key(cfg.seed), 4)
  model = models.get_model(cfg.model, num_classes=cfg.num_classes,
                           dtype=cfg.dtype)
  variables = models.init_model(model, k_params, cfg.image_shape)
  x = jax.random.uniform(k_x, (cfg.batch, *cfg.image_shape), jnp.float32)
  y = jax.random.randint(k_y, (cfg.batch,), 0, cfg.num_classes, jnp.int32)
  logits = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, x)
  peers, net = torch_peers.replica_if_available(
      cfg.peers, cfg.model, variables["params"], cfg.image_shape, x, logits,
      cfg.seed)
  measured = tp.time_items(_attacks(cfg, model, variables, x, y, key, net),
                           cfg.repeats, "speed", cfg.progress)
  predict = jax.jit(lambda x: jnp.argmax(models.model_fn(model, variables)(
      x), -1))
  minimal = _minimal(cfg, model, variables, x, jnp.argmax(logits, -1), net,
                     predict)
  t_unit = measured[0][1].median  # the forward+backward pass
  rows = [{**row, "overhead": t.median / (row["gradient_passes"] * t_unit)}
          for row, t, _ in measured]
  pgd = {r["norm"]: r for r in rows if r["attack"] == f"PGD-{cfg.steps}"}
  return {"config": dataclasses.asdict(cfg), "machine": tp.machine(),
          "peers": peers, "rows": rows, "overhead_target": OVERHEAD_TARGET,
          **{k: {n: r[k] for n, r in pgd.items()} for k in (
              "overhead", "peer_ratio")}, "minimal": minimal,
          "foolbox": _foolbox(cfg, model, variables, x, y, key, predict),
          "sinkhorn": _sinkhorn(cfg)}


def body(cfg, res):
  peers, mn, fb, sk = (res["peers"], res["minimal"], res["foolbox"],
                       res["sinkhorn"])
  out = [
      tp.machine_line({**res["machine"], "gpu_used": None}) + "\nprotocol: "
      f"median of {cfg.repeats} interleaved calls after a warm-up call, each "
      f"ended with block_until_ready; eps {cfg.eps_linf} (Linf) / "
      f"{cfg.eps_l2} (L2), step 2.5 eps / k, random start\npeers: " + (
          "torch {torch}, torchattacks {torchattacks}, {torch_num_threads} "
          "threads; replica logits within {logit_max_abs_diff:.1e}".format(
              **peers) if peers["status"] == "ok" else peers["status"]),
      tp.items_table(res["rows"], peers["status"], extra=[(
          "overhead", lambda r: "1 (ref)" if r["attack"] == "fwd+bwd" else
          f"{r['overhead']:.2f}", "")]),
      "overhead = time / (gradient passes x time(fwd+bwd)); torch fwd+bwd: "
      "plain autograd; torchattacks has no L2 FGM, no PGD restarts (n/a)."]
  out += ["Minimal-perturbation attacks: " + mn["status"]] if mn[
      "status"] != "ok" else [
          "## Minimal-perturbation attacks (DeepFool, Carlini-Wagner L2, "
          "JSMA)", "Labels: the model's predictions; the first images. "
          "Every library's adversarials scored by the Flax model: success "
          "(JSMA: its target), mean L2 (JSMA: L0) of the successes; median "
          f"of {cfg.minimal_repeats} calls; iterations: advjax's median.",
          tp.scored_table(mn["rows"], peers["status"], peer_extra=[(
              "torch forward calls", "peer_forward_calls", "")]),
          "torchattacks' DeepFool and JSMA loop over images in Python; CW-L2 "
          "1xk: torchattacks.CW's fixed c ('abort': per example in advjax, "
          f"per batch in torchattacks); {cfg.cw_paper_search_steps}x"
          f"{cfg.cw_paper_steps}: the paper's binary search. Random weights: "
          "boundaries near the inputs, attacks stop early."]
  out += ["Foolbox: " + fb["status"]] if fb["status"] != "ok" else [
      f"## Foolbox {fb['version']} on the same JAX model", "Foolbox's "
      "Linf/L2 PGD on `foolbox.JAXModel` of the jitted model vs advjax's, "
      "interleaved: a compiled loop against Python-dispatched steps.",
      tp.pairs_table(fb["rows"], "foolbox")]
  if sk["status"] != "ok":
    return out + [f"Wasserstein projection: {sk['status']}"]
  star, ref = sk["converged_point"], sk["reference"]
  return out + [
      "## Wasserstein projection (projected Sinkhorn), "
      f"{'x'.join(map(str, sk['image_shape']))}, batch {sk['batch']}",
      f"MNIST-like x ({report.percent(sk['zero_pixel_fraction'], 0)}% zero"
      f"), w = x + N(0, {cfg.sinkhorn_noise}^2); eps {cfg.sinkhorn_eps} per "
      f"unit mass, lam {cfg.sinkhorn_lam:g}, kernel {cfg.sinkhorn_kernel}. "
      f"Error: max abs(z - z*), z* converged (float64, tol {star['tol']:g}:"
      f" {star['median_iters']:.0f} iterations, {star['converged']}/"
      f"{sk['batch']} converged).",
      tp.projection_table(sk, cfg.sinkhorn_max_iterations),
      "" if ref["status"] != "ok" else "each at its default stopping rule: "
      f"advjax / reference {ref['speed_ratio']:.1f}x images/s"]


REPORT = report.Report(
    title=lambda c: f"advjax attack throughput: {c.model}, "
    f"{'x'.join(map(str, c.image_shape))}, batch {c.batch}", body=body,
    claims=[
        report.Claim(
            "PGD-k costs no more than its gradient passes", "overhead",
            report.at_most(OVERHEAD_TARGET), quantity="time(PGD-k) / (k x "
            "time(fwd+bwd))"),
        report.Claim("advjax's PGD-k is at least as fast as torchattacks'",
                     "peer_ratio", report.at_least(1.), quantity="advjax / "
                     "torchattacks images/s"),
        report.Claim("the projection beats the reference at matched "
                     "accuracy", report.present(f"{REF}.matched.speed_ratio"),
                     report.at_least(SINKHORN_SPEEDUP_TARGET),
                     quantity="advjax / reference images/s"),
        report.Claim("both projections converge to the same point",
                     report.present(f"{REF}.converged_agreement.max_abs_diff"),
                     report.at_most(SINKHORN_AGREEMENT_TARGET),
                     quantity="max abs(reference - z*)")])
BENCHMARK = run.Timing("speed", SpeedConfig, measure, REPORT, doc=__doc__,
                       requires=REQUIRES)

if __name__ == "__main__":
  run.timing_main(BENCHMARK)
