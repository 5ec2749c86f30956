"""HO-3D (v2 and v3) on disk: `<root>/<split>.txt` lists `SEQ/ID`, images in
`<root>/<split>/SEQ/rgb/ID.{png,jpg}` and annotations in `<root>/<split>/SEQ/meta/ID.pkl`.

Meta keys used: `camMat` (3x3), `handJoints3D` (21x3, HO-3D joint order, OpenGL axes;
training) and `handBoundingBox` ([x0, y0, x1, y1] pixels; evaluation).  As in S2HAND,
training crops are centred on the projected ground-truth joints and evaluation crops on
the given box, then resized to the model size; K and keypoints follow the crop.
"""

import os
from typing import Optional

import numpy as np

from hand_tf.camera import check_intrinsics, project
from hand_tf.data import crops
from hand_tf.data.records import HandRecords, as_array
from hand_tf.detection.keypoint_files import read_detections
from hand_tf.io import InputError
from mano_tf import constants
from mano_tf.model_file import ManoModelError, read_pickle_safely

OPENGL_TO_OPENCV = np.array([1.0, -1.0, -1.0], np.float32)
# HO-3D's joint order is MANO's 16 joints followed by the tips (thumb, index, middle,
# ring, little), i.e. the order MANO_TO_KEYPOINT expects.
HO3D_TO_KEYPOINT = np.asarray(constants.MANO_TO_KEYPOINT)


def _meta(path):
  try:
    meta = read_pickle_safely(path)
  except ManoModelError as e:
    raise InputError(str(e)) from e
  if not isinstance(meta, dict):
    raise InputError(f"{path}: expected a dictionary of annotations")
  return meta


def _field(meta, path, key, shape):
  if key not in meta or meta[key] is None:
    raise InputError(f"{path}: missing field '{key}'")
  return as_array(meta[key], path, key, shape)


def read_ho3d(root, split: str = "train", detections: Optional[str] = None,
              image_size: int = 224) -> HandRecords:
  """Reads an HO-3D split as `HandRecords` (crops computed, K and keypoints updated).

  Args:
    root: dataset folder.
    split: 'train' or 'evaluation'.
    detections: detections keyed by 'SEQ/ID' in source-image pixels; without it the
      training split uses projected ground-truth joints (confidence 1).
    image_size: model input size.
  """
  if split not in ("train", "evaluation"):
    raise InputError(f"split must be 'train' or 'evaluation', got {split!r}")
  list_path = os.path.join(root, f"{split}.txt")
  if not os.path.isfile(list_path):
    raise InputError(f"{list_path}: HO-3D split list not found")
  with open(list_path) as f:
    names = [line.strip() for line in f if line.strip()]
  if not names:
    raise InputError(f"{list_path}: empty split list")
  found = read_detections(detections) if detections is not None else None
  paths, boxes, intrinsics, keypoints, confidence, joints = [], [], [], [], [], []
  for name in names:
    if name.count("/") != 1:
      raise InputError(f"{list_path}: entry '{name}' is not SEQ/ID")
    seq, frame = name.split("/")
    base = os.path.join(root, split, seq)
    image = next((os.path.join(base, "rgb", frame + ext) for ext in (".png", ".jpg")
                  if os.path.isfile(os.path.join(base, "rgb", frame + ext))), None)
    if image is None:
      raise InputError(f"{os.path.join(base, 'rgb', frame)}.png/.jpg: image missing")
    meta_path = os.path.join(base, "meta", frame + ".pkl")
    meta = _meta(meta_path)
    cam = check_intrinsics(_field(meta, meta_path, "camMat", (3, 3)), f"{meta_path}: camMat")
    gt = None
    if split == "train":
      gt = _field(meta, meta_path, "handJoints3D", (21, 3))[HO3D_TO_KEYPOINT] * OPENGL_TO_OPENCV
      anchor = project(gt, cam)
    else:
      x0, y0, x1, y1 = _field(meta, meta_path, "handBoundingBox", (4,))
      anchor = np.array([[x0, y0], [x1, y1]], np.float32)
    box = crops.square_box_around(anchor)
    to_crop = crops.crop_matrix(box, image_size)
    if found is not None:
      kp, conf = found.lookup([name])
      kp, conf = crops.apply_to_points(to_crop, kp[0]), conf[0]
    elif gt is not None:
      kp, conf = crops.apply_to_points(to_crop, anchor), np.ones(21, np.float32)
    else:
      raise InputError(f"{meta_path}: the evaluation split needs detections for 2D keypoints")
    paths.append(image)
    boxes.append(box)
    intrinsics.append(to_crop @ cam)
    keypoints.append(kp)
    confidence.append(conf)
    joints.append(gt)
  return HandRecords(image_paths=paths, image_size=image_size, crop_boxes=np.stack(boxes),
                     intrinsics=np.stack(intrinsics), keypoints=np.stack(keypoints),
                     confidence=np.stack(confidence),
                     joints3d=np.stack(joints) if split == "train" else None)
