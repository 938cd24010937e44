"""benchmarks/autoattack.py: the real config, shrunk, through the runner."""
import json
import os

import pytest

from advjax import run
from benchmarks import autoattack

resolve = lambda cfg: run.resolve(autoattack.BENCHMARK, cfg)


def test_resolve_and_flags():
  cfg = resolve(autoattack.AutoAttackConfig(dataset="mnist"))
  assert cfg.eps == 0.3 and cfg.workdir == os.path.join("runs",
                                                        "autoattack-mnist")
  with pytest.raises(ValueError, match="norm"):
    resolve(autoattack.AutoAttackConfig(norm="l0"))
  args = vars(run.make_parser(autoattack.BENCHMARK).parse_args(
      ["--eps", "8/255", "--no-peers", "--no-split-cpu", "--seeds", "2"]))
  args.pop("distributed")
  cfg = autoattack.AutoAttackConfig(**args)
  assert cfg.eps == pytest.approx(8 / 255) and not cfg.peers
  assert not cfg.split_cpu and cfg.seeds == 2


@pytest.mark.slow  # end-to-end; CI runs it (README)
def test_run_writes_the_report(tmp_path):
  kw = dict(dataset="digits", epochs=1, train_steps=2, eval_steps=2,
            eval_restarts=1, train_limit=128, eval_limit=48,
            autoattack_steps=3, autoattack_queries=10, seeds=2, peers=False,
            diagnostics_examples=32, synthetic_examples=16,
            device_batch_size=8, progress=False)
  res = run.run(autoattack.BENCHMARK, autoattack.AutoAttackConfig(
      workdir=str(tmp_path), **kw))
  for name in ("results.json", "results.md", "autoattack.png"):
    assert os.path.getsize(tmp_path / name) > 0, name
  saved = json.load(open(tmp_path / "results.json"))
  assert set(saved["models"]) == {"standard", "madry"}
  assert set(saved["extra"]) == {"synthetic-28x28"}
  for c in [*saved["models"].values(), *saved["extra"].values()]:
    ours = c["autoattack"]
    assert ours["warm_identical"] and ours["masked_identical"]
    assert list(ours["stages"]) == ["clean", "apgd-ce", "apgd-t", "fab-t",
                                    "square"]
    assert len(ours["stages_per_seed"]) == 2
    assert len(ours["robust"]) == c["n"]
    assert c["peers"] == {"skipped": "--no-peers"}
  assert "pgd" not in saved["extra"]["synthetic-28x28"]
  assert saved["models"]["madry"]["diagnostics"]["n"] == 32
  assert "## madry" in res["table"] and "robust bits agree" in res["table"]
  assert [c["verdict"] for c in saved["claims"]] == ["holds"] * 2  # AA <= PGD
  # A model from a training workdir.
  again = run.run(autoattack.BENCHMARK, autoattack.AutoAttackConfig(
      workdir=str(tmp_path / "ckpt"), checkpoint=str(tmp_path / "madry"),
      **{**kw, "synthetic_examples": 0}))
  assert set(again["models"]) == {"checkpoint"}
  assert again["models"]["checkpoint"]["autoattack"]["clean_accuracy"] == \
      saved["models"]["madry"]["autoattack"]["clean_accuracy"]


def test_zoo_flags_and_entries():
  """`--zoo-arch` takes an architecture with `--zoo-kwargs`, or a RobustBench
  entry (its architecture, keywords and eps filled in; `zoo.resolve`)."""
  cfg = resolve(autoattack.AutoAttackConfig(
      dataset="cifar10", zoo_arch="Carmon2019Unlabeled", checkpoint="c.pt"))
  assert cfg.eps == pytest.approx(8 / 255) and cfg.lazy_data
  assert autoattack.models_to_evaluate(cfg, None) == {
      "Carmon2019Unlabeled": run.LoadTorch("WideResNet", "c.pt", dict(
          depth=28, widen_factor=10, sub_block1=True))}
  cfg = resolve(autoattack.AutoAttackConfig(
      dataset="cifar10", zoo_arch="DMWideResNet", checkpoint="d.pt",
      zoo_kwargs="depth=70, width=16,activation_fn=swish"))
  assert autoattack.models_to_evaluate(cfg, None)["DMWideResNet"].kwargs == \
      dict(depth=70, width=16, activation_fn="swish")
  with pytest.raises(ValueError, match="needs --checkpoint"):
    resolve(autoattack.AutoAttackConfig(dataset="cifar10",
                                        zoo_arch="Standard"))
  with pytest.raises(ValueError, match="takes no keyword"):
    resolve(autoattack.AutoAttackConfig(
        dataset="cifar10", zoo_arch="WideResNet", checkpoint="c.pt",
        zoo_kwargs="width=3"))
  with pytest.raises(ValueError, match="key=value"):
    resolve(autoattack.AutoAttackConfig(
        dataset="cifar10", zoo_arch="WideResNet", checkpoint="c.pt",
        zoo_kwargs="depth"))


