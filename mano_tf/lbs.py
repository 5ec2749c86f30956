"""Linear blend skinning for MANO: small pure functions over batched tensors.

Every function takes a batch dimension B first; points are in meters, rotations are
axis-angle vectors in radians (direction = axis, norm = angle, right-handed).
"""

from typing import Sequence, Tuple

import numpy as np
import tensorflow as tf
from tensorflow_graphics.geometry.transformation import rotation_matrix_3d
from tensorflow_graphics.util import shape

# Below this angle (radians) the axis of an axis-angle vector is numerically meaningless;
# the epsilon keeps the norm differentiable at the zero rotation.
_ANGLE_EPSILON = 1e-8


def axis_angle_to_matrix(axis_angle: tf.Tensor) -> tf.Tensor:
  """Converts axis-angle vectors to rotation matrices (Rodrigues' formula).

  Safe at the zero rotation: the value is the identity and the gradient is finite (it
  equals the derivative of the skew-symmetric matrix, as it should).

  Args:
    axis_angle: A tensor of shape `[A1, ..., An, 3]`; the direction is the rotation axis
      and the norm the angle in radians.

  Returns:
    A tensor of shape `[A1, ..., An, 3, 3]` of rotation matrices.
  """
  axis_angle = tf.convert_to_tensor(axis_angle)
  shape.check_static(axis_angle, tensor_name="axis_angle", has_dim_equals=(-1, 3))
  angle = tf.sqrt(tf.reduce_sum(tf.square(axis_angle), axis=-1, keepdims=True)
                  + _ANGLE_EPSILON ** 2)
  # axis has norm < 1 only at angles ~1e-8, where sin(angle) * axis = axis_angle still
  # holds to first order, so the matrix and its derivative stay correct.
  return rotation_matrix_3d.from_axis_angle(axis_angle / angle, angle)


def blend_shapes(betas: tf.Tensor, template: tf.Tensor, shapedirs: tf.Tensor) -> tf.Tensor:
  """Adds shape blend shapes to the template.

  Args:
    betas: `[B, S]` shape coefficients.
    template: `[V, 3]` rest vertices.
    shapedirs: `[V, 3, S]` blend directions.

  Returns:
    `[B, V, 3]` shaped rest vertices.
  """
  return template + tf.einsum("bs,vcs->bvc", betas, shapedirs)


def pose_feature(rotations: tf.Tensor) -> tf.Tensor:
  """Flattens (R_k - I) of the non-root joints, the input of the pose correctives.

  Args:
    rotations: `[B, J, 3, 3]` local joint rotations, root first.

  Returns:
    `[B, 9 * (J - 1)]`, row-major per joint.
  """
  batch = tf.shape(rotations)[0]
  num_joints = rotations.shape[1]
  eye = tf.eye(3, dtype=rotations.dtype)
  return tf.reshape(rotations[:, 1:] - eye, [batch, 9 * (num_joints - 1)])


def joint_levels(parents: Sequence[int]) -> Tuple[Tuple[np.ndarray, np.ndarray], ...]:
  """Groups non-root joints by depth in the tree, so each depth is one batched matmul.

  Args:
    parents: parent index of each joint, -1 for the root (index 0).

  Returns:
    A tuple over depths 1, 2, ... of (joint indices, their parent indices).
  """
  parents = np.asarray(parents)
  depth = np.zeros(len(parents), dtype=np.int64)
  for j in range(1, len(parents)):
    depth[j] = depth[parents[j]] + 1
  return tuple((np.flatnonzero(depth == d), parents[depth == d])
               for d in range(1, depth.max() + 1))


def forward_kinematics(rotations: tf.Tensor, rest_joints: tf.Tensor,
                       parents: Sequence[int]) -> Tuple[tf.Tensor, tf.Tensor]:
  """Composes local joint rotations along the kinematic tree.

  Each joint k rotates its subtree about its rest position J_k; the root's rest position
  stays fixed.

  Args:
    rotations: `[B, J, 3, 3]` local rotations, expressed in the rest (world) axes.
    rest_joints: `[B, J, 3]` rest joint positions.
    parents: `J` parent indices, -1 for the root at index 0; parents precede children.

  Returns:
    world_rotations: `[B, J, 3, 3]`.
    world_joints: `[B, J, 3]`, posed joint positions (translations of the world
      transforms).
  """
  # Kept in the order the levels are computed (root, depth 1, depth 2, ...), concatenated
  # a level at a time, and put back in joint order by one gather at the end: a slice and
  # a stack per joint made MANO's graph a few hundred tiny ops, each with its overhead in
  # a TFLite interpreter.
  world_r = rotations[:, :1]
  world_t = rest_joints[:, :1]
  computed = [0]
  for joints, joint_parents in joint_levels(parents):
    at = [computed.index(p) for p in joint_parents]
    parent_r = tf.gather(world_r, at, axis=1)
    parent_t = tf.gather(world_t, at, axis=1)
    offsets = (tf.gather(rest_joints, joints, axis=1)
               - tf.gather(rest_joints, joint_parents, axis=1))
    world_r = tf.concat([world_r, tf.matmul(parent_r, tf.gather(rotations, joints, axis=1))],
                        axis=1)
    world_t = tf.concat([world_t, parent_t + tf.einsum("bjik,bjk->bji", parent_r, offsets)],
                        axis=1)
    computed.extend(int(j) for j in joints)
  joint_order = np.argsort(computed)
  return tf.gather(world_r, joint_order, axis=1), tf.gather(world_t, joint_order, axis=1)


def skin_vertices(vertices: tf.Tensor, weights: tf.Tensor, world_rotations: tf.Tensor,
                  world_joints: tf.Tensor, rest_joints: tf.Tensor) -> tf.Tensor:
  """Linear blend skinning.

  Args:
    vertices: `[B, V, 3]` rest vertices (with shape and pose blend shapes).
    weights: `[V, J]` skinning weights.
    world_rotations: `[B, J, 3, 3]` from `forward_kinematics`.
    world_joints: `[B, J, 3]` from `forward_kinematics`.
    rest_joints: `[B, J, 3]` rest joint positions.

  Returns:
    `[B, V, 3]` posed vertices.
  """
  # Transform k maps a rest point x to R_k (x - J_k) + G_k.
  translations = world_joints - tf.einsum("bjik,bjk->bji", world_rotations, rest_joints)
  blended_r = tf.einsum("vj,bjik->bvik", weights, world_rotations)
  blended_t = tf.einsum("vj,bji->bvi", weights, translations)
  return tf.einsum("bvik,bvk->bvi", blended_r, vertices) + blended_t
