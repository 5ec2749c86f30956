"""Does self-supervision from noisy 2D detections recover 3D hands?  Measured on synthetic data.

  python benchmarks/ssl_synthetic.py --out ssl_bench [--train_images 1024] \
      [--test_images 128] [--image_size 64] [--epochs 8] [--rows ssl,template,...]

Renders a training and a held-out set (`hand_tf.synthesize`: random poses, shapes,
rotations, skin, lighting, backgrounds and occluders, with simulated detector keypoints
and confidences), trains one network per row through `python -m hand_tf.train`, and
evaluates each on the held-out ground truth through `python -m hand_tf.evaluate`:

  template  the mean hand with its camera fitted to the test detections (RANSAC PnP):
            the floor a model must beat
  j         joint location only                                  (paper Table 4, row 1)
  jb        + bone orientation                                   (row 2)
  jbp       + priors (scale, shape, skeleton, Laplacian)         (row 3)
  jbp2d     + 2D branch and 2D-3D consistency (stage-wise)       (row 4)
  ssl       + photometric (L1, SSIM, mean colour, texture reg.)  (row 5: the full method)
  jbp_size  jbp + the apparent-size term (not the paper's: hand_tf.losses.apparent_size_loss)
  ssl_size  ssl + the apparent-size term
  ssl_mediapipe  ssl_size trained from MediaPipe's detections of the training images
            (a real detector, as the paper's OpenPose; needs --generator realistic and a
            --render_size MediaPipe can read, e.g. 224)
  wsl       the full method on ground-truth 2D, equal confidences (paper Table 5)
  fsl       the full method plus the 3D joint losses               (paper Table 5)

Only the training split's detections reach training (no 3D labels, no ground-truth 2D)
except in 'wsl' and 'fsl'.  Rows j, jb, jbp train the '3d' stage for --epochs; the
stage-wise rows run '2d', '3d', 'finetune' with the paper's 90:90:60 split scaled so the
'3d' stage also gets --epochs.  Every row uses the same seed, data and batch size.

Writes --out/report.md (the table, the budget, and which of the paper's orderings hold at
this scale) and --out/results.json.  A rerun skips rows already evaluated.
"""

import json
import os
import time

from absl import app, flags

from hand_tf import startup

OUT = flags.DEFINE_string("out", "ssl_bench", "Output folder (data, runs, report).")
REFINE = flags.DEFINE_bool("refine", False, "Also a '+ refinement' row per trained row: its "
                           "predictions fitted to the held-out detections (hand_tf.refine).")
TRAIN_IMAGES = flags.DEFINE_integer("train_images", 1024, "Training images.")
TEST_IMAGES = flags.DEFINE_integer("test_images", 128, "Held-out images.")
IMAGE_SIZE = flags.DEFINE_integer("image_size", 64, "Network input side, pixels.")
RENDER_SIZE = flags.DEFINE_integer("render_size", None,
                                   "Rendered images' side, pixels (default --image_size).")
GENERATOR = flags.DEFINE_enum("generator", "plain", ["plain", "realistic"],
                              "Synthetic renders (hand_tf.synthesize --generator).")
EPOCHS = flags.DEFINE_integer("epochs", 8, "Epochs of the '3d' stage in every row.")
BATCH = flags.DEFINE_integer("batch_size", 16, "Batch size.")
SEED = flags.DEFINE_integer("seed", 0, "Seed of data and training.")
MAX_ROTATION = flags.DEFINE_float(
    "max_rotation_deg", 45.0, "Hand rotations within this angle of S2HAND's canonical view "
    "(a negative value: uniform over all rotations).")
HG_FEATURES = flags.DEFINE_integer("hourglass_features", 32, "2D branch width.")
MANO = flags.DEFINE_string("mano_model_path", None, "MANO_RIGHT.pkl; default synthetic hand.")
ROWS = flags.DEFINE_list("rows", None, "Rows to run (default all; see the docstring).")

