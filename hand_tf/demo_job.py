"""The main job of `make demo`: data -> self-supervised training -> evaluation -> export
-> on-device run -> report, each step through the command-line tool a user would run.

Sized for about 10 minutes on 2 CPU cores: a 64 px network (the paper uses 224 px) with
a small 2D branch, trained for a few epochs of the '3d' stage from simulated detector
keypoints only.  The numbers show the pipeline working, not the paper's accuracy.
A second run reuses the data and resumes the finished training.
"""

import dataclasses
import io
import json
import os
import subprocess
import sys
import time
from typing import Optional

import cv2
import numpy as np


@dataclasses.dataclass(frozen=True)
class JobConfig:
  train_images: int = 640
  test_images: int = 64
  image_size: int = 64
  epochs: int = 8
  # Hands within this angle of the canonical view (FreiHAND-like crops); None: any.
  max_rotation_deg: Optional[float] = 45.0
  batch_size: int = 16
  seed: int = 0
  mano_model_path: Optional[str] = None


def run_module(log, *args, log_file: Optional[str] = None):
  """Runs `python -m ...`, streaming its output (also appended to `log_file`, if given);
  raises with the command on failure."""
  command = [sys.executable, "-m", *map(str, args)]
  log("$ " + " ".join(["python", "-m", *map(str, args)]))
  if log_file is None:
    returncode = subprocess.run(command).returncode  # each step starts quietly itself
  else:
    with open(log_file, "a") as f, subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as process:
      f.write("$ " + " ".join(["python", "-m", *map(str, args)]) + "\n")
      # newline="": lines end at "\r" too, untranslated: a progress bar redraws itself
      # with "\r", and the file keeps only each bar's last state (the line "\n" ends).
      for line in io.TextIOWrapper(process.stdout, newline=""):
        sys.stdout.write(line)
        sys.stdout.flush()
        if line.endswith("\n"):
          f.write(line)
          f.flush()
      returncode = process.wait()
  if returncode != 0:
    raise RuntimeError(f"step failed (exit {returncode}): {' '.join(command)}")


def synthesize_split(log, root, split, num, size, seed, mano, max_rotation_deg=None,
                     generator="plain", detector="simulated"):
  """Renders a split with `hand_tf.synthesize` unless the same one is there.  ('plain'
  renders by default: the demo's recorded figures were measured on them, README.)"""
  summary_path = os.path.join(root, f"{split}_synthesis.json")
  if os.path.isfile(summary_path):
    with open(summary_path) as f:
      done = json.load(f)
    if ((done["num"], done["image_size"], done["seed"], done.get("max_rotation_deg"),
         done.get("generator", "plain"), "mediapipe" in done or detector == "simulated")
        == (num, size, seed, max_rotation_deg, generator, True)):
      log(f"reusing {num} {split} images in {root}")
      return
  args = ["hand_tf.synthesize", "--out", root, "--split", split, "--num", num,
          "--image_size", size, "--seed", seed, "--occluders", "--generator", generator,
          "--detector", detector]
  if max_rotation_deg is not None:
    args += ["--max_rotation_deg", max_rotation_deg]
  if mano:
    args += ["--mano_model_path", mano]
  run_module(log, *args)


# The row name of the template hand placed on MediaPipe's keypoints of the held-out
# renders, beside "template hand" on the simulated detector's.
TEMPLATE_ON_MEDIAPIPE = "template hand, MediaPipe"


def _held_out_records(data, size, source_size=None, detector="simulated"):
  """The held-out split with its detections (what the template and PnP rows fit to):
  the simulated detector's, or MediaPipe's where `synthesize --detector mediapipe` ran."""
  from hand_tf.data.freihand import annotation_path, read_freihand
  key = "detections" if detector == "simulated" else f"{detector}_detections"
  return read_freihand(data, "evaluation", image_size=size, source_size=source_size or size,
                       detections=annotation_path(data, "evaluation", key))


def template_baseline(data, size, mano_model_path=None, source_size=None,
                      detector="simulated"):
  """Metrics and PCK curves of the template hand (mean hand, PnP camera onto `detector`'s
  keypoints) on the test set (rendered at `source_size`, default `size`)."""
  from hand_tf.eval import report, template
  records = _held_out_records(data, size, source_size, detector)
  evaluation = report.evaluate_records(
      template.template_predictions(records, mano_model_path), records)
  return evaluation["metrics"], evaluation["pck"]


def placed_on_detections(data, size, prediction_file, source_size=None,
                         detector="simulated"):
  """Metrics of a report's predictions (`pred.json`) moved rigidly onto the test
  detections by the template's PnP fit: the network's hands given the template's help."""
  from hand_tf.eval import report, template
  from hand_tf.io import load_json
  records = _held_out_records(data, size, source_size, detector)
  joints, vertices = load_json(prediction_file, "predictions")
  placed = template.place_on_keypoints(
      {"joints3d": np.asarray(joints, np.float32), "vertices": np.asarray(vertices, np.float32)},
      records)
  evaluation = report.evaluate_records(placed, records)
  return evaluation["metrics"], evaluation["pck"]


