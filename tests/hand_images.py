"""Test images with hands in them that a real detector finds."""

import numpy as np

BACKGROUND = (0.85, 0.85, 0.8)


def palm_view(size: int = 256, side: str = "right", zoom: float = 1.0,
              centre=None):
  """A clear palm-on view of the synthetic hand with skin texture on a light background.

  Args:
    size: the image's side, pixels.
    side: "right", or "left" for MANO's left model posed as the mirror image of the right
      one (root rotation reflected), so that its render is the right one's flipped.
    zoom: focal length x `zoom` (the hand fills more of the image).
    centre: the principal point (default the image centre): where the hand appears.

  Returns:
    (image [size, size, 3] uint8 RGB, keypoints [21, 2]: the true joints' projection).
  """
  import tensorflow as tf
  from scipy.spatial.transform import Rotation

  from hand_tf.rendering import camera, renderer
  from hand_tf.synthetic.scenes import skin_texture
  from mano_tf.layer import ManoLayer

  layer = ManoLayer(use_pca=False, flat_hand_mean=True, side=side)
  pose = np.zeros((1, 48), np.float32)
  pose[0, :3] = (Rotation.from_euler("x", 90, degrees=True)
                 * Rotation.from_euler("z", 110, degrees=True)).as_rotvec()
  if side == "left":
    pose[0, 1:3] *= -1  # M R M for M = diag(-1, 1, 1): axis-angle (a, b, c) -> (a, -b, -c)
  vertices, joints = layer(pose, tf.zeros([1, 10]))
  centroid = tf.reduce_mean(vertices, axis=1, keepdims=True)
  vertices, joints = vertices - centroid + [0, 0, 0.7], joints - centroid + [0, 0, 0.7]
  focal = 400.0 * size / 256 * zoom
  cx, cy = (size / 2, size / 2) if centre is None else centre
  if side == "left":  # the mirror image of the right hand's camera too
    cx = size - cx
  k = np.array([[[focal, 0, cx], [0, focal, cy], [0, 0, 1]]], np.float32)
  texture = skin_texture(np.random.default_rng(0), layer._template.numpy())[None]
  light = np.array([[0.6, 0.5, 1, 1, 1, 1, 1, 1, 0, 0, -1]], np.float32)
  out = renderer.render(vertices, layer.faces, texture, k, light, (size, size),
                        backend="kernel")
  image = out["rgb"][0].numpy() + (1 - out["silhouette"][0].numpy()) * BACKGROUND
  image = (np.clip(image, 0, 1) * 255).astype(np.uint8)
  return image, camera.project(joints, k)[0].numpy()


def two_hands(size: int = 256):
  """A right hand and a left one (MANO's left model) side by side.

  Returns:
    (image [size, 2 size, 3] uint8 RGB, {"right": keypoints [21, 2], "left": [21, 2]}).
  """
  right, right_truth = palm_view(size, "right", zoom=2.0)
  left, left_truth = palm_view(size, "left", zoom=2.0)
  return (np.concatenate([right, left], axis=1),
          {"right": right_truth, "left": left_truth + [size, 0]})
