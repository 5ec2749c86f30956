"""Reading and writing MANO model files (`MANO_RIGHT.pkl` and friends) without chumpy.

The official MANO files are Python-2 pickles whose arrays are partly chumpy objects and
whose `J_regressor` is a scipy sparse matrix.  Unpickling normally needs chumpy (which no
longer installs on current Python/NumPy) and, worse, executes whatever the pickle names.
`load_mano_model` uses a restricted unpickler: a fixed allow-list of NumPy/SciPy
reconstructors plus inert stand-ins for chumpy classes; any other global (``os.system``,
``builtins.eval``, ...) is refused before it can be called.

The same content is accepted as an ``.npz`` archive (dense `J_regressor`).
"""

import dataclasses
import io
import os
import pickle
from typing import Dict, Optional

import numpy as np

from hand_tf.io import InputError, atomic_write_bytes
from mano_tf import constants


class ManoModelError(InputError):
  """A MANO model file is missing, unreadable or has the wrong content."""


@dataclasses.dataclass(frozen=True)
class ManoModel:
  """The arrays of a MANO hand model, in meters.

  Attributes:
    v_template: [V, 3] rest-pose vertices.
    shapedirs: [V, 3, 10] shape blend directions (per unit beta).
    posedirs: [V, 3, 135] pose-corrective directions, multiplied by the flattened
      (R_k - I) of joints 1..15, row-major per joint.
    j_regressor: [16, V] dense joint regressor (rows sum to 1).
    weights: [V, 16] linear-blend-skinning weights (rows sum to 1).
    parents: [16] parent joint of each joint, -1 for the root.
    faces: [F, 3] int32 triangle vertex indices, outward (counter-clockwise) winding.
    hands_components: [45, 45] pose PCA basis, one component per row.
    hands_mean: [45] mean articulation (axis-angle of joints 1..15).
    tip_vertex_ids: [5] vertex ids of the fingertips in `constants.TIP_ORDER`.
  """
  v_template: np.ndarray
  shapedirs: np.ndarray
  posedirs: np.ndarray
  j_regressor: np.ndarray
  weights: np.ndarray
  parents: np.ndarray
  faces: np.ndarray
  hands_components: np.ndarray
  hands_mean: np.ndarray
  tip_vertex_ids: np.ndarray

  @property
  def rest_joints(self) -> np.ndarray:
    """[16, 3] joints regressed from the template."""
    return self.j_regressor @ self.v_template


# --------------------------------------------------------------------------------------
# Restricted unpickling.


class _ChumpyStandIn:
  """Inert replacement for a chumpy class: keeps the pickled state, runs no code."""

  chumpy_class = "Ch"

  def __setstate__(self, state):
    self.__dict__["_state"] = state


def _chumpy_class(name):
  return type(name, (_ChumpyStandIn,), {"chumpy_class": name})


def _numpy_core():
  try:
    from numpy._core import multiarray  # NumPy 2
  except ImportError:  # pragma: no cover - NumPy 1
    from numpy.core import multiarray
  return multiarray


def _numpy_numeric():
  try:
    from numpy._core import numeric  # NumPy 2
  except ImportError:  # pragma: no cover - NumPy 1
    from numpy.core import numeric
  return numeric


