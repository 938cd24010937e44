"""advjax.zoo: PyTorch checkpoints load into Flax twins that compute the same.

Each architecture is built in PyTorch with random weights (RobustBench's own
architecture files from the `robustbench` wheel, imported without its
package `__init__`; torchvision layouts from `tests/torchvision_twins.py`),
its batch-norm statistics randomised so that a swapped mean/var or scale/bias
would show, saved, loaded with `zoo.load_torch`, and compared in eval mode:
logits and the input gradient of a random linear function of them.
Without torch (or without the wheel, for the RobustBench files) these tests
skip; the file-format and error tests that need no torch always run.
"""
import importlib.util
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from advjax import zoo
from advjax.zoo import architectures

# Logits and input gradients agree to this, relative to their largest entry
# (float32 in both; the nets are 10-50 layers deep).
RTOL = 1e-4


def _torch():
  return pytest.importorskip("torch")


def _rb(name):
  """A RobustBench architecture file, imported on its own (the package's
  `__init__` pulls in torchvision, timm and more)."""
  _torch()
  spec = importlib.util.find_spec("robustbench")
  if spec is None:
    pytest.skip("robustbench wheel not installed (pip install --no-deps "
                "robustbench)")
  path = os.path.join(spec.submodule_search_locations[0], "model_zoo",
                      "architectures", f"{name}.py")
  module_spec = importlib.util.spec_from_file_location(f"_rb_{name}", path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module


def _twins():
  _torch()
  sys.path.insert(0, os.path.dirname(__file__))
  import torchvision_twins  # pylint: disable=import-outside-toplevel
  return torchvision_twins


def _randomise(make, seed=0):
  torch = _torch()
  torch.manual_seed(seed)
  net = make()
  g = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for m in net.modules():
      if isinstance(m, torch.nn.BatchNorm2d):
        n = m.num_features
        m.weight.copy_(0.5 + torch.rand(n, generator=g))
        m.bias.copy_(0.1 * torch.randn(n, generator=g))
        m.running_mean.copy_(0.1 * torch.randn(n, generator=g))
        m.running_var.copy_(0.5 + torch.rand(n, generator=g))
      elif isinstance(m, torch.nn.Linear) and m.bias is not None:
        m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
  return net.eval()


def _agree(a, b, what):
  a, b = np.asarray(a), np.asarray(b)
  scale = max(1.0, float(np.abs(b).max()))
  err = float(np.abs(a - b).max())
  assert err <= RTOL * scale, f"{what}: max |diff| {err:.3g}, scale {scale:.3g}"
  return err / scale


def _compare(net, model, variables, size, batch=3, seed=0):
  """Logits and input gradients of the Flax twin (float32) and the torch net
  in float64 (the exact function: PyTorch's own float32 input gradient is
  off by up to 3% of its largest entry on some of these random nets, where
  the gradient cancels, while the twin's matches float64 to 1e-6)."""
  torch = _torch()
  rng = np.random.default_rng(seed)
  x = rng.uniform(0, 1, (batch, size, size, 3)).astype(np.float32)
  net = net.double()
  xt = torch.from_numpy(x.transpose(0, 3, 1, 2)).double().requires_grad_(True)
  logits_t = net(xt)
  c = rng.normal(size=tuple(logits_t.shape)).astype(np.float32)
  (logits_t * torch.from_numpy(c).double()).sum().backward()
  grad_t = xt.grad.numpy().transpose(0, 2, 3, 1)

  # Variables as arguments, not constants baked into the program (VGG's
  # are 0.5 GB).
  apply = jax.jit(lambda v, x: model.apply(v, x, train=False))
  logits = apply(variables, x)
  grad = jax.jit(jax.grad(lambda x, v: jnp.sum(apply(v, x) * c)))(x,
                                                                   variables)
  assert logits.shape == tuple(logits_t.shape) and logits.dtype == jnp.float32
  errors = (_agree(logits, logits_t.detach().numpy(), "logits"),
            _agree(grad, grad_t, "input gradient"))
  # A real test: the classes are not all tied.
  assert float(jnp.std(logits)) > 1e-3
  return errors


def _normalised(net, mean, std):
  """`net` behind an input normalisation, as RobustBench's `normalize_model`
  wraps torchvision models."""
  torch = _torch()

  class Normalised(torch.nn.Module):

    def __init__(self):
      super().__init__()
      self.net = net
      self.mean = torch.tensor(mean).view(1, 3, 1, 1)
      self.std = torch.tensor(std).view(1, 3, 1, 1)

    def forward(self, x):
      return self.net((x - self.mean.to(x.dtype)) / self.std.to(x.dtype))

  return Normalised().eval()


def _save(net, tmp_path, name="model.pt", wrap=None):
  torch = _torch()
  state = net.state_dict()
  if wrap:
    state = {wrap: {f"module.{k}": v for k, v in state.items()}}
  path = tmp_path / name
  torch.save(state, path)
  return path


# (id, torch constructor, load_torch arch and keywords, input size)
def _rb_cases():
  return [
      ("PreActResNet18", lambda: _rb("resnet").PreActResNet18(),
       "PreActResNet18", {}, 32),
      ("PreActResNet18-bn-outshortcut",
       lambda: _rb("resnet").PreActResNet(
           _rb("resnet").PreActBlock, [2, 2, 2, 2], num_classes=7,
           bn_before_fc=True, out_shortcut=True),
       "PreActResNet18", dict(num_classes=7, bn_before_fc=True,
                              out_shortcut=True), 32),
      ("ResNet18-cifar", lambda: _rb("resnet").ResNet18(), "ResNet18", {}, 32),
      ("ResNet50-cifar", lambda: _rb("resnet").ResNet50(), "ResNet50", {}, 32),
      ("WideResNet-16-2-subblock",
       lambda: _rb("wide_resnet").WideResNet(depth=16, widen_factor=2,
                                             sub_block1=True),
       "WideResNet", dict(depth=16, widen_factor=2, sub_block1=True), 32),
      ("WideResNet-10-1-nobias",
       lambda: _rb("wide_resnet").WideResNet(depth=10, widen_factor=1,
                                             num_classes=100,
                                             bias_last=False),
       "WideResNet", dict(depth=10, widen_factor=1, num_classes=100,
                          bias_last=False), 32),
      ("DMWideResNet-10-2-swish",
       lambda: _rb("dm_wide_resnet").DMWideResNet(
           depth=10, width=2, activation_fn=_rb("dm_wide_resnet").Swish),
       "DMWideResNet", dict(depth=10, width=2, activation_fn="swish"), 32),
      ("DMWideResNet-16-1-relu-pad-cifar100",
       lambda: _rb("dm_wide_resnet").DMWideResNet(
           num_classes=100, depth=16, width=1, padding=2,
           mean=architectures.CIFAR100_MEAN, std=architectures.CIFAR100_STD),
       "DMWideResNet", dict(num_classes=100, depth=16, width=1, padding=2,
                            mean=zoo.CIFAR100_MEAN, std=zoo.CIFAR100_STD), 32),
  ]


def _tv_cases():
  return [
      ("resnet18", lambda: _twins().resnet18(), "resnet18", {}, 64),
      ("resnet50", lambda: _twins().resnet50(num_classes=10), "resnet50",
       dict(num_classes=10), 64),
      ("wide_resnet50_2", lambda: _twins().wide_resnet50_2(num_classes=5),
       "wide_resnet50_2", dict(num_classes=5), 64),
      ("vgg11", lambda: _twins().vgg11(), "vgg11", {}, 64),
      ("vgg11_bn", lambda: _twins().vgg11_bn(num_classes=30), "vgg11_bn",
       dict(num_classes=30), 80),
  ]


_FAST = {"WideResNet-10-1-nobias", "DMWideResNet-10-2-swish"}


def _params(cases):
  return [pytest.param(*c[1:], id=c[0],
                       marks=() if c[0] in _FAST else pytest.mark.slow)
          for c in cases]


@pytest.mark.parametrize("make,arch,kwargs,size", _params(_rb_cases()))
def test_robustbench_architectures_match_pytorch(make, arch, kwargs, size,
                                                 tmp_path):
  net = _randomise(make)
  model, variables = zoo.load_torch(arch, _save(net, tmp_path), **kwargs)
  assert max(_compare(net, model, variables, size)) <= RTOL


@pytest.mark.parametrize("make,arch,kwargs,size", _params(_tv_cases()))
def test_torchvision_architectures_match_pytorch(make, arch, kwargs, size):
  net = _randomise(make)
  # In memory: VGG's 133M weights are 0.5 GB on disk. ImageNet's mean and
  # std are built in by default.
  model, variables = zoo.load_torch(arch, net.state_dict(), **kwargs)
  errors = _compare(_normalised(net, zoo.IMAGENET_MEAN, zoo.IMAGENET_STD),
                    model, variables, size, batch=2)
  assert max(errors) <= RTOL


def test_wrapped_checkpoints_and_stored_normalisation(tmp_path):
  """`{'state_dict': {'module.' + k}}` files load, and RobustBench's `mu`/
  `sigma` buffers (Wong2020Fast's layout) become the model's normalisation."""
  torch = _torch()
  net = _randomise(lambda: _rb("wide_resnet").WideResNet(depth=10,
                                                        widen_factor=1))
  state = {f"module.{k}": v for k, v in net.state_dict().items()}
  mu, sigma = zoo.CIFAR10_MEAN, zoo.CIFAR10_STD
  state["module.mu"] = torch.tensor(mu).view(1, 3, 1, 1)
  state["module.sigma"] = torch.tensor(sigma).view(1, 3, 1, 1)
  path = tmp_path / "wrapped.pth"
  torch.save({"state_dict": state, "epoch": 3}, path)

  model, variables = zoo.load_torch("WideResNet", path, depth=10,
                                    widen_factor=1)
  np.testing.assert_allclose(model.mean, mu, rtol=1e-6)
  np.testing.assert_allclose(model.std, sigma, rtol=1e-6)

  assert max(_compare(_normalised(net, mu, sigma), model, variables,
                      32)) <= RTOL
  with pytest.raises(zoo.CheckpointError, match="normalisation mean"):
    zoo.load_torch("WideResNet", path, depth=10, widen_factor=1,
                   mean=(0.5, 0.5, 0.5))


def test_adaptive_avg_pool_matches_pytorch():
  torch = _torch()
  rng = np.random.default_rng(0)
  for h, w in ((5, 9), (10, 7), (13, 2), (7, 7), (1, 1)):
    x = rng.normal(size=(2, h, w, 3)).astype(np.float32)
    want = torch.nn.functional.adaptive_avg_pool2d(
        torch.from_numpy(x.transpose(0, 3, 1, 2)), (7, 7)).numpy()
    got = architectures.adaptive_avg_pool(jnp.asarray(x), (7, 7))
    np.testing.assert_allclose(np.asarray(got), want.transpose(0, 2, 3, 1),
                               atol=1e-6)


# --- errors ----------------------------------------------------------------


def _small_wrn_state():
  torch = _torch()
  return _rb("wide_resnet").WideResNet(depth=10, widen_factor=1).state_dict(
  ), torch


def test_wrong_architecture_names_the_first_missing_key(tmp_path):
  state, _ = _small_wrn_state()
  with pytest.raises(zoo.CheckpointError,
                     match=r"39 weights DMWideResNet needs are missing.*"
                           r"not in DMWideResNet: 'conv1.weight'.*another "
                           r"architecture"):
    zoo.load_torch("DMWideResNet", state, depth=10, width=1)
  with pytest.raises(zoo.CheckpointError, match="depth, widen_factor"):
    zoo.load_torch("WideResNet", state, depth=16, widen_factor=1)


def test_wrong_shapes_name_the_key_and_suggest_num_classes():
  state, _ = _small_wrn_state()
  with pytest.raises(zoo.CheckpointError,
                     match=r"'fc\.(weight|bias)' has shape \(10.*expects "
                           r"\(100.*num_classes=10"):
    zoo.load_torch("WideResNet", state, depth=10, widen_factor=1,
                   num_classes=100)
  with pytest.raises(zoo.CheckpointError,
                     match=r"1 weight WideResNet needs is missing.*"
                           r"'block1.layer.0.convShortcut.weight'"):
    zoo.load_torch("WideResNet", state, depth=10, widen_factor=2)


def test_sub_block1_weights_need_the_flag():
  torch = _torch()
  state = _rb("wide_resnet").WideResNet(depth=10, widen_factor=1,
                                        sub_block1=True).state_dict()
  with pytest.raises(zoo.CheckpointError, match="pass sub_block1=True"):
    zoo.load_torch("WideResNet", state, depth=10, widen_factor=1)
  state["fc.weight"] = torch.full_like(state["fc.weight"], float("nan"))
  with pytest.raises(zoo.CheckpointError, match="NaN"):
    zoo.load_torch("WideResNet", state, depth=10, widen_factor=1,
                   sub_block1=True)


def test_html_page_empty_and_missing_files(tmp_path):
  page = tmp_path / "Wong2020Fast.pt"
  page.write_text("<!DOCTYPE html><html><head><title>Google Drive - Virus "
                  "scan warning</title></head><body>...</body></html>")
  with pytest.raises(zoo.CheckpointError, match="HTML page, not a checkpoint"):
    zoo.load_torch("PreActResNet18", page)
  empty = tmp_path / "empty.pt"
  empty.write_bytes(b"")
  with pytest.raises(zoo.CheckpointError, match="empty"):
    zoo.read_state_dict(empty)
  with pytest.raises(FileNotFoundError, match="No checkpoint file"):
    zoo.read_state_dict(tmp_path / "absent.pt")


def test_truncated_and_pickled_model_files(tmp_path):
  torch = _torch()
  net = _rb("wide_resnet").WideResNet(depth=10, widen_factor=1)
  path = _save(net, tmp_path)
  data = path.read_bytes()
  cut = tmp_path / "cut.pt"
  cut.write_bytes(data[:len(data) // 2])
  with pytest.raises(zoo.CheckpointError, match="truncated or corrupt"):
    zoo.read_state_dict(cut)
  whole = tmp_path / "whole_model.pt"
  torch.save(torch.nn.Sequential(torch.nn.Linear(2, 2)), whole)
  with pytest.raises(zoo.CheckpointError, match="never executes pickled"):
    zoo.read_state_dict(whole)
  odd = tmp_path / "odd.pt"
  torch.save({"epoch": 3, "acc": 0.5}, odd)
  with pytest.raises(zoo.CheckpointError, match="does not hold a state dict"):
    zoo.read_state_dict(odd)


def test_safetensors_without_torch(tmp_path, monkeypatch):
  """A model exported with `to_state_dict` + `write_safetensors` loads back
  with torch made unimportable; a `.pt` file then says torch is needed; a
  truncated safetensors file says so."""
  model = zoo.build("WideResNet", depth=10, widen_factor=1)
  variables = model.init(jax.random.key(1), jnp.zeros((1, 32, 32, 3)))
  st = tmp_path / "w.safetensors"
  zoo.convert.write_safetensors(st, zoo.convert.to_state_dict(variables))

  monkeypatch.setitem(sys.modules, "torch", None)
  m2, v2 = zoo.load_torch("WideResNet", st, depth=10, widen_factor=1)
  x = np.random.default_rng(0).uniform(size=(2, 32, 32, 3)).astype(np.float32)
  np.testing.assert_allclose(m2.apply(v2, x), model.apply(variables, x),
                             atol=1e-6)

  fake_pt = tmp_path / "w.pt"
  fake_pt.write_bytes(b"PK\x03\x04" + b"\0" * 64)
  with pytest.raises(ImportError, match="needs torch"):
    zoo.read_state_dict(fake_pt)
  cut = tmp_path / "cut.safetensors"
  cut.write_bytes(st.read_bytes()[:-100])
  with pytest.raises(zoo.CheckpointError, match="truncated"):
    zoo.read_state_dict(cut)


def test_bad_arch_keywords_and_layouts():
  with pytest.raises(ValueError, match="Did you mean WideResNet"):
    zoo.build("WideResnet")
  with pytest.raises(ValueError, match="takes no keyword width;"):
    zoo.build("WideResNet", width=10)
  with pytest.raises(ValueError, match=r"depth - 4\) % 6"):
    zoo.build("DMWideResNet", depth=27)
  with pytest.raises(ValueError, match="Unknown activation"):
    zoo.build("DMWideResNet", activation_fn="tanhh")
  model = zoo.build("WideResNet", depth=10, widen_factor=1)
  with pytest.raises(ValueError, match="looks like NCHW"):
    model.init(jax.random.key(0), jnp.zeros((1, 3, 32, 32)))


def test_zoo_models_train_mode_updates_batch_stats():
  """The twins also train in advjax: batch statistics update, dropout is
  drawn from the 'dropout' rng."""
  model = zoo.build("WideResNet", depth=10, widen_factor=1, dropRate=0.3)
  v = model.init(jax.random.key(0), jnp.zeros((1, 8, 8, 3)))
  x = jax.random.uniform(jax.random.key(1), (4, 8, 8, 3))
  _, new = model.apply(v, x, train=True, mutable=["batch_stats"],
                       rngs={"dropout": jax.random.key(2)})
  before = jax.tree.leaves(v["batch_stats"])
  after = jax.tree.leaves(new["batch_stats"])
  assert any(float(jnp.abs(a - b).max()) > 0 for a, b in zip(before, after))


def test_parse_kwargs_reads_literals_and_bare_words():
  assert zoo.parse_kwargs("") == {}
  assert zoo.parse_kwargs("depth=70, width=16,activation_fn=swish, "
                          "std=0.5") == dict(depth=70, width=16,
                                             activation_fn="swish", std=0.5)
  assert zoo.parse_kwargs("sub_block1=True,")["sub_block1"] is True
  with pytest.raises(ValueError, match="key=value"):
    zoo.parse_kwargs("depth")


def test_resolve_fills_in_an_entry_and_checks_names():
  assert zoo.resolve("Carmon2019Unlabeled") == (
      "WideResNet", dict(depth=28, widen_factor=10, sub_block1=True))
  arch, kwargs = zoo.resolve("Carmon2019Unlabeled", "depth=34")
  assert arch == "WideResNet" and kwargs["depth"] == 34
  assert kwargs["sub_block1"]  # the entry's own keywords kept
  assert zoo.resolve("DMWideResNet", dict(depth=70, width=16)) == (
      "DMWideResNet", dict(depth=70, width=16))
  with pytest.raises(ValueError, match="takes no keyword"):
    zoo.resolve("WideResNet", "width=3")
  with pytest.raises(ValueError, match="Unknown architecture"):
    zoo.resolve("WideResNett")
