"""One process of tests/test_multiprocess.py (not a test module).

    python tests/multiprocess_worker.py OUT WORKDIR OTHER_WORKDIR DATA_DIR \
        [PROCESS_ID NUM_PROCESSES PORT]

Runs the same small job in any process layout: Madry training (L2 PGD) of
Wong's CNN on 256 digits (`training.fit`, checkpointed in WORKDIR), then robust
accuracy (PGD) and AutoAttack on 64 test digits, and restores the
checkpoint another layout wrote in OTHER_WORKDIR (when it exists). With
PROCESS_ID etc., it joins a `jax.distributed` job on 127.0.0.1 (gloo CPU
collectives). XLA_FLAGS sets the local device count. The digits are read
lazily (`data.load(..., lazy=True)`) from MNIST-format IDX files in
DATA_DIR. Process 0 writes OUT (npz): the parameters, the per-example
results, the other checkpoint's parameters, the row counts every process
fed per global batch and the examples every process read from the files.
"""
import sys

import jax

if len(sys.argv) > 5:
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(f"127.0.0.1:{sys.argv[7]}",
                             num_processes=int(sys.argv[6]),
                             process_id=int(sys.argv[5]))

import functools  # noqa: E402
import os  # noqa: E402

import numpy as np  # noqa: E402
import optax  # noqa: E402

from advjax import (checkpoint, data, evaluation, models, sharding,  # noqa: E402
                    training)
from advjax.attacks import gradient  # noqa: E402
from jax.experimental import multihost_utils  # noqa: E402


def main():
  out, workdir, other, data_dir = sys.argv[1:5]
  rows = []
  shard_batch = sharding.shard_batch

  def recording(batch, mesh):  # the rows this process feeds, per call
    rows.append(int(jax.tree.leaves(batch)[0].shape[0]))
    return shard_batch(batch, mesh)

  sharding.shard_batch = recording
  train = data.load("mnist", "train", data_dir, limit=256, lazy=True)
  test = data.load("mnist", "test", data_dir, limit=64, lazy=True)
  model = models.get_model("wong_mnist", num_classes=10)
  # L2 PGD inside Madry: its steps are continuous in the parameters, so the
  # layouts' different all-reduce orders (rounding) stay rounding. Linf
  # steps take the sign of the input gradient, and a pixel whose gradient
  # is ~0 flips with the rounding: the runs then drift apart chaotically
  # (seen once in CI at 2e-3 after 8 steps), which says nothing about the
  # sharding.
  l2_pgd = functools.partial(gradient.pgd, steps=2, norm="l2")
  res = training.fit(model, optax.adam(1e-3), train,
                     method=training.methods.madry(0.5, attack=l2_pgd),
                     epochs=2,
                     batch_size=64, seed=0, workdir=workdir, save_every=4,
                     progress=False)
  fit_rows = list(rows)
  read_in_fit = train.images.rows_read
  variables = jax.device_get(res.state.variables)
  apply_fn = lambda v, x: model.apply(v, x, train=False)
  kw = dict(batch_size=64, device_batch_size=8, key=jax.random.key(3))
  ra = evaluation.robust_accuracy(
      apply_fn, variables, test.images, test.labels,
      attack=functools.partial(gradient.pgd, steps=3), eps=[0.05, 0.1], **kw)
  read_in_ra = test.images.rows_read
  aa = evaluation.autoattack(apply_fn, variables, test.images, test.labels,
                             eps=0.1, steps=4, queries=30, **kw)
  restored = {}
  if os.path.isdir(os.path.join(other, "checkpoints")):
    restored = checkpoint.load_variables(other)["params"]
  all_rows = multihost_utils.process_allgather(
      np.asarray(fit_rows, np.int32))
  read = multihost_utils.process_allgather(
      np.asarray([read_in_fit, read_in_ra], np.int64))
  if jax.process_index() == 0:
    flat = lambda t, p: {f"{p}/{'/'.join(map(str, k))}": np.asarray(v)
                         for k, v in _items(t)}
    np.savez(out, ra_correct=ra.correct, aa_robust=aa.robust,
             aa_x_adv=aa.x_adv, aa_broken_by=aa.broken_by,
             rows=np.asarray(all_rows), read=np.asarray(read),
             devices=jax.device_count(),
             processes=jax.process_count(),
             **flat(variables["params"], "params"),
             **flat(restored, "restored"))


def _items(tree):
  return [(tuple(getattr(k, "key", k) for k in path), v)
          for path, v in jax.tree_util.tree_leaves_with_path(tree)]


if __name__ == "__main__":
  main()
