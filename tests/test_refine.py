"""Test-time refinement: a predicted hand fitted to its 2D keypoints."""

import dataclasses

import numpy as np
import pytest

from hand_tf import camera, losses, mirror
from hand_tf.reconstruct import Hand

K = np.array([[600.0, 0, 320], [0, 600, 240], [0, 0, 1]], np.float32)


def _posed(layer, fingers, offset):
  """[16, 3] pose (root as the network's), camera-frame vertices and joints."""
  pose = np.concatenate([[np.pi, 0, 0], fingers]).astype(np.float32).reshape(16, 3)
  vertices, joints = layer(pose.reshape(1, 48), np.zeros((1, 10), np.float32))
  return pose, vertices.numpy()[0] + offset, joints.numpy()[0] + offset


def _network_hand(layer, side, keypoints):
  """What a network might give: the mean hand, a few cm off, with the keypoints."""
  pose, vertices, joints = _posed(layer, np.zeros(45), [0.025, -0.005, 0.52])
  if side == "left":
    pose = pose * [1, -1, -1]
  box = np.array([*(keypoints.min(0) - 30), 0, 0], np.float32)
  box[2:] = np.ptp(keypoints, 0).max() + 60
  outputs = {"pose": pose, "shape": np.zeros(10, np.float32)}
  return Hand(vertices=vertices, faces=layer.faces, joints3d=joints,
              joints2d=camera.project(joints, K), vertex_colors=np.zeros((778, 3)),
              box=box, intrinsics=K, outputs=outputs, keypoints=keypoints,
              keypoint_confidence=np.ones(21, np.float32), side=side)


def test_refinement_fits_right_and_left_hands_to_their_keypoints_within_the_bounds():
  """A right hand and a left one (MANO's left model), articulated within the joint
  bounds, seen by a 'network' that gives the mean hand a few cm off: fitted together,
  both move onto their keypoints (error down 5x or more), their poses stay inside the bounds
  (skeleton prior 0), and each refined mesh is its side's MANO model in the refined pose."""
  from hand_tf.refine import HandRefiner, _similarity
  from mano_tf.layer import ManoLayer
  from mano_tf.pose_sampling import sample_articulations
  layers = {side: ManoLayer(use_pca=False, flat_hand_mean=True, side=side)
            for side in ("right", "left")}
  fingers = sample_articulations(np.random.default_rng(0), 1)[0].reshape(45)
  true_pose, _, true_joints = _posed(layers["right"], fingers, [0.02, -0.01, 0.5])
  assert float(losses.skeleton_loss(true_pose[None])) == 0.0
  keypoints = camera.project(true_joints, K)
  flipped = mirror.mirror_outputs({"joints2d": keypoints}, 640)["joints2d"]
  hands = [_network_hand(layers["right"], "right", keypoints),
           _network_hand(layers["left"], "left", flipped)]
  before = [np.linalg.norm(h.joints2d - h.keypoints, axis=1).mean() for h in hands]
  refined = HandRefiner().refine(hands)
  for hand, error in zip(refined, before):
    assert error > 40
    after = np.linalg.norm(hand.joints2d - hand.keypoints, axis=1).mean()
    # Measured: 46 -> 5.5 px (right), 92 -> 5.1 px (left) in the 151 steps.
    assert after < 0.2 * error
    assert hand.refinement["error_after_px"] == pytest.approx(after, abs=1e-2)
    assert hand.refinement["error_before_px"] == pytest.approx(error, rel=1e-3)
    right_pose = hand.pose if hand.side == "right" else hand.pose * [1, -1, -1]
    assert float(losses.skeleton_loss(right_pose[None])) < 1e-6
    vertices, joints = layers[hand.side](hand.pose.reshape(1, 48), hand.shape[None])
    s, r, t = _similarity(joints.numpy()[0], hand.joints3d)
    np.testing.assert_allclose(vertices.numpy()[0] @ (s * r).T + t, hand.vertices, atol=1e-4)


def test_hands_without_keypoints_come_back_unchanged():
  from hand_tf.refine import HandRefiner
  from mano_tf.layer import ManoLayer
  hand = _network_hand(ManoLayer(use_pca=False, flat_hand_mean=True), "right",
                       np.full((21, 2), 100.0, np.float32))
  hand = dataclasses.replace(hand, keypoints=None)
  assert HandRefiner().refine([hand]) == [hand]
