"""The pinhole camera in NumPy: projection and the default camera of a photo.

Camera frame: x right, y down, z forward, meters (OpenCV axes).  Pixel coordinates: u is
the column and v the row; pixel (row r, column c) covers [c, c + 1) x [r, r + 1).
`hand_tf.rendering.camera` holds the same definitions in TensorFlow (for the model,
renderer and losses); this module is what the TF-free deploy path, the data readers and
the reports use.  `tests/test_camera.py` holds the two to each other.
"""

import numpy as np

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


def default_intrinsics(height: int, width: int) -> np.ndarray:
  """`[3, 3]` K for a photo of unknown camera: focal 2.5 x the longer side, centred."""
  focal = DEFAULT_FOCAL_PER_SIDE * max(height, width)
  return np.array([[focal, 0.0, width / 2.0], [0.0, focal, height / 2.0], [0.0, 0.0, 1.0]],
                  np.float32)
