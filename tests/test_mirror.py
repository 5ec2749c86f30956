"""Left hands through the right-hand network: the flip of pixels, cameras and outputs."""

import numpy as np
import pytest

from hand_tf import camera, mirror
from hand_tf.contract import OUTPUT_NAMES


def test_flip_matrix_sends_each_pixel_where_the_flipped_array_has_it():
  image = np.zeros((5, 7, 3), np.uint8)
  image[2, 1] = 255  # pixel (row 2, column 1) covers [1, 2) x [2, 3): centre (1.5, 2.5)
  flipped = mirror.mirror_image(image)
  row, column = np.argwhere(flipped[..., 0])[0]
  centre = mirror.flip_matrix(7) @ [1.5, 2.5, 1.0]
  np.testing.assert_allclose(centre[:2], [column + 0.5, row + 0.5])


def test_the_reflected_point_lands_on_the_flipped_pixel():
  """A point X seen with K at u; its reflection M X, seen with the flipped camera, lands
  at W - u (an off-centre, skewed K)."""
  k = np.array([[500.0, 3.0, 70.0], [0.0, 480.0, 40.0], [0.0, 0.0, 1.0]], np.float32)
  points = np.random.default_rng(0).uniform([-0.1, -0.1, 0.4], [0.1, 0.1, 0.8], (9, 3))
  seen = camera.project(points, k)
  seen_flipped = camera.project(points * [-1, 1, 1], mirror.mirror_intrinsics(k, 200))
  np.testing.assert_allclose(seen_flipped, np.stack([200 - seen[:, 0], seen[:, 1]], -1),
                             atol=1e-4)


def test_a_mirrored_right_hand_is_the_left_model_with_the_mirrored_pose():
  """MANO's left model with the pose `mirror_outputs` gives is the right hand reflected:
  the pose a left hand is reported with is the left model's."""
  import tensorflow as tf

  from mano_tf.layer import ManoLayer
  pose = np.random.default_rng(1).normal(0, 0.4, (1, 16, 3)).astype(np.float32)
  right = ManoLayer(use_pca=False, flat_hand_mean=True)
  left = ManoLayer(use_pca=False, flat_hand_mean=True, side="left")
  vertices, joints = right(pose.reshape(1, 48), tf.zeros([1, 10]))
  mirrored = mirror.mirror_outputs({"pose": pose, "vertices": vertices.numpy(),
                                    "joints3d": joints.numpy()}, 64)
  left_vertices, left_joints = left(mirrored["pose"].reshape(1, 48), tf.zeros([1, 10]))
  np.testing.assert_allclose(left_vertices, mirrored["vertices"], atol=1e-6)
  np.testing.assert_allclose(left_joints, mirrored["joints3d"], atol=1e-6)
  np.testing.assert_array_equal(mirror.mirror_faces(right.faces), left.faces)


def test_every_output_has_a_mirror_rule_and_mirroring_twice_is_the_identity():
  rng = np.random.default_rng(2)
  shapes = {"vertices": (2, 778, 3), "joints3d": (2, 21, 3), "joints2d": (2, 21, 2),
            "pose": (2, 16, 3), "shape": (2, 10), "camera": (2, 7), "texture": (2, 778, 3),
            "lighting": (2, 11)}
  assert set(shapes) == set(OUTPUT_NAMES)
  outputs = {name: rng.normal(size=shape).astype(np.float32) for name, shape in shapes.items()}
  once = mirror.mirror_outputs(outputs, 64)
  twice = mirror.mirror_outputs(once, 64)
  for name in OUTPUT_NAMES:
    np.testing.assert_allclose(twice[name], outputs[name], atol=1e-5, err_msg=name)
  np.testing.assert_allclose(once["joints2d"][..., 0], 64 - outputs["joints2d"][..., 0])
  np.testing.assert_allclose(once["lighting"][:, 8], -outputs["lighting"][:, 8])
  with pytest.raises(ValueError, match="no rule to mirror the output 'heatmaps'"):
    mirror.mirror_outputs({"heatmaps": np.zeros(3)}, 64)
