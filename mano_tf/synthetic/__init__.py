"""A synthetic hand model in MANO's format, so nothing here needs the MANO licence.

`build_synthetic_mano()` returns a deterministic `ManoModel` with MANO's counts and
conventions: 778 vertices, 1538 faces, 16 joints with MANO's kinematic tree and joint
order, 10 shape directions, 135 pose correctives, a 45x45 pose PCA and a sparse joint
regressor.  `python -m mano_tf.synthetic --out PATH` writes it as a MANO pickle.
"""

import dataclasses
import functools
from typing import Dict

import numpy as np

from mano_tf import constants
from mano_tf.model_file import ManoModel
from mano_tf.synthetic import geometry, rig

# Vertices of the transition ring: chosen so that the hand has exactly 778 vertices.
_TRANSITION_RING_SIZE = 27


@dataclasses.dataclass
class RestHand:
  """The rest-pose surface with the labels the rig needs (see `geometry`)."""
  points: np.ndarray      # [V, 3]
  faces: np.ndarray       # [F, 3]
  region: np.ndarray      # [V] geometry.PALM / FINGER_REGIONS / THUMB
  arc: np.ndarray         # [V] meters along the finger or thumb chain
  axis: np.ndarray        # [V, 3] ring centre each vertex was placed around
  joints: np.ndarray      # [16, 3]
  tips: Dict[str, int]
  joint_rings: Dict[int, np.ndarray]
  thumb_axis: tuple       # (CMC position, metacarpal direction)


def build_rest_hand() -> RestHand:
  """Builds the surface and drops vertices that no face uses (inside the thumb hole)."""
  builder, joints, tips, joint_rings = geometry.build_right_hand(_TRANSITION_RING_SIZE)
  faces = np.asarray(builder.faces, dtype=np.int64)
  used = np.unique(faces)
  remap = -np.ones(len(builder.points), dtype=np.int64)
  remap[used] = np.arange(len(used))
  thumb_dir = joints[14] - joints[13]
  return RestHand(
      points=np.asarray(builder.points)[used],
      faces=remap[faces],
      region=np.asarray(builder.region)[used],
      arc=np.asarray(builder.arc)[used],
      axis=np.asarray(builder.axis)[used],
      joints=joints,
      tips={k: int(remap[v]) for k, v in tips.items()},
      joint_rings={k: remap[v] for k, v in joint_rings.items()},
      thumb_axis=(joints[13], thumb_dir / np.linalg.norm(thumb_dir)))


def mirror_to_left(model: ManoModel) -> ManoModel:
  """The left hand as MANO builds it: the right hand reflected through the x = 0 plane.

  A reflection M = diag(-1, 1, 1) maps a rotation R to M R M, i.e. an axis-angle vector
  (a, b, c) to (a, -b, -c); pose correctives and PCA follow, and faces swap winding so
  that they still face outwards.
  """
  m = np.array([-1.0, 1.0, 1.0])
  entry_sign = np.outer(m, m).reshape(9)  # sign of (R - I)_ij under the reflection.
  posedirs = model.posedirs.reshape(-1, 3, constants.NUM_JOINTS - 1, 9)
  posedirs = posedirs * m[None, :, None, None] * entry_sign[None, None, None, :]
  axis_angle_sign = np.tile([1.0, -1.0, -1.0], constants.NUM_JOINTS - 1)
  return dataclasses.replace(
      model,
      v_template=model.v_template * m,
      shapedirs=model.shapedirs * m[None, :, None],
      posedirs=posedirs.reshape(model.posedirs.shape),
      faces=model.faces[:, [0, 2, 1]],
      hands_components=model.hands_components * axis_angle_sign[None, :],
      hands_mean=model.hands_mean * axis_angle_sign)


@functools.lru_cache(maxsize=2)
def build_synthetic_mano(side: str = "right") -> ManoModel:
  """The synthetic hand model (deterministic; cached per side)."""
  if side not in ("right", "left"):
    raise ValueError(f"side must be 'right' or 'left', got {side!r}")
  hand = build_rest_hand()
  if len(hand.points) != constants.NUM_VERTICES or len(hand.faces) != constants.NUM_FACES:
    raise AssertionError(f"synthetic hand has {len(hand.points)} vertices and "
                         f"{len(hand.faces)} faces, expected 778 and 1538")
  weights = rig.skinning_weights(hand)
  components, mean = rig.pose_pca()
  model = ManoModel(
      v_template=hand.points,
      shapedirs=rig.shape_directions(hand),
      posedirs=rig.pose_correctives(hand, weights, constants.MANO_PARENTS),
      j_regressor=rig.joint_regressor(hand),
      weights=weights,
      parents=np.asarray(constants.MANO_PARENTS, dtype=np.int32),
      faces=hand.faces.astype(np.int32),
      hands_components=components,
      hands_mean=mean,
      tip_vertex_ids=np.asarray([hand.tips[n] for n in constants.TIP_ORDER], dtype=np.int32))
  return mirror_to_left(model) if side == "left" else model
