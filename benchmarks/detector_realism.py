"""Would a real detector believe the synthetic hands?  MediaPipe on synthetic renders.

  python benchmarks/detector_realism.py [--num 256] [--image_size 224] [--seed 0]
      [--generator realistic|plain] [--occluders] [--sheet PNG] [--data_dir SET]

Renders --num images with `hand_tf.synthesize --detector mediapipe` (MediaPipe's palm
and landmark models run on each written image, as `hand_tf.detect` runs them), or reads
an existing FreiHAND-layout set (--data_dir; MediaPipe run on its images), and prints:
  found     share of images where MediaPipe returns a hand;
  median    median over found hands of the mean distance of its 21 keypoints to the
            true joints' projection, pixels of the image;
  within 8  share of all images found with that distance <= 8 px;
and the hands' palm length (wrist to middle knuckle) with the error in palm lengths, as
pixels scale with how large the hands are rendered; then the keypoints' median offset
from the truth in the hand's own frame (a bias, where there is one).
--sheet writes the first 16 images with the truth (thin) and MediaPipe's keypoints
(thick) drawn on them.  Issue 18's aim at 224 px: found >= 80%, median <= 8 px.
"""

import os
import tempfile

import numpy as np
from absl import flags

from hand_tf import startup

NUM = flags.DEFINE_integer("num", 256, "Images to render.")
IMAGE_SIZE = flags.DEFINE_integer("image_size", 224, "Image side, pixels.")
SEED = flags.DEFINE_integer("seed", 0, "Generator seed.")
GENERATOR = flags.DEFINE_enum("generator", "realistic", ["realistic", "plain"],
                              "Scene generator (see hand_tf.synthesize --generator).")
OCCLUDERS = flags.DEFINE_bool("occluders", False, "As synthesize's flag.")
DATA_DIR = flags.DEFINE_string("data_dir", None, "Measure this FreiHAND-layout set instead.")
SPLIT = flags.DEFINE_enum("split", "training", ["training", "evaluation"], "Its split.")
SHEET = flags.DEFINE_string("sheet", None, "Contact sheet of the first 16 (PNG).")


def _truth(root, split):
  from hand_tf.camera import project
  from hand_tf.data.freihand import annotation_path
  from hand_tf.io import load_json
  return project(np.asarray(load_json(annotation_path(root, split, "xyz")), np.float64),
                 np.asarray(load_json(annotation_path(root, split, "K")), np.float64))


def _contact_sheet(root, split, names, truth, detected, confidence, path, count=16):
  import cv2

  from hand_tf.io import read_image
  from hand_tf.visualize import draw_keypoints, tile_grid
  tiles = []
  for name, points, found, score in list(zip(names, truth, detected, confidence))[:count]:
    tile = draw_keypoints(read_image(os.path.join(root, split, "rgb", name)), points,
                          radius=1, thickness=1)
    if score.max() > 0:
      tile = draw_keypoints(tile, found, radius=2, thickness=2)
    tiles.append(tile)
  cv2.imwrite(path, cv2.cvtColor(tile_grid(tiles, columns=4), cv2.COLOR_RGB2BGR))


def _print_bias(detected, truth, palm, relative, within=0.27):
  """Median offset of each keypoint from the truth in the hand's own frame (along the
  wrist -> middle knuckle axis, and across it), in palm lengths, over the hands found
  with a mean error under `within` palm lengths (15 px of a 56 px palm: the
  mismatched fingers of a misread hand left out)."""
  keep = relative < within
  if not keep.any():
    return
  axis = (truth[keep, 9] - truth[keep, 0]) / palm[keep, None]
  normal = np.stack([-axis[:, 1], axis[:, 0]], axis=-1)
  offset = (detected[keep] - truth[keep]) / palm[keep, None, None]
  along = np.median(np.einsum("nkc,nc->nk", offset, axis), axis=0)
  across = np.median(np.einsum("nkc,nc->nk", offset, normal), axis=0)
  names = ("wrist", "MCP", "PIP", "DIP", "tip")  # thumb: CMC, MCP, IP, tip
  print(f"offset from the truth, palm lengths, median over {keep.sum()} hands "
        "(+ along: towards the fingertips):")
  print("  along  " + "  ".join(f"{n} {np.mean(along[[k + 4 * f for f in range(1, 5)]]):+.2f}"
                                 if k else f"{n} {along[0]:+.2f}"
                                 for k, n in enumerate(names)) + "  (fingers' mean)")
  print(f"  across: largest {np.abs(across).max():.2f}")


def main(argv):
  del argv
  startup.quiet_tensorflow()
  from hand_tf.detection.keypoint_files import found_statistics, read_detections
  with tempfile.TemporaryDirectory() as scratch:
    root, split = DATA_DIR.value, SPLIT.value
    if root is None:
      from hand_tf.synthetic.dataset import synthesize
      root, split = scratch, "training"
      summary = synthesize(root, NUM.value, IMAGE_SIZE.value, SEED.value, split,
                           occluders=OCCLUDERS.value, progress=False,
                           generator=GENERATOR.value, detector="mediapipe")
      print(f"rendered {NUM.value} images ({GENERATOR.value}) at {IMAGE_SIZE.value} px in "
            f"{summary['seconds']:.0f} s")
      found = read_detections(os.path.join(root, f"{split}_mediapipe_detections.json"))
      names, detected, confidence = found.names, found.keypoints[..., :2], found.confidence
    else:
      from hand_tf.detection.mediapipe import detect_files
      names = sorted(os.listdir(os.path.join(root, split, "rgb")))[:NUM.value]
      detected, confidence = detect_files([os.path.join(root, split, "rgb", n) for n in names])
    truth = _truth(root, split)[:len(names)]
    stats = found_statistics(detected, confidence, truth)
    print(f"MediaPipe on {len(names)} images: found {100 * stats['found']:.1f}%, median "
          f"keypoint error {stats['median_px_error'] or float('nan'):.1f} px, found within "
          f"8 px {100 * stats['found_within_8px']:.1f}%")
    # Pixels scale with the hand's size in the image: the same error in palm lengths.
    palm = np.linalg.norm(truth[:, 9] - truth[:, 0], axis=-1)
    found = confidence.max(axis=-1) > 0
    relative = np.linalg.norm(detected - truth, axis=-1).mean(axis=-1) / palm
    print(f"palm (wrist to middle knuckle) median {np.median(palm):.0f} px; median error "
          f"{np.median(relative[found]) if found.any() else float('nan'):.2f} palm lengths")
    _print_bias(detected[found], truth[found], palm[found], relative[found])
    if SHEET.value:
      _contact_sheet(root, split, names, truth, detected, confidence, SHEET.value)
      print(f"contact sheet: {SHEET.value}")


if __name__ == "__main__":
  startup.run(main)
