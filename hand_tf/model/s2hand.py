"""The S2HAND network assembled: inference model (what export ships) and training model.

  inference: image [B, S, S, 3] in [0, 1], K [B, 3, 3] ->
      vertices [B, 778, 3], joints3d [B, 21, 3] (camera frame, meters), joints2d [B, 21, 2]
      (pixels), pose [B, 16, 3] (full axis-angle, MANO's fixed root first), pose_coeffs,
      shape [B, 10], camera {scale [B, 1], rotation [B, 3], translation [B, 3]},
      texture [B, T, 3], lighting [B, 11]
  training: the same plus keypoints2d_stacks (the 2D branch's keypoints, one per stack).

Both are functional Keras models built from the same layer objects, so they share
weights: train the training model, export the inference model.
"""

import dataclasses
import os
from typing import Optional

import keras
import numpy as np
import tensorflow as tf

from hand_tf import io
from hand_tf.camera import DEFAULT_FOCAL_PER_SIDE
from hand_tf.contract import HAND_MODEL_FILE
from hand_tf.model import rotation
from hand_tf.model.encoder import build_encoder
from hand_tf.model.heads import GeometryHead, TextureLightHead
from hand_tf.model.hourglass import build_keypoint_branch
from hand_tf.rendering import camera
from mano_tf import constants, lbs
from mano_tf.layer import ManoLayer, get_mano_model
from mano_tf.model_file import save_mano_model

# A run folder holds, beside its checkpoints, what rebuilds their network: the config and
# the hand model's arrays (so that moving the folder, or the MANO file it was trained
# with, does not break it).
MODEL_CONFIG_FILE = "model_config.json"


