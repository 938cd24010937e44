"""Executes every notebook in `notebooks/` top to bottom; any cell error fails.

The kernel runs in the interpreter running pytest (`sys.executable`), whatever
kernel specs the user or system has installed: the test writes its own
`python3` kernel spec into a temporary directory and hands nbclient a kernel
manager that looks only there. The kernel starts in `notebooks/` with the
checkout on `PYTHONPATH`, on CPU, and without the 8 simulated devices that
`tests/conftest.py` sets for the sharding tests (the notebooks use one).

The executed copy is discarded; the notebooks on disk are not modified.
"""
import json
import os
import pathlib
import sys

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
from ipykernel import kernelspec as ipykernel_spec  # noqa: E402
from jupyter_client.kernelspec import KernelSpecManager  # noqa: E402
from jupyter_client.manager import AsyncKernelManager  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
KERNEL_NAME = "python3"
CELL_TIMEOUT_S = 600


def _kernel_env() -> dict:
  """The environment of the kernel process: CPU, one device, this checkout."""
  env = dict(os.environ)
  env["JAX_PLATFORMS"] = "cpu"
  flags = [f for f in env.get("XLA_FLAGS", "").split()
           if not f.startswith("--xla_force_host_platform_device_count")]
  if flags:
    env["XLA_FLAGS"] = " ".join(flags)
  else:
    env.pop("XLA_FLAGS", None)
  env["PYTHONPATH"] = os.pathsep.join(
      p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
  env.pop("MPLBACKEND", None)  # let ipykernel choose the inline backend
  return env


def _kernel_manager(kernel_dir: pathlib.Path) -> AsyncKernelManager:
  """A kernel manager whose `python3` kernel is `sys.executable`."""
  spec_dir = kernel_dir / KERNEL_NAME
  spec_dir.mkdir(parents=True)
  # ipykernel's own spec: argv starts with sys.executable, and the metadata
  # declares only what this ipykernel supports (e.g. CurveZMQ encryption).
  spec = ipykernel_spec.get_kernel_dict()
  spec["argv"][0] = sys.executable
  (spec_dir / "kernel.json").write_text(json.dumps(spec))
  specs = KernelSpecManager(kernel_dirs=[str(kernel_dir)],
                            ensure_native_kernel=False)
  km = AsyncKernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=specs)
  assert km.kernel_spec.argv[0] == sys.executable, km.kernel_spec.argv
  return km


def test_notebooks_found():
  assert NOTEBOOKS, f"no notebooks in {NOTEBOOK_DIR}"


@pytest.mark.slow  # CI runs it (README)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path: pathlib.Path, tmp_path: pathlib.Path):
  nb = nbformat.read(path, as_version=4)
  client = nbclient.NotebookClient(
      nb,
      km=_kernel_manager(tmp_path / "kernels"),
      kernel_name=KERNEL_NAME,
      timeout=CELL_TIMEOUT_S,
      record_timing=False,
      resources={"metadata": {"path": str(NOTEBOOK_DIR)}},  # the kernel's cwd
  )
  # A failing cell raises CellExecutionError with the cell's source and
  # traceback. cleanup_kc: shut the kernel down even though we made its
  # manager.
  client.execute(cleanup_kc=True, env=_kernel_env())
  errors = [out for cell in nb.cells if cell.cell_type == "code"
            for out in cell.get("outputs", []) if out.output_type == "error"]
  assert not errors, errors
