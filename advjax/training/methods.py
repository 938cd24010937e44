"""Training methods as values: an inner attack and a loss over the logits.

A `Method` is built from its pieces, in the manner of optax's aliases: the
inner attack (any attack of the contract, `None` for clean training), its
radius `eps` (a number or any optax-style schedule of the step), what the
attack maximises and on which labels, and `loss(LossInputs) -> scalar`,
which combines the training-mode logits of the clean and adversarial
inputs. `make_train_step` reads only those fields: it attacks when there is
an attack, runs the clean inputs through the training forward pass when the
loss needs them, and never switches on a name. The named presets below
(`'madry'`, `'trades'`, ...) are a few lines each; `get(name, **kwargs)`
builds one from its name.

A new method is one function here returning a `Method` (see `mart`), and
one line in `PRESETS`.

The eps schedule: `madry(eps=optax.linear_schedule(0., 0.3, 2000))` ramps
the radius from 0 over the first 2000 steps, the usual recipe on MNIST
(Madry training at eps 0.3 from the first step can collapse to a constant
prediction; `fit` warns when an epoch looks like that).
"""
import functools
import inspect
from typing import Any, Callable, NamedTuple, Optional, Union

import jax
import jax.numpy as jnp
import numpy as np
import optax

from advjax import checks, losses, transforms
from advjax.attacks import gradient, spatial as spatial_attacks
from advjax.attacks.wasserstein import wasserstein as wasserstein_pgd
from advjax.attacks.wasserstein import wasserstein_search
from advjax.types import Array

__all__ = ["Method", "LossInputs", "PRESETS", "METHODS", "SPATIAL_METHODS",
           "get", "from_settings", "default_attack", "eps_at", "standard", "madry", "fgsm_mix",
           "noise_mix", "fgsm_rs", "trades", "mart", "wasserstein", "wasserstein_adaptive",
           "distillation", "spatial", "spatial_augment",
           "random_crop", "binarized"]

Schedule = Union[float, Array, Callable[[Array], Array]]


class LossInputs(NamedTuple):
  """What a method's loss sees (training-mode logits; None where unused).

  Attributes:
    clean: `[B, K]` logits of the clean batch (None if the method does not
      need them in its loss: `Method.uses_clean` False).
    adv: `[B, K]` logits of the adversarial batch (None without an attack).
    labels: `[B]` true labels.
    teacher: `[B, K]` teacher logits (None without a teacher).
  """
  clean: Optional[Array]
  adv: Optional[Array]
  labels: Array
  teacher: Optional[Array]


class Method(NamedTuple):
  """A training method.

  Attributes:
    name: a label for progress bars, history and checkpoint settings.
    loss: `loss(LossInputs) -> scalar` to minimise.
    attack: the inner attack `attack(model_fn, x, y, *, eps, [key], ...)`
      (run in inference mode, no gradient into the parameters), or None for
      clean training. Minimal-radius searches may return a NamedTuple with
      `x_adv` first.
    eps: the attack's radius: a number, a `[B]` array, or a schedule
      `step -> eps` (any optax schedule). Ignored without an attack.
    uses_clean: the loss needs the clean batch's training-mode logits (they
      are computed in the same forward pass as the adversarial batch).
    attack_loss: None, or `clean_logits -> loss(logits, y)`: the objective
      the attack maximises, given the clean prediction (TRADES' KL); passed
      to the attack as `loss=`.
    attack_on_predictions: the attack uses the model's predicted labels
      instead of the true ones (no label leaking, Kurakin et al. 2017).
    teacher: None, or `x -> teacher logits` (its variables become constants
      of the compiled step).
  """
  name: str
  loss: Callable[[LossInputs], Array]
  attack: Optional[Callable] = None
  eps: Schedule = 0.
  uses_clean: bool = False
  attack_loss: Optional[Callable[[Array], Callable]] = None
  attack_on_predictions: bool = False
  teacher: Optional[Callable[[Array], Array]] = None


def eps_at(method: Method, step: Array):
  """The method's radius at `step` (its schedule evaluated, or the number)."""
  return method.eps(step) if callable(method.eps) else method.eps


def _ce(logits, labels):
  return jnp.mean(losses.cross_entropy(logits, labels))


def _check_eps(name, eps):
  if not callable(eps):
    checks.check_nonnegative(name, eps=eps)


def _small_normal_start(key, x):
  """TRADES' and MART's start: `x + 0.001 * N(0, 1)`."""
  return 0.001 * jax.random.normal(key, x.shape, x.dtype)


