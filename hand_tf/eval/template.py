"""The template-hand baseline: the mean hand, placed in the camera by fitting to 2D keypoints.

It is what a model that learnt nothing about articulation or shape would output, given
the same 2D detections the self-supervised training sees: every metric of a trained
model is read against it.  The mean hand is MANO's mean pose (zero PCA coefficients,
`flat_hand_mean=False`) and mean shape; its rotation and translation come from
OpenCV's RANSAC PnP on the detections of each image, so its camera-frame depth follows
from the mean hand's size (the scale/depth ambiguity a single view leaves).
"""

from typing import Dict, Optional

import cv2
import numpy as np

from hand_tf import contract
from hand_tf.camera import project
from mano_tf import constants

# Keypoints below this confidence do not vote in the PnP fit.
MIN_CONFIDENCE = 0.3
# A fit that puts the hand farther than this is a degenerate one (keypoints bunched on a
# few pixels are "explained" by a hand at infinity), not a hand: at 10 m a hand spans
# under 2% of a crop's focal length.
MAX_DEPTH_M = 10.0
# RANSAC inlier threshold, pixels of a 224 px crop (scaled to the input size).
REPROJECTION_PX_AT_224 = 8.0


def mean_hand(mano_model_path: Optional[str] = None):
  """(vertices [778, 3], joints [21, 3]) of the mean hand in MANO's frame, meters."""
  from mano_tf.layer import ManoLayer
  layer = ManoLayer(model_path=mano_model_path, use_pca=True, ncomps=constants.NUM_PCA_COMPONENTS,
                    flat_hand_mean=False)
  pose = np.zeros((1, 3 + constants.NUM_PCA_COMPONENTS), np.float32)
  vertices, joints = layer(pose, np.zeros((1, constants.NUM_BETAS), np.float32))
  return vertices.numpy()[0], joints.numpy()[0]


def scale_bone_length(mano_model_path: Optional[str] = None) -> float:
  """The mean hand's scale bone (middle MCP -> PIP), meters: the scale prior's target for
  data rendered from this hand model (the generator's shapes are centred on its mean)."""
  _, joints = mean_hand(mano_model_path)
  a, b = constants.SCALE_BONE
  return float(np.linalg.norm(joints[a] - joints[b]))


def fit_camera(joints: np.ndarray, keypoints: np.ndarray, confidence: np.ndarray,
               intrinsics: np.ndarray, image_size: int, keep_on_failure: bool = False):
  """Rigid pose of `joints` that best reprojects onto `keypoints` (RANSAC PnP).

  Args:
    joints: [21, 3] model joints, meters.
    keypoints: [21, 2] detections, input pixels (continuous, centres at +0.5, the same
      convention as `intrinsics`, so no half-pixel correction is needed).
    confidence: [21] detection confidences.
    intrinsics: [3, 3] K of the input, pixels.
    image_size: side of the input, pixels.
    keep_on_failure: when PnP fails, return the identity (leave `joints` where they are)
      instead of a frontal hand at 0.6 m.

  Returns:
    (rotation [3, 3], translation [3]) with camera points = rotation @ p + translation.
    Falls back to all keypoints when fewer than 6 are confident.
  """
  keep = confidence >= MIN_CONFIDENCE
  if keep.sum() < 6:
    keep = np.ones_like(keep)
  threshold = contract.at_input_size(REPROJECTION_PX_AT_224, image_size)
  object_points = joints[keep].astype(np.float64)
  image_points = keypoints[keep].astype(np.float64)
  k = intrinsics.astype(np.float64)
  ok, rvec, tvec, inliers = cv2.solvePnPRansac(
      object_points, image_points, k, None, reprojectionError=threshold,
      iterationsCount=200, flags=cv2.SOLVEPNP_EPNP)
  if ok and inliers is not None and len(inliers) >= 4:  # least squares on the inliers
    inliers = inliers[:, 0]
    rvec, tvec = cv2.solvePnPRefineLM(object_points[inliers], image_points[inliers], k,
                                      None, rvec, tvec)
  # Judged by where the fitted joints land (in front of the camera), not by the sign of
  # tvec: object points given in the camera frame may legitimately need a negative one.
  depth = (object_points @ cv2.Rodrigues(rvec)[0].T + tvec[:, 0])[:, 2] if ok else None
  if not ok or not np.all(np.isfinite(tvec)) or np.any(depth <= 0) or np.any(
      depth > MAX_DEPTH_M):
    if keep_on_failure:
      return np.eye(3), np.zeros(3)
    return np.eye(3), np.array([0.0, 0.0, 0.6]) - joints.mean(0)
  return cv2.Rodrigues(rvec)[0], tvec[:, 0]


def template_predictions(records, mano_model_path: Optional[str] = None
                         ) -> Dict[str, np.ndarray]:
  """The baseline's predictions for every record, in the form `evaluate_records` takes.

  Returns:
    {'vertices': [N, 778, 3], 'joints3d': [N, 21, 3] (camera frame, meters),
     'joints2d': [N, 21, 2] (input pixels)}.
  """
  vertices, joints = mean_hand(mano_model_path)
  out = {"vertices": [], "joints3d": []}
  for i in range(len(records)):
    rotation, translation = fit_camera(joints, records.keypoints[i], records.confidence[i],
                                       records.intrinsics[i], records.image_size)
    out["vertices"].append(vertices @ rotation.T + translation)
    out["joints3d"].append(joints @ rotation.T + translation)
  out = {k: np.stack(v).astype(np.float32) for k, v in out.items()}
  out["joints2d"] = project(out["joints3d"], records.intrinsics).astype(np.float32)
  return out


def place_on_keypoints(predictions: Dict[str, np.ndarray], records) -> Dict[str, np.ndarray]:
  """A model's hands moved rigidly onto each record's 2D keypoints by the same PnP fit.

  The template hand gets its camera from the test image's detections; this gives a
  model's predicted hands that same help, so that the comparison isolates what the model
  contributes: the articulated, sized hand.  Its shape, pose and size are untouched (PA
  metrics do not change); only where it sits in the camera frame does.

  Args:
    predictions: 'vertices' [N, 778, 3] and 'joints3d' [N, 21, 3] in the camera frame, m.
    records: `HandRecords` with keypoints, confidence and intrinsics.

  Returns:
    {'vertices', 'joints3d', 'joints2d'} of the moved hands, as `template_predictions`.
  """
  out = {"vertices": [], "joints3d": []}
  for i in range(len(records)):
    joints = predictions["joints3d"][i].astype(np.float64)
    rotation, translation = fit_camera(joints, records.keypoints[i], records.confidence[i],
                                       records.intrinsics[i], records.image_size,
                                       keep_on_failure=True)
    out["joints3d"].append(joints @ rotation.T + translation)
    out["vertices"].append(predictions["vertices"][i] @ rotation.T + translation)
  out = {k: np.stack(v).astype(np.float32) for k, v in out.items()}
  out["joints2d"] = project(out["joints3d"], records.intrinsics).astype(np.float32)
  return out
