"""The AutoAttack benchmark's real config, shrunk (advjax/experiments/autoattack.py)."""
import json
import os

import pytest

from advjax.experiments import autoattack


def test_resolve():
  cfg = autoattack.resolve(autoattack.AutoAttackConfig(dataset="mnist"))
  assert cfg.eps == 0.3 and cfg.workdir == os.path.join("runs",
                                                        "autoattack-mnist")
  with pytest.raises(ValueError, match="norm"):
    autoattack.resolve(autoattack.AutoAttackConfig(norm="l0"))


@pytest.mark.slow  # end-to-end; CI runs it (README)
def test_run_writes_the_report(tmp_path):
  kw = dict(dataset="digits", epochs=1, train_steps=2, eval_steps=2,
            eval_restarts=1, train_limit=128, eval_limit=48,
            autoattack_steps=3, autoattack_queries=10, seeds=2, peers=False,
            diagnostics_examples=32, synthetic_examples=16,
            device_batch_size=8, progress=False)
  res = autoattack.run(autoattack.AutoAttackConfig(workdir=str(tmp_path),
                                                   **kw))
  for name in ("results.json", "results.md", "autoattack.png"):
    assert os.path.getsize(tmp_path / name) > 0, name
  saved = json.load(open(tmp_path / "results.json"))
  assert set(saved["cases"]) == {"standard", "madry", "synthetic-28x28"}
  for c in saved["cases"].values():
    ours = c["advjax"]
    assert ours["warm_identical"] and ours["masked_identical"]
    assert list(ours["stages"]) == ["clean", "apgd-ce", "apgd-t", "fab-t",
                                    "square"]
    assert len(ours["stages_per_seed"]) == 2
  assert saved["cases"]["madry"]["diagnostics"]["n"] == 32
  assert "## madry" in res["table"]
  # A model from a training workdir.
  again = autoattack.run(autoattack.AutoAttackConfig(
      workdir=str(tmp_path / "ckpt"), checkpoint=str(tmp_path / "madry"),
      **{**kw, "synthetic_examples": 0}))
  assert set(again["cases"]) == {"checkpoint"}
  assert again["cases"]["checkpoint"]["advjax"]["clean_accuracy"] == \
      saved["cases"]["madry"]["advjax"]["clean_accuracy"]
