"""S2HAND's loss terms, each a pure function over batched tensors.

Notation: B batch, 21 keypoints in FreiHAND order, pixels for 2D, meters for 3D.
`confidence` is the detector's per-keypoint confidence in [0, 1].  The weights (the
released code's) live in `hand_tf.training.settings.LossWeights`.
"""

import numpy as np
import tensorflow as tf

from mano_tf import constants

_BONES = np.asarray(constants.BONES, np.int32)  # [20, 2] (parent, child)


def batch_weighted_mean(weighted_sum, weight_sum):
  """sum(w x) / sum(w) over the global batch, as this replica's share of the loss.

  Under `tf.distribute` each replica holds part of the batch, and the trainer sums the
  replicas' losses divided by their number.  Dividing by the replica's own weights
  would weigh an example by how confident its neighbours on that replica were, so two
  replicas would not compute what one device computes on the whole batch; the sum of
  the weights is therefore taken over all replicas (no gradient flows through it).

  Args:
    weighted_sum: scalar, this replica's sum of weight x value.
    weight_sum: scalar, this replica's sum of weights.

  Returns:
    Scalar: weighted_sum / (all replicas' weight_sum) x replicas; 0 where no weight.
  """
  context = tf.distribute.get_replica_context()
  replicas = context.num_replicas_in_sync if context is not None else 1
  if replicas > 1:
    weight_sum = context.all_reduce(tf.distribute.ReduceOp.SUM, tf.stop_gradient(weight_sum))
    weighted_sum = weighted_sum * float(replicas)
  return tf.math.divide_no_nan(weighted_sum, weight_sum)


def robust_distance(distance, beta: float = 5.0):
  """SmoothL1 of a distance: d^2 / (2 beta) below beta, d - beta / 2 above (pixels)."""
  return tf.where(distance < beta, 0.5 * tf.square(distance) / beta, distance - 0.5 * beta)


def _safe_norm(x, axis=-1):
  return tf.sqrt(tf.reduce_sum(tf.square(x), axis=axis) + 1e-12)


def joint_location_loss(predicted, detected, confidence):
  """Robust 2D distance to the detections, weighted by (keypoint weight x confidence)^2.

  Args:
    predicted, detected: [B, 21, 2] pixels.
    confidence: [B, 21].

  Returns:
    Scalar: sum rho(d) (w c)^2 / sum (w c)^2, with w = 2 (wrist), 1.5 (tips), else 1.
  """
  weight = tf.square(confidence * tf.constant(constants.KEYPOINT_LOSS_WEIGHTS, tf.float32))
  rho = robust_distance(_safe_norm(predicted - detected))
  return batch_weighted_mean(tf.reduce_sum(rho * weight), tf.reduce_sum(weight))


def apparent_size_loss(predicted, detected, confidence):
  """|apparent size of the predicted 2D hand - that of the detections|, pixels.

  Apparent size: the confidence-weighted RMS distance of the 21 keypoints from their
  weighted centroid.  Not one of the paper's terms (on by default; weight 0 trains the
  paper's objective).  Why it exists: under pose uncertainty the joint term is smallest
  for a 2D hand shrunk toward the mean (measured: predicted 2D hands 0.82x the true size
  on held-out synthetic images), and with the scale prior holding the 3D size, the
  shrink becomes depth (the same models place hands 1.17-1.24x too far).  The apparent
  size is easy to see whatever the pose, so matching it pins the depth (the objective
  passes joints whose gradient reaches only the hand's placement, not its articulation).

  Args:
    predicted, detected: [B, 21, 2] pixels.
    confidence: [B, 21].

  Returns:
    Scalar: mean over the batch of |r_pred - r_det|, r the weighted RMS radius.
  """
  weight = confidence / tf.maximum(tf.reduce_sum(confidence, -1, keepdims=True), 1e-6)

  def radius(points):
    centre = tf.reduce_sum(points * weight[..., None], axis=1, keepdims=True)
    return tf.sqrt(tf.reduce_sum(tf.reduce_sum(tf.square(points - centre), -1) * weight, -1)
                   + 1e-6)

  return tf.reduce_mean(tf.abs(radius(predicted) - radius(detected)))


