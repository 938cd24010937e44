"""Tests for benchmarks.speed, its PyTorch replica and the reference
loader (tiny sizes)."""
import dataclasses
import json
import math
import pathlib
import re
import shlex
import sys

import jax
import numpy as np
import pytest

from advjax import data, models, report, run
from advjax.evaluation import throughput
from benchmarks import speed
from benchmarks.peers import projected_sinkhorn, torch_peers

TINY = dict(batch=8, image_shape=(8, 8, 1), steps=2, restarts=2, repeats=1,
            peers=False, progress=False, sinkhorn_batch=4,
            sinkhorn_shape=(12, 12, 1), sinkhorn_max_iterations=20,
            minimal_repeats=1, deepfool_steps=5, deepfool_peer_batch=2,
            cw_batch=4, cw_steps=5, cw_paper_batch=4, cw_paper_steps=5,
            cw_paper_search_steps=2, jsma_batch=4, jsma_peer_batch=2,
            jsma_gamma=0.2, foolbox_batches=(4,))
MINIMAL_ATTACKS = ["DeepFool", "CW-L2 1x5", "CW-L2 1x5 abort", "JSMA",
                   "CW-L2 2x5"]


@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory):
  out_dir = tmp_path_factory.mktemp("speed")
  return run.run_timing(speed.BENCHMARK, speed.SpeedConfig(
      workdir=str(out_dir), **TINY)), out_dir


@pytest.mark.slow  # an end-to-end benchmark run (tiny); CI runs it (README)
def test_run_structure(tiny_results):
  results, _ = tiny_results
  for key in ("config", "machine", "peers", "rows", "overhead", "peer_ratio",
              "minimal", "seconds", "table"):
    assert key in results
  assert results["peers"]["status"].startswith("off")
  assert results["machine"]["cpu_count"] >= 1
  got = {(r["attack"], r["norm"]) for r in results["rows"]}
  assert got == {("fwd+bwd", "-"), ("FGSM", "linf"), ("FGM", "l2"),
                 ("PGD-2", "linf"), ("PGD-2", "l2"), ("PGD-2x2", "linf"),
                 ("PGD-2x2", "l2")}
  assert set(results["overhead"]) == {"linf", "l2"}
  for row in results["rows"]:
    assert len(row["ms_all"]) == TINY["repeats"]
    assert row["peer_images_per_s"] is None and row["peer_ratio"] is None


@pytest.mark.slow  # an end-to-end benchmark run (tiny); CI runs it (README)
def test_rates_positive_and_finite(tiny_results):
  results, _ = tiny_results
  for row in results["rows"]:
    for key in ("images_per_s", "ms_per_batch", "ms_min", "ms_max",
                "first_call_s", "overhead"):
      assert math.isfinite(row[key]) and row[key] > 0, (row["attack"], key)
    assert row["ms_min"] <= row["ms_per_batch"] <= row["ms_max"]
    assert row["images_per_s"] == pytest.approx(
        TINY["batch"] / (row["ms_per_batch"] / 1e3))
  fb = [r for r in results["rows"] if r["attack"] == "fwd+bwd"][0]
  assert fb["overhead"] == pytest.approx(1.)


@pytest.mark.slow  # an end-to-end benchmark run (tiny); CI runs it (README)
def test_files_written(tiny_results):
  results, out_dir = tiny_results
  with open(out_dir / "results.json") as f:
    saved = json.load(f)
  assert len(saved["rows"]) == len(results["rows"])
  assert saved["config"]["batch"] == TINY["batch"]
  md = (out_dir / "results.md").read_text()
  assert "| attack | norm | images/s |" in md
  assert "PGD-2x2" in md and "off" in md


@pytest.mark.parametrize("change, match", [
    ({"steps": 0}, "steps"), ({"cw_paper_search_steps": 0},
                              "cw_paper_search_steps"),
    ({"cw_paper_search_steps": 1, "cw_paper_steps": TINY["cw_steps"]},
     "must differ"), ({"sinkhorn_relaxations": (1.5, 2.)}, "relaxations"),
    ({"sinkhorn_tols": (1e-4,)}, "as long"), ({"jsma_gamma": 1.5}, "gamma"),
    ({"image_shape": (8, 8)}, "image_shape")])
