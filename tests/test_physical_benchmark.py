"""Tests for benchmarks/physical.py (Kurakin, Goodfellow, Bengio 2017) and
the perspective warp it adds to advjax/transforms.py: the pieces on known
answers, the real config shrunk through the runner."""
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from advjax import data, run, sharding, training
from advjax import transforms as T
from benchmarks import physical as P


# Jitted: op-by-op, map_coordinates compiles each of its many small ops.
_perspective = jax.jit(T.perspective, static_argnames="mode")
_print_photo = jax.jit(P.print_photo, static_argnums=2)


def _images(b=3, h=6, w=7, c=2, seed=0):
  return jnp.asarray(np.random.default_rng(seed).uniform(size=(b, h, w, c)),
                     jnp.float32)


# --------------------------------------------------------------------------
# transforms.perspective
# --------------------------------------------------------------------------
def test_perspective_zero_offsets_identity_equal_offsets_translate():
  x = _images()
  np.testing.assert_allclose(_perspective(x, jnp.zeros((4, 2))), x,
                             atol=1e-6)
  np.testing.assert_allclose(_perspective(x, jnp.zeros((3, 4, 2))), x,
                             atol=1e-6)
  # The four corners moved alike: a translation, zero fill.
  off = jnp.tile(jnp.array([1.5, -0.5]), (4, 1))
  np.testing.assert_allclose(_perspective(x, off),
                             T.rotate_translate(x, 0., 1.5, -0.5), atol=1e-5)


def test_perspective_moves_a_corner_by_its_offset():
  x = _images()
  off = jnp.zeros((4, 2)).at[0].set([2., 1.])  # top-left -> (x 2, y 1)
  out = np.asarray(_perspective(x, off))
  xn = np.asarray(x)
  np.testing.assert_allclose(out[:, 1, 2], xn[:, 0, 0], atol=1e-5)
  for r, c in ((0, 6), (5, 6), (5, 0)):  # the other corners stay
    np.testing.assert_allclose(out[:, r, c], xn[:, r, c], atol=1e-5)


def _reference_perspective(img, off):
  """Float64 NumPy/SciPy: the homography in pixel coordinates, bilinear
  sampling with edge replication."""
  from scipy import ndimage  # pylint: disable=import-outside-toplevel
  h, w, c = img.shape
  src = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], float)
  dst = src + off
  a, b = [], []
  for (u, v), (px, py) in zip(dst, src):  # output (dst) -> input (src)
    a += [[u, v, 1, 0, 0, 0, -u * px, -v * px],
          [0, 0, 0, u, v, 1, -u * py, -v * py]]
    b += [px, py]
  m = np.append(np.linalg.solve(np.array(a), np.array(b)), 1.).reshape(3, 3)
  rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
  p = m @ np.stack([cols.ravel(), rows.ravel(), np.ones(h * w)])
  sx, sy = (p[0] / p[2]).reshape(h, w), (p[1] / p[2]).reshape(h, w)
  return np.stack([ndimage.map_coordinates(img[..., k], [sy, sx], order=1,
                                           mode="nearest")
                   for k in range(c)], -1)


def test_perspective_matches_a_float64_reference():
  x = _images(b=2, h=9, w=11, c=3, seed=1)
  off = np.random.default_rng(2).uniform(-1.5, 1.5, (2, 4, 2))
  out = np.asarray(_perspective(x, jnp.asarray(off, jnp.float32),
                                 mode="nearest"))
  for i in range(2):
    np.testing.assert_allclose(
        out[i], _reference_perspective(np.asarray(x[i], float), off[i]),
        atol=1e-5)


def test_perspective_per_example_jit_and_differentiable():
  x = _images()
  off = jnp.asarray(np.random.default_rng(3).uniform(-1, 1, (3, 4, 2)),
                    jnp.float32)
  out = T.perspective(x, off)  # no jit
  np.testing.assert_allclose(_perspective(x, off), out, atol=1e-6)
  for i in range(3):
    np.testing.assert_allclose(_perspective(x[i:i + 1], off[i:i + 1])[0],
                               out[i], atol=1e-6)
  g = jax.jit(jax.grad(lambda o: jnp.sum(T.perspective(x, o) ** 2)))(off)
  assert g.shape == off.shape and bool(jnp.all(jnp.isfinite(g)))
  assert float(jnp.abs(g).max()) > 0


