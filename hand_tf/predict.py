"""Reconstruct hands in images with a checkpoint, SavedModel, .tflite or .onnx.

  python -m hand_tf.predict IMAGES... [--model PATH] [--out DIR]
      [--box x0,y0,side | --keypoints FILE.json | --nodetect] [--focal PX]

Per image `NAME` it writes into --out, for each hand i (0 = most confident) of side
SIDE: NAME_hand{i}_{SIDE}.obj and .ply (mesh with vertex colours, meters, camera frame);
then NAME_hands.json (the camera used and, per hand, its side, crop box, detection score,
detected keypoints with confidences, 3D and 2D joints, pose, shape, camera, lighting and
mesh files) and NAME_overlay.png (every hand drawn where it is in the photo).

The hands: by default MediaPipe's detector (`make models`) finds every hand, left and
right, up to --max_hands; a left hand is predicted through the mirror (hand_tf.mirror).
Otherwise one hand: --box gives its crop; --keypoints reads 21 [x, y] (or
[x, y, confidence]) per image from a JSON mapping image file name -> list (OpenPose-style
detections); with --nodetect, or where the detector finds none, the whole image (the
model expects a hand-centred crop, as FreiHAND's); --side says which hand it is.
The camera: --intrinsics JSON [3, 3] (one for all images), else --focal in pixels, else
the photo's EXIF focal length (35 mm equivalent), else focal 2.5 x the longer image
side; the JSON says which.

--refine fits each hand to its keypoints after the network (S2HAND's optional test-time
refinement, `hand_tf.refine`; needs TensorFlow); the JSON gives the 2D error before and
after and the milliseconds per hand.
"""

import os

import cv2
import numpy as np
from absl import app, flags, logging

from hand_tf import reconstruct, startup
from hand_tf.data import crops
from hand_tf.io import InputError, output_folder, read_image

MODEL = flags.DEFINE_string("model", None, "Checkpoint (or run folder), SavedModel folder, "
                            ".tflite or .onnx (default: $HAND_TF_MODEL, else the model "
                            "shipped in the package).")
OUT = flags.DEFINE_string("out", "predictions", "Output folder.")
BOX = flags.DEFINE_list("box", None, "Square hand crop x0,y0,side in image pixels.")
KEYPOINTS = flags.DEFINE_string(
    "keypoints", None, "Keypoints that place the crop: a file `hand_tf.detect` writes, an "
    "OpenPose dump, or JSON {image file name: 21 [x, y(, confidence)]}.")
DETECT = flags.DEFINE_bool("detect", True, "Find every hand with MediaPipe's detector "
                           "(unless --box or --keypoints place the hand); --nodetect: the "
                           "whole image is the hand's crop.")
MAX_HANDS = flags.DEFINE_integer("max_hands", 4, "With --detect: at most this many hands.",
                                 lower_bound=1)
REFINE = flags.DEFINE_bool(
    "refine", False, "Fit each hand to its keypoints (detected or --keypoints) after the "
    "network, as S2HAND's optional test-time refinement (151 Adam steps; needs TensorFlow).")
SIDE = flags.DEFINE_enum("side", "right", ["right", "left"],
                         "Without --detect: which hand the crop shows.")
PLACE = flags.DEFINE_bool(
    "place_on_keypoints", True, "When keypoints are known (--keypoints, --detect), move the "
    "predicted hand rigidly so that its joints reproject onto them (its shape and pose "
    "unchanged); --noplace_on_keypoints keeps the network's own camera.")
INTRINSICS = flags.DEFINE_string("intrinsics", None, "JSON file with K [3, 3] in pixels.")
FOCAL = flags.DEFINE_float("focal", None, "Focal length in pixels (principal point centred).")
flags.register_validator("focal", lambda v: v is None or v > 0,
                         "--focal must be a positive number of pixels")
NUM_THREADS = flags.DEFINE_integer("num_threads", 2, "Threads for TFLite / ONNX Runtime.")


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
  """Reconstructs the hands in the image at `path`; writes meshes, JSON and overlay."""
  from hand_tf.camera import photo_intrinsics
  from hand_tf.io import read_exif_focal
  image = read_image(path)
  k, k_source = photo_intrinsics(*image.shape[:2], k_given, FOCAL.value,
                                 read_exif_focal(path))
  keypoints = confidence = None
  if table is not None:
    keypoints, confidence = (v[0] for v in table.lookup([os.path.basename(path)]))
    if crops.box_from_keypoints(keypoints, confidence) is None:
      logging.warning("%s: no hand in the keypoint file; using the whole image", path)
      keypoints = confidence = None
  hands = []
  if DETECT.value and box is None and table is None:
    hands = reconstructor(image, detect=True, intrinsics=k, place_on_keypoints=PLACE.value,
                          max_hands=MAX_HANDS.value, refine=REFINE.value)
    if not hands:
      logging.warning("%s: no hand detected; using the whole image", path)
  if not hands:
    hands = reconstructor(image, detect=False, box=box, keypoints=keypoints,
                          confidence=confidence, intrinsics=k,
                          place_on_keypoints=PLACE.value, side=SIDE.value,
                          refine=REFINE.value)
  prefix = os.path.join(OUT.value, os.path.splitext(os.path.basename(path))[0])
  written = reconstruct.write_hands(prefix, hands, {"image": path, "intrinsics_source":
                                                    k_source})
  cv2.imwrite(prefix + "_overlay.png", cv2.cvtColor(reconstruct.draw_hands(image, hands),
                                                    cv2.COLOR_RGB2BGR))
  sides = ", ".join(hand.side + ("" if hand.refinement is None else
                                 " refined {error_before_px:.1f} -> {error_after_px:.1f} px"
                                 .format(**hand.refinement)) for hand in hands)
  print(f"{path}: {len(hands)} hand(s) ({sides}): {', '.join(written)}, "
        f"{prefix}_overlay.png")


if __name__ == "__main__":
  startup.run(main)