@keras.saving.register_keras_serializable(package="hand_tf")
class PlaceHand(keras.layers.Layer):
  """MANO parameters + camera -> posed hand in the camera frame, and its projection.

  As in S2HAND: MANO's own root rotation is fixed to (pi, 0, 0); the predicted rotation
  (`rotation_representation`: '6d' or S2HAND's 'axis_angle', see hand_tf.model.rotation)
  turns the posed hand about the MANO origin; then
  points = translation + |scale| * rotated points.  Units: meters; K in pixels.  Given
  `image_size`, the head's translation is taken about the ray through the crop's centre
  (`_from_crop_centre`), so that a crop cut anywhere in a photo puts its hand inside it.

  `translation_from_image`: the translation head's (a, b, d) are what the crop shows
  rather than camera-frame meters: the origin's pixel offset from the crop centre, in
  units of the nominal focal length f0 = 2.5 S, and its depth as it would be under f0.
  The camera-frame translation follows from K: depth d f / f0 (f = sqrt|det K[:2, :2]|),
  x and y from back-projecting the pixel.  A crop does not show its camera: the same
  image comes from a near hand under a short focal length or a far one under a long
  one, so meters alone are not predictable from pixels.
  """

  def __init__(self, mano_model_path: Optional[str] = None, ncomps: int = 30,
               use_mean_shape: bool = False, translation_from_image: bool = False,
               image_size: Optional[int] = None, rotation_representation: str = "axis_angle",
               **kwargs):
    kwargs.setdefault("dtype", "float32")
    super().__init__(**kwargs)
    self.mano_model_path = mano_model_path
    self.ncomps = ncomps
    self.use_mean_shape = use_mean_shape
    if translation_from_image and not image_size:
      raise ValueError("translation_from_image needs the input image_size")
    self.translation_from_image = translation_from_image
    self.image_size = image_size
    rotation.check_representation(rotation_representation)  # here, not at the first call
    self.rotation_representation = rotation_representation
    self.mano = ManoLayer(model_path=mano_model_path, use_pca=True, ncomps=ncomps,
                          flat_hand_mean=False, name="mano")

  def call(self, pose_coeffs, shape, turn, translation, scale, intrinsics):
    batch = tf.shape(pose_coeffs)[0]
    root = tf.broadcast_to(tf.constant(constants.S2HAND_ROOT_ROTATION, tf.float32), [batch, 3])
    pose = tf.concat([root, tf.cast(pose_coeffs, tf.float32)], axis=-1)
    betas = tf.zeros_like(shape) if self.use_mean_shape else shape
    vertices, joints = self.mano(pose, betas)
    rotation_matrix = rotation.to_matrix(tf.cast(turn, tf.float32), self.rotation_representation)
    magnitude = tf.abs(tf.cast(scale, tf.float32))[:, :, None]
    translation = tf.cast(translation, tf.float32)
    if self.translation_from_image:
      translation = self._camera_translation(translation, tf.cast(intrinsics, tf.float32))
    elif self.image_size:
      translation = self._from_crop_centre(translation, tf.cast(intrinsics, tf.float32))
    offset = translation[:, None, :]
    place = lambda p: offset + magnitude * tf.einsum("bij,bnj->bni", rotation_matrix, p)  # noqa
    vertices, joints = place(vertices), place(joints)
    return {"vertices": vertices, "joints3d": joints,
            "joints2d": camera.project(joints, intrinsics),
            "pose": self.mano.axis_angle_pose(pose), "translation": translation,
            "rotation": (turn if self.rotation_representation == "axis_angle"
                         else rotation.axis_angle_from_matrix(rotation_matrix)),
            # The whole hand's rotation (camera from the hand model's frame): the root's,
            # then the predicted one.
            "hand_rotation": tf.matmul(rotation_matrix, lbs.axis_angle_to_matrix(root[:1]))}

  def _camera_translation(self, crop_translation, intrinsics):
    """[B, 3] (a, b, d) of the crop -> [B, 3] camera-frame translation, meters."""
    nominal_focal = DEFAULT_FOCAL_PER_SIDE * self.image_size
    linear = intrinsics[:, :2, :2]  # any affine pixel map (rotation-augmented crops too)
    focal = tf.sqrt(tf.abs(linear[:, 0, 0] * linear[:, 1, 1] - linear[:, 0, 1] * linear[:, 1, 0]))
    depth = crop_translation[:, 2] * focal / nominal_focal
    pixel = self.image_size / 2.0 + nominal_focal * crop_translation[:, :2]
    return camera.back_project(pixel, depth, intrinsics)

  def _from_crop_centre(self, translation, intrinsics):
    """[B, 3] meters about the crop's centre ray -> [B, 3] camera-frame meters.

    A crop does not show where in the photo it was cut: the same pixels come from a box
    on the camera axis or one in a corner.  So (x, y) are taken from the ray through the
    crop's centre at the predicted depth; for a crop centred on the principal point that
    ray is the z axis and nothing changes.
    """
    depth = translation[:, 2]
    centre = tf.fill(tf.shape(translation[:, :2]), self.image_size / 2.0)
    ray = camera.back_project(centre, depth, intrinsics)
    return tf.concat([translation[:, :2] + ray[:, :2], depth[:, None]], axis=-1)

  def get_config(self):
    return {**super().get_config(), "mano_model_path": self.mano_model_path,
            "ncomps": self.ncomps, "use_mean_shape": self.use_mean_shape,
            "translation_from_image": self.translation_from_image,
            "image_size": self.image_size,
            "rotation_representation": self.rotation_representation}


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  backbone: str = "lite0"
  # Only the starting point of training: a checkpoint restores every weight over it.
  encoder_weights: Optional[str] = "imagenet"
  image_size: int = 224
  ncomps: int = 30
  texture_per_face: bool = False   # the released code; the paper predicts per vertex
  use_mean_shape: bool = False     # the released code's default zeroes the shape
  # Translation head in crop terms, placed through K (see PlaceHand); False: meters.
  translation_from_image: bool = False
  mano_model_path: Optional[str] = None
  hourglass_features: int = 256
  hourglass_stacks: int = 2
  hourglass_modules: int = 2
  # The 2D branch's stem width (hourglass.build_keypoint_branch); 128 as the paper.
  hourglass_stem_features: int = 128
  drop_connect_rate: float = 0.2
  # Batch-norm statistics over the global batch rather than each replica's share (for
  # small per-GPU batches; costs an all-reduce per layer).
  sync_batch_norm: bool = False
  # The rotation head's output (hand_tf.model.rotation): '6d', or 'axis_angle' as S2HAND.
  rotation_representation: str = "6d"

  def to_json(self) -> dict:
    return dataclasses.asdict(self)

  @classmethod
  def from_json(cls, value: dict) -> "ModelConfig":
    unknown = set(value) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
      raise ValueError(f"unknown model config fields {sorted(unknown)}")
    # Runs from before the 6D rotation predicted axis-angle.
    return cls(**{"rotation_representation": "axis_angle", **value})


# Fields that only set where training starts or how it runs, not what the checkpoint
# holds: a resumed run may change them.  (Not drop_connect_rate: at 0 the encoder has no
# dropout layers, which renumbers the layers the checkpoint is keyed by.)
_RESUMABLE_FIELDS = ("encoder_weights", "sync_batch_norm", "mano_model_path")


class RunFolderMismatch(io.InputError):
  """A run folder already holds a different network than the one asked for."""


def _same_hand(a, b) -> bool:
  return all(np.array_equal(getattr(a, f.name), getattr(b, f.name))
             for f in dataclasses.fields(a))


