"""Adversarial training: the train state and pure, jittable train/eval steps.

`make_train_step(model, optimizer, method, ...)` returns a pure
`step(state, x, y) -> (state, metrics)`: jit it (with buffer donation; see
`advjax.sharding.jit_sharded` for the multi-device form). Methods:

- `standard`: cross-entropy on clean inputs (of `logits / T` at a
  `temperature` T, the teacher of `distillation`).
- `madry`: cross-entropy on PGD adversarial examples (Madry et al. 2018).
- `fgsm_mix`: `sigma * J(x) + (1 - sigma) * J(x_adv)` with FGSM examples
  (Goodfellow et al. 2015), optionally built from the model's predicted
  labels instead of the true ones to avoid label leaking (Kurakin et al.
  2017, "Adversarial machine learning at scale").
- `fgsm_rs`: FGSM from a uniform random start with step `alpha * eps`,
  alpha = 1.25 (Wong, Rice, Kolter 2020, "Fast is better than free").
- `trades`: `J(x) + beta * KL(f(x) || f(x_adv))` with the KL maximised by PGD
  (Zhang et al. 2019).
- `wasserstein`: cross-entropy on Wasserstein adversarial examples at a fixed
  radius eps (PGD in the Wasserstein ball, `advjax.attacks.wasserstein`).
- `wasserstein_adaptive`: the paper's adaptive radius: per example, eps
  starts at the step's `eps` (0.1 in Wong et al.) and grows by 1.4 every 5
  of at most 50 steps until the example is misclassified
  (`wasserstein_search`); examples never fooled use the last iterate
  (Wong, Schmidt, Kolter 2019, MNIST adversarial training).
- `distillation`: defensive distillation (Papernot et al. 2016): the
  student is trained on a teacher's soft labels `softmax(z_teacher / T)`
  with its own softmax at temperature T and deployed at T = 1 (its plain
  logits). The teacher is the same kind of model trained with `standard`
  at the same `temperature`.
- `spatial`: cross-entropy on the worst of `k` = 10 uniformly drawn
  rotations and translations per example (`spatial_worst_of_k`; Engstrom
  et al. 2019, "Exploring the landscape of spatial robustness",
  worst-of-10 training).
- `spatial_augment`: cross-entropy on one uniformly drawn rotation and
  translation per example (`spatial_random`): data augmentation, the
  paper's baseline.

The spatial threat model is a range, not a radius: `default_attack(method,
max_angle=..., max_shift=..., k=...)` fixes it (30 degrees, 3 px, k = 10 by
default: Engstrom et al.'s 28- and 32-pixel images) and the attack ignores
the `eps` the step passes, as `standard` ignores it.

While attacking, the model runs in inference mode (batch norm frozen, no
dropout) and no gradient flows into the parameters; per-step keys are
`fold_in(state key, step)`.
"""
import functools
import os
import time
from typing import Any, Callable, Dict, NamedTuple, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm import tqdm

from advjax import checkpoint, data, losses, models, sharding
from advjax.attacks import base, gradient, spatial
from advjax.attacks.wasserstein import wasserstein as wasserstein_pgd
from advjax.attacks.wasserstein import wasserstein_search
from advjax.types import Array, Bounds, PRNGKey

__all__ = ["METHODS", "SPATIAL_METHODS", "TrainState", "FitResult", "fit",
           "create_train_state", "make_train_step", "make_eval_step",
           "default_attack", "restore_epoch"]

METHODS = ("standard", "madry", "fgsm_mix", "fgsm_rs", "trades", "wasserstein",
           "wasserstein_adaptive", "distillation", "spatial", "spatial_augment")
# Methods whose threat model is a rotation/translation range: no eps.
SPATIAL_METHODS = ("spatial", "spatial_augment")


