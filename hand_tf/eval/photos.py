"""Does a model read real photos?  Measured without 3D labels, against MediaPipe's 2D
keypoints of the same hands.

Every hand MediaPipe finds is reconstructed as `predict` does, in up to three
settings: 'network' (the network's own camera), 'placed' (its hand moved rigidly onto the
keypoints: predict's default) and 'refined' (then fitted to them, `hand_tf.refine`).
Distances are in pixels of a 224 px crop around each hand (`contract.REFERENCE_SIZE`),
so that hands of any size in any photo weigh the same.  The yardstick is a constant
skeleton: MediaPipe's keypoints averaged over the hands, in crop coordinates: a model that
ignores the image cannot beat it by much.
"""

import dataclasses
import time
from typing import Dict, List, Sequence

import numpy as np

from hand_tf import contract
from hand_tf.io import read_image

SETTINGS = ("network", "placed", "refined")


def in_crop(points: np.ndarray, box: np.ndarray) -> np.ndarray:
  """Image pixels `[..., 2]` -> pixels of a 224 px crop of the square `box` (x0, y0, side)."""
  return (np.asarray(points) - box[:2]) * contract.REFERENCE_SIZE / box[2]


def measure(reconstructor, paths: Sequence[str], settings: Sequence[str] = SETTINGS,
            log=print) -> Dict:
  """Reconstructs every detected hand in the photos at `paths`.

  Returns:
    {"hands", "photos_with_hands", "sides": ["right"|"left" per hand],
     "constant_px": the constant skeleton's mean distance to the keypoints,
     "keypoint_spread_px": the keypoints' own spread across hands,
     "settings": {setting: {"joints_px", "spread_px", "ms_per_hand"}},
     "overlays": [RGB image per photo with hands, drawn with the last setting's hands]}.

  Raises:
    ValueError: fewer than two hands in all the photos (no spread to measure).
  """
  from hand_tf.reconstruct import draw_hands
  joints: Dict[str, List[np.ndarray]] = {s: [] for s in settings}
  milliseconds: Dict[str, List[float]] = {s: [] for s in SETTINGS}
  detected, sides, overlays = [], [], []
  for path in paths:
    image = read_image(path)
    start = time.perf_counter()
    network = reconstructor(image, place_on_keypoints=False)
    if not network:
      log(f"{path}: MediaPipe finds no hand; left out")
      continue
    hands = {"network": network}
    milliseconds["network"] += [1000 * (time.perf_counter() - start) / len(network)] * len(
        network)
    start = time.perf_counter()
    hands["placed"] = reconstructor(image)
    placed_ms = 1000 * (time.perf_counter() - start) / len(hands["placed"])
    milliseconds["placed"] += [placed_ms] * len(hands["placed"])
    if "refined" in settings:
      hands["refined"] = reconstructor.refine(hands["placed"])
      milliseconds["refined"] += [placed_ms + h.refinement["ms_per_hand"]
                                  for h in hands["refined"]]
    for setting in settings:
      joints[setting] += [in_crop(h.joints2d, h.box) for h in hands[setting]]
    detected += [in_crop(h.keypoints, h.box) for h in hands["placed"]]
    sides += [h.side for h in hands["placed"]]
    overlays.append(draw_hands(image, [dataclasses.replace(h, detection_score=None)
                                       for h in hands[settings[-1]]]))
  if len(detected) < 2:
    raise ValueError("fewer than two hands detected in the photos")
  detected = np.stack(detected)
  result = {"hands": len(detected), "photos_with_hands": len(overlays), "sides": sides,
            "constant_px": float(np.linalg.norm(detected.mean(axis=0) - detected,
                                                axis=-1).mean()),
            "keypoint_spread_px": float(detected.std(axis=0).mean()), "settings": {},
            "overlays": overlays}
  for setting in settings:
    predicted = np.stack(joints[setting])
    result["settings"][setting] = {
        "joints_px": float(np.linalg.norm(predicted - detected, axis=-1).mean()),
        "spread_px": float(predicted.std(axis=0).mean()),
        "ms_per_hand": float(np.median(milliseconds[setting]))}
  return result


def contact_sheet(images: Sequence[np.ndarray], tile: int = 320) -> np.ndarray:
  """RGB images of any sizes, each scaled into a `tile`-pixel white square, in rows of
  four: one RGB uint8 image."""
  import cv2

  from hand_tf.visualize import tile_grid
  tiles = []
  for image in images:
    scale = tile / max(image.shape[:2])
    small = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)))
    canvas = np.full((tile, tile, 3), 255, np.uint8)
    canvas[:small.shape[0], :small.shape[1]] = small
    tiles.append(canvas)
  return tile_grid(tiles, columns=min(4, len(tiles)))