# --------------------------------------------------------------------------
# The presets.
# --------------------------------------------------------------------------
def standard(*, temperature=1.) -> Method:
  """Cross-entropy on clean inputs, of `logits / temperature` (the teacher
  of `distillation` is trained at its temperature)."""
  _check_temperature("standard", temperature)
  return Method("standard", uses_clean=True,
                loss=lambda o: _ce(o.clean / temperature, o.labels))


def madry(eps=0.3, *, attack=None, steps: int = 7, step_size=None) -> Method:
  """Cross-entropy on PGD-`steps` examples from a random start, step
  `2.5 eps / steps` unless given (Madry et al. 2018)."""
  _check_eps("madry", eps)
  attack = attack or functools.partial(gradient.pgd, steps=steps,
                                       step_size=step_size)
  return Method("madry", attack=attack, eps=eps,
                loss=lambda o: _ce(o.adv, o.labels))


def fgsm_mix(eps=0.3, *, sigma=0.5, predicted_labels: bool = False,
             attack=None) -> Method:
  """`sigma J(x) + (1 - sigma) J(x_adv)` with FGSM examples (Goodfellow et
  al. 2015), optionally from the predicted labels (Kurakin et al. 2017)."""
  _check_eps("fgsm_mix", eps)
  return Method(
      "fgsm_mix", attack=attack or gradient.fgsm, eps=eps, uses_clean=True,
      attack_on_predictions=predicted_labels,
      loss=lambda o: (sigma * _ce(o.clean, o.labels)
                      + (1. - sigma) * _ce(o.adv, o.labels)))


def noise_mix(eps=0.3, *, distribution: str = "sign", sigma=0.5) -> Method:
  """`sigma J(x) + (1 - sigma) J(x + noise)`: `fgsm_mix` with random noise
  in place of the FGSM perturbation, the control of Goodfellow et al. 2015
  (section 6): `distribution` 'sign' (+-eps per pixel) or 'uniform'
  (U(-eps, eps)); clipped to the [0, 1] box."""
  _check_eps("noise_mix", eps)
  if distribution not in ("sign", "uniform"):
    raise ValueError(f"noise_mix: distribution must be 'sign' or 'uniform', "
                     f"got {distribution!r}.")

  def attack(model_fn, x, y, *, eps, key):
    del model_fn, y
    if distribution == "sign":
      delta = eps * jax.random.rademacher(key, x.shape, x.dtype)
    else:
      delta = jax.random.uniform(key, x.shape, x.dtype, -1., 1.) * eps
    return jnp.clip(x + delta, 0., 1.)

  return Method("noise_mix", attack=attack, eps=eps,
                uses_clean=True,
                loss=lambda o: (sigma * _ce(o.clean, o.labels)
                                + (1. - sigma) * _ce(o.adv, o.labels)))


def fgsm_rs(eps=0.3, *, alpha=1.25, attack=None) -> Method:
  """FGSM from a uniform random start with step `alpha * eps` (Wong, Rice,
  Kolter 2020, "Fast is better than free")."""
  _check_eps("fgsm_rs", eps)
  if attack is None:
    def attack(model_fn, x, y, *, eps, key):
      return gradient.pgd(model_fn, x, y, eps=eps, key=key, steps=1,
                          step_size=alpha * eps, random_start=True)
  return Method("fgsm_rs", attack=attack, eps=eps,
                loss=lambda o: _ce(o.adv, o.labels))


def trades(eps=0.3, *, beta=6., attack=None, steps: int = 7,
           step_size=None) -> Method:
  """`J(x) + beta KL(f(x) || f(x_adv))`, the KL maximised by PGD from
  `x + 0.001 N(0, 1)` (Zhang et al. 2019). A given `attack` must take a
  `loss=` callable (as `pgd` does)."""
  _check_eps("trades", eps)
  attack = attack or functools.partial(gradient.pgd, steps=steps,
                                       step_size=step_size,
                                       init=_small_normal_start)
  return Method(
      "trades", attack=attack, eps=eps, uses_clean=True,
      attack_loss=lambda clean: (lambda logits, _: losses.kl_divergence(
          clean, logits)),
      loss=lambda o: (_ce(o.clean, o.labels) + beta * jnp.mean(
          losses.kl_divergence(o.clean, o.adv))))


