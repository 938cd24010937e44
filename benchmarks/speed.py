"""Attack throughput of advjax (images/s) vs gradient passes and peers.

    python -m benchmarks.speed --sinkhorn-reference DIR   # ~2.5 min, 2 cores
    python -m benchmarks.speed            # no reference comparison, ~2.5 min
    python -m benchmarks.speed --no-minimal   # no DeepFool / CW / JSMA

On one random batch and a random model: one forward+backward pass (the
unit of every attack), FGSM / FGM, PGD-k and PGD-k x R restarts (Linf, L2;
eps traced); overhead = time / (gradient passes x time(fwd+bwd)). With
torch + torchattacks, the same weights in PyTorch run their attacks
(`torch_peers.replica`); `minimal`: DeepFool, CW-L2 and JSMA against
torchattacks', each beside the quality of its adversarials; `foolbox`:
Foolbox 3's PGD on the same JAX model; `sinkhorn`: `project_wasserstein` at
several tolerances (and Wong et al.'s reference), scored by the distance
to the converged projection. Protocol: `throughput.time_calls`.
Measured: benchmarks/results/speed (results.md says how).
"""
import dataclasses
import functools
from typing import Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from advjax import attacks, data, losses, models, report, run
from advjax.attacks import gradient
from advjax.evaluation import throughput as tp
from benchmarks.peers import foolbox_peer, projected_sinkhorn, torch_peers

OVERHEAD_TARGET = 1.15  # time(PGD-k) / (k * time(forward+backward)), CPU
SINKHORN_SPEEDUP_TARGET = 5.  # advjax / reference projected_sinkhorn, images/s
SINKHORN_AGREEMENT_TARGET = 1e-4  # max |reference - advjax|, both converged
Ints, Floats = Tuple[int, ...], Tuple[float, ...]
f = run.field


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
    (lambda c: (c.cw_paper_search_steps, c.cw_paper_steps) != (
        1, c.cw_steps), "the paper-setting CW-L2 row (cw_paper_search_steps "
     "x cw_paper_steps) must differ from the fixed-c row (1 x cw_steps)")]


def _net(cfg, variables, x, logits):
  why = ("off (peers=False)" if not cfg.peers else
         torch_peers.unavailable_reason() or (
             cfg.model != "wong_mnist" and "no PyTorch replica of "
             f"{cfg.model!r}"))
  return ({"status": why}, None) if why else torch_peers.replica(
      variables["params"], cfg.image_shape, x, logits, cfg.seed)


def _attacks(cfg, model, variables, x, y, key, net):
  k, r, fn = cfg.steps, cfg.restarts, models.model_fn
  peers = {} if net is None else torch_peers.torchattacks_peers(
      net, x, y, batch=cfg.batch, steps=k, eps_linf=cfg.eps_linf,
      eps_l2=cfg.eps_l2)
  fwd_bwd = lambda v, x, y: jax.grad(lambda z: jnp.sum(losses.cross_entropy(
      fn(model, v)(z), y)))(x)
  fgm = lambda v, x, y, eps, norm: gradient.fgm(fn(model, v), x, y, eps=eps,
                                                norm=norm)
  pgd = lambda v, x, y, eps, key, norm, restarts: gradient.pgd(
      fn(model, v), x, y, eps=eps, key=key, norm=norm, steps=k,
      restarts=restarts)
  item = lambda attack, norm, steps, restarts, fun, *args: tp.Item(
      {"attack": attack, "norm": norm, "steps": steps, "restarts": restarts,
       "gradient_passes": max(steps, 1) * restarts}, cfg.batch,
      tp.jit_call(fun, variables, x, y, *args), peers.get((attack, norm)))
  items = [item("fwd+bwd", "-", 0, 1, fwd_bwd)]
  for norm, eps in (("linf", cfg.eps_linf), ("l2", cfg.eps_l2)):
    eps = jnp.float32(eps)
    items += [item("FGSM" if norm == "linf" else "FGM", norm, 1, 1,
                   functools.partial(fgm, norm=norm), eps)] + [
        item(name, norm, k, n, functools.partial(pgd, norm=norm, restarts=n),
             eps, key) for name, n in ((f"PGD-{k}", 1), (f"PGD-{k}x{r}", r))]
  return items


