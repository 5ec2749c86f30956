"""The 2D keypoint branch: a stacked hourglass with integral (soft-argmax) regression.

As S2HAND: the 224 image is zero-padded on the right and bottom to 256 (other sizes to
the next multiple of 64; keypoint coordinates are unchanged), shifted by -0.5, and run
through a 2-stack hourglass (depth 4, 2 residual modules per position, 256 features)
that outputs 21 heatmaps of 64 x 64 per stack.  Each heatmap is upsampled bilinearly
(corners aligned) to 256 x 256, turned into a distribution by a softmax over all pixels,
and its expectation is the keypoint.
Coordinates are in input pixels with pixel centres at +0.5, the convention of
`hand_tf.rendering.camera` (the original used integer centres, half a pixel apart).
"""

import keras
import tensorflow as tf

from mano_tf import constants


def _bn_relu(x):
  return keras.layers.ReLU()(keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5)(x))


def residual(x, features):
  """Pre-activation bottleneck residual block."""
  skip = x if x.shape[-1] == features else keras.layers.Conv2D(features, 1)(x)
  y = keras.layers.Conv2D(features // 2, 1)(_bn_relu(x))
  y = keras.layers.Conv2D(features // 2, 3, padding="same")(_bn_relu(y))
  y = keras.layers.Conv2D(features, 1)(_bn_relu(y))
  return keras.layers.Add()([skip, y])


def _residuals(x, features, modules):
  for _ in range(modules):
    x = residual(x, features)
  return x


def hourglass(x, depth, features, modules):
  up = _residuals(x, features, modules)
  low = _residuals(keras.layers.MaxPooling2D(2)(x), features, modules)
  low = (hourglass(low, depth - 1, features, modules) if depth > 1
         else _residuals(low, features, modules))
  low = _residuals(low, features, modules)
  return keras.layers.Add()([up, keras.layers.UpSampling2D(2, interpolation="nearest")(low)])


@keras.saving.register_keras_serializable(package="hand_tf")
class SoftArgmax2D(keras.layers.Layer):
  """[B, h, w, K] heatmaps -> [B, K, 2] expected (u, v) in pixels of a `size` image."""

  def __init__(self, size: int = 256, **kwargs):
    super().__init__(**kwargs)
    self.size = size

  def call(self, heatmaps):
    up = tf.compat.v1.image.resize(heatmaps, [self.size, self.size],
                                   method=tf.image.ResizeMethod.BILINEAR, align_corners=True)
    batch, k = tf.shape(up)[0], up.shape[-1]
    flat = tf.reshape(tf.transpose(up, [0, 3, 1, 2]), [batch, k, self.size * self.size])
    probability = tf.reshape(tf.nn.softmax(flat, axis=-1), [batch, k, self.size, self.size])
    centres = tf.range(self.size, dtype=probability.dtype) + 0.5
    u = tf.reduce_sum(tf.reduce_sum(probability, axis=2) * centres, axis=-1)
    v = tf.reduce_sum(tf.reduce_sum(probability, axis=3) * centres, axis=-1)
    return tf.stack([u, v], axis=-1)

  def get_config(self):
    return {**super().get_config(), "size": self.size}


def build_keypoint_branch(image_size: int = 224, stacks: int = 2, modules: int = 2,
                          features: int = 256, depth: int = 4,
                          stem_features: int = 128) -> keras.Model:
  """Image [B, S, S, 3] in [0, 1] -> list over stacks of keypoints [B, 21, 2] (pixels).

  `stem_features`: width of the stem's two residual blocks before the hourglasses (the
  paper's 128).  The first runs at half the input size, so below 128 hourglass features
  the stem is most of the branch's work unless it narrows too.
  """
  # The stem (/4) and four halvings need a multiple of 64; the paper pads 224 to 256.
  # Padding only to the next multiple keeps small inputs small (64 px: 16x less work).
  padded_size = -(-image_size // 64) * 64
  image = keras.Input((image_size, image_size, 3), name="image")
  pad = padded_size - image_size
  x = keras.layers.ZeroPadding2D(((0, pad), (0, pad)))(image - 0.5)
  x = _bn_relu(keras.layers.Conv2D(64, 7, strides=2, padding="same")(x))
  x = residual(x, stem_features)
  x = keras.layers.MaxPooling2D(2)(x)
  x = residual(x, stem_features)
  x = residual(x, features)
  soft_argmax = SoftArgmax2D(padded_size, name="soft_argmax")
  outputs = []
  for stack in range(stacks):
    y = hourglass(x, depth, features, modules)
    y = _residuals(y, features, modules)
    lin = _bn_relu(keras.layers.Conv2D(features, 1)(y))
    heatmaps = keras.layers.Conv2D(constants.NUM_KEYPOINTS, 1, name=f"heatmaps_{stack}")(lin)
    outputs.append(soft_argmax(heatmaps))
    if stack < stacks - 1:
      x = keras.layers.Add()([x, keras.layers.Conv2D(features, 1)(lin),
                              keras.layers.Conv2D(features, 1)(heatmaps)])
  return keras.Model(image, outputs, name="keypoint_branch")
