"""Tests for advjax/checkpoint.py and resuming advjax.training.fit."""
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import optax
import pytest

from advjax import checkpoint, data, models, training

SCRIPT = textwrap.dedent("""
    import os, signal, sys
    import jax, numpy as np, optax
    from advjax import data, models, training
    from advjax.attacks import gradient

    workdir, out, kill_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
    calls = [0]

    def maybe_die(_):
      calls[0] += 1
      if calls[0] == kill_at:  # a hard kill in the middle of a step
        os.kill(os.getpid(), signal.SIGKILL)

    def attack(model_fn, x, y, *, eps, key):
      jax.debug.callback(maybe_die, eps)
      return gradient.pgd(model_fn, x, y, eps=eps, key=key, steps=1,
                          step_size=1.25 * eps)

    train = data.load("digits", "train", limit=256)
    res = training.fit(models.get_model("wong_mnist"),
                       optax.sgd(0.05, momentum=0.9), train, method="madry",
                       attack=attack, eps=0.1, epochs=6, batch_size=32,
                       workdir=workdir, save_every=4, keep=2, progress=False)
    np.savez(out, resumed_from=-1 if res.resumed_from is None else
             res.resumed_from, *[np.asarray(l) for l in
                                 jax.tree.leaves(res.state)])
""")


def _run(tmp_path, workdir, out, kill_at):
  script = tmp_path / "train.py"
  script.write_text(SCRIPT)
  env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
  return subprocess.run([sys.executable, str(script), str(workdir), str(out),
                         str(kill_at)], env=env, capture_output=True,
                        text=True, timeout=600)


@pytest.mark.slow  # three training subprocesses; CI runs it (README)
def test_killed_run_resumes_to_the_exact_parameters(tmp_path):
  # 6 epochs x 8 steps = 48 steps; checkpoints every 4 steps.
  full = _run(tmp_path, tmp_path / "full", tmp_path / "full.npz", 10 ** 9)
  assert full.returncode == 0, full.stderr[-2000:]
  killed = _run(tmp_path, tmp_path / "cut", tmp_path / "cut.npz", 27)
  assert killed.returncode == -9, killed.stderr[-2000:]
  assert not (tmp_path / "cut.npz").exists()
  steps = sorted(int(s) for s in os.listdir(tmp_path / "cut" / "checkpoints")
                 if s.isdigit())
  assert steps == [20, 24]  # keep-last-2, the kill came during step 27
  resumed = _run(tmp_path, tmp_path / "cut", tmp_path / "cut.npz", 10 ** 9)
  assert resumed.returncode == 0, resumed.stderr[-2000:]
  a, b = np.load(tmp_path / "full.npz"), np.load(tmp_path / "cut.npz")
  assert int(a["resumed_from"]) == -1 and int(b["resumed_from"]) == 24
  leaves = [k for k in a.files if k.startswith("arr_")]
  assert len(leaves) > 4
  for k in leaves:
    np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def _fit(workdir, model=None, **kw):
  """One short run; Wong's CNN unless `model` (compiles in seconds)."""
  return training.fit(model or models.get_model("wong_mnist"),
                      optax.sgd(0.1), data.load("digits", "train", limit=64),
                      epochs=1, batch_size=32, workdir=str(workdir),
                      save_every=1, progress=False, **kw)


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
  _fit(tmp_path)
  latest = tmp_path / "checkpoints" / "2"
  for root, _, files in os.walk(latest):
    for name in files:
      if name not in ("_CHECKPOINT_METADATA", "commit_success.txt"):
        with open(os.path.join(root, name), "wb") as f:
          f.write(b"\x00garbage")
  with pytest.raises(checkpoint.CheckpointError,
                     match="corrupt.*Delete .*checkpoints/2"):
    _fit(tmp_path)


# orbax leaves a tensorstore future unawaited when a restore fails.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_incompatible_checkpoint_is_a_clear_error(tmp_path):
  _fit(tmp_path, settings={"model": "wong_mnist-10"})
  with pytest.raises(checkpoint.CheckpointError, match="other settings"):
    _fit(tmp_path, models.get_model("wong_mnist", num_classes=3),
         settings={"model": "wong_mnist-3"})
  # Without settings to compare, the shapes themselves are checked.
  ckpt = checkpoint.Checkpointer(str(tmp_path))
  model = models.get_model("wong_mnist", num_classes=3)
  other = training.create_train_state(model, optax.sgd(0.1),
                                      jax.random.key(0), (8, 8, 1))
  with pytest.raises(checkpoint.CheckpointError, match="cannot be restored|holds an array"):
    ckpt.restore(other)


@pytest.mark.slow  # end-to-end training run and reload; CI runs it (README)
def test_finished_run_restores_instead_of_retraining(tmp_path):
  # A model with batch statistics: they are part of the restored state.
  model = models.get_model("preact_resnet18", width=4)
  first = _fit(tmp_path, model)
  again = _fit(tmp_path, model)
  assert again.resumed_from == 2
  for a, b in zip(jax.tree.leaves(first.state), jax.tree.leaves(again.state)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
