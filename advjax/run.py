"""The runner: a benchmark config's models trained (or reloaded), its
evaluators run, its report written, in one place.

A benchmark is a config (`benchmarks/<name>.py`): a dataclass of settings
extending `Config`, presets per dataset, and hooks, gathered in a
`Benchmark`:

- `models(cfg, env) -> {name: TrainSpec}`: the models to train, in order,
  each a `training.Method` (with the settings its checkpoint is checked
  against); a `Load` reads one instead (a `LoadTorch` converts a PyTorch
  checkpoint, evaluated with its own architecture), and `trained -> TrainSpec` builds
  one from those before it (`trained`: name -> variables: a distilled
  student from its teacher, a fine-tuning from its start);
- `evaluate(cfg, env, name, variables) -> dict`: the numbers of one model
  (built from `advjax.evaluation`'s evaluators);
- `evals(cfg, env) -> {name: evaluator}`: the evaluators run on every
  model;
- `report`: a `report.Report` declaration: the tables beside the published
  numbers, the claims with their thresholds, the figures by kind.

`run(benchmark, config)` resolves the presets, loads the data, trains each
model with `training.fit` in `workdir/<name>` (checkpointed; a rerun resumes
or reloads), evaluates it, and writes `results.json`, `results.md` and the
figures (`report.write`). Each model's evaluation (and `extra`) is
saved next to its checkpoints and reused while the config and the weights
are unchanged, so an interrupted run resumes after its last finished one
(the evaluators with a `workdir` also resume within one).
`main(benchmark, argv)` is the command line: one flag per config field
(`--train-steps 10`, `--eps 8/255`, `--no-autoattack`), generated from the
dataclass, so a setting is written once.

A timing benchmark (`benchmarks.speed`, `train_speed`, `data_loading`)
trains nothing: a `Timing` holds its `TimingConfig`, `measure(cfg) ->
results` and its `report.Report`; `run_timing` checks, measures and
writes, `timing_main` is its command line (`--report-only` rewrites a
finished run's report, `rewrite_timing_report`).
"""
import _thread
import argparse
import contextlib
import dataclasses
import difflib
import functools
import hashlib
import json
import logging
import os
import pickle
import re
import signal
import sys
import tempfile
import threading
import time
import typing
from typing import (Any, Callable, Dict, NamedTuple, Optional, Sequence,
                    Union)

import jax
import optax
from tqdm.contrib.logging import logging_redirect_tqdm

from advjax import (checkpoint, data, evaluation, models, report, sharding,
                    training, zoo)

__all__ = ["Config", "TimingConfig", "Timing", "run_timing",
           "rewrite_timing_report", "check_timing_config", "timing_main",
           "field_help", "field", "FieldCheck", "ConfigError",
           "check_config", "check_workdir", "TrainSpec", "Load", "LoadTorch",
           "Env", "Benchmark",
           "TRAINING_SETTINGS",
           "resolve", "fill_preset", "make_optimizer",
           "learning_rate_schedule", "setup", "spec_env", "train",
           "TensorBoardWriter",
           "cached", "training_record", "rewrite_report",
           "epoch_variables", "summarize", "describe", "render_report", "run", "main",
           "make_parser", "config_parser", "parse_config", "timing_parser"]


_log = logging.getLogger(__name__)


class ConfigError(ValueError):
  """A config field outside what it allows."""


class FieldCheck(NamedTuple):
  """What a config field allows, declared once with the field (`field`)
  and enforced for every benchmark (`check_config`) and on the command
  line (choices). A tuple-valued field is checked element by element
  (nested tuples too); None (a preset's to fill) is not checked.

  Attributes:
    choices: the allowed values.
    ge, gt, le, lt: bounds (>=, >, <=, <).
  """
  choices: Optional[Sequence[Any]] = None
  ge: Optional[float] = None
  gt: Optional[float] = None
  le: Optional[float] = None
  lt: Optional[float] = None

  def rule(self) -> str:
    """The constraint in words ('>= 0, <= 1', 'one of sgd, adam')."""
    if self.choices is not None:
      return "one of " + ", ".join(str(c) for c in self.choices)
    parts = [f"{op} {v:g}" for op, v in ((">=", self.ge), (">", self.gt),
                                          ("<=", self.le), ("<", self.lt))
             if v is not None]
    return ", ".join(parts)

  def allows(self, value) -> bool:
    """Whether one value meets the check (NaN never does a bound); any
    value meets a check of none (a field declared for its help only)."""
    if all(c is None for c in self):
      return True
    if self.choices is not None:
      return value in tuple(self.choices)
    try:
      v = float(value)
    except (TypeError, ValueError):
      return False
    return not (v != v or (self.ge is not None and not v >= self.ge)
                or (self.gt is not None and not v > self.gt)
                or (self.le is not None and not v <= self.le)
                or (self.lt is not None and not v < self.lt))


def field(default: Any = None, help: str = "", *,  # pylint: disable=redefined-builtin
          choices: Optional[Sequence[Any]] = None, ge: Optional[float] = None,
          gt: Optional[float] = None, le: Optional[float] = None,
          lt: Optional[float] = None):
  """A config field with its help text and allowed values, written once:
  `eps: float = run.field(0.3, "the Linf radius", ge=0)`, `method: str =
  run.field('madry', "the training method", choices=METHODS)`. The help
  is the flag's (a field without one takes its line in the class's
  Attributes docstring)."""
  check = FieldCheck(None if choices is None else tuple(choices), ge, gt, le,
                     lt)
  return dataclasses.field(default=default,
                           metadata={"check": check, "help": help})


def _leaves(value) -> list:
  """The items a field check applies to: a tuple's elements, those of
  nested tuples too (`threat_models=((30., 3.), (5., 1.))`)."""
  if not isinstance(value, tuple):
    return [value]
  return [leaf for v in value for leaf in _leaves(v)]


def check_config(cfg) -> None:
  """Enforces every `field` check of the config (`FieldCheck`).

  Raises:
    ConfigError: a field outside what it allows; the message names the
      field, its flag, the rule and the value.
  """
  for f in dataclasses.fields(cfg):
    check = f.metadata.get("check")
    value = getattr(cfg, f.name)
    if check is None or value is None:
      continue
    flag = "--" + f.name.replace("_", "-")
    if value == () and check.choices is not None:  # nothing to run
      raise ConfigError(
          f"{type(cfg).__name__}.{f.name} ({flag}) must name at least one "
          f"of {', '.join(map(str, check.choices))}; got none.")
    bad = [v for v in _leaves(value) if v is not None and not check.allows(v)]
    if bad:
      raise ConfigError(
          f"{type(cfg).__name__}.{f.name} ({flag}) must be {check.rule()}; "
          f"got {value!r}.")


