"""Heads of the 3D branch (paper Tables 7 and 8), as serialisable Keras layers."""

import keras
import numpy as np

from hand_tf.model import rotation
from mano_tf import constants

# Skin mean colour the texture head predicts offsets from (S2HAND's code).
SKIN_MEAN = (200.0 / 256.0, 150.0 / 256.0, 150.0 / 256.0)


def _small(seed=None):
  return keras.initializers.RandomNormal(stddev=0.001, seed=seed)


def _mlp(name, widths, last_bias=None, small_init=False):
  layers = []
  for i, width in enumerate(widths):
    last = i == len(widths) - 1
    # The released code draws every layer of these heads from N(0, 0.001): the output
    # then depends on the features through a product of three tiny matrices, a saddle
    # that Adam hardly leaves (trained on synthetic hands, the predicted depth varied by
    # 0.04 mm across images).  Only the last layer starts small here: the first
    # prediction is still the bias (a mean hand 0.65 m away), but its gradient is not.
    kwargs = {"kernel_initializer": _small()} if small_init and last else {}
    if last and last_bias is not None:
      kwargs["bias_initializer"] = keras.initializers.Constant(last_bias)
    activation = "relu" if i == 0 else None  # Linear-ReLU-Linear(-Linear), as the paper
    layers.append(keras.layers.Dense(width, activation=activation, name=f"{name}_{i}",
                                     **kwargs))
  return keras.Sequential(layers, name=name)


@keras.saving.register_keras_serializable(package="hand_tf")
class GeometryHead(keras.layers.Layer):
  """Global feature -> MANO pose (PCA), shape, and camera (scale, rotation, translation).

  Trunk Linear(1024)-BN-ReLU-Linear(512)-BN-ReLU, then one small MLP per output.  The
  translation head starts at (0, 0, 0.65) m and the scale head at 0.95 (small-std last
  layer), so the first prediction is a mean hand 65 cm in front of the camera.
  """

  def __init__(self, ncomps: int = 30, rotation_representation: str = "axis_angle", **kwargs):
    super().__init__(**kwargs)
    self.ncomps = ncomps
    self.rotation_representation = rotation_representation
    bn = dict(momentum=0.9, epsilon=1e-5)  # PyTorch BatchNorm1d defaults
    self.trunk = keras.Sequential([
        keras.layers.Dense(1024, name="fc1"), keras.layers.BatchNormalization(**bn),
        keras.layers.ReLU(), keras.layers.Dense(512, name="fc2"),
        keras.layers.BatchNormalization(**bn), keras.layers.ReLU()], name="trunk")
    self.pose_head = _mlp("pose", [128, ncomps])
    self.shape_head = _mlp("shape", [128, constants.NUM_BETAS])
    self.translation_head = _mlp("translation", [128, 32, 3], (0.0, 0.0, 0.65), True)
    # A 6D head starts at the identity (no turn from the root), as axis-angle's zero.
    identity = rotation.IDENTITY[rotation_representation]
    width = rotation.REPRESENTATIONS[rotation_representation]
    self.rotation_head = _mlp("rotation", [128, 32, width], identity, identity is not None)
    self.scale_head = _mlp("scale", [128, 32, 1], 0.95, True)

  def build(self, input_shape):
    self.trunk.build(input_shape)
    for head in (self.pose_head, self.shape_head, self.translation_head, self.rotation_head,
                 self.scale_head):
      head.build((None, 512))

  def call(self, features, training=None):
    x = self.trunk(features, training=training)
    outputs = {"pose_coeffs": self.pose_head(x), "shape": self.shape_head(x),
               "translation": self.translation_head(x), "rotation": self.rotation_head(x),
               "scale": self.scale_head(x)}
    # Under mixed precision the heads compute in float16; MANO, the renderer and the
    # losses take float32 (Keras' advice: a model's outputs in float32).
    return {k: keras.ops.cast(v, "float32") for k, v in outputs.items()}

  def get_config(self):
    return {**super().get_config(), "ncomps": self.ncomps,
            "rotation_representation": self.rotation_representation}


@keras.saving.register_keras_serializable(package="hand_tf")
class TextureLightHead(keras.layers.Layer):
  """Stride-4 feature map -> per-vertex (or per-face) texture and 11 lighting values.

  (Resize to 56 x 56)-Conv(48, k10, s4, pad 1)-ReLU-MaxPool(3, 2)-Conv(64, k3)-ReLU-
  MaxPool(2, 2) on the 56 x 56 map gives 2 x 2 x 64 = 256 features; two MLPs follow.
  The texture is the skin mean plus a predicted offset (rendered through tanh, as the
  original does); the light head's last kernel starts around 1.
  """

  def __init__(self, num_texels: int = constants.NUM_VERTICES, **kwargs):
    super().__init__(**kwargs)
    self.num_texels = num_texels
    self.conv = keras.Sequential([
        # Table 8's layer sizes assume the 56 x 56 map of a 224 input; other input sizes
        # are resampled to it, so the head (and its weights) do not depend on the size.
        keras.layers.Resizing(56, 56), keras.layers.ZeroPadding2D(1),
        keras.layers.Conv2D(48, 10, strides=4, activation="relu"),
        keras.layers.MaxPooling2D(3, 2), keras.layers.Conv2D(64, 3, activation="relu"),
        keras.layers.MaxPooling2D(2, 2), keras.layers.Flatten()], name="texture_light_conv")
    self.texture_head = keras.Sequential([
        keras.layers.Dense(64, activation="relu", kernel_initializer=_small()),
        keras.layers.Dense(num_texels * 3, kernel_initializer=_small())], name="texture")
    self.light_head = keras.Sequential([
        keras.layers.Dense(64, activation="relu", kernel_initializer=_small()),
        keras.layers.Dense(11, kernel_initializer=keras.initializers.RandomNormal(1.0, 0.001))],
        name="light")

  def build(self, input_shape):
    self.conv.build(input_shape)
    self.texture_head.build((None, 256))
    self.light_head.build((None, 256))

  def call(self, low_level, training=None):
    x = self.conv(low_level, training=training)
    offsets = keras.ops.reshape(self.texture_head(x), (-1, self.num_texels, 3))
    texture = keras.ops.cast(offsets, "float32") + np.asarray(SKIN_MEAN, np.float32)
    return {"texture": texture, "lighting": keras.ops.cast(self.light_head(x), "float32")}

  def get_config(self):
    return {**super().get_config(), "num_texels": self.num_texels}
