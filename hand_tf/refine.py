"""Test-time refinement: each predicted hand fitted to its 2D keypoints.

S2HAND's optional `mano_fitting`: starting from the network's hand, 151 Adam steps
(learning rate 0.01, 0.005 from step 51, 0.0025 from step 101) move the MANO shape, the
finger articulation and the hand's similarity (scale, rotation, translation) to lower

  w_joint * sum c |projected joint - keypoint| / sum c   (pixels of a 224 px crop)
  + w_bone * bone-direction term (every confidence 1)
  + w_skeleton * joint-angle bounds + w_shape * |beta|^2 + w_scale * scale prior,

with the released code's weights (its lambda_j2d, 0.2 lambda_bone, 3 lambda_pose,
lambda_shape, lambda_mscale; `hand_tf.losses` holds the terms).  Departures from that
code: the refined mesh is what is returned (it saved the network's); Adam keeps its
moments across steps (it re-created the optimizer every step); and the articulation is
kept inside the skeleton prior's bounds after every step (projected), so that the
refined pose never violates the prior (as a hinge alone, the 2D term held it slightly
outside: 2e-5 measured).  The parameters are
in units where one step of 0.01 is a small move: radians, log scale, translation as
(x/z, y/z, log z).

Every hand of a batch is fitted at once in one XLA-compiled `tf.function` (the loss is
a sum of per-hand terms, so the fits do not interact).  A left hand is fitted as the mirror image
of a right one (`hand_tf.mirror`).  Needs TensorFlow (the `train` extra).
"""

import dataclasses
import time
from typing import Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf

from hand_tf import camera as np_camera
from hand_tf import losses, mirror
from hand_tf.contract import REFERENCE_SIZE
from hand_tf.reconstruct import Hand
from hand_tf.rendering import camera
from mano_tf import constants, lbs
from mano_tf.layer import ManoLayer

# A hand is refined only with at least this many keypoints of confidence >=
# `hand_tf.camera.MIN_CONFIDENCE` (a missed detection gives none).
MIN_CONFIDENT_KEYPOINTS = 6


@dataclasses.dataclass(frozen=True)
class RefineSettings:
  """The released code's schedule and weights."""
  iterations: int = 151
  learning_rates: tuple = ((0, 0.01), (51, 0.005), (101, 0.0025))  # (from step, rate)
  joint: float = 1e-3
  bone: float = 0.2 * 0.1
  skeleton: float = 3 * 0.1
  shape: float = 1e-2
  scale: float = 0.1


def _similarity(source: np.ndarray, target: np.ndarray):
  """(s, R, t) minimising |s R source + t - target| (Umeyama); [N, 3] points each."""
  mu_s, mu_t = source.mean(0), target.mean(0)
  a, b = source - mu_s, target - mu_t
  u, sigma, vt = np.linalg.svd(b.T @ a)
  d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
  rotation = u @ d @ vt
  scale = np.trace(np.diag(sigma) @ d) / np.sum(a * a)
  return scale, rotation, mu_t - scale * rotation @ mu_s


