"""PyTorch checkpoints -> Flax variables, without executing pickled code.

`read_state_dict` reads a file into `{name: numpy array}`: safetensors files
with a small reader of their own (no torch needed), `.pt`/`.pth` files with
`torch.load(..., weights_only=True)`, which unpickles tensors and plain
containers only. It unwraps the usual containers (`state_dict`,
`model_state_dict`, `model`, `net`, ...) and recognises the files that are
not checkpoints at all: an HTML page saved under a `.pt` name (what a failed
Google Drive download leaves, RobustBench's most frequent complaint), a
truncated download, a pickled whole model.

`convert_state_dict` maps the arrays onto a Flax twin from
`advjax.zoo.architectures`, whose variables sit at the PyTorch names: a
convolution's `weight` `[O, I, kh, kw]` becomes `kernel` `[kh, kw, I, O]`, a
linear layer's `[out, in]` becomes `[in, out]`, a batch norm's `weight`,
`bias`, `running_mean`, `running_var` become `scale`, `bias` and
`batch_stats` `mean`, `var`. Every key must be accounted for: the first
missing, unexpected or mis-shaped one is named in the error.
"""

import json
import os
import pickle
import zipfile
from collections.abc import Mapping, Sequence
from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["CheckpointError", "read_state_dict", "convert_state_dict",
           "normalization_from_state_dict", "torch_name", "to_state_dict",
           "write_safetensors"]


class CheckpointError(ValueError):
  """A file is not a usable checkpoint, or does not fit the architecture."""


# Wrappers around the model's own keys: DataParallel (`module.`), RobustBench
# and timm wrappers (`model.`), torchvision's normalisation Sequential.
_PREFIXES = ("module.", "model.", "net.", "base_model.")
# Containers a checkpoint dict may nest the state dict in.
_CONTAINERS = ("state_dict", "model_state_dict", "model", "net",
               "state_dict_ema", "model_ema", "last")
# Input-normalisation buffers PyTorch wrappers register (mean, std).
_NORMALIZERS = (("mu", "sigma"), ("mean", "std"),
                ("normalize.mean", "normalize.std"),
                ("normalizer.mean", "normalizer.std"))
_SKIP_SUFFIXES = (".num_batches_tracked",)
# The final layers, whose first dimension is the number of classes.
_CLASSIFIERS = ("fc", "linear", "logits", "classifier.6")

_SAFETENSORS_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8,
    "U8": np.uint8, "BOOL": np.bool_,
}


def _head(path: str, n: int = 512) -> bytes:
  with open(path, "rb") as f:
    return f.read(n)


def _looks_like_html(head: bytes) -> bool:
  h = head.lstrip().lower()
  return h.startswith((b"<!doctype", b"<html", b"<head", b"<?xml")) or (
      b"<html" in h[:256])


def _is_safetensors(head: bytes) -> bool:
  if len(head) < 10:
    return False
  n = int.from_bytes(head[:8], "little")
  return 2 <= n < 100_000_000 and head[8:9] == b"{"


def _read_safetensors(path: str) -> dict[str, np.ndarray]:
  """The tensors of a safetensors file (8-byte header length, JSON header,
  raw little-endian data), read with numpy."""
  size = os.path.getsize(path)
  with open(path, "rb") as f:
    n = int.from_bytes(f.read(8), "little")
    if 8 + n > size:
      raise CheckpointError(
          f"{path} is truncated: its safetensors header claims {n} bytes but "
          f"the file has {size}. Download it again.")
    try:
      header = json.loads(f.read(n))
    except ValueError as e:
      raise CheckpointError(f"{path} has a corrupt safetensors header ({e}). "
                            "Download it again.") from e
    data = f.read()
  out = {}
  for name, info in header.items():
    if name == "__metadata__":
      continue
    lo, hi = info["data_offsets"]
    if hi > len(data):
      raise CheckpointError(
          f"{path} is truncated: tensor {name!r} ends at byte {hi} of a "
          f"{len(data)}-byte data section. Download it again.")
    dtype = info["dtype"]
    if dtype == "BF16":
      raw = np.frombuffer(data[lo:hi], np.uint16).astype(np.uint32) << 16
      array = raw.view(np.float32)
    elif dtype in _SAFETENSORS_DTYPES:
      array = np.frombuffer(data[lo:hi], _SAFETENSORS_DTYPES[dtype])
    else:
      raise CheckpointError(f"{path}: tensor {name!r} has dtype {dtype}, "
                            "which advjax does not read.")
    out[name] = array.reshape(info["shape"]).copy()
  return out


