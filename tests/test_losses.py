"""Loss terms on hand-made cases, and that each one reaches the encoder."""

import numpy as np
import pytest
import tensorflow as tf

from hand_tf import losses
from hand_tf.model.s2hand import ModelConfig, build_models
from hand_tf.rendering import renderer
from mano_tf import constants


def _keypoints(seed=0, batch=2):
  return tf.constant(np.random.default_rng(seed).uniform(20, 200, (batch, 21, 2)), tf.float32)


def test_robust_distance_values():
  d = tf.constant([0.0, 1.0, 4.0, 5.0, 9.0])
  np.testing.assert_allclose(losses.robust_distance(d), [0.0, 0.1, 1.6, 2.5, 6.5], atol=1e-6)


def test_weighted_means_are_taken_over_the_whole_batch_across_replicas(two_replicas):
  """Two replicas, weights [1, 1] with values [1, 1] and weights [0.1, 0.1] with values
  [3, 3]: what the trainer sums (each replica's loss / 2) is the whole batch's weighted
  mean 2.6 / 2.2, not the mean of the replicas' own means (2)."""
  strategy = two_replicas
  weights = tf.constant([1.0, 1.0, 0.1, 0.1])
  values = tf.constant([1.0, 1.0, 3.0, 3.0])

  def replica(w, v):
    return losses.batch_weighted_mean(tf.reduce_sum(w * v), tf.reduce_sum(w)) / 2.0

  def part(x):
    return strategy.experimental_distribute_values_from_function(
        lambda ctx: x[2 * ctx.replica_id_in_sync_group:][:2])

  shares = strategy.run(replica, args=(part(weights), part(values)))
  total = strategy.reduce(tf.distribute.ReduceOp.SUM, shares, axis=None)
  assert float(total) == pytest.approx(2.6 / 2.2, rel=1e-6)
  # One device: the plain weighted mean.
  assert float(losses.batch_weighted_mean(tf.reduce_sum(weights * values),
                                          tf.reduce_sum(weights))) == pytest.approx(2.6 / 2.2)


def test_joint_location_loss():
  kp = _keypoints()
  conf = tf.ones([2, 21])
  assert float(losses.joint_location_loss(kp, kp, conf)) == pytest.approx(0.0, abs=1e-6)
  shifted = kp + [3.0, 4.0]  # every keypoint 5 px away -> rho = 2.5 everywhere
  assert float(losses.joint_location_loss(shifted, kp, conf)) == pytest.approx(2.5, rel=1e-5)
  # Confidence weighting: an error on a zero-confidence joint does not count.
  moved = tf.tensor_scatter_nd_add(kp, [[0, 3]], [[50.0, 0.0]])
  conf0 = tf.tensor_scatter_nd_update(conf, [[0, 3]], [0.0])
  assert float(losses.joint_location_loss(moved, kp, conf0)) == pytest.approx(0.0, abs=1e-5)
  assert float(losses.joint_location_loss(moved, kp, conf)) > 0.5


def test_apparent_size_loss_measures_size_not_place_or_pose():
  detected = _keypoints(2)
  conf = tf.ones([2, 21])
  centre = tf.reduce_mean(detected, axis=1, keepdims=True)
  radius = tf.sqrt(tf.reduce_mean(tf.reduce_sum(tf.square(detected - centre), -1), -1))
  half = centre + 0.5 * (detected - centre)  # the same hand at half the size
  np.testing.assert_allclose(losses.apparent_size_loss(half, detected, conf),
                             float(tf.reduce_mean(0.5 * radius)), rtol=1e-4)
  moved = detected + [[[30.0, -12.0]]]  # elsewhere, same size: no loss
  assert float(losses.apparent_size_loss(moved, detected, conf)) < 1e-2
  # Keypoints of no confidence do not count.
  wild = tf.concat([detected[:, :20], detected[:, 20:] + 500.0], axis=1)
  assert float(losses.apparent_size_loss(wild, detected,
                                         tf.concat([tf.ones([2, 20]), tf.zeros([2, 1])], 1))
               ) < 1e-2