def test_bad_config_raises_before_measuring(tmp_path, change, match):
  cfg = speed.SpeedConfig(workdir=str(tmp_path), **{**TINY, **change})
  with pytest.raises(run.ConfigError, match=match):
    run.run_timing(speed.BENCHMARK, cfg)
  assert not list(tmp_path.iterdir())


def test_out_dir_is_now_workdir():
  with pytest.raises(SystemExit, match="--workdir"):
    run.timing_main(speed.BENCHMARK, ["--out-dir", "x"])


def _check_minimal_rows(rows):
  """The minimal-perturbation rows of a TINY run: timings and quality."""
  assert [r["attack"] for r in rows] == MINIMAL_ATTACKS
  # Batches: DeepFool on the whole batch, CW on the first cw_batch images.
  assert [r["batch"] for r in rows] == [TINY["batch"], 4, 4, 4, 4]
  for row in rows:
    for key in ("images_per_s", "ms_per_batch", "ms_per_image",
                "first_call_s", "median_iters"):
      assert math.isfinite(row[key]) and row[key] > 0, (row["attack"], key)
    assert row["ms_per_image"] == pytest.approx(1e3 / row["images_per_s"])
    assert 0 <= row["success_rate"] <= 1
    assert (row["mean_l2"] is None) == (row["success_rate"] == 0)
    if row["mean_l2"] is not None:
      assert math.isfinite(row["mean_l2"]) and row["mean_l2"] > 0
  deepfool, cw, cw_abort, jsma, cw_paper = rows
  assert deepfool["success_rate"] >= 0.5  # labels: the model's predictions
  assert cw["median_iters"] == TINY["cw_steps"]  # no early abort
  assert cw_abort["median_iters"] <= TINY["cw_steps"]
  assert jsma["norm"] == "l0" and jsma["targeted"]
  if jsma["mean_l0"] is not None:  # at most gamma of the 64 features
    assert 1 <= jsma["mean_l0"] <= 0.2 * 64 + 2
  assert cw_paper["median_iters"] <= (TINY["cw_paper_search_steps"]
                                      * TINY["cw_paper_steps"])
  assert cw_paper["peer"] is None and cw_paper["peer_ratio"] is None


@pytest.mark.slow  # an end-to-end benchmark run (tiny); CI runs it (README)
def test_minimal_rows(tiny_results):
  results, out_dir = tiny_results
  assert results["minimal"]["status"] == "ok"
  rows = results["minimal"]["rows"]
  _check_minimal_rows(rows)
  for row in rows:
    assert row["peer_images_per_s"] is None and row["peer_ratio"] is None
    assert row["peer_success_rate"] is None
  md = (out_dir / "results.md").read_text()
  assert "## Minimal-perturbation attacks" in md
  lines = [line for line in md.splitlines() if line.startswith("| CW-L2 2x5")]
  assert len(lines) == 1 and "off" in lines[0]


@pytest.mark.slow  # an end-to-end benchmark run (tiny); CI runs it (README)
def test_sections_off_say_so(tiny_results):
  results, _ = tiny_results
  cfg = speed.SpeedConfig(**TINY)
  off = {**results, "minimal": {"status": "off (minimal=False)", "rows": []},
         "foolbox": {"status": "off (foolbox=False)", "rows": []},
         "sinkhorn": {"status": "off (sinkhorn=False)"}}
  md = report.render(speed.REPORT, cfg, report.jsonable(off)).markdown
  assert "Minimal-perturbation attacks: off (minimal=False)" in md
  assert "Foolbox: off" in md and "Wasserstein projection: off" in md


@pytest.mark.parametrize("image_shape", [(28, 28, 1), (9, 7, 3)])
def test_torch_replica_matches_flax_logits(image_shape):
  torch = pytest.importorskip("torch")
  model = models.get_model("wong_mnist", num_classes=10)
  variables = models.init_model(model, jax.random.key(0), image_shape)
  x = jax.random.uniform(jax.random.key(1), (5,) + image_shape)
  flax_logits = np.asarray(model.apply(variables, x, train=False))
  net = torch_peers.wong_cnn_from_flax(variables["params"], image_shape)
  with torch.no_grad():
    torch_logits = net(torch_peers.to_nchw(x)).numpy()
  np.testing.assert_allclose(torch_logits, flax_logits, atol=1e-4, rtol=0)