class HandRefiner:
  """Fits hands to keypoints; `refine(hands)` returns the refined hands."""

  def __init__(self, mano_model_path: Optional[str] = None,
               settings: RefineSettings = RefineSettings()):
    """Args:
      mano_model_path: the right-hand model the network was trained with (a run's or
        export's `hand_model.npz`, or a MANO file); None: the synthetic hand.
      settings: schedule and weights.
    """
    from hand_tf.eval.template import scale_bone_length
    self.settings = settings
    self._mano = ManoLayer(model_path=mano_model_path, use_pca=False, flat_hand_mean=True)
    # The scale prior's target: this hand model's mean hand (FreiHAND's 28.2 mm, the
    # paper's, is the mean of the real MANO hands there; the synthetic hand's is 39.5 mm).
    self._scale_target = scale_bone_length(mano_model_path)
    hands = lambda *shape: tf.TensorSpec([None, *shape], tf.float32)  # noqa: E731
    # XLA: 0.07 s for a hand's 151 steps against 0.47 s in TensorFlow's graph (2 CPU
    # cores), compiled once per batch size, hence the power-of-two buckets in `refine`.
    self._fit = tf.function(self._fit_batch, jit_compile=True, input_signature=[
        hands(16, 3), hands(10), hands(3, 3), hands(1), hands(3), hands(21, 2), hands(21),
        hands(3, 3), hands()])

  def _hand_in_camera(self, params, root, shape, start):
    """Camera-frame vertices and joints, full pose [B, 16, 3] and shape for `params`.

    `start` = (rotation [B, 3, 3], scale [B, 1], direction [B, 2], depth [B, 1]): the
    similarity the parameters are offsets from.
    """
    fingers, shape_offset, rotation, log_scale, offset, log_depth = params
    rotation0, scale0, direction0, depth0 = start
    full_pose = tf.concat([root, tf.reshape(fingers, [-1, 15, 3])], axis=1)
    betas = shape + shape_offset
    vertices, joints = self._mano(tf.reshape(full_pose, [-1, 48]), betas)
    turn = tf.matmul(lbs.axis_angle_to_matrix(rotation), rotation0)
    size = (scale0 * tf.exp(log_scale))[:, :, None]
    depth = depth0 * tf.exp(log_depth)
    translation = tf.concat([(direction0 + offset) * depth, depth], axis=-1)[:, None]

    def place(points):
      return translation + size * tf.einsum("bij,bnj->bni", turn, points)

    return place(vertices), place(joints), full_pose, betas

  def _fit_batch(self, pose, shape, rotation0, scale0, translation0, keypoints, confidence,
                 intrinsics, to_reference):
    """pose [B, 16, 3], shape [B, 10], rotation0 [B, 3, 3], scale0 [B, 1],
    translation0 [B, 3], keypoints [B, 21, 2], confidence [B, 21], intrinsics [B, 3, 3],
    to_reference [B] (image pixels -> pixels of a 224 px crop of the hand) ->
    (vertices, joints, pose, shape, 2D error before [B] and after [B], image pixels)."""
    settings = self.settings
    depth0 = translation0[:, 2:]
    start = (rotation0, scale0, translation0[:, :2] / depth0, depth0)
    root = pose[:, :1]
    count = tf.cast(tf.shape(pose)[0], tf.float32)
    ones = tf.ones_like(confidence)

    def loss_and_error(params):
      _, joints, full_pose, betas = self._hand_in_camera(params, root, shape, start)
      projected = camera.project(joints, intrinsics)
      distance = tf.norm(projected - keypoints, axis=-1)  # [B, 21] image pixels
      error = tf.reduce_sum(distance * confidence, -1) / tf.maximum(
          tf.reduce_sum(confidence, -1), 1e-6)
      # Sums over hands: the `losses` terms are batch means, hence `count`.
      total = (settings.joint * tf.reduce_sum(error * to_reference)
               + count * (settings.bone * losses.bone_direction_loss(projected, keypoints, ones)
                          + settings.skeleton * losses.skeleton_loss(full_pose)
                          + settings.shape * losses.shape_loss(betas)
                          + settings.scale * losses.scale_loss(joints, self._scale_target)))
      return total, error

    def adam_step(step, params, first, second):
      with tf.GradientTape() as tape:
        tape.watch(params)
        total, _ = loss_and_error(params)
      gradients = tape.gradient(total, params)
      rate = tf.constant(settings.learning_rates[0][1], tf.float32)
      for begin, value in settings.learning_rates[1:]:
        rate = tf.where(step >= begin, tf.constant(value, tf.float32), rate)
      t = tf.cast(step + 1, tf.float32)
      first = tuple(0.9 * m + 0.1 * g for m, g in zip(first, gradients))
      second = tuple(0.999 * v + 0.001 * tf.square(g) for v, g in zip(second, gradients))
      params = tuple(p - rate * (m / (1 - 0.9 ** t)) / (tf.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
                     for p, m, v in zip(params, first, second))
      return step + 1, (inside_bounds(params[0]), *params[1:]), first, second

    bounds = tf.reshape(tf.constant(constants.POSE_BOUNDS[1:], tf.float32), [45, 2])

    def inside_bounds(fingers):
      return tf.clip_by_value(fingers, bounds[:, 0], bounds[:, 1])

    batch = tf.shape(pose)[0]
    params = (inside_bounds(tf.reshape(pose[:, 1:], [batch, 45])), *(tf.zeros([batch, n])
                                                        for n in (10, 3, 1, 2, 1)))
    _, before = loss_and_error(params)
    # Adam over loop-carried tensors (Keras optimizers update variables, whose fixed
    # shapes would tie the function to one number of hands).
    moments = tuple(tf.zeros_like(p) for p in params)
    _, params, _, _ = tf.while_loop(lambda step, *_: step < settings.iterations, adam_step,
                                    (tf.constant(0), params, moments, moments))
    _, after = loss_and_error(params)
    vertices, joints, full_pose, betas = self._hand_in_camera(params, root, shape, start)
    return vertices, joints, full_pose, betas, before, after

  def refine(self, hands: Sequence[Hand], keypoints: Optional[Sequence[np.ndarray]] = None,
             confidence: Optional[Sequence[np.ndarray]] = None) -> List[Hand]:
    """The hands fitted to keypoints (each hand's detected ones by default).

    Args:
      hands: `Hand`s of one image or several (each keeps its own K).
      keypoints, confidence: per hand `[21, 2]` image pixels and `[21]`; default each
        hand's `keypoints` and `keypoint_confidence`.

    Returns:
      New `Hand`s: refined vertices, joints (3D, 2D), pose and shape;
      `refinement` says the 2D error (image pixels) before and after and the time taken.
      Hands without keypoints (or with fewer than `MIN_CONFIDENT_KEYPOINTS` confident
      ones: the bone term, as the released code's, trusts every keypoint) come back
      unchanged.
    """
    keypoints = [h.keypoints for h in hands] if keypoints is None else list(keypoints)
    confidence = ([h.keypoint_confidence for h in hands] if confidence is None
                  else list(confidence))
    todo = [i for i, k in enumerate(keypoints) if k is not None and (
        confidence[i] is None or np.count_nonzero(np.asarray(confidence[i]) >= np_camera.
                                                  MIN_CONFIDENCE) >= MIN_CONFIDENT_KEYPOINTS)]
    if not todo:
      return list(hands)
    begin = time.perf_counter()
    arrays = [self._start(hands[i], keypoints[i], confidence[i]) for i in todo]
    bucket = 1 << (len(arrays) - 1).bit_length()  # padded with copies of the first hand
    padded = arrays + [arrays[0]] * (bucket - len(arrays))
    batch = [np.stack([a[k] for a in padded]).astype(np.float32) for k in range(9)]
    vertices, joints, pose, shape, before, after = (t.numpy()[:len(arrays)]
                                                    for t in self._fit(*batch))
    milliseconds = 1000 * (time.perf_counter() - begin) / len(todo)
    refined = list(hands)
    for row, i in enumerate(todo):
      refined[i] = self._finish(hands[i], arrays[row], vertices[row], joints[row], pose[row],
                                shape[row], before[row], after[row], milliseconds)
    return refined

  def _start(self, hand: Hand, keypoints, confidence):
    """The fit's inputs for one hand, mirrored for a left one; the last item is the
    mirror's width (None for a right hand)."""
    keypoints = np.asarray(keypoints, np.float32)
    confidence = (np.ones(len(keypoints), np.float32) if confidence is None
                  else np.asarray(confidence, np.float32))
    joints3d, k, pose = hand.joints3d, np.asarray(hand.intrinsics, np.float32), hand.pose
    width = None
    if hand.side == "left":  # any width will do; this one maps the box onto itself
      width = 2 * float(hand.box[0]) + float(hand.box[2])
      flipped = mirror.mirror_outputs({"joints3d": joints3d, "pose": pose,
                                       "joints2d": keypoints}, width)
      joints3d, pose, keypoints = flipped["joints3d"], flipped["pose"], flipped["joints2d"]
      k = mirror.mirror_intrinsics(k, width)
    _, model_joints = self._mano(pose.reshape(1, 48), hand.shape[None])
    scale, rotation, translation = _similarity(model_joints.numpy()[0].astype(np.float64),
                                               joints3d.astype(np.float64))
    to_reference = REFERENCE_SIZE / float(hand.box[2])
    return [pose, hand.shape, rotation, [scale], translation, keypoints, confidence, k,
            to_reference, width]

  def _finish(self, hand, start, vertices, joints, pose, shape, before, after,
              milliseconds):
    width = start[-1]
    if width is not None:
      back = mirror.mirror_outputs({"vertices": vertices, "joints3d": joints, "pose": pose},
                                   width)
      vertices, joints, pose = back["vertices"], back["joints3d"], back["pose"]
    outputs = dict(hand.outputs, pose=pose, shape=shape)
    return dataclasses.replace(
        hand, vertices=vertices, joints3d=joints, outputs=outputs,
        joints2d=np_camera.project(joints, hand.intrinsics).astype(np.float32),
        refinement={"error_before_px": float(before), "error_after_px": float(after),
                    "iterations": self.settings.iterations, "ms_per_hand": milliseconds})


def for_model(model_path: Optional[str]) -> HandRefiner:
  """A refiner with the hand model `model_path` was trained with (`hand_model.npz` in
  its run folder or export), or the synthetic hand, with a warning, when none is there."""
  from absl import logging

  from hand_tf.contract import find_hand_model
  path = find_hand_model(model_path) if model_path else None
  if path is None:
    logging.warning("no hand_model.npz beside %s: refining with the synthetic hand",
                    model_path)
  return HandRefiner(path)


def refine_predictions(refiner: HandRefiner, predictions: Dict[str, np.ndarray], records,
                       batch_size: int = 64):
  """Dataset predictions (`hand_tf.eval.report.predict_records`) refined onto the
  records' keypoints, which must be a detector's (no 3D labels): the evaluation's
  "+ refinement" rows.  Every record is a right hand in its crop (FreiHAND's are).

  Returns:
    (`predictions` with vertices, joints3d, joints2d, pose and shape refined; the
    median milliseconds per refined hand, None when none had keypoints).
  """
  size = float(records.image_size)
  box = np.array([0.0, 0.0, size, size], np.float32)
  refined = {k: np.array(v) for k, v in predictions.items()}
  milliseconds = []
  for first in range(0, len(records), batch_size):
    rows = range(first, min(first + batch_size, len(records)))
    hands = [Hand(vertices=predictions["vertices"][i], faces=None,
                  joints3d=predictions["joints3d"][i], joints2d=predictions["joints2d"][i],
                  vertex_colors=None, box=box, intrinsics=records.intrinsics[i],
                  outputs={"pose": predictions["pose"][i], "shape": predictions["shape"][i]},
                  keypoints=records.keypoints[i], keypoint_confidence=records.confidence[i])
             for i in rows]
    for i, hand in zip(rows, refiner.refine(hands)):
      if hand.refinement is None:
        continue
      for name in ("vertices", "joints3d", "joints2d"):
        refined[name][i] = getattr(hand, name)
      refined["pose"][i], refined["shape"][i] = hand.pose, hand.shape
      milliseconds.append(hand.refinement["ms_per_hand"])
  return refined, (float(np.median(milliseconds)) if milliseconds else None)