def test_perspective_bad_inputs():
  x = _images()
  with pytest.raises(ValueError, match="offsets"):
    T.perspective(x, jnp.zeros((3, 2)))
  with pytest.raises(ValueError, match="offsets"):
    T.perspective(x, jnp.zeros((2, 4, 2)))
  with pytest.raises(ValueError, match="mode"):
    T.perspective(x, jnp.zeros((4, 2)), mode="edge")
  with pytest.raises(ValueError, match="2 x 2"):
    T.perspective(jnp.zeros((1, 1, 5, 1)), jnp.zeros((4, 2)))
  with pytest.raises(ValueError, match=r"\[B, H, W, C\]"):
    T.perspective(jnp.zeros((5, 5, 1)), jnp.zeros((4, 2)))
  with pytest.raises(TypeError):
    T.perspective(jnp.zeros((1, 4, 4, 1), jnp.int32), jnp.zeros((4, 2)))


# --------------------------------------------------------------------------
# The benchmark's pieces.
# --------------------------------------------------------------------------
def _keys(n, seed=0):
  return jax.vmap(lambda i: jax.random.fold_in(jax.random.key(seed), i))(
      jnp.arange(n))


def test_photo_chain_with_every_strength_zero_is_the_identity():
  x = _images(c=3)
  np.testing.assert_array_equal(P.print_photo(x, _keys(3), P.PhotoChain()),
                                x)
  cfg = P.resolve(P.PhysicalConfig(photo_warp=0., photo_blur=0.,
                                   photo_noise=0., photo_contrast=0.,
                                   photo_brightness=0., photo_jpeg=0.))
  assert P.PhotoChain.from_config(cfg) == P.PhotoChain()


@pytest.mark.parametrize("stage, value", [
    ("warp", 0.05), ("blur", 0.5), ("noise", 4.), ("contrast", 0.1),
    ("brightness", 10.), ("jpeg", 75.)])
def test_photo_chain_stages_per_example_and_in_the_box(stage, value):
  x = _images(b=4, h=8, w=8, c=1, seed=4)
  chain = P.PhotoChain(**{stage: value})
  keys = _keys(4, seed=5)
  out = _print_photo(x, keys, chain)
  assert out.shape == x.shape and out.dtype == x.dtype
  assert float(out.min()) >= 0. and float(out.max()) <= 1.
  assert float(jnp.abs(out - x).max()) > 1e-3
  # An example's draw is its own key's: alone = in the batch.
  np.testing.assert_allclose(
      _print_photo(x[2:3], keys[2:3], chain)[0], out[2], atol=1e-6)


def test_kurakin_steps_and_attacks():
  assert [P.kurakin_steps(e) for e in (2, 4, 8, 16, 32, 64, 128)] == [
      3, 5, 10, 20, 36, 68, 132]
  assert P.kurakin_steps(0) == 1
  assert P.attack("bim", 16.).keywords == {"steps": 20,
                                           "step_size": 1. / 255}
  with pytest.raises(ValueError, match="Unknown method"):
    P.attack("cw", 16.)


def test_prefilter_selects_exactly_the_examples_meeting_both_conditions():
  y = np.array([0, 1, 2, 0, 1])
  p = lambda c, conf: np.eye(3)[c] * conf + (1 - conf) / 2 * (1 - np.eye(3)[c])
  clean = np.stack([p(0, .9), p(1, .9), p(0, .9), p(0, .7), p(1, .8)])
  adv = np.stack([p(1, .95), p(1, .95), p(2, .95), p(2, .95), p(0, .9)])
  # 0: both hold; 1: adversarial still right; 2: clean wrong; 3: clean
  # not confident; 4: clean exactly at 0.8 (strict).
  np.testing.assert_array_equal(P.prefilter(y, clean, adv, 0.8),
                                [True, False, False, False, False])
  # 0.96 > every adversarial probability: none.
  assert not P.prefilter(y, clean, adv, 0.96).any()
  for bad in (0., 1., 1.5):
    with pytest.raises(ValueError, match="confidence"):
      P.prefilter(y, clean, adv, bad)
  with pytest.raises(ValueError, match="probabilities"):
    P.prefilter(y, clean, adv[:3], 0.8)