def test_replica_says_why_it_is_missing():
  x = np.zeros((1, 8, 8, 1), np.float32)
  off, net = torch_peers.replica_if_available(False, "wong_mnist", {},
                                              (8, 8, 1), x, x)
  assert off == {"status": "off (peers=False)"} and net is None
  other, _ = torch_peers.replica_if_available(True, "madry_mnist", {},
                                              (8, 8, 1), x, x)
  assert ("no PyTorch replica" in other["status"]
          or "not installed" in other["status"])


def test_torch_replica_rejects_wrong_shape():
  pytest.importorskip("torch")
  model = models.get_model("wong_mnist", num_classes=10)
  variables = models.init_model(model, jax.random.key(0), (8, 8, 1))
  with pytest.raises(ValueError, match="do not fit"):
    torch_peers.wong_cnn_from_flax(variables["params"], (28, 28, 1))


@pytest.mark.slow  # a peer comparison; CI runs it (README)
def test_run_with_peers(tmp_path):
  pytest.importorskip("torch")
  pytest.importorskip("torchattacks")
  config = speed.SpeedConfig(workdir=str(tmp_path),
                             **{**TINY, "peers": True, "restarts": 1})
  results = run.run_timing(speed.BENCHMARK, config)
  assert results["peers"]["status"] == "ok"
  assert (results["peers"]["logit_max_abs_diff"]
          <= torch_peers.LOGIT_TOLERANCE)
  timed = {(r["attack"], r["norm"]): r for r in results["rows"]
           if r["peer"] is not None}
  assert {("fwd+bwd", "-"), ("FGSM", "linf"), ("PGD-2", "linf"),
          ("PGD-2", "l2")} <= set(timed)
  for row in timed.values():
    assert math.isfinite(row["peer_images_per_s"])
    assert row["peer_images_per_s"] > 0 and row["peer_ratio"] > 0
  assert "torchattacks" in (tmp_path / "results.md").read_text()
  # DeepFool and the fixed-c CW-L2 against torchattacks on the same weights.
  rows = results["minimal"]["rows"]
  _check_minimal_rows(rows)
  deepfool, cw, cw_abort, jsma, _ = rows
  assert deepfool["peer"] == "torchattacks.DeepFool"
  assert cw["peer"] == cw_abort["peer"] == "torchattacks.CW"
  assert jsma["peer"] == "torchattacks.JSMA"
  assert deepfool["peer_batch"] == TINY["deepfool_peer_batch"]
  assert jsma["peer_batch"] == TINY["jsma_peer_batch"]
  assert cw["peer_batch"] == cw["batch"]
  for row in (deepfool, cw, cw_abort, jsma):
    assert math.isfinite(row["peer_images_per_s"])
    assert row["peer_images_per_s"] > 0 and row["peer_ratio"] > 0
    assert row["peer_ms_per_image"] == pytest.approx(
        1e3 / row["peer_images_per_s"])
    for prefix in ("peer_", "matched_"):
      assert 0 <= row[prefix + "success_rate"] <= 1
    assert row["peer_forward_calls"] >= 1
  # torchattacks.CW calls the net once per Adam step, at most cw_steps.
  assert cw["peer_forward_calls"] <= TINY["cw_steps"]
  # Same images: advjax's CW-L2 matches its own full-batch figures.
  assert cw["matched_success_rate"] == cw["success_rate"]
  md = (tmp_path / "results.md").read_text()
  assert "torchattacks.CW has no binary search" in md


@pytest.mark.slow  # an end-to-end benchmark run (tiny); CI runs it (README)
def test_table_says_when_peers_are_missing(tiny_results):
  results, _ = tiny_results
  missing = {k: v for k, v in results.items() if k != "table"}
  missing["peers"] = {"status": "peers not installed: torch (ImportError)."}
  table = report.render(speed.REPORT, speed.SpeedConfig(**TINY),
                        report.jsonable(missing)).markdown
  assert "peers not installed" in table
  rows = [line for line in table.splitlines()
          if line.startswith(("| PGD", "| DeepFool", "| CW-L2", "| JSMA"))
          and "foolbox" not in line and "|" in line[2:]]
  rows = [line for line in rows if "not installed" in line or "off" in line]
  assert len(rows) == 4 + len(MINIMAL_ATTACKS)
  assert all("not installed" in line for line in rows)


