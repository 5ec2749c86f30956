"""The synthetic hand model: counts, topology, proportions, rig and joint conventions."""

import collections

import numpy as np
import pytest
import scipy.sparse.csgraph
import tensorflow as tf

from mano_tf import constants, pose_sampling
from mano_tf.layer import ManoLayer
from mano_tf.synthetic import build_rest_hand, build_synthetic_mano, geometry


def _directed_edges(faces):
  return collections.Counter((int(f[k]), int(f[(k + 1) % 3])) for f in faces for k in range(3))


def test_counts_and_dtypes(synthetic_model):
  m = synthetic_model
  assert m.v_template.shape == (778, 3)
  assert m.faces.shape == (1538, 3)
  assert m.shapedirs.shape == (778, 3, 10)
  assert m.posedirs.shape == (778, 3, 135)
  assert m.j_regressor.shape == (16, 778)
  assert m.weights.shape == (778, 16)
  assert tuple(m.parents) == constants.MANO_PARENTS
  assert m.hands_components.shape == (45, 45) and m.hands_mean.shape == (45,)


def test_mesh_is_one_consistently_oriented_closed_surface_with_a_wrist_opening(synthetic_model):
  faces, vertices = synthetic_model.faces, synthetic_model.v_template
  directed = _directed_edges(faces)
  assert max(directed.values()) == 1  # each directed edge once: consistent orientation
  boundary = [(u, v) for (u, v) in directed if (v, u) not in directed]
  assert len(boundary) == 16  # the wrist opening, like MANO's
  successor = dict(boundary)
  loop = [boundary[0][0]]
  while successor[loop[-1]] != loop[0]:
    loop.append(successor[loop[-1]])
  assert len(loop) == 16  # a single loop
  assert np.ptp(vertices[loop][:, 0]) < 0.005  # a flat cut across the forearm
  adjacency = scipy.sparse.coo_matrix(
      (np.ones(len(directed)), tuple(np.array(list(directed)).T)), shape=(778, 778))
  n_components, _ = scipy.sparse.csgraph.connected_components(adjacency, directed=False)
  assert n_components == 1
  assert len(np.unique(faces)) == 778
  tri = vertices[faces]
  areas = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
  assert areas.min() > 1e-6  # no degenerate triangles (>1 mm^2)
  # Outward orientation: the signed volume (wrist opening closed by a fan) is positive.
  center = vertices[loop].mean(axis=0)
  volume = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6.0
  volume += sum(np.dot(vertices[v], np.cross(vertices[u], center)) for u, v in boundary) / 6.0
  assert 150e-6 < volume < 600e-6  # a hand is a few hundred cm^3


def test_bone_lengths_are_human(synthetic_model):
  layer = ManoLayer(use_pca=False, flat_hand_mean=True)
  _, joints = layer(tf.zeros([1, 48]), tf.zeros([1, 10]))
  joints = joints[0].numpy()
  lengths = {(p, c): np.linalg.norm(joints[c] - joints[p]) for p, c in constants.BONES}
  assert 0.035 <= lengths[constants.SCALE_BONE] <= 0.045  # middle proximal phalanx ~4 cm
  finger_bones = [b for b in constants.BONES if b[0] != 0]
  assert all(0.015 <= lengths[b] <= 0.05 for b in finger_bones), lengths
  assert all(0.05 <= lengths[(0, c)] <= 0.11 for c in (5, 9, 13, 17))  # metacarpals
  hand_length = np.linalg.norm(joints[12] - joints[0])
  assert 0.15 <= hand_length <= 0.21
  # Finger length order of a human hand: middle > ring ~ index > little.
  finger = lambda k: sum(lengths[(k + i, k + i + 1)] for i in range(3))  # noqa: E731
  assert finger(9) > finger(13) > finger(17) and finger(9) > finger(5) > finger(17)