def _minimal(cfg, model, variables, x, y, net):
  """DeepFool, CW-L2 and JSMA (and torchattacks') on the first images; `y`:
  the model's predictions, so every input starts correctly classified."""
  if not cfg.minimal:
    return {"status": "off (minimal=False)", "rows": []}
  c, fn, targets = cfg, models.model_fn, (y + 1) % cfg.num_classes
  k, lr, s, kp = c.cw_steps, c.cw_lr, c.cw_paper_search_steps, c.cw_paper_steps
  cw = ("CW", dict(c=c.cw_const, kappa=0, steps=k, lr=lr), c.cw_batch)
  peers = {} if net is None else torch_peers.minimal_peers(net, x, y, {
      a: (cls, kw, min(n, c.batch)) for a, (cls, kw, n) in {
          "DeepFool": ("DeepFool", dict(steps=c.deepfool_steps, overshoot=(
              c.deepfool_overshoot)), c.deepfool_peer_batch),
          f"CW-L2 1x{k}": cw, f"CW-L2 1x{k} abort": cw,
          "JSMA": ("JSMA", dict(theta=c.jsma_theta, gamma=c.jsma_gamma),
                   c.jsma_peer_batch)}.items()})
  deepfool = lambda v, x, y, overshoot: attacks.deepfool(
      fn(model, v), x, y, norm="l2", steps=c.deepfool_steps,
      overshoot=overshoot, num_candidates=c.num_classes, return_result=True)
  cw_l2 = lambda steps, search, abort: lambda v, x, y, const, lr: (
      attacks.carlini_wagner_l2(
          fn(model, v), x, y, steps=steps, binary_search_steps=search,
          initial_const=const, learning_rate=lr, abort_early=abort,
          return_result=True))
  jsma = lambda v, x, t: attacks.jsma(fn(model, v), x, t, theta=c.jsma_theta,
                                      gamma=c.jsma_gamma, return_result=True)

  def item(attack, setting, steps, search, n, fun, *args, norm="l2",
           labels=y):
    n, peer = min(n, c.batch), peers.get(attack)
    return tp.Item({"attack": attack, "norm": norm, "setting": setting,
                    "steps": steps, "search_steps": search, "batch": n,
                    "peer_batch": peer and peer.batch,
                    "targeted": labels is not y}, n, tp.jit_call(
                        fun, variables, x[:n], labels[:n],
                        *(jnp.float32(a) for a in args)), peer)

  fixed = f"c {c.cw_const:g} fixed, {k} Adam steps, lr {lr:g}"
  items = [
      item("DeepFool", f"L2, {c.deepfool_steps} steps, overshoot "
           f"{c.deepfool_overshoot:g}, all classes", c.deepfool_steps, 0,
           c.batch, deepfool, c.deepfool_overshoot),
      item(f"CW-L2 1x{k}", fixed + ", no early abort", k, 1, c.cw_batch,
           cw_l2(k, 1, False), c.cw_const, lr),
      item(f"CW-L2 1x{k} abort", fixed + ", early abort (each library's)", k,
           1, c.cw_batch, cw_l2(k, 1, True), c.cw_const, lr),
      item("JSMA", f"theta {c.jsma_theta:g}, gamma {c.jsma_gamma:g}, logits "
           "(JSMA-Z), target label + 1", 0, 0, c.jsma_batch, jsma, norm="l0",
           labels=targets),
      item(f"CW-L2 {s}x{kp}", f"binary search from c 0.001, {s} x {kp} Adam "
           f"steps, lr {lr:g}, early abort", kp, s, c.cw_paper_batch,
           cw_l2(kp, s, True), 1e-3, lr)]  # the paper's initial c
  measured = tp.time_items(items, c.minimal_repeats, "minimal", c.progress)
  predict = jax.jit(lambda x: jnp.argmax(fn(model, variables)(x), axis=-1))
  return {"status": "ok", "rows": tp.score_adversarials(
      items, measured, predict, x, y, targets,
      net and torch_peers.run_counted(net))}


