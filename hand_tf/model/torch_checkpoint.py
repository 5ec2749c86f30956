"""Reading PyTorch's legacy `.pth` checkpoints with pickle and NumPy, without torch.

The legacy format (torch < 1.6, not a zip) is five things back to back in one file:
three small pickles (a magic number, the protocol version, sizes of C types), the
pickled state dict (its tensors point at storages through persistent ids), the
pickled list of storage keys, and then each storage's raw little-endian bytes,
each prefixed by its element count as an int64.

Unpickling normally runs whatever globals the file names.  `read_legacy_checkpoint`
uses an allow-list: `collections.OrderedDict`, torch's tensor-rebuild function and
its typed storage classes (all replaced by inert stand-ins here); any other global
(`os.system`, `builtins.eval`, ...) is refused before it can be called.
"""

import collections
import io
import os
import pickle
import struct
from typing import Dict

import numpy as np

from hand_tf.io import InputError

_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
_PROTOCOL_VERSION = 1001

# torch's typed storages and the dtypes of their bytes.
_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class CheckpointError(InputError):
  """A checkpoint file is missing, unsafe or not in the legacy torch format."""


class _StorageType:
  """Stands in for `torch.FloatStorage` and friends: carries the dtype only."""

  def __init__(self, dtype):
    self.dtype = np.dtype(dtype)


class _TensorRef:
  """What `torch._utils._rebuild_tensor_v2` would build, kept as a recipe."""

  def __init__(self, storage, offset, size, stride, *unused):
    self.storage, self.offset = storage, int(offset)
    self.size, self.stride = tuple(size), tuple(stride)


def _rebuild_tensor(storage, offset, size, stride, *unused):
  return _TensorRef(storage, offset, size, stride)


class _RestrictedUnpickler(pickle.Unpickler):

  def __init__(self, file, path):
    super().__init__(file)
    self._path = path

  def find_class(self, module, name):
    if (module, name) == ("collections", "OrderedDict"):
      return collections.OrderedDict
    if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
      return _rebuild_tensor
    if module == "torch" and name in _STORAGE_DTYPES:
      return _StorageType(_STORAGE_DTYPES[name])
    raise CheckpointError(f"{self._path}: refuses to load global {module}.{name} "
                          "(only tensors and storages are allowed in a weights file)")

  def persistent_load(self, pid):
    # ('storage', storage type, key, location, element count, view metadata)
    if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"
            and isinstance(pid[1], _StorageType)):
      raise CheckpointError(f"{self._path}: unexpected persistent id {pid!r}")
    return pid[1], str(pid[2]), int(pid[4])


def _load(file, path):
  try:
    return _RestrictedUnpickler(file, path).load()
  except CheckpointError:
    raise
  except Exception as e:  # noqa: BLE001 -- any parse failure means "not this format"
    raise CheckpointError(f"{path}: not a legacy PyTorch checkpoint ({e})") from None


def read_legacy_checkpoint(path: str) -> Dict[str, np.ndarray]:
  """Returns the tensors of a legacy `.pth` state dict as NumPy arrays, by name.

  Args:
    path: the `.pth` file (torch.save with `_use_new_zipfile_serialization=False`, the
      only format before torch 1.6).

  Returns:
    An ordered dict name -> array (copies; strides honoured, so channels-last tensors
    come out in their logical [out, in, h, w] order).

  Raises:
    CheckpointError: the file is missing, names a global outside the allow-list, or
      is not in this format (a zip checkpoint, a truncated file).
  """
  if not os.path.isfile(path):
    raise CheckpointError(f"{path}: checkpoint file not found")
  with open(path, "rb") as f:
    data = f.read()
  if data[:2] == b"PK":
    raise CheckpointError(f"{path}: a zip (torch >= 1.6) checkpoint; only the legacy "
                          "format is supported")
  file = io.BytesIO(data)
  if _load(file, path) != _MAGIC_NUMBER:
    raise CheckpointError(f"{path}: wrong magic number, not a legacy PyTorch checkpoint")
  if _load(file, path) != _PROTOCOL_VERSION:
    raise CheckpointError(f"{path}: unsupported protocol version")
  sys_info = _load(file, path)
  if not (isinstance(sys_info, dict) and sys_info.get("little_endian", True)):
    raise CheckpointError(f"{path}: big-endian checkpoints are not supported")
  state = _load(file, path)
  keys = _load(file, path)
  if not isinstance(state, dict) or not isinstance(keys, list):
    raise CheckpointError(f"{path}: expected a state dict of tensors")

  storage_types = {}
  for value in state.values():
    if isinstance(value, _TensorRef):
      storage_types[value.storage[1]] = value.storage[0].dtype
  storages = {}
  for key in keys:
    header = file.read(8)
    if len(header) < 8 or key not in storage_types:
      raise CheckpointError(f"{path}: truncated or inconsistent storage table")
    (count,) = struct.unpack("<q", header)
    dtype = storage_types[key]
    raw = file.read(count * dtype.itemsize)
    if len(raw) != count * dtype.itemsize:
      raise CheckpointError(f"{path}: storage {key} is truncated")
    storages[key] = np.frombuffer(raw, dtype.newbyteorder("<"))

  arrays = collections.OrderedDict()
  for name, value in state.items():
    if not isinstance(value, _TensorRef):
      raise CheckpointError(f"{path}: entry {name!r} is not a tensor")
    flat = storages[value.storage[1]]
    extent = value.offset + sum((n - 1) * s for n, s in zip(value.size, value.stride)) + 1
    if value.size and min(value.size) > 0 and extent > flat.size:
      raise CheckpointError(f"{path}: tensor {name!r} reaches past its storage")
    item = flat.itemsize
    view = np.lib.stride_tricks.as_strided(
        flat[value.offset:], shape=value.size, strides=[s * item for s in value.stride],
        writeable=False)
    arrays[name] = np.array(view)
  return arrays
