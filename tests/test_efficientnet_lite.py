"""EfficientNet-Lite0: the safe torch-checkpoint reader, the port (ImageNet classes on
scikit-image's sample photos), the encoder taps and serialisation, the B0 offline error."""

import collections
import os
import pickle
import struct
import sys
import types

import keras
import numpy as np
import pytest

from hand_tf.model import efficientnet_lite, encoder, torch_checkpoint

# --------------------------------------------------------------------------------------
# A minimal writer of the legacy torch format, with stand-in `torch` modules, so the
# reader is tested on files built here (no torch needed).


@pytest.fixture
def fake_torch(monkeypatch):
  torch_module = types.ModuleType("torch")
  utils_module = types.ModuleType("torch._utils")

  class FloatStorage:
    pass

  FloatStorage.__module__, FloatStorage.__qualname__ = "torch", "FloatStorage"

  def _rebuild_tensor_v2(*args):
    raise AssertionError("never called while writing")

  _rebuild_tensor_v2.__module__ = "torch._utils"
  _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
  torch_module.FloatStorage = FloatStorage
  utils_module._rebuild_tensor_v2 = _rebuild_tensor_v2
  monkeypatch.setitem(sys.modules, "torch", torch_module)
  monkeypatch.setitem(sys.modules, "torch._utils", utils_module)
  return FloatStorage, _rebuild_tensor_v2


class _Tensor:
  def __init__(self, rebuild, storage_type, key, count, offset, size, stride):
    self.args = (rebuild, storage_type, key, count, offset, size, stride)

  def __reduce__(self):
    rebuild, storage_type, key, count, offset, size, stride = self.args
    storage = _StorageRef(("storage", storage_type, key, "cpu", count, None))
    return rebuild, (storage, offset, size, stride, False, collections.OrderedDict())


class _StorageRef:
  def __init__(self, pid):
    self.pid = pid


class _Pickler(pickle.Pickler):
  def persistent_id(self, obj):
    return obj.pid if isinstance(obj, _StorageRef) else None


def _write_legacy(path, state_pickle_object, storages):
  """storages: {key: float32 array}; state_pickle_object: what the state pickle holds."""
  with open(path, "wb") as f:
    for header in (0x1950A86A20F9469CFC6C, 1001,
                   {"protocol_version": 1001, "little_endian": True}):
      pickle.dump(header, f, protocol=2)
    _Pickler(f, protocol=2).dump(state_pickle_object)
    pickle.dump(list(storages), f, protocol=2)
    for values in storages.values():
      f.write(struct.pack("<q", values.size))
      f.write(values.astype("<f4").tobytes())


def test_reader_honours_strides_and_offsets(tmp_path, fake_torch):
  storage_type, rebuild = fake_torch
  logical = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
  # Stored channels-last, as the packaged Lite0 stem is: element (i, j, k) at i + 2 k + 8 j.
  stored = np.transpose(logical, (1, 2, 0)).ravel()
  state = collections.OrderedDict([
      ("strided", _Tensor(rebuild, storage_type, "a", 24, 0, (2, 3, 4), (1, 8, 2))),
      ("slice", _Tensor(rebuild, storage_type, "b", 6, 2, (3,), (1,))),
  ])
  path = tmp_path / "weights.pth"
  _write_legacy(path, state, {"a": stored, "b": np.arange(6, dtype=np.float32)})
  arrays = torch_checkpoint.read_legacy_checkpoint(str(path))
  np.testing.assert_array_equal(arrays["strided"], logical)
  np.testing.assert_array_equal(arrays["slice"], [2, 3, 4])


class _Exploit:
  def __init__(self, marker):
    self.marker = marker

  def __reduce__(self):
    return os.system, (f"touch {self.marker}",)


def test_reader_refuses_code_execution(tmp_path):
  marker = tmp_path / "pwned"
  path = tmp_path / "evil.pth"
  _write_legacy(path, collections.OrderedDict(w=_Exploit(marker)), {})
  with pytest.raises(torch_checkpoint.CheckpointError, match="refuses to load global"):
    torch_checkpoint.read_legacy_checkpoint(str(path))
  assert not marker.exists()