def _foolbox(cfg, model, variables, x, y, key):
  why = ("off (foolbox=False)" if not cfg.foolbox
         else foolbox_peer.unavailable_reason())
  if why:
    return {"status": why, "rows": []}
  items = foolbox_peer.pgd_items(
      model, variables, x, y, key, eps={"linf": cfg.eps_linf, "l2":
                                        cfg.eps_l2}, steps=cfg.steps,
      batches=[min(b, cfg.batch) for b in cfg.foolbox_batches])
  measured = tp.time_items(items, cfg.repeats, "foolbox", cfg.progress, True)
  predict = jax.jit(lambda x: jnp.argmax(models.model_fn(model, variables)(
      x), -1))
  success = lambda adv, b: tp.adversarial_quality(
      predict, adv, x[:b], y[:b])["success_rate"]
  for it, (row, _, _) in zip(items, measured):
    row.update(success_rate=success(it.call(), it.batch),
               peer_success_rate=success(it.peer.call(), it.batch))
  return {"status": "ok", "version": foolbox_peer.version(),
          "rows": [row for row, _, _ in measured]}
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
  peers, net = _net(cfg, variables, x, logits)
  measured = tp.time_items(_attacks(cfg, model, variables, x, y, key, net),
                           cfg.repeats, "speed", cfg.progress)
  minimal = _minimal(cfg, model, variables, x, jnp.argmax(logits, -1), net)
  t_unit = measured[0][1].median  # the forward+backward pass
  rows = [{**row, "overhead": t.median / (row["gradient_passes"] * t_unit)}
          for row, t, _ in measured]
  pgd = {r["norm"]: r for r in rows if r["attack"] == f"PGD-{cfg.steps}"}
  return {"config": dataclasses.asdict(cfg), "machine": tp.machine(),
          "peers": peers, "rows": rows, "overhead": {
              n: r["overhead"] for n, r in pgd.items()},
          "overhead_target": OVERHEAD_TARGET, "peer_ratio": {
              n: r["peer_ratio"] for n, r in pgd.items()}, "minimal": minimal,
          "foolbox": _foolbox(cfg, model, variables, x, y, key),
          "sinkhorn": _sinkhorn(cfg)}


ATTACK = [("attack", "attack", ""), ("norm", "norm", ""),
          ("images/s", "images_per_s", ".0f"), ("ms/batch", "ms_per_batch",
                                                 ".1f"),
          ("ms min-max", tp.span_cell, ""), ("overhead", lambda r: "1 (ref)"
                                             if r["attack"] == "fwd+bwd" else
                                             f"{r['overhead']:.2f}", "")]
TORCH = [("torch images/s", "peer_images_per_s", ".0f"),
         ("advjax / torch", "peer_ratio", ".2f")]


def _quality(p):
  def cell(r):
    rate, l0 = r[p + "success_rate"], r["norm"] == "l0"
    d = r[p + ("mean_l0" if l0 else "mean_l2")]
    return (report.percent(rate, 0) + "%, " + "L0 " * l0 + (
        "-" if d is None else format(d, ".1f" if l0 else ".3f")))
  return cell


MINIMAL = [("attack", "attack", ""), ("setting", "setting", ""),
           ("batch", "batch", ""), ("images/s", lambda r: tp.rate_cell(
               r["images_per_s"]), ""), ("ms/image", "ms_per_image", ".3g"),
           ("ms/batch min-max", tp.span_cell, ""),
           ("iterations", "median_iters", ".0f"),
           ("success, mean L2 (L0)", _quality(""), "")]
MINIMAL_TORCH = [
    ("torch batch", "peer_batch", ""), ("torch images/s", lambda r:
                                        tp.rate_cell(r["peer_images_per_s"]),
                                        ""),
    ("torch forward calls", "peer_forward_calls", ""),
    ("torch success, mean L2 or L0 (advjax on those images)", lambda r:
     f"{_quality('peer_')(r)} ({_quality('matched_')(r)})", ""),
    ("advjax / torch", "peer_ratio", ".2f")]