def check_workdir(workdir: str) -> None:
  """Refuses a workdir that cannot hold a run before any work is done:
  creates it (with its parents) and writes and deletes a file there.

  Raises:
    ConfigError: `workdir` is a file, lies under a file, or cannot be
      created or written (permissions, a read-only file system); the
      message says which and what to do.
  """
  fix = ("Name a directory you can write to with --workdir (it is created "
         "if missing).")
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise ConfigError(f"--workdir {workdir} is a file, not a directory. "
                      + fix)
  above = os.path.dirname(os.path.abspath(workdir))
  while not os.path.exists(above):
    above = os.path.dirname(above)
  if not os.path.isdir(above):
    raise ConfigError(f"--workdir {workdir} cannot be created: {above} is a "
                      "file, not a directory. " + fix)
  try:
    os.makedirs(workdir, exist_ok=True)
    with tempfile.TemporaryFile(dir=workdir):
      pass
  except OSError as e:
    raise ConfigError(f"--workdir {workdir} cannot be written: "
                      f"{e.strerror or e} ({e.filename or workdir}). "
                      + fix) from None


SCHEDULES = ("constant", "piecewise", "cyclic", "cosine")


@dataclasses.dataclass(frozen=True)
class Config:
  """The settings every benchmark shares; each benchmark's config extends
  it. None fields take the dataset's preset.

  Attributes:
    dataset: a name `advjax.data.load` knows, with a preset.
    model: architecture (`advjax.models.get_model` name).
    dtype: the model's compute dtype, 'float32' or 'bfloat16' (mixed
      precision: float32 parameters, optimizer state, logits and losses).
    epochs: passes over the training data.
    batch_size: global training batch size.
    optimizer: 'sgd' (momentum 0.9) or 'adam'.
    learning_rate: peak learning rate.
    weight_decay: decoupled weight decay (0: none).
    schedule: 'constant', 'piecewise', 'cyclic' or 'cosine'.
    workdir: checkpoints and reports (default runs/<benchmark>-<dataset>).
    data_dir: tfds data_dir or raw files (MNIST IDX, CIFAR binary batches).
    seed: seeds init, data order and attacks.
    save_every: checkpoint period in steps.
    progress: show progress bars.
    train_limit: train on the first N examples (0: all).
    eval_limit: evaluate on the first N test examples (0: all).
    eval_batch_size: evaluation batch size.
    reuse_evaluations: reuse a model's evaluation (and the cross-model
      one) saved in the workdir when the config and the weights are
      unchanged, so an interrupted run resumes after its last finished
      evaluation; --no-reuse-evaluations recomputes (after a code change).
    lazy_data: read the training split on access (`data.load(...,
      lazy=True)`: each process reads only its rows of every batch from the
      raw files or tfds) instead of into memory; None: lazily when there
      is more than one process. The test split is read into memory (most
      evaluators return something per example of it).
  """
  dataset: str = "digits"
  model: Optional[str] = field(help="the architecture, an "
                               "`advjax.models.get_model` name: " + ", ".join(
                                   models.list_models()))
  dtype: str = field("float32", choices=("float32", "bfloat16"))
  epochs: Optional[int] = field(ge=0)
  batch_size: Optional[int] = field(ge=1)
  optimizer: Optional[str] = field(choices=("sgd", "adam"))
  learning_rate: Optional[float] = field(ge=0)
  weight_decay: Optional[float] = field(ge=0)
  schedule: Optional[str] = field(choices=SCHEDULES)
  workdir: Optional[str] = None
  data_dir: Optional[str] = None
  seed: int = 0
  save_every: int = field(500, ge=1)
  progress: bool = True
  train_limit: int = field(0, ge=0)
  eval_limit: int = field(0, ge=0)
  eval_batch_size: int = field(256, ge=1)
  reuse_evaluations: bool = True
  lazy_data: Optional[bool] = None


@dataclasses.dataclass(frozen=True)
class TimingConfig:
  """The settings every timing benchmark shares (`benchmarks.speed`,
  `train_speed`, `data_loading`), each extending it; run with
  `run_timing` / `timing_main` (a `Timing`).

  Attributes:
    workdir: where results.json and results.md go (default
      runs/<benchmark>).
    repeats: timed calls per item after one warm-up call; the median is
      reported.
    seed: seeds weights, data and attacks.
    progress: show progress bars.
  """
  workdir: Optional[str] = None
  repeats: int = field(7, ge=1)
  seed: int = 0
  progress: bool = True


class Timing(NamedTuple):
  """A timing benchmark's pieces (`benchmarks.speed`, `train_speed`,
  `data_loading`): no model is trained, `measure` times what it times.

  Attributes:
    name: the module name (`python -m benchmarks.<name>`, `runs/<name>`).
    config: a `TimingConfig` subclass.
    measure: `cfg -> results` (a dict with no 'table' or 'written').
    report: a `report.Report` rendered from the results alone, so a
      finished run's report can be rewritten (`--report-only`).
    doc: the module docstring (the command line's description).
    requires: checks across fields (or of the machine against them),
      `(cfg -> bool, message or cfg -> message)`, each met before anything
      is measured (a `ConfigError` with the message otherwise); a single
      field's checks are its `field`'s.
  """
  name: str
  config: type
  measure: Callable[[Any], Dict[str, Any]]
  report: Any
  doc: str = ""
  requires: Sequence[Any] = ()


def check_timing_config(benchmark: Timing, cfg) -> None:
  """Enforces the config's field checks and the benchmark's `requires`.

  Raises:
    ConfigError: the first check the config fails.
  """
  check_config(cfg)
  for ok, message in benchmark.requires:
    if not ok(cfg):
      message = message(cfg) if callable(message) else message
      raise ConfigError(f"{type(cfg).__name__}: {message}")


def _finish_timing(benchmark: Timing, cfg, results: Dict[str, Any]):
  results = {"benchmark": benchmark.name, **results}
  rendered = report.render(benchmark.report, cfg, report.jsonable(results))
  results["written"] = _write_report(cfg.workdir, results, rendered)
  results["table"] = rendered.markdown
  results["claims"] = rendered.claims
  return results


def _write_report(workdir: str, results: Dict[str, Any],
                  rendered: report.Rendered) -> list:
  """`report.write`, logged (drawing the figures takes a while)."""
  figures = len(rendered.figures)
  _log.info("writing the report (results.json, results.md%s) to %s",
            f", {figures} figure{'s' * (figures != 1)}" if figures else "",
            os.path.abspath(workdir))
  return report.write(workdir, results, rendered)


