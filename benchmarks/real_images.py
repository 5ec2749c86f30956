"""Does a model read real photos?  No 3D labels: compared with MediaPipe's 2D keypoints.

  python benchmarks/real_images.py --model RUN_OR_EXPORT --images PHOTOS_DIR [--sheet PNG]

Every hand MediaPipe finds in the photos of --images (left ones through the mirror) is
reconstructed as `predict --detect` does, in three settings:
  network   the network's own camera (crop around the keypoints, nothing else);
  placed    the network's hand moved rigidly onto the keypoints (predict's default);
  refined   then fitted to them (`predict --refine`: 151 steps, hand_tf.refine).
Per setting it prints the hands found, the mean distance of the projected joints to
MediaPipe's keypoints and the same for a constant skeleton (MediaPipe's keypoints
averaged over the hands, in crop coordinates: a model that ignores the image cannot
beat it by much) -- both in pixels of a 224 px crop around the hand -- the spread of the
projected joints across hands (0 for a constant hand), and milliseconds per hand.
--sheet writes a contact sheet of the refined overlays (every hand drawn on its photo).
"""

import glob
import os
import time

import numpy as np
from absl import flags

from hand_tf import startup

MODEL = flags.DEFINE_string("model", None, "Checkpoint/run folder, SavedModel, .tflite or .onnx.")
IMAGES = flags.DEFINE_string("images", None, "Folder of photos (jpg/png).")
SHEET = flags.DEFINE_string("sheet", None, "Contact sheet of the overlays (PNG).")
SETTINGS = ("network", "placed", "refined")


def _in_crop(points, box):
  """Image pixels -> pixels of a 224 px crop of the square `box`."""
  from hand_tf.contract import REFERENCE_SIZE
  return (np.asarray(points) - box[:2]) * REFERENCE_SIZE / box[2]


def _contact_sheet(images, path, tile=320):
  import cv2
  tiles = []
  for image in images:
    scale = tile / max(image.shape[:2])
    small = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)))
    canvas = np.full((tile, tile, 3), 255, np.uint8)
    canvas[:small.shape[0], :small.shape[1]] = small
    tiles.append(canvas)
  from hand_tf.visualize import tile_grid
  sheet = tile_grid(tiles, columns=min(4, len(tiles)))
  cv2.imwrite(path, cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))


def main(argv):
  del argv
  import dataclasses

  from hand_tf.api import HandReconstructor
  from hand_tf.io import read_image
  from hand_tf.reconstruct import draw_hands

  paths = sorted(p for p in glob.glob(os.path.join(IMAGES.value, "*"))
                 if p.lower().endswith((".jpg", ".jpeg", ".png")))
  if not paths:
    raise SystemExit(f"error: {IMAGES.value}: no .jpg/.png photos")
  reconstructor = HandReconstructor.load(MODEL.value)
  joints = {s: [] for s in SETTINGS}
  detected, milliseconds, overlays, sides = [], {s: [] for s in SETTINGS}, [], []
  for path in paths:
    image = read_image(path)
    start = time.perf_counter()
    network = reconstructor(image, place_on_keypoints=False)
    if not network:
      print(f"{os.path.basename(path)}: MediaPipe finds no hand; left out")
      continue
    milliseconds["network"] += [1000 * (time.perf_counter() - start) / len(network)] * len(
        network)
    start = time.perf_counter()
    placed = reconstructor(image)
    milliseconds["placed"] += [1000 * (time.perf_counter() - start) / len(placed)] * len(placed)
    refined = reconstructor.refine(placed)
    milliseconds["refined"] += [m + h.refinement["ms_per_hand"] for m, h in
                                zip(milliseconds["placed"][-len(placed):], refined)]
    for setting, hands in zip(SETTINGS, (network, placed, refined)):
      joints[setting] += [_in_crop(h.joints2d, h.box) for h in hands]
    detected += [_in_crop(h.keypoints, h.box) for h in placed]
    sides += [h.side for h in placed]
    overlays.append(draw_hands(image, [dataclasses.replace(h, detection_score=None)
                                       for h in refined]))
  if len(detected) < 2:
    raise SystemExit("error: fewer than two hands detected in the photos")
  detected = np.stack(detected)
  constant = np.linalg.norm(detected.mean(axis=0) - detected, axis=-1).mean()
  print(f"{MODEL.value}: {len(detected)} hands in {len(overlays)} of {len(paths)} photos "
        f"({sides.count('right')} right, {sides.count('left')} left); distances in pixels "
        f"of a 224 px crop around each hand")
  print(f"{'setting':10s} {'hands':>6s} {'joints px':>10s} {'constant px':>12s} "
        f"{'spread px':>10s} {'ms/hand':>8s}")
  for setting in SETTINGS:
    predicted = np.stack(joints[setting])
    error = np.linalg.norm(predicted - detected, axis=-1).mean()
    print(f"{setting:10s} {len(predicted):6d} {error:10.2f} {constant:12.2f} "
          f"{predicted.std(axis=0).mean():10.2f} {np.median(milliseconds[setting]):8.1f}")
  print(f"spread of MediaPipe's keypoints across hands: {detected.std(axis=0).mean():.2f} px")
  if SHEET.value:
    _contact_sheet(overlays, SHEET.value)
    print(f"wrote {SHEET.value}")


if __name__ == "__main__":
  flags.mark_flags_as_required(["model", "images"])
  startup.run(main)