def _allowed_globals() -> Dict[tuple, object]:
  multiarray = _numpy_core()
  allowed = {
      ("copy_reg", "_reconstructor"): __import__("copyreg")._reconstructor,
      ("copyreg", "_reconstructor"): __import__("copyreg")._reconstructor,
      ("__builtin__", "object"): object,
      ("builtins", "object"): object,
      ("__builtin__", "set"): set,
      ("builtins", "set"): set,
      ("__builtin__", "bytes"): bytes,
      ("builtins", "bytes"): bytes,
      ("numpy", "ndarray"): np.ndarray,
      ("numpy", "dtype"): np.dtype,
      # Python 3 writes bytes in protocol-2 pickles as _codecs.encode(text, 'latin1').
      ("_codecs", "encode"): __import__("codecs").encode,
  }
  for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
    allowed[(module, "_reconstruct")] = multiarray._reconstruct
    allowed[(module, "scalar")] = multiarray.scalar
  for module in ("numpy.core.numeric", "numpy._core.numeric"):  # protocol-5 arrays
    allowed[(module, "_frombuffer")] = _numpy_numeric()._frombuffer
  import scipy.sparse  # here: reading MANO files is not on the deploy path
  for module in ("scipy.sparse.csc", "scipy.sparse._csc", "scipy.sparse"):
    allowed[(module, "csc_matrix")] = scipy.sparse.csc_matrix
  for module in ("scipy.sparse.csr", "scipy.sparse._csr", "scipy.sparse"):
    allowed[(module, "csr_matrix")] = scipy.sparse.csr_matrix
  return allowed


class _RestrictedUnpickler(pickle.Unpickler):
  """Resolves only allow-listed globals; chumpy classes become inert stand-ins."""

  def __init__(self, file, path):
    super().__init__(file, encoding="latin1")
    self._path = path
    self._allowed = _allowed_globals()

  def find_class(self, module, name):
    if (module, name) in self._allowed:
      return self._allowed[(module, name)]
    if module == "chumpy" or module.startswith("chumpy."):
      return _chumpy_class(name)
    raise ManoModelError(
        f"{self._path}: refusing to load global '{module}.{name}' from the pickle; "
        "a MANO model file contains only NumPy/SciPy arrays and chumpy objects.")


def _chumpy_to_numpy(obj, path, key):
  """Evaluates the few chumpy node types that MANO files contain."""
  if not isinstance(obj, _ChumpyStandIn):
    return obj
  state = obj.__dict__.get("_state", {})
  if not isinstance(state, dict):
    raise ManoModelError(f"{path}: key '{key}': unreadable chumpy object.")
  if "x" in state:  # A plain Ch holding an array.
    return np.asarray(_chumpy_to_numpy(state["x"], path, key))
  if obj.chumpy_class == "Select" and "a" in state and "idxs" in state:
    source = np.asarray(_chumpy_to_numpy(state["a"], path, key))
    selected = source.ravel()[np.asarray(state["idxs"]).ravel()]
    shape = state.get("preferred_shape")
    return selected.reshape(shape) if shape is not None else selected
  if obj.chumpy_class == "Reshape" and "a" in state:
    source = np.asarray(_chumpy_to_numpy(state["a"], path, key))
    return source.reshape(state["newshape"])
  raise ManoModelError(
      f"{path}: key '{key}': unsupported chumpy node '{obj.chumpy_class}'.")


# --------------------------------------------------------------------------------------
# Validation.

_REQUIRED_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights",
                  "kintree_table", "f", "hands_components", "hands_mean")

_V, _J = constants.NUM_VERTICES, constants.NUM_JOINTS
_EXPECTED_SHAPES = {
    "v_template": (_V, 3),
    "posedirs": (_V, 3, 9 * (_J - 1)),
    "J_regressor": (_J, _V),
    "weights": (_V, _J),
    "kintree_table": (2, _J),
    "f": (constants.NUM_FACES, 3),
    "hands_components": (45, 45),
    "hands_mean": (45,),
}


def _as_array(value, path, key, kind):
  try:
    array = np.asarray(value.toarray() if hasattr(value, "toarray") else value)  # sparse
  except Exception as e:  # noqa: BLE001 - report any conversion failure with its key.
    raise ManoModelError(f"{path}: key '{key}' cannot be read as an array: {e}") from e
  if kind == "float" and not np.issubdtype(array.dtype, np.floating):
    if not np.issubdtype(array.dtype, np.integer):
      raise ManoModelError(
          f"{path}: key '{key}' has dtype {array.dtype}, expected floating point.")
  if kind == "int" and not np.issubdtype(array.dtype, np.integer):
    raise ManoModelError(f"{path}: key '{key}' has dtype {array.dtype}, expected integers.")
  if kind == "float" and not np.all(np.isfinite(array)):
    raise ManoModelError(f"{path}: key '{key}' contains NaN or infinite values.")
  return array


