"""The deployable inference function: uint8 images (+ K) -> named hand outputs.

This wraps the Keras inference model with what every runtime needs the same way:
uint8 input, resizing to the model's input size (K follows), colours through tanh, and
2D joints in the pixels of the image given.  Export traces it into SavedModel, TFLite
and ONNX; `hand_tf.predictors` reads the results back with identical outputs.

Outputs (N images):
  vertices [N, 778, 3], joints3d [N, 21, 3]: camera frame (OpenCV axes), meters;
  joints2d [N, 21, 2]: pixels of the input image; pose [N, 16, 3] axis-angle (radians);
  shape [N, 10] betas; camera [N, 7] = (scale, rotation axis-angle [3], translation [3] m);
  texture [N, T, 3] RGB in [0, 1] per vertex (T = 778) or face (1538); lighting [N, 11].
"""

import tensorflow as tf

from hand_tf.contract import OUTPUT_NAMES  # noqa: F401  (re-exported: the outputs' order)
from hand_tf.rendering import camera


class InferenceModule(tf.Module):
  """tf.Module holding the inference model; `serve` and `serve_with_intrinsics`."""

  def __init__(self, model, image_size: int):
    super().__init__(name="s2hand")
    self.model = model
    self.image_size = image_size

  def predict(self, images, intrinsics):
    """images: `[N, H, W, 3]` uint8; intrinsics: `[N, 3, 3]` K of those images, pixels."""
    images = tf.convert_to_tensor(images)
    shape = tf.shape(images)
    height, width = tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)
    size = self.image_size
    pixels = tf.cast(images, tf.float32) / 255.0
    if images.shape[1] != size or images.shape[2] != size:
      pixels = tf.image.resize(pixels, [size, size], antialias=True)
    # Pixel coordinates are continuous (pixel c covers [c, c + 1), see
    # hand_tf.rendering.camera), so resizing scales them and K alike.
    sx, sy = size / width, size / height
    to_model = tf.stack([[sx, 0.0, 0.0], [0.0, sy, 0.0], [0.0, 0.0, 1.0]])
    intrinsics = tf.cast(intrinsics, tf.float32)
    out = self.model([pixels, tf.einsum("ij,njk->nik", to_model, intrinsics)],
                     training=False)
    return {
        "vertices": out["vertices"], "joints3d": out["joints3d"],
        "joints2d": camera.project(out["joints3d"], intrinsics),
        "pose": out["pose"], "shape": out["shape"],
        "camera": tf.concat([out["scale"], out["rotation"], out["translation"]], axis=-1),
        "texture": tf.clip_by_value(tf.tanh(out["texture"]), 0.0, 1.0),
        "lighting": out["lighting"],
    }

  def functions(self, batch=None, height=None, width=None):
    """(serve, serve_with_intrinsics) as tf.functions for the given input shape."""
    image_spec = tf.TensorSpec([batch, height, width, 3], tf.uint8, name="images")
    k_spec = tf.TensorSpec([batch, 3, 3], tf.float32, name="intrinsics")

    @tf.function(input_signature=[image_spec])
    def serve(images):
      shape = tf.shape(images)
      return self.predict(images, camera.default_intrinsics(shape[1], shape[2], shape[0]))

    @tf.function(input_signature=[image_spec, k_spec])
    def serve_with_intrinsics(images, intrinsics):
      return self.predict(images, intrinsics)

    return serve, serve_with_intrinsics
