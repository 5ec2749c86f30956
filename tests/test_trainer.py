"""The training loop: a few steps reduce the loss, NaN steps are skipped, resume is exact,
MirroredStrategy agrees with one device, the stage schedule chains.  (Multi-worker and
mixed precision: test_distributed.py.)"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from hand_tf.data import pipeline
from hand_tf.data.freihand import read_freihand
from hand_tf.model.s2hand import ModelConfig, RunFolderMismatch
from hand_tf.training import loop
from hand_tf.training.objective import ObjectiveConfig, terms_for
from hand_tf.training.trainer import (
  StepDecay,
  Trainer,
  TrainerConfig,
  check_jit_compile,
  weights_checksum,
)

# No stochastic depth, so that training-mode outputs are deterministic.
# Synchronised batch norm, so that replicas normalise over the global batch as one device.
# Random encoder weights: these tests compare optimizer updates element by element, and
# ImageNet weights have many near-zero gradients whose Adam step flips sign with float
# noise between one and two replicas (learning is tested in test_learning.py).
SMALL = ModelConfig(image_size=64, hourglass_features=16, hourglass_stacks=1,
                    hourglass_modules=1, drop_connect_rate=0.0, sync_batch_norm=True,
                    encoder_weights=None)


def _config(out_dir, stage="3d"):
  # Appearance terms are covered by test_losses; leaving the renderer (and, in '3d', the
  # 2D branch) out keeps the traced training graph small enough for CI.
  return TrainerConfig(out_dir=str(out_dir), model=SMALL,
                       objective=ObjectiveConfig(stage=stage, appearance=False),
                       learning_rate=1e-3, steps_per_epoch=4)


@pytest.fixture(scope="module")
def batch(synthetic_dataset):
  root, _ = synthetic_dataset
  records = read_freihand(str(root), detections=str(root / "training_detections.json"),
                          image_size=64, source_size=96)
  return next(iter(pipeline.make_dataset(records, 4, drop_remainder=True)))


@pytest.fixture(scope="module")
def single_device_run(tmp_path_factory, batch):
  """A default-strategy trainer after one step on the batch, with its weights before,
  and its Adam first moments (0.1 x the gradient) after: all, and the geometry head's."""
  import keras
  keras.utils.set_random_seed(0)  # the weights compared below, whatever ran before
  trainer = Trainer(_config(tmp_path_factory.mktemp("single")))
  initial = trainer.training_model.get_weights()
  first = trainer.train_step(batch)
  return (trainer, initial, first, trainer.training_model.get_weights(),
          _first_moments(trainer), _first_moments(trainer, "geometry_head"),
          _head_weights(trainer))


def _head_weights(trainer):
  return np.concatenate([w.ravel() for w in
                         trainer.training_model.get_layer("geometry_head").get_weights()])


def _first_moments(trainer, prefix=""):
  """Adam's first moments of the trainable variables whose layer path starts with
  `prefix` (all by default), concatenated."""
  return np.concatenate([v.numpy().ravel() for v in trainer.optimizer.variables
                         if v.path.endswith("_momentum")
                         and v.path.startswith(f"{trainer.optimizer.name}/{prefix}")])


def test_stage_terms():
  assert terms_for("2d") == ("keypoint_branch",)
  assert "consistency" not in terms_for("3d") and "photometric" in terms_for("3d")
  assert "consistency" in terms_for("finetune")
  assert "joint_3d" in terms_for("3d", "fsl") and "joint_3d" not in terms_for("3d", "ssl")
  with pytest.raises(ValueError, match="stage must be one of"):
    terms_for("all")


def test_step_decay():
  schedule = StepDecay(1e-3, steps_per_epoch=10, every=30, factor=0.5)
  assert float(schedule(0)) == pytest.approx(1e-3)
  assert float(schedule(299)) == pytest.approx(1e-3)
  assert float(schedule(300)) == pytest.approx(5e-4)
  assert float(schedule(600)) == pytest.approx(2.5e-4)


def test_jit_compile_is_refused_with_several_replicas_only():
  """The one check `train` (before building anything) and `Trainer` both make."""
  check_jit_compile(True, 1)
  check_jit_compile(False, 2)
  with pytest.raises(ValueError, match="trains one replica per process, not 2: leave it out"):
    check_jit_compile(True, 2)