def bone_vectors(keypoints):
  """[B, 21, D] -> [B, 20, D] child minus parent along the 20 bones."""
  return (tf.gather(keypoints, _BONES[:, 1], axis=1)
          - tf.gather(keypoints, _BONES[:, 0], axis=1))


def bone_direction_loss(predicted, detected, confidence):
  """Squared difference of unit 2D bone directions, weighted by both joints' confidences.

  Returns:
    Scalar mean over B x 20 of c_parent c_child |v_pred / |v_pred| - v_det / |v_det||^2.
  """
  def unit(v):
    return v / (_safe_norm(v)[..., None] + 1e-4)

  weight = (tf.gather(confidence, _BONES[:, 0], axis=1)
            * tf.gather(confidence, _BONES[:, 1], axis=1))
  difference = tf.reduce_sum(tf.square(unit(bone_vectors(predicted))
                                       - unit(bone_vectors(detected))), axis=-1)
  return tf.reduce_mean(weight * difference)


def keypoint_branch_loss(stacks, detected, confidence):
  """2D branch: sum over hourglass stacks of sum c^2 |det - kp| / sum c^2 (plain L2 norm)."""
  weight = tf.square(confidence)
  total = 0.0
  for keypoints in stacks:
    total += batch_weighted_mean(tf.reduce_sum(weight * _safe_norm(keypoints - detected)),
                                 tf.reduce_sum(weight))
  return total


def consistency_loss(branch_keypoints, projected_joints):
  """2D-3D consistency: mean robust distance between the 2D branch and projected joints."""
  return tf.reduce_mean(robust_distance(_safe_norm(branch_keypoints - projected_joints)))


def scale_loss(joints3d, target: float = constants.SCALE_BONE_TARGET_M):
  """Mean |length of the middle finger's MCP->PIP bone - target| (meters)."""
  a, b = constants.SCALE_BONE
  return tf.reduce_mean(tf.abs(_safe_norm(joints3d[:, a] - joints3d[:, b]) - target))


def shape_loss(shape):
  """Mean squared shape coefficient."""
  return tf.reduce_mean(tf.square(shape))


def skeleton_loss(pose):
  """Hinge penalty of each axis-angle component outside the per-joint bounds.

  Args:
    pose: [B, 16, 3] full MANO axis-angle pose (root first), radians.

  Returns:
    Scalar mean over B x 16 x 3 of the violation, z components weighted x2.
  """
  bounds = tf.constant(constants.POSE_BOUNDS, tf.float32)
  excess = tf.nn.relu(pose - bounds[..., 1]) + tf.nn.relu(bounds[..., 0] - pose)
  return tf.reduce_mean(excess * tf.constant(constants.POSE_BOUND_COMPONENT_WEIGHTS))


def facing_loss(rotation, target, weight):
  """How far the hand's global rotation is turned from a target rotation, in [0, 1].

  Args:
    rotation: [B, 3, 3] the predicted hand's rotation (camera from the hand model's frame).
    target: [B, 3, 3] the target rotation, same frames.
    weight: [B] per-sample weight (0: no target).

  Returns:
    Scalar: sum w (1 - cos angle) / 2 / sum w, from the chordal distance |R - T|_F^2 / 8
    (its gradient is largest at 90 degrees, where a hand is turned half the wrong way).
  """
  chordal = tf.reduce_sum(tf.square(rotation - target), axis=[-2, -1]) / 8.0
  return batch_weighted_mean(tf.reduce_sum(weight * chordal), tf.reduce_sum(weight))