def test_reader_rejects_other_files(tmp_path):
  path = tmp_path / "not.pth"
  path.write_bytes(b"PK\x03\x04 zip")
  with pytest.raises(torch_checkpoint.CheckpointError, match="zip"):
    torch_checkpoint.read_legacy_checkpoint(str(path))
  path.write_bytes(pickle.dumps(12345))
  with pytest.raises(torch_checkpoint.CheckpointError, match="magic"):
    torch_checkpoint.read_legacy_checkpoint(str(path))
  with pytest.raises(torch_checkpoint.CheckpointError, match="not found"):
    torch_checkpoint.read_legacy_checkpoint(str(tmp_path / "missing.pth"))


# --------------------------------------------------------------------------------------
# The port.


def _center_crop(path, size=224):
  import cv2
  image = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
  height, width = image.shape[:2]
  side = min(height, width)
  top, left = (height - side) // 2, (width - side) // 2
  image = image[top:top + side, left:left + side]
  return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)


def test_lite0_classifies_imagenet_photos():
  import skimage  # a training dependency (the realistic renders' backgrounds)
  model = efficientnet_lite.efficientnet_lite0(include_top=True)
  efficientnet_lite.load_imagenet_weights(model)
  photos = os.path.join(os.path.dirname(skimage.__file__), "data")
  expected = {"chelsea.png": {285, 282, 281}, "coffee.png": {967, 968},
              "rocket.jpg": {657, 744}}
  images = np.stack([_center_crop(os.path.join(photos, name)) for name in expected])
  logits = model.predict(images, verbose=0)
  for (name, classes), row in zip(expected.items(), logits):
    top5 = set(np.argsort(-row)[:5].tolist())
    assert int(np.argmax(row)) in classes, (name, np.argsort(-row)[:5])
    assert classes <= top5, (name, np.argsort(-row)[:5])


@pytest.mark.parametrize("size", [64, 128, 224])
def test_lite0_encoder_taps(size):
  model = encoder.build_encoder("lite0", None, size)
  pooled, low = model(np.zeros((1, size, size, 3), np.float32))
  assert tuple(pooled.shape) == (1, efficientnet_lite.HEAD_CHANNELS)
  assert tuple(low.shape) == (1, size // 4, size // 4, 24)


def test_lite0_encoder_serialises(tmp_path):
  model = encoder.build_encoder("lite0", "imagenet", 64)
  images = np.random.default_rng(0).uniform(size=(2, 64, 64, 3)).astype(np.float32)
  path = str(tmp_path / "encoder.keras")
  model.save(path)
  restored = keras.models.load_model(path)
  for a, b in zip(model(images), restored(images)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5)
  # ImageNet features differ between images (random-init ones hardly do at first).
  pooled = np.asarray(model(images)[0])
  assert np.abs(pooled[0] - pooled[1]).mean() > 1e-2


def test_weights_cache_is_written_once_and_reused(tmp_path, monkeypatch):
  monkeypatch.setenv("HAND_TF_WEIGHTS_DIR", str(tmp_path))
  first = efficientnet_lite.imagenet_weights()
  assert os.path.isfile(efficientnet_lite.cache_path())
  assert not [p for p in os.listdir(tmp_path) if p.endswith(".partial")]

  def no_conversion(*args):
    raise AssertionError("converted again despite the cache")

  monkeypatch.setattr(efficientnet_lite, "convert_imagenet_weights", no_conversion)
  second = efficientnet_lite.imagenet_weights()
  assert sorted(first) == sorted(second)
  np.testing.assert_array_equal(first["stem_conv"][0], second["stem_conv"][0])


def test_b0_imagenet_offline_names_the_download_and_suggests_lite0(monkeypatch):
  from keras.src.applications import efficientnet as keras_efficientnet

  def offline(fname, origin, **kwargs):
    raise Exception(f"URL fetch failure on {origin}: None -- [Errno 101] Network is "
                    "unreachable")

  monkeypatch.setattr(keras_efficientnet.file_utils, "get_file", offline)
  with pytest.raises(encoder.EncoderWeightsError) as error:
    encoder.build_encoder("b0", "imagenet", 64)
  message = str(error.value)
  assert "\n" not in message
  assert "--backbone lite0" in message and "URL fetch failure on http" in message