def test_summarise_destruction_rates_on_a_hand_built_case():
  t, f = True, False
  per = {"clean_topk": np.array([[t], [t], [t], [t], [f], [t]]),
         "fgsm/topk": np.array([[f], [f], [f], [t], [f], [f]]),
         "photo_clean_topk": np.array([[t], [t], [f], [t], [f], [t]]),
         "fgsm/photo_topk": np.array([[t], [t], [f], [f], [t], [f]]),
         "fgsm/transformed": np.array([[t, f], [f, f], [f, f], [t, f],
                                       [t, f], [f, f]])}
  every = np.ones(6, bool)
  out = P.summarise(per, {"random": every,
                          "prefiltered": {"fgsm": np.arange(6) < 2}},
                    ("fgsm",), ("a", "b"), (1,))
  r = out["random"]["fgsm"]
  # Fooled: clean right and adversarial wrong, examples 0, 1, 2, 5.
  assert (r["n"], r["fooled"]) == (6, 4)
  assert r["destruction"] == {"a": 0.25, "b": 0.}
  assert r["photo"]["destruction"] == [0.5]
  assert r["photo"]["clean"] == [5 / 6]
  assert r["photo"]["photo_adversarial"] == [0.5]
  s = out["prefiltered"]["fgsm"]
  assert (s["n"], s["fooled"], s["destruction"]["a"]) == (2, 2, 0.5)
  # Nothing fooled: the rate is undefined, not 0.
  empty = P.summarise(per, {"random": np.arange(6) == 3}, ("fgsm",),
                      ("a", "b"), (1,))["random"]["fgsm"]
  assert np.isnan(empty["destruction"]["a"])


def _affine(num_classes=10, shape=(8, 8, 1), seed=0):
  w = jax.random.normal(jax.random.key(seed),
                        (int(np.prod(shape)), num_classes))
  return lambda v, x: x.reshape(x.shape[0], -1) @ v["w"], {"w": w}


@pytest.fixture(scope="module")
def tiny():
  """The real config shrunk (eps 0 and 4, FGSM and ILLC, one strength per
  transform) on an affine model and 12 synthetic test images."""
  cfg = P.resolve(P.PhysicalConfig(dataset="synthetic", eps=(0., 4.),
                                   destruction_eps=4.,
                                   methods=("fgsm", "illc"), progress=False,
                                   figure_examples=2, random_examples=5))
  apply_fn, v = _affine()
  env = run.Env(None, data.load("synthetic", "test", limit=12), None,
                apply_fn, sharding.make_mesh())
  return cfg, env, v, P.evaluate(cfg, env, "standard", v)


def test_one_pipeline_step_shapes(tiny):
  cfg, env, v, _ = tiny
  per = P.per_example(cfg, env, v, (1, 5))  # the evaluation's compilation
  n_tf = len(P.transform_grid(cfg))
  assert n_tf == 5
  assert per["clean_probs"].shape == (12, 10)
  np.testing.assert_allclose(per["clean_probs"].sum(-1), 1., atol=1e-5)
  for m in cfg.methods:
    assert per[f"{m}/probs"].shape == (12, 10)
    assert per[f"{m}/topk"].shape == per[f"{m}/photo_topk"].shape == (12, 2)
    assert per[f"{m}/transformed"].shape == (12, n_tf)
    assert per[f"{m}/transformed"].dtype == bool
  # Top-1 correct implies top-5 correct.
  assert np.all(per["clean_topk"][:, 1] | ~per["clean_topk"][:, 0])
  # The clean accuracy is the sweep's (the same model, the same images).
  assert per["clean_topk"][:, 0].mean() == pytest.approx(
      tiny[3]["sweep"]["clean"]["top1"])


