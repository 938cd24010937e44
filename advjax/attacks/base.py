"""The pieces every iterative attack is built from, and the one loop that runs them.

An attack is `loop(objective, x, delta0, optimizer, project)`:
- `objective(x_adv) -> [B]`: the per-example quantity to maximise (a loss of
  the model's logits, see `advjax.losses.attack_objective`);
- `delta0`: the start (zero, or a random point of the ball);
- `optimizer`: any `optax.GradientTransformation`, fed the gradient of the
  *negated* objective as optax minimises: `steepest_ascent(norm, step_size)` (the
  normalised steepest step of a norm: sign for Linf), Adam, SGD, ...;
- `project(delta, x) -> delta`: back into the threat model and the box.
Three optional pieces cover the rest: `apply(x, delta)` when the variable is
not a pixel perturbation (transform parameters; one perturbation shared by
a minibatch), per-step `inputs` (each step's minibatch), and a `Tracker`
(per-example bookkeeping: the best or first-fooled iterate, a radius that
grows, examples frozen once done).

PGD, BIM/ILLC, Wasserstein PGD and its radius search, first-order spatial
attacks and universal perturbations are this loop with other pieces.
"""
import inspect
from typing import Any, Callable, NamedTuple, Optional, Tuple, Union

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from advjax import projections
from advjax.types import Array, Bounds, ModelFn

__all__ = [
    "call_attack", "takes_key", "Unbounded", "AttackResult", "MinimalResult", "LoopOutput",
    "Tracker", "steepest_direction", "normalized_steepest",
    "scale_per_example", "steepest_ascent", "make_optimizer",
    "mask_box_gradient", "attack_loop", "resolve_unroll",
    "compacting_while_loop", "MIN_COMPACT_BATCH",
]


class AttackResult(NamedTuple):
  """Result of an attack asked for more than `x_adv`.

  Attributes:
    x_adv: `[B, ...]` adversarial examples (same shape and dtype as x).
    loss_history: `[steps, B]` objective at each iterate before its step.
    loss: `[B]` objective at `x_adv`.
  """
  x_adv: Array
  loss_history: Array
  loss: Array


class MinimalResult(NamedTuple):
  """Result of a minimal-perturbation attack (DeepFool, Carlini-Wagner, ...).

  Attributes:
    x_adv: `[B, ...]` the smallest adversarial example found per example
      (x itself where none was found; x's shape and dtype, inside bounds).
    success: `[B]` bool, x_adv is misclassified (reaches the target when
      targeted).
    distance: `[B]` the perturbation's size in the attack's norm (0 where
      not successful).
    n_iters: `[B]` int32 iterations (gradient evaluations) the example used.
  """
  x_adv: Array
  success: Array
  distance: Array
  n_iters: Array


class LoopOutput(NamedTuple):
  """Output of `attack_loop`.

  Attributes:
    delta: `[B, ...]` final feasible perturbation (with `apply`: the final
      parameters, any pytree).
    loss_history: `[steps, B]` objective before each step (NaN past the
      iterate at which a tracker's `active` stopped the loop).
    track: the tracker's final state, once it has seen the final iterate
      (None without a tracker).
    n_steps: int32 steps that moved some example (`steps` unless a
      tracker's `active` stopped the loop early).
  """
  delta: Any
  loss_history: Array
  track: Any
  n_steps: Array


class Tracker(NamedTuple):
  """Per-example bookkeeping beside `attack_loop`, an optax-style pair.

  The tracker sees every iterate the loop visits -- each one before its
  step, then the final one -- with its objective values and the objective's
  auxiliary output, so the model runs once per iterate (keep the best
  iterate, record when an example is first fooled). Its state also reaches
  `project` (a radius grown per example). With `active` it freezes
  examples: an inactive example keeps its iterate, and the loop, then a
  bounded `lax.while_loop`, stops once none is active.

  Attributes:
    init: `delta0 -> state` (a NamedTuple).
    update: `(state, delta, values [B], aux) -> state`, at each iterate.
    active: optional `state -> [B]` bool, the examples still moving.
  """
  init: Callable[[Any], Any]
  update: Callable[[Any, Any, Array, Any], Any]
  active: Optional[Callable[[Any], Array]] = None


