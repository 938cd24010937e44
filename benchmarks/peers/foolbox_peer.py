"""Foolbox 3 as a peer: its PGD on the very same JAX model (through EagerPy).

Foolbox runs a JAX model natively (`foolbox.JAXModel`): its attacks call the
model and `jax.value_and_grad` of their loss step by step from Python, on
the same XLA kernels advjax compiles, so a comparison on one model and one
batch measures only the attack machinery (one compiled loop against a
Python loop of dispatched steps). Optional: `pip install foolbox`.
"""
import functools
import importlib
from typing import Callable, Optional

import jax
import jax.numpy as jnp

from advjax import models
from advjax.attacks import gradient
from advjax.evaluation import throughput

__all__ = ["unavailable_reason", "version", "pgd", "pgd_items"]


def unavailable_reason() -> Optional[str]:
  """Why Foolbox cannot run; None when it imports."""
  try:
    importlib.import_module("foolbox")
  except Exception as e:  # pylint: disable=broad-except
    return (f"foolbox not installed ({type(e).__name__}: {e}). "
            "pip install foolbox")
  return None


def version() -> str:
  import foolbox  # pylint: disable=import-outside-toplevel
  return foolbox.__version__


def pgd(model_fn: Callable, norm: str, eps: float, steps: int,
        rel_step: float = 2.5) -> Callable:
  """Foolbox's LinfPGD / L2PGD on `model_fn` (a jitted JAX function of a
  batch in [0, 1]), with advjax's PGD settings: `steps` steps of
  `rel_step * eps / steps`, random start. Returns `(x, y) -> x_adv`."""
  import foolbox  # pylint: disable=import-outside-toplevel
  fmodel = foolbox.JAXModel(model_fn, bounds=(0., 1.))
  cls = {"linf": foolbox.attacks.LinfPGD, "l2": foolbox.attacks.L2PGD}[norm]
  attack = cls(abs_stepsize=rel_step * eps / steps, steps=steps,
               random_start=True)

  def run(x, y):
    _, clipped, _ = attack(fmodel, x, y, epsilons=eps)
    return clipped

  return run


def pgd_items(model, variables, x, y, key, *, eps: dict, steps: int,
              batches) -> list:
  """advjax's PGD-k beside Foolbox's on the same jitted JAX model, per norm
  (`eps`: norm -> radius) and batch (the first images of `x`), as
  `throughput.Item`s with Foolbox as the peer (time them `together`)."""
  model_fn = jax.jit(models.model_fn(model, variables))
  ours = lambda v, x, y, eps, key, norm: gradient.pgd(
      models.model_fn(model, v), x, y, eps=eps, key=key, norm=norm,
      steps=steps)
  items = []
  for norm, e in eps.items():
    theirs = pgd(model_fn, norm, e, steps)
    for b in batches:
      xb, yb = x[:b], y[:b]
      items.append(throughput.Item(
          {"attack": f"PGD-{steps}", "norm": norm, "batch": b, "eps": e}, b,
          throughput.jit_call(functools.partial(ours, norm=norm), variables,
                              xb, yb, jnp.float32(e), key),
          throughput.Peer(
              f"foolbox {'LinfPGD' if norm == 'linf' else 'L2PGD'}", b,
              lambda f=theirs, xb=xb, yb=yb: jax.block_until_ready(
                  f(xb, yb)))))
  return items