_PRIORS = ["scale", "shape", "skeleton", "laplacian"]
# key: (label, train flags beyond the shared ones); None = no training.
ROW_SPECS = {
    "template": ("template hand (mean hand, PnP camera)", None),
    "j": ("J: joint location", {"stage": "3d", "appearance": False,
                                "disable": ["bone_direction"] + _PRIORS}),
    "jb": ("J+B: + bone orientation", {"stage": "3d", "appearance": False,
                                       "disable": _PRIORS}),
    "jbp": ("J+B+P: + priors", {"stage": "3d", "appearance": False}),
    "jbp2d": ("+ 2D branch, 2D-3D consistency", {"stage": "all", "appearance": False}),
    "ssl": ("+ photometric = SSL (full)", {"stage": "all", "appearance": True}),
    "jbp_size": ("J+B+P + apparent size", {"stage": "3d", "appearance": False,
                                           "apparent_size": True}),
    "ssl_size": ("SSL (full) + apparent size", {"stage": "all", "appearance": True,
                                                "apparent_size": True}),
    "ssl_mediapipe": ("SSL (full) + apparent size, MediaPipe's detections",
                      {"stage": "all", "appearance": True, "apparent_size": True,
                       "detections": "mediapipe"}),
    "wsl": ("WSL (ground-truth 2D)", {"stage": "all", "appearance": True, "mode": "wsl"}),
    "fsl": ("FSL (+ 3D joint losses)", {"stage": "all", "appearance": True, "mode": "fsl"}),
}
# The apparent-size term (not the paper's; hand_tf.losses.apparent_size_loss) at the
# weight the project trains with; rows without it run the paper's losses exactly.
APPARENT_SIZE_WEIGHT = 1e-3
# Orderings the paper reports (lower PA-MPJPE first): Table 4 rows improve one on the
# next; Table 5 ranks FSL < WSL < SSL.
PAPER_ORDERINGS = (("jb", "j"), ("jbp", "jb"), ("jbp2d", "jbp"), ("ssl", "jbp2d"),
                   ("wsl", "ssl"), ("fsl", "wsl"))


def _render_size():
  return RENDER_SIZE.value or IMAGE_SIZE.value


def _epochs(spec):
  """Epochs of a row's training command: stage-wise rows get the paper's 90:90:60 split
  scaled so that their '3d' stage also trains --epochs."""
  return round(EPOCHS.value * 240 / 90) if spec["stage"] == "all" else EPOCHS.value


def _train_args(key, spec, data, run_dir, scale_target):
  args = ["hand_tf.train", "--data_dir", data, "--image_size", IMAGE_SIZE.value,
          "--batch_size", BATCH.value, "--seed", SEED.value, "--out_dir", run_dir,
          "--hourglass_features", HG_FEATURES.value, "--hourglass_stacks", 1,
          "--image_every_epochs", 1000, "--stage", spec["stage"],
          "--mode", spec.get("mode", "ssl"), "--scale_target_m", f"{scale_target:.5f}",
          "--epochs", _epochs(spec)]
  if spec.get("mode", "ssl") == "ssl":  # WSL and FSL read ground-truth 2D instead
    prefix = "training_mediapipe" if spec.get("detections") == "mediapipe" else "training"
    args += ["--detections", os.path.join(data, f"{prefix}_detections.json")]
  if not spec["appearance"]:
    args += ["--no_appearance"]
  args += ["--w_apparent_size", APPARENT_SIZE_WEIGHT if spec.get("apparent_size") else 0]
  if spec.get("disable"):
    args += ["--disable_losses", ",".join(spec["disable"])]
  if MANO.value:
    args += ["--mano_model_path", MANO.value]
  return args