class _LoopState(NamedTuple):
  """The carry of one step of `attack_loop`."""
  delta: Any
  opt_state: optax.OptState
  track: Any


class _BoundedState(NamedTuple):
  """The carry of `attack_loop`'s `while_loop` (a tracker with `active`)."""
  loop: _LoopState
  i: Array
  n_steps: Array
  history: Array


# --------------------------------------------------------------------------
# Steps (optax transformations acting on a batch of per-example gradients).
# --------------------------------------------------------------------------
def steepest_direction(g: Array, norm: str, l1_sparsity: float = 0.) -> Array:
  """Unit-norm steepest-ascent direction of each example's gradient.

  `argmax_{|e| <= 1} <g, e>` for the norm: linf -> `sign(g)`; l2 -> `g / |g|_2`;
  l1 -> the signs of the largest-|g| coordinates spread evenly so `|e|_1 = 1`:
  with `l1_sparsity = 0` one coordinate (the exact L1 steepest direction),
  otherwise the top `ceil(l1_sparsity * D)` coordinates (Tramer & Boneh's
  sparse L1 descent, which makes L1 PGD progress on many pixels per step).
  A zero gradient gives a zero direction.

  Args:
    g: `[B, ...]` gradients.
    norm: 'linf', 'l2' or 'l1'.
    l1_sparsity: fraction of coordinates moved by an L1 step (static).

  Returns:
    `[B, ...]` directions, zero where g is zero.
  """
  projections.check_norm(norm)
  if norm == "linf":
    return jnp.sign(g)
  if norm == "l2":
    n = projections.lp_norm(g, "l2")
    n = projections.per_example(jnp.where(n > 0, n, 1.), g.ndim)
    return g / n
  flat = g.reshape(g.shape[0], -1)
  dim = flat.shape[1]
  k = max(1, int(np.ceil(l1_sparsity * dim)))
  a = jnp.abs(flat)
  thr = jax.lax.top_k(a, k)[0][:, -1:]
  mask = (a >= thr) & (a > 0)
  count = jnp.maximum(jnp.sum(mask, axis=1, keepdims=True), 1)
  return (jnp.sign(flat) * mask / count).astype(g.dtype).reshape(g.shape)


def normalized_steepest(norm: str,
                        l1_sparsity: float = 0.) -> optax.GradientTransformation:
  """optax transformation: updates -> their unit steepest direction in `norm`."""
  return optax.stateless(lambda updates, params: jax.tree.map(
      lambda u: steepest_direction(u, norm, l1_sparsity), updates))


def scale_per_example(scale) -> optax.GradientTransformation:
  """optax transformation: multiply each example's update by `scale` (scalar or [B])."""
  return optax.stateless(lambda updates, params: jax.tree.map(
      lambda u: u * projections.per_example(scale, u.ndim).astype(u.dtype),
      updates))


def steepest_ascent(norm: str, step_size,
                    l1_sparsity: float = 0.) -> optax.GradientTransformation:
  """The default PGD step: `step_size` times the unit steepest direction.

  As every optax optimizer it expects the gradient of a quantity to
  *minimise* (the negated attack objective) and returns updates to add.
  """
  return optax.chain(normalized_steepest(norm, l1_sparsity),
                     scale_per_example(-jnp.asarray(step_size)))