def _check_shape(array, expected, path, key):
  if array.shape != expected:
    raise ManoModelError(
        f"{path}: key '{key}' has shape {array.shape}, expected {expected}.")


def model_from_dict(data, path="<dict>") -> ManoModel:
  """Validates MANO arrays (as stored in a model file) and builds a `ManoModel`.

  Args:
    data: A mapping with the MANO keys (`v_template`, `shapedirs`, `posedirs`,
      `J_regressor`, `weights`, `kintree_table`, `f`, `hands_components`,
      `hands_mean`; optionally `fingertip_vertex_ids`).
    path: Name used in error messages.

  Returns:
    A `ManoModel` with float64 arrays.

  Raises:
    ManoModelError: naming the file and the key, for a missing key, a wrong shape or
      dtype, out-of-range faces or NaNs.
  """
  if not hasattr(data, "keys"):
    raise ManoModelError(f"{path}: expected a dictionary of arrays, got {type(data).__name__}.")
  for key in _REQUIRED_KEYS:
    if key not in data:
      raise ManoModelError(f"{path}: missing key '{key}'.")
  arrays = {}
  for key in _REQUIRED_KEYS:
    kind = "int" if key in ("kintree_table", "f") else "float"
    arrays[key] = _as_array(_chumpy_to_numpy(data[key], path, key), path, key, kind)
  shapedirs = arrays["shapedirs"]
  if shapedirs.ndim != 3 or shapedirs.shape[:2] != (_V, 3) or shapedirs.shape[2] < 10:
    raise ManoModelError(
        f"{path}: key 'shapedirs' has shape {shapedirs.shape}, expected ({_V}, 3, >=10).")
  for key, expected in _EXPECTED_SHAPES.items():
    _check_shape(arrays[key], expected, path, key)
  faces = arrays["f"].astype(np.int64)
  if faces.min() < 0 or faces.max() >= _V:
    raise ManoModelError(f"{path}: key 'f' has vertex indices outside [0, {_V}).")
  parents = arrays["kintree_table"][0].astype(np.int64)
  parents[parents >= _J] = -1  # MANO stores the root's parent as uint32(-1).
  if parents[0] != -1 or np.any(parents[1:] < 0) or np.any(parents[1:] >= np.arange(1, _J)):
    raise ManoModelError(
        f"{path}: key 'kintree_table' is not a tree with parents before children.")
  if "fingertip_vertex_ids" in data:
    tips = _as_array(data["fingertip_vertex_ids"], path, "fingertip_vertex_ids", "int")
    _check_shape(tips, (5,), path, "fingertip_vertex_ids")
    if tips.min() < 0 or tips.max() >= _V:
      raise ManoModelError(f"{path}: key 'fingertip_vertex_ids' is outside [0, {_V}).")
  else:
    tips = np.asarray(constants.MANO_TIP_VERTEX_IDS)
  return ManoModel(
      v_template=arrays["v_template"].astype(np.float64),
      shapedirs=shapedirs[:, :, :constants.NUM_BETAS].astype(np.float64),
      posedirs=arrays["posedirs"].astype(np.float64),
      j_regressor=arrays["J_regressor"].astype(np.float64),
      weights=arrays["weights"].astype(np.float64),
      parents=parents.astype(np.int32),
      faces=faces.astype(np.int32),
      hands_components=arrays["hands_components"].astype(np.float64),
      hands_mean=arrays["hands_mean"].astype(np.float64),
      tip_vertex_ids=tips.astype(np.int32))


