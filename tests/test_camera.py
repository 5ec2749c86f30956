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


def test_a_photos_camera_comes_from_the_user_then_its_exif_then_the_default(tmp_path):
  """A JPEG whose EXIF says 28 mm (35 mm equivalent): focal 28 / 43.27 of the image
  diagonal; --focal and a given K win over it; without EXIF, the default camera."""
  from PIL import Image

  from hand_tf.io import read_exif_focal
  image = Image.new("RGB", (400, 300), (120, 90, 60))
  exif = Image.Exif()
  exif.get_ifd(0x8769).update({0xA405: 28, 0x920A: 4.2})  # 35 mm equivalent, lens mm
  image.save(tmp_path / "exif.jpg", exif=exif)
  image.save(tmp_path / "plain.jpg")
  exif_focal = read_exif_focal(tmp_path / "exif.jpg")
  assert exif_focal == {"focal_35mm": 28.0, "focal_mm": pytest.approx(4.2)}
  assert read_exif_focal(tmp_path / "plain.jpg") is None
  (tmp_path / "text.jpg").write_text("not a photo")
  assert read_exif_focal(tmp_path / "text.jpg") is None
  k, source = camera.photo_intrinsics(300, 400, exif=exif_focal)
  assert source == "exif" and k[0, 0] == pytest.approx(28 * 500 / np.hypot(36, 24))
  np.testing.assert_allclose(k[:2, 2], [200, 150])
  assert camera.photo_intrinsics(300, 400, focal=700, exif=exif_focal)[1] == "focal"
  given = np.array([[500.0, 0, 190], [0, 500, 160], [0, 0, 1]])
  k, source = camera.photo_intrinsics(300, 400, given, 700, exif_focal)
  assert source == "intrinsics"
  np.testing.assert_allclose(k, given)
  k, source = camera.photo_intrinsics(300, 400, exif=None)
  assert source == "default" and k[0, 0] == camera.DEFAULT_FOCAL_PER_SIDE * 400