def test_bone_direction_loss():
  kp = _keypoints(1)
  conf = tf.ones([2, 21])
  assert float(losses.bone_direction_loss(kp, kp, conf)) == pytest.approx(0.0, abs=1e-6)
  # Scaling about the wrist keeps every direction: still zero.
  scaled = (kp - kp[:, :1]) * 1.7 + kp[:, :1]
  assert float(losses.bone_direction_loss(scaled, kp, conf)) == pytest.approx(0.0, abs=1e-5)
  # Reversing every bone: each unit vector difference has squared length 4.
  flipped = -(kp - kp[:, :1]) + kp[:, :1]
  assert float(losses.bone_direction_loss(flipped, kp, conf)) == pytest.approx(4.0, rel=1e-3)


def test_branch_and_consistency_losses():
  kp = _keypoints(2)
  conf = tf.fill([2, 21], 0.5)
  stacks = [kp + [3.0, 4.0], kp]
  assert float(losses.keypoint_branch_loss(stacks, kp, conf)) == pytest.approx(5.0, rel=1e-5)
  assert float(losses.consistency_loss(kp, kp)) == pytest.approx(0.0, abs=1e-6)
  assert float(losses.consistency_loss(kp + [6.0, 8.0], kp)) == pytest.approx(7.5, rel=1e-5)


def test_priors():
  joints = np.zeros((2, 21, 3), np.float32)
  joints[:, 10, 0] = constants.SCALE_BONE_TARGET_M
  assert float(losses.scale_loss(joints)) == pytest.approx(0.0, abs=1e-6)
  joints[:, 10, 0] = 0.04
  assert float(losses.scale_loss(joints)) == pytest.approx(0.04 - 0.0282, rel=1e-4)
  assert float(losses.shape_loss(tf.fill([2, 10], 2.0))) == pytest.approx(4.0)
  inside = np.mean(constants.POSE_BOUNDS, axis=-1)[None].astype(np.float32)
  assert float(losses.skeleton_loss(inside)) == 0.0
  bent_back = inside.copy()
  bent_back[0, 2, 2] = constants.POSE_BOUNDS[2, 2, 0] - 0.3  # index PIP 0.3 rad too far back
  assert float(losses.skeleton_loss(bent_back)) == pytest.approx(2 * 0.3 / 48, rel=1e-4)


def test_appearance_losses():
  rng = np.random.default_rng(3)
  image = tf.constant(rng.uniform(0, 1, (2, 16, 16, 3)), tf.float32)
  mask = tf.ones([2, 16, 16, 1])
  weight = tf.ones([2])
  assert float(losses.photometric_loss(image, image, mask, weight)) == pytest.approx(0.0)
  assert float(losses.photometric_loss(image + 0.1, image, mask, weight)) == pytest.approx(0.1)
  assert float(losses.mean_color_loss(image, image, mask, weight)) == pytest.approx(0.0)
  assert float(losses.ssim_loss(image, image, mask)) == pytest.approx(0.0, abs=1e-5)
  assert float(losses.ssim_loss(image, 1.0 - image, mask)) > 0.5
  # Pixels outside the mask are ignored.
  half = tf.concat([tf.ones([2, 16, 8, 1]), tf.zeros([2, 16, 8, 1])], axis=2)
  other = tf.concat([image[:, :, :8], 1.0 - image[:, :, 8:]], axis=2)
  assert float(losses.photometric_loss(other, image, half, weight)) == pytest.approx(0.0)
  np.testing.assert_allclose(losses.photometric_weight(
      tf.constant([[0.5] * 21, [0.9] * 20 + [0.05]])), [0.5, 0.0])


