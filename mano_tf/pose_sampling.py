"""Sampling plausible hand articulations within the skeleton prior's joint limits."""

import numpy as np

from mano_tf import constants

_FINGER_JOINTS = (("index", 1), ("middle", 4), ("pinky", 7), ("ring", 10))
# Keep samples this far (radians) inside the bounds, so float32 round-off never makes a
# sampled pose violate the prior.
_MARGIN = np.deg2rad(0.5)


def sample_articulations(rng: np.random.Generator, num: int,
                         closure_scale: float = 1.0) -> np.ndarray:
  """Samples finger articulations of a natural hand.

  Finger flexions are correlated the way real grasps are: one grasp closure per sample,
  perturbed per finger, with the distal joint following the middle one; spread and twist
  are small.  Every sample lies inside `constants.POSE_BOUNDS`, so it has zero
  skeleton-prior penalty.

  Args:
    rng: NumPy random generator (the only source of randomness).
    num: number of samples.
    closure_scale: scales how far the hand closes (1.0 = up to a fist).

  Returns:
    A float64 array of shape `[num, 15, 3]`: axis-angle rotations (radians) of MANO
    joints 1..15 in the MANO joint order, i.e. the articulation without the root.
  """
  deg = np.deg2rad
  pose = np.zeros((num, constants.NUM_JOINTS, 3))
  grasp = rng.uniform(0.0, 1.0, size=num) ** 1.3 * closure_scale
  for _, j in _FINGER_JOINTS:
    closure = np.clip(grasp + rng.normal(0.0, 0.15, num), 0.0, 1.0)
    spread = rng.uniform(-1.0, 1.0, num) * (1.0 - 0.7 * closure)
    pose[:, j, 2] = deg(-8.0 + 95.0 * closure + rng.normal(0, 5, num))
    pose[:, j, 1] = deg(9.0 * spread)
    pose[:, j, 0] = deg(rng.uniform(-4, 4, num))
    pose[:, j + 1, 2] = deg(-5.0 + 100.0 * closure + rng.normal(0, 6, num))
    pose[:, j + 2, 2] = 0.7 * pose[:, j + 1, 2] + deg(rng.normal(0, 5, num))
    for k in (j + 1, j + 2):
      pose[:, k, 0] = deg(rng.uniform(-3, 3, num))
      pose[:, k, 1] = deg(rng.uniform(-3, 3, num))
  thumb_closure = np.clip(grasp + rng.normal(0.0, 0.2, num), 0.0, 1.0)
  pose[:, 13, 0] = deg(15.0 + 55.0 * thumb_closure + rng.normal(0, 8, num))
  pose[:, 13, 1] = deg(rng.normal(5.0, 9.0, num))
  pose[:, 13, 2] = deg(rng.normal(0.0, 8.0, num))
  pose[:, 14, 2] = deg(rng.normal(0.0, 8.0, num) + 10.0 * thumb_closure)
  pose[:, 14, :2] = deg(rng.uniform(-3, 3, (num, 2)))
  pose[:, 15, 2] = deg(-8.0 + 75.0 * thumb_closure + rng.normal(0, 6, num))
  pose[:, 15, :2] = deg(rng.uniform(-3, 3, (num, 2)))
  low = constants.POSE_BOUNDS[1:, :, 0] + _MARGIN
  high = constants.POSE_BOUNDS[1:, :, 1] - _MARGIN
  return np.clip(pose[:, 1:], low, high)


def skeleton_prior_violation(pose: np.ndarray) -> np.ndarray:
  """Weighted hinge distance of articulations outside the joint bounds (NumPy reference).

  Args:
    pose: `[..., 15, 3]` articulations (joints 1..15) in radians.

  Returns:
    `[...]` sum over joints and components of the weighted violation, in radians.
  """
  low = constants.POSE_BOUNDS[1:, :, 0]
  high = constants.POSE_BOUNDS[1:, :, 1]
  excess = np.maximum(pose - high, 0.0) + np.maximum(low - pose, 0.0)
  return np.sum(excess * np.asarray(constants.POSE_BOUND_COMPONENT_WEIGHTS), axis=(-2, -1))
