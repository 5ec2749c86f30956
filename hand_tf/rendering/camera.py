"""Pinhole camera in OpenCV convention, in TensorFlow: what the model, renderer and losses use.

Camera frame: x right, y down, z forward, meters.  Pixel coordinates: u is the column and
v the row; pixel (row r, column c) covers [c, c + 1) x [r, r + 1), so its centre is at
(c + 0.5, r + 0.5).  A point projected with `project` at (u, v) is drawn by the renderer
in pixel (floor(v), floor(u)).  `hand_tf.camera` is the same in NumPy (tested equal).
"""

from typing import Tuple

import tensorflow as tf
from tensorflow_graphics.util import shape

from hand_tf.camera import DEFAULT_FOCAL_PER_SIDE, MIN_DEPTH


def project(points: tf.Tensor, intrinsics: tf.Tensor) -> tf.Tensor:
  """Projects camera-frame points to pixels: uv = (K X)[:2] / (K X)[2].

  Written here rather than with tfg's `camera.perspective.project` because that one
  takes no skew and divides by z unguarded.

  Args:
    points: `[A1, ..., An, N, 3]` camera-frame points in meters.
    intrinsics: `[A1, ..., An, 3, 3]` camera matrices K in pixels.

  Returns:
    `[A1, ..., An, N, 2]` pixel coordinates (u, v).
  """
  points = tf.convert_to_tensor(points)
  intrinsics = tf.convert_to_tensor(intrinsics, dtype=points.dtype)
  shape.check_static(points, tensor_name="points", has_rank_greater_than=1,
                     has_dim_equals=(-1, 3))
  shape.check_static(intrinsics, tensor_name="intrinsics", has_rank_greater_than=1,
                     has_dim_equals=((-1, 3), (-2, 3)))
  uvw = tf.einsum("...ij,...nj->...ni", intrinsics, points)
  return uvw[..., :2] / tf.maximum(uvw[..., 2:3], MIN_DEPTH)


def back_project(pixels: tf.Tensor, depth: tf.Tensor, intrinsics: tf.Tensor) -> tf.Tensor:
  """Camera-frame points at `depth` that `project` maps to `pixels` (its inverse).

  Any affine pixel map in K's top two rows (skew, rotation-augmented crops) is undone.
  The 2 x 2 inverse is written out: TFLite has no builtin for tf.linalg.solve/inv.

  Args:
    pixels: `[A1, ..., An, 2]` pixel coordinates (u, v).
    depth: `[A1, ..., An]` z of the points, meters.
    intrinsics: `[A1, ..., An, 3, 3]` camera matrices K.

  Returns:
    `[A1, ..., An, 3]` camera-frame points, meters.
  """
  pixels = tf.convert_to_tensor(pixels)
  intrinsics = tf.convert_to_tensor(intrinsics, dtype=pixels.dtype)
  depth = tf.convert_to_tensor(depth, dtype=pixels.dtype)
  shape.check_static(pixels, tensor_name="pixels", has_dim_equals=(-1, 2))
  shape.check_static(intrinsics, tensor_name="intrinsics", has_rank_greater_than=1,
                     has_dim_equals=((-1, 3), (-2, 3)))
  a, b, c = intrinsics[..., 0, 0], intrinsics[..., 0, 1], intrinsics[..., 0, 2]
  d, e, f = intrinsics[..., 1, 0], intrinsics[..., 1, 1], intrinsics[..., 1, 2]
  # K [x, y, z] = z [u, v, 1]  =>  [x, y] = z K2x2^-1 ([u, v] - K[:2, 2]).
  du, dv = (pixels[..., 0] - c) * depth, (pixels[..., 1] - f) * depth
  det = a * e - b * d
  return tf.stack([(e * du - b * dv) / det, (a * dv - d * du) / det, depth], axis=-1)


def default_intrinsics(height, width, batch) -> tf.Tensor:
  """`[batch, 3, 3]` K of photos of unknown camera (see `hand_tf.camera.default_intrinsics`).

  Args:
    height, width: scalar image size, pixels (tensors allowed).
    batch: scalar number of images.
  """
  height, width = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
  focal = DEFAULT_FOCAL_PER_SIDE * tf.maximum(height, width)
  k = tf.stack([focal, 0.0, width / 2, 0.0, focal, height / 2, 0.0, 0.0, 1.0])
  return tf.broadcast_to(tf.reshape(k, [1, 3, 3]), [batch, 3, 3])


def intrinsics_to_clip(intrinsics: tf.Tensor, image_size: Tuple[int, int],
                       near: float = 0.01, far: float = 10.0) -> tf.Tensor:
  """OpenGL-style projection matrix that maps camera points to clip space.

  NDC x = 2 u / W - 1 and NDC y = 2 v / H - 1 (y grows with the row, as the tfg
  rasterizer's rows do), NDC z in [-1, 1] between `near` and `far`, clip w = depth.

  Args:
    intrinsics: `[A1, ..., An, 3, 3]` camera matrices K in pixels.
    image_size: (height, width) in pixels.
    near: near clipping distance, meters.
    far: far clipping distance, meters.

  Returns:
    `[A1, ..., An, 4, 4]` matrices.
  """
  intrinsics = tf.convert_to_tensor(intrinsics)
  shape.check_static(intrinsics, tensor_name="intrinsics", has_rank_greater_than=1,
                     has_dim_equals=((-1, 3), (-2, 3)))
  height, width = float(image_size[0]), float(image_size[1])
  # K may be any affine pixel map (e.g. after an in-plane rotation augmentation), so
  # both of its first rows are used in full; its last row must be (0, 0, 1).
  k0, k1 = intrinsics[..., 0, :], intrinsics[..., 1, :]
  zero = tf.zeros_like(k0[..., :1])
  one = tf.ones_like(zero)
  offset = tf.concat([zero, zero, one], axis=-1)  # subtracts w: NDC = 2 u / W - 1
  rows = [
      tf.concat([2.0 * k0 / width - offset, zero], axis=-1),
      tf.concat([2.0 * k1 / height - offset, zero], axis=-1),
      tf.concat([zero, zero, (far + near) / (far - near) * one,
                 -2.0 * far * near / (far - near) * one], axis=-1),
      tf.concat([zero, zero, one, zero], axis=-1),
  ]
  return tf.stack(rows, axis=-2)
