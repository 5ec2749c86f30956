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
from absl import app, flags

MODEL = flags.DEFINE_string("model", None, "Checkpoint or run folder.")
DATA = flags.DEFINE_string("data_dir", None, "Dataset folder (FreiHAND layout).")
SPLIT = flags.DEFINE_string("split", "training", "Split.")
DETECTIONS = flags.DEFINE_string("detections", None,
                                 "Detections JSON (default: the split's ground-truth 2D).")
IMAGES = flags.DEFINE_integer("images", 64, "Images in the batch.")


def _row(name, outputs, keypoints):
  joints2d = outputs["joints2d"].numpy()
  spread = {k: float(outputs[k].numpy().std(axis=0).mean()) for k in
            ("pose_coeffs", "rotation", "translation")}
  error = np.linalg.norm(joints2d - keypoints, axis=-1)
  print(f"{name:10s} | {spread['pose_coeffs']:10.4f} | {spread['rotation']:8.4f} | "
        f"{1000 * spread['translation']:9.2f} | {error.mean():6.2f} | {error[:, 0].mean():6.2f}")


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
  for training in (False, True):
    _row("training" if training else "inference",
         inference([batch["image"], batch["intrinsics"]], training=training), keypoints)
  constant = np.linalg.norm(keypoints - keypoints.mean(axis=0), axis=-1)
  print(f"{'constant':10s} | {0:10.4f} | {0:8.4f} | {0:9.2f} | {constant.mean():6.2f} | "
        f"{constant[:, 0].mean():6.2f}")


if __name__ == "__main__":
  flags.mark_flags_as_required(["model", "data_dir"])
  app.run(main)