def test_evaluate_on_tiny_data(tiny):
  cfg, _, _, r = tiny
  assert r["top_k"] == [1, 5] and r["test_examples"] == 12
  for m in cfg.methods:
    assert len(r["sweep"][m]["top1"]) == len(r["sweep"][m]["top5"]) == 2
    assert all(a <= b for a, b in zip(r["sweep"][m]["top1"],
                                      r["sweep"][m]["top5"]))
    # eps 0 leaves the clean image.
    assert r["sweep"][m]["top1"][0] == r["sweep"]["clean"]["top1"]
  assert r["sweep"]["steps"]["illc"] == [1, 5]
  assert r["sets"]["random"]["fgsm"]["n"] == 5
  assert set(r["sets"]["random"]["illc"]["destruction"]) == {
      t[0] for t in r["transforms"]}
  assert set(r["figure"]["images"]) == {
      "clean", "clean photo", "fgsm", "fgsm photo", "illc", "illc photo"}
  fig = r["figure"]
  assert fig["images"]["fgsm"].shape[1:] == (8, 8, 1)
  assert len(fig["pred"]["clean photo"]) == len(fig["y"]) <= 2


def test_report_tables_and_claims(tiny, tmp_path):
  cfg, _, _, r = tiny
  results = {"models": {"standard": {**r, "train_seconds": 1.}}}
  rep = P.make_report(cfg, results)
  md = rep.markdown
  assert "SIMULATION" in md and "| clean | - |" in md
  # Two eps rows, five transform rows plus the mean, four photo rows.
  assert md.count("\n| 0 | 1 |") == 1 and md.count("\n| 4 | 5 |") == 1
  assert md.count("| **mean** |") == 1
  for name, _, _ in r["transforms"]:
    assert md.count(f"\n| {name} |") == 1
  assert md.count("\n| random | ") == 2 and md.count("\n| prefiltered | ") == 2
  # The published number is at eps 16 only (this config: 4).
  assert "not shown: this run's eps is 4" in md
  assert [c.text for c in rep.claims] == [
      P.FINDINGS[k] for k in ("illc_best", "fast_transforms", "effective",
                              "fast_photo", "random_sometimes_lower",
                              "random_iterative")]
  assert set(rep.figures) == {"accuracy.png", "destruction.png", "photo.png"}
  for name, draw in rep.figures.items():
    draw(str(tmp_path / name))
    assert os.path.getsize(tmp_path / name) > 0


def test_claims_leave_out_rates_on_too_few_images():
  cfg = P.resolve(P.PhysicalConfig())
  grid = P.transform_grid(cfg)
  rate = {"fgsm": 0.1, "bim": 0.3, "illc": 0.}  # ILLC: 3 images, left out

  def entry(m, s):
    strong = lambda kind: 2 if kind in ("blur", "noise", "jpeg") else 1
    return {"n": 50, "fooled": 3 if m == "illc" else 50,
            "destruction": {n: rate[m] * strong(k) for n, k, _ in grid},
            "photo": {"destruction": [rate[m] + (0.1 if s == "prefiltered"
                                                 else 0.)]}}

  r = {"sweep": {"fgsm": {"top1": [0.5]}, "bim": {"top1": [0.3]},
                 "illc": {"top1": [0.4]}},
       "transforms": [list(t) for t in grid],
       "sets": {s: {m: entry(m, s) for m in P.METHODS} for s in P.SETS}}
  got = {c.text: c for c in P.claims(cfg, r)}
  assert not got[P.FINDINGS["illc_best"]].holds  # BIM's accuracy is lower
  for k in ("fast_transforms", "effective", "fast_photo", "random_iterative",
            "random_sometimes_lower"):
    assert got[P.FINDINGS[k]].holds, k
  assert "illc 0.0 %*" in got[P.FINDINGS["fast_photo"]].evidence
  assert not got[P.FINDINGS["fast_photo_published"]].holds  # 20 % > 5 %


# --------------------------------------------------------------------------
# Settings and the runner.
# --------------------------------------------------------------------------
def test_presets_follow_the_paper_and_reuse_the_standard_recipe():
  digits = P.resolve(P.PhysicalConfig())
  for k in ("model", "epochs", "batch_size", "optimizer", "learning_rate",
            "weight_decay", "schedule"):
    assert getattr(digits, k) == training.recipes.MADRY["digits"][k], k
  assert digits.eps == (2., 4., 8., 16., 32., 64., 128.)
  assert digits.destruction_eps == 16. and digits.prefilter_confidence == 0.8
  assert digits.workdir == os.path.join("runs", "physical-digits")
  assert min(digits.jpeg) == 10. and max(digits.jpeg) == 90.
  assert (min(digits.brightness), max(digits.brightness)) == (-30., 30.)
  for name in ("mnist", "cifar10"):
    cfg = P.resolve(P.PhysicalConfig(dataset=name))
    assert cfg.model == training.recipes.MADRY[name]["model"]
  assert P.resolve(P.PhysicalConfig(jpeg=(20.,))).jpeg == (20.,)  # flag wins
  args = vars(run.make_parser(P.BENCHMARK).parse_args(
      ["--eps", "2,16", "--methods", "fgsm,illc", "--destruction-eps", "8",
       "--photo-jpeg", "0"]))
  assert args["eps"] == (2., 16.) and args["methods"] == ("fgsm", "illc")
  assert args["destruction_eps"] == 8. and args["photo_jpeg"] == 0.


