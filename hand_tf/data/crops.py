"""Square hand crops and what they do to intrinsics and keypoints (NumPy)."""

from typing import Optional

import cv2
import numpy as np

from hand_tf.io import InputError

# Keypoints below this confidence do not place a crop; a crop needs 3 above it.
MIN_KEYPOINT_CONFIDENCE = 0.1


def square_box_around(points, margin_px: float = 10.0, scale: float = 1.0 / 0.85,
                      min_side: float = 50.0, max_side: float = 640.0) -> np.ndarray:
  """A square (x0, y0, side, side) centred on 2D points, as S2HAND crops HO-3D.

  The side is twice the largest half-extent of the points (plus `margin_px`) times
  `scale` (S2HAND draws it from [0.8, 0.9)^-1 in training; 1/0.85 is its middle),
  clamped to [min_side, max_side].

  Args:
    points: [N, 2] pixels (x = column, y = row).
  """
  points = np.asarray(points, np.float64)
  low, high = points.min(axis=0) - margin_px, points.max(axis=0) + margin_px
  center = 0.5 * (low + high)
  side = float(np.clip(2.0 * np.max(high - center) * scale, min_side, max_side))
  return np.array([center[0] - side / 2, center[1] - side / 2, side, side], np.float32)


def box_from_keypoints(keypoints: np.ndarray, confidence: Optional[np.ndarray] = None,
                       min_confidence: float = MIN_KEYPOINT_CONFIDENCE) -> Optional[np.ndarray]:
  """The training crop around detected keypoints, or None when too few are confident."""
  keypoints = np.asarray(keypoints, np.float32)
  if confidence is not None:
    keypoints = keypoints[np.asarray(confidence) >= min_confidence]
  if len(keypoints) < 3:
    return None
  return square_box_around(keypoints)


def whole_image_box(height: int, width: int) -> np.ndarray:
  """The centred square covering the whole image (padding the shorter side)."""
  side = float(max(height, width))
  return np.array([(width - side) / 2, (height - side) / 2, side, side], np.float32)


def parse_box(box, height: int, width: int, where: str = "box") -> np.ndarray:
  """A user's square crop as (x0, y0, side, side), or InputError naming `where`.

  Args:
    box: 3 numbers (x0, y0, side) or 4 (x0, y0, side, side), source pixels; may be
      strings (a flag's list).
    height, width: the image size; the box must overlap the image.
  """
  values = list(box)
  try:
    numbers = [float(v) for v in values]
  except (TypeError, ValueError):
    raise InputError(f"{where}: {values} is not x0,y0,side in pixels") from None
  if len(numbers) not in (3, 4) or (len(numbers) == 4 and numbers[2] != numbers[3]):
    raise InputError(f"{where}: {values} is not x0,y0,side in pixels (a square)")
  x0, y0, side = numbers[:3]
  if not np.all(np.isfinite(numbers)) or side <= 0:
    raise InputError(f"{where}: side must be a positive number of pixels, got {side:g}")
  if x0 >= width or y0 >= height or x0 + side <= 0 or y0 + side <= 0:
    raise InputError(f"{where}: ({x0:g}, {y0:g}, side {side:g}) lies outside the "
                     f"{width}x{height} image")
  return np.array([x0, y0, side, side], np.float32)


def crop_matrix(box, output_size: int) -> np.ndarray:
  """[3, 3] map from source pixels to pixels of the crop resized to `output_size`."""
  x0, y0, sx, sy = [float(v) for v in box]
  return np.array([[output_size / sx, 0, -x0 * output_size / sx],
                   [0, output_size / sy, -y0 * output_size / sy],
                   [0, 0, 1]], np.float32)


def apply_to_points(matrix, points) -> np.ndarray:
  """Applies a [3, 3] affine map to [..., 2] points."""
  points = np.asarray(points, np.float32)
  return points @ matrix[:2, :2].T + matrix[:2, 2]


def crop_image(image: np.ndarray, box, output_size: int) -> np.ndarray:
  """Crops the square `box` (x0, y0, side, side; source pixels) out of `image`, resized.

  Areas outside the image are black.  Uses the continuous pixel convention of
  `crop_matrix` (pixel c covers [c, c + 1)); OpenCV indexes pixel centres, hence the
  half-pixel shift.

  Training (`data.pipeline`), evaluation, export and inference all crop through this
  function, so the network sees the same pixels in each.

  Args:
    image: `[H, W, C]` uint8.

  Returns:
    `[output_size, output_size, C]` uint8 crop.
  """
  channels = image.shape[2:]  # OpenCV drops a single channel; it is put back below
  matrix = crop_matrix(box, output_size).astype(np.float64)[:2]
  matrix[:, 2] += 0.5 * matrix[:, :2].sum(axis=1) - 0.5
  # Shrinking by more than 2x aliases with bilinear sampling; INTER_AREA is not
  # available to warpAffine, so blur first (as a resize with antialiasing would).
  shrink = float(box[2]) / output_size
  if shrink > 2.0:
    sigma = 0.5 * shrink
    image = cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, sigmaY=sigma)
  crop = cv2.warpAffine(image, matrix, (output_size, output_size), flags=cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_CONSTANT, borderValue=0)
  return crop.reshape(output_size, output_size, *channels)