class TrainState(NamedTuple):
  """Everything a training run needs to continue exactly.

  Attributes:
    params: model parameters.
    batch_stats: batch-norm statistics (`{}` for models without batch norm).
    opt_state: the optax state.
    step: int32 scalar, number of steps taken.
    rng: raw key data (`jax.random.key_data`), so checkpoints hold plain
      arrays; `state.key` is the typed key.
  """
  params: Any
  batch_stats: Any
  opt_state: Any
  step: Array
  rng: Array

  @property
  def key(self) -> PRNGKey:
    return jax.random.wrap_key_data(self.rng)

  @property
  def variables(self) -> Dict[str, Any]:
    """The Flax variables for `model.apply` (inference or attack)."""
    if self.batch_stats:
      return {"params": self.params, "batch_stats": self.batch_stats}
    return {"params": self.params}


def create_train_state(model: nn.Module, optimizer: optax.GradientTransformation,
                       key: PRNGKey, input_shape: Sequence[int]) -> TrainState:
  """Initialises a model and its optimizer state.

  Args:
    model: a Flax module with `__call__(x, train)`.
    optimizer: any optax transformation.
    key: `jax.random.key`; split into the init key and the state key.
    input_shape: per-example `(H, W, C)`.
  """
  k_init, k_state = jax.random.split(key)
  variables = models.init_model(model, k_init, input_shape)
  params = variables["params"]
  return TrainState(params=params,
                    batch_stats=variables.get("batch_stats", {}),
                    opt_state=optimizer.init(params),
                    step=jnp.zeros((), jnp.int32),
                    rng=jax.random.key_data(k_state))


def default_attack(method: str, *, steps: Optional[int] = None, step_size=None,
                   alpha: float = 1.25, max_angle=30., max_shift=3.,
                   k: int = 10) -> Optional[Callable]:
  """The inner attack of each method with the papers' settings.

  madry: PGD-`steps` with a random start (step `2.5 eps / steps` unless
  given); fgsm_mix: FGSM; fgsm_rs: one step of `alpha * eps` from a uniform
  random start; trades: PGD-`steps` on the KL from `0.001 * N(0, 1)`;
  wasserstein: 50 Wasserstein-PGD sign steps of 0.1 (or `steps`/`step_size`
  when given); wasserstein_adaptive: the search with eps0 = eps, factor 1.4
  every 5 steps, 50 steps (the reference's MNIST training settings);
  spatial: the worst of `k` uniform draws of a rotation in
  `[-max_angle, max_angle]` degrees and shifts in `[-max_shift, max_shift]`
  pixels (Engstrom et al.: 30 degrees, 3 px, k = 10); spatial_augment: one
  such draw. The spatial attacks take the contract's `eps` and ignore it:
  their threat model is the range fixed here.
  """
  if steps is None:
    steps = 50 if method.startswith("wasserstein") else 7
  if method == "madry":
    return functools.partial(gradient.pgd, steps=steps, step_size=step_size)
  if method == "fgsm_mix":
    return gradient.fgsm
  if method == "fgsm_rs":
    def fgsm_rs(model_fn, x, y, *, eps, key):
      return gradient.pgd(model_fn, x, y, eps=eps, key=key, steps=1,
                          step_size=alpha * eps, random_start=True)
    return fgsm_rs
  if method == "trades":
    return functools.partial(gradient.pgd, steps=steps, step_size=step_size,
                             init=lambda k, x: 0.001 * jax.random.normal(
                                 k, x.shape, x.dtype))
  if method == "wasserstein":
    return functools.partial(wasserstein_pgd, steps=steps,
                             step_size=0.1 if step_size is None else step_size)
  if method == "wasserstein_adaptive":
    def adaptive(model_fn, x, y, *, eps, key):
      return wasserstein_search(
          model_fn, x, y, key=key, eps0=eps, factor=1.4, grow_every=5,
          max_steps=steps, step_size=0.1 if step_size is None else step_size)
    return adaptive
  if method in SPATIAL_METHODS:
    base.check_nonnegative("default_attack", max_angle=max_angle,
                           max_shift=max_shift)
    if method == "spatial" and k < 1:
      raise ValueError(f"default_attack: k must be >= 1, got {k}.")

    def spatial_attack(model_fn, x, y, *, eps, key):
      del eps  # a rotation/translation range, not a radius
      if method == "spatial":
        return spatial.spatial_worst_of_k(model_fn, x, y, key=key, k=k,
                                          max_angle=max_angle,
                                          max_shift=max_shift)
      return spatial.spatial_random(model_fn, x, y, key=key,
                                    max_angle=max_angle, max_shift=max_shift)
    return spatial_attack
  return None


