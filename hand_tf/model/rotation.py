"""The hand's global rotation as the network predicts it.

S2HAND's head predicts an axis-angle offset from a fixed root rotation.  Axis-angle
wraps around at 180 degrees (a turn of +pi and one of -pi about the same axis are the
same rotation), so a network regressing it has to jump somewhere near 180 degrees from
the root, and views near there are hard to learn: on the recipe's photographed-like
renders 54% of the needed turns exceed 120 degrees (16% exceed 150), and the network
with this head turned hands the wrong way round as often as not.
The 6D representation (the first two columns of the matrix, orthonormalised; Zhou et
al., "On the Continuity of Rotation Representations in Neural Networks", CVPR 2019) is
continuous everywhere; it is the default for new models, axis-angle stays for runs
trained with it.
"""

import tensorflow as tf

from mano_tf import lbs

REPRESENTATIONS = {"6d": 6, "axis_angle": 3}
# The head's starting output in each representation: no turn from the root rotation.
IDENTITY = {"6d": (1.0, 0.0, 0.0, 0.0, 1.0, 0.0), "axis_angle": None}


def matrix_from_6d(six_d):
  """Rotation matrices from two 3-vectors (Gram-Schmidt).

  Args:
    six_d: `[A1, ..., An, 6]`: the matrix's first column (unnormalised) then a vector in
      the plane of its first two columns.

  Returns:
    `[A1, ..., An, 3, 3]` rotation matrices (determinant +1).
  """
  six_d = tf.convert_to_tensor(six_d)
  if six_d.shape[-1] != 6:
    raise ValueError(f"a 6D rotation has 6 values in its last axis, got {six_d.shape}")
  first = tf.math.l2_normalize(six_d[..., :3], axis=-1, epsilon=1e-12)
  # Gram-Schmidt through cross products (the same matrix): subtracting the projection
  # and squaring it fuses into a SquaredDifference, which int16-activation TFLite lacks.
  third = tf.math.l2_normalize(cross(first, six_d[..., 3:]), axis=-1, epsilon=1e-12)
  return tf.stack([first, cross(third, first), third], axis=-1)


def cross(a, b):
  """`[A1, ..., An, 3]` cross product.  By hand: TFLite has no Cross op."""
  ax, ay, az = tf.unstack(a, axis=-1)
  bx, by, bz = tf.unstack(b, axis=-1)
  return tf.stack([ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx], axis=-1)


def check_representation(representation: str) -> None:
  """ValueError unless `representation` is one of REPRESENTATIONS."""
  if representation not in REPRESENTATIONS:
    raise ValueError(f"rotation representation must be one of {tuple(REPRESENTATIONS)}, "
                     f"got {representation!r}")


def to_matrix(rotation, representation: str):
  """`[A1, ..., An, 3 or 6]` in `representation` -> `[A1, ..., An, 3, 3]` matrices."""
  check_representation(representation)
  if representation == "6d":
    return matrix_from_6d(rotation)
  return lbs.axis_angle_to_matrix(rotation)


def axis_angle_from_matrix(matrix):
  """`[A1, ..., An, 3, 3]` rotation matrices -> `[A1, ..., An, 3]` axis x angle, radians,
  angle in [0, pi] (what the model reports as its rotation, whichever representation it
  predicts).

  Through the quaternion, taking the best-conditioned of Shepperd's four formulas per
  matrix.  By hand, not tensorflow_graphics': that one reads the trace with an op TFLite
  lacks (MatrixDiagPartV3).  No gradient is needed: the losses read the matrix.
  """
  r = [[matrix[..., i, j] for j in range(3)] for i in range(3)]
  trace = r[0][0] + r[1][1] + r[2][2]

  def root(x):  # 4x the largest quaternion component; the other branches are discarded
    return 2.0 * tf.sqrt(tf.maximum(x, 1e-12))

  s0 = root(1.0 + trace)
  s1 = root(1.0 + r[0][0] - r[1][1] - r[2][2])
  s2 = root(1.0 + r[1][1] - r[0][0] - r[2][2])
  s3 = root(1.0 + r[2][2] - r[0][0] - r[1][1])
  branches = [
      (0.25 * s0, (r[2][1] - r[1][2]) / s0, (r[0][2] - r[2][0]) / s0, (r[1][0] - r[0][1]) / s0),
      ((r[2][1] - r[1][2]) / s1, 0.25 * s1, (r[0][1] + r[1][0]) / s1, (r[0][2] + r[2][0]) / s1),
      ((r[0][2] - r[2][0]) / s2, (r[0][1] + r[1][0]) / s2, 0.25 * s2, (r[1][2] + r[2][1]) / s2),
      ((r[1][0] - r[0][1]) / s3, (r[0][2] + r[2][0]) / s3, (r[1][2] + r[2][1]) / s3, 0.25 * s3)]
  # The branch with the largest root wins.  A running maximum rather than an ArgMax:
  # int16-activation TFLite (16x8) cannot calibrate ArgMax's integer output.
  q, largest = tf.stack(branches[0], axis=-1), s0  # (w, x, y, z)
  for branch, s in zip(branches[1:], (s1, s2, s3)):
    q = tf.where((s > largest)[..., None], tf.stack(branch, axis=-1), q)
    largest = tf.maximum(largest, s)
  q = tf.where(q[..., :1] < 0.0, -q, q)  # q and -q are the same turn: keep w >= 0
  w, xyz = q[..., 0], q[..., 1:]
  half_sine = tf.sqrt(tf.reduce_sum(tf.square(xyz), -1))
  angle = 2.0 * tf.atan2(half_sine, w)
  # angle / sin(angle / 2) -> 2 / w for small turns (no 0 / 0).
  factor = tf.where(half_sine > 1e-6, angle / tf.maximum(half_sine, 1e-6),
                    2.0 / tf.maximum(w, 1e-6))
  return xyz * factor[..., None]