def test_plan_stages_scales_the_paper_schedule(tmp_path):
  full = loop.plan_stages("all", "run")
  assert [(p.stage, p.epochs, p.decay_every) for p in full] == [
      ("2d", 90, 30), ("3d", 90, 30), ("finetune", 60, 20)]
  assert full[2].decay_factor == pytest.approx(1 / 3) and full[0].out_dir == "run/2d"
  small = loop.plan_stages("all", "run", epochs=8)
  assert [(p.epochs, p.decay_every) for p in small] == [(3, 1), (3, 1), (2, 1)]
  assert loop.plan_stages("3d", "run", epochs=9)[0] == loop.StagePlan("3d", 9, 3, 0.5, "run")
  with pytest.raises(ValueError, match="stage must be one of"):
    loop.plan_stages("warmup", "run")


def test_training_reduces_the_loss_skips_nan_and_resumes(tmp_path, batch, single_device_run):
  trainer, _, first, *_ = single_device_run
  trainer.manager = tf.train.CheckpointManager(trainer.checkpoint, str(tmp_path), 3)
  first = trainer.train_step(batch)
  assert first["applied"] and np.isfinite(first["total"])
  # Adam's first steps from random weights are noisy (the loss can rise for a few steps
  # on some CPUs), so judge the trend over ten steps on the same batch.
  losses = [trainer.train_step(batch)["total"] for _ in range(10)]
  assert np.mean(losses[-3:]) < first["total"]

  # A batch with a NaN image is skipped and leaves the weights untouched.
  before = weights_checksum(trainer.training_model)
  poisoned = dict(batch)
  poisoned["image"] = tf.tensor_scatter_nd_update(batch["image"], [[0, 0, 0, 0]], [np.nan])
  result = trainer.train_step(poisoned)
  assert not result["applied"]
  assert weights_checksum(trainer.training_model) == before
  assert int(trainer.skipped.numpy()) == 1

  path = trainer.save()
  assert path.endswith("ckpt-13")
  # "Kill" and resume: a new trainer restores step, optimizer state and weights exactly.
  resumed = Trainer(_config(tmp_path))
  assert resumed.restore() == path
  assert int(resumed.step.numpy()) == 13 and int(resumed.skipped.numpy()) == 1
  assert int(resumed.optimizer.iterations.numpy()) == int(trainer.optimizer.iterations.numpy())
  for a, b in zip(trainer.training_model.weights, resumed.training_model.weights):
    np.testing.assert_array_equal(a.numpy(), b.numpy())
  for a, b in zip(trainer.optimizer.variables, resumed.optimizer.variables):
    np.testing.assert_array_equal(a.numpy(), b.numpy())
  # Same predictions (inference mode; training mode draws EfficientNet's drop-connect).
  assert resumed.evaluate_loss(batch) == pytest.approx(trainer.evaluate_loss(batch), rel=1e-5)


def _train_cli(*args):
  # As a user runs it: no log level chosen (the tests' own would unmute TF's banners).
  env = {k: v for k, v in os.environ.items()
         if k not in ("TF_CPP_MIN_LOG_LEVEL", "HAND_TF_QUIET_START")}
  return subprocess.run([sys.executable, "-m", "hand_tf.train", *args], capture_output=True,
                        text=True, env=env)


