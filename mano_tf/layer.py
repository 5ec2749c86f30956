"""`ManoLayer`: the MANO hand model as a serialisable Keras layer."""

import functools
import os
from typing import Optional, Tuple

import keras
import numpy as np
import tensorflow as tf

from mano_tf import constants, lbs
from mano_tf.model_file import ManoModel, load_mano_model

SIDES = ("right", "left")


def resolve_model_path(model_path: Optional[str], side: str) -> Optional[str]:
  """Maps a user path to a model file: a directory means `MANO_{SIDE}.pkl` inside it."""
  if model_path and os.path.isdir(model_path):
    return os.path.join(model_path, f"MANO_{side.upper()}.pkl")
  return model_path or None


@functools.lru_cache(maxsize=8)
def _load_cached(model_path: Optional[str], side: str) -> ManoModel:
  if model_path is None:
    from mano_tf.synthetic import build_synthetic_mano
    return build_synthetic_mano(side=side)
  return load_mano_model(model_path)


def get_mano_model(model_path: Optional[str] = None, side: str = "right") -> ManoModel:
  """Returns the MANO model at `model_path`, or the built-in synthetic hand if None.

  Args:
    model_path: `MANO_RIGHT.pkl`/`MANO_LEFT.pkl`, an `.npz`, a directory holding the
      official files, or None for the project's synthetic hand (no licence needed).
    side: 'right' or 'left'; picks the file in a directory and the synthetic hand.
  """
  if side not in SIDES:
    raise ValueError(f"side must be one of {SIDES}, got {side!r}")
  path = resolve_model_path(model_path, side)
  return _load_cached(os.path.abspath(path) if path else None, side)