def _run_row(key, spec, data, out, scale_target, log):
  """Trains and evaluates one row; returns {'metrics', 'train_s', 'steps'}."""
  from hand_tf.demo_job import run_module
  row_dir = os.path.join(out, "runs", key)
  result_path = os.path.join(row_dir, "result.json")
  final = os.path.join(row_dir, "finetune") if spec["stage"] == "all" else row_dir
  evaluation_dir = os.path.join(row_dir, "evaluation")
  evaluate = ["hand_tf.evaluate", "--model", final, "--data_dir", data, "--split",
              "evaluation", "--source_size", _render_size(), "--out", evaluation_dir]
  if os.path.isfile(result_path):
    with open(result_path) as f:
      log(f"[{key}] reusing {result_path}")
      result = json.load(f)
    if REFINE.value and "refined" not in result:  # trained before: evaluate it again
      run_module(log, *evaluate, "--refine")
      result["refined"] = _refined_metrics(evaluation_dir)
    return result
  start = time.time()
  run_module(log, *_train_args(key, spec, data, row_dir, scale_target))
  train_s = time.time() - start
  run_module(log, *evaluate, *(["--refine"] if REFINE.value else []))
  with open(os.path.join(evaluation_dir, "metrics.json")) as f:
    metrics = json.load(f)["metrics"]
  from hand_tf.demo_job import placed_on_detections
  placed, _ = placed_on_detections(data, IMAGE_SIZE.value,
                                   os.path.join(evaluation_dir, "pred.json"), _render_size())
  metrics["mpjpe_placed_on_detections"] = placed["mpjpe"]
  steps = _epochs(spec) * (TRAIN_IMAGES.value // BATCH.value)
  result = {"metrics": metrics, "train_s": train_s, "steps": steps}
  if REFINE.value:
    result["refined"] = _refined_metrics(evaluation_dir)
  from hand_tf.io import write_json
  write_json(result_path, result)
  return result


def _refined_metrics(evaluation_dir):
  with open(os.path.join(evaluation_dir, "refined", "metrics.json")) as f:
    return json.load(f)["metrics"]


def _orderings(results):
  lines = []
  for better, worse in PAPER_ORDERINGS:
    if better not in results or worse not in results:
      continue
    a, b = (results[k]["metrics"]["pa_mpjpe"] for k in (better, worse))
    verdict = "reproduces" if a < b else "does NOT reproduce"
    lines.append(f"- {ROW_SPECS[better][0]} better than {ROW_SPECS[worse][0]}: "
                 f"{verdict} ({a:.1f} vs {b:.1f} mm PA-MPJPE)")
  return lines


def _headline(results):
  if "ssl" not in results or "template" not in results:
    missing = [k for k in ("ssl", "template") if k not in results]
    return f"Not run, so not compared: {', '.join(missing)}."
  ssl, template = results["ssl"]["metrics"], results["template"]["metrics"]
  parts = []
  for key, name in (("pa_mpjpe", "PA-MPJPE"), ("mpjpe", "camera-frame MPJPE")):
    beats = ssl[key] < template[key]
    parts.append(f"{name} {ssl[key]:.1f} vs {template[key]:.1f} mm "
                 f"({'beats' if beats else 'does NOT beat'} the template)")
  return "Self-supervised model against the template hand: " + "; ".join(parts) + "."


def main(argv):
  del argv
  from hand_tf.demo_job import synthesize_split, template_baseline
  from hand_tf.eval import report
  from hand_tf.io import write_json
  out, size = OUT.value, IMAGE_SIZE.value
  keys = ROWS.value or list(ROW_SPECS)
  unknown = set(keys) - set(ROW_SPECS)
  if unknown:
    raise app.UsageError(f"unknown rows {sorted(unknown)}; choose from {list(ROW_SPECS)}")
  log = lambda message: print(message, flush=True)  # noqa: E731
  data = os.path.join(out, "data")
  start = time.time()
  rotation = MAX_ROTATION.value if MAX_ROTATION.value >= 0 else None
  detector = ("mediapipe" if any(ROW_SPECS[k][1] and ROW_SPECS[k][1].get("detections")
                                 for k in keys) else "simulated")
  synthesize_split(log, data, "training", TRAIN_IMAGES.value, _render_size(), SEED.value,
                   MANO.value, rotation, GENERATOR.value, detector)
  synthesize_split(log, data, "evaluation", TEST_IMAGES.value, _render_size(),
                   SEED.value + 1000, MANO.value, rotation, GENERATOR.value)
  data_s = time.time() - start
  from hand_tf.eval.template import scale_bone_length
  # The scale prior's target: the rendered hands' typical size (a population prior, as
  # the paper's 0.0282 m is FreiHAND's), not any per-image label.
  scale_target = scale_bone_length(MANO.value)
  results = {}
  for key in keys:
    label, spec = ROW_SPECS[key]
    log(f"== {key}: {label}")
    if spec is None:
      metrics, _ = template_baseline(data, size, MANO.value, _render_size())
      results[key] = {"metrics": metrics, "train_s": 0.0, "steps": 0}
    else:
      results[key] = _run_row(key, spec, data, out, scale_target, log)
  rotation_text = ("uniform over all rotations" if rotation is None
                   else f"within {rotation:g} deg of S2HAND's canonical view")
  rows = {}
  for k in keys:
    rows[ROW_SPECS[k][0]] = results[k]["metrics"]
    if results[k].get("refined"):
      rows[ROW_SPECS[k][0] + " + refinement"] = results[k]["refined"]
  table = report.format_table(rows)
  def cell(k, key, fmt):
    value = results[k]["metrics"].get(key)
    return "-" if value is None else fmt.format(value)
  budget = [f"| {ROW_SPECS[k][0]} | {cell(k, 'mpjpe', '{:.1f}')} | "
            f"{cell(k, 'mpjpe_placed_on_detections', '{:.1f}')} | "
            f"{cell(k, 'mpjpe_2d_px', '{:.2f}')} | {cell(k, 'spread_mm', '{:.1f}')} | "
            f"{results[k]['steps'] or '-'} | "
            f"{results[k]['train_s'] / 60:.1f} |" for k in keys]
  lines = ["# Self-supervision on synthetic hands", "",
           f"{TRAIN_IMAGES.value} training and {TEST_IMAGES.value} held-out images, {size} px, "
           f"batch {BATCH.value}, seed {SEED.value} (data) / {SEED.value} (training), "
           f"'3d' stage {EPOCHS.value} epochs in every row, 2D branch "
           f"{HG_FEATURES.value} features x 1 stack, scale prior {scale_target * 1000:.1f} mm "
           f"(the hand model's mean); data rendered in {data_s / 60:.1f} min. "
           f"Command: `python benchmarks/ssl_synthetic.py --train_images "
           f"{TRAIN_IMAGES.value} --test_images {TEST_IMAGES.value} --image_size {size} "
           f"--render_size {_render_size()} --generator {GENERATOR.value} "
           f"--epochs {EPOCHS.value} --max_rotation_deg {MAX_ROTATION.value:g}`. "
           f"Hand rotations: {rotation_text}.", "", "```", table, "```", "", _headline(results), "",
           "The paper's orderings at this scale:", *_orderings(results), "",
           "Camera frame, 2D and spread (MPJPE placed: the row's own hands moved rigidly "
           "onto the test detections by the template's PnP fit; 2D px: projected joints to "
           "the ground-truth 2D; spread: root-relative joints' standard deviation across "
           "the test images, the ground truth's "
           f"{next(iter(results.values()))['metrics']['ground_truth_spread_mm']:.1f} mm):", "",
           "| row | MPJPE mm | MPJPE placed mm | 2D px | spread mm | optimizer steps | "
           "training minutes (this CPU) |", "|---|---|---|---|---|---|---|", *budget]
  os.makedirs(out, exist_ok=True)
  write_json(os.path.join(out, "results.json"),
             {"rows": {k: {"label": ROW_SPECS[k][0], **results[k]} for k in keys},
              "data_s": data_s})
  with open(os.path.join(out, "report.md.partial"), "w") as f:
    f.write("\n".join(lines) + "\n")
  os.replace(os.path.join(out, "report.md.partial"), os.path.join(out, "report.md"))
  print("\n".join(lines), flush=True)


if __name__ == "__main__":
  startup.run(main)