@pytest.mark.slow  # an end-to-end benchmark run (tiny); CI runs it (README)
def test_sinkhorn_section_tiny(tiny_results):
  results, out_dir = tiny_results
  sk = results["sinkhorn"]
  assert sk["status"] == "ok"
  assert sk["reference"]["status"].startswith("reference: off")
  for key in ("images_per_s", "ms_per_batch", "ms_min", "ms_max",
              "first_call_s"):
    assert math.isfinite(sk[key]) and sk[key] > 0, key
  assert sk["ms_min"] <= sk["ms_per_batch"] <= sk["ms_max"]
  assert 1 <= sk["median_iters"] <= 20 and 0 <= sk["converged"] <= 4
  assert 0 < sk["zero_pixel_fraction"] < 1
  # One row per (tol, relaxation) setting, the default first, each scored
  # against the converged float64 projection.
  assert len(sk["rows"]) == 1 + len(speed.SpeedConfig().sinkhorn_tols)
  assert sk["rows"][0]["tol"] == speed.SpeedConfig().sinkhorn_tol
  assert sk["converged_point"]["converged"] == 4
  for row in sk["rows"]:
    assert 0 <= row["max_abs_error"] < 1, row
  md = (out_dir / "results.md").read_text()
  assert "Wasserstein projection" in md and "off" in md
  # The report is rewritten from results.json alone, measuring nothing.
  (out_dir / "results.md").write_text("")
  run.rewrite_timing_report(speed.BENCHMARK, str(out_dir))
  assert (out_dir / "results.md").read_text() == md


def test_missing_reference_is_reported(tmp_path):
  x = data.mnist_like_images(2, (8, 8, 1))
  ref, why = projected_sinkhorn.projection_reference(
      str(tmp_path / "no"), x, x, eps=0.5, lam=100., kernel_size=3,
      maxiters=9)
  assert ref is None and why.startswith("reference: no directory")
  off, why = projected_sinkhorn.projection_reference(
      None, x, x, eps=0.5, lam=100., kernel_size=3, maxiters=9)
  assert off is None and why.startswith("reference: off")


def test_reference_stopping_rule_tightened_at_run_time(tmp_path):
  pytest.importorskip("torch")
  pkg = tmp_path / "ref" / "projected_sinkhorn"
  pkg.mkdir(parents=True)
  (pkg / "__init__.py").write_text("")
  body = ("def projected_sinkhorn(*a, **k):\n  return allclose\n"
          "def wasserstein_cost(*a, **k):\n  pass\n")
  (pkg / "projected_sinkhorn.py").write_text(
      projected_sinkhorn.REFERENCE_RULE + "\n" + body)
  tight, why = projected_sinkhorn.load(str(tmp_path / "ref"), tight=True)
  assert why is None
  import torch  # pylint: disable=import-outside-toplevel
  rule = tight.projected_sinkhorn()
  # The tight rule rejects a change the reference's own rule accepts.
  a, b = torch.tensor([1.0]), torch.tensor([1.0 + 1e-5])
  assert not bool(rule(a, b)) and bool(rule(a, a))
  (pkg / "projected_sinkhorn.py").write_text(body)
  none, why = projected_sinkhorn.load(str(tmp_path / "ref"), tight=True)
  assert none is None and "cannot tighten" in why


def test_mnist_like_images():
  x = data.mnist_like_images(3, (28, 28, 2))
  assert x.shape == (3, 28, 28, 2) and x.dtype == np.float32
  assert x.min() == 0 and x.max() <= 1 and np.mean(x == 0) > 0.5
  assert np.all(x[:, :4] == 0) and np.all(x.sum(axis=(1, 2, 3)) > 0)
  np.testing.assert_array_equal(x, data.mnist_like_images(3, (28, 28, 2)))