@pytest.mark.parametrize("field, value, match", [
    ("eps", (2., -1.), "eps must be finite and >= 0"),
    ("eps", (), "at least one eps"),
    ("destruction_eps", 0., "destruction_eps"),
    ("destruction_eps", -16., "destruction_eps"),
    ("prefilter_confidence", 0., "prefilter_confidence"),
    ("prefilter_confidence", 1., "prefilter_confidence"),
    ("prefilter_confidence", 1.5, "prefilter_confidence"),
    ("methods", ("fgsm", "cw"), "methods"), ("methods", (), "methods"),
    ("methods", ("bim", "bim"), "methods"),
    ("contrast", (0.,), "contrast"), ("blur", (-1.,), "blur"),
    ("noise", (-5.,), "noise"), ("jpeg", (0.,), "jpeg"),
    ("photo_warp", 0.3, "photo_warp"), ("photo_noise", -1., "photo_noise"),
    ("photo_contrast", 1., "photo_contrast"),
    ("photo_jpeg", 101., "photo_jpeg"),
    ("random_examples", -1, "random_examples"),
    ("dataset", "imagenet", "No physical preset")])
def test_bad_settings_raise(field, value, match):
  with pytest.raises(ValueError, match=match):
    P.resolve(P.PhysicalConfig(**{field: value}))


def test_no_transform_at_all_raises():
  with pytest.raises(ValueError, match="at least one of"):
    P.resolve(P.PhysicalConfig(brightness=(), contrast=(), blur=(),
                               noise=(), jpeg=()))


def test_missing_dataset_says_what_to_do(tmp_path):
  with pytest.raises(data.DatasetNotFoundError):
    run.run(P.BENCHMARK, P.PhysicalConfig(
        dataset="mnist", data_dir=str(tmp_path / "x"), workdir=str(tmp_path),
        progress=False))


@pytest.mark.slow  # end-to-end; CI runs it (README)
def test_run_writes_the_report_and_a_rerun_reloads(tmp_path):
  cfg = P.PhysicalConfig(dataset="synthetic", train_limit=128, eval_limit=32,
                         eps=(4., 16.), figure_examples=2,
                         workdir=str(tmp_path), progress=False)
  res = run.run(P.BENCHMARK, cfg)
  for name in ("results.json", "results.md", "accuracy.png",
               "destruction.png", "photo.png"):
    assert os.path.getsize(tmp_path / name) > 0, name
  saved = json.load(open(tmp_path / "results.json"))
  r = saved["models"]["standard"]
  assert r["method"] == "standard" and r["resumed_from"] is None
  assert r["sweep"]["eps"] == [4., 16.]
  for m in P.METHODS:
    assert all(0 <= a <= b <= 1 for a, b in zip(r["sweep"][m]["top1"],
                                                r["sweep"][m]["top5"]))
    assert r["sets"]["random"][m]["n"] == 32
    assert len(r["sets"]["random"][m]["destruction"]) == 5
  assert len(saved["claims"]) == len(P.FINDINGS)
  md = (tmp_path / "results.md").read_text()
  assert "## Claims checked" in md and "SIMULATION" in md
  again = run.run(P.BENCHMARK, cfg)  # the trained model is loaded
  r2 = again["models"]["standard"]
  assert r2["resumed_from"] == 8  # 2 epochs of 128 // 32 steps
  assert r2["sweep"] == r["sweep"]  # the saved evaluation, reused
  assert jax.tree.map(str, r2["sets"]) == jax.tree.map(str, r["sets"])
