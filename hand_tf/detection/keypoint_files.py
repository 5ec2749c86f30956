"""2D keypoint detections: file formats and a simulated detector.

Detections are the only supervision of the self-supervised setting: 21 keypoints in
the FreiHAND/OpenPose order (OpenPose's hand order is the same), each with a confidence.

Formats read by `read_detections`:
* the project's own JSON (`write_detections`):
  {"format": "hand_tf.detections.v1", "images": [names], "keypoints": [N][21][3]}
  with rows (x, y, confidence), x the column and y the row in source-image pixels;
* S2HAND's OpenPose dump (`detect.json` / `detect_all.json`): [peaks [N][21][2],
  values [N][21][1] (, names [N])];
* a folder of OpenPose per-image JSON files ({"people": [{"hand_right_keypoints_2d":
  [x, y, c] * 21, ...}]}), matched to images by file stem;
* a hand-written table {image name: [21][2] or [21][3]}: (x, y) rows take confidence 1.
"""

import os
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from hand_tf.data.records import as_array
from hand_tf.io import InputError, load_json, write_json
from mano_tf import constants

FORMAT = "hand_tf.detections.v1"
_K = constants.NUM_KEYPOINTS


class Detections:
  """Keypoints [N, 21, 2] and confidences [N, 21], optionally keyed by image name."""

  def __init__(self, keypoints, confidence, names: Optional[Sequence[str]] = None,
               source: str = "<memory>"):
    self.keypoints = np.asarray(keypoints, np.float32)
    self.confidence = np.asarray(confidence, np.float32)
    self.names = list(names) if names is not None else None
    self.source = source
    if self.names is not None and len(self.names) != len(self.keypoints):
      raise InputError(f"{source}: {len(self.names)} names for {len(self.keypoints)} detections")
    if len(self.keypoints) == 0:
      raise InputError(f"{source}: the detections file is empty")

  def __len__(self):
    return len(self.keypoints)

  def lookup(self, image_names: Sequence[str],
             fallback_index: Optional[Sequence[int]] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Detections for the given images, by name when known, else by `fallback_index`."""
    if self.names is not None:
      index: Dict[str, int] = {}
      for i, name in enumerate(self.names):
        for key in (name, os.path.splitext(name)[0], os.path.basename(name),
                    os.path.splitext(os.path.basename(name))[0]):
          index.setdefault(key, i)
      rows = []
      for name in image_names:
        candidates = (name, os.path.splitext(name)[0], os.path.basename(name),
                      os.path.splitext(os.path.basename(name))[0])
        key = next((c for c in candidates if c in index), None)
        if key is None:
          raise InputError(f"{self.source}: no detection for image '{name}'")
        rows.append(index[key])
    else:
      rows = list(fallback_index if fallback_index is not None else range(len(image_names)))
      if rows and max(rows) >= len(self):
        raise InputError(f"{self.source}: {len(self)} detections for {len(image_names)} images")
    rows = np.asarray(rows)
    return self.keypoints[rows], self.confidence[rows]


def write_detections(path, keypoints, confidence, names: Sequence[str]):
  """Writes detections in the project's format (atomically)."""
  rows = np.concatenate([np.asarray(keypoints), np.asarray(confidence)[..., None]], axis=-1)
  write_json(path, {"format": FORMAT, "keypoint_order": "freihand21",
                    "images": list(names), "keypoints": np.round(rows, 3).tolist()})


def _from_rows(rows, path, field):
  rows = as_array(rows, path, field, (-1, _K, 3))
  return rows[..., :2], np.clip(rows[..., 2], 0.0, 1.0)


def _read_table(table, path) -> Detections:
  """{name: [21][2] or [21][3]} -> Detections; (x, y) rows get confidence 1."""
  keypoints, confidence = [], []
  for name, rows in table.items():
    rows = np.asarray(rows, np.float32) if isinstance(rows, list) else np.zeros(0)
    if rows.shape not in ((_K, 2), (_K, 3)):
      raise InputError(f"{path}: keypoints of {name} have shape {rows.shape}, expected "
                       f"[{_K}, 2] or [{_K}, 3]")
    keypoints.append(rows[:, :2])
    confidence.append(np.clip(rows[:, 2], 0.0, 1.0) if rows.shape[1] == 3 else np.ones(_K))
  return Detections(keypoints, confidence, list(table), path)


def _read_openpose_folder(directory) -> Detections:
  names, keypoints, confidence = [], [], []
  for name in sorted(os.listdir(directory)):
    if not name.endswith(".json"):
      continue
    path = os.path.join(directory, name)
    data = load_json(path, "OpenPose file")
    people = data.get("people") if isinstance(data, dict) else None
    if people is None:
      raise InputError(f"{path}: missing field 'people'")
    best = None
    for person in people:
      for key in ("hand_right_keypoints_2d", "hand_left_keypoints_2d"):
        values = person.get(key)
        if values:
          row = as_array(values, path, key, (_K * 3,)).reshape(_K, 3)
          if best is None or row[:, 2].sum() > best[:, 2].sum():
            best = row
    if best is None:
      best = np.zeros((_K, 3), np.float32)  # no hand found: zero confidence
    stem = name[:-len(".json")]
    names.append(stem[:-len("_keypoints")] if stem.endswith("_keypoints") else stem)
    keypoints.append(best[:, :2])
    confidence.append(np.clip(best[:, 2], 0.0, 1.0))
  if not names:
    raise InputError(f"{directory}: no OpenPose .json files")
  return Detections(np.stack(keypoints), np.stack(confidence), names, directory)


def read_detections(path) -> Detections:
  """Reads detections in any supported format (see the module docstring)."""
  path = os.fspath(path)
  if os.path.isdir(path):
    return _read_openpose_folder(path)
  data = load_json(path, "detections file")
  if isinstance(data, dict) and "format" not in data and data:
    return _read_table(data, path)
  if isinstance(data, dict):
    if data.get("format") != FORMAT:
      raise InputError(f"{path}: field 'format' must be '{FORMAT}'")
    if "keypoints" not in data:
      raise InputError(f"{path}: missing field 'keypoints'")
    if len(data["keypoints"]) == 0:
      raise InputError(f"{path}: the detections file is empty")
    keypoints, confidence = _from_rows(data["keypoints"], path, "keypoints")
    return Detections(keypoints, confidence, data.get("images"), path)
  if isinstance(data, list) and len(data) in (2, 3):
    if len(data[0]) == 0:
      raise InputError(f"{path}: the detections file is empty")
    peaks = as_array(data[0], path, "peaks", (-1, _K, 2))
    values = as_array(data[1], path, "values", (len(peaks), _K, -1))[..., 0]
    names = data[2] if len(data) == 3 else None
    return Detections(peaks, np.clip(values, 0.0, 1.0), names, path)
  raise InputError(f"{path}: unrecognised detections format")


# --------------------------------------------------------------------------------------
# Simulated detector.

_FINGER_SLICES = [slice(1 + 4 * f, 5 + 4 * f) for f in range(5)]


def simulate_detections(rng: np.random.Generator, keypoints_gt: np.ndarray,
                        visible: np.ndarray, image_size: int, noise_level: float = 1.0):
  """Turns ground-truth 2D keypoints into detector-like output.

  Errors follow what OpenPose-style detectors do on hand crops: Gaussian jitter that
  scales with the hand's size, larger errors on occluded joints, a fraction of outliers
  (anywhere in the image) and occasional swaps of two neighbouring fingers.

  "Confidence" imitates a heatmap peak: about 0.9 for a clean, visible joint, falling
  with the joint's actual error (a detector is less sure where it is wrong), about
  halved for occluded joints, and low for outliers.

  Args:
    rng: random generator.
    keypoints_gt: [N, 21, 2] ground truth, pixels.
    visible: [N, 21] bool, whether each joint is visible (not self-/object-occluded).
    image_size: image side in pixels (outliers are drawn inside it).
    noise_level: scales jitter and outlier/swap rates (0 = perfect detections).

  Returns:
    (keypoints [N, 21, 2], confidence [N, 21]) float32.
  """
  keypoints_gt = np.asarray(keypoints_gt, np.float64)
  n = len(keypoints_gt)
  extent = np.ptp(keypoints_gt, axis=1).max(axis=1)  # hand size in pixels
  sigma = noise_level * 0.02 * extent[:, None] * np.where(visible, 1.0, 2.5)
  detected = keypoints_gt + rng.normal(size=keypoints_gt.shape) * sigma[..., None]
  swapped = np.zeros((n, _K), bool)
  for i in np.flatnonzero(rng.uniform(size=n) < 0.05 * noise_level):
    f = rng.integers(1, 5)  # swap finger f with f + 1 (thumb..little)
    a, b = _FINGER_SLICES[f - 1], _FINGER_SLICES[f]
    detected[i, a], detected[i, b] = detected[i, b].copy(), detected[i, a].copy()
    swapped[i, a] = swapped[i, b] = True
  outlier = rng.uniform(size=(n, _K)) < 0.03 * noise_level
  detected[outlier] = rng.uniform(0, image_size, size=(outlier.sum(), 2))
  error = np.linalg.norm(detected - keypoints_gt, axis=-1)
  scale = np.maximum(0.06 * extent[:, None], 1.0)
  confidence = 0.92 * np.exp(-0.5 * (error / scale) ** 2) + 0.08 * rng.uniform(size=(n, _K))
  confidence *= np.where(visible, 1.0, 0.5)
  confidence = np.where(outlier, rng.uniform(0.02, 0.35, size=(n, _K)), confidence)
  confidence = np.where(swapped, confidence * 0.8, confidence)
  return detected.astype(np.float32), np.clip(confidence, 0.0, 1.0).astype(np.float32)


def detection_statistics(detected, keypoints_gt, thresholds=(2.5, 5, 10, 20, 30)) -> Dict:
  """Mean pixel error and fraction of keypoints within each threshold (cf. S2HAND Fig. 4)."""
  error = np.linalg.norm(np.asarray(detected) - np.asarray(keypoints_gt), axis=-1)
  return {"mean_px_error": float(error.mean()), "median_px_error": float(np.median(error)),
          "within_px": {str(t): float(np.mean(error <= t)) for t in thresholds}}


def found_statistics(detected, confidence, keypoints_gt, within: float = 8.0) -> Dict:
  """How a real detector did on images with known keypoints.

  Args:
    detected: `[N, 21, 2]` its keypoints, pixels; confidence: `[N, 21]`, all 0 where it
      found no hand; keypoints_gt: `[N, 21, 2]` the truth.

  Returns:
    found: share of images with a hand; median_px_error: median over found hands of
    their mean keypoint distance (None when none found); found_within: share of all
    images found with that distance <= `within` px.
  """
  found = np.asarray(confidence).max(axis=-1) > 0
  error = np.linalg.norm(np.asarray(detected) - np.asarray(keypoints_gt), axis=-1).mean(axis=-1)
  return {"found": float(found.mean()),
          "median_px_error": float(np.median(error[found])) if found.any() else None,
          f"found_within_{within:g}px": float(np.mean(found & (error <= within)))}