def shape_difference(data, size, prediction_file, source_size=None):
  """A report's predictions (`pred.json`) against the template hand in shape: per-image
  PA-MPJPE (mm) on the test set, their paired difference and its 95% bootstrap interval
  (`hand_tf.eval.metrics.paired_difference`; negative: the predictions are better)."""
  from hand_tf.eval import template
  from hand_tf.io import load_json
  records = _held_out_records(data, size, source_size)
  joints, _ = load_json(prediction_file, "predictions")
  return template.shape_against_mean_hand(records.joints3d, joints)


def _verdict(model, template, placed=None):
  """Honest sentences: does the trained model beat the template floor, and does it read
  the image (a model that gives every image the same hand has spread 0)?"""
  from hand_tf.contract import losing_to_template
  worse, figures = losing_to_template(model, template)
  spread = (f"Its predictions vary across the held-out images by {model['spread_mm']:.1f} mm "
            f"(root-relative joints' standard deviation; the ground truth's is "
            f"{model['ground_truth_spread_mm']:.1f} mm, a constant hand's 0).")
  helped = ""
  if placed is not None:
    helped = (f" Placed on the test detections by the template's own PnP fit, the "
              f"network's hands score MPJPE {placed['mpjpe']:.1f} mm "
              f"({'better' if placed['mpjpe'] < template['mpjpe'] else 'worse'} than the "
              "template's): what the network adds when it gets the same help.")
  if not worse:
    return (f"At this budget the trained model beats the template hand ({figures}). "
            f"{spread}{helped}")
  return (f"At this budget the trained model does NOT beat the template hand on "
          f"{' and '.join(worse)} ({figures}). {spread}{helped} Longer training "
          "(`python -m hand_tf.train`, `benchmarks/learning_curve.py`) is how accuracy is "
          "reached.")


def _contact_sheet(images, overlays, path, scale=3):
  tiles = [np.concatenate([cv2.resize(a, None, fx=scale, fy=scale,
                                      interpolation=cv2.INTER_NEAREST),
                           cv2.resize(b, None, fx=scale, fy=scale,
                                      interpolation=cv2.INTER_NEAREST)], axis=0)
           for a, b in zip(images, overlays)]
  cv2.imwrite(path, np.concatenate(tiles, axis=1))