def run_timing(benchmark: Timing, cfg) -> Dict[str, Any]:
  """Checks `cfg` (`check_timing_config`, `check_workdir`), measures, and
  writes results.json and results.md (with the figures) into `cfg.workdir`
  (None: `runs/<name>`). Returns the results with the seconds measuring
  took ('seconds'), the markdown ('table'),
  the verdicts ('claims') and the paths written ('written').

  Raises:
    ConfigError: the config fails a check, or the workdir cannot be
      written (nothing is measured).
  """
  cfg = dataclasses.replace(cfg, workdir=_timing_workdir(benchmark, cfg))
  check_timing_config(benchmark, cfg)
  check_workdir(cfg.workdir)
  _log.info("%s: measuring (%d repeats; workdir %s)", benchmark.name,
            cfg.repeats, os.path.abspath(cfg.workdir))
  start = time.time()
  results = benchmark.measure(cfg)
  results["seconds"] = time.time() - start
  _log.info("%s: measured in %.1f s", benchmark.name, results["seconds"])
  return _finish_timing(benchmark, cfg, results)


def _timing_workdir(benchmark: Timing, cfg) -> str:
  return cfg.workdir or os.path.join("runs", benchmark.name)


def rewrite_timing_report(benchmark: Timing, workdir: str) -> Dict[str, Any]:
  """Rewrites results.md (and the figures) of a finished timing run from
  its results.json, measuring nothing. Config fields the results name that
  the config no longer has (a renamed `out_dir`) are ignored.

  Raises:
    FileNotFoundError: no results.json in `workdir`.
    ValueError: it holds another benchmark's run.
  """
  cfg, results = _finished_run(benchmark, workdir, unnamed_ok=True)
  return _finish_timing(benchmark, cfg, results)


def timing_parser(benchmark: Timing) -> argparse.ArgumentParser:
  """`config_parser` of a timing benchmark's config, with
  `--report-only`."""
  return _with_report_only(config_parser(
      benchmark.config, f"python -m benchmarks.{benchmark.name}",
      benchmark.doc))


def timing_main(benchmark: Timing, argv: Optional[Sequence[str]] = None):
  """`python -m benchmarks.<name> [--field value ...]`: one flag per field
  of the benchmark's `TimingConfig`; runs it (`run_timing`) and prints its
  report (`--report-only`: rewrites the report of the run in `--workdir`
  from its results.json, `rewrite_timing_report`), logging each stage on
  stderr. Ctrl-C exits with status 130 and one line."""
  argv = list(sys.argv[1:] if argv is None else argv)
  if "--out-dir" in argv or any(a.startswith("--out-dir=") for a in argv):
    raise SystemExit("error: --out-dir is now --workdir (every benchmark "
                     "writes its results into --workdir).")
  cfg, report_only = _parse(timing_parser(benchmark), benchmark.config, argv)
  workdir = _timing_workdir(benchmark, cfg)
  with _console_logging():
    try:
      res = _interruptible(
          lambda: (rewrite_timing_report(benchmark, workdir) if report_only
                   else run_timing(benchmark, cfg)),
          f"nothing measured was kept: rerun the same command to measure "
          f"again (results go to {workdir})")
    except (ConfigError, FileNotFoundError) as e:
      raise SystemExit(f"error: {e}") from None
    print(res["table"])
    _log_summary(res)
  return res


@contextlib.contextmanager
def _console_logging():
  """For one command (`main`, `timing_main`): the INFO lines of the
  'advjax' loggers on stderr with the time ('12:00:01 train standard:
  ...'), through tqdm so that progress bars stay intact; the logger's
  settings are restored after. Library code only logs."""
  logger = logging.getLogger("advjax")
  handler = logging.StreamHandler(sys.stderr)
  handler.setFormatter(logging.Formatter("%(asctime)s %(message)s",
                                         "%H:%M:%S"))
  saved = logger.level, logger.propagate
  logger.addHandler(handler)
  logger.setLevel(logging.INFO)
  logger.propagate = False  # orbax gives the root logger a handler too
  try:
    with logging_redirect_tqdm([logger]):
      yield
  finally:
    logger.removeHandler(handler)
    logger.setLevel(saved[0])
    logger.propagate = saved[1]


def _interruptible(work: Callable[[], Any], then: str) -> Any:
  """`work()`; Ctrl-C exits with status 130 and one line saying `then`
  (what to do), not a traceback.

  Python drops (printing it) a KeyboardInterrupt raised while a garbage
  collector or `__del__` callback runs (jax has one), so the Ctrl-C is
  raised again every half second until it lands, and those dropped ones
  are not printed.
  """
  pending = threading.Event()

  def on_sigint(signum, frame):
    del signum, frame
    pending.set()
    again = threading.Timer(0.5, lambda: pending.is_set()
                            and _thread.interrupt_main())
    again.daemon = True
    again.start()
    raise KeyboardInterrupt

  def unraisable(info):
    if not isinstance(info.exc_value, KeyboardInterrupt):
      previous_hook(info)

  previous_hook = sys.unraisablehook
  previous = signal.getsignal(signal.SIGINT)
  try:
    signal.signal(signal.SIGINT, on_sigint)
    installed = True
  except ValueError:  # not the main thread: Python's own handler
    installed = False
  sys.unraisablehook = unraisable
  try:
    return work()
  except KeyboardInterrupt:
    pending.clear()
    print(f"\ninterrupted; {then}", file=sys.stderr, flush=True)
    raise SystemExit(130) from None
  finally:
    pending.clear()
    sys.unraisablehook = previous_hook
    if installed:
      signal.signal(signal.SIGINT, signal.default_int_handler
                    if previous is None else previous)


def _log_summary(res: Dict[str, Any]) -> None:
  """The last lines of a command: where results.md is, the other files
  written, the verdict of each claim (`report.claims_summary`)."""
  written = list(res.get("written") or ())
  md = [p for p in written if os.path.basename(p) == "results.md"]
  if md:
    _log.info("results: %s", os.path.abspath(md[0]))
  others = [p for p in written if p not in md]
  if others:
    _log.info("also wrote in %s: %s", os.path.abspath(os.path.dirname(
        others[0])), ", ".join(os.path.basename(p) for p in others))
  for line in report.claims_summary(res.get("claims") or ()):
    _log.info("%s", line)


# The settings every trained model is checked against on reload.
TRAINING_SETTINGS = ("dataset", "model", "dtype", "epochs", "batch_size",
                     "optimizer", "learning_rate", "weight_decay", "schedule",
                     "seed", "train_limit")


