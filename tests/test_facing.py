"""The facing term and the rotation head: the target is the mean hand fitted to the 2D
keypoints, in the frame the network's rotation lives in, for either representation."""

import numpy as np
import pytest
import tensorflow as tf

from hand_tf import camera, losses
from hand_tf.data import pipeline
from hand_tf.eval.template import mean_hand_of
from hand_tf.model import rotation
from hand_tf.model.s2hand import PlaceHand
from hand_tf.training import facing
from mano_tf import constants, lbs

SIZE = 128
N = 8


def _place(representation, turn, rng):
  """Eight articulated hands placed by the network's own layer, 0.4 m away."""
  layer = PlaceHand(ncomps=30, rotation_representation=representation)
  pose = rng.normal(0, 0.5, (N, 30)).astype(np.float32)
  intrinsics = np.tile(camera.default_intrinsics(SIZE, SIZE)[None], (N, 1, 1)).astype(np.float32)
  hand = layer(pose, np.zeros((N, constants.NUM_BETAS), np.float32), turn,
               np.tile([[0.0, 0.0, 0.4]], (N, 1)).astype(np.float32),
               np.ones((N, 1), np.float32), intrinsics)
  return hand, intrinsics, mean_hand_of(layer.mano)[1]


@pytest.fixture(scope="module")
def hands():
  rng = np.random.default_rng(0)
  turn = rng.normal(size=(N, 3)).astype(np.float32)
  hand, intrinsics, mean = _place("axis_angle", turn, rng)
  return {"hand": hand, "keypoints": hand["joints2d"].numpy(), "intrinsics": intrinsics,
          "mean_joints": mean}


def test_the_target_is_the_rotation_that_drew_the_keypoints(hands):
  target, weight = facing.facing_targets(hands["keypoints"], np.ones((N, 21)),
                                         hands["intrinsics"], hands["mean_joints"])
  np.testing.assert_array_equal(weight, np.ones(N))
  predicted = hands["hand"]["hand_rotation"]
  # Articulated hands against the mean hand, under perspective: within ~20 degrees.
  assert float(losses.facing_loss(predicted, target, weight)) < 0.03
  turned_round = tf.matmul(predicted, lbs.axis_angle_to_matrix(tf.constant([0.0, np.pi, 0.0])))
  assert float(losses.facing_loss(turned_round, target, weight)) > 0.9
  np.testing.assert_allclose(np.linalg.det(target.numpy()), 1.0, atol=1e-4)


def test_hands_with_too_few_confident_keypoints_get_no_target(hands):
  confidence = np.ones((N, 21), np.float32)
  confidence[0] = 0.0                      # not found
  confidence[1, :14] = 0.1                 # 7 confident keypoints
  confidence[2, :13] = 0.1                 # 8
  target, weight = facing.facing_targets(hands["keypoints"], confidence, hands["intrinsics"],
                                         hands["mean_joints"])
  np.testing.assert_array_equal(weight, [0, 0, 1, 1, 1, 1, 1, 1])
  assert np.all(np.isfinite(target.numpy()))
  # Only the hands with a target count: the others, turned round, change nothing.
  predicted = hands["hand"]["hand_rotation"].numpy()
  predicted[:2] = -predicted[:2]
  assert float(losses.facing_loss(predicted, target, weight)) < 0.03


def test_augmented_keypoints_and_intrinsics_give_the_same_target(hands):
  """Augmentation turns the image and K together (K' = A K): the hand's rotation that
  reprojects through K' is unchanged, and so must the target be."""
  element = {"image": tf.zeros([SIZE, SIZE, 3]), "keypoints": hands["keypoints"][3],
             "intrinsics": hands["intrinsics"][3], "confidence": tf.ones([21])}
  config = pipeline.AugmentConfig(rotation_degrees=180.0)
  augmented = pipeline.augment(element, tf.constant([1, 2], tf.int64), config, SIZE)
  assert float(tf.reduce_max(tf.abs(augmented["keypoints"] - element["keypoints"]))) > 5.0
  before, _ = facing.facing_targets(element["keypoints"][None], np.ones((1, 21)),
                                    element["intrinsics"][None], hands["mean_joints"])
  after, _ = facing.facing_targets(augmented["keypoints"][None], np.ones((1, 21)),
                                   augmented["intrinsics"][None], hands["mean_joints"])
  assert float(losses.facing_loss(after, before, tf.ones([1]))) < 1e-3


