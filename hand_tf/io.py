"""Generic file I/O: images, JSON, atomic writes, and the error bad input raises.

NumPy and OpenCV only (the deploy path imports it).  Every write goes to a temporary
file beside the target and is renamed into place, so a reader never sees half a file.
"""

import contextlib
import json
import os
import tempfile

import cv2
import numpy as np


class InputError(ValueError):
  """A file or value given to the program is missing, unreadable or malformed; the
  message names the file (and field) and what is wrong."""


def read_image(path, channels: int = 3) -> np.ndarray:
  """`[H, W, channels]` uint8: RGB for 3 channels, grey for 1.

  Raises:
    InputError: the file is missing or not an image OpenCV can decode.
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise InputError(f"{path}: image not found")
  if channels not in (1, 3):
    raise ValueError(f"channels must be 1 or 3, got {channels}")
  image = cv2.imread(path, cv2.IMREAD_COLOR if channels == 3 else cv2.IMREAD_GRAYSCALE)
  if image is None:
    raise InputError(f"{path}: not a readable image")
  if channels == 1:
    return image[..., None]
  return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def atomic_write_bytes(path, payload: bytes) -> None:
  """Writes `payload` to `path` through a temporary file and a rename."""
  path = os.fspath(path)
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
  try:
    with os.fdopen(fd, "wb") as f:
      f.write(payload)
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def load_json(path, what: str = "file"):
  """Reads JSON; a missing or corrupt file raises InputError naming it."""
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise InputError(f"{path}: {what} not found")
  try:
    with open(path) as f:
      return json.load(f)
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise InputError(f"{path}: not valid JSON ({e})") from e


def write_json(path, value) -> None:
  """Writes JSON atomically (compact)."""
  atomic_write_bytes(path, json.dumps(value, separators=(",", ":")).encode())


@contextlib.contextmanager
def output_folder(path):
  """Creates `path` for a command's outputs; if the command then fails before writing
  anything into a folder it created, the empty folder is removed (a failed run leaves
  no trace that looks like a result)."""
  created = not os.path.exists(path)
  os.makedirs(path, exist_ok=True)
  try:
    yield path
  except BaseException:
    if created and os.path.isdir(path) and not os.listdir(path):
      os.rmdir(path)
    raise
