"""The 'realistic' synthetic generator: a forearm grown from the wrist opening, and sets
that stay deterministic per seed in the FreiHAND layout."""

import json

import cv2
import numpy as np
import pytest

from hand_tf.data.freihand import read_freihand
from hand_tf.synthetic import forearm, realism
from hand_tf.synthetic.dataset import synthesize


def _directed_edges(faces):
  return [(int(f[k]), int(f[(k + 1) % 3])) for f in faces for k in range(3)]


def test_the_arm_closes_the_hand_into_one_consistently_wound_surface(synthetic_model):
  """Hand + arm is closed and oriented: every edge is crossed once each way (a face
  wound the wrong way, or a gap at the wrist, would leave an edge crossed twice the
  same way or once); the arm leaves the hand away from the fingers; the hand's
  vertices are untouched."""
  faces = np.asarray(synthetic_model.faces)
  hand = np.asarray(synthetic_model.v_template)
  loop = forearm.wrist_opening(faces)
  assert len(loop) == 16
  vertices, all_faces, along = forearm.attach(hand, faces, loop, length=0.25, widening=1.2)
  edges = _directed_edges(all_faces)
  assert len(set(edges)) == len(edges)  # no edge crossed twice the same way
  assert all((v, u) in set(edges) for u, v in edges)  # closed
  np.testing.assert_array_equal(vertices[:len(hand)], hand.astype(np.float32))
  assert along.max() == pytest.approx(0.25) and along.min() > 0
  # The fingers point along -x in MANO's frame: the arm goes to +x, 25 cm on.
  arm = vertices[len(hand):]
  assert arm[:, 0].max() > hand[:, 0].max() + 0.2


def test_a_held_object_is_a_closed_outward_wound_cylinder_off_the_palm(synthetic_model):
  """Closed and consistently wound (as the arm), its faces pointing away from its axis
  or out of its ends, on the palm's side of the hand."""
  from mano_tf.layer import ManoLayer
  layer = ManoLayer(use_pca=False, flat_hand_mean=True)
  _, joints = layer(np.zeros((1, 48), np.float32), np.zeros((1, 10), np.float32))
  keypoints = joints.numpy()[0]
  draws = realism.held_object_draws(np.random.default_rng(0))
  vertices, faces = realism.held_object(keypoints, draws)
  edges = _directed_edges(faces)
  assert len(set(edges)) == len(edges) and all((v, u) in set(edges) for u, v in edges)
  center = vertices[-2:].mean(axis=0)
  normals = np.cross(vertices[faces[:, 1]] - vertices[faces[:, 0]],
                     vertices[faces[:, 2]] - vertices[faces[:, 0]])
  outwards = np.einsum("ij,ij->i", normals, vertices[faces].mean(axis=1) - center)
  assert np.all(outwards > 0)
  palm_side = np.cross(keypoints[5] - keypoints[0], keypoints[17] - keypoints[0])
  assert np.dot(center - keypoints[[0, 5, 9, 13, 17]].mean(axis=0), palm_side) > 0


def test_a_mesh_without_an_opening_is_refused():
  tetrahedron = np.array([[0, 2, 1], [0, 1, 3], [1, 2, 3], [0, 3, 2]])
  with pytest.raises(ValueError, match="no boundary"):
    forearm.wrist_opening(tetrahedron)


def test_views_show_the_fingers_up_and_the_palm_or_back_to_the_camera(synthetic_model):
  """Rotated by a sampled view, the wrist-to-middle-knuckle direction points up in the
  image (y < 0) most of the time and the palm's normal mostly along the optical axis."""
  from scipy.spatial.transform import Rotation

  from mano_tf.layer import ManoLayer
  layer = ManoLayer(use_pca=False, flat_hand_mean=True)
  _, joints = layer(np.zeros((1, 48), np.float32), np.zeros((1, 10), np.float32))
  rest = joints.numpy()[0]
  rng = np.random.default_rng(0)
  up, facing = [], []
  for _ in range(200):
    rotation = Rotation.from_rotvec(realism.sample_view_rotation(rng, rest))
    finger = rotation.apply(rest[9] - rest[0])
    palm = rotation.apply(np.cross(rest[5] - rest[0], rest[17] - rest[0]))
    up.append(-finger[1] / np.linalg.norm(finger))
    facing.append(abs(palm[2]) / np.linalg.norm(palm))
  assert np.mean(np.array(up) > 0.3) > 0.8
  assert np.median(facing) > 0.6


def test_realistic_sets_are_deterministic_per_seed_whatever_the_batch_size(tmp_path):
  """Sample i depends on (seed, i) only, as the plain generator's, held objects
  included; the set reads as a FreiHAND split."""
  first, second = tmp_path / "a", tmp_path / "b"
  synthesize(str(first), 3, image_size=96, seed=4, batch_size=3, progress=False,
             generator="realistic", occluders=True)
  synthesize(str(second), 2, image_size=96, seed=4, batch_size=1, progress=False,
             generator="realistic", occluders=True)
  for name in ("training_xyz.json", "training_K.json", "training_mano.json"):
    a = np.array(json.loads((first / name).read_text()))
    b = np.array(json.loads((second / name).read_text()))
    np.testing.assert_allclose(a[:2], b, atol=1e-6)
  for i in range(2):
    a, b = (cv2.imread(str(d / "training" / "rgb" / ("%08d.jpg" % i))).astype(int)
            for d in (first, second))
    assert np.abs(a - b).max() <= 2
  summary = json.loads((first / "training_synthesis.json").read_text())
  assert summary["generator"] == "realistic"
  records = read_freihand(str(first), detections=str(first / "training_detections.json"),
                          image_size=96, source_size=96)
  assert len(records) == 3 and records.vertices.shape == (3, 778, 3)
  # Another seed, other images.
  synthesize(str(tmp_path / "c"), 1, image_size=96, seed=5, progress=False,
             generator="realistic", occluders=True)
  other = cv2.imread(str(tmp_path / "c" / "training" / "rgb" / "00000000.jpg")).astype(int)
  same = cv2.imread(str(first / "training" / "rgb" / "00000000.jpg")).astype(int)
  assert np.abs(other - same).mean() > 10
