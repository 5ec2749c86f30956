"""Rigging of the synthetic hand: skinning weights, joint regressor, blend shapes, pose PCA.

All functions are NumPy and deterministic; they take the rest-pose surface with its
per-vertex labels (region, position along the finger chain, ring centre).
"""

import numpy as np
import scipy.optimize

from mano_tf import constants, pose_sampling
from mano_tf.synthetic import geometry

_TAU_KNUCKLE = 0.0045  # blending width (m) of the skin around the MCP joints...
_TAU_JOINT = 0.003     # ...and around the finger's inner joints.
# The palm's skin over the knuckles blends more slowly: it stretches from the palm over
# the MCP joints to the webs (geometry.WEB_OFFSET further), where the fingers part.
_TAU_PALM_KNUCKLE = 0.010


def _sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def _chain_weights(arc, joint_ids, joint_arcs, taus):
  """Partition of unity along a finger: wrist before the first joint, then each bone."""
  steps = [_sigmoid((arc - s) / t) for s, t in zip(joint_arcs, taus)]
  weights = np.zeros((len(arc), constants.NUM_JOINTS))
  weights[:, 0] = 1.0 - steps[0]
  for k, j in enumerate(joint_ids):
    nxt = steps[k + 1] if k + 1 < len(steps) else 0.0
    weights[:, j] = steps[k] - nxt
  return weights


def skinning_weights(hand) -> np.ndarray:
  """[V, 16] smooth weights; each row sums to 1."""
  points, region, arc = hand.points, hand.region, hand.arc
  weights = np.zeros((len(points), constants.NUM_JOINTS))
  for name, joint_ids in geometry.FINGER_JOINTS.items():
    mask = region == geometry.FINGER_REGIONS[name]
    lengths = geometry.FINGERS[name].lengths
    weights[mask] = _chain_weights(arc[mask], joint_ids, (0.0, lengths[0], lengths[0] + lengths[1]),
                                   (_TAU_KNUCKLE, _TAU_JOINT, _TAU_JOINT))
  mask = region == geometry.THUMB
  t1, t2, _ = geometry.THUMB_LENGTHS
  weights[mask] = _chain_weights(arc[mask], (13, 14, 15), (0.008, t1, t1 + t2),
                                 (0.005, 0.006, _TAU_JOINT))

  # Palm: the knuckle region follows the nearest finger(s), the thenar follows the thumb.
  mask = region == geometry.PALM
  p = points[mask]
  finger_share = np.zeros((len(p), 4))
  lateral_kernel = np.zeros((len(p), 4))
  for f, name in enumerate(geometry.FINGER_ORDER):
    spec = geometry.FINGERS[name]
    direction = geometry.finger_direction(spec.fan_deg)
    rel = p - np.asarray(spec.mcp)
    along = rel @ direction
    lateral = rel @ np.cross(direction, [0.0, 1.0, 0.0])
    finger_share[:, f] = _sigmoid(along / _TAU_PALM_KNUCKLE)
    lateral_kernel[:, f] = np.exp(-(lateral / 0.012) ** 2)
  lateral_kernel /= lateral_kernel.sum(axis=1, keepdims=True) + 1e-12
  finger_share *= lateral_kernel
  # The palm around the thumb's rim shares the thumb's first bone, half at the rim.
  faces = hand.faces
  touches_thumb = np.any(region[faces] == geometry.THUMB, axis=1)
  rim = np.unique(faces[touches_thumb][region[faces[touches_thumb]] == geometry.PALM])
  to_rim = np.min(np.linalg.norm(p[:, None] - points[None, rim], axis=2), axis=1)
  thumb_share = 0.5 * np.exp(-(to_rim / 0.012) ** 2) * (1.0 - finger_share.sum(axis=1))
  palm_weights = np.zeros((len(p), constants.NUM_JOINTS))
  for f, name in enumerate(geometry.FINGER_ORDER):
    palm_weights[:, geometry.FINGER_JOINTS[name][0]] = finger_share[:, f]
  palm_weights[:, 13] = thumb_share
  palm_weights[:, 0] = 1.0 - palm_weights.sum(axis=1)
  weights[mask] = palm_weights
  weights = np.clip(weights, 0.0, None)  # round-off of 1 - sum can dip below zero
  return weights / weights.sum(axis=1, keepdims=True)


