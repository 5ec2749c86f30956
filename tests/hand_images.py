"""Test images with a hand in them that a real detector finds."""

import numpy as np


def palm_view(size: int = 256):
  """A clear palm-on view of the synthetic hand with skin texture on a light background.

  Returns:
    (image [size, size, 3] uint8 RGB, keypoints [21, 2]: the true joints' projection).
  """
  import tensorflow as tf
  from scipy.spatial.transform import Rotation

  from hand_tf.rendering import camera, renderer
  from hand_tf.synthetic.scenes import skin_texture
  from mano_tf.layer import ManoLayer

  layer = ManoLayer(use_pca=False, flat_hand_mean=True)
  pose = np.zeros((1, 48), np.float32)
  pose[0, :3] = (Rotation.from_euler("x", 90, degrees=True)
                 * Rotation.from_euler("z", 110, degrees=True)).as_rotvec()
  vertices, joints = layer(pose, tf.zeros([1, 10]))
  center = tf.reduce_mean(vertices, axis=1, keepdims=True)
  vertices, joints = vertices - center + [0, 0, 0.7], joints - center + [0, 0, 0.7]
  half = size / 2
  k = np.array([[[400.0 * size / 256, 0, half], [0, 400.0 * size / 256, half], [0, 0, 1]]],
               np.float32)
  texture = skin_texture(np.random.default_rng(0), layer._template.numpy())[None]
  light = np.array([[0.6, 0.5, 1, 1, 1, 1, 1, 1, 0, 0, -1]], np.float32)
  out = renderer.render(vertices, layer.faces, texture, k, light, (size, size),
                        backend="kernel")
  image = out["rgb"][0].numpy() + (1 - out["silhouette"][0].numpy()) * [0.85, 0.85, 0.8]
  image = (np.clip(image, 0, 1) * 255).astype(np.uint8)
  return image, camera.project(joints, k)[0].numpy()
