"""The reference projected Sinkhorn (Wong et al. 2019,
locuslab/projected_sinkhorn), loaded from a checkout the user names.

The reference is no dependency of advjax and is never shipped:
`benchmarks.speed --sinkhorn-reference DIR` times it against
`advjax.sinkhorn.project_wasserstein`. `load(directory)` executes
`directory/projected_sinkhorn/projected_sinkhorn.py` (the module holding
`projected_sinkhorn` and `wasserstein_cost`; the package's `__init__` only
re-exports them) as a fresh module from its file, with
`importlib.util.spec_from_file_location`: nothing is added to `sys.path`
and nothing stays in `sys.modules`. `load(directory, tight=True)` executes
the same source with its stopping rule (`REFERENCE_RULE`) replaced by
`TIGHT_RULE`, to run the reference to convergence; nothing is written.
`reference_call` runs it on advjax's NHWC images.
"""
import contextlib
import importlib.util
import io
import os
import re
import sys
from typing import Any, Callable, Optional, Tuple

import numpy as np

from advjax.evaluation import throughput

__all__ = ["REFERENCE_RULE", "TIGHT_RULE", "load", "reference_call",
           "projection_reference"]

# The reference's stopping rule, and the tight one `load(..., tight=True)`
# puts in its place (for the converged comparison only).
REFERENCE_RULE = "allclose = lambda x,y: (x-y).abs() <= 1e-4 + 1e-4*y.abs()"
TIGHT_RULE = "allclose = lambda x,y: (x-y).abs() <= 1e-13*(1 + y.abs())"


@contextlib.contextmanager
def _reference_imports(package_dir: str):
  """What the reference module's own imports need while it executes.

  `projected_sinkhorn.py` imports its sibling as a top-level module (`from
  lambertw import lambertw`: it was written to run from inside its folder)
  and appends its author's path to `sys.path`. The sibling is loaded from
  its file under a private name and registered as `lambertw` in
  `sys.modules` for the duration of the execution only (a module already
  there under that name is put back afterwards); `sys.path` is restored as
  it was, undoing the reference's append.
  """
  saved_path = list(sys.path)
  missing = object()
  saved = sys.modules.get("lambertw", missing)
  sibling = os.path.join(package_dir, "lambertw.py")
  try:
    if os.path.isfile(sibling):
      spec = importlib.util.spec_from_file_location("_reference_lambertw",
                                                    sibling)
      module = importlib.util.module_from_spec(spec)
      spec.loader.exec_module(module)
      sys.modules["lambertw"] = module
    yield
  finally:
    sys.path[:] = saved_path
    if saved is missing:
      sys.modules.pop("lambertw", None)
    else:
      sys.modules["lambertw"] = saved


def load(directory: str, tight: bool = False
         ) -> Tuple[Optional[Any], Optional[str]]:
  """The reference module from `directory`, or `(None, reason)`.

  Args:
    directory: the folder holding the reference's `projected_sinkhorn`
      package (a checkout of locuslab/projected_sinkhorn).
    tight: execute the module's source with its stopping rule
      (`REFERENCE_RULE`) replaced by `TIGHT_RULE`; without that exact line
      once, the tight module is reported as unavailable.

  Returns:
    `(module, None)`, the module holding `projected_sinkhorn` and
    `wasserstein_cost`; or `(None, reason)` when the directory, torch or the
    rule is missing or the module fails to execute.
  """
  if not os.path.isdir(directory):
    return None, f"reference: no directory {directory!r}"
  try:
    import torch  # pylint: disable=import-outside-toplevel,unused-import
  except ImportError as e:
    return None, f"reference: torch not installed ({type(e).__name__})"
  package_dir = os.path.join(directory, "projected_sinkhorn")
  path = os.path.join(package_dir, "projected_sinkhorn.py")
  if not os.path.isfile(path):
    return None, f"reference: no {path}"
  name = "_reference_projected_sinkhorn" + ("_tight" if tight else "")
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  try:
    with _reference_imports(package_dir):
      if not tight:
        spec.loader.exec_module(module)
      else:
        with open(path, encoding="utf-8") as f:
          source = f.read()
        if source.count(REFERENCE_RULE) != 1:
          return None, (f"reference: {path} does not hold its stopping rule "
                        f"{REFERENCE_RULE!r} once; cannot tighten it")
        code = compile(source.replace(REFERENCE_RULE, TIGHT_RULE), path,
                       "exec")
        exec(code, module.__dict__)  # pylint: disable=exec-used
    module.projected_sinkhorn  # pylint: disable=pointless-statement
    module.wasserstein_cost  # pylint: disable=pointless-statement
  except Exception as e:  # pylint: disable=broad-except
    return None, (f"reference: import from {directory!r} failed "
                  f"({type(e).__name__}: {e})")
  return module, None