class TrainSpec(NamedTuple):
  """One model of a benchmark.

  Attributes:
    method: a `training.Method`.
    settings: what else its checkpoint is checked against on reload (the
      attack's settings, say), beside `TRAINING_SETTINGS`.
    fit_kwargs: more `training.fit` keywords (`init_variables`,
      `epoch_checkpoints`, ...).
    config: config fields this model trains with instead of the run's
      (`epochs`, `learning_rate`, ...: a fine-tuning stage).
    model: this model's architecture instead of `cfg.model`'s: an
      `advjax.models.get_model` name (built with the test split's classes)
      or a flax module (a study of several architectures, Szegedy's FC10
      and FC100-100-10 side by side); it is also the one evaluated.
    train: the training set instead of the run's (`data.Dataset` or
      `data.Records`: half of the training split, a constructed dataset);
      its contents are checked on reload (a fingerprint). The evaluation
      still sees the run's splits (`env.train`, `env.test`).
    optimizer: None, or `optax transformation -> optax transformation`
      applied to the config's optimizer (an L1 penalty chained before it,
      frozen layers: `training.l1_decay`, `training.freeze`); name what it
      does in `settings` so a reload checks it.
  """
  method: training.Method
  settings: Dict[str, Any] = {}
  fit_kwargs: Dict[str, Any] = {}
  config: Dict[str, Any] = {}
  model: Any = None
  train: Any = None
  optimizer: Optional[Callable[[optax.GradientTransformation],
                               optax.GradientTransformation]] = None


class Load(NamedTuple):
  """A model of a benchmark read from a `training.fit` workdir instead of
  trained (e.g. `--checkpoint DIR`).

  Attributes:
    workdir: the training workdir (holds `checkpoints/`).
  """
  workdir: str


class LoadTorch(NamedTuple):
  """A model of a benchmark converted from a PyTorch checkpoint
  (`advjax.zoo.load_torch`; e.g. `--zoo-arch WideResNet --checkpoint
  FILE`): it is evaluated with its own architecture, not `cfg.model`.

  Attributes:
    arch: an `advjax.zoo.ARCHITECTURES` name.
    path: the checkpoint file.
    kwargs: the architecture's keywords.
  """
  arch: str
  path: str
  kwargs: Dict[str, Any] = {}


class Env(NamedTuple):
  """What a run starts from (see `setup`); `apply_fns`: name -> `(variables,
  x) -> logits` of each model of the run, with its own architecture
  (filled by `run` before `extra`: a study across the models)."""
  train: Any
  test: Any
  model: Any
  apply_fn: Callable
  mesh: Any
  apply_fns: Dict[str, Callable] = {}


class Benchmark(NamedTuple):
  """A benchmark config's pieces (see the module docstring)."""
  name: str
  config: type
  presets: Dict[str, Dict[str, Any]]
  models: Callable[[Any, Env], Dict[str, Union[TrainSpec, Load, Callable]]]
  # `evaluate(cfg, env, name, variables) -> dict`: numbers of one model
  # beyond its `evals` (None: only those).
  evaluate: Optional[Callable[[Any, Env, str, Any], Dict[str, Any]]]
  # A `report.Report` declaration.
  report: Any
  doc: str = ""
  # `refine(cfg, preset) -> preset`: e.g. a method's own preset on top.
  refine: Optional[Callable[[Any, Dict[str, Any]], Dict[str, Any]]] = None
  # `extra(cfg, env, trained) -> dict`: evaluations that are not of one of
  # the models (a synthetic case; studies across the models; `trained`:
  # name -> variables), in results["extra"].
  extra: Optional[Callable[[Any, Env, Dict[str, Any]], Dict[str, Any]]] = None
  # `data(cfg) -> (train, test)`: the splits, instead of `data.load`'s
  # 'train' and 'test' (an evaluation-only study of a subset, say; `train`
  # may be None when no model is trained); returning None keeps those.
  data: Optional[Callable[[Any], Any]] = None
  # `evals(cfg, env) -> {name: evaluator}`: evaluators run on every model
  # (`evaluator.run(apply_fn, variables, test) -> result`), each result's
  # `summary()` stored under its name and cached on its own.
  evals: Optional[Callable[[Any, Env], Dict[str, Any]]] = None


def resolve(benchmark: Benchmark, config):
  """`config` with the benchmark's presets filled in (`fill_preset`)."""
  return fill_preset(config, benchmark.presets, benchmark.name,
                     benchmark.refine)


def fill_preset(config, presets: Dict[str, Dict[str, Any]], name: str,
                refine: Optional[Callable] = None):
  """A copy of the dataclass `config` whose None fields take the preset of
  its dataset (`presets[config.dataset]`, passed through `refine(config,
  preset)` when given) and whose None `workdir` is `runs/<name>-<dataset>`.

  Raises:
    ValueError: no preset for the dataset (the message lists the known).
  """
  if config.dataset not in presets:
    raise ValueError(f"No {name} preset for dataset {config.dataset!r}; "
                     f"known: {sorted(presets)}.")
  preset = presets[config.dataset]
  if refine is not None:
    preset = refine(config, preset)
  fields = {k: (preset[k] if v is None and k in preset else v)
            for k, v in dataclasses.asdict(config).items()}
  if fields["workdir"] is None:
    fields["workdir"] = os.path.join("runs", f"{name}-{config.dataset}")
  config = type(config)(**fields)
  check_config(config)
  return config


def make_optimizer(cfg, steps_per_epoch: int) -> optax.GradientTransformation:
  """The optax optimizer of a config: its optimizer, learning_rate,
  weight_decay and schedule ('constant', 'piecewise' /10 at 50 % and 75 %,
  'cyclic' one-cycle peaking at 40 %, 'cosine') over its epochs."""
  optimizers = {"sgd": lambda s: optax.sgd(s, momentum=0.9),
                "adam": optax.adam}
  if cfg.optimizer not in optimizers:
    raise ValueError(f"Unknown optimizer {cfg.optimizer!r}; use sgd or adam.")
  opt = optimizers[cfg.optimizer](learning_rate_schedule(cfg,
                                                         steps_per_epoch))
  if cfg.weight_decay:
    opt = optax.chain(optax.add_decayed_weights(cfg.weight_decay), opt)
  return opt


def learning_rate_schedule(cfg, steps_per_epoch: int
                           ) -> Union[float, optax.Schedule]:
  """The learning rate of a config's optimizer (`make_optimizer`): a
  float ('constant') or an optax schedule of the step."""
  total = cfg.epochs * steps_per_epoch
  lr = cfg.learning_rate
  schedules = {
      "constant": lambda: lr,
      "piecewise": lambda: optax.piecewise_constant_schedule(
          lr, {int(0.5 * total): 0.1, int(0.75 * total): 0.1}),
      "cyclic": lambda: optax.linear_onecycle_schedule(
          total, lr, pct_start=0.4, div_factor=1e4, final_div_factor=1e4),
      "cosine": lambda: optax.cosine_decay_schedule(lr, total),
  }
  if cfg.schedule not in schedules:
    raise ValueError(f"Unknown schedule {cfg.schedule!r}; use one of "
                     f"{sorted(schedules)}.")
  return schedules[cfg.schedule]()


