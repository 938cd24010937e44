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
  assert [t["eps"] for t in c["untargeted"]] == [0.1, 0.6]
  for t in c["untargeted"]:
    for m in ("fgsm", "bim", "pgd"):
      top1, top5 = t[m]["accuracy_topk"][0]
      assert 0 <= top1 <= top5 <= 1
  assert len(c["targeted"]["fgsm"]["target_success_topk"]) == 2
  top1, top5 = c["cw"]["target_success_topk"][0]
  assert 0 <= top1 <= top5 <= 1
  assert set(c["examples"]["pred"]) == set(c["examples"]["attacks"])
  for name in ("results.json", "results.md", "targeted.png", "examples.png",
               "examples.npz"):
    assert os.path.getsize(tmp_path / "run" / name) > 0, name
  saved = json.load(open(tmp_path / "run" / "results.json"))
  assert [cl["verdict"] for cl in saved["claims"]] == ["holds"] * 2
  md = open(tmp_path / "run" / "results.md").read()
  assert "| FGSM | 1 |" in md and "target reached" in md
  assert "| Seed 004, Table 1 (VGG11, 150 images) | eps 0.1, PGD |" in md
  # The clean top-1 / top-5 is the model's on the chosen images.
  test = data.load("folder", "validation", str(tmp_path / "data"), size=32,
                   classes=3, per_class=2, lazy=False)
  logits = model.apply(variables, test.images)
  rank = (logits > jnp.take_along_axis(logits, test.labels[:, None], 1)).sum(1)
  assert c["untargeted"][0]["fgsm"]["clean_accuracy_topk"][1] == \
      pytest.approx(float(np.mean(np.asarray(rank) < 5)))
