"""`HandRecords`: the dataset-independent table every reader returns.

One row per image.  Geometry is already expressed in the coordinates of the model input
(the crop resized to `image_size`): intrinsics and keypoints are in those pixels, and
`crop_boxes` says which part of the source image to cut out (the tf.data pipeline does
the cutting).  Keypoints follow the 21-point FreiHAND/OpenPose order.
"""

import dataclasses
from typing import List, Optional

import numpy as np

from hand_tf.io import InputError
from mano_tf import constants


@dataclasses.dataclass
class HandRecords:
  """Columns of a hand dataset (N rows).

  Attributes:
    image_paths: N source image files.
    image_size: side of the (square) model input, pixels.
    crop_boxes: [N, 4] float (x0, y0, side_x, side_y) of the source region mapped onto
      the model input, in source pixels (continuous coordinates, pixel centres at +0.5).
    intrinsics: [N, 3, 3] K of the model input (after crop and resize).
    keypoints: [N, 21, 2] 2D supervision (detections, or ground truth), input pixels.
    confidence: [N, 21] per-keypoint confidence in [0, 1].
    joints3d: optional [N, 21, 3] ground-truth joints, meters, camera frame.
    vertices: optional [N, 778, 3] ground-truth mesh, meters, camera frame.
    mask_paths: optional N hand-mask files (same crop as the image).
  """
  image_paths: List[str]
  image_size: int
  crop_boxes: np.ndarray
  intrinsics: np.ndarray
  keypoints: np.ndarray
  confidence: np.ndarray
  joints3d: Optional[np.ndarray] = None
  vertices: Optional[np.ndarray] = None
  mask_paths: Optional[List[str]] = None

  def __post_init__(self):
    n = len(self.image_paths)
    expected = {"crop_boxes": (n, 4), "intrinsics": (n, 3, 3),
                "keypoints": (n, constants.NUM_KEYPOINTS, 2),
                "confidence": (n, constants.NUM_KEYPOINTS),
                "joints3d": (n, constants.NUM_KEYPOINTS, 3),
                "vertices": (n, constants.NUM_VERTICES, 3)}
    for name, shape in expected.items():
      value = getattr(self, name)
      if value is None:
        continue
      value = np.asarray(value, np.float32)
      if value.shape != shape:
        raise InputError(f"HandRecords.{name} has shape {value.shape}, expected {shape}")
      if not np.all(np.isfinite(value)):
        raise InputError(f"HandRecords.{name} contains NaN or infinite values")
      setattr(self, name, value)
    if self.mask_paths is not None and len(self.mask_paths) != n:
      raise InputError(f"{len(self.mask_paths)} mask paths for {n} images")

  def __len__(self):
    return len(self.image_paths)

  def subset(self, indices) -> "HandRecords":
    indices = np.asarray(indices)
    pick = lambda a: None if a is None else a[indices]  # noqa: E731
    return HandRecords(
        image_paths=[self.image_paths[i] for i in indices], image_size=self.image_size,
        crop_boxes=self.crop_boxes[indices], intrinsics=self.intrinsics[indices],
        keypoints=self.keypoints[indices], confidence=self.confidence[indices],
        joints3d=pick(self.joints3d), vertices=pick(self.vertices),
        mask_paths=None if self.mask_paths is None else
        [self.mask_paths[i] for i in indices])


def as_array(value, path, field, shape, dtype=np.float32):
  """Converts a JSON field to an array of the given shape (-1 = any), or raises InputError."""
  try:
    array = np.asarray(value, dtype=dtype)
  except (TypeError, ValueError) as e:
    raise InputError(f"{path}: field '{field}' is not numeric ({e})") from e
  if array.ndim != len(shape) or any(s != -1 and s != a for s, a in zip(shape, array.shape)):
    raise InputError(f"{path}: field '{field}' has shape {array.shape}, expected "
                    f"{tuple('N' if s == -1 else s for s in shape)}")
  if not np.all(np.isfinite(array)):
    raise InputError(f"{path}: field '{field}' contains NaN or infinite values")
  return array