def run(out: str, config: JobConfig, log=print) -> dict:
  """Runs every step into `out`; returns the report dict (also report/metrics.json)."""
  from hand_tf.eval import report as report_lib
  from hand_tf.eval.template import scale_bone_length
  from hand_tf.io import write_json
  size, timings = config.image_size, {}
  data = os.path.join(out, "ssl_data")
  run_dir = os.path.join(out, "run")
  export_dir = os.path.join(out, "export")
  report_dir = os.path.join(out, "report")
  os.makedirs(report_dir, exist_ok=True)

  start = time.time()
  log(f"[1/6] rendering {config.train_images} training and {config.test_images} held-out "
      f"images ({size} px) with simulated detector keypoints")
  synthesize_split(log, data, "training", config.train_images, size, config.seed,
                   config.mano_model_path, config.max_rotation_deg)
  synthesize_split(log, data, "evaluation", config.test_images, size, config.seed + 1000,
                   config.mano_model_path, config.max_rotation_deg)
  timings["data_s"] = time.time() - start

  start = time.time()
  log(f"[2/6] self-supervised training ({config.epochs} epochs of stage '3d', batch "
      f"{config.batch_size}) from the detections only; TensorBoard: {run_dir}")
  args = ["hand_tf.train", "--data_dir", data, "--detections",
          os.path.join(data, "training_detections.json"), "--stage", "3d", "--epochs",
          config.epochs, "--batch_size", config.batch_size, "--image_size", size,
          "--hourglass_features", 32, "--hourglass_stacks", 1, "--out_dir", run_dir,
          "--image_every_epochs", config.epochs, "--seed", config.seed,
          # The scale prior's target: the rendered population's typical hand size.
          "--scale_target_m", f"{scale_bone_length(config.mano_model_path):.5f}"]
  if config.mano_model_path:
    args += ["--mano_model_path", config.mano_model_path]
  run_module(log, *args)
  timings["train_s"] = time.time() - start

  start = time.time()
  log("[3/6] evaluating the checkpoint on the held-out set (FreiHAND protocol)")
  run_module(log, "hand_tf.evaluate", "--model", run_dir, "--data_dir", data, "--split",
             "evaluation", "--source_size", size, "--out",
             os.path.join(report_dir, "checkpoint"))
  timings["evaluate_s"] = time.time() - start

  start = time.time()
  log("[4/6] exporting SavedModel, TFLite fp32/fp16/int8 and ONNX, with parity checks")
  run_module(log, "export", "--checkpoint", run_dir, "--out", export_dir,
             "--num_calibration", 32)
  timings["export_s"] = time.time() - start

  start = time.time()
  log("[5/6] the exported models on the held-out set, and mobile_demo on LiteRT")
  for kind in ("s2hand_fp16.tflite", "s2hand_int8.tflite", "s2hand.onnx"):
    run_module(log, "hand_tf.evaluate", "--model", os.path.join(export_dir, kind),
               "--data_dir", data, "--split", "evaluation", "--source_size", size, "--out",
               os.path.join(report_dir, kind.replace(".", "_")))
  overlays = os.path.join(report_dir, "mobile_demo")
  run_module(log, "mobile_demo", "--model", os.path.join(export_dir, "s2hand_fp16.tflite"),
             "--input", os.path.join(data, "evaluation", "rgb"), "--out", overlays,
             "--detector", "none")
  timings["deploy_s"] = time.time() - start

  log("[6/6] writing the report")
  rows, curves = {}, {}
  for name, folder in (("checkpoint", "checkpoint"), ("tflite fp16", "s2hand_fp16_tflite"),
                       ("tflite int8", "s2hand_int8_tflite"), ("onnx", "s2hand_onnx")):
    with open(os.path.join(report_dir, folder, "metrics.json")) as f:
      evaluation = json.load(f)
    rows[name], curves[name] = evaluation["metrics"], evaluation["pck"]
  rows["template hand"], curves["template hand"] = template_baseline(
      data, size, config.mano_model_path)
  for name, folder in (("checkpoint", "checkpoint"), ("tflite int8", "s2hand_int8_tflite")):
    rows[f"{name}, PnP"], curves[f"{name}, PnP"] = placed_on_detections(
        data, size, os.path.join(report_dir, folder, "pred.json"))
  report_lib.plot_pck({k: curves[k] for k in ("checkpoint", "tflite int8", "template hand")},
                      os.path.join(report_dir, "pck.png"))
  names = sorted(os.listdir(os.path.join(data, "evaluation", "rgb")))[:8]
  _contact_sheet([cv2.imread(os.path.join(data, "evaluation", "rgb", n)) for n in names],
                 [cv2.imread(os.path.join(overlays, n.replace(".jpg", "_mesh.png")))
                  for n in names], os.path.join(report_dir, "overlays.png"))
  with open(os.path.join(export_dir, "parity.json")) as f:
    parity = json.load(f)
  with open(os.path.join(overlays, "timings.json")) as f:
    device = json.load(f)
  result = {"config": dataclasses.asdict(config), "metrics": rows, "parity": parity,
            "mobile_demo": device, "seconds": timings}
  write_json(os.path.join(report_dir, "metrics.json"), result)
  table = report_lib.format_table(rows)
  lines = ["# hand-tf demo report", "",
           f"Self-supervised training on {config.train_images} synthetic images "
           f"({size} px, {config.epochs} epochs, seed {config.seed}); evaluation on "
           f"{config.test_images} held-out images. 'template hand' is the mean hand "
           "with its camera fitted to the test image's detections by PnP (the floor a "
           "model must beat); ', PnP' rows are the network's own hands moved rigidly onto "
           "those detections by the same fit (PA columns unchanged).", "",
           "```", table, "```", "",
           _verdict(rows["checkpoint"], rows["template hand"], rows["checkpoint, PnP"]), "",
           "| artefact | MB | vertices vs Keras, max / mean (mm) | 2D joints, max / mean "
           "(px at 224) | every output within tolerance |",
           "|---|---|---|---|---|"]
  lines += [f"| {k} | {v['bytes'] / 1e6:.1f} | {v['outputs']['vertices']['max']:.4f} / "
            f"{v['outputs']['vertices']['mean']:.4f} | {v['outputs']['joints2d']['max']:.3f} / "
            f"{v['outputs']['joints2d']['mean']:.3f} | {'yes' if v['ok'] else 'NO'} |"
            for k, v in parity.items()]
  lines += ["", f"mobile_demo (LiteRT fp16, {device['num_threads']} threads): median "
            f"{device['total_ms']:.1f} ms/frame incl. drawing, model+crop "
            f"{device['crop_infer_ms']:.1f} ms ({device['fps']:.1f} FPS).", "",
            "Step times (s): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()), "",
            "Files: pck.png, overlays.png (top: input, bottom: mesh), mobile_demo/, "
            "checkpoint/ and per-artefact metrics.json + pred.json."]
  with open(os.path.join(report_dir, "summary.md.partial"), "w") as f:
    f.write("\n".join(lines) + "\n")
  os.replace(os.path.join(report_dir, "summary.md.partial"),
             os.path.join(report_dir, "summary.md"))
  print(table, flush=True)
  return result
