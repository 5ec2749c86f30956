"""Trains S2HAND (one stage per run; resumes from --out_dir's latest checkpoint).

  python -m hand_tf.train --data_kind freihand --data_dir DIR [--detections F] \
      --stage all --epochs 180 --batch_size 32 --learning_rate 1e-3 --out_dir runs/x

Stages and their paper schedules: '2d' and '3d' (90 epochs each, lr halved every 30),
'finetune' (60 epochs, lr divided by 3 every 20, --init_from the two stage checkpoints'
folder), 'all' (end-to-end).  Writes checkpoints (atomically, keep --keep) and
TensorBoard scalars per loss term to --out_dir.
"""

import os
import time

import tensorflow as tf
from absl import app, flags
from tqdm import tqdm

from hand_tf import losses
from hand_tf.data import pipeline
from hand_tf.data.folder import read_folder
from hand_tf.data.freihand import read_freihand
from hand_tf.data.ho3d import read_ho3d
from hand_tf.data.records import DataError
from hand_tf.model.s2hand import ModelConfig
from hand_tf.training.objective import MODES, STAGES
from hand_tf.training.trainer import Trainer, TrainerConfig

DATA_KIND = flags.DEFINE_enum("data_kind", "freihand", ["freihand", "ho3d", "folder"],
                              "Dataset reader.")
DATA_DIR = flags.DEFINE_string("data_dir", None, "Dataset folder (images folder for 'folder').")
DETECTIONS = flags.DEFINE_string("detections", None,
                                 "2D detections (file or OpenPose folder); none = GT 2D (WSL).")
STAGE = flags.DEFINE_enum("stage", "all", list(STAGES), "Training stage.")
MODE = flags.DEFINE_enum("mode", "ssl", list(MODES), "ssl | wsl | fsl.")
EPOCHS = flags.DEFINE_integer("epochs", 180, "Epochs of this stage.")
BATCH = flags.DEFINE_integer("batch_size", 32, "Global batch size.")
LR = flags.DEFINE_float("learning_rate", 1e-3, "Initial learning rate (Adam).")
DECAY_EVERY = flags.DEFINE_integer("decay_every", 30, "Epochs between learning-rate drops.")
DECAY_FACTOR = flags.DEFINE_float("decay_factor", 0.5, "Learning-rate drop factor.")
IMAGE_SIZE = flags.DEFINE_integer("image_size", 224, "Model input size.")
BACKBONE = flags.DEFINE_enum("backbone", "b0", ["b0", "b3"], "EfficientNet variant.")
WEIGHTS = flags.DEFINE_string("encoder_weights", None, "None, 'imagenet' or a weights file.")
MANO = flags.DEFINE_string("mano_model_path", None, "MANO_RIGHT.pkl; default synthetic hand.")
NO_APPEARANCE = flags.DEFINE_bool("no_appearance", False, "Leave out the rendering losses.")
DISABLE = flags.DEFINE_list("disable_losses", [], "Loss terms to leave out.")
STRATEGY = flags.DEFINE_enum("strategy", "default", ["default", "mirrored", "multi_worker"],
                             "tf.distribute strategy (multi_worker reads TF_CONFIG).")
MIXED = flags.DEFINE_bool("mixed_precision", False, "mixed_float16 compute.")
SEED = flags.DEFINE_integer("seed", 0, "Random seed.")
OUT_DIR = flags.DEFINE_string("out_dir", "runs/s2hand", "Checkpoints and summaries.")
KEEP = flags.DEFINE_integer("keep", 3, "Checkpoints to keep.")
AUGMENT = flags.DEFINE_bool("augment", False, "Colour and similarity augmentation.")
HG_FEATURES = flags.DEFINE_integer("hourglass_features", 256, "2D branch width.")
HG_STACKS = flags.DEFINE_integer("hourglass_stacks", 2, "2D branch hourglass stacks.")
for _name in losses.LossWeights.__dataclass_fields__:
  flags.DEFINE_float(f"w_{_name}", None, f"Weight of the {_name} loss (default: paper's).")


