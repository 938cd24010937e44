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
    ours = c["advjax"]
    assert ours["warm_identical"] and ours["masked_identical"]
    assert list(ours["stages"]) == ["clean", "apgd-ce", "apgd-t", "fab-t",
                                    "square"]
    assert len(ours["stages_per_seed"]) == 2
  assert saved["models"]["madry"]["diagnostics"]["n"] == 32
  assert "## madry" in res["table"]
  assert all(c["holds"] for c in saved["claims"])  # AA <= PGD per example
  # A model from a training workdir.
  again = run.run(autoattack.BENCHMARK, autoattack.AutoAttackConfig(
      workdir=str(tmp_path / "ckpt"), checkpoint=str(tmp_path / "madry"),
      **{**kw, "synthetic_examples": 0}))
  assert set(again["models"]) == {"checkpoint"}
  assert again["models"]["checkpoint"]["advjax"]["clean_accuracy"] == \
      saved["models"]["madry"]["advjax"]["clean_accuracy"]
