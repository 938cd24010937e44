"""Two processes x 4 CPU devices on loopback against one process x 8.

Each layout runs tests/multiprocess_worker.py: Madry training through
`training.fit` (checkpointed), robust accuracy and AutoAttack, and a
restore of the checkpoint the other layout wrote. The digits are written
here as MNIST IDX files, which every process reads lazily.
"""
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

WORKER = os.path.join(os.path.dirname(__file__), "multiprocess_worker.py")


def _env(devices):
  env = dict(os.environ)
  env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
  env["JAX_PLATFORMS"] = "cpu"
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env["PYTHONPATH"] = os.pathsep.join(
      p for p in (root, env.get("PYTHONPATH")) if p)
  return env


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _check(procs):
  for p in procs:
    _, err = p.communicate(timeout=600)
    assert p.returncode == 0, err.decode()[-3000:]


@pytest.mark.slow  # three JAX processes; CI runs it
def test_two_processes_match_one_and_share_checkpoints(tmp_path, digits_idx):
  one, two = str(tmp_path / "one"), str(tmp_path / "two")
  digits = digits_idx
  # One process, 8 devices (no checkpoint of the other layout yet).
  _check([subprocess.Popen(
      [sys.executable, WORKER, str(tmp_path / "one.npz"), one, two, digits],
      env=_env(8), stdout=subprocess.PIPE, stderr=subprocess.PIPE)])
  # Two processes, 4 devices each; they restore the 1-process checkpoint.
  port = str(_free_port())
  _check([subprocess.Popen(
      [sys.executable, WORKER, str(tmp_path / "two.npz"), two, one, digits,
       str(i),
       "2", port], env=_env(4), stdout=subprocess.PIPE,
      stderr=subprocess.PIPE) for i in range(2)])
  # The 1-process layout again: it reloads its finished run and restores the
  # checkpoint both processes wrote.
  _check([subprocess.Popen(
      [sys.executable, WORKER, str(tmp_path / "again.npz"), one, two,
       digits],
      env=_env(8), stdout=subprocess.PIPE, stderr=subprocess.PIPE)])
  a, b, c = (np.load(tmp_path / f"{n}.npz") for n in ("one", "two", "again"))
  assert (int(a["devices"]), int(a["processes"])) == (8, 1)
  assert (int(b["devices"]), int(b["processes"])) == (8, 2)
  params = [k for k in a.files if k.startswith("params/")]
  assert params
  for k in params:  # same training, 8 steps of Madry on 8 devices
    np.testing.assert_allclose(a[k], b[k], atol=1e-5, err_msg=k)
    restored = "restored/" + k[len("params/"):]
    # Checkpoints cross layouts: 2 processes read 1's, 1 reads 2's.
    np.testing.assert_allclose(b[restored], a[k], atol=0, err_msg=k)
    np.testing.assert_allclose(c[restored], b[k], atol=0, err_msg=k)
  # Each process fed only its half of every global batch of 64 (training
  # steps, then the evaluations' calls).
  rows = b["rows"]
  assert rows.shape[0] == 2 and rows.shape[1] >= 8
  assert np.all(rows[:, :8] == 32)
  assert np.all(a["rows"][:, :8] == 64)
  # ... and read from the files only the examples it fed: 2 epochs of 4
  # steps x 32 rows in training, its 32 of the 64 test digits in the robust
  # accuracy (AutoAttack reads them all: it returns every x_adv).
  np.testing.assert_array_equal(b["read"], [[256, 32], [256, 32]])
  np.testing.assert_array_equal(a["read"], [[512, 64]])
  # The sharded evaluations give the same per-example results.
  for k in ("ra_correct", "aa_robust", "aa_broken_by"):
    np.testing.assert_array_equal(a[k], b[k], err_msg=k)
  np.testing.assert_allclose(a["aa_x_adv"], b["aa_x_adv"], atol=1e-6)
  assert 0 < a["aa_robust"].mean() < 1
