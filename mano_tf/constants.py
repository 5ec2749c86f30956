"""Hand-model constants: joint order, kinematic tree, keypoint order, bones and pose bounds.

This is the one place where these conventions live; everything else imports them.

Conventions
-----------
* MANO has 16 articulated joints in the order of `MANO_JOINT_NAMES` (wrist first,
  then index, middle, pinky, ring and thumb, three joints each, proximal to distal).
* The 21 keypoints used by every loss, dataset and metric follow the FreiHAND /
  OpenPose hand order (`KEYPOINT_NAMES`): wrist, then thumb, index, middle, ring and
  little finger, each from the most proximal joint to the tip.
* Lengths are in meters, angles in radians.
"""

import numpy as np

NUM_VERTICES = 778
NUM_FACES = 1538
NUM_JOINTS = 16
NUM_KEYPOINTS = 21
NUM_BETAS = 10
NUM_POSE_PARAMS = 48  # 16 joints x 3 axis-angle values, global rotation first.
NUM_PCA_COMPONENTS = 45

MANO_JOINT_NAMES = (
    "wrist",
    "index1", "index2", "index3",
    "middle1", "middle2", "middle3",
    "pinky1", "pinky2", "pinky3",
    "ring1", "ring2", "ring3",
    "thumb1", "thumb2", "thumb3",
)

# Parent of each MANO joint (-1 for the root); MANO stores it as kintree_table[0].
MANO_PARENTS = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14)

# Fingers in the order of MANO's joints, each with its three joint indices.
MANO_FINGERS = {
    "index": (1, 2, 3),
    "middle": (4, 5, 6),
    "pinky": (7, 8, 9),
    "ring": (10, 11, 12),
    "thumb": (13, 14, 15),
}

# Fingertip order used when tips are appended after the 16 MANO joints, and the tip
# vertex ids of the real MANO mesh in that order (FreiHAND's kpId2vertices, which the
# original S2HAND code also uses; manopth's ids differ by one or two vertices).
TIP_ORDER = ("thumb", "index", "middle", "ring", "pinky")
MANO_TIP_VERTEX_IDS = (744, 320, 443, 555, 672)

KEYPOINT_NAMES = (
    "wrist",
    "thumb1", "thumb2", "thumb3", "thumb_tip",
    "index1", "index2", "index3", "index_tip",
    "middle1", "middle2", "middle3", "middle_tip",
    "ring1", "ring2", "ring3", "ring_tip",
    "pinky1", "pinky2", "pinky3", "pinky_tip",
)

# Gather indices that turn [16 MANO joints, 5 tips in TIP_ORDER] into KEYPOINT_NAMES order.
MANO_TO_KEYPOINT = (0, 13, 14, 15, 16, 1, 2, 3, 17, 4, 5, 6, 18, 10, 11, 12, 19, 7, 8, 9, 20)

# Parent of each of the 21 keypoints; the 20 bones are (parent, child) pairs.
KEYPOINT_PARENTS = (-1, 0, 1, 2, 3, 0, 5, 6, 7, 0, 9, 10, 11, 0, 13, 14, 15, 0, 17, 18, 19)
BONES = tuple((p, c) for c, p in enumerate(KEYPOINT_PARENTS) if p >= 0)

ROOT_KEYPOINT = 0
TIP_KEYPOINTS = (4, 8, 12, 16, 20)

# FreiHAND's scale bone: middle-finger MCP -> PIP, and the length S2HAND's scale prior
# pulls it towards.
SCALE_BONE = (9, 10)
SCALE_BONE_TARGET_M = 0.0282

# Per-keypoint weights of the 2D joint-location loss (wrist 2, fingertips 1.5, else 1).
KEYPOINT_LOSS_WEIGHTS = tuple(
    2.0 if k == ROOT_KEYPOINT else (1.5 if k in TIP_KEYPOINTS else 1.0)
    for k in range(NUM_KEYPOINTS))

# MANO's own root rotation is fixed to (pi, 0, 0) in S2HAND; the learned rotation is
# applied afterwards.
S2HAND_ROOT_ROTATION = (np.pi, 0.0, 0.0)


def _deg(lo, hi):
  return (np.deg2rad(lo), np.deg2rad(hi))


# Skeleton prior: [min, max] of each axis-angle component (x, y, z) of each MANO joint,
# in radians, as in the released S2HAND code.  With the MANO frame convention (fingers
# along x, palm normal along y), z is a finger's bend, y its spread and x its twist.
# The root row bounds S2HAND's fixed (pi, 0, 0) root rotation.
_FINGER1 = (_deg(-5, 5), _deg(-10, 10), _deg(-10, 100))
_FINGER23 = (_deg(-5, 5), _deg(-5, 5), _deg(-10, 100))
POSE_BOUNDS = np.array([
    ((3.13, 3.15), (-0.01, 0.01), (-0.01, 0.01)),  # root
    _FINGER1, _FINGER23, _FINGER23,  # index
    _FINGER1, _FINGER23, _FINGER23,  # middle
    (_deg(-20, 5), _deg(-10, 20), _deg(-10, 100)), _FINGER23, _FINGER23,  # pinky
    _FINGER1, _FINGER23, _FINGER23,  # ring
    (_deg(0, 90), (-np.pi / 8, 3 * np.pi / 16), (-np.pi / 8, np.pi / 8)),  # thumb1
    (_deg(-5, 5), _deg(-5, 5), (-np.pi / 8, np.pi / 8)),  # thumb2
    (_deg(-5, 5), _deg(-5, 5), _deg(-20, 100)),  # thumb3
], dtype=np.float64)  # [16, 3, 2]
POSE_BOUNDS.setflags(write=False)

# Component weights of the skeleton prior (bend counts double).
POSE_BOUND_COMPONENT_WEIGHTS = (1.0, 1.0, 2.0)
