"""What the 2D keypoint branch's width costs in accuracy, against what it saves in time.

  python benchmarks/branch_width.py --data_dir DATA [--widths 256x2,64x1,64x1s64]
      [--epochs 2] [--image_size 128] [--batch_size 16] [--detections FILE]

For each hourglass width (features x stacks, 'sN' for a stem N wide instead of 128)
trains the paper's '2d' stage (the branch alone, from the training split's detections
and their confidences; --detections, default DATA/training_detections.json) for
--epochs with the same seed and data order, timing its steps, then runs the branch's
last stack on the held-out split and prints its error against the ground-truth 2D
joints: median and 90th percentile in input pixels and in pixels of a 224 px crop, and
the share of joints within 5% of the crop (PCK@0.05).  Last, the same detector's error
on the held-out images (the --detections file's name with 'evaluation' for 'training',
where it exists; hands it found): the line a branch trained on its keypoints can hardly
beat.
"""

import os
import tempfile
import time

import numpy as np
from absl import app, flags
from branch_spec import parse_branch

from hand_tf import startup

DATA = flags.DEFINE_string("data_dir", None, "Dataset with training and evaluation splits.")
WIDTHS = flags.DEFINE_list("widths", ["256x2", "64x1", "64x1s64"],
                          "FEATURESxSTACKS[sSTEM] per width.")
EPOCHS = flags.DEFINE_integer("epochs", 2, "Epochs of the '2d' stage per width.")
SIZE = flags.DEFINE_integer("image_size", 128, "Network input size.")
BATCH = flags.DEFINE_integer("batch_size", 16, "Batch size.")
DETECTIONS = flags.DEFINE_string("detections", None, "Training split's 2D keypoints "
                                 "(default DATA/training_detections.json).")
SEED = flags.DEFINE_integer("seed", 0, "Training seed.")


def _errors(predicted, truth):
  """[N, 21] pixel distances between `[N, 21, 2]` keypoint sets."""
  return np.linalg.norm(predicted - truth, axis=-1)


def _summary(errors, size):
  from hand_tf.contract import REFERENCE_SIZE
  at_224 = REFERENCE_SIZE / size
  return (f"median {np.median(errors):5.2f} px ({np.median(errors) * at_224:5.2f} at 224), "
          f"p90 {np.percentile(errors, 90):5.2f} px, PCK@0.05 "
          f"{np.mean(errors <= 0.05 * size):5.1%}")


def main(argv):
  del argv
  startup.quiet_tensorflow()
  import keras
  import tensorflow as tf

  from hand_tf.camera import project
  from hand_tf.data import pipeline
  from hand_tf.data.freihand import read_freihand
  from hand_tf.model.s2hand import ModelConfig
  from hand_tf.training.objective import ObjectiveConfig
  from hand_tf.training.trainer import Trainer, TrainerConfig
  try:
    widths = [parse_branch(width) for width in WIDTHS.value]
  except ValueError as error:
    raise app.UsageError(f"--widths: {error}") from None
  size, data = SIZE.value, DATA.value
  detections = DETECTIONS.value or os.path.join(data, "training_detections.json")
  train = read_freihand(data, image_size=size, load_vertices=False, detections=detections)
  test = read_freihand(data, "evaluation", image_size=size, load_vertices=False)
  truth = project(test.joints3d, test.intrinsics)
  print(f"{len(train)} training images, {len(test)} held-out, {size} px, "
        f"{EPOCHS.value} epochs of the '2d' stage per width, batch {BATCH.value}")
  for features, stacks, stem in widths:
    keras.utils.set_random_seed(SEED.value)
    trainer = Trainer(TrainerConfig(
        out_dir=tempfile.mkdtemp(prefix="branch_width_"),
        model=ModelConfig(image_size=size, hourglass_features=features,
                          hourglass_stacks=stacks, hourglass_stem_features=stem),
        objective=ObjectiveConfig(stage="2d"), steps_per_epoch=len(train) // BATCH.value))
    seconds, steps = 0.0, 0
    for epoch in range(EPOCHS.value):
      for batch in pipeline.make_dataset(train, BATCH.value, shuffle=True,
                                         seed=SEED.value * 1000 + epoch, drop_remainder=True):
        start = time.perf_counter()
        trainer.train_step(batch)
        if steps:  # the first step traces the graph
          seconds += time.perf_counter() - start
        steps += 1
    branch = trainer.training_model.get_layer("keypoint_branch")
    predicted = []
    for batch in pipeline.make_dataset(test, BATCH.value):
      last = tf.nest.flatten(branch(batch["image"], training=False))[-1]
      predicted.append(tf.cast(last, tf.float32).numpy())
    errors = _errors(np.concatenate(predicted), truth)
    print(f"hourglass {features:3d} features x {stacks} stacks, stem {stem:3d}: "
          f"{BATCH.value * (steps - 1) / seconds:5.1f} images/s ('2d' step); "
          f"held-out 2D {_summary(errors, size)}", flush=True)
  # The same detector on the held-out images, where it found the hand.
  held_out = detections.replace("training", "evaluation")
  if held_out != detections and os.path.exists(held_out):
    detected = read_freihand(data, "evaluation", image_size=size, load_vertices=False,
                             detections=held_out)
    found = detected.confidence.max(axis=-1) > 0
    print(f"the detector itself ({os.path.basename(held_out)}, {found.mean():.0%} of the "
          f"held-out hands found): "
          f"{_summary(_errors(detected.keypoints, truth)[found], size)}")


if __name__ == "__main__":
  flags.mark_flags_as_required(["data_dir"])
  startup.run(main)
