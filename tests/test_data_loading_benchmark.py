"""benchmarks.data_loading: the lazy epoch reads only this process's rows
and holds a few batches, not the dataset."""
import pytest

from advjax import run
from benchmarks import data_loading


def test_lazy_epoch_reads_its_rows_and_holds_little(tmp_path):
  cfg = data_loading.DataLoadingConfig(records=1000, batch_size=64,
                                       processes=4, repeats=1,
                                       workdir=str(tmp_path))
  # Raises when the two modes' batches differ.
  res = run.run_timing(data_loading.BENCHMARK, cfg)
  eager, lazy = res["modes"]["in memory"], res["modes"]["lazy"]
  assert eager["examples_read"] == 1000
  assert lazy["examples_read"] == 1000 // 64 * 16
  assert lazy["peak_bytes"] < eager["peak_bytes"] / 10
  # The float32 dataset is at least what the in-memory load holds.
  assert eager["peak_bytes"] >= 1000 * 32 * 32 * 3 * 4
  md = (tmp_path / "results.md").read_text()
  assert md.count("|") > 20 and "ImageNet 224x224 (1281167), lazy" in md
  # The report is rewritten from results.json alone.
  (tmp_path / "results.md").write_text("")
  run.rewrite_timing_report(data_loading.BENCHMARK, str(tmp_path))
  assert (tmp_path / "results.md").read_text() == md


def test_batch_must_split_over_processes(tmp_path):
  cfg = data_loading.DataLoadingConfig(batch_size=10, processes=4,
                                       workdir=str(tmp_path))
  with pytest.raises(run.ConfigError, match="divisible"):
    run.run_timing(data_loading.BENCHMARK, cfg)