def mart(eps=0.3, *, beta=6., attack=None, steps: int = 10,
         step_size=None) -> Method:
  """MART (Wang et al. 2020, "Improving adversarial robustness requires
  revisiting misclassified examples"): the boosted cross-entropy of the
  adversarial example plus `beta` times the KL between the clean and
  adversarial predictions, weighted by `1 - p_clean(y)` so misclassified
  examples count more. The attack is PGD-`steps` on the cross-entropy from
  `x + 0.001 N(0, 1)` (the reference's 10 steps of eps / 4)."""
  _check_eps("mart", eps)
  attack = attack or functools.partial(gradient.pgd, steps=steps,
                                       step_size=step_size,
                                       init=_small_normal_start)

  def loss(o: LossInputs):
    log_adv = jax.nn.log_softmax(o.adv)
    p_adv = jnp.exp(log_adv)
    true = jax.nn.one_hot(o.labels, o.adv.shape[-1], dtype=bool)
    top_other = jnp.max(jnp.where(true, -jnp.inf, p_adv), -1)
    bce = (losses.cross_entropy(o.adv, o.labels)
           - jnp.log(jnp.clip(1. - top_other, 1e-12)))
    p_clean_true = jnp.sum(jax.nn.softmax(o.clean) * true, -1)
    kl = losses.kl_divergence(o.clean, o.adv) * (1. - p_clean_true)
    return jnp.mean(bce) + beta * jnp.mean(kl)

  return Method("mart", attack=attack, eps=eps, uses_clean=True, loss=loss)


def wasserstein(eps=0.1, *, attack=None, steps: int = 50,
                step_size=0.1) -> Method:
  """Cross-entropy on Wasserstein adversarial examples at a fixed radius:
  `steps` projected-Sinkhorn PGD sign steps of `step_size`."""
  _check_eps("wasserstein", eps)
  attack = attack or functools.partial(wasserstein_pgd, steps=steps,
                                       step_size=step_size)
  return Method("wasserstein", attack=attack, eps=eps,
                loss=lambda o: _ce(o.adv, o.labels))


def wasserstein_adaptive(eps=0.1, *, attack=None, steps: int = 50,
                         step_size=0.1, factor=1.4,
                         grow_every: int = 5) -> Method:
  """Wong, Schmidt, Kolter 2019's adaptive radius: per example the radius
  starts at `eps` and grows by `factor` every `grow_every` of at most
  `steps` steps until the example is misclassified; examples never fooled
  use the last iterate."""
  _check_eps("wasserstein_adaptive", eps)
  if attack is None:
    def attack(model_fn, x, y, *, eps, key):
      return wasserstein_search(model_fn, x, y, key=key, eps0=eps,
                                factor=factor, grow_every=grow_every,
                                max_steps=steps, step_size=step_size)
  return Method("wasserstein_adaptive", attack=attack, eps=eps,
                loss=lambda o: _ce(o.adv, o.labels))


def distillation(teacher: Optional[Callable[[Array], Array]] = None, *,
                 temperature=1.) -> Method:
  """Defensive distillation (Papernot et al. 2016): the student learns the
  teacher's soft labels `softmax(z_teacher / T)` with its own softmax at T
  and is deployed at T = 1. The teacher is trained by `standard` at T."""
  if teacher is None or not callable(teacher):
    raise ValueError("distillation needs teacher= (a pure x -> logits "
                     "function of the trained teacher).")
  _check_temperature("distillation", temperature)

  def loss(o: LossInputs):
    soft = jax.nn.softmax(jax.lax.stop_gradient(o.teacher) / temperature)
    return jnp.mean(optax.softmax_cross_entropy(o.clean / temperature, soft))

  return Method("distillation", uses_clean=True, teacher=teacher, loss=loss)


def _spatial_attack(draw, **range_):
  def attack(model_fn, x, y, *, eps, key):
    del eps  # a rotation/translation range, not a radius
    return draw(model_fn, x, y, key=key, **range_)
  return attack


def spatial(*, max_angle=30., max_shift=3., k: int = 10,
            attack=None) -> Method:
  """Cross-entropy on the worst of `k` uniformly drawn rotations in
  `[-max_angle, max_angle]` degrees and shifts in `[-max_shift, max_shift]`
  pixels (Engstrom et al. 2019, worst-of-10 training; 30 degrees, 3 px of
  28-32-pixel images). The threat model is the range: no eps."""
  checks.check_nonnegative("spatial", max_angle=max_angle, max_shift=max_shift)
  if k < 1:
    raise ValueError(f"spatial: k must be >= 1, got {k}.")
  attack = attack or _spatial_attack(spatial_attacks.spatial_worst_of_k, k=k,
                                     max_angle=max_angle, max_shift=max_shift)
  return Method("spatial", attack=attack, loss=lambda o: _ce(o.adv, o.labels))