def _torch_load(path: str) -> Any:
  try:
    import torch  # pylint: disable=import-outside-toplevel
  except ImportError as e:
    raise ImportError(
        f"Reading the PyTorch checkpoint {path} needs torch (pip install "
        "torch; on CPU: pip install torch --index-url "
        "https://download.pytorch.org/whl/cpu), or convert it to "
        "safetensors, which advjax reads without torch.") from e
  try:
    return torch.load(path, map_location="cpu", weights_only=True)
  except pickle.UnpicklingError as e:
    raise CheckpointError(
        f"{path} holds pickled Python objects besides tensors (a whole "
        "pickled model or optimiser?), and advjax never executes pickled "
        "code. In PyTorch, save `model.state_dict()` instead (or convert the "
        f"file to safetensors). torch said: {str(e).splitlines()[0]}") from e
  except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as e:
    raise CheckpointError(
        f"{path} is not a readable PyTorch checkpoint: it is truncated or "
        "corrupt (an interrupted download?). Download it again; its size is "
        f"{os.path.getsize(path)} bytes. torch said: "
        f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from e


def _to_numpy(value: Any) -> Optional[np.ndarray]:
  if isinstance(value, np.ndarray):
    return value
  if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch tensor
    t = value.detach().cpu()
    if str(t.dtype) in ("torch.bfloat16", "torch.float16"):
      t = t.float()
    return t.numpy()
  return None


def _unwrap(obj: Any, path: str) -> dict[str, np.ndarray]:
  """The flat `{name: array}` inside a loaded checkpoint object."""
  for _ in range(4):
    if not isinstance(obj, Mapping):
      break
    arrays = {k: _to_numpy(v) for k, v in obj.items()}
    if arrays and all(isinstance(k, str) for k in arrays) and all(
        a is not None for a in arrays.values()):
      return arrays
    inner = next((obj[k] for k in _CONTAINERS
                  if k in obj and isinstance(obj[k], Mapping)), None)
    if inner is None:
      break
    obj = inner
  kind = (f"a dict with keys {sorted(map(str, obj))[:8]}"
          if isinstance(obj, Mapping) else type(obj).__name__)
  raise CheckpointError(
      f"{path} does not hold a state dict (a mapping of names to tensors); "
      f"it holds {kind}. Save `model.state_dict()`, or pass the inner "
      f"mapping's key (advjax looks inside {', '.join(_CONTAINERS)}).")


def read_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
  """Reads a PyTorch or safetensors checkpoint into numpy arrays.

  Args:
    path: a `.pt`/`.pth`/`.bin` file written by `torch.save` (zip or legacy
      format), or a `.safetensors` file.

  Returns:
    `{name: array}`, float tensors as float32 or float64 numpy arrays
    (bfloat16 and float16 widened to float32), with wrapper prefixes
    (`module.`, `model.`) left in place (`convert_state_dict` strips them).

  Raises:
    FileNotFoundError: no such file.
    CheckpointError: an HTML page, an empty, truncated or corrupt file,
      pickled objects other than tensors, or no state dict inside.
    ImportError: a PyTorch file and no torch installed.
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(
        f"No checkpoint file at {path}. Download the model's weights (for "
        "RobustBench entries: the file its model zoo links) and pass its "
        "path.")
  if os.path.getsize(path) == 0:
    raise CheckpointError(f"{path} is empty (0 bytes): the download failed. "
                          "Download it again.")
  head = _head(path)
  if _looks_like_html(head):
    raise CheckpointError(
        f"{path} is an HTML page, not a checkpoint: the download saved a web "
        "page (typically Google Drive's virus-scan or quota page) under the "
        "file's name. Download the file itself again (for Google Drive, "
        "`gdown --fuzzy <link>` or the browser's 'Download anyway').")
  if _is_safetensors(head):
    return _read_safetensors(path)
  return _unwrap(_torch_load(path), path)


def _strip_prefixes(keys: Sequence[str], expected: set[str]) -> dict[str,
                                                                      str]:
  """`{key as in the file: model key}`, wrapper prefixes removed where that
  makes keys match the model."""
  out = {}
  for key in keys:
    k = key
    while k not in expected and k.startswith(_PREFIXES):
      k = k.split(".", 1)[1]
    out[key] = k
  return out


def torch_name(path: Sequence[str]) -> str:
  """The PyTorch `state_dict` key of a Flax variable path, e.g.
  `('params', 'layer1', '0', 'conv1', 'kernel') -> 'layer1.0.conv1.weight'`.
  """
  collection, *module, leaf = path
  if collection == "batch_stats":
    leaf = {"mean": "running_mean", "var": "running_var"}[leaf]
  else:
    leaf = {"kernel": "weight", "scale": "weight", "bias": "bias"}[leaf]
  return ".".join(list(module) + [leaf])


def to_state_dict(variables: Mapping[str, Any]) -> dict[str, np.ndarray]:
  """The inverse of `convert_state_dict`: a zoo model's variables as a
  PyTorch-named, PyTorch-laid-out `{name: array}` (e.g. to export a model
  fine-tuned in advjax with `write_safetensors`, loadable by
  `load_state_dict` after `safetensors.torch.load_file`)."""
  out = {}
  for keypath, leaf in jax.tree_util.tree_flatten_with_path(
      dict(variables))[0]:
    path = tuple(str(getattr(k, "key", k)) for k in keypath)
    a = np.asarray(leaf, np.float32)
    if a.ndim == 4:
      a = a.transpose(3, 2, 0, 1)
    elif a.ndim == 2:
      a = a.T
    out[torch_name(path)] = np.ascontiguousarray(a)
  return out


def write_safetensors(path: str | os.PathLike,
                      arrays: Mapping[str, np.ndarray]) -> None:
  """Writes float32 arrays as a safetensors file (written to a temporary
  name and renamed, so an interrupted write leaves no partial file)."""
  header, chunks, offset = {}, [], 0
  for name, a in arrays.items():
    raw = np.ascontiguousarray(a, "<f4").tobytes()
    header[name] = {"dtype": "F32", "shape": list(np.shape(a)),
                    "data_offsets": [offset, offset + len(raw)]}
    chunks.append(raw)
    offset += len(raw)
  head = json.dumps(header).encode()
  head += b" " * (-len(head) % 8)  # the format aligns the data to 8 bytes
  path = os.fspath(path)
  with open(path + ".tmp", "wb") as f:
    f.write(len(head).to_bytes(8, "little") + head)
    for chunk in chunks:
      f.write(chunk)
  os.replace(path + ".tmp", path)


def _to_flax(array: np.ndarray, flax_shape: tuple[int, ...]) -> np.ndarray:
  if array.ndim == 4:  # conv OIHW -> HWIO
    return array.transpose(2, 3, 1, 0)
  if array.ndim == 2 and len(flax_shape) == 2:  # linear [out, in] -> [in, out]
    return array.T
  return array


def _torch_shape(flax_shape: tuple[int, ...]) -> tuple[int, ...]:
  if len(flax_shape) == 4:
    h, w, i, o = flax_shape
    return (o, i, h, w)
  if len(flax_shape) == 2:
    return flax_shape[::-1]
  return flax_shape


def normalization_from_state_dict(
    state_dict: Mapping[str, np.ndarray]
) -> Optional[tuple[tuple[float, ...], tuple[float, ...]]]:
  """`(mean, std)` from input-normalisation buffers in a state dict
  (RobustBench's `mu`/`sigma`, `normalize.mean`/`std`, ...), or None."""
  keys = {k: k for k in state_dict}
  keys.update(_strip_prefixes(list(state_dict), set()))
  stripped = {v: state_dict[k] for k, v in keys.items()}
  for m, s in _NORMALIZERS:
    if m in stripped and s in stripped:
      return (tuple(float(v) for v in np.ravel(stripped[m])),
              tuple(float(v) for v in np.ravel(stripped[s])))
  return None


def _first(names, n=3) -> str:
  names = list(names)
  more = f" and {len(names) - n} more" if len(names) > n else ""
  return ", ".join(repr(k) for k in names[:n]) + more


def convert_state_dict(
    state_dict: Mapping[str, np.ndarray],
    model: nn.Module,
    input_shape: Sequence[int],
    *,
    ignore: Sequence[str] = (),
    arch: Optional[str] = None,
) -> dict[str, Any]:
  """Maps a PyTorch state dict onto a Flax twin's variables.

  Args:
    state_dict: `{name: array}` from `read_state_dict` (or any mapping of
      names to arrays or torch tensors).
    model: a module from `advjax.zoo.architectures`, constructed with the
      checkpoint's hyperparameters.
    input_shape: `(H, W, C)` of one input, used to trace the model's shapes
      (nothing is computed).
    ignore: key prefixes in the file that the model does not use and that
      are dropped (e.g. `'sub_block1.'`).
    arch: the architecture's name, for messages.

  Returns:
    `{'params': ..., 'batch_stats': ...}` as float32 jax arrays, for
    `model.apply(variables, x, train=False)`.

  Raises:
    CheckpointError: naming the first key the model needs that the file
      lacks, the first key the file has that the model does not, or the
      first key whose shape differs, with both shapes.
  """
  arch = arch or type(model).__name__
  abstract = jax.eval_shape(model.init, jax.random.key(0),
                            jnp.zeros((1,) + tuple(input_shape), jnp.float32))
  leaves = jax.tree_util.tree_flatten_with_path(abstract)[0]
  expected = {}
  for keypath, leaf in leaves:
    path = tuple(str(getattr(k, "key", k)) for k in keypath)
    expected[torch_name(path)] = (path, tuple(leaf.shape))

  normalizers = {k for pair in _NORMALIZERS for k in pair}
  renamed = _strip_prefixes(list(state_dict), set(expected))
  found = {}
  for key, name in renamed.items():
    if name.endswith(_SKIP_SUFFIXES) or name in normalizers or any(
        name.startswith(p) for p in ignore):
      continue
    found[name] = key
  missing = [k for k in expected if k not in found]
  unexpected = [k for k in found if k not in expected]
  if missing or unexpected:
    parts = []
    if missing:
      one = len(missing) == 1
      parts.append(f"{len(missing)} weight{'' if one else 's'} {arch} needs "
                   f"{'is' if one else 'are'} missing from the file: "
                   f"{_first(missing)}")
    if unexpected:
      one = len(unexpected) == 1
      parts.append(f"{len(unexpected)} key{'' if one else 's'} in the file "
                   f"{'is' if one else 'are'} not in {arch}: "
                   f"{_first(unexpected)}")
    hint = ("Check the architecture and its keywords (depth, widen_factor/"
            "width, num_classes, bn_before_fc, sub_block1, ...) against the "
            "code that trained the model.")
    if not set(found) & set(expected):
      hint = ("None of the file's keys is one of " + arch + "'s: it was "
              "saved from another architecture. " + hint)
    if any(k.startswith("sub_block1.") for k in unexpected):
      hint = "The file has `sub_block1` weights: pass sub_block1=True."
    raise CheckpointError("The checkpoint does not fit " + arch + ": " +
                          "; ".join(parts) + ". " + hint)

  flat = {}
  for name, (path, shape) in expected.items():
    array = _to_numpy(state_dict[found[name]])
    if array is None:
      raise CheckpointError(f"{name!r} in the checkpoint is a "
                            f"{type(state_dict[found[name]]).__name__}, not "
                            "a tensor.")
    want = _torch_shape(shape)
    if tuple(array.shape) != want:
      hint = ""
      if name.rsplit(".", 1)[0] in _CLASSIFIERS and want[0] != array.shape[0]:
        hint = f" Pass num_classes={array.shape[0]}."
      raise CheckpointError(
          f"{name!r} has shape {tuple(array.shape)} in the checkpoint, but "
          f"{arch} as configured expects {want}.{hint} Check the "
          "architecture's keywords against the code that trained the model.")
    if not np.all(np.isfinite(array)):
      raise CheckpointError(f"{name!r} in the checkpoint holds NaN or "
                            "infinite values: the file is corrupt.")
    flat[path] = jnp.asarray(_to_flax(array, shape), jnp.float32)

  variables: dict[str, Any] = {}
  for path, value in flat.items():
    node = variables
    for part in path[:-1]:
      node = node.setdefault(part, {})
    node[path[-1]] = value
  return variables