def make_optimizer(optimizer: Union[None, str, optax.GradientTransformation],
                   norm: str, step_size,
                   l1_sparsity: float = 0.) -> optax.GradientTransformation:
  """Builds the inner optimizer of an attack.

  Args:
    optimizer: None or 'steepest' (the normalised steepest step of `norm`),
      'adam' (Adam moments, scaled by `step_size` per example), 'sgd' (the raw
      gradient times `step_size`), or any `optax.GradientTransformation`
      (used as given; `step_size` is then ignored).
    norm: the threat model's norm.
    step_size: scalar or `[B]` step size (learning rate).
    l1_sparsity: see `steepest_direction`.

  Returns:
    An `optax.GradientTransformation`.
  """
  if isinstance(optimizer, optax.GradientTransformation):
    return optimizer
  if optimizer is None or optimizer == "steepest":
    return steepest_ascent(norm, step_size, l1_sparsity)
  if optimizer == "adam":
    return optax.chain(optax.scale_by_adam(),
                       scale_per_example(-jnp.asarray(step_size)))
  if optimizer == "sgd":
    return scale_per_example(-jnp.asarray(step_size))
  raise ValueError(
      f"Unknown optimizer {optimizer!r}; use 'steepest', 'adam', 'sgd' or an "
      "optax.GradientTransformation.")


def mask_box_gradient(g: Array, x_adv: Array, bounds: Bounds) -> Array:
  """Zeroes gradient entries that push a pixel already on the box outward.

  Such a coordinate cannot move, so for the L1/L2 steepest step the budget is
  spent on pixels that can (for Linf the result is the same as clipping).
  """
  lo, hi = bounds
  blocked = ((x_adv >= hi) & (g > 0)) | ((x_adv <= lo) & (g < 0))
  return jnp.where(blocked, jnp.zeros_like(g), g)


# --------------------------------------------------------------------------
# The loop.
# --------------------------------------------------------------------------
# Up to this many steps are unrolled on CPU by default (see resolve_unroll).
CPU_UNROLL_MAX_STEPS = 64


def resolve_unroll(steps: int, unroll: Union[None, bool, int] = None):
  """The `lax.scan` unroll used for an attack of `steps` steps.

  On CPU, XLA rewrites the input-gradient convolutions of a model into its
  fast kernel layout only outside loop bodies (jax-ml/jax#12868): inside a
  rolled `scan` they run as naive loops, 3-4x slower. So on CPU attacks of
  up to `CPU_UNROLL_MAX_STEPS` steps are fully unrolled (PGD-10 on Wong's
  CNN: 754 ms -> 199 ms per batch of 256; compile time grows with steps).
  Elsewhere (GPU/TPU) the loop stays rolled. An explicit `unroll` wins.
  """
  if unroll is not None:
    return unroll
  if jax.default_backend() == "cpu" and steps <= CPU_UNROLL_MAX_STEPS:
    return True
  return 1