def reference_call(ref: Any, x: np.ndarray, w: np.ndarray, *, eps: float,
                   lam: float, kernel_size: int, dtype, maxiters: int
                   ) -> Tuple[Callable[[], Any], Callable[[], tuple]]:
  """`(call, run_once)` of the reference module `ref` projecting `w` onto
  the Wasserstein ball of radius `eps` around `x`.

  Args:
    ref: a module from `load`.
    x, w: `[B, H, W, C]` NHWC images (numpy, nonnegative `x`); they go to
      the reference per unit mass (divided by each image's mass m), NCHW,
      in `dtype`.
    eps, lam, kernel_size: the radius per unit mass, the entropy
      regularisation and the transport window.
    dtype: numpy dtype of the reference's inputs.
    maxiters: the reference stops after `maxiters + 1` iterations, or when
      the whole batch's objective changes by at most its `allclose`
      (`REFERENCE_RULE`: `1e-4 + 1e-4 |obj|`).

  Returns:
    `call()` runs the projection (for timing); `run_once() -> (z, iters)`
    runs it once verbosely: z `[B, H, W, C]` numpy in image units (times
    m), iters the iteration it reports terminating at (None if it said
    nothing).
  """
  import torch  # pylint: disable=import-outside-toplevel
  mass = x.sum(axis=(1, 2, 3), keepdims=True)
  nchw = lambda a: torch.from_numpy(  # pylint: disable=g-long-lambda
      np.ascontiguousarray((a / mass).transpose(0, 3, 1, 2).astype(dtype)))
  xt, wt = nchw(x), nchw(w)
  cost = ref.wasserstein_cost(xt, p=2, kernel_size=kernel_size)

  def call(verbose=False):
    return ref.projected_sinkhorn(xt, wt, cost, eps, lam, maxiters=maxiters,
                                  verbose=verbose)

  def run_once():
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
      z = call(verbose=True)
    found = re.findall(r"terminate at iteration (\d+)", log.getvalue())
    iters = int(found[-1]) if found else None
    return z.numpy().transpose(0, 2, 3, 1) * mass, iters

  return call, run_once


def projection_reference(directory: Optional[str], x: np.ndarray,
                         w: np.ndarray, *, eps: float, lam: float,
                         kernel_size: int, maxiters: int):
  """The reference in `directory` as a `throughput.ProjectionReference`
  (float32, timed; and run to convergence in float64 with `TIGHT_RULE`),
  or `(None, why not)`.

  Returns:
    `(reference or None, status)`.
  """
  if directory is None:
    return None, "reference: off (no --sinkhorn-reference)"
  ref, why = load(directory)
  if ref is None:
    return None, why
  import torch  # pylint: disable=import-outside-toplevel
  torch.set_num_threads(os.cpu_count() or 1)
  kw = dict(x=x, w=w, eps=eps, lam=lam, kernel_size=kernel_size)
  call, once = reference_call(ref, dtype=np.float32, maxiters=maxiters, **kw)
  tight, why = load(directory, tight=True)
  converged = None if tight is None else (lambda: reference_call(
      tight, dtype=np.float64, maxiters=5000, **kw)[1]())
  return throughput.ProjectionReference(
      call, once, maxiters, converged, why or "ok",
      {"directory": directory}), "ok"