def setup(cfg, load_data: Optional[Callable[[Any], Any]] = None) -> Env:
  """Creates `cfg.workdir`, loads the train and test splits (`train_limit`,
  `eval_limit`; or `load_data(cfg) -> (train, test)` unless it returns
  None), builds the model
  (none when `cfg.model` is None: every model is loaded with its own
  architecture) and the mesh of every device."""
  os.makedirs(cfg.workdir, exist_ok=True)
  t0 = time.time()
  limits = ", ".join(f"{k} {getattr(cfg, k)}" for k in ("train_limit",
                                                         "eval_limit")
                     if getattr(cfg, k))
  _log.info("loading %s%s", cfg.dataset, f" ({limits})" if limits else "")
  splits = None if load_data is None else load_data(cfg)
  if splits is not None:
    train_split, test = splits
  else:
    limit = lambda n: n or None
    lazy = (jax.process_count() > 1 if cfg.lazy_data is None
            else cfg.lazy_data)
    train_split = data.load(cfg.dataset, "train", data_dir=cfg.data_dir,
                            limit=limit(cfg.train_limit), lazy=lazy)
    test = data.load(cfg.dataset, "test", data_dir=cfg.data_dir,
                     limit=limit(cfg.eval_limit))
  _log.info("loaded %s: %s train and %d test examples, %d classes (%.1f s)",
            cfg.dataset, "no" if train_split is None else len(
                train_split.labels), len(test.labels), test.num_classes,
            time.time() - t0)
  model = apply_fn = None
  if cfg.model is not None:
    model = models.get_model(cfg.model, num_classes=test.num_classes,
                             dtype=cfg.dtype)
    apply_fn = models.apply_fn(model)
  return Env(train_split, test, model, apply_fn, sharding.make_mesh())


def spec_env(env: Env, spec: TrainSpec) -> Env:
  """`env` with a model's own architecture (`spec.model`) and training
  set (`spec.train`) where it has them."""
  if spec.train is not None:
    env = env._replace(train=spec.train)
  if spec.model is not None:
    model = spec.model
    if isinstance(model, str):
      model = models.get_model(model, num_classes=env.test.num_classes)
    env = env._replace(model=model, apply_fn=_inference(model))
  return env


@functools.lru_cache(maxsize=None)
def _module_inference(model) -> Callable:
  return models.apply_fn(model)


def _inference(model) -> Callable:
  """`(variables, x) -> logits` of a module in inference mode: one function
  per architecture (equal modules share it, and so the programs compiled
  for it, e.g. by `evaluation.map_batched`)."""
  try:
    return _module_inference(model)
  except TypeError:  # an unhashable module
    return models.apply_fn(model)


# The training metrics a log line shows (TensorBoard gets them all).
_SHOWN = ("loss", "accuracy", "adv_accuracy", "eps")


def train(cfg, env: Env, name: str, spec: TrainSpec):
  """`training.fit` of one model in `cfg.workdir/name` with the config's
  optimizer, epochs, batch size, seed and checkpoint period (resumed or
  reloaded from there); `spec.config` overrides config fields, and
  `spec.model` / `spec.train` the architecture and training set (both
  checked on reload). Returns `(FitResult, seconds)`."""
  cfg = dataclasses.replace(cfg, **spec.config)
  env = spec_env(env, spec)
  steps_per_epoch = max(env.train.images.shape[0] // cfg.batch_size, 1)
  settings = {k: getattr(cfg, k) for k in TRAINING_SETTINGS}
  if spec.model is not None:
    settings["model"] = (spec.model if isinstance(spec.model, str)
                         else repr(spec.model))
  if spec.train is not None:
    settings["train_data"] = evaluation.batching.fingerprint_arrays(
        spec.train.images, spec.train.labels)
  optimizer = make_optimizer(cfg, steps_per_epoch)
  if spec.optimizer is not None:
    optimizer = spec.optimizer(optimizer)
  workdir = os.path.join(cfg.workdir, name)
  _log.info("train %s: method %s, %d epoch%s of %d steps, batch %d (%s)",
            name, spec.method.name, cfg.epochs, "s" * (cfg.epochs != 1),
            steps_per_epoch, cfg.batch_size, os.path.abspath(workdir))
  writer = TensorBoardWriter(os.path.join(workdir, "tensorboard"),
                             learning_rate_schedule(cfg, steps_per_epoch))
  t0 = time.time()
  try:
    res = training.fit(
        env.model, optimizer, env.train, method=spec.method,
        epochs=cfg.epochs, batch_size=cfg.batch_size, seed=cfg.seed,
        workdir=workdir, save_every=cfg.save_every,
        settings={**settings, **spec.settings}, mesh=env.mesh,
        progress=cfg.progress, desc=f"train {name}",
        on_metrics=writer if jax.process_index() == 0 else None,
        **spec.fit_kwargs)
  finally:
    writer.close()
  seconds = time.time() - t0
  if res.history:
    last = res.history[-1]
    _log.info("train %s: %d epoch%s in %.1f s; last epoch: %s", name,
              len(res.history), "s" * (len(res.history) != 1), seconds,
              ", ".join(f"{k} {100 * last[k]:.1f} %" if "accuracy" in k
                        else f"{k} {last[k]:.4g}" for k in _SHOWN if k in last))
  return res, seconds


class TensorBoardWriter:
  """`training.fit`'s metrics (its `on_metrics`) as TensorBoard scalars in
  `logdir` (tensorboardX; `tensorboard --logdir <workdir>`): 'step/loss',
  'step/accuracy', 'step/adv_accuracy', 'step/eps', 'step/learning_rate'
  every logged step and each epoch's means as 'epoch/...'. The event file
  is opened by the first metrics (a model reloaded trains nothing and
  writes none).

  Args:
    logdir: where the event files go.
    learning_rate: a float or an optax schedule of the step.
  """

  def __init__(self, logdir: str,
               learning_rate: Union[float, optax.Schedule, None] = None):
    self.logdir = logdir
    self.learning_rate = learning_rate
    self._writer = None

  def __call__(self, kind: str, step: int, metrics: Dict[str, Any]) -> None:
    if self._writer is None:
      # Imported when first used: 1.7 s of protobuf.
      # pylint: disable-next=import-outside-toplevel
      from tensorboardX import SummaryWriter
      self._writer = SummaryWriter(self.logdir)
    scalars = {k: v for k, v in metrics.items() if k != "epoch"
               and isinstance(v, (int, float)) and not isinstance(v, bool)}
    if kind == "step" and self.learning_rate is not None:
      lr = self.learning_rate
      # The rate of the update that made `step` (optax counts from 0).
      scalars["learning_rate"] = float(lr(step - 1) if callable(lr) else lr)
    for k, v in scalars.items():
      self._writer.add_scalar(f"{kind}/{k}", v, step)

  def close(self) -> None:
    """Flushes and closes the event file (if one was opened)."""
    if self._writer is not None:
      self._writer.close()
      self._writer = None


def training_record(workdir: str, fit, seconds: float) -> Dict[str, Any]:
  """The seconds and per-epoch history of a model's training, across the
  runs that trained it (`workdir/training.json`, extended by every run
  that trains epochs): a model reloaded from its checkpoint reports the
  time its training took, not the time the reload took. `seconds` is None
  for a checkpoint trained before the record existed."""
  path = os.path.join(workdir, "training.json")
  record = {"seconds": None, "history": []}
  if os.path.exists(path):
    try:
      with open(path) as f:
        record = json.load(f)
    except (OSError, ValueError):
      pass  # unreadable: start the record again
  if fit.history or fit.resumed_from is None:  # epochs ran in this call
    record = {"seconds": (record["seconds"] or 0.) + seconds,
              "history": record["history"] + list(fit.history)}
    if jax.process_index() == 0:
      with open(path + ".tmp", "w") as f:
        json.dump(report.jsonable(record), f)
      os.replace(path + ".tmp", path)
  return record


def cached(cfg, path: str, inputs: Any, compute: Callable[[], Any],
           what: Optional[str] = None) -> Any:
  """`compute()`, or the result saved in `path` by an earlier call with
  the same config and `inputs` (variables) when `cfg.reuse_evaluations`.
  Saved atomically (pickle, next to the checkpoints), so an interrupted
  run resumes after its last finished evaluation. Logs what it does with
  `what` ('the evaluation of standard with pgd20 on 500 test examples';
  default: the path): computing, computed in N s, or reusing."""
  what = what or path
  settings = {k: v for k, v in dataclasses.asdict(cfg).items()
              if k not in ("progress", "reuse_evaluations", "workdir")}
  key = hashlib.sha256(json.dumps(
      [settings, evaluation.batching.fingerprint_tree(inputs)],
      sort_keys=True, default=str).encode()).hexdigest()
  if cfg.reuse_evaluations and os.path.exists(path):
    try:
      with open(path, "rb") as f:
        saved = pickle.load(f)
      if saved["key"] == key:
        _log.info("reusing %s (%s)", what, path)
        return saved["result"]
    except Exception:  # pylint: disable=broad-except
      pass  # unreadable (cut while writing, another version): recompute
  _log.info("computing %s", what)
  t0 = time.time()
  result = compute()
  _log.info("computed %s in %.1f s", what, time.time() - t0)
  if jax.process_index() == 0:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "wb") as f:
      pickle.dump({"key": key, "result": result}, f)
    os.replace(path + ".tmp", path)
  return result


