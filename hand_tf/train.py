"""Trains S2HAND with the paper's stage-wise schedule; resumes from --out_dir.

  python -m hand_tf.train --data_kind freihand --data_dir DIR [--detections F] \
      --stage all --batch_size 32 --learning_rate 1e-3 --out_dir runs/x

Stages: '2d' (the 2D branch), '3d' (the 3D network), each 90 epochs with the learning
rate halved every 30; 'finetune' (both, plus the 2D-3D consistency loss; 60 epochs, lr
divided by 3 every 20; starts from --init_from); 'all' runs the three in order, each in
its own folder under --out_dir, each starting from the previous one's weights.
--epochs scales the schedule for small runs.  Checkpoints are written atomically (keep
--keep) at every epoch end (and every --save_every_steps); a killed run started again
with the same flags continues from the step, optimizer state and data position it had.
TensorBoard: loss scalars per term and image summaries (input, render, overlay).
Multi-worker: set TF_CONFIG on each worker and pass --strategy multi_worker.
"""

import re

from absl import app, flags

from hand_tf import startup
from hand_tf.training.settings import MODES, STAGES, LossWeights, describe

DATA_KIND = flags.DEFINE_enum("data_kind", "freihand", ["freihand", "ho3d", "folder"],
                              "Dataset reader.")
DATA_DIR = flags.DEFINE_string("data_dir", None, "Dataset folder (images folder for 'folder').")
DETECTIONS = flags.DEFINE_string("detections", None,
                                 "2D detections (file or OpenPose folder); none = GT 2D (WSL).")
STAGE = flags.DEFINE_enum("stage", "all", list(STAGES) + ["all"], describe(
    {**STAGES, "all": "the three in order, each from the previous one's weights"}))
MODE = flags.DEFINE_enum("mode", "ssl", list(MODES), describe(MODES))
EPOCHS = flags.DEFINE_integer("epochs", None,
                              "Epochs of the stage (default: the paper's); with --stage all "
                              "the total, shared 90:90:60.")
BATCH = flags.DEFINE_integer("batch_size", 32, "Global batch size.")
LR = flags.DEFINE_float("learning_rate", 1e-3, "Initial learning rate (Adam).")
SCALE_TARGET = flags.DEFINE_float(
    "scale_target_m", None, "Scale prior: typical middle-finger MCP-PIP bone length of the "
    "data's hands, meters (default: the paper's FreiHAND value, 0.0282).")
DECAY_EVERY = flags.DEFINE_integer("decay_every", None,
                                   "Epochs between learning-rate drops (default: the paper's).")
DECAY_FACTOR = flags.DEFINE_float("decay_factor", None, "Learning-rate drop factor.")
INIT_FROM = flags.DEFINE_string("init_from", None,
                                "Checkpoint (prefix or run folder) whose network weights "
                                "start a single stage.")
SAVE_EVERY = flags.DEFINE_integer("save_every_steps", 0,
                                  "Also checkpoint every N steps (0: epoch ends only).")
IMAGE_EVERY = flags.DEFINE_integer("image_every_epochs", 1,
                                   "Image summaries every N epochs (0: none).")
IMAGE_SIZE = flags.DEFINE_integer("image_size", 224, "Model input size.")
BACKBONE = flags.DEFINE_enum("backbone", "lite0", ["lite0", "b0", "b3"],
                             "EfficientNet variant: lite0 (ImageNet weights offline), b0 "
                             "(the paper's) or b3 (the released code's).")
WEIGHTS = flags.DEFINE_string("encoder_weights", "imagenet",
                              "'imagenet', 'none' (random init) or a weights file.")
MANO = flags.DEFINE_string("mano_model_path", None, "MANO_RIGHT.pkl; default synthetic hand.")
NO_APPEARANCE = flags.DEFINE_bool("no_appearance", False, "Leave out the rendering losses.")
DISABLE = flags.DEFINE_list("disable_losses", [], "Loss terms to leave out.")
STRATEGY = flags.DEFINE_enum("strategy", "default", ["default", "mirrored", "multi_worker"],
                             "tf.distribute strategy (multi_worker: see --cluster).")
