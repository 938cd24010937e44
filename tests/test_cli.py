"""Tests for the command line of the runner (`run.main`, `run.timing_main`):
what it says while it works, Ctrl-C, the workdir check, --help, misspelt
choices, the TensorBoard event files of training."""
import dataclasses
import gc
import glob
import logging
import os
import re
import signal
import struct
import subprocess
import sys
import threading
import time

import pytest

from advjax import report, run
from test_run import TOY, _benchmarks, _toy_timing

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOY_ARGS = ["--dataset", "synthetic", "--train-limit", "64", "--eval-limit",
            "16", "--no-progress"]


def _lines(text):
  """The log lines without their time stamps."""
  out = []
  for line in text.splitlines():
    m = re.match(r"\d\d:\d\d:\d\d (.*)", line)
    if m:
      out.append(m.group(1))
  return out


def _scalars(logdir):
  """{tag: [(step, value)]} read back from the TensorBoard event files in
  `logdir` (TFRecord framing: length, its CRC, an Event proto, its CRC)."""
  # pylint: disable-next=import-outside-toplevel
  from tensorboardX.proto import event_pb2
  out = {}
  files = glob.glob(os.path.join(logdir, "events.out.tfevents.*"))
  assert files, f"no event file in {logdir}"
  for path in files:
    with open(path, "rb") as f:
      while header := f.read(8):
        (n,) = struct.unpack("<Q", header)
        f.read(4)
        event = event_pb2.Event.FromString(f.read(n))
        f.read(4)
        for v in event.summary.value:
          out.setdefault(v.tag, []).append((event.step, v.simple_value))
  return out


def test_a_run_says_what_it_does_and_a_rerun_what_it_reuses(tmp_path,
                                                           capsys):
  argv = TOY_ARGS + ["--workdir", str(tmp_path)]
  run.main(TOY, argv)
  captured = capsys.readouterr()
  assert "# toy on synthetic" in captured.out  # the report on stdout
  assert re.search(r"^\d\d:\d\d:\d\d toy on synthetic: workdir ",
                   captured.err, re.M)  # time-stamped lines
  lines = _lines(captured.err)
  text = "\n".join(lines)
  for expected in (
      f"toy on synthetic: workdir {tmp_path}",
      "loading synthetic (train_limit 64, eval_limit 16)",
      "loaded synthetic: 64 train and 16 test examples, 10 classes",
      f"train standard: method standard, 1 epoch of 2 steps, batch 32 "
      f"({tmp_path / 'standard'})",
      "train madry: 1 epoch in ",
      "computing the evaluation of madry with accuracy on 16 test examples",
      "computed the evaluation of madry with accuracy on 16 test examples in",
      f"writing the report (results.json, results.md, 1 figure) to {tmp_path}",
      f"results: {tmp_path / 'results.md'}",
      f"also wrote in {tmp_path}: results.json, acc.png",
      "claims checked: 1 holds, 0 partly, 0 fails",
      "  holds: two models [2]"):
    assert expected in text, (expected, text)
  madry_done = next(l for l in lines if l.startswith("train madry: 1 epoch"))
  assert re.search(r"loss [\d.]+, accuracy [\d.]+ %, adv_accuracy [\d.]+ %, "
                   r"eps 0.1$", madry_done), madry_done
  assert lines[-1] == "  holds: two models [2]"  # the claims come last
  # The console handler is main's alone: gone after it, the logger as it was.
  logger = logging.getLogger("advjax")
  assert not logger.handlers and logger.propagate

  # TensorBoard: every logged step and epoch of each model's training.
  std = _scalars(str(tmp_path / "standard" / "tensorboard"))
  assert {"step/loss", "step/accuracy", "step/learning_rate", "epoch/loss",
          "epoch/accuracy", "epoch/images_per_second"} <= set(std)
  assert [s for s, _ in std["step/loss"]] == [2]  # log_every 10: the end
  assert std["step/learning_rate"] == [(2, pytest.approx(1e-3))]
  assert std["epoch/loss"][0][1] > 0
  madry = _scalars(str(tmp_path / "madry" / "tensorboard"))
  assert madry["step/eps"] == [(2, pytest.approx(0.1))]
  assert "step/adv_accuracy" in madry and "epoch/adv_accuracy" in madry

  run.main(TOY, argv)
  text = "\n".join(_lines(capsys.readouterr().err))
  assert ("train madry: trained already (step 2 of 2): reusing its "
          f"checkpoint in {tmp_path / 'madry'}") in text
  assert ("reusing the evaluation of madry with accuracy on 16 test "
          f"examples ({tmp_path / 'madry' / 'eval-accuracy.pkl'})") in text
  assert "computing" not in text and " epoch in " not in text
  # A reload trains nothing, so it writes no event file.
  assert len(glob.glob(str(tmp_path / "madry" / "tensorboard" / "*"))) == 1