def test_texture_regularization_and_laplacian(synthetic_model):
  flat = tf.fill([1, 778, 3], 0.6)
  assert float(losses.texture_regularization(flat, tf.ones([1]))) == 0.0
  spiky = flat.numpy().copy()
  spiky[0, 10] = 5.0
  assert float(losses.texture_regularization(spiky, tf.ones([1]))) > 1e-3
  laplacian = losses.uniform_laplacian(synthetic_model.faces, 778)
  plane = np.zeros((1, 778, 3), np.float32)
  assert float(losses.laplacian_loss(plane, laplacian)) == pytest.approx(0.0, abs=1e-5)
  template = synthetic_model.v_template[None].astype(np.float32)
  noisy = template + np.random.default_rng(0).normal(0, 0.003, template.shape)
  assert float(losses.laplacian_loss(noisy.astype(np.float32), laplacian)) > float(
      losses.laplacian_loss(template, laplacian))
  a, b = losses.joint_3d_losses(tf.ones([1, 21, 3]), tf.ones([1, 21, 3]) + 0.5)
  assert float(a) == pytest.approx(0.25) and float(b) == pytest.approx(0.0)


def test_every_loss_reaches_the_network():
  size = 64
  inference, training = build_models(ModelConfig(image_size=size, hourglass_features=16))
  rng = np.random.default_rng(5)
  image = tf.constant(rng.uniform(0, 1, (2, size, size, 3)), tf.float32)
  k = tf.constant(np.tile(np.array([[[120.0, 0, 32], [0, 120.0, 32], [0, 0, 1]]], np.float32),
                          (2, 1, 1)))
  detected = _keypoints(6) * (size / 224)
  conf = tf.fill([2, 21], 0.8)
  faces = inference.get_layer("place_hand").mano.faces
  laplacian = losses.uniform_laplacian(faces, 778)
  encoder_vars = training.get_layer("encoder_lite0").trainable_variables
  branch_vars = training.get_layer("keypoint_branch").trainable_variables
  from hand_tf.eval.template import mean_hand_of
  from hand_tf.training import facing
  facing_target = facing.facing_targets(detected, conf, k,
                                        mean_hand_of(inference.get_layer("place_hand").mano)[1])
  terms = {
      "joint_location": lambda o, r: losses.joint_location_loss(o["joints2d"], detected, conf),
      "bone_direction": lambda o, r: losses.bone_direction_loss(o["joints2d"], detected, conf),
      "apparent_size": lambda o, r: losses.apparent_size_loss(o["joints2d"], detected, conf),
      "facing": lambda o, r: losses.facing_loss(o["hand_rotation"], *facing_target),
      "keypoint_branch": lambda o, r: losses.keypoint_branch_loss(
          [o["keypoints2d_stack0"], o["keypoints2d_stack1"]], detected, conf),
      "consistency": lambda o, r: losses.consistency_loss(o["keypoints2d_stack1"],
                                                          o["joints2d"]),
      "scale": lambda o, r: losses.scale_loss(o["joints3d"]),
      "shape": lambda o, r: losses.shape_loss(o["shape"]),
      "skeleton": lambda o, r: losses.skeleton_loss(o["pose"]),
      "laplacian": lambda o, r: losses.laplacian_loss(o["vertices"], laplacian),
      "photometric": lambda o, r: losses.photometric_loss(r["rgb"], image, r["mask"],
                                                          tf.ones([2])),
      "ssim": lambda o, r: losses.ssim_loss(r["rgb"], image, r["mask"]),
      "mean_color": lambda o, r: losses.mean_color_loss(r["rgb"], image, r["mask"],
                                                        tf.ones([2])),
      "texture_regularization": lambda o, r: losses.texture_regularization(o["texture"],
                                                                           tf.ones([2])),
  }
  # Every term a stage can weigh (the 3D-supervised 'joint_3d' needs ground truth).
  from hand_tf.training.objective import terms_for
  assert set(terms) == {t for stage in ("2d", "finetune") for t in terms_for(stage)}
  with tf.GradientTape(persistent=True) as tape:
    out = training([image, k], training=True)
    rendered = renderer.render(out["vertices"], faces, tf.tanh(out["texture"]), k,
                               out["lighting"], (size, size), backend="kernel")
    values = {name: term(out, rendered) for name, term in terms.items()}
  for name, value in values.items():
    grads = tape.gradient(value, [encoder_vars, branch_vars])
    norms = [sum(float(tf.reduce_sum(tf.abs(g))) for g in group if g is not None)
             for group in grads]
    assert np.isfinite(float(value)), name
    # The 2D branch is its own network (as in S2HAND): its loss trains the hourglass
    # only; the consistency loss couples both; every other term trains the encoder.
    if name != "keypoint_branch":
      assert norms[0] > 0.0, f"{name} sends no gradient to the encoder"
    if name in ("keypoint_branch", "consistency"):
      assert norms[1] > 0.0, f"{name} sends no gradient to the 2D branch"