def summarize(result: Any) -> Any:
  """What the runner stores of an evaluator's result: its `summary()`
  (JSON-able numbers, no per-example arrays) when it has one, else the
  result itself (a dict of numbers)."""
  return result.summary() if hasattr(result, "summary") else result


def describe(obj: Any) -> str:
  """`repr(obj)` without memory addresses ('<function pgd at 0x7f..>'
  becomes '<function pgd>'): a description of an evaluator (its attack, a
  partial of it) that is the same in every process, for cache keys."""
  return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(obj))


def epoch_variables(cfg, name: str, epoch: int) -> dict:
  """The variables of model `name` after `epoch` epochs (0: before
  training), kept by a `TrainSpec` with `fit_kwargs={'epoch_checkpoints':
  True}`; read without rebuilding its optimizer."""
  return training.epoch_variables(os.path.join(cfg.workdir, name), epoch)


def _evaluate_model(benchmark: Benchmark, cfg, env: Env, name: str,
                    variables) -> Dict[str, Any]:
  """The config's evaluators (each cached on its own) and its `evaluate`
  hook on one model."""
  out = {}
  if benchmark.evals is not None:
    for label, evaluator in benchmark.evals(cfg, env).items():
      out[label] = cached(
          cfg, os.path.join(cfg.workdir, name, f"eval-{label}.pkl"),
          [variables, describe(evaluator)], lambda e=evaluator: summarize(e.run(
              env.apply_fn, variables, env.test)),
          f"the evaluation of {name} with {label} on {len(env.test.labels)} "
          "test examples")
  if benchmark.evaluate is not None:
    out.update(cached(
        cfg, os.path.join(cfg.workdir, name, "evaluation.pkl"), variables,
        lambda: benchmark.evaluate(cfg, env, name, variables),
        f"the evaluation of {name} ({benchmark.name}'s own)"))
  return out


def render_report(benchmark: Benchmark, cfg,
                  results: Dict[str, Any]) -> report.Rendered:
  """The benchmark's `report.Report` declaration rendered on `results`.

  Raises:
    TypeError: the benchmark's report is not a `report.Report`.
  """
  if not isinstance(benchmark.report, report.Report):
    raise TypeError(f"{benchmark.name}: its report must be a report.Report "
                    f"declaration, got {type(benchmark.report).__name__}.")
  return report.render(benchmark.report, cfg, results)


def _finish(benchmark: Benchmark, cfg, workdir: str,
            results: Dict[str, Any]) -> Dict[str, Any]:
  rendered = render_report(benchmark, cfg, results)
  if jax.process_index() == 0:  # one writer on a multi-host run
    results["written"] = _write_report(workdir, results, rendered)
  results["table"] = rendered.markdown
  results["claims"] = rendered.claims
  return results