def photometric_weight(confidence):
  """Per-sample weight of the appearance terms: mean confidence, 0 if any joint <= 0.1."""
  return tf.where(tf.reduce_min(confidence, axis=-1) > 0.1,
                  tf.reduce_mean(confidence, axis=-1), 0.0)


def _weighted_mean(per_sample, weight):
  w2 = tf.square(weight)
  return batch_weighted_mean(tf.reduce_sum(per_sample * w2), tf.reduce_sum(w2))


def photometric_loss(rendered, image, mask, weight):
  """L1 between render and image over the rendered silhouette's pixels.

  Args:
    rendered, image: [B, H, W, 3] in [0, 1].
    mask: [B, H, W, 1] pixels to compare (no gradient through it).
    weight: [B] per-sample weight (`photometric_weight`).
  """
  mask = tf.stop_gradient(mask)
  per_sample = tf.math.divide_no_nan(
      tf.reduce_sum(tf.abs(rendered - image) * mask, axis=[1, 2, 3]),
      3.0 * tf.reduce_sum(mask, axis=[1, 2, 3]))
  return _weighted_mean(per_sample, weight)


def mean_color_loss(rendered, image, mask, weight):
  """|mean colour of the render - mean colour of the image| over the silhouette."""
  mask = tf.stop_gradient(mask)
  area = tf.reduce_sum(mask, axis=[1, 2])
  mean = lambda x: tf.math.divide_no_nan(tf.reduce_sum(x * mask, axis=[1, 2]), area)  # noqa
  return _weighted_mean(tf.reduce_mean(tf.abs(mean(rendered) - mean(image)), axis=-1), weight)


def _gaussian_1d(size: int, sigma: float, dtype):
  """[size] normalised Gaussian: the 2D window is its outer product with itself."""
  coords = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
  g = np.exp(-0.5 * (coords / sigma) ** 2)
  return tf.constant(g / np.sum(g), dtype)


def ssim(x, y, max_val: float = 1.0, filter_size: int = 11, filter_sigma: float = 1.5,
         k1: float = 0.01, k2: float = 0.03):
  """Mean SSIM per image (Wang et al. 2004; tf.image.ssim's window and constants).

  Written here rather than calling tf.image.ssim because that computes each local
  variance as E[x^2] - E[x]^2 in float32: when the values are large (the render of an
  over-lit early training step reaches ~100) the cancellation error is far above c2,
  so SSIM leaves [-1, 1] and its loss and gradient can turn inf or NaN.  Here the local
  moments are taken in float64 (error ~1e-12 at such values, against c2 = 9e-4) and the
  variances are clamped at zero.  The Gaussian window is applied as two 1D passes over
  the five moment images stacked (float64 convolutions have no fast CPU kernel: one
  11x11 pass per moment was half of a 128 px training step's time).

  Args:
    x, y: [B, H, W, C] images (H, W >= filter_size).

  Returns:
    [B] mean SSIM (x's dtype) over the valid (unpadded) windows and channels.
  """
  dtype = x.dtype
  x, y = tf.cast(x, tf.float64), tf.cast(y, tf.float64)
  channels = x.shape[-1]
  moments = tf.concat([x, y, x * x, y * y, x * y], axis=-1)  # [B, H, W, 5C]
  g = _gaussian_1d(filter_size, filter_sigma, tf.float64)
  rows = tf.tile(tf.reshape(g, [filter_size, 1, 1, 1]), [1, 1, 5 * channels, 1])
  columns = tf.reshape(rows, [1, filter_size, 5 * channels, 1])
  local = tf.nn.depthwise_conv2d(moments, rows, [1, 1, 1, 1], "VALID")
  local = tf.nn.depthwise_conv2d(local, columns, [1, 1, 1, 1], "VALID")
  mean_x, mean_y, mean_xx, mean_yy, mean_xy = tf.split(local, 5, axis=-1)
  c1, c2 = (k1 * max_val) ** 2, (k2 * max_val) ** 2
  var_x = tf.nn.relu(mean_xx - tf.square(mean_x))
  var_y = tf.nn.relu(mean_yy - tf.square(mean_y))
  covariance = mean_xy - mean_x * mean_y
  luminance = (2.0 * mean_x * mean_y + c1) / (tf.square(mean_x) + tf.square(mean_y) + c1)
  contrast_structure = (2.0 * covariance + c2) / (var_x + var_y + c2)
  return tf.cast(tf.reduce_mean(luminance * contrast_structure, axis=[1, 2, 3]), dtype)