FOOLBOX = [("attack", "attack", ""), ("norm", "norm", ""), ("batch", "batch", ""),
           ("advjax ms", "ms_per_batch", ".1f"),
           ("foolbox ms", "peer_ms_per_batch", ".1f"),
           ("advjax / foolbox", "peer_ratio", ".2f"),
           ("success advjax / foolbox (%)", lambda r: report.percent(
               r["success_rate"], 0) + " / " + report.percent(
                   r["peer_success_rate"], 0), "")]
SINKHORN = [("images/s", "images_per_s", ".0f"),
            ("ms/batch", "ms_per_batch", ".1f"), ("ms min-max", tp.span_cell,
                                                  "")]


def _attacks_section(cfg, res):
  mach, peers = res["machine"], res["peers"]
  return [
      tp.machine_line({**mach, "gpu_used": None}) + f"\nprotocol: median of "
      f"{cfg.repeats} interleaved calls after a warm-up call, each ended with"
      f" block_until_ready; eps {cfg.eps_linf} (Linf) / {cfg.eps_l2} (L2), "
      "step 2.5 eps / k, random start\npeers: " + (
          "torch {torch}, torchattacks {torchattacks}, {torch_num_threads} "
          "threads; replica logits within {logit_max_abs_diff:.1e}".format(
              **peers) if peers["status"] == "ok" else peers["status"]),
      report.rows_table(res["rows"], ATTACK + tp.peer_columns(
          TORCH, peers["status"]), align="ll" + "r" * 6),
      "overhead = time(attack) / (gradient passes x time(fwd+bwd)); torch "
      "rows: plain autograd for fwd+bwd; torchattacks has no L2 FGM and no "
      "PGD restarts (n/a)."]


def _minimal_section(cfg, res):
  mn = res["minimal"]
  if mn["status"] != "ok":
    return ["Minimal-perturbation attacks: " + mn["status"]]
  return [
      "## Minimal-perturbation attacks (DeepFool, Carlini-Wagner L2, JSMA)",
      "Labels: the model's predictions at x; batch: the first images of the "
      "batch above. Adversarials of both libraries scored alike by the Flax "
      "model: success rate (JSMA: reached its target), mean L2 (JSMA: L0) of "
      f"the successful ones. Median of {cfg.minimal_repeats} interleaved "
      "calls after a warm-up call. iterations: advjax's median per example; "
      "torch forward calls: torchattacks' calls of the network per attack.",
      report.rows_table(mn["rows"], MINIMAL + tp.peer_columns(
          MINIMAL_TORCH, res["peers"]["status"], why_at=1),
                        align="ll" + "r" * 11),
      "- torchattacks.DeepFool and JSMA loop over the images in Python "
      "(hence their smaller batches); advjax runs the batch in one loop.\n"
      "- CW-L2 1xk: one fixed c (torchattacks.CW's algorithm, kappa 0); "
      "'abort': advjax's per-example early abort on; torchattacks.CW stops "
      "the whole batch once its summed cost rises (its forward calls are the "
      f"steps it ran).\n- CW-L2 {cfg.cw_paper_search_steps}x"
      f"{cfg.cw_paper_steps}: the paper's setting, binary search over c; "
      "advjax only (n/a: torchattacks.CW has no binary search).\n- random "
      "weights: boundaries lie near the inputs, so DeepFool and the early "
      "abort stop sooner than on a trained model."]


def _foolbox_section(cfg, res):
  fb = res["foolbox"]
  return ["Foolbox: " + fb["status"]] if fb["status"] != "ok" else [
      f"## Foolbox {fb['version']} on the same JAX model",
      "Foolbox's LinfPGD / L2PGD on `foolbox.JAXModel` of the jitted model "
      "(advjax's steps and step size, random start) and advjax's PGD on the "
      "same inputs, timed interleaved: the same XLA kernels, so the ratio is "
      "one compiled loop against Python-dispatched steps.",
      report.rows_table(fb["rows"], FOOLBOX, align="ll" + "r" * 5)]


