"""Does a trained network's output depend on the image?  And does it fit the detections?

  python benchmarks/prediction_spread.py --model RUN_DIR --data_dir DATA \
      [--split training] [--detections DATA/training_detections.json] [--images 64]

For one batch of `--images` images, in inference mode (batch norm's moving statistics,
what evaluation and export use) and in training mode (the batch's own statistics):
  * the spread across images (standard deviation, averaged over components) of the pose
    coefficients, the global rotation (rad) and the translation (mm);
  * the 2D error of the projected joints, and of the root alone, to the detections
    (pixels of the input), beside a constant prediction (the batch's mean detection).
A network whose inference-mode spread is near zero predicts one learned mean hand for
every image: its PA-MPJPE is that of a template, whatever the loss curve said.
"""

import numpy as np
from absl import flags

from hand_tf import startup

MODEL = flags.DEFINE_string("model", None, "Checkpoint or run folder.")
DATA = flags.DEFINE_string("data_dir", None, "Dataset folder (FreiHAND layout).")
SPLIT = flags.DEFINE_string("split", "training", "Split.")
DETECTIONS = flags.DEFINE_string("detections", None,
                                 "Detections JSON (default: the split's ground-truth 2D).")
IMAGES = flags.DEFINE_integer("images", 64, "Images in the batch.")


def _print_row(name, pose, rotation, translation_m, error):
  """One table row; `error` [N, 21] pixel distances."""
  print(f"{name:10s} | {pose:10.4f} | {rotation:8.4f} | {1000 * translation_m:9.2f} | "
        f"{error.mean():6.2f} | {error[:, 0].mean():6.2f}")


def _spread(outputs, key):
  return float(outputs[key].numpy().std(axis=0).mean())


def main(argv):
  del argv
  from hand_tf.data import pipeline
  from hand_tf.data.freihand import read_freihand
  from hand_tf.predictors import load_checkpoint_model
  config, inference = load_checkpoint_model(MODEL.value)
  records = read_freihand(DATA.value, SPLIT.value, detections=DETECTIONS.value,
                          image_size=config.image_size, load_vertices=False)
  batch = next(iter(pipeline.make_dataset(records, IMAGES.value)))
  keypoints = batch["keypoints"].numpy()
  print(f"{MODEL.value}: {len(keypoints)} {SPLIT.value} images, 2D errors to "
        f"{'the detections' if DETECTIONS.value else 'the ground truth'} in input pixels")
  print("mode       | pose spread | rot (rad) | trans (mm) | 2D px | root px")
  # Inference mode first: a training-mode call updates batch norm's moving statistics.
  for training in (False, True):
    outputs = inference([batch["image"], batch["intrinsics"]], training=training)
    _print_row("training" if training else "inference", _spread(outputs, "pose_coeffs"),
               _spread(outputs, "rotation"), _spread(outputs, "translation"),
               np.linalg.norm(outputs["joints2d"].numpy() - keypoints, axis=-1))
  _print_row("constant", 0.0, 0.0, 0.0,
             np.linalg.norm(keypoints - keypoints.mean(axis=0), axis=-1))


if __name__ == "__main__":
  flags.mark_flags_as_required(["model", "data_dir"])
  startup.run(main)