def _check_method(method: str) -> None:
  if method not in METHODS:
    raise ValueError(f"Unknown training method {method!r}; use one of "
                     f"{METHODS}.")


def make_train_step(model: nn.Module, optimizer: optax.GradientTransformation,
                    method: str = "standard", *, eps=0.3,
                    attack: Optional[Callable] = None, sigma: float = 0.5,
                    predicted_labels: bool = False, beta: float = 6.0,
                    bounds: Bounds = (0., 1.), temperature=1.,
                    teacher: Optional[Callable] = None) -> Callable:
  """Builds the pure training step of `method`.

  Args:
    model: Flax module, `__call__(x, train)`.
    optimizer: optax transformation (learning-rate schedule inside).
    method: one of `METHODS`.
    eps: the training threat model's radius (traced into the step as a
      constant; ignored by `standard` and `distillation`, and by the
      spatial methods' default attacks, whose threat model is the range
      given to `default_attack`).
    attack: the inner attack `attack(model_fn, x, y, *, eps, [key])`;
      default `default_attack(method)` (for `spatial` and
      `spatial_augment`: 30 degrees, 3 px; pass
      `default_attack(method, max_angle=..., max_shift=..., k=...)` for
      another range). For `trades` it must accept a
      `loss=` callable (as `pgd` does), which is set to the KL to the clean
      prediction.
    sigma: clean weight of `fgsm_mix`.
    predicted_labels: `fgsm_mix` builds x_adv from the model's predicted
      labels (no label leaking).
    beta: TRADES' robustness weight.
    bounds: the input box.
    temperature: softmax temperature T of the training loss (`standard` and
      `distillation` only): the loss sees `logits / T`; the trained model
      is used at T = 1. 20-100 in Papernot et al.
    teacher: `distillation` only: pure `x -> teacher logits` (e.g.
      `lambda x: model.apply(teacher_variables, x, train=False)`); its
      variables become constants of the compiled step.

  Returns:
    `step(state, x [B, ...], y [B]) -> (state, metrics)`, pure; metrics are
    scalars: `loss`, `accuracy` (clean) and, for adversarial methods,
    `adv_accuracy` (on the training adversarial examples).
  """
  _check_method(method)
  if method == "distillation" and teacher is None:
    raise ValueError("make_train_step: method 'distillation' needs teacher="
                     "(a pure x -> logits function of the trained teacher).")
  t_c = base.concrete(temperature)
  if t_c is not None and not (t_c > 0).all():
    raise ValueError(f"make_train_step: temperature must be > 0, got {t_c}.")
  if method not in ("standard", "distillation") and (
      t_c is None or (t_c != 1).any()):
    raise ValueError("make_train_step: temperature applies to 'standard' and "
                     f"'distillation' only, not {method!r}.")
  if method not in ("standard", "distillation") and attack is None:
    attack = default_attack(method)

  def forward_train(params, batch_stats, x, key):
    variables = {"params": params}
    if batch_stats:
      variables["batch_stats"] = batch_stats
    logits, updates = model.apply(variables, x, train=True,
                                  mutable=["batch_stats"],
                                  rngs={"dropout": key})
    return logits, updates.get("batch_stats", batch_stats)

  def step(state: TrainState, x: Array, y: Array):
    key = jax.random.fold_in(state.key, state.step)
    k_attack, k_dropout = jax.random.split(key)
    model_fn = lambda z: model.apply(state.variables, z, train=False)
    accuracy = lambda logits, labels: jnp.mean(jnp.argmax(logits, -1) == labels)
    metrics = {}

    if method in ("standard", "distillation"):
      x_train, y_train = x, y
    else:
      clean_logits = jax.lax.stop_gradient(model_fn(x))
      metrics["accuracy"] = accuracy(clean_logits, y)
      extra = {}
      labels = y
      if method == "fgsm_mix" and predicted_labels:
        labels = jnp.argmax(clean_logits, -1).astype(y.dtype)
      if method == "trades":
        extra["loss"] = lambda logits, _: losses.kl_divergence(clean_logits,
                                                               logits)
      x_adv = base.call_attack(attack, model_fn, x, labels, eps=eps,
                               key=k_attack, **extra)
      # Minimal-radius searches return a NamedTuple with x_adv first.
      x_adv = jax.lax.stop_gradient(getattr(x_adv, "x_adv", x_adv))
      if method in ("fgsm_mix", "trades"):
        x_train = jnp.concatenate([x, x_adv])
        y_train = jnp.concatenate([y, y])
      else:
        x_train, y_train = x_adv, y

    def loss_fn(params):
      logits, new_bs = forward_train(params, state.batch_stats, x_train,
                                     k_dropout)
      if method in ("fgsm_mix", "trades"):
        l_clean, l_adv = jnp.split(logits, 2)
        ce_clean = jnp.mean(losses.cross_entropy(l_clean, y))
        if method == "fgsm_mix":
          ce_adv = jnp.mean(losses.cross_entropy(l_adv, y))
          loss = sigma * ce_clean + (1. - sigma) * ce_adv
        else:
          loss = ce_clean + beta * jnp.mean(losses.kl_divergence(l_clean,
                                                                 l_adv))
        return loss, (new_bs, l_adv)
      if method == "distillation":
        soft = jax.nn.softmax(jax.lax.stop_gradient(teacher(x)) / temperature)
        loss = jnp.mean(optax.softmax_cross_entropy(logits / temperature,
                                                    soft))
      else:
        loss = jnp.mean(losses.cross_entropy(logits / temperature, y_train))
      return loss, (new_bs, logits)

    (loss, (new_bs, logits)), grads = jax.value_and_grad(
        loss_fn, has_aux=True)(state.params)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    metrics["loss"] = loss
    if method in ("standard", "distillation"):
      metrics["accuracy"] = accuracy(logits, y)
    else:
      metrics["adv_accuracy"] = accuracy(logits, y)
    new_state = state._replace(params=params, batch_stats=new_bs,
                               opt_state=opt_state, step=state.step + 1)
    return new_state, metrics

  return step


