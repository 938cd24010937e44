"""benchmarks/imagenet.py: the study's config, shrunk, on a generated
ImageFolder and a randomly initialised torchvision-layout model."""
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from advjax import data, run, zoo
from benchmarks import imagenet


def _image_folder(root, classes=("n01440764", "n01443537", "n01484850"),
                  per_class=3, seed=0):
  image_lib = pytest.importorskip("PIL.Image")
  rng = np.random.default_rng(seed)
  for c in classes:
    os.makedirs(root / "val" / c)
    for i in range(per_class):
      h, w = rng.integers(40, 90, 2)
      a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
      image_lib.fromarray(a).save(root / "val" / c / f"img{i}.JPEG")
  return root


def _flags(tmp_path, checkpoint, extra=()):
  args = ["--data-dir", str(tmp_path / "data"), "--checkpoint",
          str(checkpoint), "--arch", "resnet18", "--size", "32",
          "--classes", "3", "--per-class", "2", "--no-only-correct",
          "--eps", "0.1,0.6", "--bim-steps", "1,2", "--pgd-steps", "2",
          "--targeted-eps", "0.01,0.1", "--targeted-bim-steps", "2",
          "--cw-steps", "3", "--cw-search-steps", "2", "--examples", "2",
          "--device-batch-size", "2", "--no-progress",
          "--workdir", str(tmp_path / "run"), *extra]
  flags = vars(run.make_parser(imagenet.BENCHMARK).parse_args(args))
  flags.pop("distributed")
  return imagenet.ImageNetConfig(**flags)


def test_config_errors(tmp_path):
  with pytest.raises(ValueError, match="needs --checkpoint"):
    run.resolve(imagenet.BENCHMARK, imagenet.ImageNetConfig())
  with pytest.raises(ValueError, match="one step count per eps"):
    run.resolve(imagenet.BENCHMARK, imagenet.ImageNetConfig(
        checkpoint="v.pth", bim_steps=(1,)))


def test_select_keeps_the_first_correct_images_of_each_class():
  """`only_correct`: per class, the first `per_class` images the model gets
  right, in file order."""
  y = np.array([0, 0, 0, 1, 1, 1, 2], np.int32)
  pred = np.array([1, 0, 0, 1, 0, 1, 2])
  x = pred[:, None, None, None].astype(np.float32) * np.ones((7, 2, 2, 3))
  apply_fn = lambda v, z: jax.nn.one_hot(z[:, 0, 0, 0].astype(jnp.int32), 5)
  env = run.Env(None, data.Dataset(x, y, 5, "t"), None, apply_fn, None)
  cfg = imagenet.ImageNetConfig(per_class=2, only_correct=True)
  xs, ys, info = imagenet._select(cfg, env, {})  # pylint: disable=protected-access
  np.testing.assert_array_equal(ys, [0, 0, 1, 1, 2])
  np.testing.assert_array_equal(xs[:, 0, 0, 0], [0, 0, 1, 1, 2])
  assert info["classes_short"] == {2: 1}
  assert info["candidate_top1"] == pytest.approx(5 / 7)


@pytest.mark.slow  # end-to-end; CI runs it (README)
def test_run_writes_the_study(tmp_path):
  _image_folder(tmp_path / "data")
  model = zoo.build("resnet18")
  variables = model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
  ckpt = tmp_path / "resnet18.safetensors"
  zoo.convert.write_safetensors(ckpt, zoo.convert.to_state_dict(variables))
  res = run.run(imagenet.BENCHMARK, _flags(tmp_path, ckpt))
  c = res["models"]["resnet18"]
  assert c["n"] == 6 and c["selection"]["candidates"] == 6
  for eps in ("0.1", "0.6"):
    t = c["untargeted"][eps]
    for m in ("natural", "fgsm", "bim", "pgd"):
      assert 0 <= t[m]["top1"][0] <= t[m]["top5"][0] <= 1
  assert len(c["targeted"]["fgsm"]["target_top5"]) == 2
  assert 0 <= c["cw"]["target_top1"][0] <= c["cw"]["target_top5"][0] <= 1
  for name in ("results.json", "results.md", "targeted.png", "examples.png",
               "examples.npz"):
    assert os.path.getsize(tmp_path / "run" / name) > 0, name
  saved = json.load(open(tmp_path / "run" / "results.json"))
  assert all(cl["holds"] for cl in saved["claims"])
  md = open(tmp_path / "run" / "results.md").read()
  assert "| FGSM | 1 |" in md and "target reached" in md
  # The clean top-1 / top-5 is the model's on the chosen images.
  test = data.load("folder", "validation", str(tmp_path / "data"), size=32,
                   classes=3, per_class=2, lazy=False)
  logits = model.apply(variables, test.images)
  rank = (logits > jnp.take_along_axis(logits, test.labels[:, None], 1)).sum(1)
  assert c["untargeted"]["0.1"]["natural"]["top5"][0] == pytest.approx(
      float(np.mean(np.asarray(rank) < 5)))