_INTERRUPTED = ("interrupted; rerun the same command to resume from the last "
                "checkpoint in {}")


def _start(workdir):
  code = ("import sys; sys.path.insert(0, 'tests'); from test_run import TOY; "
          "from advjax import run; run.main(TOY)")
  return subprocess.Popen(
      [sys.executable, "-c", code, *TOY_ARGS, "--clean-only", "--epochs",
       "500", "--save-every", "5", "--workdir", workdir],
      cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _interrupt_when(proc, ready, timeout=240):
  """Sends SIGINT to `proc` once `ready(its stderr so far)`; returns its
  exit status and stderr."""
  err = []
  reader = threading.Thread(target=lambda: err.extend(proc.stderr),
                            daemon=True)
  reader.start()
  start = time.time()
  try:
    while not ready("".join(err)):
      assert proc.poll() is None, "finished first: " + "".join(err)
      assert time.time() - start < timeout, "".join(err)
      time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    rc = proc.wait(timeout=120)
  finally:
    proc.kill()
  reader.join(timeout=10)
  return rc, "".join(err)


@pytest.mark.slow  # a killed-and-resumed run in a subprocess; CI runs it (README)
def test_ctrl_c_exits_130_with_one_line_and_a_rerun_resumes(tmp_path):
  workdir = str(tmp_path / "w")
  saved = os.path.join(workdir, "standard", "checkpoints")

  def checkpointed(err):
    del err
    return os.path.isdir(saved) and any(n.isdigit() for n in os.listdir(saved))

  rc, err = _interrupt_when(_start(workdir), checkpointed)
  assert rc == 130, err
  assert "Traceback" not in err and "KeyboardInterrupt" not in err
  assert err.rstrip().splitlines()[-1] == _INTERRUPTED.format(workdir)
  # The rerun restores the last checkpoint (a corrupt one would raise).
  rc, err = _interrupt_when(_start(workdir),
                            lambda err: "resuming from step" in err)
  assert rc == 130, err
  step = re.search(r"train standard: resuming from step (\d+) of 1000 "
                   r"\((.*)\)", err)
  assert step and int(step.group(1)) >= 1, err
  assert step.group(2) == os.path.join(workdir, "standard")


def test_ctrl_c_in_process(tmp_path, capsys):
  def interrupted(*args):
    del args
    raise KeyboardInterrupt

  with pytest.raises(SystemExit) as e:
    run.main(TOY._replace(models=interrupted),
             TOY_ARGS + ["--workdir", str(tmp_path)])
  assert e.value.code == 130
  err = capsys.readouterr().err
  assert err.splitlines()[-1] == _INTERRUPTED.format(tmp_path)
  bench = _toy_timing([])._replace(measure=interrupted)
  with pytest.raises(SystemExit) as e:
    run.timing_main(bench, ["--workdir", str(tmp_path / "t")])
  assert e.value.code == 130
  assert capsys.readouterr().err.splitlines()[-1] == (
      "interrupted; nothing measured was kept: rerun the same command to "
      f"measure again (results go to {tmp_path / 't'})")


def test_a_ctrl_c_python_drops_in_a_gc_callback_is_raised_again(tmp_path,
                                                                capsys):
  """A KeyboardInterrupt raised while a gc callback runs (jax has one) is
  dropped by Python; main raises it again until it lands."""
  fired, handler = [], signal.getsignal(signal.SIGINT)

  def on_gc(phase, info):
    del info
    if phase == "start" and not fired:
      fired.append(time.time())
      signal.raise_signal(signal.SIGINT)  # handled here, in the callback

  def models(cfg, env):
    del cfg, env
    gc.callbacks.append(on_gc)
    try:
      gc.collect()
      for _ in range(200):  # 10 s unless the interrupt comes again
        time.sleep(0.05)
    finally:
      gc.callbacks.remove(on_gc)
    return {}

  with pytest.raises(SystemExit) as e:
    run.main(TOY._replace(models=models),
             TOY_ARGS + ["--workdir", str(tmp_path)])
  assert e.value.code == 130 and fired
  assert time.time() - fired[0] < 5
  err = capsys.readouterr().err
  assert "Traceback" not in err and "Exception ignored" not in err, err
  assert err.splitlines()[-1] == _INTERRUPTED.format(tmp_path)
  assert signal.getsignal(signal.SIGINT) is handler  # restored


def test_a_workdir_that_cannot_be_written_is_refused_before_any_work(
    tmp_path):
  loaded = []
  bench = TOY._replace(data=lambda cfg: loaded.append(cfg))  # None: load
  a_file = tmp_path / "file"
  a_file.write_text("")
  cases = [(a_file, f"--workdir {a_file} is a file, not a directory"),
           (a_file / "w", f"--workdir {a_file / 'w'} cannot be created: "
            f"{a_file} is a file, not a directory")]
  locked = tmp_path / "locked"
  locked.mkdir()
  locked.chmod(0o500)
  if not os.access(locked, os.W_OK):  # root writes anyway
    cases.append((locked / "w", f"--workdir {locked / 'w'} cannot be "
                  "written: Permission denied"))
  for workdir, message in cases:
    with pytest.raises(SystemExit, match=re.escape(message) +
                       ".* Name a directory you can write to with --workdir"):
      run.main(bench, TOY_ARGS + ["--workdir", str(workdir)])
  assert loaded == []  # refused before the data was read
  seen = []
  with pytest.raises(run.ConfigError, match="is a file"):
    run.run_timing(_toy_timing(seen), _toy_timing(seen).config(
        workdir=str(a_file)))
  assert seen == []  # nothing measured
  run.check_workdir(str(tmp_path / "new" / "dir"))  # created
  assert os.path.isdir(tmp_path / "new" / "dir")


def test_help_shows_the_presets_and_report_only():
  # pylint: disable-next=import-outside-toplevel
  from benchmarks import madry, quickstart
  text = " ".join(run.make_parser(madry.BENCHMARK).format_help().split())
  assert ("--epochs EPOCHS passes over the training data. (preset: "
          "digits/mnist/fashion_mnist/cifar10/cifar100 100, synthetic 2, "
          "svhn_cropped 40) [>= 0]") in text
  assert "--model MODEL" in text and "(preset: digits/synthetic wong_mnist," \
      in text
  assert "get_model` name: ae400_10, carlini_cifar," in text  # the choices
  assert "cifar10/cifar100/svhn_cropped 0.0313725" in text  # 8/255
  assert "--report-only rewrite results.md" in text
  text = " ".join(run.make_parser(quickstart.BENCHMARK).format_help().split())
  assert "passes over the training data. (preset: 30)" in text  # one value
  # The flags a parse returns are the config's (and --distributed) unless
  # --report-only is given.
  parser = run.make_parser(TOY)
  assert "report_only" not in vars(parser.parse_args([]))
  assert vars(parser.parse_args(["--report-only"]))["report_only"] is True
  assert "--report-only" in run.timing_parser(_toy_timing([])).format_help()


def test_a_misspelt_choice_or_flag_gets_the_closest_name(capsys):
  # pylint: disable-next=import-outside-toplevel
  from benchmarks import madry
  for argv, hint in ((["--dataset", "mnst"], "did you mean 'mnist'?"),
                     (["--method", "mardy"], "did you mean 'madry'?"),
                     (["--epocs", "3"], "did you mean '--epochs'?")):
    with pytest.raises(SystemExit) as e:
      run.main(madry.BENCHMARK, argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert hint in err
    lines = err.splitlines()  # a short usage line and the error
    assert len(lines) == 2 and lines[0] == (
        "usage: python -m benchmarks.madry [--FLAG VALUE ...] (--help lists "
        "the flags)"), err
  with pytest.raises(SystemExit):
    run.main(madry.BENCHMARK, ["--dataset", "zzzz"])
  assert "did you mean" not in capsys.readouterr().err  # nothing close


def test_each_flag_has_its_own_help_sentence():
  """No two flags of a benchmark share one help text (a docstring line
  naming several fields, or two fields' 'its steps')."""
  # pylint: disable-next=import-outside-toplevel
  from benchmarks import data_loading, speed, train_speed
  for bench in _benchmarks() + [TOY, data_loading.BENCHMARK, speed.BENCHMARK,
                                train_speed.BENCHMARK]:
    helps = run.field_help(bench.config)
    by_text = {}
    for f in dataclasses.fields(bench.config):
      by_text.setdefault(helps[f.name], []).append(f.name)
    shared = {t: n for t, n in by_text.items() if len(n) > 1}
    assert not shared, (bench.name, shared)


def test_the_tensorboard_writer_logs_the_learning_rate_of_each_update(
    tmp_path):
  writer = run.TensorBoardWriter(str(tmp_path), lambda count: 0.1 * count)
  writer("step", 3, {"loss": 1.5})
  writer("epoch", 3, {"epoch": 0, "loss": 1.25, "collapsed": False})
  writer.close()
  assert _scalars(str(tmp_path)) == {
      "step/loss": [(3, 1.5)], "step/learning_rate": [(3, pytest.approx(0.2))],
      "epoch/loss": [(3, 1.25)]}
  unused = run.TensorBoardWriter(str(tmp_path / "none"))
  unused.close()
  assert not os.path.exists(tmp_path / "none")  # nothing to write: no file


def test_claims_summary_lists_each_verdict():
  verdicts = [report.Verdict("a", report.HOLDS, "2"),
              report.Verdict("b", report.FAILS)]
  assert report.claims_summary(verdicts) == [
      "claims checked: 1 holds, 0 partly, 1 fails", "  holds: a [2]",
      "  fails: b"]
  assert report.claims_summary([]) == []