def attack_loop(objective: Callable[..., Any], x: Array, delta0, *,
                steps: int, optimizer: optax.GradientTransformation,
                project: Callable[..., Any],
                bounds: Optional[Bounds] = (0., 1.),
                unroll: Union[None, bool, int] = None,
                apply: Optional[Callable[..., Array]] = None, inputs=None,
                track: Optional[Tracker] = None,
                project_start: bool = True) -> LoopOutput:
  """Runs `steps` projected ascent steps on `objective(x + delta)`.

  (On `objective(apply(x, delta))` with `apply`; a `track`er with `active`
  ends the loop once every example is frozen.)

  Every iterate is feasible: `delta0` and each update go through `project`
  (ball, then box), and the gradient is always taken at the feasible point
  `x + delta`, so a start outside the box never freezes pixels at a clipped
  (zero-gradient) value.

  Args:
    objective: `x_adv [B, ...] -> [B]` per-example quantity to maximise;
      called `(x_adv, inputs_t)` with `inputs`; with `track` it returns
      `(values [B], aux)`, aux for the tracker.
    x: `[B, ...]` clean inputs (the centre of the threat model).
    delta0: `[B, ...]` initial perturbation (with `apply`: any pytree).
    steps: number of steps (static); the bound on them with `track.active`.
    optimizer: an optax transformation minimising `-objective`.
    project: `(delta, x) -> delta` onto the feasible set; with `track`,
      `(delta, x, state)`, the tracker's state after the current iterate.
    bounds: the box, for masking gradients that point out of it (None: off;
      None with `apply`, as the masking reads `x + delta`).
    unroll: `lax.scan`'s unroll (static); None picks `resolve_unroll(steps)`.
      Unused with `track.active` (a `while_loop`).
    apply: `(x, delta) -> x_adv`, the objective's input (`(x, delta,
      inputs_t)` with `inputs`); default `x + delta`.
    inputs: per-step inputs, a pytree of `[steps, ...]` arrays scanned as
      `lax.scan`'s xs (a minibatch's indices); not with `track`, whose final
      iterate has no step.
    track: a `Tracker`.
    project_start: project `delta0` first; False when it is feasible as
      given (zero), which an inexact projection (projected Sinkhorn) would
      move.

  Returns:
    `LoopOutput(delta, loss_history, track, n_steps)`.

  Raises:
    ValueError: `bounds` with `apply`, or `inputs` with `track`.
  """
  if apply is not None and bounds is not None:
    raise ValueError("attack_loop: box masking reads x + delta; pass "
                     "bounds=None with apply.")
  if inputs is not None and track is not None:
    raise ValueError("attack_loop: a tracker also sees the final iterate, "
                     "which has no step inputs; use inputs or track.")
  if apply is None:
    apply = lambda x0, delta, *_: x0 + delta
  freeze = track is not None and track.active is not None

  def evaluate(delta, *inp):
    out = objective(apply(x, delta, *inp), *inp)
    values, aux = out if track is not None else (out, None)
    return jnp.sum(values), (values, aux)

  grad_fn = jax.grad(evaluate, has_aux=True)

  def feasible(delta, state):
    return project(delta, x) if track is None else project(delta, x, state)

  def step(s: _LoopState, inp) -> Tuple[_LoopState, Array]:
    g, (values, aux) = grad_fn(s.delta, *(() if inp is None else (inp,)))
    state = s.track
    if track is not None:
      state = track.update(state, s.delta, values, aux)
    if bounds is not None:
      g = mask_box_gradient(g, x + s.delta, bounds)
    updates, opt_state = optimizer.update(jax.tree.map(jnp.negative, g),
                                          s.opt_state, s.delta)
    delta = feasible(jax.tree.map(jnp.add, s.delta, updates), state)
    if freeze:
      active = track.active(state)
      delta = jax.tree.map(lambda new, old: jnp.where(
          projections.per_example(active, new.ndim), new, old), delta, s.delta)
    return _LoopState(delta, opt_state, state), values

  state = None if track is None else track.init(delta0)
  if project_start:
    delta0 = feasible(delta0, state)
  s = _LoopState(delta0, optimizer.init(delta0), state)
  if freeze and steps > 0:  # (zero steps: nothing to stop, no history)
    def cond(b: _BoundedState):
      return (b.i < steps) & jnp.any(track.active(b.loop.track))

    def body(b: _BoundedState) -> _BoundedState:
      loop, values = step(b.loop, None)
      moved = jnp.any(track.active(loop.track)).astype(jnp.int32)
      return _BoundedState(loop, b.i + 1, b.n_steps + moved,
                           b.history.at[b.i].set(values))

    spec = jax.eval_shape(evaluate, delta0)[1][0]
    b = jax.lax.while_loop(cond, body, _BoundedState(
        s, jnp.int32(0), jnp.int32(0),
        jnp.full((steps,) + spec.shape, jnp.nan, spec.dtype)))
    s, history, n_steps = b.loop, b.history, b.n_steps
  else:
    s, history = jax.lax.scan(step, s, inputs, length=steps,
                              unroll=resolve_unroll(steps, unroll))
    n_steps = jnp.int32(steps)
  if track is not None:  # the final iterate, seen without a step
    _, (values, aux) = evaluate(s.delta)
    s = s._replace(track=track.update(s.track, s.delta, values, aux))
  return LoopOutput(s.delta, history, s.track, n_steps)


MIN_COMPACT_BATCH = 4  # compacting_while_loop's smallest batch
COMPACT_FACTOR = 4  # and how much each compaction shrinks the batch