def run(benchmark: Benchmark, config) -> Dict[str, Any]:
  """Runs a benchmark; returns its results (also written to the workdir:
  results.json, results.md and the figures), logging each stage.

  Raises:
    ConfigError: a field outside what it allows, or a workdir that cannot
      be written (checked before any work).
  """
  cfg = resolve(benchmark, config)
  check_workdir(cfg.workdir)
  _log.info("%s on %s: workdir %s", benchmark.name, cfg.dataset,
            os.path.abspath(cfg.workdir))
  env = setup(cfg, benchmark.data)
  results = {"benchmark": benchmark.name, "config": dataclasses.asdict(cfg),
             "devices": [str(d) for d in jax.devices()], "models": {}}
  trained, apply_fns = {}, {}
  for name, spec in benchmark.models(cfg, env).items():
    if callable(spec):
      spec = spec(dict(trained))
    model_env = env
    if isinstance(spec, (Load, LoadTorch)):
      _log.info("load %s from %s", name, os.path.abspath(
          spec.workdir if isinstance(spec, Load) else spec.path))
    if isinstance(spec, Load):
      variables = checkpoint.load_variables(spec.workdir)
      entry = {"checkpoint": spec.workdir}
    elif isinstance(spec, LoadTorch):
      model, variables = zoo.load_torch(spec.arch, spec.path, **spec.kwargs)
      model_env = env._replace(model=model, apply_fn=models.apply_fn(model))
      entry = {"checkpoint": spec.path, "zoo_arch": spec.arch,
               "zoo_kwargs": {k: v if isinstance(v, (int, float, str, bool))
                              else str(v) for k, v in spec.kwargs.items()}}
    else:
      model_env = spec_env(env, spec)._replace(train=env.train)
      fit, seconds = train(cfg, env, name, spec)
      variables = jax.device_get(fit.state.variables)
      record = training_record(os.path.join(cfg.workdir, name), fit, seconds)
      entry = {"method": spec.method.name,
               "train_seconds": record["seconds"],
               "resumed_from": fit.resumed_from,
               "history": record["history"]}
    trained[name] = variables
    apply_fns[name] = model_env.apply_fn
    results["models"][name] = {**entry, **_evaluate_model(
        benchmark, cfg, model_env, name, variables)}
  if benchmark.extra is not None:
    results["extra"] = cached(
        cfg, os.path.join(cfg.workdir, "extra.pkl"), trained,
        lambda: benchmark.extra(cfg, env._replace(apply_fns=apply_fns),
                                trained),
        f"the study across the models ({benchmark.name}'s extra)")
  return _finish(benchmark, cfg, cfg.workdir, results)


# --------------------------------------------------------------------------
# The command line, generated from the config's fields.
# --------------------------------------------------------------------------
def field_help(cls) -> Dict[str, str]:
  """Each field's help: its `field(help=...)`, else its `name: text` line
  in the dataclass's (and its bases') Attributes docstring."""
  out = {}
  for klass in reversed(cls.__mro__):
    parts = re.split(r"^\s*Attributes[^:\n]*:\s*$", klass.__doc__ or "",
                     maxsplit=1, flags=re.M)
    if len(parts) < 2:
      continue
    body = parts[1]
    # Names may continue on the next line ("a, b,\n      c: text").
    for m in re.finditer(r"^\s{4}(\w+(?:,\s+\w+)*): (.+?)(?=^\s{4}\w+"
                         r"(?:,\s+\w+)*:|\Z)", body, re.S | re.M):
      for n in re.split(r",\s+", m.group(1)):
        out[n] = " ".join(m.group(2).split())
  for f in dataclasses.fields(cls):
    if f.metadata.get("help"):
      out[f.name] = " ".join(f.metadata["help"].split())
  return out


_field_help = field_help  # the name tests used before it was public


def _parse_value(kind):
  """The argparse type of a field annotation (Optional unwrapped; tuples
  from comma lists, '28,28,1'; tuples of tuples from comma lists of colon
  lists, '30:3,5:1')."""
  args = [a for a in typing.get_args(kind) if a is not type(None)]
  if typing.get_origin(kind) is typing.Union and len(args) == 1:
    kind = args[0]
  if typing.get_origin(kind) is tuple:
    inner = typing.get_args(kind)[0]
    if typing.get_origin(inner) is tuple:
      part = _parse_value(typing.get_args(inner)[0])
      return lambda text: tuple(tuple(part(v) for v in t.split(":"))
                                for t in text.split(",") if t)
    item = _parse_value(inner)
    return lambda text: tuple(item(t) for t in text.split(",") if t)
  if kind is float:
    return _number
  return kind


def _number(text: str) -> float:
  """'0.3' or a fraction, '8/255'."""
  if "/" in text:
    num, den = text.split("/")
    return float(num) / float(den)
  return float(text)


class _Parser(argparse.ArgumentParser):
  """An `argparse.ArgumentParser` whose usage is one line (`--help` lists
  the flags) and whose errors name the closest choice or flag to a
  misspelt one ("did you mean 'mnist'?")."""

  def __init__(self, *args, **kwargs):
    self._choices = {}  # flag -> its choices (None: any value)
    super().__init__(*args, usage="%(prog)s [--FLAG VALUE ...] (--help "
                     "lists the flags)", **kwargs)

  def add_argument(self, *args, **kwargs):
    action = super().add_argument(*args, **kwargs)
    for flag in action.option_strings:
      self._choices[flag] = action.choices
    return action

  def error(self, message):
    bad = re.match(r"argument ([^:/ ]+)[^:]*: invalid choice: '?([^' ]*)",
                   message)
    if bad and self._choices.get(bad.group(1)):
      names = [str(c) for c in self._choices[bad.group(1)]]
      close = difflib.get_close_matches(bad.group(2), names, n=1)
    else:  # 'unrecognized arguments: --epoch 3'
      words = (re.findall(r"--[\w-]+", message.split(":", 1)[1])
               if message.startswith("unrecognized arguments") else [])
      close = [m for w in words
               for m in difflib.get_close_matches(w, list(self._choices), 1)]
    if close:
      message += f"; did you mean {close[0]!r}?"
    super().error(message)


def config_parser(config: type, prog: str, doc: str = "",
                  choices: Optional[Dict[str, Sequence[Any]]] = None,
                  presets: Optional[Dict[str, Dict[str, Any]]] = None
                  ) -> argparse.ArgumentParser:
  """One flag per field of the dataclass `config` (`--field-name`, help
  from its Attributes docstring; booleans as `--name/--no-name`; tuples as
  comma lists; floats also as fractions, '8/255'), plus `--distributed`.
  `choices` restricts fields to given values (e.g. the preset names);
  `presets` (dataset -> field values) show in the help of the fields they
  fill ('(preset: digits 30, mnist 100)'). A misspelt choice or flag is
  answered with the closest one."""
  doc = doc or ""
  p = _Parser(
      prog=prog,
      description=doc.strip().splitlines()[0] if doc.strip() else None)
  helps = field_help(config)
  hints = typing.get_type_hints(config)
  for f in dataclasses.fields(config):
    flag = "--" + f.name.replace("_", "-")
    default = (f" (default: {f.default})" if f.default is not None
               else _preset_help(presets or {}, f.name))
    kw = {"default": f.default, "dest": f.name,
          "help": (helps.get(f.name, "") + default
                   ).replace("%", "%%")}  # argparse formats help with %
    check = f.metadata.get("check")
    if choices and f.name in choices:
      kw["choices"] = list(choices[f.name])
    elif (check is not None and check.choices is not None
          and not _is_tuple(hints[f.name])):
      kw["choices"] = list(check.choices)
    elif check is not None:  # a tuple's items are checked by check_config
      kw["help"] += f" [{check.rule()}]"
    if hints[f.name] in (bool, Optional[bool]):
      p.add_argument(flag, action=argparse.BooleanOptionalAction, **kw)
    else:
      p.add_argument(flag, type=_parse_value(hints[f.name]), **kw)
  p.add_argument("--distributed", action="store_true",
                 help="multi-host: call jax.distributed.initialize() first")

  return p


