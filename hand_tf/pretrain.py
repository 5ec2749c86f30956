"""Trains the model that ships inside the package, from scratch: the recipe, not a blob.

  python -m hand_tf.pretrain [--out runs/pretrained] [--install]     (make pretrained)

Every step goes through the command-line tool a user would run, into --out:
  1. realistic renders of the project's synthetic hand (`synthesize --generator realistic
     --occluders --detector mediapipe`), a training and a held-out split;
  2. self-supervised training from MediaPipe's detections of the training renders only
     (no 3D labels, no ground-truth 2D), the paper's stage-wise schedule ('2d', '3d',
     'finetune'), from the ImageNet EfficientNet-Lite0 encoder;
  3. evaluation of the checkpoint on the held-out renders (FreiHAND protocol), then
     export to TFLite fp16 and int8 (calibrated on training renders), with parity checks;
  4. evaluation of the exported models and of the template hand on the same renders;
  5. with --install, if the model beats the template hand on the held-out renders (PA-MPJPE
     and camera-frame MPJPE; --force_install skips the check): the two .tflite files,
     their side files, the recipe, the metrics and the full training log copied into
     hand_tf/pretrained/, staged and switched in by one rename.

A second run reuses the renders and resumes the training from its last checkpoint (an
interrupted run loses at most --save_every_steps steps).  The recipe's numbers are the
`Recipe` defaults below; the shipped folder's recipe.json records the ones used.
"""

import dataclasses
import json
import os
import shutil
import time

from absl import app, flags

from hand_tf import shipped, startup

OUT = flags.DEFINE_string("out", "runs/pretrained", "Work folder (renders, run, export).")
INSTALL = flags.DEFINE_bool("install", False, "Copy the result into the package "
                            "(hand_tf/pretrained/), replacing the shipped model; only a "
                            "model that beats the template hand on the held-out renders.")
FORCE = flags.DEFINE_bool("force_install", False, "--install even a model that does not "
                          "beat the template hand (its users are told so).")
TRAIN_IMAGES = flags.DEFINE_integer("train_images", None, "Override the recipe's.")
EPOCHS = flags.DEFINE_integer("epochs", None, "Override the recipe's (stage-wise total).")
SEED = flags.DEFINE_integer("seed", None, "Override the recipe's.")

SHIPPED_FILES = tuple(shipped.MODEL_FILES.values()) + shipped.EXPORT_FILES
# The metrics row of the checkpoint's held-out hands moved rigidly onto MediaPipe's
# keypoints, as `predict` and the API place them by default.
PLACED_ON_MEDIAPIPE = "checkpoint, placed on MediaPipe"


@dataclasses.dataclass(frozen=True)
class Recipe:
  """What the shipped model is trained from and for how long."""
  train_images: int = 2048
  test_images: int = 128
  # MediaPipe reads the renders at this size (its palm model misses small hands).
  render_size: int = 224
  # The network's input: the speed issue's smallest size with mesh accuracy to spare.
  image_size: int = 128
  # Total epochs of the three stages, shared 90:90:60 as the paper's.
  epochs: int = 16
  batch_size: int = 16
  learning_rate: float = 1e-3
  # The 2D branch trains only; at 128 px its 32x32 heatmaps need no paper-wide hourglass.
  hourglass_features: int = 64
  hourglass_stacks: int = 1
  # The facing term (hand_tf.training.facing): without it the hands' rotation did not
  # learn on these freely turned views.
  facing_weight: float = 0.1
  seed: int = 0
  save_every_steps: int = 100
  num_calibration: int = 64


def _recipe() -> Recipe:
  overrides = {"train_images": TRAIN_IMAGES.value, "epochs": EPOCHS.value,
               "seed": SEED.value}
  return dataclasses.replace(Recipe(), **{k: v for k, v in overrides.items() if v is not None})


