"""Tests for advjax/run.py and advjax/report.py: a toy benchmark config
through the runner, flags generated from its fields, the report files."""
import dataclasses
import json
import os
from typing import NamedTuple, Optional, Tuple

import jax
import numpy as np
import optax
import pytest

from advjax import report, run, training


@dataclasses.dataclass(frozen=True)
class ToyConfig(run.Config):
  """A toy benchmark's settings.

  Attributes:
    eps: the training radius.
    grid: eps values, '0.1,0.2'.
    clean_only: train the standard model only.
  """
  eps: Optional[float] = None
  grid: Tuple[float, ...] = (0., 0.1)
  clean_only: bool = False


def _models(cfg, env):
  del env
  specs = {"standard": run.TrainSpec(training.methods.standard())}
  if not cfg.clean_only:
    specs["madry"] = run.TrainSpec(training.methods.madry(cfg.eps, steps=1),
                                   settings={"eps": cfg.eps})
  return specs


EVALUATED = []


class Accuracy:
  """A toy evaluator: `run(apply_fn, variables, data)`, a result with a
  `summary()`."""

  def run(self, apply_fn, variables, test):
    EVALUATED.append("accuracy")
    logits = apply_fn(variables, test.images)
    return AccuracyResult(np.argmax(logits, -1) == test.labels)

  def __repr__(self):
    return "Accuracy()"


class AccuracyResult(NamedTuple):
  correct: np.ndarray

  def summary(self):
    return {"accuracy": float(self.correct.mean())}


def _evaluate(cfg, env, name, variables):
  del cfg, variables
  EVALUATED.append(name)
  return {"examples": int(env.test.size)}


def _body(cfg, results):
  del cfg
  return [report.Table(("model", "acc"), [
      (n, report.cell(r["accuracy"]["accuracy"], "%"))
      for n, r in results["models"].items() if "accuracy" in r])]


REPORT = report.Report(
    title="toy on {dataset}", body=_body,
    published=[report.Published("Someone 2020", "toy", 50., "accuracy",
                                ours=lambda cfg, r: r["models"]["standard"][
                                    "accuracy"]["accuracy"])],
    claims=[report.Claim("two models", lambda cfg, r: len(r["models"]),
                         report.at_least(2), quantity="models")],
    figures=lambda cfg, r: {"acc.png": report.Line(
        {"a": [0.5, 0.6]}, x=[0, 1], xlabel="x", ylabel="y", title="t")})

TOY = run.Benchmark(
    "toy", ToyConfig, {"synthetic": dict(model="wong_mnist", epochs=1,
                                         batch_size=32, eps=0.1,
                                         optimizer="adam", learning_rate=1e-3,
                                         weight_decay=0., schedule="constant")},
    _models, _evaluate, REPORT, doc="A toy benchmark.\n\nMore text.",
    evals=lambda cfg, env: {"accuracy": Accuracy()})


def test_a_toy_config_runs_end_to_end_and_reloads(tmp_path):
  cfg = ToyConfig(dataset="synthetic", train_limit=64, eval_limit=16,
                  workdir=str(tmp_path), progress=False)
  res = run.run(TOY, cfg)
  assert set(res["models"]) == {"standard", "madry"}
  assert res["models"]["madry"]["method"] == "madry"
  assert res["models"]["madry"]["resumed_from"] is None
  assert res["models"]["madry"]["examples"] == 16  # the evaluate hook
  assert 0 <= res["models"]["madry"]["accuracy"]["accuracy"] <= 1  # evals
  saved = json.load(open(tmp_path / "results.json"))
  assert saved["config"]["epochs"] == 1  # the preset filled it
  assert saved["claims"] == [{"text": "two models", "verdict": "holds",
                              "evidence": "2", "rule": "holds if models >= 2",
                              "holds": True}]
  md = open(tmp_path / "results.md").read()
  assert md.startswith("# toy on synthetic") and "## Claims checked" in md
  assert "| Someone 2020 | toy | accuracy | 50.0 % |" in md
  assert "![acc.png](acc.png)" in md
  assert os.path.getsize(tmp_path / "acc.png") > 0
  assert res["written"][:2] == [str(tmp_path / "results.json"),
                                str(tmp_path / "results.md")]
  EVALUATED.clear()
  again = run.run(TOY, cfg)
  assert again["models"]["madry"]["resumed_from"] == 2  # 64 // 32 steps
  assert (again["models"]["madry"]["accuracy"]
          == res["models"]["madry"]["accuracy"])
  assert EVALUATED == []  # same config and weights: the evaluations reused
  # A reloaded model reports its training's time and history, not the
  # reload's.
  for name in ("standard", "madry"):
    assert again["models"][name]["train_seconds"] == (
        res["models"][name]["train_seconds"]) > 0
    assert again["models"][name]["history"] == res["models"][name]["history"]
    assert len(again["models"][name]["history"]) == 1
  run.run(TOY, dataclasses.replace(cfg, reuse_evaluations=False))
  assert EVALUATED == ["accuracy", "standard", "accuracy", "madry"]
  EVALUATED.clear()
  run.run(TOY, dataclasses.replace(cfg, eval_limit=8))  # another evaluation
  assert EVALUATED == ["accuracy", "standard", "accuracy", "madry"]
  with open(tmp_path / "madry" / "evaluation.pkl", "wb") as f:
    f.write(b"cut")  # a file cut while writing is recomputed, not an error
  EVALUATED.clear()
  run.run(TOY, dataclasses.replace(cfg, eval_limit=8))
  assert EVALUATED == ["madry"]  # the evaluator's own cache still holds
  # A reload with another training setting is an error, not a silent mix.
  with pytest.raises(Exception, match="eps"):
    run.run(TOY, dataclasses.replace(cfg, eps=0.2))


