"""FreiHAND v2 on disk (also the layout the synthetic generator writes).

  <root>/training/rgb/%08d.jpg      32,560 x 4 versions (id + k * 32560; k: gs, hom,
                                     sample, auto)
  <root>/training/mask/%08d.jpg     one mask per unique id
  <root>/training_{K,xyz,verts,mano,scale}.json   one entry per unique id
  <root>/evaluation/rgb/%08d.jpg    and evaluation_{K,scale}.json (+ _xyz/_verts: GT)

All images are 224 x 224 crops (the synthetic sets may use other sizes; the reader takes
the side from the first image), so the crop box is the whole image; if the model input
has another size, K and keypoints are rescaled.
"""

import os
from typing import Optional, Sequence

import cv2
import numpy as np

from hand_tf.camera import check_intrinsics, project
from hand_tf.data.records import HandRecords, as_array
from hand_tf.detection.keypoint_files import read_detections
from hand_tf.io import InputError, load_json
from mano_tf import constants

VERSIONS = ("gs", "hom", "sample", "auto")


def annotation_path(root, split, key):
  return os.path.join(root, f"{split}_{key}.json")


def read_freihand(root, split: str = "training", versions: Sequence[str] = ("gs",),
                  detections: Optional[str] = None, image_size: int = 224,
                  load_vertices: bool = True,
                  source_size: Optional[int] = None) -> HandRecords:
  """Reads a FreiHAND split as `HandRecords`.

  Args:
    root: the dataset folder (holding `training/`, `evaluation/` and the json files).
    split: 'training' or 'evaluation'.
    versions: which of the 4 training image versions to use (S2HAND uses 'gs' only);
      ignored for the evaluation split (one version).
    detections: a detections file/folder (see `detections.read_detections`); without
      it, the 2D supervision is the projection of the ground-truth joints with
      confidence 1 (the paper's WSL setting), which needs `<split>_xyz.json`.
    image_size: model input size.
    load_vertices: read `<split>_verts.json` when present (large for the real dataset).
    source_size: side of the stored images (FreiHAND's are 224); default: read from the
      first image, so sets rendered at other sizes are not mis-cropped.
  """
  if split not in ("training", "evaluation"):
    raise InputError(f"split must be 'training' or 'evaluation', got {split!r}")
  if not os.path.isdir(root):
    raise InputError(f"{root}: FreiHAND folder not found")
  k_path = annotation_path(root, split, "K")
  other = "evaluation" if split == "training" else "training"
  if not os.path.isfile(k_path) and os.path.isfile(annotation_path(root, other, "K")):
    raise InputError(f"{root}: no '{split}' split here (no {os.path.basename(k_path)}), only "
                     f"'{other}': pass --split {other}")
  intrinsics = as_array(load_json(k_path, "intrinsics file"), k_path, "K", (-1, 3, 3))
  num = len(intrinsics)
  joints3d = vertices = None
  xyz_path = annotation_path(root, split, "xyz")
  if os.path.isfile(xyz_path):
    joints3d = as_array(load_json(xyz_path), xyz_path, "xyz", (num, 21, 3))
  verts_path = annotation_path(root, split, "verts")
  if load_vertices and os.path.isfile(verts_path):
    vertices = as_array(load_json(verts_path), verts_path, "verts",
                        (num, constants.NUM_VERTICES, 3))
  if split == "evaluation":
    versions = ("gs",)
  for v in versions:
    if v not in VERSIONS:
      raise InputError(f"unknown FreiHAND version {v!r}; choose from {VERSIONS}")
  ids = np.arange(num)
  image_ids = np.concatenate([ids + VERSIONS.index(v) * num for v in versions])
  unique = np.tile(ids, len(versions))
  image_paths = [os.path.join(root, split, "rgb", "%08d.jpg" % i) for i in image_ids]
  for path in image_paths:
    if not os.path.isfile(path):
      raise InputError(f"{path}: image missing")
  if source_size is None:
    source_size = _image_side(image_paths[0])
  intrinsics = check_intrinsics(intrinsics, k_path, source_size, source_size)
  mask_paths = None
  if os.path.isdir(os.path.join(root, split, "mask")):
    mask_paths = [os.path.join(root, split, "mask", "%08d.jpg" % i) for i in unique]

  if detections is not None:
    found = read_detections(detections)
    keypoints, confidence = found.lookup(
        [os.path.basename(p) for p in image_paths],
        fallback_index=unique if len(found) == num else None)
  elif joints3d is not None:
    keypoints = project(joints3d, intrinsics)[unique]
    confidence = np.ones((len(unique), 21), np.float32)
  else:
    raise InputError(f"{root}: no detections given and no {xyz_path} to derive 2D keypoints")

  scale = image_size / float(source_size)
  resize = np.diag([scale, scale, 1.0]).astype(np.float32)
  return HandRecords(
      image_paths=image_paths, image_size=image_size,
      crop_boxes=np.tile([0.0, 0.0, source_size, source_size], (len(unique), 1)),
      intrinsics=resize @ intrinsics[unique], keypoints=keypoints * scale,
      confidence=confidence,
      joints3d=None if joints3d is None else joints3d[unique],
      vertices=None if vertices is None else vertices[unique], mask_paths=mask_paths)


def _image_side(path: str) -> int:
  """Side of a square stored image, pixels."""
  image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
  if image is None:
    raise InputError(f"{path}: not a readable image")
  height, width = image.shape[:2]
  if height != width:
    raise InputError(f"{path}: FreiHAND images are square, this one is {width} x {height}")
  return int(width)