def train_args(recipe: Recipe, data: str, run_dir: str, scale_target_m: float):
  """The `hand_tf.train` command line of the recipe."""
  return ["hand_tf.train", "--data_dir", data, "--detections",
          os.path.join(data, "training_mediapipe_detections.json"), "--stage", "all",
          "--epochs", recipe.epochs, "--batch_size", recipe.batch_size,
          "--learning_rate", recipe.learning_rate, "--image_size", recipe.image_size,
          "--hourglass_features", recipe.hourglass_features,
          "--hourglass_stacks", recipe.hourglass_stacks, "--w_facing", recipe.facing_weight,
          "--seed", recipe.seed,
          "--save_every_steps", recipe.save_every_steps, "--image_every_epochs", 4,
          "--scale_target_m", f"{scale_target_m:.5f}", "--out_dir", run_dir]


def _evaluate(log, model, data, recipe, out, log_file):
  from hand_tf.demo_job import run_module
  if not os.path.isfile(os.path.join(out, "metrics.json")):
    run_module(log, "hand_tf.evaluate", "--model", model, "--data_dir", data, "--split",
               "evaluation", "--source_size", recipe.render_size, "--out", out,
               log_file=log_file)
  with open(os.path.join(out, "metrics.json")) as f:
    return json.load(f)["metrics"]


def check_installable(metrics: dict, shape: dict, force: bool = False) -> None:
  """Raises InputError unless the model beats the template hand on the held-out renders
  by more than their noise, or `force`.

  Shape: the network's per-image PA-MPJPE against the mean hand's, whose paired 95%
  bootstrap interval must lie below 0 (`shape`, from `demo_job.shape_difference`; 128
  images leave ~0.7 mm either way).  Camera frame: what `predict` returns, the network's
  hands placed on MediaPipe's keypoints (`PLACED_ON_MEDIAPIPE`), against the template
  hand placed on the same keypoints (`TEMPLATE_ON_MEDIAPIPE`): both get the help a
  user's photo gives.  (The simulated detections' template row is the truth plus
  noise, which no user has.)

  Args:
    metrics: the recipe's rows PLACED_ON_MEDIAPIPE and TEMPLATE_ON_MEDIAPIPE, each with
      "mpjpe" (mm).
    shape: {"difference", "low", "high"}: network minus template PA-MPJPE, mm.
  """
  from hand_tf.contract import not_beating_template
  from hand_tf.demo_job import TEMPLATE_ON_MEDIAPIPE
  losing = not_beating_template(shape, metrics[PLACED_ON_MEDIAPIPE]["mpjpe"],
                                metrics[TEMPLATE_ON_MEDIAPIPE]["mpjpe"], "MediaPipe's keypoints")
  if losing and not force:
    raise shipped.InputError(
        f"not installed: the model does not beat the template hand on "
        f"{' and '.join(losing)}; train longer (--epochs, a new --out) or pass "
        "--force_install")


def install(export_dir: str, files: dict, package_dir: str = shipped.FOLDER):
  """Replaces `package_dir` by the exported models plus `files` ({name: source path}),
  built in a staging folder beside it, checked, then switched in (`hand_tf.io`)."""
  from hand_tf.io import staging_folder, switch_into_place
  staging = staging_folder(package_dir)
  try:
    for name in SHIPPED_FILES:
      shutil.copy2(os.path.join(export_dir, name), os.path.join(staging, name))
    for name, source in files.items():
      shutil.copy2(source, os.path.join(staging, name))
    shipped.check_folder(staging)  # raises before anything shipped is touched
  except BaseException:
    shutil.rmtree(staging, ignore_errors=True)
    raise
  switch_into_place(staging, package_dir)