def write_run_files(folder: str, config: ModelConfig) -> None:
  """Writes `model_config.json` and `hand_model.npz` (the MANO arrays `config` names, or
  the synthetic hand) into `folder`; the config then names the hand file beside it.

  A folder that already holds a run is checked, not rewritten: its checkpoints belong
  to its config, so overwriting that with another would leave them unloadable.

  Raises:
    RunFolderMismatch: `folder` holds a run of another network (differing fields named)
      or another hand model.
  """
  config_path = os.path.join(folder, MODEL_CONFIG_FILE)
  hand = get_mano_model(config.mano_model_path)
  if os.path.exists(config_path):
    existing = read_run_config(folder)
    differ = [f"{f.name}={getattr(existing, f.name)!r} (asked: {getattr(config, f.name)!r})"
              for f in dataclasses.fields(ModelConfig)
              if f.name not in _RESUMABLE_FIELDS
              and getattr(existing, f.name) != getattr(config, f.name)]
    if not differ and not _same_hand(get_mano_model(existing.mano_model_path), hand):
      differ = ["the hand model (another --mano_model_path)"]
    if differ:
      raise RunFolderMismatch(
          f"{folder} holds a run of another network: {', '.join(differ)}; resume it with "
          "the same flags, or give a new --out_dir to start afresh")
    return
  save_mano_model(hand, os.path.join(folder, HAND_MODEL_FILE))
  # Written last (and atomically): its presence marks a complete run folder.
  io.write_json(config_path,
                dataclasses.replace(config, mano_model_path=HAND_MODEL_FILE).to_json())


def read_run_config(folder: str) -> ModelConfig:
  """The `ModelConfig` of a run folder; a relative hand-model path is read from `folder`.

  Raises:
    InputError: no readable `model_config.json` in `folder`, or unknown fields.
  """
  path = os.path.join(folder, MODEL_CONFIG_FILE)
  value = io.load_json(path, "model config (written by training)")
  try:
    config = ModelConfig.from_json(value)
  except (TypeError, ValueError) as e:
    raise io.InputError(f"{path}: {e}") from e
  hand = config.mano_model_path
  # Runs written before the hand model travelled with them name it relative to where
  # training ran; those still load from there.
  if hand and not os.path.isabs(hand) and os.path.exists(os.path.join(folder, hand)):
    config = dataclasses.replace(config, mano_model_path=os.path.join(folder, hand))
  return config


def build_models(config: ModelConfig = ModelConfig()):
  """Returns (inference_model, training_model), sharing all weights."""
  size = config.image_size
  image = keras.Input((size, size, 3), name="image")
  intrinsics = keras.Input((3, 3), name="intrinsics")
  encoder = build_encoder(config.backbone, config.encoder_weights, size,
                          config.drop_connect_rate)
  global_feature, low_level = encoder(image)
  params = GeometryHead(config.ncomps, config.rotation_representation,
                        name="geometry_head")(global_feature)
  num_texels = constants.NUM_FACES if config.texture_per_face else constants.NUM_VERTICES
  appearance = TextureLightHead(num_texels, name="texture_light_head")(low_level)
  place_hand = PlaceHand(config.mano_model_path, config.ncomps, config.use_mean_shape,
                         config.translation_from_image, size,
                         config.rotation_representation, name="place_hand")
  hand = place_hand(params["pose_coeffs"], params["shape"], params["rotation"],
                    params["translation"], params["scale"], intrinsics)
  outputs = {
      "vertices": hand["vertices"], "joints3d": hand["joints3d"],
      "joints2d": hand["joints2d"], "pose": hand["pose"],
      "pose_coeffs": params["pose_coeffs"], "shape": params["shape"],
      "scale": params["scale"], "rotation": hand["rotation"],
      "hand_rotation": hand["hand_rotation"],
      "translation": hand["translation"],
      "texture": appearance["texture"], "lighting": appearance["lighting"],
  }
  inference = keras.Model([image, intrinsics], outputs, name="s2hand_inference")
  branch = build_keypoint_branch(size, config.hourglass_stacks, config.hourglass_modules,
                                 config.hourglass_features,
                                 stem_features=config.hourglass_stem_features)
  stacks = branch(image)
  training_outputs = dict(outputs)
  for i, keypoints in enumerate(stacks if isinstance(stacks, (list, tuple)) else [stacks]):
    training_outputs[f"keypoints2d_stack{i}"] = keypoints
  training = keras.Model([image, intrinsics], training_outputs, name="s2hand_training")
  if config.sync_batch_norm:
    for layer in training._flatten_layers(include_self=False):  # noqa: SLF001
      if isinstance(layer, keras.layers.BatchNormalization):
        layer.synchronized = True  # read at call time by Keras' TF backend
  return inference, training