def test_reference_loads_without_touching_sys_path(tmp_path, monkeypatch):
  """The reference's layout: `from lambertw import ...` of its sibling and a
  `sys.path.append` of its own; neither leaks out of `load`."""
  pytest.importorskip("torch")
  pkg = tmp_path / "ref" / "projected_sinkhorn"
  pkg.mkdir(parents=True)
  (pkg / "__init__.py").write_text("from .projected_sinkhorn import *\n")
  (pkg / "lambertw.py").write_text("def lambertw(z):\n  return 'w'\n")
  (pkg / "projected_sinkhorn.py").write_text(
      "import sys\nsys.path.append('/nethome/author/path')\n"
      "from lambertw import lambertw\n"
      + projected_sinkhorn.REFERENCE_RULE + "\n"
      "def projected_sinkhorn(*a, **k):\n  return lambertw(0)\n"
      "def wasserstein_cost(*a, **k):\n  return allclose\n")
  before = list(sys.path)
  sentinel = object()
  monkeypatch.setitem(sys.modules, "lambertw", sentinel)
  modules = set(sys.modules)
  for tight in (False, True):
    ref, why = projected_sinkhorn.load(str(tmp_path / "ref"), tight=tight)
    assert why is None, why
    assert ref.projected_sinkhorn() == "w"
    assert sys.path == before
    assert sys.modules["lambertw"] is sentinel
    assert set(sys.modules) == modules
  monkeypatch.delitem(sys.modules, "lambertw")
  projected_sinkhorn.load(str(tmp_path / "ref"))
  assert "lambertw" not in sys.modules
  missing, why = projected_sinkhorn.load(str(tmp_path))
  assert missing is None and why.startswith("reference: no ")


def test_every_config_field_has_a_documented_flag():
  helps = run.field_help(speed.SpeedConfig)
  missing = [f.name for f in dataclasses.fields(speed.SpeedConfig)
             if f.name not in helps]
  assert not missing, missing


def _documented_commands(module):
  """The flags of every `python -m benchmarks.<module> ...` command the
  README and the module's docstring give (comments after # dropped)."""
  text = (pathlib.Path(__file__).resolve().parents[1] / "README.md"
          ).read_text() + "\n" + module.__doc__
  name = module.__name__.rsplit(".", 1)[-1]
  found = re.findall(rf"python -m benchmarks\.{name}\b([^`|\n)]*)", text)
  return [[{"DIR": "/tmp/x", "N": "3"}.get(t, t)
           for t in shlex.split(flags.split("#")[0])] for flags in found]


def test_documented_commands_parse():
  commands = _documented_commands(speed)
  assert ["--sinkhorn-reference", "/tmp/x"] in commands
  assert ["--no-minimal"] in commands
  for argv in commands:
    config = run.parse_config(speed.SpeedConfig, argv, prog="speed")
    run.check_timing_config(speed.BENCHMARK, config)
  config = run.parse_config(speed.SpeedConfig, [
      "--image-shape", "8,8,1", "--no-peers", "--no-sinkhorn", "--batch", "8",
      "--sinkhorn-tols", "1e-4,1e-5", "--sinkhorn-relaxations", "1.5,1"],
                            prog="speed")
  assert config.image_shape == (8, 8, 1) and config.batch == 8
  assert not config.peers and not config.sinkhorn and config.minimal
  got = throughput.sinkhorn_settings(
      config.sinkhorn_tol, config.sinkhorn_relaxation, config.sinkhorn_tols,
      config.sinkhorn_relaxations)
  assert got == [(1e-6, 1.5), (1e-4, 1.5), (1e-5, 1.)]


@pytest.mark.slow  # an end-to-end benchmark run (tiny); CI runs it (README)
def test_foolbox_section(tiny_results):
  results, out_dir = tiny_results
  fb = results["foolbox"]
  try:
    import foolbox  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
  except ImportError:
    assert "foolbox not installed" in fb["status"] and fb["rows"] == []
    return
  assert fb["status"] == "ok"
  assert {(r["norm"], r["batch"]) for r in fb["rows"]} == {
      ("linf", 4), ("l2", 4)}
  for r in fb["rows"]:
    assert r["images_per_s"] > 0 and r["peer_images_per_s"] > 0
    assert r["peer_ratio"] == pytest.approx(
        r["images_per_s"] / r["peer_images_per_s"])
    assert 0 <= r["success_rate"] <= 1 and 0 <= r["peer_success_rate"] <= 1
  assert "## Foolbox" in (out_dir / "results.md").read_text()
