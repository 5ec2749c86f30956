"""Reconstruct hands in images with a checkpoint, SavedModel, .tflite or .onnx.

  python -m hand_tf.predict IMAGES... --model PATH [--out DIR]
      [--box x0,y0,side | --keypoints FILE.json | --detect] [--focal PX]

Per image `NAME` it writes into --out: NAME.obj and NAME.ply (mesh with vertex colours,
meters, camera frame), NAME_joints.json (3D joints, 2D joints in image pixels, pose,
shape, camera, lighting) and NAME_overlay.png (shaded mesh + keypoints, OpenCV).

The hand crop: --box gives it; --keypoints reads 21 [x, y] (or [x, y, confidence]) per
image from a JSON mapping image file name -> list (OpenPose-style detections); --detect
runs MediaPipe's detector (`make models`); otherwise the whole image (the model expects a
hand-centred crop, as FreiHAND's).  The camera: --intrinsics JSON [3, 3] (one for all
images) or --focal in pixels, else focal 2.5 x the longer image side.
"""

import os

import cv2
import numpy as np
from absl import app, flags, logging

from hand_tf import startup
from hand_tf.io import InputError, output_folder, read_image

MODEL = flags.DEFINE_string("model", None, "Checkpoint (or run folder), SavedModel folder, "
                            ".tflite or .onnx.", required=True)
OUT = flags.DEFINE_string("out", "predictions", "Output folder.")
BOX = flags.DEFINE_list("box", None, "Square hand crop x0,y0,side in image pixels.")
KEYPOINTS = flags.DEFINE_string(
    "keypoints", None, "Keypoints that place the crop: a file `hand_tf.detect` writes, an "
    "OpenPose dump, or JSON {image file name: 21 [x, y(, confidence)]}.")
DETECT = flags.DEFINE_bool("detect", False, "Find the hand with MediaPipe's detector.")
PLACE = flags.DEFINE_bool(
    "place_on_keypoints", True, "When keypoints are known (--keypoints, --detect), move the "
    "predicted hand rigidly so that its joints reproject onto them (its shape and pose "
    "unchanged); --noplace_on_keypoints keeps the network's own camera.")
INTRINSICS = flags.DEFINE_string("intrinsics", None, "JSON file with K [3, 3] in pixels.")
FOCAL = flags.DEFINE_float("focal", None, "Focal length in pixels (principal point centred).")
NUM_THREADS = flags.DEFINE_integer("num_threads", 2, "Threads for TFLite / ONNX Runtime.")


def image_intrinsics(height, width, intrinsics=None, focal=None) -> np.ndarray:
  from hand_tf.camera import default_intrinsics
  if intrinsics is not None:
    return np.asarray(intrinsics, np.float32)
  k = default_intrinsics(height, width)
  if focal:
    k[0, 0] = k[1, 1] = focal
  return k


def main(argv):
  from hand_tf import inputs, reconstruct
  if not argv[1:]:
    raise app.UsageError("give image files, folders or glob patterns")
  images = inputs.image_paths(argv[1:])
  from hand_tf.data import crops
  from hand_tf.detection.keypoint_files import read_detections
  from hand_tf.io import load_json
  from hand_tf.predictors import load_predictor
  from hand_tf.startup import quiet_tensorflow

  if not MODEL.value.endswith((".tflite", ".onnx")):  # those run without TensorFlow
    quiet_tensorflow()
  predictor = load_predictor(MODEL.value, NUM_THREADS.value)
  logging.info("model: %s", predictor.describe())
  table = read_detections(KEYPOINTS.value) if KEYPOINTS.value else None
  k_given = (np.asarray(load_json(INTRINSICS.value, "intrinsics"), np.float32)
             if INTRINSICS.value else None)
  if k_given is not None and k_given.shape != (3, 3):
    raise InputError(f"{INTRINSICS.value}: K has shape {k_given.shape}, expected [3, 3]")
  detector = None
  if DETECT.value:
    from hand_tf.detection.mediapipe import MediaPipeHandDetector
    detector = MediaPipeHandDetector(num_threads=NUM_THREADS.value)
  with output_folder(OUT.value):
    for path in images:
      image = read_image(path)
      height, width = image.shape[:2]
      box = keypoints = confidence = None
      if table is not None:
        keypoints, confidence = (v[0] for v in table.lookup([os.path.basename(path)]))
      elif detector is not None:
        keypoints, confidence = detector.detect(image)
      if BOX.value:
        x0, y0, side = (float(v) for v in BOX.value)
        box = np.array([x0, y0, side, side], np.float32)
      elif keypoints is not None:
        box = crops.box_from_keypoints(keypoints, confidence)
        if box is None:
          logging.warning("%s: no hand detected; using the whole image", path)
      if box is None:
        box = crops.whole_image_box(height, width)
        keypoints = None
      k = image_intrinsics(height, width, k_given, FOCAL.value)
      place = PLACE.value and keypoints is not None
      result = reconstruct.reconstruct(predictor, image, box, k, predictor.faces,
                                       keypoints if place else None, confidence)
      prefix = os.path.join(OUT.value, os.path.splitext(os.path.basename(path))[0])
      written = reconstruct.write_result(prefix, result, predictor.faces)
      overlay = reconstruct.draw_overlay(image, result, predictor.faces)
      cv2.imwrite(prefix + "_overlay.png", cv2.cvtColor(overlay, cv2.COLOR_RGB2BGR))
      print(f"{path}: {written['obj']}, {written['ply']}, {written['joints']}, "
            f"{prefix}_overlay.png")


if __name__ == "__main__":
  startup.run(main)