@keras.saving.register_keras_serializable(package="mano_tf")
class ManoLayer(keras.layers.Layer):
  """MANO: pose and shape parameters to a posed hand mesh and 21 keypoints.

  Inputs (`call(pose, betas)`):
    pose: `[B, 3 + ncomps]` (global axis-angle rotation, then PCA coefficients) when
      `use_pca`, else `[B, 48]` axis-angle values of the 16 joints (global first).
      The articulation is `hands_mean + coefficients @ hands_components[:ncomps]`
      (PCA) or `hands_mean + pose[:, 3:]` (axis-angle); `flat_hand_mean=True` drops the
      mean.  The global rotation turns the hand about its wrist joint.
    betas: `[B, 10]` shape coefficients.

  Outputs:
    vertices: `[B, 778, 3]` in meters, in the model frame (or relative to the wrist).
    joints: `[B, 21, 3]` in meters: the 16 kinematic-chain joints plus the 5 fingertip
      vertices, in the FreiHAND/OpenPose keypoint order of `constants.KEYPOINT_NAMES`.

  Args:
    model_path: see `get_mano_model`; None uses the synthetic hand.
    side: 'right' or 'left'.
    use_pca: whether the articulation input is PCA coefficients.
    ncomps: number of PCA components (6..45) when `use_pca`.
    flat_hand_mean: if True the zero articulation is the flat hand, else MANO's mean pose.
    root_relative: if True, subtract the wrist keypoint from vertices and joints.
  """

  def __init__(self, model_path: Optional[str] = None, side: str = "right",
               use_pca: bool = True, ncomps: int = 45, flat_hand_mean: bool = False,
               root_relative: bool = False, **kwargs):
    kwargs.setdefault("dtype", "float32")
    super().__init__(**kwargs)
    if use_pca and not 6 <= ncomps <= constants.NUM_PCA_COMPONENTS:
      raise ValueError(f"ncomps must be in [6, 45], got {ncomps}")
    self.model_path = model_path
    self.side = side
    self.use_pca = use_pca
    self.ncomps = ncomps if use_pca else constants.NUM_PCA_COMPONENTS
    self.flat_hand_mean = flat_hand_mean
    self.root_relative = root_relative
    model = get_mano_model(model_path, side)
    self.faces = model.faces
    self.parents = tuple(int(p) for p in model.parents)
    dtype = tf.float32
    const = lambda x: tf.constant(np.asarray(x), dtype=dtype)  # noqa: E731
    self._template = const(model.v_template)
    self._shapedirs = const(model.shapedirs)
    self._posedirs = const(model.posedirs.reshape(-1, model.posedirs.shape[-1]).T)
    # Joints depend linearly on betas, so regress template and directions once.
    self._rest_joints = const(model.j_regressor @ model.v_template)
    self._joint_shapedirs = const(np.einsum("jv,vcs->jcs", model.j_regressor, model.shapedirs))
    self._weights = const(model.weights)
    self._components = const(model.hands_components[:self.ncomps])
    mean = np.zeros(45) if flat_hand_mean else model.hands_mean
    self._hands_mean = const(mean)
    self._tip_ids = tf.constant(model.tip_vertex_ids, dtype=tf.int32)
    self._keypoint_order = tf.constant(constants.MANO_TO_KEYPOINT, dtype=tf.int32)

  @property
  def pose_size(self) -> int:
    return 3 + self.ncomps if self.use_pca else constants.NUM_POSE_PARAMS

  def axis_angle_pose(self, pose: tf.Tensor) -> tf.Tensor:
    """Decodes the pose input into `[B, 16, 3]` axis-angle rotations (root first)."""
    pose = tf.convert_to_tensor(pose, dtype=self.compute_dtype)
    if pose.shape[-1] is not None and pose.shape[-1] != self.pose_size:
      raise ValueError(
          f"pose must have {self.pose_size} values per sample "
          f"({'3 + ncomps PCA' if self.use_pca else '48 axis-angle'}), got shape {pose.shape}")
    articulation = pose[:, 3:]
    if self.use_pca:
      articulation = tf.matmul(articulation, self._components)
    full = tf.concat([pose[:, :3], articulation + self._hands_mean], axis=-1)
    return tf.reshape(full, [-1, constants.NUM_JOINTS, 3])

  def call(self, pose, betas) -> Tuple[tf.Tensor, tf.Tensor]:
    betas = tf.convert_to_tensor(betas, dtype=self.compute_dtype)
    if betas.shape[-1] is not None and betas.shape[-1] != constants.NUM_BETAS:
      raise ValueError(f"betas must have shape [B, 10], got {betas.shape}")
    rotations = lbs.axis_angle_to_matrix(self.axis_angle_pose(pose))  # [B, 16, 3, 3]
    shaped = lbs.blend_shapes(betas, self._template, self._shapedirs)
    rest_joints = lbs.blend_shapes(betas, self._rest_joints, self._joint_shapedirs)
    posed = shaped + tf.reshape(
        tf.matmul(lbs.pose_feature(rotations), self._posedirs), tf.shape(shaped))
    world_r, world_t = lbs.forward_kinematics(rotations, rest_joints, self.parents)
    vertices = lbs.skin_vertices(posed, self._weights, world_r, world_t, rest_joints)
    tips = tf.gather(vertices, self._tip_ids, axis=1)
    joints = tf.gather(tf.concat([world_t, tips], axis=1), self._keypoint_order, axis=1)
    if self.root_relative:
      root = joints[:, constants.ROOT_KEYPOINT:constants.ROOT_KEYPOINT + 1]
      vertices, joints = vertices - root, joints - root
    return vertices, joints

  def compute_output_shape(self, pose_shape, betas_shape):
    batch = pose_shape[0]
    return ((batch, constants.NUM_VERTICES, 3), (batch, constants.NUM_KEYPOINTS, 3))

  def get_config(self):
    config = super().get_config()
    config.update(model_path=self.model_path, side=self.side, use_pca=self.use_pca,
                  ncomps=self.ncomps, flat_hand_mean=self.flat_hand_mean,
                  root_relative=self.root_relative)
    return config
