"""Which way each training hand faces, read from its 2D keypoints alone.

Why this exists: trained from 2D keypoints only, the network's global rotation did not
learn on freely turned hands (the recipe's 128 px network: palm normals 93 degrees from
the truth's on its own training images, median; the wrong way round in 53%).  A hand
turned 180 degrees about its own axis is a stationary point of the 2D terms (the thumb's
and the little finger's pulls cancel), so the optimiser bends the fingers instead of
turning the hand.  The mean hand fitted to the same keypoints (2D keypoints and the hand
model only, no 3D labels) is turned the right way far more often (MediaPipe's keypoints
on the recipe's renders: palm normal 37 degrees from the truth's, median, 9% the wrong
way round); as a target it only has to say which way round the hand is, the 2D terms
settle the rest.  Not one of the paper's terms.

The fit is an affine camera, solved in closed form in the graph (no OpenCV round trip:
it runs in the train step, under XLA and on every replica, and follows augmentation's
keypoints and intrinsics by construction): normalised keypoints x = K^-1 (u, v, 1)
against the mean hand's joints X, least squares for x - x0 = M (X - X0) with weights the
confidences, then the rotation whose first two rows are closest to M's (SVD) and whose
third is their cross product.
"""

import tensorflow as tf

from hand_tf import camera
from hand_tf.model import rotation

# A hand needs this many keypoints at or above camera.MIN_CONFIDENCE (as the template's
# PnP fit) for a target: fewer leave
# the affine fit (8 unknowns) underdetermined or at the mercy of one wrong keypoint.
MIN_KEYPOINTS = 8


def facing_targets(keypoints, confidence, intrinsics, joints):
  """The mean hand's rotation that best explains each hand's 2D keypoints.

  Args:
    keypoints: [B, 21, 2] 2D keypoints, input pixels.
    confidence: [B, 21] their confidences in [0, 1].
    intrinsics: [B, 3, 3] K of the input, pixels.
    joints: [21, 3] the mean hand's joints in the hand model's frame (zero root
      rotation), meters.

  Returns:
    (rotations [B, 3, 3]: camera = R @ p for p in the hand model's frame, weights [B] in
     {0, 1}: 0 where too few keypoints are confident).  No gradient flows.
  """
  keypoints = tf.convert_to_tensor(keypoints, tf.float32)
  confidence = tf.convert_to_tensor(confidence, tf.float32)
  intrinsics = tf.convert_to_tensor(intrinsics, tf.float32)
  joints = tf.convert_to_tensor(joints, tf.float32)
  if keypoints.shape[-2:] != (21, 2) or joints.shape != (21, 3):
    raise ValueError(f"facing_targets needs keypoints [B, 21, 2] and joints [21, 3], got "
                     f"{keypoints.shape} and {joints.shape}")
  homogeneous = tf.concat([keypoints, tf.ones_like(keypoints[..., :1])], axis=-1)
  normalised = tf.einsum("bij,bnj->bni", tf.linalg.inv(intrinsics), homogeneous)[..., :2]
  kept = tf.where(confidence >= camera.MIN_CONFIDENCE, confidence, 0.0)
  weights = tf.cast(tf.reduce_sum(tf.cast(kept > 0, tf.int32), -1) >= MIN_KEYPOINTS,
                    tf.float32)
  w = kept / tf.maximum(tf.reduce_sum(kept, -1, keepdims=True), 1e-6)
  model = joints[None] - tf.einsum("bn,nj->bj", w, joints)[:, None]
  image = normalised - tf.einsum("bn,bnj->bj", w, normalised)[:, None]
  # A tiny ridge keeps hands without keypoints (weight 0) invertible.
  gram = tf.einsum("bn,bni,bnj->bij", w, model, model) + 1e-7 * tf.eye(3)
  cross = tf.einsum("bn,bni,bnj->bij", w, image, model)
  affine = tf.matmul(cross, tf.linalg.inv(gram))  # [B, 2, 3]
  _, u, v = tf.linalg.svd(affine)  # affine = u diag(s) v^T, v [B, 3, 2]
  rows = tf.matmul(u, v, transpose_b=True)  # the nearest orthonormal rows
  third = rotation.cross(rows[:, 0], rows[:, 1])[:, None]
  rotations = tf.concat([rows, third], axis=1)
  # Hands without a target get the identity, so that no NaN of a degenerate fit reaches
  # the loss (0 x NaN is NaN).
  rotations = tf.where(weights[:, None, None] > 0, rotations, tf.eye(3, batch_shape=[1]))
  return tf.stop_gradient(rotations), weights
