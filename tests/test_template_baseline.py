"""The template-hand baseline: PnP camera fitting on cases with known answers."""

import numpy as np
from scipy.spatial.transform import Rotation

from hand_tf.camera import fit_camera, project
from hand_tf.data.records import HandRecords
from hand_tf.eval import template


def _intrinsics(size=64):
  return np.array([[150.0, 0, size / 2], [0, 150.0, size / 2], [0, 0, 1]])


def test_fit_camera_recovers_a_known_pose_despite_an_outlier():
  _, joints = template.mean_hand()
  rotation = Rotation.from_rotvec([2.8, 0.3, -0.4]).as_matrix()
  translation = np.array([0.02, -0.01, 0.62])
  camera = joints @ rotation.T + translation
  keypoints = project(camera[None], _intrinsics()[None])[0]
  keypoints[8] += 25.0  # a swapped or wild detection
  confidence = np.ones(21)
  fitted_r, fitted_t = fit_camera(joints, keypoints, confidence, _intrinsics(), 64)
  np.testing.assert_allclose(fitted_r, rotation, atol=1e-3)
  np.testing.assert_allclose(fitted_t, translation, atol=1e-3)


def test_low_confidence_keypoints_do_not_vote_and_garbage_falls_back():
  _, joints = template.mean_hand()
  rotation = Rotation.from_rotvec([3.0, 0.0, 0.2]).as_matrix()
  camera = joints @ rotation.T + np.array([0.0, 0.0, 0.5])
  keypoints = project(camera[None], _intrinsics()[None])[0]
  confidence = np.ones(21)
  keypoints[:5] = 3.0  # wrong and marked as such
  confidence[:5] = 0.05
  fitted_r, fitted_t = fit_camera(joints, keypoints, confidence, _intrinsics(), 64)
  np.testing.assert_allclose(fitted_t, [0.0, 0.0, 0.5], atol=2e-3)
  # All keypoints on one pixel: no pose explains them; the frontal fallback keeps depth > 0.
  _, fallback_t = fit_camera(joints, np.full((21, 2), 32.0), np.ones(21),
                                      _intrinsics(), 64)
  assert np.all(np.isfinite(fallback_t)) and fallback_t[2] > 0


def test_template_predictions_match_records_and_project_onto_the_detections():
  vertices, joints = template.mean_hand()
  count, rotations = 3, Rotation.from_rotvec([[3.1, 0, 0], [2.5, 0.5, 0], [3.0, -0.4, 0.6]])
  camera = np.stack([joints @ r.T + [0, 0, 0.6] for r in rotations.as_matrix()])
  k = np.broadcast_to(_intrinsics(), (count, 3, 3)).copy()
  keypoints = project(camera, k)
  records = HandRecords([f"{i}.jpg" for i in range(count)], 64,
                        np.tile([0, 0, 64, 64], (count, 1)).astype(float), k, keypoints,
                        np.ones((count, 21)), joints3d=camera)
  predictions = template.template_predictions(records)
  assert predictions["vertices"].shape == (count, 778, 3)
  np.testing.assert_allclose(predictions["joints3d"], camera, atol=1e-3)
  np.testing.assert_allclose(predictions["joints2d"], keypoints, atol=0.05)


def test_place_on_keypoints_moves_a_misplaced_hand_onto_its_detections():
  vertices, joints = template.mean_hand()
  truth_r = Rotation.from_rotvec([2.9, 0.2, 0.3]).as_matrix()
  camera = joints @ truth_r.T + [0.01, 0.02, 0.55]
  k = _intrinsics()[None]
  records = HandRecords(["0.jpg"], 64, np.array([[0.0, 0, 64, 64]]), k, project(camera[None], k),
                        np.ones((1, 21)), joints3d=camera[None])
  # The same hand, turned and pushed 0.3 m too far: shape right, placement wrong.
  wrong_r = Rotation.from_rotvec([0.0, 0.4, 0.0]).as_matrix()
  true_vertices = vertices @ truth_r.T + [0.01, 0.02, 0.55]
  wrong = {"joints3d": (camera @ wrong_r.T + [0.0, 0.0, 0.3])[None],
           "vertices": (true_vertices @ wrong_r.T + [0.0, 0.0, 0.3])[None]}
  placed = template.place_on_keypoints(wrong, records)
  np.testing.assert_allclose(placed["joints3d"][0], camera, atol=1e-3)
  np.testing.assert_allclose(placed["vertices"][0], true_vertices, atol=1e-3)
  # Detections no rigid motion explains leave the prediction where the model put it.
  records.keypoints[:] = 32.0
  kept = template.place_on_keypoints(wrong, records)
  np.testing.assert_allclose(kept["joints3d"], wrong["joints3d"], atol=1e-6)


class _FixedHandPredictor:
  """A predictor that sees nothing: the mean hand 0.9 m away, turned, whatever the image."""
  input_size = 32

  def __init__(self, vertices, joints):
    self.vertices, self.joints = vertices, joints

  def predict(self, images, intrinsics):
    n = len(images)
    return {"vertices": np.repeat(self.vertices[None], n, 0),
            "joints3d": np.repeat(self.joints[None], n, 0),
            "texture": np.full((n, 778, 3), 0.5, np.float32)}


def test_reconstruct_places_the_predicted_hand_on_detected_keypoints():
  from hand_tf import reconstruct
  vertices, joints = template.mean_hand()
  away = Rotation.from_rotvec([2.6, 0.3, 0.0]).as_matrix()
  predictor = _FixedHandPredictor(vertices @ away.T + [0.1, 0, 0.9],
                                  joints @ away.T + [0.1, 0, 0.9])
  truth = Rotation.from_rotvec([3.0, -0.2, 0.4]).as_matrix()
  true_joints = joints @ truth.T + [-0.03, 0.02, 0.5]
  k = np.array([[500.0, 0, 160], [0, 500.0, 120], [0, 0, 1]])
  keypoints = project(true_joints[None], k[None])[0]
  image = np.zeros((240, 320, 3), np.uint8)
  box = np.array([100.0, 60, 120, 120])
  faces = np.zeros((1538, 3), np.int64)
  placed = reconstruct.reconstruct(predictor, image, box, k, faces, keypoints, np.ones(21))
  assert placed.placed_on_keypoints
  np.testing.assert_allclose(placed.joints3d, true_joints, atol=2e-3)
  np.testing.assert_allclose(placed.joints2d, keypoints, atol=0.5)
  own = reconstruct.reconstruct(predictor, image, box, k, faces)  # no keypoints: as predicted
  assert not own.placed_on_keypoints
  np.testing.assert_allclose(own.joints3d, predictor.joints, atol=1e-6)
