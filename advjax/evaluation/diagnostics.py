"""Gradient-masking diagnostics: is a robustness number believable?

The checks of Carlini et al., "On evaluating adversarial robustness" (2019),
section 5, and AutoAttack's own flags (fra31/auto-attack, flags_doc.md),
each returned as a verdict (True = the check flags a problem) with the
numbers behind it:

| verdict | flags when |
|---|---|
| `single_step_beats_iterative` | FGSM leaves fewer examples correct than APGD at the same eps: the iterative attack is stuck (masked or noisy gradients) |
| `not_monotone_in_eps` | accuracy rises with eps somewhere on the sweep (beyond one example) |
| `large_eps_not_zero` | at a budget that covers the whole box the white-box attack still leaves examples correct |
| `square_beats_white_box` | the black-box Square attack does better than the white-box attacks: their gradients mislead them |
| `zero_gradients` | some examples have an exactly zero input gradient of the loss |
| `probability_outputs` | the model outputs look like probabilities (in [0, 1], rows summing to 1), not logits: the CE of softmax(p) has vanishing gradients |
| `randomness` | the model answers differently to the same input (repeated calls) |
| `gradient_mismatch` | autodiff directional derivatives disagree with finite differences (straight-through or obfuscated layers) |

The attacks run through `robust_accuracy` (sharded, per-example keys).
"""
import functools
from typing import Any, Callable, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from advjax import checks, losses, rng
from advjax.attacks import gradient
from advjax.attacks.apgd import apgd
from advjax.attacks.square import square
from advjax.evaluation import batching
from advjax.evaluation.predict import probability_rows
from advjax.evaluation.robust_accuracy import robust_accuracy

__all__ = ["Diagnostics", "DiagnosticsEvaluator", "diagnostics"]

VERDICTS = ("single_step_beats_iterative", "not_monotone_in_eps",
            "large_eps_not_zero", "square_beats_white_box", "zero_gradients",
            "probability_outputs", "randomness", "gradient_mismatch")


class Diagnostics(NamedTuple):
  """Verdicts (True = a problem) and the measurements behind them.

  Attributes:
    single_step_beats_iterative, not_monotone_in_eps, large_eps_not_zero,
    square_beats_white_box, zero_gradients, probability_outputs,
    randomness, gradient_mismatch: the verdicts (module docstring).
    n: examples checked.
    clean_accuracy: on them.
    fgsm_accuracy, apgd_accuracy, square_accuracy: at eps.
    eps_sweep, sweep_accuracy: APGD-CE accuracy over growing budgets.
    zero_gradient_fraction: examples whose input gradient is all zero.
    output_difference: max normalised difference between repeated calls.
    finite_difference_error: median relative error of autodiff against
      central differences along random directions.
  """
  single_step_beats_iterative: bool
  not_monotone_in_eps: bool
  large_eps_not_zero: bool
  square_beats_white_box: bool
  zero_gradients: bool
  probability_outputs: bool
  randomness: bool
  gradient_mismatch: bool
  n: int
  clean_accuracy: float
  fgsm_accuracy: float
  apgd_accuracy: float
  square_accuracy: float
  eps_sweep: np.ndarray
  sweep_accuracy: np.ndarray
  zero_gradient_fraction: float
  output_difference: float
  finite_difference_error: float

  @property
  def flagged(self) -> bool:
    """Whether any check flags a problem."""
    return any(getattr(self, v) for v in VERDICTS)

  def flags(self) -> tuple:
    """The names of the verdicts that flag a problem."""
    return tuple(v for v in VERDICTS if getattr(self, v))

  def summary(self) -> dict:
    """The verdicts and numbers as JSON-able values, with `flags` and the
    markdown `table`."""
    out = {k: (np.asarray(v).tolist() if isinstance(v, np.ndarray) else
               v.item() if isinstance(v, np.generic) else v)
           for k, v in self._asdict().items()}
    return {**out, "flags": list(self.flags()), "table": self.table()}

  def table(self) -> str:
    """Markdown: each check, its verdict and its numbers."""
    pct = lambda a: f"{100 * a:.1f} %"
    sweep = ", ".join(f"{e:.3g}: {pct(a)}" for e, a in
                      zip(self.eps_sweep, self.sweep_accuracy))
    numbers = {
        "single_step_beats_iterative": f"FGSM {pct(self.fgsm_accuracy)}, "
                                       f"APGD-CE {pct(self.apgd_accuracy)}",
        "not_monotone_in_eps": sweep,
        "large_eps_not_zero": f"{pct(self.sweep_accuracy[-1])} at eps "
                              f"{self.eps_sweep[-1]:.3g}",
        "square_beats_white_box": f"Square {pct(self.square_accuracy)}, "
                                  f"white-box "
                                  f"{pct(min(self.fgsm_accuracy, self.apgd_accuracy))}",
        "zero_gradients": pct(self.zero_gradient_fraction) + " of examples",
        "probability_outputs": "",
        "randomness": f"max difference {self.output_difference:.2e}",
        "gradient_mismatch": f"median relative error "
                             f"{self.finite_difference_error:.2e}",
    }
    rows = [f"| check ({self.n} examples, clean {pct(self.clean_accuracy)}) "
            "| flagged | numbers |", "|---|---|---|"]
    rows += [f"| {v} | {'**yes**' if getattr(self, v) else 'no'} | "
             f"{numbers[v]} |" for v in VERDICTS]
    return "\n".join(rows)


