"""What a tool accepts as input: one notion for `predict`, `detect` and `mobile_demo`.

An input item is an image file, a folder (its images, sorted by name), or a glob pattern
(`'photos/*.jpg'`, quoted so the shell leaves it alone); `mobile_demo` also takes a
video file and `camera:N`.  Items may be given several at a time.  TensorFlow-free.
"""

import glob
import os
from typing import Iterator, List, Sequence, Tuple

import cv2
import numpy as np

from hand_tf.io import InputError, read_image

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
CAMERA_PREFIX = "camera:"
_GLOB_CHARACTERS = "*?["


def _is_image(path: str) -> bool:
  return path.lower().endswith(IMAGE_EXTENSIONS)


def _folder_images(folder: str) -> List[str]:
  return sorted(os.path.join(folder, n) for n in os.listdir(folder) if _is_image(n))


def image_paths(items: Sequence[str]) -> List[str]:
  """Image files named by `items` (files, folders, globs), in the order given.

  Raises:
    InputError: an item names nothing, a folder or pattern holds no images, or a file
      is not an image by its extension.
  """
  if not items:
    raise InputError("no input given: name image files, folders or a glob pattern")
  paths = []
  for item in items:
    if os.path.isdir(item):
      found = _folder_images(item)
      if not found:
        raise InputError(f"{item}: no images in this folder ({', '.join(IMAGE_EXTENSIONS)})")
    elif os.path.isfile(item):
      if not _is_image(item):
        raise InputError(f"{item}: not an image file ({', '.join(IMAGE_EXTENSIONS)})")
      found = [item]
    elif any(c in item for c in _GLOB_CHARACTERS):
      found = sorted(p for p in glob.glob(item) if os.path.isfile(p) and _is_image(p))
      if not found:
        raise InputError(f"{item}: no images match this pattern")
    else:
      raise InputError(f"{item}: image not found")
    paths += found
  return paths


def is_stream(item: str) -> bool:
  """A camera (`camera:N`) or a video file: an item read frame by frame."""
  return item.startswith(CAMERA_PREFIX) or (os.path.isfile(item) and not _is_image(item))


def frames(items: Sequence[str], max_frames: int
           ) -> Iterator[Tuple[str, np.ndarray, bool, float]]:
  """Yields (name, RGB frame [H, W, 3] uint8, from a stream, stream fps) for every image
  of `items` and up to `max_frames` frames of each video file or camera."""
  for item in items:
    if not is_stream(item):
      for path in image_paths([item]):
        yield os.path.splitext(os.path.basename(path))[0], read_image(path), False, 0.0
      continue
    source = item
    if item.startswith(CAMERA_PREFIX):
      number = item[len(CAMERA_PREFIX):]
      if not number.isdigit():
        raise InputError(f"{item}: a camera is camera:N with N its number, e.g. camera:0")
      source = int(number)
    capture = cv2.VideoCapture(source)
    if not capture.isOpened():
      raise InputError(f"{item}: cannot open this video or camera")
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    try:
      for index in range(max_frames):
        ok, frame = capture.read()
        if not ok:
          break
        yield f"frame_{index:05d}", cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), True, fps
    finally:
      capture.release()
