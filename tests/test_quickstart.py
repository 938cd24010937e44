"""Tests for advjax/experiments/quickstart.py on tiny data."""
import json
import os

from advjax.experiments import quickstart


def test_quickstart_runs_and_writes_report(tmp_path):
  cfg = quickstart.QuickstartConfig(epochs=2, limit=200, pgd_steps=2,
                                    eps=(0., 0.1), out_dir=str(tmp_path),
                                    progress=False)
  res = quickstart.run(cfg)
  for name in ("results.json", "results.md", "robust_accuracy.png"):
    assert os.path.getsize(tmp_path / name) > 0
  saved = json.load(open(tmp_path / "results.json"))
  assert saved["eps"] == [0., 0.1]
  assert set(saved["attacks"]) == {"fgsm", "pgd2"}
  # eps = 0 is clean accuracy for every attack.
  for acc in saved["attacks"].values():
    assert acc[0] == res["clean_accuracy"]