def test_fingertips_are_at_the_ends_of_the_fingers(synthetic_model):
  vertices = synthetic_model.v_template
  rest = synthetic_model.rest_joints
  for tip, (name, joints) in zip(synthetic_model.tip_vertex_ids,
                                 [(n, constants.MANO_FINGERS[n]) for n in constants.TIP_ORDER]):
    base, last = rest[joints[0]], rest[joints[2]]
    direction = (last - base) / np.linalg.norm(last - base)
    near_axis = np.linalg.norm(np.cross(vertices - base, direction), axis=1) < 0.015
    along = (vertices - base) @ direction
    assert along[tip] >= along[near_axis].max() - 1e-4, name
    assert 0.012 < np.linalg.norm(vertices[tip] - last) < 0.035, name


def test_the_fingers_part_past_their_knuckles_as_on_a_real_hand():
  # A detector trained on photos reads the knuckles from where the fingers part: on a
  # real hand the webs lie 1.5-2.5 cm past the MCP joints.  Fingers leaving the palm
  # at the knuckles had MediaPipe put every joint a knuckle's breadth towards the wrist.
  hand = build_rest_hand()
  for name in geometry.FINGER_ORDER:
    spec = geometry.FINGERS[name]
    direction = geometry.finger_direction(spec.fan_deg)
    along = (hand.points - np.asarray(spec.mcp)) @ direction
    lateral = np.abs((hand.points - np.asarray(spec.mcp)) @ np.cross(direction, [0, 1, 0]))
    own = lateral < spec.radius[0]
    palm_reach = along[own & (hand.region == geometry.PALM)].max()
    finger_start = along[hand.region == geometry.FINGER_REGIONS[name]].min()
    assert palm_reach > 0.012, name
    assert finger_start > palm_reach, name
    # The MCP joint is regressed from the palm's skin around it.
    mcp = geometry.FINGER_JOINTS[name][0]
    assert np.all(hand.region[hand.joint_rings[mcp]] == geometry.PALM), name


def test_joint_regressor_and_weights(synthetic_model, ):
  m = synthetic_model
  np.testing.assert_allclose(m.j_regressor.sum(axis=1), 1.0, atol=1e-9)
  assert m.j_regressor.min() >= 0 and np.count_nonzero(m.j_regressor) < 16 * 45
  np.testing.assert_allclose(m.weights.sum(axis=1), 1.0, atol=1e-9)
  assert m.weights.min() >= 0.0
  # Smooth: along every edge the weights change by less than half.
  edges = np.concatenate([m.faces[:, [0, 1]], m.faces[:, [1, 2]], m.faces[:, [2, 0]]])
  assert np.abs(m.weights[edges[:, 0]] - m.weights[edges[:, 1]]).max() < 0.5
  # Every joint moves some skin.
  assert np.all(m.weights.max(axis=0) > 0.5)


def _tip_motion(joint, component, degrees):
  layer = ManoLayer(use_pca=False, flat_hand_mean=True)
  pose = np.zeros((2, 48), np.float32)
  pose[1, 3 * joint + component] = np.deg2rad(degrees)
  _, joints = layer(pose, tf.zeros([2, 10]))
  return (joints[1] - joints[0]).numpy()


def test_joint_frames_follow_the_mano_convention():
  # Bend = +z rotation: the index tip moves towards the palm (-y) by several cm.
  motion = _tip_motion(1, 2, 60.0)[8]
  assert motion[1] < -0.03 and abs(motion[2]) < 0.01
  # Hyper-extension (-z) moves it the other way.
  assert _tip_motion(1, 2, -30.0)[8][1] > 0.01
  # Spread = y rotation: the tip moves sideways within the palm plane.
  motion = _tip_motion(1, 1, 20.0)[8]
  assert abs(motion[2]) > 0.015 and abs(motion[1]) < 0.003
  # Twist = x rotation about the finger's own axis: the tip barely moves.
  assert np.linalg.norm(_tip_motion(1, 0, 20.0)[8]) < 0.006
  # The thumb's IP joint flexes about z towards the palm as well.
  assert _tip_motion(15, 2, 60.0)[4][1] < -0.01


def test_sampled_poses_are_within_the_prior_and_hyperextension_is_not():
  poses = pose_sampling.sample_articulations(np.random.default_rng(0), 2000)
  assert np.all(pose_sampling.skeleton_prior_violation(poses) == 0.0)
  assert poses[:, :, 2].max() > np.deg2rad(80)  # the samples do close the hand
  hyper = np.zeros((15, 3))
  hyper[1, 2] = np.deg2rad(-40.0)  # index PIP bent backwards
  assert pose_sampling.skeleton_prior_violation(hyper) > 0.4


