"""The training loop: a few steps reduce the loss, NaN steps are skipped, resume is exact."""

import numpy as np
import pytest
import tensorflow as tf

from hand_tf.data import pipeline
from hand_tf.data.freihand import read_freihand
from hand_tf.model.s2hand import ModelConfig
from hand_tf.training.objective import terms_for
from hand_tf.training.trainer import StepDecay, Trainer, TrainerConfig, weights_checksum

SMALL = ModelConfig(image_size=64, hourglass_features=16, hourglass_stacks=1,
                    hourglass_modules=1)


def _config(out_dir):
  # Appearance terms are covered by test_losses; leaving the renderer out keeps the
  # traced training graph small enough for CI.
  return TrainerConfig(out_dir=str(out_dir), model=SMALL, appearance=False,
                       learning_rate=1e-3, steps_per_epoch=4)


@pytest.fixture(scope="module")
def batch(synthetic_dataset):
  root, _ = synthetic_dataset
  records = read_freihand(str(root), detections=str(root / "training_detections.json"),
                          image_size=64, source_size=96)
  return next(iter(pipeline.make_dataset(records, 4, drop_remainder=True)))


def test_stage_terms():
  assert terms_for("2d") == ("keypoint_branch",)
  assert "consistency" not in terms_for("3d") and "photometric" in terms_for("3d")
  assert "consistency" in terms_for("finetune")
  assert "joint_3d" in terms_for("all", "fsl") and "joint_3d" not in terms_for("all", "ssl")
  with pytest.raises(ValueError, match="stage must be one of"):
    terms_for("warmup")


def test_step_decay():
  schedule = StepDecay(1e-3, steps_per_epoch=10, every=30, factor=0.5)
  assert float(schedule(0)) == pytest.approx(1e-3)
  assert float(schedule(299)) == pytest.approx(1e-3)
  assert float(schedule(300)) == pytest.approx(5e-4)
  assert float(schedule(600)) == pytest.approx(2.5e-4)


def test_training_reduces_the_loss_skips_nan_and_resumes(tmp_path, batch):
  trainer = Trainer(_config(tmp_path))
  first = trainer.train_step(batch)
  assert first["applied"] and np.isfinite(first["total"])
  losses = [trainer.train_step(batch)["total"] for _ in range(6)]
  assert min(losses[-3:]) < first["total"]

  # A batch with a NaN image is skipped and leaves the weights untouched.
  before = weights_checksum(trainer.training_model)
  poisoned = dict(batch)
  poisoned["image"] = tf.tensor_scatter_nd_update(batch["image"], [[0, 0, 0, 0]], [np.nan])
  result = trainer.train_step(poisoned)
  assert not result["applied"]
  assert weights_checksum(trainer.training_model) == before
  assert int(trainer.skipped.numpy()) == 1

  path = trainer.save()
  assert path.endswith("ckpt-8")
  # "Kill" and resume: a new trainer restores step, optimizer state and weights exactly.
  resumed = Trainer(_config(tmp_path))
  assert resumed.restore() == path
  assert int(resumed.step.numpy()) == 8 and int(resumed.skipped.numpy()) == 1
  assert int(resumed.optimizer.iterations.numpy()) == int(trainer.optimizer.iterations.numpy())
  for a, b in zip(trainer.training_model.weights, resumed.training_model.weights):
    np.testing.assert_array_equal(a.numpy(), b.numpy())
  for a, b in zip(trainer.optimizer.variables, resumed.optimizer.variables):
    np.testing.assert_array_equal(a.numpy(), b.numpy())
  # Same predictions (inference mode; training mode draws EfficientNet's drop-connect).
  assert resumed.evaluate_loss(batch) == pytest.approx(trainer.evaluate_loss(batch), rel=1e-5)


def _train_cli(*args):
  import subprocess
  import sys
  return subprocess.run([sys.executable, "-m", "hand_tf.train", *args], capture_output=True,
                        text=True)


def test_train_cli_errors_name_the_problem(tmp_path, synthetic_dataset):
  root, _ = synthetic_dataset
  result = _train_cli("--data_dir", str(tmp_path / "nowhere"), "--out_dir", str(tmp_path))
  assert result.returncode != 0 and "FreiHAND folder not found" in result.stderr
  empty = tmp_path / "empty.json"
  empty.write_text('{"format": "hand_tf.detections.v1", "images": [], "keypoints": []}')
  result = _train_cli("--data_dir", str(root), "--detections", str(empty),
                      "--out_dir", str(tmp_path))
  assert result.returncode != 0 and "the detections file is empty" in result.stderr
  broken = tmp_path / "broken"
  import shutil
  shutil.copytree(root, broken)
  (broken / "training_xyz.json").write_text("[" + ",".join(["[[0,0,1]" + ",[0,0,1]" * 20 + "]"]
                                                          * 3) + "]")
  result = _train_cli("--data_dir", str(broken), "--out_dir", str(tmp_path))
  assert result.returncode != 0 and "field 'xyz' has shape (3, 21, 3)" in result.stderr


def test_train_cli_runs_an_epoch_and_writes_checkpoints(tmp_path, synthetic_dataset):
  root, _ = synthetic_dataset
  out = tmp_path / "run"
  result = _train_cli("--data_dir", str(root), "--detections",
                      str(root / "training_detections.json"), "--image_size", "64",
                      "--batch_size", "4", "--epochs", "1", "--no_appearance",
                      "--hourglass_features", "16", "--hourglass_stacks", "1",
                      "--out_dir", str(out))
  assert result.returncode == 0, result.stderr[-2000:]
  assert "starting: stage all, 8 images, 2 steps/epoch" in result.stdout
  assert "epoch 1: loss" in result.stdout
  assert (out / "checkpoint").exists() and any(out.glob("ckpt-2.index"))
  assert any((out / "train").iterdir())  # TensorBoard events
