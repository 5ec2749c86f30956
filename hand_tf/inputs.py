"""What a tool accepts as input: one notion for `predict`, `detect` and `mobile_demo`.

An input item is an image file, a folder (its images, sorted by name), or a glob pattern
(`'photos/*.jpg'`, quoted so the shell leaves it alone); `mobile_demo` also takes a
video file and `camera:N`.  Items may be given several at a time.  TensorFlow-free.
"""

import glob
import os
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from hand_tf.io import InputError, read_image

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
CAMERA_PREFIX = "camera:"
_GLOB_CHARACTERS = "*?["
# What a batch tool does with an input it cannot read: None raises (the default);
# a function is called with the InputError and the batch goes on.
OnError = Optional[Callable[[InputError], None]]


def _is_image(path: str) -> bool:
  return path.lower().endswith(IMAGE_EXTENSIONS)


def _is_video(path: str) -> bool:
  return path.lower().endswith(VIDEO_EXTENSIONS)


def _folder_images(folder: str) -> List[str]:
  return sorted(os.path.join(folder, n) for n in os.listdir(folder) if _is_image(n))


def _report(error: InputError, on_error: OnError) -> None:
  if on_error is None:
    raise error
  on_error(error)


def _item_images(item: str) -> List[str]:
  if os.path.isdir(item):
    found = _folder_images(item)
    if not found:
      raise InputError(f"{item}: no images in this folder ({', '.join(IMAGE_EXTENSIONS)})")
    return found
  if os.path.isfile(item):
    if not _is_image(item):
      raise InputError(f"{item}: not an image file ({', '.join(IMAGE_EXTENSIONS)})")
    return [item]
  if any(c in item for c in _GLOB_CHARACTERS):
    found = sorted(p for p in glob.glob(item) if os.path.isfile(p) and _is_image(p))
    if not found:
      raise InputError(f"{item}: no images match this pattern")
    return found
  raise InputError(f"{item}: {'video' if _is_video(item) else 'image'} not found")


def image_paths(items: Sequence[str], on_error: OnError = None) -> List[str]:
  """Image files named by `items` (files, folders, globs), in the order given.

  Args:
    items: what the user named.
    on_error: None raises on the first item that names no image; a function is told
      of each such item and the others are still returned.

  Raises:
    InputError: (with `on_error` None) an item names nothing, a folder or pattern holds
      no images, or a file is not an image by its extension; or no item is given.
  """
  if not items:
    raise InputError("no input given: name image files, folders or a glob pattern")
  paths = []
  for item in items:
    try:
      paths += _item_images(item)
    except InputError as e:
      _report(e, on_error)
  return paths


def is_stream(item: str) -> bool:
  """A camera (`camera:N`) or a video file: an item read frame by frame."""
  return (item.startswith(CAMERA_PREFIX) or _is_video(item)
          or (os.path.isfile(item) and not _is_image(item)))


def _open_stream(item: str) -> cv2.VideoCapture:
  if item.startswith(CAMERA_PREFIX):
    number = item[len(CAMERA_PREFIX):]
    if not number.isdigit():
      raise InputError(f"{item}: a camera is camera:N with N its number, e.g. camera:0")
    capture = cv2.VideoCapture(int(number))
    if not capture.isOpened():
      raise InputError(f"{item}: cannot open camera {number} (is it connected and free?)")
    return capture
  if not os.path.isfile(item):
    raise InputError(f"{item}: video not found")
  capture = cv2.VideoCapture(item)
  if not capture.isOpened():
    raise InputError(f"{item}: cannot read this video (not a video, or a codec OpenCV "
                     "lacks)")
  return capture


def frames(items: Sequence[str], max_frames: int, on_error: OnError = None
           ) -> Iterator[Tuple[str, np.ndarray, bool, float]]:
  """Yields (name, RGB frame [H, W, 3] uint8, from a stream, stream fps) for every image
  of `items` and up to `max_frames` frames of each video file or camera.

  `on_error` as in `image_paths`; it is also told of images that cannot be decoded.
  """
  for item in items:
    if not is_stream(item):
      for path in image_paths([item], on_error):
        try:
          image = read_image(path)
        except InputError as e:
          _report(e, on_error)
          continue
        yield os.path.splitext(os.path.basename(path))[0], image, False, 0.0
      continue
    try:
      capture = _open_stream(item)
    except InputError as e:
      _report(e, on_error)
      continue
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    try:
      for index in range(max_frames):
        ok, frame = capture.read()
        if not ok:
          break
        yield f"frame_{index:05d}", cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), True, fps
    finally:
      capture.release()