CLUSTER = flags.DEFINE_enum("cluster", "tf_config", ["tf_config", "slurm"],
                            "Where multi_worker finds its workers: the TF_CONFIG variable, "
                            "or Slurm's (one task per worker, ports from 8888).")
MIXED = flags.DEFINE_bool("mixed_precision", False, "mixed_float16 compute.")
JIT = flags.DEFINE_bool("jit_compile", False,
                        "XLA for the forward and backward pass (one replica per process; "
                        "the renderer then uses its TensorFlow backend).")
GRAPPLER = flags.DEFINE_bool(
    "grappler", True, "TensorFlow's graph rewrites; --nograppler builds the training step "
    "sooner (on a 2-core CPU 10-20 s of a short run's start) and runs it no faster.")
SEED = flags.DEFINE_integer("seed", 0, "Random seed.")
OUT_DIR = flags.DEFINE_string("out_dir", "runs/s2hand", "Checkpoints and summaries.")
KEEP = flags.DEFINE_integer("keep", 3, "Checkpoints to keep.")
AUGMENT = flags.DEFINE_bool("augment", False, "Colour and similarity augmentation.")
DROP_CONNECT = flags.DEFINE_float(
    "drop_connect_rate", 0.2, "The encoder's stochastic depth (0: none, and training "
    "steps become deterministic: what comparing two runs needs).")
SYNC_BN = flags.DEFINE_bool("sync_batch_norm", False,
                            "Batch-norm statistics over the global batch (all replicas).")
FROM_IMAGE = flags.DEFINE_bool(
    "translation_from_image", False,
    "Translation head in crop terms (pixel offset, depth under a nominal focal length), "
    "placed through each crop's K: for crops whose focal lengths vary, as photo crops' do "
    "(docs/experiments.md).")
HG_FEATURES = flags.DEFINE_integer("hourglass_features", 256, "2D branch width.",
                                   lower_bound=1)
HG_STACKS = flags.DEFINE_integer("hourglass_stacks", 2, "2D branch hourglass stacks.",
                                 lower_bound=1)
HG_STEM = flags.DEFINE_integer("hourglass_stem_features", 128,
                               "Width of the 2D branch's stem (the paper's 128; at 64 "
                               "hourglass features, 64 makes the branch ~2x cheaper).",
                               lower_bound=1)
ROTATION = flags.DEFINE_enum(
    "rotation", "6d", ["6d", "axis_angle"],
    "What the rotation head predicts: 6d (continuous; the default) or S2HAND's axis-angle "
    "(runs trained before the 6D head resume with it).")
for _name in LossWeights.__dataclass_fields__:
  flags.DEFINE_float(f"w_{_name}", None, f"Weight of the {_name} loss (default: paper's).")


def _records():
  from hand_tf.data.folder import read_folder
  from hand_tf.data.freihand import read_freihand
  from hand_tf.data.ho3d import read_ho3d
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
  import tensorflow as tf
  if STRATEGY.value == "mirrored":
    return tf.distribute.MirroredStrategy()
  if STRATEGY.value == "multi_worker":
    from hand_tf.training import loop
    return tf.distribute.MultiWorkerMirroredStrategy(
        cluster_resolver=loop.cluster_resolver(CLUSTER.value))
  return tf.distribute.get_strategy()


def _lost_workers(message: str) -> str:
  """What TensorFlow's aborted-collective error says of the lost workers, in a phrase."""
  _, found, after = message.partition("unhealthy")
  tasks = sorted(set(re.findall(r"/job:(\w+)/replica:\d+/task:(\d+)", after))) if found else []
  if tasks:
    return "lost " + ", ".join(f"{job} {task}" for job, task in tasks) + " (no heartbeat)"
  first = message.strip().splitlines()[0] if message.strip() else "no message"
  return f"lost contact with another worker ({first[:200]})"