def test_the_6d_head_places_the_same_hand_and_reports_its_axis_angle(hands):
  """The same turn given as 6D (the matrix's first two columns) places the same hand, and
  the reported rotation is its axis-angle, turns past 180 degrees' wrap included."""
  rng = np.random.default_rng(0)
  turn = rng.normal(size=(N, 3)).astype(np.float32)
  matrix = lbs.axis_angle_to_matrix(turn).numpy()
  six_d = np.concatenate([matrix[..., 0], matrix[..., 1]], -1) * 3.0  # any length
  hand, _, _ = _place("6d", six_d, rng)
  np.testing.assert_allclose(hand["joints3d"], hands["hand"]["joints3d"], atol=1e-5)
  np.testing.assert_allclose(hand["hand_rotation"], hands["hand"]["hand_rotation"], atol=1e-5)
  reported = lbs.axis_angle_to_matrix(hand["rotation"]).numpy()
  np.testing.assert_allclose(reported, matrix, atol=1e-4)
  assert np.all(np.linalg.norm(hand["rotation"], axis=-1) <= np.pi + 1e-5)
  np.testing.assert_allclose(rotation.matrix_from_6d(rotation.IDENTITY["6d"]), np.eye(3))


def test_the_reported_axis_angle_is_the_matrix_turn_near_0_and_180_degrees_too():
  from scipy.spatial.transform import Rotation
  rng = np.random.default_rng(1)
  axes = rng.normal(size=(40, 3))
  axes /= np.linalg.norm(axes, axis=-1, keepdims=True)
  angles = np.concatenate([rng.uniform(0, np.pi, 16), [0.0, 1e-7, 1e-4, 0.01],
                           np.pi - np.array([0.0, 1e-6, 1e-3, 0.02] * 5)])
  turns = Rotation.from_rotvec(axes * angles[:, None])
  got = rotation.axis_angle_from_matrix(turns.as_matrix().astype(np.float32)).numpy()
  assert got.shape == (40, 3)
  apart = np.degrees((Rotation.from_rotvec(got).inv() * turns).magnitude())
  assert apart.max() < 0.01
  assert np.all(np.linalg.norm(got, axis=-1) <= np.pi + 1e-5)
  # Any leading axes: [2, 20, 3, 3] -> [2, 20, 3].
  batched = rotation.axis_angle_from_matrix(
      turns.as_matrix().astype(np.float32).reshape(2, 20, 3, 3))
  np.testing.assert_allclose(batched.numpy().reshape(40, 3), got, atol=1e-5)


def test_new_models_predict_6d_and_older_run_folders_still_load_as_axis_angle():
  from hand_tf.model.s2hand import ModelConfig
  assert ModelConfig().rotation_representation == "6d"
  older = {k: v for k, v in ModelConfig().to_json().items() if k != "rotation_representation"}
  assert ModelConfig.from_json(older).rotation_representation == "axis_angle"
  with pytest.raises(ValueError, match="rotation representation"):
    PlaceHand(rotation_representation="quaternion")


def test_the_rotation_converts_to_int16_activation_tflite_and_runs():
  """Issue 19's 16x8 variant: the 6D head's matrix and its axis-angle must be ops that
  int16-activation TFLite can calibrate and run (an ArgMax did not calibrate; a
  projection subtracted then squared fused into a SquaredDifference without int16
  kernel)."""
  from ai_edge_litert.interpreter import Interpreter
  rng = np.random.default_rng(3)
  six_d = rng.normal(size=(64, 1, 6)).astype(np.float32)

  @tf.function(input_signature=[tf.TensorSpec([1, 6], tf.float32)])
  def turn(x):
    matrix = rotation.matrix_from_6d(x)
    return {"matrix": matrix, "axis_angle": rotation.axis_angle_from_matrix(matrix)}

  converter = tf.lite.TFLiteConverter.from_concrete_functions(
      [turn.get_concrete_function()], turn)
  converter.optimizations = [tf.lite.Optimize.DEFAULT]
  converter.representative_dataset = lambda: ([x] for x in six_d)
  converter.target_spec.supported_ops = [
      tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8,
      tf.lite.OpsSet.TFLITE_BUILTINS]  # float where 16x8 has no kernel, as the benchmark
  interpreter = Interpreter(model_content=converter.convert())
  interpreter.allocate_tensors()
  outputs = {tuple(d["shape"]): d["index"] for d in interpreter.get_output_details()}
  for x in six_d[:16]:
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    want = turn(x)
    np.testing.assert_allclose(interpreter.get_tensor(outputs[(1, 3, 3)]), want["matrix"],
                               atol=0.01)
    # Compared as the turn it stands for (near 180 degrees axis-angle itself is touchy),
    # within a few degrees: its quotients see int16-rounded matrix entries.
    np.testing.assert_allclose(lbs.axis_angle_to_matrix(interpreter.get_tensor(outputs[(1, 3)])),
                               want["matrix"], atol=0.1)