def test_2d_terms_measure_pixels_of_the_paper_crop_whatever_the_input_size():
  from hand_tf.training.objective import Objective, ObjectiveConfig
  faces = np.zeros((1, 3), np.int32)
  others = ("apparent_size", "facing", "scale", "shape", "skeleton", "laplacian")
  objective = Objective(faces, ObjectiveConfig(stage="3d", appearance=False, disabled=others))
  detected = _keypoints(1) / 224.0
  predicted = _keypoints(2) / 224.0
  confidence = tf.fill([2, 21], 0.8)

  def terms(size):
    batch = {"image": tf.zeros([2, size, size, 3]), "keypoints": detected * size,
             "confidence": confidence, "intrinsics": tf.eye(3, batch_shape=[2])}
    return objective({"joints2d": predicted * size}, batch)

  small, paper = terms(64), terms(224)
  # The same hand error at 64 px and at 224 px costs the same.
  np.testing.assert_allclose(small["joint_location"], paper["joint_location"], rtol=1e-5)
  np.testing.assert_allclose(small["bone_direction"], paper["bone_direction"], rtol=1e-5)
  direct = losses.joint_location_loss(predicted * 224, detected * 224, confidence)
  np.testing.assert_allclose(paper["joint_location"], direct, rtol=1e-6)
  # The scale prior's target is the objective's, not a fixed constant.
  joints = tf.constant(np.random.default_rng(3).normal(0, 0.03, (2, 21, 3)), tf.float32)
  a, b = constants.SCALE_BONE
  length = float(tf.reduce_mean(tf.norm(joints[:, a] - joints[:, b], axis=-1)))
  per_sample = tf.norm(joints[:, a] - joints[:, b], axis=-1)
  own = Objective(faces, ObjectiveConfig(
      stage="3d", appearance=False, scale_target_m=length,
      disabled=("joint_location", "bone_direction", "apparent_size", "facing", "shape",
                "skeleton", "laplacian")))
  value = own({"joints3d": joints, "joints2d": predicted}, {"image": tf.zeros([2, 8, 8, 3]),
                                      "keypoints": detected, "confidence": confidence})
  np.testing.assert_allclose(value["scale"], tf.reduce_mean(tf.abs(per_sample - length)),
                             rtol=1e-5)


def test_ssim_matches_tf_image_ssim_on_ordinary_images():
  rng = np.random.default_rng(0)
  x = rng.uniform(size=(3, 40, 50, 3)).astype(np.float32)
  y = np.clip(x + 0.1 * rng.normal(size=x.shape), 0, 1).astype(np.float32)
  expected = tf.image.ssim(x, y, 1.0, filter_size=11, filter_sigma=1.5, k1=0.01, k2=0.03)
  np.testing.assert_allclose(losses.ssim(x, y).numpy(), expected.numpy(), atol=1e-5)


@pytest.fixture
def graph_optimizations():
  """Grappler on, as in training (conftest turns it off to trace faster): its rewrites
  change the float32 rounding that made tf.image.ssim NaN."""
  tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": False})
  yield
  tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})