def _sinkhorn_section(cfg, res):
  sk = res["sinkhorn"]
  if sk["status"] != "ok":
    return [f"Wasserstein projection: {sk['status']}"]
  ref, star, it = (sk["reference"], sk["converged_point"],
                   sk["reference"].get("iterations"))
  table = report.rows_table(sk["rows"], [
      ("solver", lambda r: "advjax project_wasserstein (jit), relaxation "
       f"{r['relaxation']:g}", ""), ("stopping rule", lambda r: "per example,"
                                     f" dual change < {r['tol']:g} (1 + abs g)"
                                     f", max {cfg.sinkhorn_max_iterations}",
                                     ""), *SINKHORN,
      ("iterations", lambda r: f"median {r['median_iters']:.0f}, max "
       f"{r['max_iters']}", ""), ("converged", lambda r: f"{r['converged']}/"
                                  f"{sk['batch']}", ""),
      ("error", "max_abs_error", ".1e")], align="ll" + "r" * 6)
  ok = ref["status"] == "ok"
  last = report.rows_table([ref], [("", lambda _: "reference projected_"
                                    "sinkhorn (torch)", ""), (
      "", lambda r: "whole batch, objective change <= 1e-4 + 1e-4 abs obj, "
      f"maxiters {r['maxiters']}", ""), ("", "images_per_s", ".1f"), *SINKHORN[
          1:], ("", lambda _: f"{'?' if it is None else it} (batch)", ""), (
              "", lambda r: "-" if it is None else "no (hit maxiters)" if it >
              r["maxiters"] else "yes", ""), ("", "max_abs_error", ".1e")]
                            ).rows[0] if ok else [
      "reference projected_sinkhorn", "-", "skipped: " + ref["status"],
      *"-----"]
  return [
      "## Wasserstein projection (projected Sinkhorn), "
      f"{'x'.join(map(str, sk['image_shape']))}, batch {sk['batch']}",
      "MNIST-like inputs (sklearn digits upsampled, zero border, "
      f"{report.percent(sk['zero_pixel_fraction'], 0)}% zero pixels), w = x "
      f"+ N(0, {cfg.sinkhorn_noise}^2); eps {cfg.sinkhorn_eps} per unit mass, "
      f"lam {cfg.sinkhorn_lam:g}, kernel {cfg.sinkhorn_kernel}, float32. "
      "Error: max abs(z - z*) in image units, z* the converged projection "
      f"(advjax float64, tol {star['tol']:g}: median "
      f"{star['median_iters']:.0f} iterations, {star['converged']}/"
      f"{sk['batch']} converged).",
      table._replace(rows=[*table.rows, last]),
      f"each at its default stopping rule: advjax / reference "
      f"{ref['speed_ratio']:.1f}x images/s" if ok else ""]


def body(cfg, res):
  return [*_attacks_section(cfg, res), *_minimal_section(cfg, res),
          *_foolbox_section(cfg, res), *_sinkhorn_section(cfg, res)]


def _ref(path):
  return report.present(lambda cfg, res: report.get_path(
      res, "sinkhorn.reference." + path) if report.get_path(
          res, "sinkhorn.reference.status", None) == "ok" else None)


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
                     "accuracy", _ref("matched.speed_ratio"),
                     report.at_least(SINKHORN_SPEEDUP_TARGET),
                     quantity="advjax / reference images/s"),
        report.Claim("both projections converge to the same point",
                     _ref("converged_agreement.max_abs_diff"),
                     report.at_most(SINKHORN_AGREEMENT_TARGET),
                     quantity="max abs(reference - z*)")])
BENCHMARK = run.Timing("speed", SpeedConfig, measure, REPORT, doc=__doc__,
                       requires=REQUIRES)

if __name__ == "__main__":
  run.timing_main(BENCHMARK)