def diagnostics(apply_fn: Callable, variables, x, y, *, norm: str = "linf",
                eps: float, key=None, n: int = 256, steps: int = 100,
                square_queries: int = 1000,
                sweep: Sequence[float] = (0.25, 0.5, 1., 2., 4.),
                fd_step: float = 1e-3, fd_directions: int = 4,
                bounds=(0., 1.), batch_size: int = 256,
                device_batch_size: Optional[int] = None,
                mesh=None) -> Diagnostics:
  """Runs the gradient-masking checks on the first `n` examples.

  Args:
    apply_fn: `(variables, x) -> logits`, inference mode.
    variables: the model's variables.
    x: `[N, H, W, C]` float images inside `bounds`; y: `[N]` int labels.
    norm: 'linf' or 'l2'.
    eps: the radius the model claims robustness at.
    key: `jax.random.key` (default `key(0)`).
    n: examples checked (the first n).
    steps: APGD iterations.
    square_queries: Square's budget here (5000 in AutoAttack; lower is a
      cheaper, weaker check, so a flag stays meaningful).
    sweep: multiples of eps for the monotonicity check; a budget covering
      the whole box (Linf: the box's width; L2: its diagonal) is added.
    fd_step: central-difference step, in units of the box's width.
    fd_directions: random directions per example for the gradient check.
    bounds: the box.
    batch_size, device_batch_size, mesh: as `robust_accuracy`.

  Returns:
    `Diagnostics`.

  References:
    Carlini, Athalye, Papernot, Brendel, Rauber, Tsipras, Goodfellow,
    Madry, Kurakin, "On evaluating adversarial robustness", 2019.
    Croce & Hein, ICML 2020 (AutoAttack's checks).
  """
  if norm not in ("linf", "l2"):
    raise ValueError(f"diagnostics: norm must be 'linf' or 'l2', got "
                     f"{norm!r}.")
  x = np.asarray(x)[:n]
  y = np.asarray(y)[:n]
  n = x.shape[0]
  model_fn = lambda z: apply_fn(variables, z)
  checks.check_attack_inputs(model_fn, x, y, eps=eps, bounds=bounds,
                             name="diagnostics")
  key = rng.as_key(jax.random.key(0) if key is None else key)
  lo, hi = bounds
  width = hi - lo
  kw = dict(batch_size=batch_size, device_batch_size=device_batch_size,
            mesh=mesh)

  # Outputs: probabilities, and randomness over repeated calls.
  jitted = jax.jit(model_fn)
  outs = [np.asarray(jitted(x)) for _ in range(3)] + [
      np.asarray(model_fn(x)) for _ in range(2)]
  normed = [o / (np.linalg.norm(o, axis=1, keepdims=True) + 1e-10)
            for o in outs]
  diff = max(float(np.max(np.linalg.norm(a - b, axis=1)))
             for a, b in ((normed[0], normed[1]), (normed[1], normed[2]),
                          (normed[3], normed[4])))
  o = outs[0]
  probs = bool(np.all(probability_rows(o)))
  clean = float(np.mean(np.argmax(o, -1) == y))

  # Gradients: exact zeros, and autodiff against finite differences.
  def loss_sum(z):
    return jnp.sum(losses.cross_entropy(model_fn(z), jnp.asarray(y)))

  g = np.asarray(jax.jit(jax.grad(loss_sum))(x)).reshape(n, -1)
  zero = float(np.mean(np.all(g == 0, axis=1)))
  per_ex = jax.jit(lambda z: losses.cross_entropy(model_fn(z),
                                                  jnp.asarray(y)))
  dirs = rng.draw(lambda k, s: jax.random.normal(k, s), key,
                  (fd_directions,) + x.shape)
  h = fd_step * width
  errs = []
  xc = np.clip(x, lo + h, hi - h)  # room for both sides of the difference
  gc = np.asarray(jax.jit(jax.grad(loss_sum))(xc)).reshape(n, -1)
  for d in np.asarray(dirs):
    d = d / np.linalg.norm(d.reshape(n, -1), axis=1).reshape(
        (n,) + (1,) * (x.ndim - 1))
    fd = (np.asarray(per_ex(xc + h * d)) - np.asarray(per_ex(xc - h * d))
          ) / (2 * h)
    ad = np.sum(gc * d.reshape(n, -1), axis=1)
    scale = np.abs(fd) + np.abs(ad)
    # Both (near) zero is agreement; float32 noise of the difference ~1e-6/h.
    tiny = scale < 1e-4
    errs.append(np.where(tiny, 0., np.abs(fd - ad) / np.maximum(scale,
                                                                1e-12)))
  fd_err = float(np.median(np.concatenate(errs)))

  # Attacks.
  big = width if norm == "linf" else width * float(np.sqrt(x[0].size))
  eps_sweep = np.array(sorted(set([float(eps) * m for m in sweep] + [big])),
                       np.float32)
  apgd_attack = functools.partial(apgd, norm=norm, steps=steps,
                                  bounds=bounds)
  sw = robust_accuracy(apply_fn, variables, x, y, attack=apgd_attack,
                       eps=np.concatenate([[eps], eps_sweep]),
                       key=rng.fold_in(key, 1), **kw)
  apgd_acc = float(sw.accuracy[0])
  sweep_acc = sw.accuracy[1:]
  fgsm_acc = float(robust_accuracy(
      apply_fn, variables, x, y,
      attack=functools.partial(gradient.fgm, norm=norm, bounds=bounds),
      eps=[eps], key=rng.fold_in(key, 2), **kw).accuracy[0])
  sq_acc = float(robust_accuracy(
      apply_fn, variables, x, y,
      attack=functools.partial(square, norm=norm,
                               queries=square_queries, bounds=bounds),
      eps=[eps], key=rng.fold_in(key, 3), **kw).accuracy[0])
  one = 1. / n
  white = min(fgsm_acc, apgd_acc)
  return Diagnostics(
      single_step_beats_iterative=fgsm_acc < apgd_acc - 0.5 * one,
      not_monotone_in_eps=bool(np.any(np.diff(np.concatenate(
          [[clean], sweep_acc])) > 1.5 * one)),
      large_eps_not_zero=bool(sweep_acc[-1] > 1.5 * one),
      square_beats_white_box=sq_acc < white - 0.5 * one,
      zero_gradients=zero > 0,
      probability_outputs=probs,
      randomness=diff > 1e-4,
      gradient_mismatch=fd_err > 0.1,
      n=n, clean_accuracy=clean, fgsm_accuracy=fgsm_acc,
      apgd_accuracy=apgd_acc, square_accuracy=sq_acc, eps_sweep=eps_sweep,
      sweep_accuracy=np.asarray(sweep_acc), zero_gradient_fraction=zero,
      output_difference=diff, finite_difference_error=fd_err)




class DiagnosticsEvaluator(NamedTuple):
  """`diagnostics` as an evaluator: settings now, `run` on a model.

  Attributes: as the keywords of `diagnostics`.
  """
  eps: float
  norm: str = "linf"
  key: Any = None
  n: int = 256
  steps: int = 100
  square_queries: int = 1000
  batch_size: int = 256
  device_batch_size: Optional[int] = None

  def run(self, apply_fn: Callable, variables, data) -> Diagnostics:
    """Checks `apply_fn(variables, .)` on the first `n` examples of `data`
    (a Dataset or (x, y))."""
    x, y = batching.as_data(data)
    return diagnostics(apply_fn, variables, x, y, norm=self.norm,
                       eps=self.eps, key=self.key, n=self.n, steps=self.steps,
                       square_queries=self.square_queries,
                       batch_size=self.batch_size,
                       device_batch_size=self.device_batch_size)
