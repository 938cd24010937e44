"""benchmarks.data_loading: the lazy epoch reads only this process's rows
and holds a few batches, not the dataset."""
from benchmarks import data_loading


def test_lazy_epoch_reads_its_rows_and_holds_little(tmp_path):
  cfg = data_loading.DataLoadingConfig(records=1000, batch_size=64,
                                       processes=4, repeats=1,
                                       workdir=str(tmp_path))
  res = data_loading.run(cfg)  # raises when the two modes' batches differ
  eager, lazy = res["modes"]["in memory"], res["modes"]["lazy"]
  assert eager["examples_read"] == 1000
  assert lazy["examples_read"] == 1000 // 64 * 16
  assert lazy["peak_bytes"] < eager["peak_bytes"] / 10
  # The float32 dataset is at least what the in-memory load holds.
  assert eager["peak_bytes"] >= 1000 * 32 * 32 * 3 * 4
  assert (tmp_path / "results.md").read_text().count("|") > 20
