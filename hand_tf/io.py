"""Generic file I/O: images, JSON, atomic writes, and the error bad input raises.

NumPy, OpenCV and Pillow (EXIF) only: the deploy path imports it.  Every write goes to a temporary
file beside the target and is renamed into place, so a reader never sees half a file.
"""

import contextlib
import glob
import json
import os
import shutil
import tempfile
from typing import Optional

import cv2
import numpy as np
from absl import logging


class InputError(ValueError):
  """A file or value given to the program is missing, unreadable or malformed; the
  message names the file (and field) and what is wrong."""


def _is_truncated_jpeg(path: str) -> bool:
  # In a JPEG's coded data a 0xFF byte is always followed by 0x00 or a restart marker,
  # so the end-of-image marker FFD9 can only be the real end (or sit just before
  # trailing padding some cameras add).
  with open(path, "rb") as f:
    head = f.read(2)
    f.seek(max(0, os.path.getsize(path) - 1024))
    tail = f.read()
  return head == b"\xff\xd8" and b"\xff\xd9" not in tail


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
  if _is_truncated_jpeg(path):
    # libjpeg decodes what is there and fills the rest with grey ("Premature end of
    # JPEG file" on stderr, which names no file).
    logging.warning("%s: truncated JPEG (no end marker); its lower part is grey", path)
  if channels == 1:
    return image[..., None]
  return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


# EXIF tags (Exif IFD): the lens's focal length in mm and its 35 mm film equivalent.
_EXIF_IFD, _FOCAL_LENGTH, _FOCAL_35MM = 0x8769, 0x920A, 0xA405


def read_exif_focal(path) -> Optional[dict]:
  """The focal length a photo's EXIF records: {"focal_35mm": mm equivalent on 35 mm
  film, "focal_mm": the lens's mm (or None)}, or None when the file has no usable value.

  Pillow reads the EXIF block (OpenCV decodes pixels and orientation only).
  """
  from PIL import Image, UnidentifiedImageError
  try:
    with Image.open(os.fspath(path)) as image:
      exif = image.getexif().get_ifd(_EXIF_IFD)
  except (OSError, UnidentifiedImageError, SyntaxError, ValueError):
    return None
  focal_35mm = exif.get(_FOCAL_35MM)
  if not focal_35mm:  # 0 means "unknown" in EXIF
    return None
  focal_mm = exif.get(_FOCAL_LENGTH)
  return {"focal_35mm": float(focal_35mm),
          "focal_mm": float(focal_mm) if focal_mm else None}


def _umask() -> int:
  mask = os.umask(0)  # the only way to read it is to set it
  os.umask(mask)
  return mask


# Smaller images cannot show a hand the network could read (its input is 64-224 px).
MIN_IMAGE_SIDE = 16


def check_image_size(image: np.ndarray, where: str = "image") -> None:
  """InputError when `image` ([H, W, C]) is too small to show a hand."""
  height, width = image.shape[:2]
  if min(height, width) < MIN_IMAGE_SIDE:
    raise InputError(f"{where}: {width}x{height} pixels is too small to show a hand (at "
                     f"least {MIN_IMAGE_SIDE} px a side)")


def atomic_write_bytes(path, payload: bytes) -> None:
  """Writes `payload` to `path` through a temporary file and a rename.

  The file gets the mode a plain `open` would give it (0666 less the umask), not
  `mkstemp`'s private 0600.
  """
  path = os.fspath(path)
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
  try:
    os.chmod(tmp, 0o666 & ~_umask())
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


# A folder of results (an export) is built in a staging folder beside its destination
# and switched in by renames, so that a reader finds either the old set or the new one,
# never a mix.  Names: `.NAME.staging-*` (being built), `.NAME.previous-*` (the old set,
# during the switch).
def _siblings(path: str, kind: str) -> list:
  parent, name = os.path.split(os.path.abspath(path))
  return sorted(glob.glob(os.path.join(parent, f".{glob.escape(name)}.{kind}-*")),
                key=os.path.getmtime)


def recover_folder(path: str) -> None:
  """Finishes or undoes a switch an earlier process was killed in, and removes its
  staging folders: a `.previous` set comes back if `path` is missing (the kill fell
  between the two renames), else it is deleted."""
  for stale in _siblings(path, "staging"):
    shutil.rmtree(stale, ignore_errors=True)
  previous = _siblings(path, "previous")
  if previous and not os.path.exists(path):
    os.rename(previous.pop(), path)
  for stale in previous:
    shutil.rmtree(stale, ignore_errors=True)


def staging_folder(path: str) -> str:
  """A new empty folder beside `path` to build its replacement in (after
  `recover_folder(path)`); hand it to `switch_into_place` when complete."""
  recover_folder(path)
  parent, name = os.path.split(os.path.abspath(path))
  os.makedirs(parent, exist_ok=True)
  return tempfile.mkdtemp(dir=parent, prefix=f".{name}.staging-")


def switch_into_place(staging: str, path: str) -> None:
  """Makes the complete folder `staging` the folder `path`, deleting the old one after.

  Two renames (Linux cannot swap two folders in one from Python): a kill between them
  leaves `path` missing and the old set as `.NAME.previous-*`, which `recover_folder`
  (called by the next `staging_folder`) puts back.
  """
  os.chmod(staging, 0o777 & ~_umask())  # mkdtemp's folder is private (0700)
  if not os.path.exists(path):
    os.rename(staging, path)
    return
  folder, name = os.path.split(staging)
  previous = os.path.join(folder, name.replace(".staging-", ".previous-", 1))
  os.rename(path, previous)
  os.rename(staging, path)
  shutil.rmtree(previous, ignore_errors=True)