def test_ssim_of_an_over_lit_render_is_finite(graph_optimizations):
  # An early training step can light the render at ~100 (images are in [0, 1]); in
  # float32, E[x^2] - E[x]^2 then cancels below zero and tf.image.ssim returns NaN here.
  rng = np.random.default_rng(1)
  mask = np.zeros((2, 64, 64, 1), np.float32)
  mask[:, 10:50, 8:46] = 1.0
  render = tf.constant((100.0 * (1 + 1e-3 * rng.uniform(size=(2, 64, 64, 3))) * mask)
                       .astype(np.float32))
  image = tf.constant((rng.uniform(size=(2, 64, 64, 3)) * mask).astype(np.float32))

  @tf.function
  def value_and_gradient(x, y):
    with tf.GradientTape() as tape:
      tape.watch(x)
      value = losses.ssim(x, y)
    return value, tape.gradient(value, x)

  same, gradient = value_and_gradient(render, render)
  np.testing.assert_allclose(same.numpy(), 1.0, atol=1e-5)
  assert np.all(np.isfinite(gradient.numpy()))
  other, gradient = value_and_gradient(render, image)
  assert np.all(np.abs(other.numpy()) <= 1.0) and np.all(np.isfinite(gradient.numpy()))
  assert np.isfinite(float(losses.ssim_loss(render, image, mask)))


def test_apparent_size_term_moves_the_hand_not_its_fingers():
  """The objective's apparent-size term trains the placement (translation and scale
  heads), not the pose, shape or rotation heads: it is there to pin the depth."""
  from hand_tf.training.objective import Objective, ObjectiveConfig
  from hand_tf.training.settings import LossWeights
  size = 64
  inference, training = build_models(ModelConfig(image_size=size, hourglass_features=16))
  rng = np.random.default_rng(2)
  batch = {"image": tf.constant(rng.uniform(0, 1, (2, size, size, 3)), tf.float32),
           "intrinsics": tf.constant(np.tile([[[120.0, 0, 32], [0, 120.0, 32], [0, 0, 1]]],
                                             (2, 1, 1)), tf.float32),
           "keypoints": _keypoints(4) * (size / 224), "confidence": tf.fill([2, 21], 0.9)}
  only_size = LossWeights(**{**{n: 0.0 for n in LossWeights.__dataclass_fields__},
                             "apparent_size": 1.0})
  objective = Objective(inference.get_layer("place_hand").mano.faces,
                        ObjectiveConfig(stage="3d", appearance=False, weights=only_size))
  assert objective.terms == ("apparent_size",)
  head = training.get_layer("geometry_head")
  with tf.GradientTape() as tape:
    values = objective(training([batch["image"], batch["intrinsics"]], training=True), batch)
  groups = {name: getattr(head, f"{name}_head").trainable_variables
            for name in ("translation", "scale", "pose", "shape", "rotation")}
  grads = tape.gradient(values["total"], groups)
  norm = {name: sum(float(tf.reduce_sum(tf.abs(g))) for g in group if g is not None)
          for name, group in grads.items()}
  assert norm["translation"] > 0 and norm["scale"] > 0, norm
  assert norm["pose"] == norm["shape"] == norm["rotation"] == 0.0, norm


def test_the_total_is_each_term_times_its_own_weight():
  import dataclasses

  from hand_tf.training.objective import Objective, ObjectiveConfig
  from hand_tf.training.settings import LossWeights
  weights = dataclasses.replace(LossWeights(), joint_location=2.0, bone_direction=3.0,
                                scale=5.0)
  objective = Objective(np.zeros((1, 3), np.int32), ObjectiveConfig(
      stage="3d", appearance=False, weights=weights,
      disabled=("apparent_size", "facing", "shape", "skeleton", "laplacian")))
  assert set(objective.terms) == {"joint_location", "bone_direction", "scale"}
  joints = tf.constant(np.random.default_rng(4).normal(0, 0.03, (2, 21, 3)), tf.float32)
  values = objective({"joints2d": _keypoints(2), "joints3d": joints},
                     {"image": tf.zeros([2, 224, 224, 3]), "keypoints": _keypoints(1),
                      "confidence": tf.fill([2, 21], 0.8)})
  assert all(float(values[t]) > 0 for t in objective.terms)
  np.testing.assert_allclose(values["total"], 2.0 * values["joint_location"] + 3.0 *
                             values["bone_direction"] + 5.0 * values["scale"], rtol=1e-6)
