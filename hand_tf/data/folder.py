"""A plain folder of images plus a keypoints JSON (the project's detections format).

The JSON may carry per-image intrinsics under "intrinsics" ([N][3][3], source pixels);
without them K is `hand_tf.camera.default_intrinsics` (the nominal focal length, centred
principal point), which is enough for 2D work and relative 3D.  Each image is cropped to a square
around its keypoints (`crop='keypoints'`) or padded to a square (`crop='full'`).
"""

import os

import cv2
import numpy as np
from absl import logging

from hand_tf.camera import check_intrinsics, default_intrinsics
from hand_tf.data import crops
from hand_tf.data.records import HandRecords, as_array
from hand_tf.detection.keypoint_files import read_detections
from hand_tf.io import InputError, load_json


def read_folder(images_dir, keypoints_json, image_size: int = 224,
                crop: str = "keypoints") -> HandRecords:
  """Reads every image named in `keypoints_json` from `images_dir` (e.g. the folder
  `hand_tf.detect` was run on and the file it wrote), leaving out the images where the
  detector found no hand."""
  if crop not in ("keypoints", "full"):
    raise InputError(f"crop must be 'keypoints' or 'full', got {crop!r}")
  found = read_detections(keypoints_json)
  if found.names is None:
    raise InputError(f"{keypoints_json}: missing field 'images' (the image file names)")
  data = load_json(keypoints_json)
  intrinsics_all = None
  if isinstance(data, dict) and "intrinsics" in data:
    intrinsics_all = as_array(data["intrinsics"], keypoints_json, "intrinsics",
                              (len(found), 3, 3))
  paths, boxes, intrinsics, keypoints, kept = [], [], [], [], []
  for i, name in enumerate(found.names):
    confident = found.confidence[i] >= crops.MIN_KEYPOINT_CONFIDENCE
    if confident.sum() < 3:  # the detector found no hand here: nothing to learn from
      continue
    kept.append(i)
    path = os.path.join(images_dir, name)
    image = cv2.imread(path) if os.path.isfile(path) else None
    if image is None:
      raise InputError(f"{path}: image missing or unreadable")
    height, width = image.shape[:2]
    if crop == "keypoints":
      box = crops.square_box_around(found.keypoints[i][confident],
                                    max_side=float(max(width, height)))
    else:
      box = crops.whole_image_box(height, width)
    to_crop = crops.crop_matrix(box, image_size)
    k = (check_intrinsics(intrinsics_all[i], f"{keypoints_json}: intrinsics[{i}] ({name})",
                          height, width)
         if intrinsics_all is not None else default_intrinsics(height, width))
    paths.append(path)
    boxes.append(box)
    intrinsics.append(to_crop @ k)
    keypoints.append(crops.apply_to_points(to_crop, found.keypoints[i]))
  if not kept:
    raise InputError(f"{keypoints_json}: no image with a detected hand (at least 3 keypoints "
                     f"of confidence {crops.MIN_KEYPOINT_CONFIDENCE})")
  if len(kept) < len(found):
    logging.warning("%s: %d of %d images have no detected hand and are left out",
                    keypoints_json, len(found) - len(kept), len(found))
  return HandRecords(image_paths=paths, image_size=image_size, crop_boxes=np.stack(boxes),
                     intrinsics=np.stack(intrinsics), keypoints=np.stack(keypoints),
                     confidence=found.confidence[kept])
