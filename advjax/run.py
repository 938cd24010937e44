"""The runner: a benchmark config's models trained (or reloaded), its
evaluators run, its report written, in one place.

A benchmark is a config (`benchmarks/<name>.py`): a dataclass of settings
extending `Config`, presets per dataset, and hooks, gathered in a
`Benchmark`:

- `models(cfg, env) -> {name: TrainSpec}`: the models to train, each a
  `training.Method` (with the settings its checkpoint is checked against);
- `evaluate(cfg, env, name, variables) -> dict`: the numbers of one model
  (built from `advjax.evaluation`'s evaluators);
- `report(cfg, results) -> report.Report`: the markdown beside the
  published numbers, the figures, the claim checks.

`run(benchmark, config)` resolves the presets, loads the data, trains each
model with `training.fit` in `workdir/<name>` (checkpointed; a rerun resumes
or reloads), evaluates it, and writes `results.json`, `results.md` and the
figures (`report.write`). `main(benchmark, argv)` is the command line: one
flag per config field (`--train-steps 10`, `--eps 8/255`,
`--no-autoattack`), generated from the dataclass, so a setting is written
once.
"""
import argparse
import dataclasses
import os
import re
import time
import typing
from typing import (Any, Callable, Dict, NamedTuple, Optional, Sequence,
                    Union)

import jax
import optax

from advjax import checkpoint, data, models, report, sharding, training

__all__ = ["Config", "TrainSpec", "Load", "Env", "Benchmark",
           "TRAINING_SETTINGS",
           "resolve", "fill_preset", "make_optimizer", "setup", "train", "run", "main",
           "make_parser"]


@dataclasses.dataclass(frozen=True)
class Config:
  """The settings every benchmark shares; each benchmark's config extends
  it. None fields take the dataset's preset.

  Attributes:
    dataset: a name `advjax.data.load` knows, with a preset.
    model: architecture (`advjax.models.get_model` name).
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
  """
  dataset: str = "digits"
  model: Optional[str] = None
  epochs: Optional[int] = None
  batch_size: Optional[int] = None
  optimizer: Optional[str] = None
  learning_rate: Optional[float] = None
  weight_decay: Optional[float] = None
  schedule: Optional[str] = None
  workdir: Optional[str] = None
  data_dir: Optional[str] = None
  seed: int = 0
  save_every: int = 500
  progress: bool = True
  train_limit: int = 0
  eval_limit: int = 0
  eval_batch_size: int = 256


# The settings every trained model is checked against on reload.
TRAINING_SETTINGS = ("dataset", "model", "epochs", "batch_size", "optimizer",
                     "learning_rate", "weight_decay", "schedule", "seed",
                     "train_limit")


class TrainSpec(NamedTuple):
  """One model of a benchmark.

  Attributes:
    method: a `training.Method`.
    settings: what else its checkpoint is checked against on reload (the
      attack's settings, say), beside `TRAINING_SETTINGS`.
    fit_kwargs: more `training.fit` keywords (`init_variables`,
      `epoch_checkpoints`, ...).
  """
  method: training.Method
  settings: Dict[str, Any] = {}
  fit_kwargs: Dict[str, Any] = {}


class Load(NamedTuple):
  """A model of a benchmark read from a `training.fit` workdir instead of
  trained (e.g. `--checkpoint DIR`).

  Attributes:
    workdir: the training workdir (holds `checkpoints/`).
  """
  workdir: str


class Env(NamedTuple):
  """What a run starts from (see `setup`)."""
  train: Any
  test: Any
  model: Any
  apply_fn: Callable
  mesh: Any


class Benchmark(NamedTuple):
  """A benchmark config's pieces (see the module docstring)."""
  name: str
  config: type
  presets: Dict[str, Dict[str, Any]]
  models: Callable[[Any, Env], Dict[str, Union[TrainSpec, Load]]]
  evaluate: Callable[[Any, Env, str, Any], Dict[str, Any]]
  report: Callable[[Any, Dict[str, Any]], report.Report]
  doc: str = ""
  # `refine(cfg, preset) -> preset`: e.g. a method's own preset on top.
  refine: Optional[Callable[[Any, Dict[str, Any]], Dict[str, Any]]] = None
  # `extra(cfg, env) -> dict`: evaluations that are not of one of the
  # models (a synthetic case; studies across the models), in results
  # ["extra"].
  extra: Optional[Callable[[Any, Env], Dict[str, Any]]] = None


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
  return type(config)(**fields)


def make_optimizer(cfg, steps_per_epoch: int) -> optax.GradientTransformation:
  """The optax optimizer of a config: its optimizer, learning_rate,
  weight_decay and schedule ('constant', 'piecewise' /10 at 50 % and 75 %,
  'cyclic' one-cycle peaking at 40 %, 'cosine') over its epochs."""
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
  optimizers = {"sgd": lambda s: optax.sgd(s, momentum=0.9),
                "adam": optax.adam}
  if cfg.optimizer not in optimizers:
    raise ValueError(f"Unknown optimizer {cfg.optimizer!r}; use sgd or adam.")
  opt = optimizers[cfg.optimizer](schedules[cfg.schedule]())
  if cfg.weight_decay:
    opt = optax.chain(optax.add_decayed_weights(cfg.weight_decay), opt)
  return opt