def spatial_augment(*, max_angle=30., max_shift=3., attack=None) -> Method:
  """Cross-entropy on one uniformly drawn rotation and translation per
  example: data augmentation, Engstrom et al.'s baseline."""
  checks.check_nonnegative("spatial_augment", max_angle=max_angle,
                           max_shift=max_shift)
  attack = attack or _spatial_attack(spatial_attacks.spatial_random,
                                     max_angle=max_angle, max_shift=max_shift)
  return Method("spatial_augment", attack=attack,
                loss=lambda o: _ce(o.adv, o.labels))


def random_crop(*, pad: int = 4) -> Method:
  """Cross-entropy on random crops: each image zero-padded by `pad` pixels
  and cropped back at a uniform integer offset, i.e. shifted by whole
  pixels in `[-pad, pad]` in x and y (exact: bilinear at whole pixels).
  CIFAR-10's and ImageNet's standard augmentation (pad 4 of 32 px, without
  the flip): the 'Standard' rows of Engstrom et al. 2019's table."""
  if not (isinstance(pad, int) and pad >= 0):
    raise ValueError(f"random_crop: pad must be an int >= 0, got {pad!r}.")

  def attack(model_fn, x, y, *, eps, key):
    del model_fn, y, eps  # augmentation: no model, no radius
    shift = jax.random.randint(key, (2, x.shape[0]), -pad, pad + 1)
    return transforms.rotate_translate(x, 0., shift[0].astype(x.dtype),
                                       shift[1].astype(x.dtype))

  return Method("random_crop", attack=attack,
                loss=lambda o: _ce(o.adv, o.labels))


def binarized(threshold=0.5) -> Method:
  """Cross-entropy on inputs binarised at `threshold` (Wong et al.'s
  binarised MNIST row: the reference's `--binarize`): the 'attack' is the
  binarisation itself (`transforms.binarize`), the network does not
  binarise, so attacks on it see its exact gradients. Not a named preset:
  evaluate such a model on binarised test inputs."""
  t = checks.concrete(threshold)
  if t is not None and not np.all((t > 0) & (t < 1)):
    raise ValueError(f"binarized: threshold must lie in (0, 1), got "
                     f"{threshold}.")

  def attack(model_fn, x, y, *, eps):
    del model_fn, y, eps
    return transforms.binarize(x, threshold)
  return Method("binarized", attack=attack,
                loss=lambda o: _ce(o.adv, o.labels))


def _check_temperature(name, temperature):
  t = checks.concrete(temperature)
  if t is not None and not (t > 0).all():
    raise ValueError(f"{name}: temperature must be > 0, got {t}.")


PRESETS = {f.__name__: f for f in (
    standard, madry, fgsm_mix, noise_mix, fgsm_rs, trades, mart, wasserstein,
    wasserstein_adaptive, distillation, spatial, spatial_augment,
    random_crop)}
METHODS = tuple(PRESETS)
# Methods whose inputs are rotated or translated (a range, or a crop's
# pad), not perturbed within a radius: no eps.
SPATIAL_METHODS = ("spatial", "spatial_augment", "random_crop")


def get(method: Union[str, Method], **kwargs: Any) -> Method:
  """The `Method` named `method`, built with the preset's keywords (a
  `Method` is returned as it is; it takes no keywords)."""
  if isinstance(method, Method):
    if kwargs:
      raise TypeError(f"A Method value takes no keywords (got "
                      f"{sorted(kwargs)}); pass them to its preset, e.g. "
                      f"training.methods.{method.name}(...).")
    return method
  if method not in PRESETS:
    raise ValueError(f"Unknown training method {method!r}; use one of "
                     f"{METHODS} or a training.Method.")
  preset = PRESETS[method]
  accepted = inspect.signature(preset).parameters
  unknown = sorted(set(kwargs) - set(accepted))
  if unknown:
    raise ValueError(
        f"Training method {method!r} takes no {', '.join(unknown)} (it "
        f"takes {', '.join(accepted)}).")
  return preset(**kwargs)


def from_settings(method: str, **settings: Any) -> Method:
  """The preset `method` built from a study's settings: the keywords it
  takes are passed, the others (another method's `beta`, say) left out,
  so one config serves every method (`from_settings(cfg.method, eps=...,
  steps=..., beta=..., sigma=...)`)."""
  if method not in PRESETS:
    raise ValueError(f"Unknown training method {method!r}; use one of "
                     f"{METHODS}.")
  accepted = inspect.signature(PRESETS[method]).parameters
  return PRESETS[method](**{k: v for k, v in settings.items()
                            if k in accepted})


def default_attack(method: str, **kwargs) -> Optional[Callable]:
  """The inner attack of the preset `method`, built with its keywords
  (e.g. `default_attack('madry', steps=10)`, `default_attack('spatial',
  max_angle=10.)`); None for the clean methods."""
  return get(method, **kwargs).attack