def test_train_cli_errors_name_the_problem(tmp_path, synthetic_dataset):
  root, _ = synthetic_dataset
  result = _train_cli("--data_dir", str(tmp_path / "nowhere"), "--out_dir", str(tmp_path))
  # One line naming the problem, not absl's listing of every flag.
  assert result.returncode != 0 and result.stderr.strip().splitlines() == [
      f"error: {tmp_path / 'nowhere'}: FreiHAND folder not found (see --help)"]
  assert result.returncode == 2
  # A 2D branch of no width: one line before anything is read or built.
  result = _train_cli("--data_dir", str(root), "--hourglass_stem_features", "0",
                      "--out_dir", str(tmp_path / "narrow"))
  assert result.returncode != 0 and result.stderr.strip().splitlines() == [
      "error: flag --hourglass_stem_features=0: 0 is not a positive integer (see --help)"]
  # A missing --init_from: one line before any model is built (a run folder or a
  # checkpoint prefix is what it takes).
  result = _train_cli("--data_dir", str(root), "--stage", "3d", "--init_from",
                      str(tmp_path / "no_run"), "--out_dir", str(tmp_path / "run"))
  assert result.returncode == 2 and result.stderr.strip().splitlines() == [
      f"error: {tmp_path / 'no_run'}: checkpoint not found (no no_run.index) (see --help)"]
  # What the reader says of other bad data (the CLI prints it the same way).
  from hand_tf.io import InputError
  empty = tmp_path / "empty.json"
  empty.write_text('{"format": "hand_tf.detections.v1", "images": [], "keypoints": []}')
  with pytest.raises(InputError, match="the detections file is empty"):
    read_freihand(str(root), detections=str(empty))
  broken = tmp_path / "broken"
  import shutil
  shutil.copytree(root, broken)
  (broken / "training_xyz.json").write_text("[" + ",".join(["[[0,0,1]" + ",[0,0,1]" * 20 + "]"]
                                                          * 3) + "]")
  with pytest.raises(InputError, match=r"field 'xyz' has shape \(3, 21, 3\)"):
    read_freihand(str(broken))


def test_stage_checkpoints_refuse_another_stage_and_seed_the_next(tmp_path, single_device_run):
  trainer, *_ = single_device_run
  trainer.manager = tf.train.CheckpointManager(trainer.checkpoint, str(tmp_path / "ft"), 3)
  path = trainer.save()
  other = Trainer(_config(tmp_path / "ft", stage="finetune"))
  with pytest.raises(ValueError, match="is a checkpoint of stage '3d', not 'finetune'"):
    other.restore()
  fresh = Trainer(_config(tmp_path / "next", stage="finetune"))
  fresh.init_from(path)
  for a, b in zip(trainer.training_model.weights, fresh.training_model.weights):
    np.testing.assert_array_equal(a.numpy(), b.numpy())
  assert int(fresh.step.numpy()) == 0 and int(fresh.optimizer.iterations.numpy()) == 0
  assert json.loads((tmp_path / "next" / "model_config.json").read_text())["image_size"] == 64


def test_mirrored_strategy_matches_one_device(tmp_path, batch, single_device_run,
                                              two_replicas):
  """Two replicas with [a, b] and [c, d] == one device with [a, b, c, d], confidences
  and all: the confidence-weighted terms divide by the whole batch's summed confidence
  (`losses.batch_weighted_mean`), not each replica's."""
  (_, initial, single_first, single_after, single_moments, single_head,
   single_head_after) = single_device_run
  strategy = two_replicas
  assert strategy.num_replicas_in_sync == 2
  trainer = Trainer(_config(tmp_path), strategy)
  trainer.training_model.set_weights(initial)
  head_initial = _head_weights(trainer)
  assert np.ptp(batch["confidence"].numpy()) > 0.3  # the detector's, unequal
  distributed = strategy.experimental_distribute_values_from_function(
      lambda ctx: {k: v[2 * ctx.replica_id_in_sync_group:][:2] for k, v in batch.items()})
  first = trainer.train_step(distributed)
  assert first["applied"]
  assert first["total"] == pytest.approx(single_first["total"], rel=1e-4)
  # The all-reduced gradient, read from Adam's first moment after one step (0.1 g): the
  # update itself, lr g / (|g| + eps), hides a scale error and flips sign with float
  # noise wherever g is near 0.  A gradient summed rather than averaged over replicas
  # is 100% apart (norm of the difference over the norm) everywhere.
  # The heads' gradients come straight from the losses: measured 0.05% apart.
  head = _first_moments(trainer, "geometry_head")
  assert np.count_nonzero(single_head) > 100_000
  assert np.linalg.norm(head - single_head) < 0.01 * np.linalg.norm(single_head)
  # The encoder's are sums over the batch of what the heads' training-mode batch norms
  # pass down, which sums to ~0 over the batch (x - mean(x)'s gradient): the sums cancel
  # and magnify float noise ~25x.  Measured 1.2% in one process, 9.2% in a full test run
  # (another op order); any bound within float noise there is a coin toss.
  moments = _first_moments(trainer)
  assert np.count_nonzero(single_moments) > 1_000_000
  assert np.linalg.norm(moments - single_moments) < 0.3 * np.linalg.norm(single_moments)
  # The update (lr sign(g) where g is not tiny), on the heads for the reason above: an
  # update applied twice or not at all is 100% apart (Adam's update does not scale with
  # the gradient: the moments above are what catch a summed gradient).
  ours = _head_weights(trainer) - head_initial
  reference = single_head_after - head_initial
  assert np.linalg.norm(ours - reference) < 0.1 * np.linalg.norm(reference)
  # The NaN guard across replicas: a NaN in the second replica's images only; both
  # replicas skip (one applying alone would split their weights), statistics included.
  poisoned = dict(batch, image=tf.tensor_scatter_nd_update(batch["image"], [[3, 0, 0, 0]],
                                                           [np.nan]))
  distributed = strategy.experimental_distribute_values_from_function(
      lambda ctx: {k: v[2 * ctx.replica_id_in_sync_group:][:2] for k, v in poisoned.items()})
  before = [v.numpy() for v in trainer.training_model.weights]
  assert not trainer.train_step(distributed)["applied"]
  assert int(trainer.skipped.numpy()) == 1
  for variable, value in zip(trainer.training_model.weights, before):
    for replica_value in strategy.experimental_local_results(variable):
      np.testing.assert_array_equal(replica_value.numpy(), value, variable.path)
  # Replicas (on several workers: processes) that resumed different steps would run
  # different numbers of collectives and hang: they refuse to start instead.
  trainer.restore()  # all at step 2
  strategy.experimental_local_results(trainer.step)[1].assign(7)
  with pytest.raises(RunFolderMismatch, match=r"resumed from different steps"):
    trainer.restore()


