"""The pinhole camera in NumPy: projection, the default camera of a photo, and the rigid
fit of a 3D hand to 2D keypoints (PnP).

Camera frame: x right, y down, z forward, meters (OpenCV axes).  Pixel coordinates: u is
the column and v the row; pixel (row r, column c) covers [c, c + 1) x [r, r + 1).
`hand_tf.rendering.camera` holds the same definitions in TensorFlow (for the model,
renderer and losses); this module is what the TF-free deploy path, the data readers and
the reports use.  `tests/test_camera.py` holds the two to each other.
"""

from typing import Optional, Tuple

import cv2
import numpy as np

from hand_tf import contract
from hand_tf.io import InputError

# Points closer than this (meters) are clamped before the perspective division, so that
# points at or behind the camera give large but finite coordinates instead of inf/NaN.
MIN_DEPTH = 1e-4
# Focal length of the default camera, in units of the longer image side: the middle of
# the synthetic generator's range (2.2-2.9), a ~22 degree field of view like a hand crop's.
DEFAULT_FOCAL_PER_SIDE = 2.5


def project(points, intrinsics) -> np.ndarray:
  """Projects camera-frame points to pixels: uv = (K X)[:2] / (K X)[2].

  Args:
    points: `[A1, ..., An, N, 3]` camera-frame points, meters.
    intrinsics: `[A1, ..., An, 3, 3]` K, pixels.

  Returns:
    `[A1, ..., An, N, 2]` pixel coordinates (u, v).
  """
  points = np.asarray(points)
  intrinsics = np.asarray(intrinsics)
  if points.ndim < 2 or points.shape[-1] != 3:
    raise ValueError(f"points must be [..., N, 3], got {points.shape}")
  if intrinsics.shape[-2:] != (3, 3):
    raise ValueError(f"intrinsics must be [..., 3, 3], got {intrinsics.shape}")
  uvw = np.einsum("...ij,...nj->...ni", intrinsics, points)
  return uvw[..., :2] / np.maximum(uvw[..., 2:3], MIN_DEPTH)


def default_intrinsics(height: int, width: int, focal: Optional[float] = None) -> np.ndarray:
  """`[3, 3]` K for a photo of unknown camera: principal point centred, focal `focal`
  pixels (default 2.5 x the longer side)."""
  if focal is None:
    focal = DEFAULT_FOCAL_PER_SIDE * max(height, width)
  return np.array([[focal, 0.0, width / 2.0], [0.0, focal, height / 2.0], [0.0, 0.0, 1.0]],
                  np.float32)


# EXIF's 35 mm equivalent focal length refers to the diagonal of a 36 x 24 mm frame.
FILM_35MM_DIAGONAL_MM = float(np.hypot(36.0, 24.0))


def photo_intrinsics(height: int, width: int, intrinsics=None, focal: Optional[float] = None,
                     exif: Optional[dict] = None) -> Tuple[np.ndarray, str]:
  """`[3, 3]` K of a photo and what it came from, the most specific source first.

  Args:
    height, width: the photo's size, pixels.
    intrinsics: a K the user gave (source "intrinsics").
    focal: a focal length in pixels the user gave (source "focal"; principal point centred).
    exif: `hand_tf.io.read_exif_focal` of the photo: its 35 mm equivalent focal length,
      scaled by the image diagonal (source "exif").

  Returns:
    (K, source), source one of "intrinsics", "focal", "exif", "default" (focal
    `DEFAULT_FOCAL_PER_SIDE` x the longer side).
  """
  if intrinsics is not None:
    return np.asarray(intrinsics, np.float32), "intrinsics"
  if focal is not None:
    return default_intrinsics(height, width, focal), "focal"
  if exif and exif.get("focal_35mm"):
    pixels = exif["focal_35mm"] * float(np.hypot(height, width)) / FILM_35MM_DIAGONAL_MM
    return default_intrinsics(height, width, pixels), "exif"
  return default_intrinsics(height, width), "default"


def check_intrinsics(intrinsics, where: str, height: Optional[float] = None,
                     width: Optional[float] = None) -> np.ndarray:
  """`intrinsics` as float32 `[..., 3, 3]`, or InputError if no pinhole camera has it.

  A K must have positive focal lengths, last row (0, 0, 1), finite entries, and (when
  the image size is given) its principal point inside the image: an all-zero or
  singular K would otherwise train or predict to completion with meaningless geometry.

  Args:
    intrinsics: `[..., 3, 3]` K, pixels.
    where: what to name in the error (file and field, or flag).
    height, width: the image size in pixels, if known.
  """
  k = np.asarray(intrinsics, np.float64)
  if k.shape[-2:] != (3, 3):
    raise InputError(f"{where}: K has shape {list(k.shape)}, expected [..., 3, 3]")
  flat = k.reshape(-1, 3, 3)
  for i, one in enumerate(flat):
    name = where if len(flat) == 1 else f"{where}[{i}]"
    if not np.all(np.isfinite(one)):
      raise InputError(f"{name}: K has non-finite entries")
    if one[0, 0] <= 0 or one[1, 1] <= 0:
      raise InputError(f"{name}: focal lengths must be positive, got fx={one[0, 0]:g}, "
                       f"fy={one[1, 1]:g}")
    if not np.allclose(one[2], (0.0, 0.0, 1.0), atol=1e-6):
      raise InputError(f"{name}: K's last row must be [0, 0, 1], got {one[2].tolist()}")
    cx, cy = one[0, 2], one[1, 2]
    if width is not None and height is not None and not (0 <= cx <= width and 0 <= cy <= height):
      raise InputError(f"{name}: principal point ({cx:g}, {cy:g}) lies outside the "
                       f"{width:g}x{height:g} image")
  return k.astype(np.float32)


# Keypoints below this confidence do not vote in the PnP fit.
MIN_CONFIDENCE = 0.3
# A fit that puts the hand farther than this is a degenerate one (keypoints bunched on a
# few pixels are "explained" by a hand at infinity), not a hand: at 10 m a hand spans
# under 2% of a crop's focal length.
MAX_DEPTH_M = 10.0
# RANSAC inlier threshold, pixels of a 224 px crop (scaled to the input size).
REPROJECTION_PX_AT_224 = 8.0


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


def place_on_keypoints(vertices: np.ndarray, joints: np.ndarray, keypoints: np.ndarray,
                       confidence: np.ndarray, intrinsics: np.ndarray, side: float):
  """A predicted hand moved rigidly so that its joints reproject onto `keypoints`.

  Args:
    vertices: [778, 3] and joints: [21, 3], camera frame, meters.
    keypoints: [21, 2] pixels, in the image `intrinsics` describes.
    confidence: [21].
    intrinsics: [3, 3] K, pixels.
    side: size of the hand's crop in those pixels (scales the RANSAC threshold).

  Returns:
    (vertices, joints) moved; unchanged when no rigid motion fits the keypoints.
  """
  joints = np.asarray(joints, np.float64)
  rotation, translation = fit_camera(joints, keypoints, confidence, intrinsics, side,
                                     keep_on_failure=True)
  return ((np.asarray(vertices) @ rotation.T + translation).astype(np.float32),
          (joints @ rotation.T + translation).astype(np.float32))