def test_a_model_can_have_its_own_architecture_training_set_and_optimizer(
    tmp_path):
  seen = {}

  def models_(cfg, env):
    del cfg
    half = env.train._replace(images=env.train.images[:32],
                              labels=env.train.labels[:32])
    return {"fc": run.TrainSpec(
        training.methods.standard(), model="fc10", train=half,
        optimizer=lambda opt: optax.chain(training.l1_decay(1e-3), opt),
        settings={"l1": 1e-3})}

  def evaluate(cfg, env, name, variables):
    del cfg, name
    seen["model"] = type(env.model).__name__
    seen["train"] = env.train.images.shape[0]
    return {"params": sorted(variables["params"])}

  def extra(cfg, env, trained):  # each model's own inference function
    del cfg
    return {"logits": env.apply_fns["fc"](trained["fc"],
                                          env.test.images[:2]).shape}

  toy = TOY._replace(models=models_, evaluate=evaluate, evals=None,
                     extra=extra)
  cfg = ToyConfig(dataset="synthetic", train_limit=64, eval_limit=16,
                  workdir=str(tmp_path), progress=False)
  res = run.run(toy, cfg)
  assert seen == {"model": "FC10", "train": 64}  # evaluated on the run's
  assert res["extra"] == {"logits": (2, 10)}
  assert res["models"]["fc"]["params"] == ["Dense_0"]
  assert len(res["models"]["fc"]["history"]) == 1
  again = run.run(toy, cfg)
  assert again["models"]["fc"]["resumed_from"] == 1
  # Another training set under the same name is a mismatch, not a reuse.
  def other(cfg, env):
    spec = models_(cfg, env)["fc"]
    return {"fc": spec._replace(train=env.train._replace(
        images=env.train.images[32:64], labels=env.train.labels[32:64]))}
  with pytest.raises(Exception, match="train_data"):
    run.run(toy._replace(models=other), cfg)


def test_equal_architectures_share_one_inference_function():
  env = run.Env(None, None, None, None, None)
  fns = [run.spec_env(env._replace(test=type("T", (), {"num_classes": 10})),
                      run.TrainSpec(training.methods.standard(),
                                    model=m)).apply_fn
         for m in ("fc10", "fc10", "fc100_100_10")]
  assert fns[0] is fns[1] and fns[0] is not fns[2]  # one compilation each


