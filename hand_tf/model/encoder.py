"""EfficientNet encoder with the two feature taps S2HAND uses.

* global feature: the final feature map, average-pooled ([B, 1280] for B0, [B, 1536] for
  B3) -> geometry;
* low-level feature: the stride-4 map, output of the last block of stage 2
  ([B, S/4, S/4, 24] for B0, 32 for B3) -> texture and lighting.

Input: images in [0, 1], as the original feeds them.  Keras' EfficientNet starts with
its own Rescaling(1/255) + ImageNet Normalization, so the images are multiplied by 255
on the way in: with ImageNet weights that is exactly the preprocessing the weights
expect; with random weights (the original trains from scratch) the fixed per-channel
affine map is absorbed by the first convolution and its batch norm.
"""

import os

import keras

BACKBONES = {
    "b0": (keras.applications.EfficientNetB0, "block2b_add"),
    "b3": (keras.applications.EfficientNetB3, "block2c_add"),
}


def build_encoder(backbone: str = "b0", weights=None, image_size: int = 224,
                  drop_connect_rate: float = 0.2) -> keras.Model:
  """Returns a Keras model: image [B, S, S, 3] in [0, 1] -> (global [B, C], low [B, S/4, S/4, c]).

  Args:
    backbone: 'b0' (the paper) or 'b3' (the released code).
    weights: None (random init), 'imagenet' (downloads; online users only), or a path to
      a weights file of the backbone.
    image_size: input side.
    drop_connect_rate: stochastic-depth rate of the last block (Keras' and the original's
      default 0.2; 0 makes training-mode outputs deterministic).
  """
  if backbone not in BACKBONES:
    raise ValueError(f"backbone must be one of {sorted(BACKBONES)}, got {backbone!r}")
  constructor, low_level_layer = BACKBONES[backbone]
  if weights not in (None, "imagenet") and not os.path.isfile(weights):
    raise FileNotFoundError(f"{weights}: encoder weights file not found")
  net = constructor(include_top=False, weights=weights if weights == "imagenet" else None,
                    input_shape=(image_size, image_size, 3))
  if weights not in (None, "imagenet"):
    net.load_weights(weights)
  # The Keras constructors fix drop_connect_rate at 0.2 and ramp it over the blocks;
  # rescaling each block's stochastic-depth dropout sets another rate.
  for layer in net.layers:
    if isinstance(layer, keras.layers.Dropout) and layer.name.endswith("_drop"):
      layer.rate = layer.rate * drop_connect_rate / 0.2
  features = keras.Model(net.input, [net.output, net.get_layer(low_level_layer).output],
                         name=f"efficientnet_{backbone}_taps")
  image = keras.Input((image_size, image_size, 3), name="image")
  final, low_level = features(keras.layers.Rescaling(255.0, name="to_0_255")(image))
  pooled = keras.layers.GlobalAveragePooling2D(name="global_pool")(final)
  return keras.Model(image, [pooled, low_level], name=f"encoder_{backbone}")
