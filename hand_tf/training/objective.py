"""Which loss terms a training stage uses, and their weighted sum.

Stages (the paper's schedule): '2d' trains the 2D branch alone; '3d' the 3D network
(encoder, heads) with the joint, bone, prior and appearance terms; 'finetune' both with
the 2D-3D consistency term added (every term at once: also what end-to-end training
uses).  `SCHEDULE` holds the paper's epochs and learning-rate steps of each stage.
Modes: 'ssl' (detections with confidences), 'wsl' (ground-truth 2D with equal
confidences — the data reader provides those), 'fsl' (adds the 3D joint losses).
"""

import dataclasses
from typing import Dict, Optional

import numpy as np
import tensorflow as tf

from hand_tf import contract, losses
from hand_tf.rendering import camera, renderer
from hand_tf.training import facing
from hand_tf.training.settings import MODES, STAGES, LossWeights
from mano_tf import constants

_3D_TERMS = ("joint_location", "bone_direction", "apparent_size", "facing", "scale", "shape",
             "skeleton", "laplacian", "photometric", "mean_color", "texture_regularization", "ssim")
_APPEARANCE = ("photometric", "mean_color", "texture_regularization", "ssim")


def terms_for(stage: str, mode: str = "ssl", appearance: bool = True):
  """The loss terms of a stage (tuple of `LossWeights` field names)."""
  if stage not in STAGES:
    raise ValueError(f"stage must be one of {tuple(STAGES)}, got {stage!r}")
  if mode not in MODES:
    raise ValueError(f"mode must be one of {tuple(MODES)}, got {mode!r}")
  if stage == "2d":
    return ("keypoint_branch",)
  terms = [t for t in _3D_TERMS if appearance or t not in _APPEARANCE]
  if stage == "finetune":
    terms += ["keypoint_branch", "consistency"]
  if mode == "fsl":
    terms += ["joint_3d", "joint_3d_root_relative"]
  return tuple(terms)


@dataclasses.dataclass(frozen=True)
class ObjectiveConfig:
  """Which loss terms a stage uses, and how they are weighed.

  Attributes:
    stage, mode: see the module docstring.
    weights: per-term weights.
    appearance: include the rendering-based terms.
    render_backend: rasterizer backend for the photometric terms.
    disabled: term names to leave out (e.g. from a flag).
    scale_target_m: the scale prior's bone length (the paper's FreiHAND value by default;
      a dataset of other hands, e.g. rendered from another hand model, has its own).
  """
  stage: str = "finetune"
  mode: str = "ssl"
  weights: LossWeights = LossWeights()
  appearance: bool = True
  render_backend: str = "auto"
  disabled: tuple = ()
  scale_target_m: float = constants.SCALE_BONE_TARGET_M


