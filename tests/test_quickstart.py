"""Tests for benchmarks/quickstart.py: the real config, shrunk, through the
runner."""
import json
import os

from advjax import report, run
from benchmarks import quickstart


def test_quickstart_runs_and_writes_report(tmp_path):
  cfg = quickstart.QuickstartConfig(epochs=1, train_limit=256, eval_limit=64,
                                    pgd_steps=2, eps=(0., 0.1),
                                    workdir=str(tmp_path), progress=False)
  res = run.run(quickstart.BENCHMARK, cfg)
  for name in ("results.json", "results.md", "robust_accuracy.png"):
    assert os.path.getsize(tmp_path / name) > 0
  saved = json.load(open(tmp_path / "results.json"))
  r = saved["models"]["standard"]
  assert set(r) >= {"fgsm", "pgd2", "history"}
  # eps = 0 is clean accuracy for every attack.
  for name in ("fgsm", "pgd2"):
    acc = r[name]["accuracy"]
    assert len(acc) == 2 and acc[0] == r[name]["clean_accuracy"]
  assert [c.verdict in report.VERDICTS for c in res["claims"]] == [True]
  assert "clean accuracy" in open(tmp_path / "results.md").read()


def test_flags():
  args = vars(run.make_parser(quickstart.BENCHMARK).parse_args(
      ["--epochs", "3", "--pgd-steps", "5", "--eps", "0,0.1"]))
  args.pop("distributed")
  cfg = quickstart.QuickstartConfig(**args)
  assert (cfg.epochs, cfg.pgd_steps, cfg.eps) == (3, 5, (0., 0.1))
