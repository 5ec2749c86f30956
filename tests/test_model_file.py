"""MANO file loading: round trips, chumpy pickles without chumpy, bad input, safety."""

import os
import pickle
import sys
import types

import numpy as np
import pytest
import scipy.sparse

from mano_tf import model_file
from mano_tf.model_file import ManoModelError, load_mano_model, model_to_dict, save_mano_model


def _assert_same_model(a, b):
  for field in ("v_template", "shapedirs", "posedirs", "j_regressor", "weights", "parents",
                "faces", "hands_components", "hands_mean", "tip_vertex_ids"):
    np.testing.assert_allclose(getattr(a, field), getattr(b, field), err_msg=field)


@pytest.mark.parametrize("name", ["MANO_RIGHT.pkl", "hand.npz"])
def test_round_trip(tmp_path, synthetic_model, name):
  path = tmp_path / name
  save_mano_model(synthetic_model, path)
  _assert_same_model(load_mano_model(path), synthetic_model)


def test_written_pickle_reads_like_the_official_file(tmp_path, synthetic_model):
  """A plain `pickle.load(..., encoding='latin1')`, as manopth does, sees MANO's keys."""
  path = tmp_path / "MANO_RIGHT.pkl"
  save_mano_model(synthetic_model, path)
  with open(path, "rb") as f:
    data = pickle.load(f, encoding="latin1")
  assert scipy.sparse.issparse(data["J_regressor"])
  assert data["J_regressor"].shape == (16, 778)
  assert data["f"].dtype == np.uint32 and data["f"].shape == (1538, 3)
  assert data["kintree_table"].shape == (2, 16)
  assert data["shapedirs"].shape == (778, 3, 10)
  assert data["posedirs"].shape == (778, 3, 135)
  assert data["hands_components"].shape == (45, 45)
  assert data["bs_style"] == "lbs"


def _install_fake_chumpy(monkeypatch):
  """Registers importable stand-ins named like chumpy's classes, only for pickling."""
  ch = types.ModuleType("chumpy.ch")
  reordering = types.ModuleType("chumpy.reordering")

  class Ch:
    def __init__(self, x):
      self.x = x

  class Select:
    def __init__(self, a, idxs, preferred_shape):
      self.a, self.idxs, self.preferred_shape = a, idxs, preferred_shape

  Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
  Select.__module__, Select.__qualname__ = "chumpy.reordering", "Select"
  ch.Ch, reordering.Select = Ch, Select
  monkeypatch.setitem(sys.modules, "chumpy", types.ModuleType("chumpy"))
  monkeypatch.setitem(sys.modules, "chumpy.ch", ch)
  monkeypatch.setitem(sys.modules, "chumpy.reordering", reordering)
  return Ch, Select


@pytest.mark.parametrize("protocol", [1, 2])
def test_chumpy_pickle_loads_without_chumpy(tmp_path, monkeypatch, synthetic_model, protocol):
  ch_cls, select_cls = _install_fake_chumpy(monkeypatch)
  data = model_to_dict(synthetic_model)
  # Like the official file: shapedirs is a Select of the first 10 of 20 directions.
  full = np.concatenate([data["shapedirs"], np.ones_like(data["shapedirs"])], axis=2)
  idxs = np.arange(full.size).reshape(full.shape)[:, :, :10].ravel()
  data["shapedirs"] = select_cls(ch_cls(full), idxs, (778, 3, 10))
  data["v_template"] = ch_cls(data["v_template"])
  payload = pickle.dumps(data, protocol=protocol)
  for name in ("chumpy", "chumpy.ch", "chumpy.reordering"):
    monkeypatch.delitem(sys.modules, name)
  path = tmp_path / "MANO_RIGHT.pkl"
  path.write_bytes(payload)
  _assert_same_model(load_mano_model(path), synthetic_model)


class _Evil:
  def __init__(self, marker):
    self.marker = marker

  def __reduce__(self):
    return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_before_running(tmp_path):
  marker = tmp_path / "pwned"
  path = tmp_path / "MANO_RIGHT.pkl"
  path.write_bytes(pickle.dumps({"v_template": _Evil(marker)}, protocol=2))
  with pytest.raises(ManoModelError, match="refusing to load global '(posix|os).system'"):
    load_mano_model(path)
  assert not marker.exists()


def test_eval_global_is_refused(tmp_path):
  path = tmp_path / "x.pkl"
  path.write_bytes(b"cbuiltins\neval\n(S'1+1'\ntR.")  # protocol-0 call of eval('1+1')
  with pytest.raises(ManoModelError, match="builtins.eval"):
    load_mano_model(path)


def test_missing_file(tmp_path):
  path = tmp_path / "nope" / "MANO_RIGHT.pkl"
  with pytest.raises(ManoModelError, match=f"{path}: MANO model file not found"):
    load_mano_model(path)


def test_not_a_pickle(tmp_path):
  path = tmp_path / "MANO_RIGHT.pkl"
  path.write_bytes(b"this is not a pickle at all")
  with pytest.raises(ManoModelError, match="not a readable MANO pickle"):
    load_mano_model(path)


def _write(tmp_path, data):
  path = tmp_path / "MANO_RIGHT.pkl"
  path.write_bytes(pickle.dumps(data, protocol=2))
  return path


def test_missing_key(tmp_path, synthetic_model):
  data = model_to_dict(synthetic_model)
  del data["weights"]
  path = _write(tmp_path, data)
  with pytest.raises(ManoModelError, match=f"{path}: missing key 'weights'"):
    load_mano_model(path)


@pytest.mark.parametrize("key,value,message", [
    ("v_template", np.zeros((777, 3)), r"'v_template' has shape \(777, 3\), expected \(778, 3\)"),
    ("posedirs", np.zeros((778, 3, 10)), "'posedirs' has shape"),
    ("shapedirs", np.zeros((778, 3, 5)), "'shapedirs' has shape"),
    ("f", np.zeros((1538, 3), np.float32), "'f' has dtype float32, expected integers"),
    ("f", np.full((1538, 3), 900, np.int64), "'f' has vertex indices outside"),
    ("v_template", np.full((778, 3), np.nan), "'v_template' contains NaN"),
    ("hands_mean", np.array(["a"] * 45), "'hands_mean' has dtype"),
])
def test_bad_content(tmp_path, synthetic_model, key, value, message):
  data = model_to_dict(synthetic_model)
  data[key] = value
  path = _write(tmp_path, data)
  with pytest.raises(ManoModelError, match=message):
    load_mano_model(path)


def test_not_a_dict(tmp_path):
  path = _write(tmp_path, [1, 2, 3])
  with pytest.raises(ManoModelError, match="expected a dictionary"):
    load_mano_model(path)


def test_save_is_atomic(tmp_path, synthetic_model, monkeypatch):
  path = tmp_path / "MANO_RIGHT.pkl"
  save_mano_model(synthetic_model, path)
  before = path.read_bytes()

  def broken_replace(src, dst):
    raise OSError("disk full")

  monkeypatch.setattr(model_file.os, "replace", broken_replace)
  with pytest.raises(OSError):
    save_mano_model(synthetic_model, path, fmt="npz")
  assert path.read_bytes() == before
  assert [p.name for p in tmp_path.iterdir()] == ["MANO_RIGHT.pkl"]
