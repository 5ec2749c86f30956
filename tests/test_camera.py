"""The NumPy camera (deploy path, readers, reports) and the TF camera (model, renderer,
losses) are one definition: same projections, same default camera."""

import numpy as np
import pytest
import tensorflow as tf

from hand_tf import camera
from hand_tf.rendering import camera as tf_camera


def test_numpy_and_tensorflow_projections_agree_on_batched_and_degenerate_points():
  rng = np.random.default_rng(0)
  points = rng.normal([0.0, 0.0, 0.7], [0.1, 0.1, 0.2], (2, 3, 21, 3)).astype(np.float32)
  points[0, 0, 0, 2] = 0.0        # on the camera plane: clamped, finite
  points[0, 0, 1, 2] = -0.3       # behind the camera
  k = np.tile(camera.default_intrinsics(480, 640), (2, 3, 1, 1))
  k[1, 2, 0, 1] = 3.0             # skew: any affine pixel map (augmented crops)
  ours = camera.project(points, k)
  theirs = tf_camera.project(points, k).numpy()
  assert ours.shape == (2, 3, 21, 2) and np.all(np.isfinite(ours))
  np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-2)
  # A point on the optical axis lands on the principal point.
  np.testing.assert_allclose(camera.project([[0.0, 0.0, 1.0]], k[0, 0]), [[320.0, 240.0]])


def test_default_cameras_agree_and_follow_the_longer_side():
  for height, width in ((480, 640), (640, 480), (224, 224)):
    k = camera.default_intrinsics(height, width)
    np.testing.assert_allclose(
        tf_camera.default_intrinsics(height, width, 2).numpy(), np.stack([k, k]))
    assert k[0, 0] == k[1, 1] == camera.DEFAULT_FOCAL_PER_SIDE * max(height, width)
    assert (k[0, 2], k[1, 2]) == (width / 2, height / 2)


def test_bad_shapes_are_refused_with_the_argument_named():
  with pytest.raises(ValueError, match="points"):
    camera.project(np.zeros((21, 2)), np.eye(3))
  with pytest.raises(ValueError, match="intrinsics"):
    camera.project(np.zeros((21, 3)), np.eye(4))
  with pytest.raises(ValueError):
    tf_camera.project(tf.zeros((21, 2)), tf.eye(3))


def test_back_project_inverts_project_under_skewed_and_rotated_k():
  """`back_project` is what places the hand about the crop's centre ray; a rotation-
  augmented crop's K has a rotated 2 x 2 block, which must be undone too."""
  import tensorflow as tf

  from hand_tf.rendering import camera as tf_camera
  angle = 0.6
  rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
  k = np.eye(3, dtype=np.float32)[None].repeat(2, 0)
  k[0, :2] = [[300.0, 4.0, 40.0], [0.0, 310.0, 20.0]]
  k[1, :2, :2] = 250.0 * rotation
  k[1, :2, 2] = [-15.0, 70.0]
  points = np.array([[0.05, -0.03, 0.6], [-0.2, 0.1, 1.3]], np.float32)
  pixels = tf_camera.project(points[:, None], k)[:, 0]
  back = tf_camera.back_project(pixels, tf.constant(points[:, 2]), k)
  np.testing.assert_allclose(back, points, atol=1e-6)