@dataclasses.dataclass(frozen=True)
class Objective:
  """Computes the weighted loss of one batch.

  Attributes:
    faces: [F, 3] mesh faces (for rendering and the Laplacian).
    config: the terms and their weights.
    mean_joints: [21, 3] the hand model's mean hand (zero pose and shape), meters: what
      the facing term fits to the keypoints.
  """
  faces: np.ndarray
  config: ObjectiveConfig = ObjectiveConfig()
  mean_joints: Optional[np.ndarray] = None

  @property
  def terms(self):
    # A term weighed 0 (apparent_size by default) is not computed at all.
    return tuple(t for t in terms_for(self.config.stage, self.config.mode, self.config.appearance)
                 if t not in self.config.disabled and getattr(self.config.weights, t) != 0)

  def __call__(self, outputs: Dict[str, tf.Tensor], batch: Dict[str, tf.Tensor],
               laplacian: Optional[tf.SparseTensor] = None) -> Dict[str, tf.Tensor]:
    """Returns {term: unweighted value, ..., 'total': weighted sum}."""
    # The 2D terms measure pixels of the paper's 224 px crops (their robust-loss threshold
    # and weights are tuned there): keypoints are rescaled to that frame, so the weights
    # keep their balance against the size-free priors at any input size.
    to_reference = contract.REFERENCE_SIZE / float(batch["image"].shape[1])
    detected = batch["keypoints"] * to_reference
    confidence = batch["confidence"]
    joints2d = outputs["joints2d"] * to_reference
    stacks = [outputs[k] * to_reference for k in sorted(outputs)
              if k.startswith("keypoints2d_stack")]
    terms = self.terms
    values = {}
    if any(t in terms for t in _APPEARANCE):
      image = batch["image"]
      size = image.shape[1:3]
      rendered = renderer.render(outputs["vertices"], self.faces, tf.tanh(outputs["texture"]),
                                 batch["intrinsics"], outputs["lighting"], size,
                                 backend=self.config.render_backend)
      weight = losses.photometric_weight(confidence)
      mask = rendered["mask"]
    for term in terms:
      if term == "joint_location":
        value = losses.joint_location_loss(joints2d, detected, confidence)
      elif term == "bone_direction":
        value = losses.bone_direction_loss(joints2d, detected, confidence)
      elif term == "apparent_size":
        placed = _placement_only_joints2d(outputs, batch["intrinsics"]) * to_reference
        value = losses.apparent_size_loss(placed, detected, confidence)
      elif term == "facing":
        if self.mean_joints is None:
          raise ValueError("the facing term needs the mean hand's joints (Objective.mean_joints)")
        target, weight = facing.facing_targets(batch["keypoints"], confidence,
                                               batch["intrinsics"], self.mean_joints)
        value = losses.facing_loss(outputs["hand_rotation"], target, weight)
      elif term == "keypoint_branch":
        value = losses.keypoint_branch_loss(stacks, detected, confidence)
      elif term == "consistency":
        value = losses.consistency_loss(stacks[-1], joints2d)
      elif term == "scale":
        value = losses.scale_loss(outputs["joints3d"], self.config.scale_target_m)
      elif term == "shape":
        value = losses.shape_loss(outputs["shape"])
      elif term == "skeleton":
        value = losses.skeleton_loss(outputs["pose"])
      elif term == "laplacian":
        value = losses.laplacian_loss(outputs["vertices"], laplacian)
      elif term == "photometric":
        value = losses.photometric_loss(rendered["rgb"], image, mask, weight)
      elif term == "mean_color":
        value = losses.mean_color_loss(rendered["rgb"], image, mask, weight)
      elif term == "texture_regularization":
        value = losses.texture_regularization(outputs["texture"], weight)
      elif term == "ssim":
        value = losses.ssim_loss(rendered["rgb"], image, mask)
      elif term == "joint_3d":
        value = losses.joint_3d_losses(outputs["joints3d"], batch["joints3d"])[0]
      elif term == "joint_3d_root_relative":
        value = losses.joint_3d_losses(outputs["joints3d"], batch["joints3d"])[1]
      else:  # pragma: no cover - terms_for only yields the names above
        raise ValueError(term)
      values[term] = value
    values["total"] = tf.add_n([getattr(self.config.weights, t) * values[t] for t in terms])
    return values


def _placement_only_joints2d(outputs, intrinsics):
  """[B, 21, 2] the projected joints, with a gradient that reaches only the hand's
  placement (scale and translation): the articulated, rotated hand is held fixed.

  The apparent-size term is there to pin the depth; through the articulation it would
  also bend the fingers to match a size.  Measured in the demo's configuration (same
  data, seed and 320 steps; PA-MPJPE / MPJPE mm): the paper's terms 14.6 / 984; the term
  through everything 18.2 / 87; through the placement only 15.3 / 82.
  """
  translation = outputs["translation"][:, None, :]
  scale = tf.maximum(tf.abs(outputs["scale"]), 1e-3)[:, :, None]
  articulated = tf.stop_gradient((outputs["joints3d"] - translation) / scale)
  return camera.project(translation + scale * articulated, intrinsics)

