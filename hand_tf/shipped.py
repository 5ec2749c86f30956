"""The model that ships inside the package: where it is and what it was trained on.

`python -m hand_tf.pretrain --install` (make pretrained) writes it; `predict`,
`mobile_demo` and `HandReconstructor.load()` use it when no model is given.  It is a
TFLite file (no TensorFlow needed to run it) with the project's synthetic hand baked in:
a user's own MANO_RIGHT.pkl needs a model trained with it.
"""

import json
import os
from typing import Optional

from hand_tf.io import InputError

# Package data (pyproject's package-data), not a Python package: the recipe replaces the
# whole folder in one rename.
FOLDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pretrained")
MODEL_FILES = {"fp16": "s2hand_fp16.tflite", "int8": "s2hand_int8.tflite"}
# The export's side files (mesh faces and held-out figures; the hand model's arrays),
# read by the predictors, and the recipe's records.
EXPORT_FILES = ("hand_mesh.json", "hand_model.npz")
RECORD_FILES = ("recipe.json", "metrics.json", "training_log.txt")


def model_path(variant: str = "fp16", folder: Optional[str] = None) -> str:
  """Path of the shipped .tflite (`variant` 'fp16' or 'int8').

  Raises:
    InputError: unknown variant, or the package has no shipped model (a source tree
      whose recipe was never run with --install).
  """
  if variant not in MODEL_FILES:
    raise InputError(f"shipped model variant {variant!r}: choose from {sorted(MODEL_FILES)}")
  path = os.path.join(folder or FOLDER, MODEL_FILES[variant])
  if not os.path.isfile(path):
    raise InputError(f"no shipped model at {path}: pass --model, or train it with "
                     "`make pretrained`")
  return path


def check_folder(folder: str) -> None:
  """Raises InputError unless `folder` holds a complete shipped model: both .tflite files
  (FlatBuffers with TFLite's identifier), the export's side files and the recipe,
  metrics and training log."""
  for name in MODEL_FILES.values():
    path = os.path.join(folder, name)
    if not os.path.isfile(path):
      raise InputError(f"{path}: missing")
    with open(path, "rb") as f:
      if f.read(8)[4:8] != b"TFL3":  # the FlatBuffer's file identifier
        raise InputError(f"{path}: not a TFLite model")
  for name in EXPORT_FILES + RECORD_FILES:
    path = os.path.join(folder, name)
    if not os.path.isfile(path) or os.path.getsize(path) == 0:
      raise InputError(f"{path}: missing or empty")
  for name in ("recipe.json", "metrics.json", "hand_mesh.json"):
    try:
      with open(os.path.join(folder, name)) as f:
        json.load(f)
    except ValueError as e:
      raise InputError(f"{os.path.join(folder, name)}: not JSON ({e})") from e

