"""A hand in a full image: crop, predict with any runtime, results in image pixels.

Shared by the Python API (`hand_tf.api`), `hand_tf.predict` and `mobile_demo`.  The
crop is the square `box` (x0, y0, side, side) in image pixels; K of the crop is the crop
map times K of the image, so the predicted camera-frame mesh is the hand in the original
camera and projects onto the original image with the original K.  A left hand goes
through the right-hand network mirrored (`hand_tf.mirror`).
"""

import dataclasses
import os
from typing import Dict, Optional, Sequence

import cv2
import numpy as np

from hand_tf import camera, mesh_io, mirror, visualize
from hand_tf.data import crops
from hand_tf.io import InputError, write_json
from mano_tf import constants

# The crop box and label of a hand in overlays, by side (RGB).
BOX_COLORS = {"right": (255, 255, 0), "left": (0, 255, 255)}

@dataclasses.dataclass
class Hand:
  """One reconstructed hand: what `hand_tf.HandReconstructor` returns, per hand.

  Attributes:
    vertices: [778, 3] mesh, meters, camera frame (x right, y down, z forward).
    faces: [1538, 3] triangles of the mesh (vertex indices), facing outwards (a left
      hand's are the right hand's with the winding reversed).
    joints3d: [21, 3] joints, meters, camera frame (FreiHAND order).
    joints2d: [21, 2] their projection, pixels of the full image.
    vertex_colors: [778, 3] predicted RGB texture in [0, 1].
    box: [4] the square crop (x0, y0, side, side) the network saw, image pixels.
    intrinsics: [3, 3] K of the full image, pixels.
    outputs: every network output (numpy; see `hand_tf.contract.OUTPUT_UNITS`).
    keypoints, keypoint_confidence: [21, 2] and [21] the detector's keypoints (image
      pixels), or None when the crop came from elsewhere.
    placed_on_keypoints: the mesh was moved rigidly onto `keypoints` (see `reconstruct`).
    side: "right" or "left"; a left hand's pose and shape are MANO's left model's.
    detection_score: the detector's confidence in this hand, or None.
    refinement: after `hand_tf.refine`, the 2D error to the keypoints before and after
      (image pixels) and the time it took; None for the network's own hand.
  """
  vertices: np.ndarray
  faces: np.ndarray
  joints3d: np.ndarray
  joints2d: np.ndarray
  vertex_colors: np.ndarray
  box: np.ndarray
  intrinsics: np.ndarray
  outputs: Dict[str, np.ndarray]
  keypoints: Optional[np.ndarray] = None
  keypoint_confidence: Optional[np.ndarray] = None
  placed_on_keypoints: bool = False
  side: str = "right"
  detection_score: Optional[float] = None
  refinement: Optional[dict] = None

  @property
  def pose(self) -> np.ndarray:
    """[16, 3] MANO axis-angle pose, radians (the fixed root first)."""
    return self.outputs["pose"]

  @property
  def shape(self) -> np.ndarray:
    """[10] MANO shape coefficients."""
    return self.outputs["shape"]

  @property
  def camera(self) -> np.ndarray:
    """[7] the network's own camera: scale, axis-angle rotation [3], translation [3] m."""
    return self.outputs["camera"]

  @property
  def lighting(self) -> np.ndarray:
    """[11] the predicted lighting."""
    return self.outputs["lighting"]

  def draw(self, image: np.ndarray, textured: bool = True) -> np.ndarray:
    """`image` ([H, W, 3] uint8 RGB) with the mesh, joints, crop box and side drawn."""
    return draw_hands(image, [self], textured)

  def save(self, path: str) -> str:
    """Writes the hand by extension: .obj or .ply (mesh with vertex colours) or .json
    (joints, pose, shape, camera, lighting); returns `path`."""
    extension = os.path.splitext(path)[1].lower()
    if extension == ".obj":
      mesh_io.write_obj(path, self.vertices, self.faces, self.vertex_colors)
    elif extension == ".ply":
      mesh_io.write_ply(path, self.vertices, self.faces, self.vertex_colors)
    elif extension == ".json":
      write_json(path, self.to_json())
    else:
      raise InputError(f"{path}: save a hand as .obj, .ply or .json")
    return path

  def to_json(self) -> dict:
    return {
        "side": self.side,
        "detection_score": None if self.detection_score is None else float(
            self.detection_score),
        "keypoint_names": list(constants.KEYPOINT_NAMES),
        "joints3d_m_camera_frame": self.joints3d.tolist(),
        "joints2d_px": self.joints2d.tolist(),
        "crop_box_px": self.box.tolist(), "intrinsics": np.asarray(self.intrinsics).tolist(),
        "detected_keypoints_px": None if self.keypoints is None else self.keypoints.tolist(),
        "detected_keypoint_confidence": (None if self.keypoint_confidence is None
                                         else self.keypoint_confidence.tolist()),
        "pose_axis_angle": self.pose.tolist(), "shape": self.shape.tolist(),
        # The network's own camera; when placed, the joints and mesh above were moved
        # rigidly from it onto the detected keypoints.
        "camera_scale_rotation_translation": self.camera.tolist(),
        "placed_on_keypoints": self.placed_on_keypoints, "refinement": self.refinement,
        "lighting": self.lighting.tolist()}


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
                confidence: Optional[np.ndarray] = None, place: bool = True,
                side: str = "right", detection_score: Optional[float] = None) -> Hand:
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
    faces: `[1538, 3]` the right MANO model's faces.
    keypoints: optional `[21, 2]` detected keypoints, image pixels.
    confidence: optional `[21]` their confidences (default 1).
    place: with `keypoints`, move the hand onto them (False: the network's own camera).
    side: "right", or "left" to predict through the mirror (`hand_tf.mirror`).
    detection_score: the detector's confidence, kept in the result.
  """
  if side not in ("right", "left"):
    raise ValueError(f"side must be 'right' or 'left', got {side!r}")
  size = predictor.input_size
  crop = crops.crop_image(image, box, size)
  to_crop = crops.crop_matrix(box, size)
  crop_k = (to_crop @ np.asarray(intrinsics, np.float32)).astype(np.float32)
  if side == "left":
    crop, crop_k = mirror.mirror_image(crop), mirror.mirror_intrinsics(crop_k, size)
    faces = mirror.mirror_faces(faces)
  outputs = {k: v[0] for k, v in predictor.predict(crop[None], crop_k[None]).items()}
  if side == "left":
    outputs = mirror.mirror_outputs(outputs, size)
  vertices, joints3d = outputs["vertices"], outputs["joints3d"]
  if keypoints is not None:
    keypoints = np.asarray(keypoints, np.float32)
    confidence = (np.ones(len(keypoints), np.float32) if confidence is None
                  else np.asarray(confidence, np.float32))
    if place:
      vertices, joints3d = camera.place_on_keypoints(vertices, joints3d, keypoints,
                                                     confidence, intrinsics, float(box[2]))
  joints2d = camera.project(joints3d, intrinsics).astype(np.float32)
  return Hand(vertices=vertices, faces=np.asarray(faces), joints3d=joints3d,
              joints2d=joints2d,
              vertex_colors=texture_to_vertex_colors(outputs["texture"], faces),
              box=np.asarray(box, np.float32), intrinsics=np.asarray(intrinsics),
              outputs=outputs, keypoints=keypoints, keypoint_confidence=confidence,
              placed_on_keypoints=keypoints is not None and place, side=side,
              detection_score=detection_score)


def draw_hands(image: np.ndarray, hands: Sequence[Hand], textured: bool = True,
               alpha: float = 0.8) -> np.ndarray:
  """`image` with every hand drawn where it is: shaded meshes (predicted colours or a skin
  tone; the farther hand first), then each hand's keypoints, crop box and side.

  Args:
    image: `[H, W, 3]` uint8 RGB, the photo the hands were reconstructed in.
    hands: `Hand`s whose intrinsics are this image's.
  """
  canvas = image.copy()  # the one copy: everything below draws onto it
  for hand in sorted(hands, key=lambda h: -float(np.median(h.vertices[:, 2]))):
    visualize.paint_mesh(canvas, hand.vertices, hand.faces, hand.intrinsics,
                         hand.vertex_colors if textured else None, alpha=alpha)
  # Keypoints and labels sized to the image, so that small crops still show the mesh.
  radius = max(1, round(min(image.shape[:2]) / 80))
  for hand in hands:
    visualize.paint_keypoints(canvas, hand.joints2d, radius=radius,
                              thickness=max(1, radius // 2))
    x0, y0, side = (int(round(float(v))) for v in hand.box[:3])
    cv2.rectangle(canvas, (x0, y0), (x0 + side, y0 + side), BOX_COLORS[hand.side], 1)
    scale = max(0.35, min(image.shape[:2]) / 600)
    label = hand.side if hand.detection_score is None else (
        f"{hand.side} {hand.detection_score:.2f}")
    (_, text_height), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    cv2.putText(canvas, label, (max(x0, 0) + 2, max(y0, 0) + text_height + 2),
                cv2.FONT_HERSHEY_SIMPLEX, scale, BOX_COLORS[hand.side], 1, cv2.LINE_AA)
  return canvas


def write_hands(prefix: str, hands: Sequence[Hand], about: Optional[dict] = None) -> list:
  """Writes `<prefix>_hand<i>_<side>.obj` and `.ply` (vertex colours) per hand and
  `<prefix>_hands.json`: `about` (e.g. the image and the camera's source) and, per hand,
  `Hand.to_json` with its mesh files.  Returns the paths written."""
  written, listed = [], []
  for index, hand in enumerate(hands):
    meshes = [hand.save(f"{prefix}_hand{index}_{hand.side}{ext}") for ext in (".obj", ".ply")]
    written += meshes
    listed.append({**hand.to_json(), "meshes": [os.path.basename(m) for m in meshes]})
  path = prefix + "_hands.json"
  write_json(path, {**(about or {}), "hands": listed})
  return [*written, path]
