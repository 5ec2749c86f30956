"""One hand in a full image: crop, predict with any runtime, results in image pixels.

Shared by `hand_tf.predict` and `mobile_demo`.  The crop is the square `box`
(x0, y0, side, side) in image pixels; K of the crop is the crop map times K of the image,
so the predicted camera-frame mesh is the hand in the original camera and projects onto
the original image with the original K.
"""

import dataclasses
from typing import Dict, Optional

import cv2
import numpy as np

from hand_tf import camera, mesh_io, visualize
from hand_tf.data import crops
from hand_tf.io import write_json
from mano_tf import constants


@dataclasses.dataclass
class HandResult:
  """Outputs of `hand_tf.serving` for one hand, plus where they were cropped from.

  vertices [778, 3] and joints3d [21, 3]: meters, camera frame; joints2d [21, 2]: pixels
  of the full image; vertex_colors [778, 3] RGB in [0, 1]; box [4] the crop in image
  pixels; intrinsics [3, 3] K of the full image; outputs: every named output (numpy).
  """
  vertices: np.ndarray
  joints3d: np.ndarray
  joints2d: np.ndarray
  vertex_colors: np.ndarray
  box: np.ndarray
  intrinsics: np.ndarray
  outputs: Dict[str, np.ndarray]
  placed_on_keypoints: bool = False


def texture_to_vertex_colors(texture: np.ndarray, faces: np.ndarray) -> np.ndarray:
  """`[778, 3]` colours from per-vertex `[778, 3]` or per-face `[1538, 3]` texture."""
  texture = np.asarray(texture, np.float32)
  if len(texture) == constants.NUM_VERTICES:
    return texture
  # Per-face colours: each vertex takes the mean of the faces around it.
  sums = np.zeros((constants.NUM_VERTICES, 3), np.float32)
  counts = np.zeros((constants.NUM_VERTICES, 1), np.float32)
  for corner in range(3):
    np.add.at(sums, faces[:, corner], texture)
    np.add.at(counts, faces[:, corner], 1.0)
  return sums / np.maximum(counts, 1.0)


def reconstruct(predictor, image: np.ndarray, box: np.ndarray, intrinsics: np.ndarray,
                faces: np.ndarray, keypoints: Optional[np.ndarray] = None,
                confidence: Optional[np.ndarray] = None) -> HandResult:
  """Predicts the hand inside `box` of `image`.

  With `keypoints` (a detector's, in image pixels), the predicted hand is then moved
  rigidly so that its joints reproject onto them (`camera.place_on_keypoints`): the
  network's shape, pose and size, placed where the detector saw the hand.  On synthetic
  held-out sets that placement is far closer to the true camera-frame position than the
  network's own translation at the budgets measured (README, "placed" columns).

  Args:
    predictor: a `hand_tf.predictors.Predictor`.
    image: `[H, W, 3]` uint8 RGB.
    box: `[4]` square crop (x0, y0, side, side), image pixels.
    intrinsics: `[3, 3]` K of `image`, pixels.
    faces: `[1538, 3]` MANO faces (for per-face texture).
    keypoints: optional `[21, 2]` detected keypoints, image pixels.
    confidence: optional `[21]` their confidences (default 1).
  """
  size = predictor.input_size
  crop = crops.crop_image(image, box, size)
  to_crop = crops.crop_matrix(box, size)
  crop_k = (to_crop @ np.asarray(intrinsics, np.float32)).astype(np.float32)
  outputs = {k: v[0] for k, v in predictor.predict(crop[None], crop_k[None]).items()}
  vertices, joints3d = outputs["vertices"], outputs["joints3d"]
  if keypoints is not None:
    confidence = np.ones(len(keypoints)) if confidence is None else confidence
    vertices, joints3d = camera.place_on_keypoints(vertices, joints3d, keypoints, confidence,
                                                   intrinsics, float(box[2]))
  joints2d = camera.project(joints3d, intrinsics).astype(np.float32)
  return HandResult(vertices=vertices, joints3d=joints3d, joints2d=joints2d,
                    vertex_colors=texture_to_vertex_colors(outputs["texture"], faces),
                    box=np.asarray(box, np.float32), intrinsics=np.asarray(intrinsics),
                    outputs=outputs, placed_on_keypoints=keypoints is not None)


def draw_overlay(image: np.ndarray, result: HandResult, faces: np.ndarray,
                 textured: bool = True, alpha: float = 0.8) -> np.ndarray:
  """Shaded mesh (predicted colours or skin tone), keypoints and the crop box."""
  canvas = visualize.draw_mesh(image, result.vertices, faces, result.intrinsics,
                               result.vertex_colors if textured else None, alpha=alpha)
  # Keypoints sized to the image, so that small crops still show the mesh under them.
  radius = max(1, round(min(image.shape[:2]) / 80))
  canvas = visualize.draw_keypoints(canvas, result.joints2d, radius=radius,
                                    thickness=max(1, radius // 2))
  x0, y0, side = (float(v) for v in result.box[:3])
  cv2.rectangle(canvas, (int(round(x0)), int(round(y0))),
                (int(round(x0 + side)), int(round(y0 + side))), (255, 255, 0), 1)
  return canvas


def write_result(prefix: str, result: HandResult, faces: np.ndarray) -> Dict[str, str]:
  """Writes `<prefix>.obj`, `.ply` (vertex colours) and `_joints.json`; returns paths."""
  paths = {"obj": prefix + ".obj", "ply": prefix + ".ply", "joints": prefix + "_joints.json"}
  mesh_io.write_obj(paths["obj"], result.vertices, faces, result.vertex_colors)
  mesh_io.write_ply(paths["ply"], result.vertices, faces, result.vertex_colors)
  write_json(paths["joints"], {
      "keypoint_names": list(constants.KEYPOINT_NAMES),
      "joints3d_m_camera_frame": result.joints3d.tolist(),
      "joints2d_px": result.joints2d.tolist(),
      "crop_box_px": result.box.tolist(), "intrinsics": np.asarray(result.intrinsics).tolist(),
      "pose_axis_angle": result.outputs["pose"].tolist(),
      "shape": result.outputs["shape"].tolist(),
      # The network's own camera; when placed, the joints and mesh above were moved
      # rigidly from it onto the detected keypoints.
      "camera_scale_rotation_translation": result.outputs["camera"].tolist(),
      "placed_on_keypoints": result.placed_on_keypoints,
      "lighting": result.outputs["lighting"].tolist()})
  return paths