def compacting_while_loop(cond: Callable[[Any, Any], Array],
                          body: Callable[[Any, Any], Tuple[Any, Any]],
                          shared: Any, examples: Any,
                          active: Callable[[Any], Array], *,
                          min_batch: int = MIN_COMPACT_BATCH,
                          factor: int = COMPACT_FACTOR
                          ) -> Tuple[Any, Any]:
  """A `lax.while_loop` over a batch whose finished examples drop out.

  Per-example early stopping in a plain `while_loop` costs the whole
  batch's model passes until its slowest example stops. Here, each time
  the number of active examples falls to `1 / factor` of the current
  batch, the active ones are gathered into a batch that much smaller
  (static sizes B, B / factor, ... down to `min_batch`), the loop goes on
  there, and the sub-batch is scattered back when it ends: the model runs
  on not many more rows than there are examples still moving. Each size is
  one more copy of `body` to compile (CW-L2 at batch 64, sizes 64/16/4:
  see `carlini_wagner_l2`).

  `body` must leave inactive examples unchanged (the padding rows of a
  sub-batch are inactive ones) and treat every row on its own: anything
  per example, inputs and labels included, lives in `examples`.

  Args:
    cond: `(shared, examples) -> bool`, e.g. `i < steps & any(active)`.
    body: `(shared, examples) -> (shared, examples)`.
    shared: loop state common to the batch (a step counter).
    examples: a pytree of `[B, ...]` per-example arrays.
    active: `examples -> [B]` bool, the examples still moving.
    min_batch: the smallest sub-batch (no compaction below it; the batch
      size itself turns compaction off).
    factor: the shrink factor of each compaction (>= 2).

  Returns:
    `(shared, examples)` at the end, examples in their original order.
  """
  batch = jax.tree.leaves(examples)[0].shape[0]
  sizes = [batch]
  while sizes[-1] // factor >= max(min_batch, 1):
    sizes.append(sizes[-1] // factor)

  def run(level: int, shared, ex):
    step = lambda s: body(*s)
    if level == len(sizes) - 1:
      return lax.while_loop(lambda s: cond(*s), step, (shared, ex))
    smaller = sizes[level + 1]
    shared, ex = lax.while_loop(
        lambda s: cond(*s) & (jnp.sum(active(s[1])) > smaller), step,
        (shared, ex))
    # Active rows first (stable), then the first inactive ones as padding.
    rows = jnp.argsort(~active(ex), stable=True)[:smaller]
    shared, sub = run(level + 1, shared,
                      jax.tree.map(lambda a: a[rows], ex))
    return shared, jax.tree.map(lambda a, b: a.at[rows].set(b), ex, sub)

  return run(0, shared, examples)


def takes_key(attack: Callable) -> bool:
  """Whether `attack` accepts a `key` keyword (deterministic attacks do not)."""
  try:
    params = inspect.signature(attack).parameters
  except (TypeError, ValueError):
    return True
  return "key" in params or any(
      p.kind == inspect.Parameter.VAR_KEYWORD for p in params.values())


class Unbounded(NamedTuple):
  """A minimal-perturbation attack (no radius: Carlini-Wagner, DeepFool) as
  one of the contract `attack(model_fn, x, y, *, eps, key)`: `eps` is
  ignored, so `robust_accuracy` and `adversarial_examples` run it (at any
  one eps: the accuracy is that of the attack's failures).

  Attributes:
    attack: `attack(model_fn, x, y, [key=])` with its settings fixed
      (`functools.partial(carlini_wagner_l2, targeted=True)`).
  """
  attack: Callable

  def __call__(self, model_fn: ModelFn, x, y, *, eps=None, key=None):
    del eps  # no radius
    kwargs = {"key": key} if takes_key(self.attack) else {}
    return self.attack(model_fn, x, y, **kwargs)


def call_attack(attack: Callable, model_fn: ModelFn, x, y, *, eps, key,
                **kwargs):
  """Calls any attack of the contract, passing `key` only if it takes one."""
  if takes_key(attack):
    kwargs["key"] = key
  return attack(model_fn, x, y, eps=eps, **kwargs)
