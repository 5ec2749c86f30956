"""Can the 3D path fit a few images?  The first check that a network learns at all.

  python benchmarks/overfit.py --data_dir DATA [--images 64] [--image_size 64] \
      [--steps 400] [--backbone lite0] [--encoder_weights imagenet|none] [--every 50]

Trains the '3d' stage (WSL: ground-truth 2D, no appearance terms, the paper's learning
rate) on the first --images images of DATA (FreiHAND layout, e.g. from
`python -m hand_tf.synthesize`) in memory, with no checkpoints, and prints every
--every steps the mean 2D joint error on those same images in inference mode (batch
norm's moving statistics, as evaluation and export run) beside a constant skeleton's
(the mean keypoints), and the spread of the projected joints across images; at the end
the training-mode error too.  A network that ignores the image stays at the constant.
"""

import tempfile
import time

import numpy as np
from absl import flags

from hand_tf import startup

DATA = flags.DEFINE_string("data_dir", None, "Dataset folder (FreiHAND layout).")
IMAGES = flags.DEFINE_integer("images", 64, "Images to fit.")
SIZE = flags.DEFINE_integer("image_size", 64, "Network input size.")
STEPS = flags.DEFINE_integer("steps", 400, "Optimizer steps.")
BATCH = flags.DEFINE_integer("batch_size", 16, "Batch size.")
BACKBONE = flags.DEFINE_enum("backbone", "lite0", ["lite0", "b0", "b3"], "Encoder.")
WEIGHTS = flags.DEFINE_string("encoder_weights", "imagenet", "'imagenet' or 'none'.")
LR = flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate.")
EVERY = flags.DEFINE_integer("every", 50, "Report every N steps.")
SCALE_TARGET = flags.DEFINE_float("scale_target_m", 0.0395,
                                  "Scale prior's bone length (the synthetic hand's mean).")


def main(argv):
  del argv
  import keras

  from hand_tf.data import pipeline
  from hand_tf.data.freihand import read_freihand
  from hand_tf.model.s2hand import ModelConfig
  from hand_tf.training.objective import ObjectiveConfig
  from hand_tf.training.trainer import Trainer, TrainerConfig
  keras.utils.set_random_seed(0)
  records = read_freihand(DATA.value, image_size=SIZE.value, load_vertices=False)
  records = records.subset(np.arange(min(IMAGES.value, len(records))))
  model = ModelConfig(backbone=BACKBONE.value, image_size=SIZE.value,
                      encoder_weights=None if WEIGHTS.value == "none" else WEIGHTS.value,
                      hourglass_features=16, hourglass_stacks=1, hourglass_modules=1)
  trainer = Trainer(TrainerConfig(
      out_dir=tempfile.mkdtemp(prefix="overfit_"), model=model,
      objective=ObjectiveConfig(stage="3d", mode="wsl", appearance=False,
                                scale_target_m=SCALE_TARGET.value),
      learning_rate=LR.value, steps_per_epoch=max(1, len(records) // BATCH.value)))
  everything = next(iter(pipeline.make_dataset(records, len(records))))
  keypoints = everything["keypoints"].numpy()
  constant = np.linalg.norm(keypoints - keypoints.mean(axis=0), axis=-1).mean()

  def fit(training):
    out = trainer.inference_model([everything["image"], everything["intrinsics"]],
                                  training=training)
    joints = out["joints2d"].numpy()
    return np.linalg.norm(joints - keypoints, axis=-1).mean(), joints.std(axis=0).mean()

  print(f"{len(records)} images, {SIZE.value} px, {BACKBONE.value} ({WEIGHTS.value}); "
        f"constant skeleton {constant:.2f} px, keypoints' spread "
        f"{keypoints.std(axis=0).mean():.2f} px")
  start, step = time.time(), 0
  while step < STEPS.value:
    for batch in pipeline.make_dataset(records, BATCH.value, shuffle=True, seed=step):
      values = trainer.train_step(batch)
      step += 1
      if step % EVERY.value == 0 or step == STEPS.value:
        error, spread = fit(False)
        print(f"step {step:5d}  loss {values['total']:.4f}  inference-mode 2D {error:6.2f} px "
              f"({error / constant:.2f}x constant)  spread {spread:5.2f} px  "
              f"{time.time() - start:5.0f} s", flush=True)
      if step >= STEPS.value:
        break
  error, spread = fit(True)  # last: a training-mode call moves the moving statistics
  print(f"training-mode 2D {error:.2f} px ({error / constant:.2f}x constant), "
        f"spread {spread:.2f} px")


if __name__ == "__main__":
  flags.mark_flags_as_required(["data_dir"])
  startup.run(main)
