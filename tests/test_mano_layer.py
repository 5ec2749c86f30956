"""ManoLayer: rest pose, rigid global rotation, PCA path, mirroring, XLA, gradients, config."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy.spatial.transform import Rotation

from mano_tf import constants
from mano_tf.layer import ManoLayer, get_mano_model


@pytest.fixture(scope="module")
def layer():
  return ManoLayer(use_pca=False, flat_hand_mean=True)


def _random_pose(rng, batch, scale=0.3):
  return rng.normal(0.0, scale, (batch, 48)).astype(np.float32)


def test_zero_pose_gives_template_joints(layer, synthetic_model):
  vertices, joints = layer(tf.zeros([1, 48]), tf.zeros([1, 10]))
  rest = synthetic_model.rest_joints
  tips = synthetic_model.v_template[synthetic_model.tip_vertex_ids]
  expected = np.concatenate([rest, tips])[list(constants.MANO_TO_KEYPOINT)]
  np.testing.assert_allclose(joints[0], expected, atol=1e-6)
  np.testing.assert_allclose(vertices[0], synthetic_model.v_template, atol=1e-6)


def test_global_rotation_is_rigid_about_the_wrist(layer, synthetic_model):
  rotation = np.array([0.4, -1.1, 0.7], np.float32)
  pose = np.zeros((1, 48), np.float32)
  pose[0, :3] = rotation
  vertices, joints = layer(pose, tf.zeros([1, 10]))
  r = Rotation.from_rotvec(rotation).as_matrix()
  wrist = synthetic_model.rest_joints[0]
  expected = (synthetic_model.v_template - wrist) @ r.T + wrist
  np.testing.assert_allclose(vertices[0], expected, atol=2e-6)
  _, rest_joints = layer(tf.zeros([1, 48]), tf.zeros([1, 10]))
  np.testing.assert_allclose(joints[0], (rest_joints[0] - wrist) @ r.T + wrist, atol=2e-6)


def test_pca_with_all_components_equals_axis_angle(synthetic_model):
  rng = np.random.default_rng(0)
  pca = ManoLayer(use_pca=True, ncomps=45)
  axis_angle = ManoLayer(use_pca=False)
  coefficients = _random_pose(rng, 4)
  articulation = coefficients[:, 3:] @ synthetic_model.hands_components
  full = np.concatenate([coefficients[:, :3], articulation], axis=1).astype(np.float32)
  betas = rng.normal(size=(4, 10)).astype(np.float32)
  for a, b in zip(pca(coefficients, betas), axis_angle(full, betas)):
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_fewer_components_and_mean_pose(synthetic_model):
  layer = ManoLayer(use_pca=True, ncomps=30)
  assert layer.pose_size == 33
  decoded = layer.axis_angle_pose(tf.zeros([1, 33]))
  np.testing.assert_allclose(decoded[0, 1:].numpy().ravel(), synthetic_model.hands_mean,
                             atol=1e-6)


def test_left_hand_is_mirrored_right(synthetic_model_dir):
  rng = np.random.default_rng(1)
  right = ManoLayer(model_path=str(synthetic_model_dir), side="right", ncomps=12)
  left = ManoLayer(model_path=str(synthetic_model_dir), side="left", ncomps=12)
  pose = _random_pose(rng, 3)[:, :15]
  mirrored = pose.copy()
  mirrored[:, 1:3] *= -1  # the global rotation (a, b, c) mirrors to (a, -b, -c)
  betas = rng.normal(size=(3, 10)).astype(np.float32)
  v_right, j_right = right(pose, betas)
  v_left, j_left = left(mirrored, betas)
  flip = np.array([-1.0, 1.0, 1.0], np.float32)
  np.testing.assert_allclose(v_left, v_right * flip, atol=1e-5)
  np.testing.assert_allclose(j_left, j_right * flip, atol=1e-5)


def test_default_is_synthetic_and_file_path_matches(synthetic_model_dir):
  rng = np.random.default_rng(2)
  pose = _random_pose(rng, 2)
  betas = rng.normal(size=(2, 10)).astype(np.float32)
  default = ManoLayer(use_pca=False)(pose, betas)
  from_file = ManoLayer(model_path=str(synthetic_model_dir / "MANO_RIGHT.pkl"),
                        use_pca=False)(pose, betas)
  for a, b in zip(default, from_file):
    np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("batch", [1, 64])
def test_xla_matches_eager(batch):
  rng = np.random.default_rng(batch)
  layer = ManoLayer(ncomps=30)
  pose = _random_pose(rng, batch)[:, :33]
  betas = rng.normal(size=(batch, 10)).astype(np.float32)
  eager = layer(pose, betas)
  compiled = tf.function(layer.__call__, jit_compile=True)(pose, betas)
  graph = tf.function(layer.__call__)(pose, betas)
  for e, c, g in zip(eager, compiled, graph):
    assert e.shape == (batch, 778, 3) or e.shape == (batch, 21, 3)
    np.testing.assert_allclose(c, e, atol=2e-5)
    np.testing.assert_allclose(g, e, atol=1e-6)


@pytest.mark.parametrize("flat", [True, False])
def test_gradients_are_finite_at_zero_pose(flat):
  layer = ManoLayer(use_pca=False, flat_hand_mean=flat)
  pose = tf.zeros([2, 48])
  betas = tf.zeros([2, 10])
  with tf.GradientTape() as tape:
    tape.watch([pose, betas])
    vertices, joints = layer(pose, betas)
    loss = tf.reduce_sum(tf.sin(vertices * 10.0)) + tf.reduce_sum(joints ** 2)
  grads = tape.gradient(loss, [pose, betas])
  for g in grads:
    assert np.all(np.isfinite(g.numpy()))
  # A bend of a joint at the zero pose moves the mesh, so the gradient is not zero.
  assert np.abs(grads[0].numpy()).max() > 1e-4


def test_rodrigues_gradient_matches_finite_difference():
  from mano_tf.lbs import axis_angle_to_matrix
  for r0 in (np.zeros(3), np.array([0.3, -0.2, 0.5])):
    r = tf.constant(r0, tf.float64)
    with tf.GradientTape() as tape:
      tape.watch(r)
      value = tf.reduce_sum(axis_angle_to_matrix(r) * np.arange(9.0).reshape(3, 3))
    grad = tape.gradient(value, r).numpy()
    eps = 1e-6
    numeric = [(tf.reduce_sum(axis_angle_to_matrix(r + d) * np.arange(9.0).reshape(3, 3))
                - tf.reduce_sum(axis_angle_to_matrix(r - d) * np.arange(9.0).reshape(3, 3)))
               .numpy() / (2 * eps) for d in np.eye(3) * eps]
    np.testing.assert_allclose(grad, numeric, atol=1e-5)


def test_root_relative_output():
  layer = ManoLayer(use_pca=False, root_relative=True)
  vertices, joints = layer(_random_pose(np.random.default_rng(3), 2), tf.zeros([2, 10]))
  np.testing.assert_allclose(joints[:, 0], 0.0, atol=1e-7)
  assert np.abs(vertices.numpy()).max() < 0.25


def test_config_round_trip_and_keras_model_save(tmp_path):
  layer = ManoLayer(ncomps=20, flat_hand_mean=True, root_relative=True, name="mano")
  clone = ManoLayer.from_config(layer.get_config())
  assert clone.get_config() == layer.get_config()
  pose_in = keras.Input((23,))
  betas_in = keras.Input((10,))
  vertices, joints = layer(pose_in, betas_in)
  model = keras.Model([pose_in, betas_in], [vertices, joints])
  path = tmp_path / "mano.keras"
  model.save(path)
  restored = keras.models.load_model(path)
  rng = np.random.default_rng(4)
  inputs = [rng.normal(size=(2, 23)).astype(np.float32), np.zeros((2, 10), np.float32)]
  for a, b in zip(model.predict(inputs, verbose=0), restored.predict(inputs, verbose=0)):
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_bad_inputs_are_reported():
  layer = ManoLayer(ncomps=10)
  with pytest.raises(ValueError, match="pose must have 13 values"):
    layer(tf.zeros([1, 48]), tf.zeros([1, 10]))
  with pytest.raises(ValueError, match=r"betas must have shape \[B, 10\]"):
    layer(tf.zeros([1, 13]), tf.zeros([1, 5]))
  with pytest.raises(ValueError, match="ncomps must be in"):
    ManoLayer(ncomps=3)
  with pytest.raises(ValueError, match="side must be one of"):
    get_mano_model(None, "middle")


def _numpy_mano(model, pose, betas):
  """Textbook MANO in NumPy, written from the paper's equations and nothing in mano_tf:
  blend shapes, pose correctives from (R - I), forward kinematics, linear blend skinning.

  Args: pose [16, 3] axis-angle (root first, no mean added), betas [10].
  Returns: vertices [778, 3] and the 21 keypoints in FreiHAND order.
  """
  rotations = Rotation.from_rotvec(pose).as_matrix()  # [16, 3, 3]
  shaped = model.v_template + model.shapedirs @ betas
  rest = model.j_regressor @ shaped
  correctives = (rotations[1:] - np.eye(3)).reshape(-1)  # 15 joints x 9, row-major
  posed = shaped + model.posedirs @ correctives
  world = np.zeros((16, 4, 4))
  for k, parent in enumerate(model.parents):
    local = np.eye(4)
    local[:3, :3] = rotations[k]
    local[:3, 3] = rest[k] - (rest[parent] if parent >= 0 else 0.0)
    world[k] = local if parent < 0 else world[parent] @ local
  # Each joint's transform of rest-pose points: undo the rest joint, then apply G_k.
  relative = world.copy()
  relative[:, :3, 3] -= np.einsum("kij,kj->ki", world[:, :3, :3], rest)
  blended = np.einsum("vk,kij->vij", model.weights, relative)
  vertices = np.einsum("vij,vj->vi", blended[:, :3, :3], posed) + blended[:, :3, 3]
  mano_joints = world[:, :3, 3]
  # MANO numbers joints wrist, index 1-3, middle, pinky, ring, thumb; FreiHAND wants the
  # wrist then thumb, index, middle, ring, pinky, each from the palm to the tip.
  chains = {"thumb": [13, 14, 15], "index": [1, 2, 3], "middle": [4, 5, 6],
            "ring": [10, 11, 12], "pinky": [7, 8, 9]}
  tip_ids = dict(zip(("thumb", "index", "middle", "ring", "pinky"), model.tip_vertex_ids))
  keypoints = [mano_joints[0]]
  for finger in ("thumb", "index", "middle", "ring", "pinky"):
    keypoints += [mano_joints[j] for j in chains[finger]] + [vertices[tip_ids[finger]]]
  return vertices, np.stack(keypoints)


def test_a_posed_shaped_hand_matches_independent_numpy_skinning(synthetic_model, tmp_path):
  """Every joint bent (up to ~70 degrees), a non-zero shape: the layer's mesh and
  keypoints equal a separate NumPy MANO to float32 precision."""
  import dataclasses

  from mano_tf.model_file import save_mano_model
  rng = np.random.default_rng(7)
  # Pose correctives on every entry of every (R - I): the synthetic hand's use only the
  # diagonal, which would hide a transposed or misordered pose feature.
  model = dataclasses.replace(synthetic_model, posedirs=rng.normal(
      0.0, 1e-3, synthetic_model.posedirs.shape))
  save_mano_model(model, tmp_path / "MANO_RIGHT.pkl")
  layer = ManoLayer(str(tmp_path / "MANO_RIGHT.pkl"), use_pca=False, flat_hand_mean=True)
  pose = rng.normal(0.0, 0.5, (3, 16, 3))
  betas = rng.normal(0.0, 1.0, (3, 10))
  vertices, joints = layer(pose.reshape(3, 48).astype(np.float32), betas.astype(np.float32))
  for i in range(3):
    expected_vertices, expected_joints = _numpy_mano(model, pose[i], betas[i])
    np.testing.assert_allclose(vertices[i], expected_vertices, atol=2e-6)
    np.testing.assert_allclose(joints[i], expected_joints, atol=2e-6)
  # The pose actually moved the hand well away from its rest shape (not a trivial pass).
  rest = _numpy_mano(model, np.zeros((16, 3)), betas[0])[0]
  assert np.abs(vertices[0] - rest).max() > 0.02