def test_a_run_folder_is_self_contained(tmp_path, batch):
  """Moving the run folder, and deleting the MANO file it was trained with, keeps its
  checkpoint usable: the hand model's arrays are written beside it."""
  import dataclasses
  import shutil

  from hand_tf.predictors import load_checkpoint_model
  from mano_tf.model_file import save_mano_model
  from mano_tf.synthetic import build_synthetic_mano
  hand = build_synthetic_mano("right")
  # Not the default hand: its own arrays must travel with the run.
  hand = dataclasses.replace(hand, v_template=hand.v_template * 1.1)
  save_mano_model(hand, tmp_path / "MY_MANO_RIGHT.pkl")
  model_config = dataclasses.replace(SMALL, mano_model_path=str(tmp_path / "MY_MANO_RIGHT.pkl"))
  trainer = Trainer(TrainerConfig(out_dir=str(tmp_path / "run"), model=model_config,
                                  objective=ObjectiveConfig(stage="3d", appearance=False)))
  trainer.save()
  inputs = [batch["image"], batch["intrinsics"]]
  expected = trainer.inference_model(inputs, training=False)["vertices"].numpy()
  shutil.move(tmp_path / "run", tmp_path / "moved")
  os.remove(tmp_path / "MY_MANO_RIGHT.pkl")
  loaded_config, model = load_checkpoint_model(str(tmp_path / "moved"))
  assert loaded_config.mano_model_path == str(tmp_path / "moved" / "hand_model.npz")
  got = model(inputs, training=False)["vertices"].numpy()
  np.testing.assert_allclose(got, expected, atol=1e-5)


class _Killed(Exception):
  pass


class _RecordingTrainer:
  """What `loop.run_stage` drives, without a network: each step records the batch it was
  given, `save` the step it saved at; `kill_at` raises before that step, as a kill would.
  The loop's own logic (which epoch, which batches to skip, when to save) is what runs."""

  def __init__(self, out_dir, step=0, kill_at=None):
    import types
    self.strategy = tf.distribute.get_strategy()
    self.config = types.SimpleNamespace(out_dir=str(out_dir),
                                        objective=types.SimpleNamespace(stage="3d"))
    self.step = tf.Variable(step, dtype=tf.int64)
    self.kill_at, self.seen, self.saved = kill_at, [], []

  def train_step(self, batch):
    if int(self.step.numpy()) + 1 == self.kill_at:
      raise _Killed()
    # The pixels and keypoints after augmentation, rounded past float noise.
    self.seen.append((np.round(batch["image"].numpy().sum(axis=(1, 2, 3)), 2).tolist(),
                      np.round(batch["keypoints"].numpy().sum(axis=(1, 2)), 2).tolist()))
    self.step.assign_add(1)
    return {"total": 0.0, "applied": True}

  def save(self):
    self.saved.append(int(self.step.numpy()))
    return f"ckpt-{self.saved[-1]}"