def main(argv):
  del argv
  startup.quiet_tensorflow()  # the scale prior's target loads the hand model (TensorFlow)
  from hand_tf.demo_job import (
    TEMPLATE_ON_MEDIAPIPE,
    placed_on_detections,
    run_module,
    shape_difference,
    synthesize_split,
    template_baseline,
  )
  from hand_tf.eval.template import scale_bone_length
  from hand_tf.io import write_json
  recipe, out = _recipe(), OUT.value
  data, run_dir = os.path.join(out, "data"), os.path.join(out, "run")
  export_dir, log_file = os.path.join(out, "export"), os.path.join(out, "training_log.txt")
  os.makedirs(out, exist_ok=True)
  log = lambda message: print(message, flush=True)  # noqa: E731
  recorded = os.path.join(out, "recipe.json")
  if os.path.isfile(recorded):
    with open(recorded) as f:
      if json.load(f) != dataclasses.asdict(recipe):
        raise app.UsageError(f"{recorded} records another recipe; use a new --out or "
                             "remove the folder")
  write_json(recorded, dataclasses.asdict(recipe))
  timings = {}
  start = time.time()
  log(f"[1/4] realistic renders with MediaPipe's detections: {recipe.train_images} "
      f"training, {recipe.test_images} held-out ({recipe.render_size} px)")
  synthesize_split(log, data, "training", recipe.train_images, recipe.render_size,
                   recipe.seed, None, generator="realistic", detector="mediapipe")
  synthesize_split(log, data, "evaluation", recipe.test_images, recipe.render_size,
                   recipe.seed + 1000, None, generator="realistic", detector="mediapipe")
  timings["data_s"] = time.time() - start

  start = time.time()
  log(f"[2/4] self-supervised training, stages 2d/3d/finetune ({recipe.epochs} epochs in "
      f"all, {recipe.image_size} px); log: {log_file}")
  run_module(log, *train_args(recipe, data, run_dir, scale_bone_length(None)),
             log_file=log_file)
  timings["train_s"] = time.time() - start

  start = time.time()
  log("[3/4] the checkpoint on the held-out renders (recorded with it, so the export "
      "carries the figures), then export to TFLite fp16 and int8 (calibrated on training "
      "renders)")
  checkpoint = os.path.join(run_dir, "finetune")
  report_dir = os.path.join(out, "evaluation", "checkpoint")
  metrics = {"checkpoint": _evaluate(log, checkpoint, data, recipe, report_dir, log_file)}
  predicted = os.path.join(report_dir, "pred.json")
  metrics[PLACED_ON_MEDIAPIPE], _ = placed_on_detections(
      data, recipe.image_size, predicted, source_size=recipe.render_size,
      detector="mediapipe")
  shape = shape_difference(data, recipe.image_size, predicted, recipe.render_size)
  if not all(os.path.isfile(os.path.join(export_dir, n)) for n in SHIPPED_FILES):
    shutil.rmtree(export_dir, ignore_errors=True)
    run_module(log, "export", "--checkpoint", checkpoint, "--out", export_dir, "--formats",
               "tflite_fp16,tflite_int8", "--num_calibration", recipe.num_calibration,
               "--calibration_dir", data, log_file=log_file)
  timings["export_s"] = time.time() - start

  start = time.time()
  log("[4/4] the exported models and the template hand on the held-out renders")
  for name in shipped.MODEL_FILES.values():
    metrics[name] = _evaluate(log, os.path.join(export_dir, name), data, recipe,
                              os.path.join(out, "evaluation", name.replace(".", "_")),
                              log_file)
  metrics["template hand"], _ = template_baseline(data, recipe.image_size,
                                                  source_size=recipe.render_size)
  # The same mean hand placed on MediaPipe's keypoints: the 2D a user's photo has (the
  # simulated detections above are the truth plus noise).
  metrics[TEMPLATE_ON_MEDIAPIPE], _ = template_baseline(
      data, recipe.image_size, source_size=recipe.render_size, detector="mediapipe")
  timings["evaluate_s"] = time.time() - start
  from hand_tf.eval import report
  print(report.format_table(metrics), flush=True)
  print(f"checkpoint - template hand, PA-MPJPE per image: {shape['difference']:+.2f} mm, "
        f"95% interval [{shape['low']:+.2f}, {shape['high']:+.2f}]", flush=True)
  summary = os.path.join(out, "metrics.json")
  write_json(summary, {"recipe": dataclasses.asdict(recipe), "metrics": metrics,
                       "shape_difference_mm": shape, "seconds": timings})
  if INSTALL.value:
    check_installable(metrics, shape, FORCE.value)
    install(export_dir, {"recipe.json": recorded, "metrics.json": summary,
                         "training_log.txt": log_file})
    log(f"installed into {shipped.FOLDER}")
  return 0


if __name__ == "__main__":
  startup.run(main)
