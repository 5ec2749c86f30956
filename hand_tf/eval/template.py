"""The template-hand baseline: the mean hand, placed in the camera by fitting to 2D keypoints.

It is what a model that learnt nothing about articulation or shape would output, given
the same 2D detections the self-supervised training sees: every metric of a trained
model is read against it.  The mean hand is MANO's mean pose (zero PCA coefficients,
`flat_hand_mean=False`) and mean shape; its rotation and translation come from
OpenCV's RANSAC PnP on the detections of each image, so its camera-frame depth follows
from the mean hand's size (the scale/depth ambiguity a single view leaves).
"""

from typing import Dict, Optional

import numpy as np

from hand_tf.camera import fit_camera, project
from hand_tf.camera import place_on_keypoints as place_on_keypoints_one
from mano_tf import constants


def mean_hand(mano_model_path: Optional[str] = None):
  """(vertices [778, 3], joints [21, 3]) of the mean hand in MANO's frame, meters."""
  from mano_tf.layer import ManoLayer
  return mean_hand_of(ManoLayer(model_path=mano_model_path, use_pca=True,
                                ncomps=constants.NUM_PCA_COMPONENTS, flat_hand_mean=False))


def mean_hand_of(layer):
  """(vertices [778, 3], joints [21, 3]) of a PCA `ManoLayer` with MANO's mean pose
  (`flat_hand_mean=False`) at zero coefficients, shape and root rotation, meters."""
  pose = np.zeros((1, 3 + layer.ncomps), np.float32)
  vertices, joints = layer(pose, np.zeros((1, constants.NUM_BETAS), np.float32))
  return np.asarray(vertices)[0], np.asarray(joints)[0]


def scale_bone_length(mano_model_path: Optional[str] = None) -> float:
  """The mean hand's scale bone (middle MCP -> PIP), meters: the scale prior's target for
  data rendered from this hand model (the generator's shapes are centred on its mean)."""
  _, joints = mean_hand(mano_model_path)
  a, b = constants.SCALE_BONE
  return float(np.linalg.norm(joints[a] - joints[b]))


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
  """A model's hands moved rigidly onto each record's 2D keypoints by the template's fit.

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
    vertices, joints = place_on_keypoints_one(
        predictions["vertices"][i], predictions["joints3d"][i], records.keypoints[i],
        records.confidence[i], records.intrinsics[i], records.image_size)
    out["vertices"].append(vertices)
    out["joints3d"].append(joints)
  out = {k: np.stack(v).astype(np.float32) for k, v in out.items()}
  out["joints2d"] = project(out["joints3d"], records.intrinsics).astype(np.float32)
  return out


def shape_against_mean_hand(truth_joints3d: np.ndarray, joints3d: np.ndarray,
                            mano_model_path: Optional[str] = None) -> Dict[str, float]:
  """Predictions against the template hand in shape: per-image PA-MPJPE (mm), their
  paired difference and its 95% bootstrap interval (`metrics.paired_difference`;
  negative: the predictions are better).

  Args:
    truth_joints3d: `[N, 21, 3]` ground-truth joints, meters.
    joints3d: `[N, 21, 3]` predicted joints, meters (any frame: Procrustes aligns them).
  """
  from hand_tf.eval import metrics

  def per_image(joints):
    aligned = metrics.procrustes_align(truth_joints3d, joints)
    return 1000.0 * metrics.point_errors(truth_joints3d, aligned).mean(axis=1)

  # Procrustes alignment undoes any placement, so the template's shape error needs the
  # mean hand alone, not its PnP fits.
  mean_joints = np.broadcast_to(mean_hand(mano_model_path)[1], np.shape(truth_joints3d))
  return metrics.paired_difference(per_image(np.asarray(joints3d, np.float64)),
                                   per_image(mean_joints))