def _records():
  if not DATA_DIR.value:
    raise app.UsageError("--data_dir is required")
  if DATA_KIND.value == "freihand":
    return read_freihand(DATA_DIR.value, detections=DETECTIONS.value,
                         image_size=IMAGE_SIZE.value)
  if DATA_KIND.value == "ho3d":
    return read_ho3d(DATA_DIR.value, "train", DETECTIONS.value, IMAGE_SIZE.value)
  if not DETECTIONS.value:
    raise app.UsageError("--detections (a keypoints JSON) is required for --data_kind folder")
  return read_folder(DATA_DIR.value, DETECTIONS.value, IMAGE_SIZE.value)


def _strategy():
  if STRATEGY.value == "mirrored":
    return tf.distribute.MirroredStrategy()
  if STRATEGY.value == "multi_worker":
    return tf.distribute.MultiWorkerMirroredStrategy()
  return tf.distribute.get_strategy()


def main(argv):
  del argv
  tf.keras.utils.set_random_seed(SEED.value)
  if MIXED.value:
    tf.keras.mixed_precision.set_global_policy("mixed_float16")
  try:
    records = _records()
  except DataError as e:
    raise app.UsageError(str(e)) from e
  if len(records) < BATCH.value:
    raise app.UsageError(f"{len(records)} images for a batch of {BATCH.value}")
  weights = losses.LossWeights(**{name: getattr(flags.FLAGS, f"w_{name}")
                                  for name in losses.LossWeights.__dataclass_fields__
                                  if getattr(flags.FLAGS, f"w_{name}") is not None})
  steps_per_epoch = len(records) // BATCH.value
  strategy = _strategy()
  config = TrainerConfig(
      out_dir=OUT_DIR.value,
      model=ModelConfig(backbone=BACKBONE.value, encoder_weights=WEIGHTS.value,
                        image_size=IMAGE_SIZE.value, mano_model_path=MANO.value,
                        hourglass_features=HG_FEATURES.value,
                        hourglass_stacks=HG_STACKS.value),
      stage=STAGE.value, mode=MODE.value, weights=weights,
      appearance=not NO_APPEARANCE.value, disabled_terms=tuple(DISABLE.value),
      learning_rate=LR.value, steps_per_epoch=steps_per_epoch,
      decay_every_epochs=DECAY_EVERY.value, decay_factor=DECAY_FACTOR.value,
      keep_checkpoints=KEEP.value)
  trainer = Trainer(config, strategy)
  restored = trainer.restore()
  start_epoch = int(trainer.step.numpy()) // steps_per_epoch
  print(f"{'resumed from ' + restored if restored else 'starting'}: stage {STAGE.value}, "
        f"{len(records)} images, {steps_per_epoch} steps/epoch, epochs {start_epoch}.."
        f"{EPOCHS.value}, {strategy.num_replicas_in_sync} replica(s)", flush=True)
  augment = pipeline.AugmentConfig() if AUGMENT.value else None
  writer = tf.summary.create_file_writer(os.path.join(OUT_DIR.value, "train"))
  for epoch in range(start_epoch, EPOCHS.value):
    # Seeding the shuffle with the epoch makes a resumed run see the same order.
    dataset = pipeline.distributed_dataset(strategy, records, BATCH.value, shuffle=True,
                                           seed=SEED.value * 1000 + epoch,
                                           augment_config=augment)
    bar = tqdm(dataset, total=steps_per_epoch, desc=f"epoch {epoch + 1}/{EPOCHS.value}")
    start = time.time()
    for batch in bar:
      values = trainer.train_step(batch)
      bar.set_postfix(loss=f"{values['total']:.4f}",
                      img_s=f"{BATCH.value * (bar.n + 1) / (time.time() - start):.1f}")
      with writer.as_default(step=int(trainer.step.numpy())):
        for name, value in values.items():
          if name != "applied":
            tf.summary.scalar(f"loss/{name}", value)
    path = trainer.save()
    print(f"epoch {epoch + 1}: loss {values['total']:.4f}; saved {path}", flush=True)
  return 0


if __name__ == "__main__":
  app.run(main)