def joint_regressor(hand) -> np.ndarray:
  """[16, V] regressor: ring centroids where a ring sits on the joint, else NNLS weights."""
  num_vertices = len(hand.points)
  regressor = np.zeros((constants.NUM_JOINTS, num_vertices))
  for j in range(constants.NUM_JOINTS):
    if j in hand.joint_rings:
      ids = hand.joint_rings[j]
      regressor[j, ids] = 1.0 / len(ids)
      continue
    # A joint inside the body (the thumb's CMC): non-negative weights of the nearest
    # vertices that sum to one and reproduce the joint exactly.
    target = hand.joints[j]
    nearest = np.argsort(np.linalg.norm(hand.points - target, axis=1))[:40]
    lam = 10.0
    a = np.vstack([hand.points[nearest].T, lam * np.ones(len(nearest))])
    w, residual = scipy.optimize.nnls(a, np.append(target, lam))
    if residual > 1e-6:
      raise RuntimeError(f"joint {j} is outside the hull of its nearest vertices")
    regressor[j, nearest] = w / w.sum()
  return regressor


def shape_directions(hand) -> np.ndarray:
  """[V, 3, 10] shape directions per unit beta (meters).

  0 overall size, 1 finger length, 2 palm width, 3 palm thickness, 4 palm length,
  5 thumb size, 6 finger girth, 7 little-finger length, 8 index vs ring length,
  9 finger spread.
  """
  points, region, arc, axis = hand.points, hand.region, hand.arc, hand.axis
  num = len(points)
  dirs = np.zeros((num, 3, constants.NUM_BETAS))
  wrist = hand.joints[0]
  ex, ey, ez = np.eye(3)
  anchor = points.copy()  # the point whose position a vertex moves with
  finger_dir = np.zeros((num, 3))
  for name in geometry.FINGER_ORDER:
    mask = region == geometry.FINGER_REGIONS[name]
    anchor[mask] = geometry.FINGERS[name].mcp
    finger_dir[mask] = geometry.finger_direction(geometry.FINGERS[name].fan_deg)
  thumb = region == geometry.THUMB
  anchor[thumb] = hand.thumb_axis[0]
  fingers = (region >= 1) & (region <= 4)
  extent = np.maximum(arc, 0.0)[:, None] * finger_dir

  dirs[:, :, 0] = 0.05 * (points - wrist)
  dirs[:, :, 1] = 0.05 * extent
  dirs[:, :, 2] = 0.05 * (anchor[:, 2:3] - wrist[2]) * ez
  dirs[region == geometry.PALM, :, 3] = 0.08 * points[region == geometry.PALM, 1:2] * ey
  dirs[:, :, 4] = 0.05 * (anchor[:, 0:1] - wrist[0]) * ex
  dirs[thumb, :, 5] = 0.06 * (points[thumb] - hand.thumb_axis[0])
  limbs = fingers | thumb
  dirs[limbs, :, 6] = 0.06 * (points[limbs] - axis[limbs])
  pinky = region == geometry.FINGER_REGIONS["pinky"]
  dirs[pinky, :, 7] = 0.08 * extent[pinky]
  for name, sign in (("index", 1.0), ("ring", -1.0)):
    mask = region == geometry.FINGER_REGIONS[name]
    dirs[mask, :, 8] = sign * 0.05 * extent[mask]
  for name, angle in (("index", 0.05), ("ring", -0.04), ("pinky", -0.08)):
    mask = region == geometry.FINGER_REGIONS[name]
    dirs[mask, :, 9] = angle * np.cross(ey, points[mask] - geometry.FINGERS[name].mcp)
  return dirs


def pose_correctives(hand, weights, parents) -> np.ndarray:
  """[V, 3, 135] small corrective bulges where two bones meet, growing with the bend.

  Entries (0, 0) and (1, 1) of (R_k - I) sum to 2 (cos(angle) - 1) for a bend about z,
  so a negative coefficient along the outward radial direction swells the skin around a
  flexed joint by up to ~1.6 mm at 90 degrees.
  """
  radial = hand.points - hand.axis
  radial /= np.linalg.norm(radial, axis=1, keepdims=True) + 1e-12
  posedirs = np.zeros((len(hand.points), 3, 9 * (constants.NUM_JOINTS - 1)))
  for k in range(1, constants.NUM_JOINTS):
    blend = 4.0 * weights[:, k] * weights[:, parents[k]]
    coefficient = -0.0008 * blend[:, None] * radial
    posedirs[:, :, 9 * (k - 1) + 0] = coefficient
    posedirs[:, :, 9 * (k - 1) + 4] = coefficient
  return posedirs


def pose_pca(seed: int = 0, num_samples: int = 5000):
  """Mean and orthonormal principal directions of sampled plausible articulations.

  Returns:
    (components [45, 45], one per row, by decreasing variance; mean [45]).
  """
  rng = np.random.default_rng(seed)
  samples = pose_sampling.sample_articulations(rng, num_samples).reshape(num_samples, 45)
  mean = samples.mean(axis=0)
  _, _, vt = np.linalg.svd(samples - mean, full_matrices=False)  # vt: [45, 45]
  # Fix each component's sign so the generator is deterministic across LAPACK builds.
  signs = np.sign(vt[np.arange(45), np.argmax(np.abs(vt), axis=1)])
  return vt * signs[:, None], mean