def read_pickle_safely(path, payload: Optional[bytes] = None):
  """Unpickles NumPy/SciPy content (e.g. dataset meta files) with the same allow-list as
  MANO files: no other global is ever resolved, so a crafted file cannot run code.

  Raises:
    ManoModelError: for a missing, corrupt or disallowed file (naming the file).
  """
  path = os.fspath(path)
  if payload is None:
    if not os.path.isfile(path):
      raise ManoModelError(f"{path}: file not found.")
    with open(path, "rb") as f:
      payload = f.read()
  try:
    return _RestrictedUnpickler(io.BytesIO(payload), path).load()
  except ManoModelError:
    raise
  except Exception as e:  # noqa: BLE001 - any unpickling failure means a bad file.
    raise ManoModelError(f"{path}: not a readable pickle ({type(e).__name__}: {e}).") from e


def load_mano_model(path) -> ManoModel:
  """Loads a MANO model from an official `.pkl` (no chumpy needed) or an `.npz`.

  Args:
    path: Path of `MANO_RIGHT.pkl`, `MANO_LEFT.pkl`, a synthetic model written by
      `mano_tf.synthetic`, or an `.npz` with the same keys.

  Returns:
    A validated `ManoModel`.

  Raises:
    ManoModelError: if the file is missing, not a pickle/npz, refers to a global outside
      the allow-list, or its content is invalid; the message names the file and key.
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise ManoModelError(f"{path}: MANO model file not found.")
  with open(path, "rb") as f:
    payload = f.read()
  if payload[:4] == b"PK\x03\x04":  # zip archive, i.e. .npz
    try:
      with np.load(io.BytesIO(payload), allow_pickle=False) as npz:
        data = {key: npz[key] for key in npz.files}
    except Exception as e:  # noqa: BLE001
      raise ManoModelError(f"{path}: not a readable .npz archive: {e}") from e
    return model_from_dict(data, path)
  try:
    data = read_pickle_safely(path, payload)
  except ManoModelError as e:
    raise ManoModelError(str(e).replace("not a readable pickle", "not a readable MANO pickle")) \
        from e
  return model_from_dict(data, path)


def _sparse(array):
  import scipy.sparse
  return scipy.sparse.csc_matrix(array)


def model_to_dict(model: ManoModel) -> Dict[str, object]:
  """Returns the MANO file content of `model` (keys and dtypes as in the official files)."""
  kintree = np.stack([model.parents.astype(np.int64), np.arange(_J)]).astype(np.uint32)
  return {
      "v_template": model.v_template,
      "shapedirs": model.shapedirs,
      "posedirs": model.posedirs,
      "J_regressor": _sparse(model.j_regressor),
      "weights": model.weights,
      "kintree_table": kintree,
      "f": model.faces.astype(np.uint32),
      "hands_components": model.hands_components,
      "hands_mean": model.hands_mean,
      "hands_coeffs": np.zeros((0, 45)),
      "J": model.rest_joints,
      "bs_style": "lbs",
      "bs_type": "lrotmin",
      "fingertip_vertex_ids": model.tip_vertex_ids.astype(np.int64),
  }


def save_mano_model(model: ManoModel, path, fmt: Optional[str] = None):
  """Writes `model` atomically as a MANO pickle (protocol 2, like the official files) or npz.

  Args:
    model: The model to write.
    path: Destination; `.npz` selects the npz format unless `fmt` says otherwise.
    fmt: 'pkl' or 'npz'.
  """
  fmt = fmt or ("npz" if os.fspath(path).endswith(".npz") else "pkl")
  content = model_to_dict(model)
  if fmt == "npz":
    content["J_regressor"] = model.j_regressor
    buffer = io.BytesIO()
    np.savez(buffer, **content)
    payload = buffer.getvalue()
  elif fmt == "pkl":
    payload = pickle.dumps(content, protocol=2)
  else:
    raise ValueError(f"fmt must be 'pkl' or 'npz', got {fmt!r}")
  atomic_write_bytes(path, payload)