def make_eval_step(model: nn.Module, attack: Optional[Callable] = None,
                   eps=0.) -> Callable:
  """Builds `eval_step(state, x, y, mask) -> metrics` (sums, for padding).

  Returns per-batch sums `correct`, `adv_correct` (when `attack` is given,
  attacked at `eps` with key `fold_in(state key, 2**30 + step)`), `loss`
  and `count`, with padded rows (mask False) excluded. For full eps sweeps
  with per-example results use `advjax.evaluation.robust_accuracy` with
  `apply_fn=lambda v, x: model.apply(v, x, train=False)` and
  `state.variables`.
  """

  def eval_step(state: TrainState, x: Array, y: Array, mask: Array):
    model_fn = lambda z: model.apply(state.variables, z, train=False)
    logits = model_fn(x)
    m = mask.astype(jnp.float32)
    out = {"correct": jnp.sum((jnp.argmax(logits, -1) == y) * m),
           "loss": jnp.sum(losses.cross_entropy(logits, y) * m),
           "count": jnp.sum(m)}
    if attack is not None:
      key = jax.random.fold_in(state.key, 2 ** 30 + state.step)
      x_adv = base.call_attack(attack, model_fn, x, y, eps=eps, key=key)
      out["adv_correct"] = jnp.sum(
          (jnp.argmax(model_fn(x_adv), -1) == y) * m)
    return out

  return eval_step