def _write_cifar10(directory, n=16, seed=0):
  """Raw CIFAR-10 binary batches (label byte + 3072 CHW bytes per image)."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  from advjax import data  # pylint: disable=import-outside-toplevel
  os.makedirs(directory, exist_ok=True)
  rng = np.random.default_rng(seed)
  for names in data.DATASETS["cifar10"].raw_files.values():
    for name in names:
      rows = np.concatenate([rng.integers(0, 10, (n, 1)),
                             rng.integers(0, 256, (n, 3072))], 1)
      (directory / name).write_bytes(rows.astype(np.uint8).tobytes())


@pytest.mark.slow  # end-to-end; CI runs it (README)
def test_run_on_a_converted_checkpoint(tmp_path):
  """The issue's command, shrunk: a checkpoint file (safetensors, exported
  from a small WideResNet) on raw CIFAR-10 files, through the runner."""
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from advjax import data, zoo  # pylint: disable=import-outside-toplevel
  _write_cifar10(tmp_path / "cifar-10-batches-bin")
  model = zoo.build("WideResNet", depth=10, widen_factor=1)
  variables = model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
  zoo.convert.write_safetensors(tmp_path / "wrn.safetensors",
                                zoo.convert.to_state_dict(variables))
  args = ["--zoo-arch", "WideResNet", "--zoo-kwargs",
          "depth=10,widen_factor=1", "--checkpoint",
          str(tmp_path / "wrn.safetensors"), "--dataset", "cifar10",
          "--data-dir", str(tmp_path), "--norm", "linf", "--eps", "8/255",
          "--eval-limit", "8", "--autoattack-steps", "2",
          "--autoattack-queries", "4", "--seeds", "1", "--no-peers",
          "--eval-steps", "2", "--eval-restarts", "1",
          "--diagnostics-examples", "8", "--synthetic-examples", "0",
          "--device-batch-size", "4", "--no-progress", "--no-split-cpu",
          "--workdir", str(tmp_path / "run")]
  flags = vars(run.make_parser(autoattack.BENCHMARK).parse_args(args))
  flags.pop("distributed")
  res = run.run(autoattack.BENCHMARK, autoattack.AutoAttackConfig(**flags))
  c = res["models"]["WideResNet"]
  assert c["zoo_arch"] == "WideResNet" and c["n"] == 8
  test = data.load("cifar10", "test", str(tmp_path), limit=8)
  logits = model.apply(variables, jnp.asarray(test.images))
  labels = test.labels
  assert c["autoattack"]["clean_accuracy"] == pytest.approx(float(
      (logits.argmax(-1) == labels).mean()))
  assert c["autoattack"]["robust_accuracy"] <= c["autoattack"][
      "clean_accuracy"]
  assert os.path.getsize(tmp_path / "run" / "results.md") > 0


def test_image_sets_take_a_converted_checkpoint_only(tmp_path):
  """ImageNet-style sets: --zoo-arch required; the validation split is what
  is evaluated, at RobustBench's 4/255."""
  with pytest.raises(ValueError, match="converted checkpoint only"):
    resolve(autoattack.AutoAttackConfig(dataset="folder"))
  cfg = resolve(autoattack.AutoAttackConfig(
      dataset="imagenet2012", zoo_arch="imagenet/Salman2020Do_R50",
      checkpoint="r50.pt", data_dir=str(tmp_path)))
  assert cfg.eps == pytest.approx(4 / 255) and cfg.model is None
  with pytest.raises(autoattack.data.DatasetNotFoundError,
                     match="downloads"):
    autoattack.load_data(cfg)
  assert autoattack.load_data(autoattack.AutoAttackConfig()) is None