def _preset_help(presets: Dict[str, Dict[str, Any]], name: str) -> str:
  """' (preset: digits/synthetic 30, mnist 100)': the values the dataset
  presets give a field (one value for all: ' (preset: 30)'); '' if
  none."""
  groups = {}  # the value shown -> the datasets with it
  for dataset, preset in presets.items():
    if preset.get(name) is not None:
      groups.setdefault(_shown(preset[name]), []).append(dataset)
  if not groups:
    return ""
  if len(groups) == 1 and len(next(iter(groups.values()))) == len(presets):
    return f" (preset: {next(iter(groups))})"
  return " (preset: " + ", ".join(f"{'/'.join(d)} {v}"
                                  for v, d in groups.items()) + ")"


def _shown(value) -> str:
  """A preset value as the command line takes it ('0.3', '30:3,5:1')."""
  if isinstance(value, tuple):
    return ",".join(":".join(map(_shown, v)) if isinstance(v, tuple)
                    else _shown(v) for v in value)
  return f"{value:g}" if isinstance(value, float) else str(value)


def _with_report_only(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
  """`p` with `--report-only`, absent from the parsed flags unless given
  (SUPPRESS), so that they stay the config's fields and --distributed."""
  p.add_argument("--report-only", action="store_true",
                 default=argparse.SUPPRESS,
                 help="rewrite results.md, the claims and the figures of "
                 "the finished run in --workdir from its results.json "
                 "(nothing is trained, evaluated or measured)")
  return p


def make_parser(benchmark: Benchmark) -> argparse.ArgumentParser:
  """`config_parser` of a benchmark's config (`--dataset` restricted to its
  presets, the presets' values in the help) with `--report-only`."""
  return _with_report_only(config_parser(
      benchmark.config, f"python -m benchmarks.{benchmark.name}",
      benchmark.doc, {"dataset": list(benchmark.presets)},
      benchmark.presets))


def parse_config(config: type, argv: Optional[Sequence[str]] = None, *,
                 prog: str, doc: str = "",
                 choices: Optional[Dict[str, Sequence[Any]]] = None):
  """`config(**flags)` from the command line (`config_parser`), after
  `--distributed` (jax.distributed.initialize) is handled."""
  return _parse(config_parser(config, prog, doc, choices), config, argv)[0]


def _parse(parser: argparse.ArgumentParser, config: type,
           argv: Optional[Sequence[str]]):
  """`(config(**flags), report_only)` from the command line, after
  `--distributed` (jax.distributed.initialize) is handled."""
  args = vars(parser.parse_args(argv))
  report_only = args.pop("report_only", False)
  sharding.initialize_distributed(args.pop("distributed"))
  return config(**args), report_only


def _is_tuple(kind) -> bool:
  """Whether a field annotation is a tuple (`Tuple[...]`, Optional too)."""
  return typing.get_origin(kind) is tuple or any(
      typing.get_origin(a) is tuple for a in typing.get_args(kind))


def _tuples(config: type, fields: Dict[str, Any]) -> Dict[str, Any]:
  """JSON's lists back to the tuples of the config's tuple fields."""
  hints = typing.get_type_hints(config)

  def back(v):
    return tuple(back(i) for i in v) if isinstance(v, list) else v

  out = {}
  for f in dataclasses.fields(config):
    if f.name in fields:
      out[f.name] = (back(fields[f.name]) if _is_tuple(hints[f.name])
                     else fields[f.name])
  return out


def rewrite_report(benchmark: Benchmark, workdir: str) -> Dict[str, Any]:
  """Rewrites results.md, the claims and the figures of a finished run
  from its results.json (its measured numbers and config), without
  training or evaluating anything: after a change to the report alone
  (another published number beside ours, a new claim). Returns the
  results.

  Raises:
    FileNotFoundError: no results.json in `workdir` (run the benchmark).
  """
  cfg, results = _finished_run(benchmark, workdir)
  return _finish(benchmark, cfg, workdir, results)


def _finished_run(benchmark, workdir: str, unnamed_ok: bool = False):
  """`(cfg, results)` of the finished run of `benchmark` (a `Benchmark` or
  a `Timing`) in `workdir`, read from its results.json, without what the
  report adds (claims, paths written). `unnamed_ok`: results that name no
  benchmark (older timing runs) are taken as this one's.

  Raises:
    FileNotFoundError: no results.json in `workdir` (run the benchmark).
    ValueError: it holds another benchmark's run.
  """
  path = os.path.join(workdir, "results.json")
  if not os.path.exists(path):
    raise FileNotFoundError(f"No {path}: run the benchmark into {workdir} "
                            "first; --report-only rewrites an existing "
                            "run's report.")
  with open(path) as f:
    results = json.load(f)
  name = results.get("benchmark", benchmark.name if unnamed_ok else None)
  if name != benchmark.name:
    raise ValueError(f"{path} holds a {name!r} run, not "
                     f"{benchmark.name!r}.")
  for key in ("claims", "written") + (("benchmark",) if unnamed_ok else ()):
    results.pop(key, None)
  cfg = benchmark.config(**_tuples(benchmark.config, {
      **results["config"], "workdir": workdir}))
  return cfg, results


def main(benchmark: Benchmark, argv: Optional[Sequence[str]] = None):
  """`python -m benchmarks.<name> [--field value ...]`: runs the benchmark
  and prints its report (`--report-only`: rewrites the report of the run
  in `--workdir` from its results.json, `rewrite_report`), logging each
  stage on stderr and, at the end, where results.md is and the verdict of
  each claim. Ctrl-C exits with status 130 and one line (a rerun
  resumes)."""
  argv = list(sys.argv[1:] if argv is None else argv)
  config, report_only = _parse(make_parser(benchmark), benchmark.config,
                               argv)
  with _console_logging():
    try:
      cfg = resolve(benchmark, config)
      res = _interruptible(
          lambda: (rewrite_report(benchmark, cfg.workdir) if report_only
                   else run(benchmark, cfg)),
          "rerun the same command to resume from the last checkpoint in "
          f"{cfg.workdir}")
    except (data.DatasetNotFoundError, ConfigError) + (
        (FileNotFoundError, ValueError) if report_only else ()) as e:
      raise SystemExit(f"error: {e}") from None
    print(res["table"])
    _log_summary(res)
  return res