def test_report_only_rewrites_the_report_from_results_json(tmp_path, capsys):
  cfg = ToyConfig(dataset="synthetic", train_limit=64, eval_limit=16,
                  grid=(0., 0.2), workdir=str(tmp_path), progress=False,
                  clean_only=True)
  res = run.run(TOY, cfg)
  EVALUATED.clear()
  grids = []

  def new_claim(cfg, results):
    del results
    grids.append(cfg.grid)  # the run's config, tuples restored
    return True

  toy = TOY._replace(report=report.Report(
      "rewritten", claims=[report.Claim("new", new_claim)]))
  again = run.main(toy, ["--dataset", "synthetic", "--workdir",
                         str(tmp_path), "--report-only"])
  assert EVALUATED == [] and grids == [(0., 0.2)]  # nothing recomputed
  assert again["models"] == json.loads(json.dumps(res["models"]))
  assert open(tmp_path / "results.md").read().startswith("# rewritten")
  saved = json.load(open(tmp_path / "results.json"))
  assert saved["claims"] == [{"text": "new", "verdict": "holds",
                              "evidence": "yes", "rule": "", "holds": True}]
  assert "# rewritten" in capsys.readouterr().out
  with pytest.raises(FileNotFoundError, match="run the benchmark"):
    run.rewrite_report(toy, str(tmp_path / "none"))


def test_l1_decay_and_freeze():
  params = {"encoder": {"w": np.array([2., -3., 0.])},
            "head": {"w": np.array([1., -1., 0.])}}
  grads = jax.tree.map(np.zeros_like, params)
  l1 = training.l1_decay(0.5)
  up, _ = l1.update(grads, l1.init(params), params)
  np.testing.assert_allclose(up["encoder"]["w"], [0.5, -0.5, 0.])
  with pytest.raises(ValueError, match="coeff must be >= 0"):
    training.l1_decay(-1.)
  opt = training.freeze(optax.sgd(1.), ("encoder",))
  ones = jax.tree.map(np.ones_like, params)
  up, _ = opt.update(ones, opt.init(params), params)
  np.testing.assert_allclose(up["encoder"]["w"], 0.)
  np.testing.assert_allclose(up["head"]["w"], -1.)


def test_flags_from_the_dataclass():
  p = run.make_parser(TOY)
  a = vars(p.parse_args(["--dataset", "synthetic", "--grid", "0.1,0.3",
                         "--clean-only", "--eps", "0.05", "--epochs", "3"]))
  a.pop("distributed")
  cfg = ToyConfig(**a)
  assert cfg.grid == (0.1, 0.3) and cfg.clean_only and cfg.eps == 0.05
  assert cfg.epochs == 3 and cfg.batch_size is None
  assert not ToyConfig(**{**a, "clean_only": False}).clean_only
  text = p.format_help()
  assert "A toy benchmark." in text and "the training radius" in text
  assert "eps values" in text and "--no-clean-only" in text


def test_presets_and_optimizers():
  with pytest.raises(ValueError, match="No toy preset for dataset 'mnist'"):
    run.resolve(TOY, ToyConfig(dataset="mnist"))
  cfg = run.resolve(TOY, ToyConfig(dataset="synthetic", eps=0.3))
  assert cfg.eps == 0.3 and cfg.workdir == os.path.join("runs",
                                                         "toy-synthetic")
  for schedule in ("constant", "piecewise", "cyclic", "cosine"):
    opt = run.make_optimizer(dataclasses.replace(cfg, schedule=schedule), 10)
    assert isinstance(opt, optax.GradientTransformation)
  with pytest.raises(ValueError, match="Unknown schedule"):
    run.make_optimizer(dataclasses.replace(cfg, schedule="step"), 10)
  with pytest.raises(ValueError, match="sgd or adam"):
    run.make_optimizer(dataclasses.replace(cfg, optimizer="lamb"), 10)


def test_field_checks_are_declared_once_and_enforced():
  @dataclasses.dataclass(frozen=True)
  class Checked(ToyConfig):
    """Attributes:
      steps: steps.
      norm: the norm.
      radii: radii.
      norms: norms.
    """
    steps: int = run.field(10, ge=1)
    norm: str = run.field("linf", choices=("linf", "l2"))
    radii: Tuple[float, ...] = run.field((0.1,), ge=0, le=1)
    norms: Tuple[str, ...] = run.field(("linf",), choices=("linf", "l2"))

  bench = TOY._replace(config=Checked)
  assert run.resolve(bench, Checked(dataset="synthetic")).steps == 10
  for bad, match in ((dict(steps=0), r"Checked.steps \(--steps\) must be >= 1; "
                      "got 0"),
                     (dict(norm="l1"), "must be one of linf, l2; got 'l1'"),
                     (dict(radii=(0.1, 2.)), r"radii .* <= 1; got \(0.1, 2.0\)"),
                     (dict(radii=(float("nan"),)), "radii"),
                     (dict(eps=None, learning_rate=-1.), "learning_rate"),
                     (dict(optimizer="lamb"), "one of sgd, adam"),
                     (dict(norms=("l2", "l1")), "norms .* one of linf, l2")):
    with pytest.raises(run.ConfigError, match=match):
      run.resolve(bench, Checked(dataset="synthetic", **bad))
  # The command line knows the choices, and says the rule in the help.
  parser = run.make_parser(bench)
  with pytest.raises(SystemExit):
    parser.parse_args(["--norm", "l1"])
  assert "[>= 1]" in " ".join(parser.format_help().split())
  # A tuple's choices hold for each of its items.
  assert parser.parse_args(["--norms", "l2,linf"]).norms == ("l2", "linf")
  assert "[one of linf, l2]" in " ".join(parser.format_help().split())
  with pytest.raises(SystemExit, match="norms"):
    run.main(bench, ["--dataset", "synthetic", "--norms", "l1"])
  with pytest.raises(SystemExit, match="must be >= 1"):
    run.main(bench, ["--dataset", "synthetic", "--steps", "0"])


