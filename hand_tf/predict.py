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

from hand_tf import reconstruct, startup
from hand_tf.data import crops
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
flags.register_validator("focal", lambda v: v is None or v > 0,
                         "--focal must be a positive number of pixels")
NUM_THREADS = flags.DEFINE_integer("num_threads", 2, "Threads for TFLite / ONNX Runtime.")


def image_intrinsics(height, width, intrinsics=None, focal=None) -> np.ndarray:
  from hand_tf.camera import default_intrinsics
  if intrinsics is not None:
    return np.asarray(intrinsics, np.float32)
  return default_intrinsics(height, width, focal)


def main(argv):
  from hand_tf import inputs
  from hand_tf.api import HandReconstructor
  from hand_tf.camera import check_intrinsics
  from hand_tf.detection.keypoint_files import read_detections
  from hand_tf.io import load_json
  if not argv[1:]:
    raise app.UsageError("give image files, folders or glob patterns")
  skipped = []

  def skip(error):  # one bad input must not cost the user the rest of the batch
    logging.warning("skipped %s", error)
    skipped.append(str(error))

  images = inputs.image_paths(argv[1:], on_error=skip)
  if not images:  # nothing to do: say why without loading the model
    raise InputError(skipped[0] if len(skipped) == 1 else
                     f"none of the {len(skipped)} inputs names an image (named above)")
  reconstructor = HandReconstructor.load(MODEL.value, NUM_THREADS.value)
  logging.info("model: %s", reconstructor.describe())
  caveat = reconstructor.caveat()
  if caveat:
    logging.warning("%s", caveat)
  table = read_detections(KEYPOINTS.value) if KEYPOINTS.value else None
  k_given = None
  if INTRINSICS.value:
    k_given = check_intrinsics(load_json(INTRINSICS.value, "intrinsics"), INTRINSICS.value)
    if k_given.shape != (3, 3):
      raise InputError(f"{INTRINSICS.value}: K has shape {k_given.shape}, expected [3, 3]")
  box = BOX.value  # checked against each image by the reconstructor
  if box:
    crops.parse_box(box, np.inf, np.inf, "--box")  # its form, before any image is read
  done = 0
  with output_folder(OUT.value):
    for path in images:
      try:
        _predict_one(reconstructor, path, table, k_given, box)
        done += 1
      except InputError as e:
        skip(e if path in str(e) else InputError(f"{path}: {e}"))
  if skipped:
    raise InputError(f"{len(skipped)} input(s) skipped (named above); {done} done")
  return 0


def _predict_one(reconstructor, path, table, k_given, box):
  """Reconstructs the image at `path` and writes its mesh, joints and overlay."""
  image = read_image(path)
  keypoints = confidence = None
  if table is not None:
    keypoints, confidence = (v[0] for v in table.lookup([os.path.basename(path)]))
  elif DETECT.value:
    keypoints, confidence = reconstructor.detect(image)
  if keypoints is not None and crops.box_from_keypoints(keypoints, confidence) is None:
    logging.warning("%s: no hand detected; using the whole image", path)
    keypoints = confidence = None
  k = image_intrinsics(*image.shape[:2], k_given, FOCAL.value)
  hand = reconstructor(image, detect=False, box=box, keypoints=keypoints,
                       confidence=confidence, intrinsics=k,
                       place_on_keypoints=PLACE.value)[0]
  prefix = os.path.join(OUT.value, os.path.splitext(os.path.basename(path))[0])
  written = reconstruct.write_result(prefix, hand)
  cv2.imwrite(prefix + "_overlay.png", cv2.cvtColor(hand.draw(image), cv2.COLOR_RGB2BGR))
  print(f"{path}: {written['obj']}, {written['ply']}, {written['joints']}, "
        f"{prefix}_overlay.png")


if __name__ == "__main__":
  startup.run(main)