def test_a_run_killed_mid_epoch_resumes_at_its_last_save_with_the_same_batches(
    tmp_path, synthetic_dataset):
  """8 images, batch 2 (4 steps an epoch), 2 epochs, --save_every_steps 3: killed before
  step 4, restarted from the step-3 save, the run trains on exactly the batches (order
  and augmentation) an uninterrupted run does, and saves where it would."""
  root, _ = synthetic_dataset
  records = read_freihand(str(root), detections=str(root / "training_detections.json"),
                          image_size=64, source_size=96)
  run = dict(records=records, epochs=2, global_batch_size=2, seed=3,
             augment=pipeline.AugmentConfig(), save_every_steps=3, image_every_epochs=0,
             log=lambda line: None)
  whole = _RecordingTrainer(tmp_path / "whole")
  loop.run_stage(whole, **run)
  assert whole.saved == [3, 4, 6, 8] and len(whole.seen) == 8
  assert len({str(s) for s in whole.seen}) == 8  # batches differ: a real comparison below
  killed = _RecordingTrainer(tmp_path / "killed", kill_at=4)
  with pytest.raises(_Killed):
    loop.run_stage(killed, **run)
  assert killed.saved == [3]
  resumed = _RecordingTrainer(tmp_path / "killed", step=killed.saved[-1])
  loop.run_stage(resumed, **run)
  assert killed.seen + resumed.seen == whole.seen
  assert resumed.saved == [4, 6, 8]


def test_stage_all_chains_each_stage_from_the_last_and_resumes_the_one_it_was_in(tmp_path):
  """--stage all: '2d', '3d', 'finetune' in order, each starting from the previous
  stage's last checkpoint; restarted after a kill in '3d', it resumes '3d' from its own
  checkpoint (not from '2d' again) and starts 'finetune' from where '3d' ended."""
  import types
  plans = loop.plan_stages("all", str(tmp_path), epochs=8)
  saved = {}  # stage folder -> its newest checkpoint, as on disk
  events = []

  class StageTrainer:
    def __init__(self, plan):
      self.plan = plan
      self.manager = types.SimpleNamespace(latest_checkpoint=saved.get(plan.out_dir))

    def restore(self):
      return saved.get(self.plan.out_dir)

    def init_from(self, path):
      events.append(("init", self.plan.stage, path))

  def train(trainer, plan, kill_in=None):
    events.append(("train", plan.stage))
    saved[plan.out_dir] = f"{plan.out_dir}/ckpt-{plan.epochs}"
    if plan.stage == kill_in:
      raise _Killed()
    trainer.manager.latest_checkpoint = saved[plan.out_dir]

  with pytest.raises(_Killed):
    loop.run_schedule(plans, StageTrainer, lambda t, p: train(t, p, kill_in="3d"),
                      init_from="imagenet-start")
  assert events == [("init", "2d", "imagenet-start"), ("train", "2d"),
                    ("init", "3d", f"{tmp_path}/2d/ckpt-3"), ("train", "3d")]
  events.clear()
  announced = []
  last = loop.run_schedule(plans, StageTrainer, train, init_from="imagenet-start",
                           announce=lambda plan, _, restored, starting: announced.append(
                               (plan.stage, restored, starting)))
  assert events == [("train", "2d"), ("train", "3d"),
                    ("init", "finetune", f"{tmp_path}/3d/ckpt-3"), ("train", "finetune")]
  assert announced == [("2d", f"{tmp_path}/2d/ckpt-3", None),
                       ("3d", f"{tmp_path}/3d/ckpt-3", None),
                       ("finetune", None, f"{tmp_path}/3d/ckpt-3")]
  assert last == f"{tmp_path}/finetune/ckpt-2"