def test_a_field_declared_for_its_help_only_takes_any_value():
  @dataclasses.dataclass(frozen=True)
  class Helped(ToyConfig):
    path: str = run.field("", "a file")
    kwargs: Optional[str] = run.field(None, "keywords")

  bench = TOY._replace(config=Helped)
  cfg = run.resolve(bench, Helped(dataset="synthetic", path="c.pt",
                                  kwargs="depth=28"))
  assert (cfg.path, cfg.kwargs) == ("c.pt", "depth=28")
  assert run.FieldCheck().allows("anything")


def test_epoch_variables_are_read_without_an_optimizer(tmp_path):
  cfg = run.resolve(TOY, ToyConfig(dataset="synthetic", train_limit=64,
                                   eval_limit=8, workdir=str(tmp_path),
                                   progress=False, clean_only=True))
  env = run.setup(cfg)
  spec = run.TrainSpec(training.methods.standard(),
                       fit_kwargs={"epoch_checkpoints": True})
  fit, _ = run.train(dataclasses.replace(cfg, epochs=2), env, "m", spec)
  assert training.kept_epochs(str(tmp_path / "m")) == [0, 1, 2]
  last = run.epoch_variables(cfg, "m", 2)
  chex_equal = jax.tree.map(np.array_equal, last,
                            jax.device_get(fit.state.variables))
  assert all(jax.tree.leaves(chex_equal))
  first = run.epoch_variables(cfg, "m", 0)
  assert not all(jax.tree.leaves(jax.tree.map(np.array_equal, first, last)))
  with pytest.raises(Exception, match="No checkpoint of epoch 3"):
    run.epoch_variables(cfg, "m", 3)


@dataclasses.dataclass(frozen=True)
class ToyTiming(run.TimingConfig):
  """Attributes:
    size: the size.
  """
  size: int = run.field(4, ge=1)
  note: str = run.field("", "a field with help and no check")


def _toy_timing(seen):
  def measure(cfg):
    seen.append(cfg)
    return {"config": dataclasses.asdict(cfg), "size": cfg.size}

  return run.Timing(
      "toy_timing", ToyTiming, measure, report.Report(
          title="toy", body=lambda cfg, res: [f"size {res['size']}"]),
      requires=[(lambda cfg: cfg.size != 3, "size 3 is unlucky")])


def test_timing_main_fills_the_workdir_and_checks_fields(
    tmp_path, capsys, monkeypatch):
  seen = []
  bench = _toy_timing(seen)
  monkeypatch.chdir(tmp_path)
  run.timing_main(bench, argv=["--size", "2"])
  assert seen[0].workdir == os.path.join("runs", "toy_timing")
  assert "size 2" in capsys.readouterr().out
  res = run.timing_main(bench, argv=["--workdir", str(tmp_path / "w")])
  assert seen[1].workdir == str(tmp_path / "w") and seen[1].size == 4
  assert res["benchmark"] == "toy_timing"
  assert "size 4" in (tmp_path / "w" / "results.md").read_text()
  with pytest.raises(SystemExit, match="repeats"):
    run.timing_main(bench, argv=["--repeats", "0"])
  with pytest.raises(SystemExit, match="unlucky"):
    run.timing_main(bench, argv=["--size", "3"])
  with pytest.raises(SystemExit, match="--workdir"):
    run.timing_main(bench, argv=["--out-dir", "x"])
  assert len(seen) == 2  # a failed check measures nothing