class FitResult(NamedTuple):
  """Output of `fit`.

  Attributes:
    state: the final train state (on the host's default placement).
    history: per-epoch dicts of the last logged metrics and throughput.
    resumed_from: the step restored from the workdir (None: fresh start).
  """
  state: TrainState
  history: list
  resumed_from: Optional[int]


def fit(model: nn.Module, optimizer: optax.GradientTransformation,
        train_data, *, method: str = "standard", epochs: int = 1,
        batch_size: int = 128, seed: int = 0, workdir: Optional[str] = None,
        save_every: int = 100, keep: int = 3, settings: Optional[dict] = None,
        mesh=None, log_every: int = 10, progress: bool = True,
        desc: str = "train", init_variables: Optional[Dict[str, Any]] = None,
        epoch_checkpoints: bool = False, **step_kwargs) -> FitResult:
  """Trains `model` on `train_data` with `method`, resuming from `workdir`.

  Deterministic given `seed`: epoch `e` visits batches in the order of
  `data.iterate_batches(shuffle=True, seed=seed, epoch=e)` (last partial
  batch dropped) and step `t` draws its keys from `fold_in(key, t)`. A run
  killed and resumed from its last checkpoint therefore ends with exactly
  the parameters of an uninterrupted run.

  Args:
    model, optimizer: as `make_train_step`.
    train_data: an `advjax.data.Dataset` or `(images, labels)`.
    method: one of `METHODS`.
    epochs: passes over the data.
    batch_size: global batch size (divisible by the mesh's device count).
    seed: seeds init, data order and attack keys.
    workdir: checkpoint directory (None: no checkpoints).
    save_every: checkpoint period in steps (the end is always saved).
    keep: checkpoints kept.
    settings: JSON-able run description checked on resume.
    mesh: an `advjax.sharding` mesh (default: every local device).
    log_every: fetch metrics to the host every this many steps.
    progress: show a progress bar (loss, clean and adversarial accuracy).
    desc: the progress bar's label.
    init_variables: start from these model variables (`{'params', ...}`,
      e.g. a standard model's `state.variables`) instead of a fresh init:
      fine-tuning; the optimizer state starts fresh.
    epoch_checkpoints: also keep the state before the first epoch and at
      the end of every epoch in `workdir/epochs` (step = epochs done), for
      studies across the epochs of training; read them back with
      `restore_epoch`. Needs `workdir`.
    **step_kwargs: forwarded to `make_train_step` (eps, attack, sigma, ...).

  Returns:
    `FitResult`.
  """
  images, labels = ((train_data.images, train_data.labels)
                    if hasattr(train_data, "images") else train_data)
  images, labels = np.asarray(images), np.asarray(labels)
  mesh = mesh or sharding.make_mesh()
  sharding.check_batch_size(batch_size, mesh)
  steps_per_epoch = images.shape[0] // batch_size
  if steps_per_epoch == 0:
    raise ValueError(f"batch_size {batch_size} is larger than the "
                     f"{images.shape[0]} training examples.")
  total = epochs * steps_per_epoch
  state = create_train_state(model, optimizer, jax.random.key(seed),
                             images.shape[1:])
  if init_variables is not None:
    state = _with_variables(state, init_variables)
  if epoch_checkpoints and workdir is None:
    raise ValueError("fit: epoch_checkpoints=True needs a workdir.")
  ckpt, resumed_from = None, None
  if workdir is not None:
    ckpt = checkpoint.Checkpointer(
        workdir, save_every=save_every, keep=keep,
        settings={"method": method, "epochs": epochs, "batch_size": batch_size,
                  "seed": seed, **(settings or {})})
    if ckpt.latest_step is not None:
      state = ckpt.restore(state)
      resumed_from = int(state.step)
  epochs_ckpt = _epoch_checkpointer(workdir) if epoch_checkpoints else None
  if epochs_ckpt is not None and epochs_ckpt.latest_step is None:
    epochs_ckpt.save(0, state, force=True)
  state = sharding.replicate(state, mesh)
  step_fn = sharding.jit_sharded(
      make_train_step(model, optimizer, method, **step_kwargs), mesh,
      num_batch_args=2)
  start = int(state.step)
  history = []
  bar = tqdm(total=total, initial=start, desc=desc, disable=not progress,
             dynamic_ncols=True)
  metrics = {}
  t_epoch = time.perf_counter()
  for epoch in range(start // steps_per_epoch, epochs):
    batches = data.iterate_batches((images, labels), batch_size, shuffle=True,
                                   seed=seed, epoch=epoch, drop_remainder=True)
    for i, (xb, yb) in enumerate(batches):
      t = epoch * steps_per_epoch + i
      if t < start:
        continue
      if jax.process_count() > 1:  # each process feeds its own rows
        rows = sharding.process_slice(batch_size)
        xb, yb = xb[rows], yb[rows]
      xb, yb = sharding.shard_batch((xb, yb), mesh)
      state, metrics = step_fn(state, xb, yb)
      if ckpt is not None:
        ckpt.save(t + 1, state)
      if (t + 1) % log_every == 0 or i == steps_per_epoch - 1:
        shown = {k: f"{float(v):.3f}" for k, v in metrics.items()}
        bar.set_postfix(epoch=epoch, **shown)
        bar.update(t + 1 - bar.n)
    seconds = time.perf_counter() - t_epoch
    t_epoch = time.perf_counter()
    if epochs_ckpt is not None:
      epochs_ckpt.save(epoch + 1, state, force=True)
    history.append({"epoch": epoch, "seconds": seconds,
                    "images_per_second": steps_per_epoch * batch_size / seconds,
                    **{k: float(v) for k, v in metrics.items()}})
  bar.close()
  if ckpt is not None:
    if int(state.step) != (ckpt.latest_step or -1):
      ckpt.save(int(state.step), state, force=True)
    ckpt.wait()
    ckpt.close()
  if epochs_ckpt is not None:
    epochs_ckpt.wait()
    epochs_ckpt.close()
  return FitResult(state, history, resumed_from)


def _with_variables(state: TrainState, variables: Dict[str, Any]) -> TrainState:
  """`state` with its parameters and batch statistics replaced (shapes
  checked, so a checkpoint of another model is reported, not broadcast)."""
  params = variables["params"]
  want = jax.tree.map(lambda a: (a.shape, a.dtype), state.params)
  got = jax.tree.map(lambda a: (a.shape, a.dtype), params)
  if jax.tree.structure(want) != jax.tree.structure(got) or want != got:
    raise ValueError("fit: init_variables do not match the model (other "
                     "architecture or number of classes).")
  # Copies: the compiled step donates the state's buffers, which must not
  # delete the caller's arrays.
  copy = lambda tree: jax.tree.map(lambda a: jnp.array(a, copy=True), tree)
  return state._replace(params=copy(params),
                        batch_stats=copy(variables.get("batch_stats",
                                                       state.batch_stats)))


def _epoch_checkpointer(workdir: str) -> checkpoint.Checkpointer:
  return checkpoint.Checkpointer(os.path.join(workdir, "epochs"),
                                 save_every=1, keep=None)


def restore_epoch(workdir: str, like: TrainState, epoch: int) -> TrainState:
  """The state `fit(..., epoch_checkpoints=True)` kept after `epoch` epochs
  (0: before training), shaped like `like` (e.g. `create_train_state`).

  Raises:
    advjax.checkpoint.CheckpointError: that epoch was not kept (the run has
      not reached it, or was trained without `epoch_checkpoints`).
  """
  ckpt = _epoch_checkpointer(workdir)
  try:
    steps = ckpt.all_steps()
    if epoch not in steps:
      raise checkpoint.CheckpointError(
          f"No checkpoint of epoch {epoch} in {ckpt.directory} (kept: "
          f"{sorted(steps)}); train with epoch_checkpoints=True up to that "
          "epoch.")
    return ckpt.restore(like, step=epoch)
  finally:
    ckpt.close()