def ssim_loss(rendered, image, mask):
  """1 - SSIM (11x11 Gaussian window, sigma 1.5) of the masked render and image."""
  mask = tf.stop_gradient(mask)
  return tf.reduce_mean(1.0 - ssim(rendered * mask, image * mask))


def texture_regularization(texture, weight):
  """Penalises texture values farther than 2 std from the sample's mean colour.

  Per sample and channel (the paper's version; the released code mixed samples by a
  broadcasting slip): mean |T - mu| over texels with |T - mu| > 2 sigma.

  Args:
    texture: [B, T, 3] raw texture.
    weight: [B].
  """
  mean, variance = tf.nn.moments(texture, axes=[1], keepdims=True)
  deviation = tf.abs(texture - mean)
  outside = tf.cast(deviation > 2.0 * tf.sqrt(variance + 1e-12), texture.dtype)
  return _weighted_mean(tf.reduce_mean(deviation * outside, axis=[1, 2]), weight)


def uniform_laplacian(faces, num_vertices):
  """Sparse [V, V] uniform Laplacian L = I - D^-1 A of the mesh graph (a constant).

  The released code rebuilds a cotangent Laplacian from the first predicted mesh every
  step; the uniform one is fixed, cheaper and exported as one sparse constant.
  """
  faces = np.asarray(faces)
  edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
  edges = np.unique(np.sort(np.concatenate([edges, edges[:, ::-1]]), axis=1), axis=0)
  edges = np.concatenate([edges, edges[:, ::-1]])
  degree = np.bincount(edges[:, 0], minlength=num_vertices).astype(np.float32)
  values = -1.0 / degree[edges[:, 0]]
  indices = np.concatenate([edges, np.stack([np.arange(num_vertices)] * 2, axis=1)])
  values = np.concatenate([values, np.ones(num_vertices, np.float32)])
  order = np.lexsort((indices[:, 1], indices[:, 0]))
  return tf.SparseTensor(indices[order].astype(np.int64), values[order],
                         [num_vertices, num_vertices])


def laplacian_loss(vertices, laplacian):
  """Mean over vertices of |L v| (meters): penalises non-smooth meshes.

  Args:
    vertices: [B, V, 3].
    laplacian: [V, V] from `uniform_laplacian`, sparse, or dense (XLA has no sparse
      product).
  """
  batch = tf.shape(vertices)[0]
  stacked = tf.reshape(tf.transpose(vertices, [1, 0, 2]), [vertices.shape[1], -1])
  smoothed = (tf.sparse.sparse_dense_matmul(laplacian, stacked)
              if isinstance(laplacian, tf.SparseTensor) else tf.matmul(laplacian, stacked))
  smoothed = tf.transpose(tf.reshape(smoothed, [vertices.shape[1], batch, 3]), [1, 0, 2])
  return tf.reduce_mean(_safe_norm(smoothed))


def joint_3d_losses(predicted, target):
  """FSL's 3D terms: MSE of joints, and MSE after subtracting joint 9 from each set."""
  absolute = tf.reduce_mean(tf.square(predicted - target))
  root = constants.SCALE_BONE[0]
  relative = tf.reduce_mean(tf.square((predicted - predicted[:, root:root + 1])
                                      - (target - target[:, root:root + 1])))
  return absolute, relative