def test_pose_pca_is_orthonormal_and_its_mean_is_plausible(synthetic_model):
  components = synthetic_model.hands_components
  np.testing.assert_allclose(components @ components.T, np.eye(45), atol=1e-9)
  mean = synthetic_model.hands_mean.reshape(1, 15, 3)
  assert pose_sampling.skeleton_prior_violation(mean)[0] == 0.0
  # The leading component captures the grasp: mostly finger bends (z components).
  bend_share = np.sum(components[0].reshape(15, 3)[:, 2] ** 2)
  assert bend_share > 0.7


def test_shape_directions_mean_something(synthetic_model):
  layer = ManoLayer(use_pca=False, flat_hand_mean=True)
  betas = np.zeros((11, 10), np.float32)
  betas[1:] = 2.0 * np.eye(10)
  vertices, joints = layer(tf.zeros([11, 48]), betas)
  joints, vertices = joints.numpy(), vertices.numpy()
  hand_length = np.linalg.norm(joints[:, 12] - joints[:, 0], axis=1)
  palm_width = np.linalg.norm(joints[:, 5] - joints[:, 17], axis=1)
  middle_finger = np.linalg.norm(joints[:, 12] - joints[:, 9], axis=1)
  thumb = np.linalg.norm(joints[:, 4] - joints[:, 1], axis=1)
  assert hand_length[1] / hand_length[0] == pytest.approx(1.1, abs=0.01)  # size
  assert middle_finger[2] > 1.05 * middle_finger[0]  # finger length
  assert palm_width[3] > 1.05 * palm_width[0]  # palm width
  thickness = np.ptp(vertices[:, :, 1], axis=1)
  assert thickness[4] > thickness[0]  # palm thickness
  assert thumb[6] > 1.05 * thumb[0]  # thumb size
  # All ten directions are distinct (no two nearly parallel).
  flat = synthetic_model.shapedirs.reshape(-1, 10)
  flat = flat / np.linalg.norm(flat, axis=0)
  cosines = np.abs(flat.T @ flat - np.eye(10))
  assert cosines.max() < 0.95


def test_pose_correctives_are_small_but_present(synthetic_model):
  assert np.abs(synthetic_model.posedirs).max() > 1e-4
  layer = ManoLayer(use_pca=False, flat_hand_mean=True)
  no_correctives = ManoLayer(use_pca=False, flat_hand_mean=True)
  no_correctives._posedirs = tf.zeros_like(no_correctives._posedirs)
  pose = np.zeros((1, 48), np.float32)
  pose[0, 3 * 2 + 2] = np.deg2rad(90)  # index PIP at 90 degrees
  difference = layer(pose, tf.zeros([1, 10]))[0] - no_correctives(pose, tf.zeros([1, 10]))[0]
  assert 0.0005 < np.abs(difference.numpy()).max() < 0.003


def test_generator_is_deterministic_and_left_is_mirrored():
  a, b = build_rest_hand(), build_rest_hand()
  np.testing.assert_array_equal(a.points, b.points)
  np.testing.assert_array_equal(a.faces, b.faces)
  right, left = build_synthetic_mano("right"), build_synthetic_mano("left")
  np.testing.assert_allclose(left.v_template, right.v_template * [-1, 1, 1])
  # Mirrored faces still face outwards: winding swapped.
  np.testing.assert_array_equal(left.faces, right.faces[:, [0, 2, 1]])


def test_cli_writes_a_loadable_file(tmp_path):
  import subprocess
  import sys
  out = tmp_path / "SYNTH_MANO_LEFT.npz"
  subprocess.run([sys.executable, "-m", "mano_tf.synthetic", "--out", str(out), "--side", "left"],
                 check=True, capture_output=True)
  from mano_tf.model_file import load_mano_model
  loaded = load_mano_model(out)
  np.testing.assert_allclose(loaded.v_template, build_synthetic_mano("left").v_template)