def test_timing_report_only_rewrites_without_measuring(tmp_path):
  seen = []
  bench = _toy_timing(seen)
  workdir = tmp_path / "w"
  with pytest.raises(SystemExit, match="No .*results.json"):
    run.timing_main(bench, argv=["--workdir", str(workdir), "--report-only"])
  run.run_timing(bench, ToyTiming(workdir=str(workdir), size=5))
  (workdir / "results.md").write_text("stale")
  again = run.timing_main(bench, argv=["--workdir", str(workdir),
                                       "--report-only"])
  assert len(seen) == 1 and again["size"] == 5
  assert "size 5" in (workdir / "results.md").read_text()


def test_every_field_of_the_config_benchmarks_is_documented():
  """The flags' help comes from each config's Attributes docstring: a
  field without a line there is a setting a user cannot read about."""
  import dataclasses as dc
  for bench in _benchmarks() + [TOY]:
    helps = run._field_help(bench.config)  # pylint: disable=protected-access
    missing = [f.name for f in dc.fields(bench.config) if f.name not in helps]
    assert not missing, (bench.name, missing)
    # The help renders (argparse %-formats it: a '5 %' in a docstring).
    assert "--report-only" in run.make_parser(bench).format_help()


def _benchmarks():
  import importlib
  names = ("autoattack", "carlini", "features", "goodfellow", "imagenet",
           "madry", "physical", "quickstart", "spatial", "transfer",
           "universality", "wasserstein")
  return [importlib.import_module(f"benchmarks.{n}").BENCHMARK
          for n in names]


def test_field_checks_reach_into_nested_tuples():
  """A tuple of tuples ('30:3,5:1' on the command line) is checked leaf
  by leaf."""
  @dataclasses.dataclass(frozen=True)
  class Pairs(ToyConfig):
    pairs: Tuple[Tuple[float, ...], ...] = run.field(((30., 3.),), "pairs",
                                                     ge=0)

  bench = TOY._replace(config=Pairs)
  ok = run.resolve(bench, Pairs(dataset="synthetic", pairs=((1., 0.),)))
  assert ok.pairs == ((1., 0.),)
  with pytest.raises(run.ConfigError, match=r"pairs .* >= 0; got "
                     r"\(\(30.0, 3.0\), \(5.0, -1.0\)\)"):
    run.resolve(bench, Pairs(dataset="synthetic",
                             pairs=((30., 3.), (5., -1.))))


def test_a_tuple_field_with_choices_takes_a_list_on_the_command_line():
  """`--names a,b` is parsed to a tuple; each item is checked against the
  choices (by `check_config`, not argparse, which would compare the
  tuple)."""
  @dataclasses.dataclass(frozen=True)
  class Named(ToyConfig):
    names: Tuple[str, ...] = run.field(("a",), "names", choices=("a", "b"))

  bench = TOY._replace(config=Named)
  args = vars(run.make_parser(bench).parse_args(["--names", "b,a"]))
  assert args["names"] == ("b", "a")
  assert "one of a, b" in run.make_parser(bench).format_help()
  with pytest.raises(SystemExit, match="names .* one of a, b"):
    run.main(bench, ["--dataset", "synthetic", "--names", "a,c"])


def test_tuple_fields_with_choices_parse_and_check_each_element():
  @dataclasses.dataclass(frozen=True)
  class Picks(ToyConfig):
    picks: Tuple[str, ...] = run.field(("a", "b"), "some of a, b, c",
                                       choices=("a", "b", "c"))

  bench = TOY._replace(config=Picks)
  parser = run.make_parser(bench)
  assert parser.parse_args(["--picks", "c,a"]).picks == ("c", "a")
  assert "[one of a, b, c]" in " ".join(parser.format_help().split())
  with pytest.raises(run.ConfigError, match="picks"):
    run.resolve(bench, Picks(dataset="synthetic", picks=("a", "d")))
  with pytest.raises(run.ConfigError, match=r"picks \(--picks\) must name "
                     "at least one of a, b, c; got none"):
    run.resolve(bench, Picks(dataset="synthetic", picks=()))
  with pytest.raises(SystemExit, match="at least one"):
    run.main(bench, ["--dataset", "synthetic", "--picks", ""])