def main(argv):
  del argv
  # TensorFlow loads here, not at import, so that --help answers at once.
  startup.quiet_tensorflow()  # first: TensorFlow's C++ start-up lines are not for users
  import tensorflow as tf

  from hand_tf.data import pipeline
  from hand_tf.io import InputError
  from hand_tf.model.s2hand import ModelConfig
  from hand_tf.predictors import resolve_checkpoint
  from hand_tf.training import loop
  from hand_tf.training.objective import ObjectiveConfig
  from hand_tf.training.trainer import Trainer, TrainerConfig, check_jit_compile
  from mano_tf import constants
  tf.keras.utils.set_random_seed(SEED.value)
  if not GRAPPLER.value:
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
  if MIXED.value:
    tf.keras.mixed_precision.set_global_policy("mixed_float16")
  try:
    records = _records()
    # A run folder works as well as a checkpoint prefix (its newest stage's checkpoint).
    init_from = resolve_checkpoint(INIT_FROM.value) if INIT_FROM.value else None
  except InputError as e:
    raise app.UsageError(str(e)) from e
  if len(records) < BATCH.value:
    raise app.UsageError(f"{len(records)} images for a batch of {BATCH.value}")
  weights = LossWeights(**{name: getattr(flags.FLAGS, f"w_{name}")
                           for name in LossWeights.__dataclass_fields__
                           if getattr(flags.FLAGS, f"w_{name}") is not None})
  strategy = _strategy()
  try:  # before any model is built
    check_jit_compile(JIT.value, strategy.num_replicas_in_sync)
  except ValueError as e:
    raise app.UsageError(str(e)) from e
  encoder_weights = None if WEIGHTS.value.lower() == "none" else WEIGHTS.value
  model_config = ModelConfig(backbone=BACKBONE.value, encoder_weights=encoder_weights,
                             image_size=IMAGE_SIZE.value, mano_model_path=MANO.value,
                             hourglass_features=HG_FEATURES.value,
                             hourglass_stacks=HG_STACKS.value,
                             hourglass_stem_features=HG_STEM.value,
                             sync_batch_norm=SYNC_BN.value,
                             drop_connect_rate=DROP_CONNECT.value,
                             translation_from_image=FROM_IMAGE.value,
                             rotation_representation=ROTATION.value)
  augment = pipeline.AugmentConfig() if AUGMENT.value else None

  def build_trainer(plan):
    return Trainer(TrainerConfig(
        out_dir=loop.worker_dir(strategy, plan.out_dir), model=model_config,
        objective=ObjectiveConfig(
            stage=plan.stage, mode=MODE.value, weights=weights,
            appearance=not NO_APPEARANCE.value, disabled=tuple(DISABLE.value),
            scale_target_m=SCALE_TARGET.value or constants.SCALE_BONE_TARGET_M),
        learning_rate=LR.value, steps_per_epoch=len(records) // BATCH.value,
        decay_every_epochs=plan.decay_every, decay_factor=plan.decay_factor,
        keep_checkpoints=KEEP.value, restore_dir=plan.out_dir,
        jit_compile=JIT.value), strategy)

  def announce(plan, trainer, restored, starting):
    print(f"stage {plan.stage}: {'resumed from ' + restored if restored else 'starting'}"
          f"{' (weights from ' + starting + ')' if starting else ''}, "
          f"{model_config.image_size} px input, {len(records)} images, "
          f"{trainer.config.steps_per_epoch} steps/epoch, {plan.epochs} epochs, "
          f"lr x{plan.decay_factor:.3g} every {plan.decay_every}, "
          f"{strategy.num_replicas_in_sync} replica(s)", flush=True)

  def train(trainer, plan):
    loop.run_stage(trainer, records, plan.epochs, BATCH.value, SEED.value, augment,
                   SAVE_EVERY.value, IMAGE_EVERY.value)

  plans = loop.plan_stages(STAGE.value, OUT_DIR.value, EPOCHS.value, DECAY_EVERY.value,
                           DECAY_FACTOR.value)
  try:
    previous = loop.run_schedule(plans, build_trainer, train, init_from, announce)
  except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError) as e:
    if STRATEGY.value != "multi_worker":
      raise
    # A lost worker: the others' collectives are aborted (TensorFlow notices the missed
    # heartbeats) and this one stops too; restarting all of them resumes the run.
    latest = next((c for c in (tf.train.latest_checkpoint(p.out_dir) for p in reversed(plans))
                   if c), "none yet")
    startup.fail(f"{_lost_workers(str(e))}; start every worker again with the same command "
                 f"to resume from the last checkpoint ({latest})")
  print(f"done: {previous}", flush=True)
  return 0


if __name__ == "__main__":
  startup.run(main)