def setup(cfg) -> Env:
  """Creates `cfg.workdir`, loads the train and test splits (`train_limit`,
  `eval_limit`), builds the model and the mesh of every device."""
  os.makedirs(cfg.workdir, exist_ok=True)
  limit = lambda n: n or None
  train_split = data.load(cfg.dataset, "train", data_dir=cfg.data_dir,
                          limit=limit(cfg.train_limit))
  test = data.load(cfg.dataset, "test", data_dir=cfg.data_dir,
                   limit=limit(cfg.eval_limit))
  model = models.get_model(cfg.model, num_classes=train_split.num_classes)
  apply_fn = lambda v, x: model.apply(v, x, train=False)
  return Env(train_split, test, model, apply_fn, sharding.make_mesh())


def train(cfg, env: Env, name: str, spec: TrainSpec):
  """`training.fit` of one model in `cfg.workdir/name` with the config's
  optimizer, epochs, batch size, seed and checkpoint period (resumed or
  reloaded from there). Returns `(FitResult, seconds)`."""
  steps_per_epoch = max(env.train.images.shape[0] // cfg.batch_size, 1)
  settings = {k: getattr(cfg, k) for k in TRAINING_SETTINGS}
  t0 = time.time()
  res = training.fit(env.model, make_optimizer(cfg, steps_per_epoch),
                     env.train, method=spec.method, epochs=cfg.epochs,
                     batch_size=cfg.batch_size, seed=cfg.seed,
                     workdir=os.path.join(cfg.workdir, name),
                     save_every=cfg.save_every,
                     settings={**settings, **spec.settings}, mesh=env.mesh,
                     progress=cfg.progress, desc=f"train {name}",
                     **spec.fit_kwargs)
  return res, time.time() - t0


def run(benchmark: Benchmark, config) -> Dict[str, Any]:
  """Runs a benchmark; returns its results (also written to the workdir:
  results.json, results.md and the figures)."""
  cfg = resolve(benchmark, config)
  env = setup(cfg)
  results = {"benchmark": benchmark.name, "config": dataclasses.asdict(cfg),
             "devices": [str(d) for d in jax.devices()], "models": {}}
  for name, spec in benchmark.models(cfg, env).items():
    if isinstance(spec, Load):
      variables = checkpoint.load_variables(spec.workdir)
      entry = {"checkpoint": spec.workdir}
    else:
      fit, seconds = train(cfg, env, name, spec)
      variables = jax.device_get(fit.state.variables)
      entry = {"method": spec.method.name, "train_seconds": seconds,
               "resumed_from": fit.resumed_from, "history": fit.history}
    results["models"][name] = {
        **entry, **benchmark.evaluate(cfg, env, name, variables)}
  if benchmark.extra is not None:
    results["extra"] = benchmark.extra(cfg, env)
  rep = benchmark.report(cfg, results)
  if jax.process_index() == 0:  # one writer on a multi-host run
    report.write(cfg.workdir, results, rep)
  results["table"] = rep.markdown
  results["claims"] = rep.claims
  return results


# --------------------------------------------------------------------------
# The command line, generated from the config's fields.
# --------------------------------------------------------------------------
def _field_help(cls) -> Dict[str, str]:
  """`name: text` lines of the dataclass's (and its bases') Attributes."""
  out = {}
  for klass in reversed(cls.__mro__):
    parts = re.split(r"^\s*Attributes[^:\n]*:\s*$", klass.__doc__ or "",
                     maxsplit=1, flags=re.M)
    if len(parts) < 2:
      continue
    body = parts[1]
    for m in re.finditer(r"^\s{4}(\w+(?:, \w+)*): (.+?)(?=^\s{4}\w+(?:, \w+)*:|"
                         r"\Z)", body, re.S | re.M):
      for n in m.group(1).split(", "):
        out[n] = " ".join(m.group(2).split())
  return out


def _parse_value(kind):
  """The argparse type of a field annotation (Optional unwrapped; tuples
  of numbers from comma lists: '28,28,1')."""
  args = [a for a in typing.get_args(kind) if a is not type(None)]
  if typing.get_origin(kind) is typing.Union and len(args) == 1:
    kind = args[0]
  if typing.get_origin(kind) is tuple:
    item = _parse_value(typing.get_args(kind)[0])
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


def make_parser(benchmark: Benchmark) -> argparse.ArgumentParser:
  """One flag per field of the benchmark's config (`--field-name`; booleans
  as `--name/--no-name`), plus `--distributed`."""
  doc = benchmark.doc or ""
  p = argparse.ArgumentParser(
      prog=f"python -m benchmarks.{benchmark.name}",
      description=doc.strip().splitlines()[0] if doc.strip() else None)
  helps = _field_help(benchmark.config)
  hints = typing.get_type_hints(benchmark.config)
  for f in dataclasses.fields(benchmark.config):
    flag = "--" + f.name.replace("_", "-")
    kw = {"default": f.default, "dest": f.name,
          "help": helps.get(f.name, "") + (
              "" if f.default is None else f" (default: {f.default})")}
    if f.name == "dataset":
      kw["choices"] = sorted(benchmark.presets)
    if hints[f.name] is bool:
      p.add_argument(flag, action=argparse.BooleanOptionalAction, **kw)
    else:
      p.add_argument(flag, type=_parse_value(hints[f.name]), **kw)
  p.add_argument("--distributed", action="store_true",
                 help="multi-host: call jax.distributed.initialize() first")
  return p


def main(benchmark: Benchmark, argv: Optional[Sequence[str]] = None):
  """`python -m benchmarks.<name> [--field value ...]`: runs the benchmark
  and prints its report."""
  args = vars(make_parser(benchmark).parse_args(argv))
  sharding.initialize_distributed(args.pop("distributed"))
  try:
    res = run(benchmark, benchmark.config(**args))
  except data.DatasetNotFoundError as e:
    raise SystemExit(f"error: {e}") from None
  print(res["table"])
  return res
