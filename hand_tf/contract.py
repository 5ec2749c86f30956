"""What a shipped hand model is: its outputs, their units, and the files beside it.

TF-free (the deploy path reads it).  An exported model (SavedModel, .tflite, .onnx) has
one input size, read from the artefact itself by `hand_tf.predictors`, and a
`hand_mesh.json` beside it with the mesh faces, keypoint names, output names and units
(`write_mesh_file` / `read_mesh_file`).  Pixel thresholds of the paper are stated for its
224 px crops (`REFERENCE_SIZE`) and scaled to the model's input size.
"""

import os
from typing import Tuple

import numpy as np

from hand_tf import io
from mano_tf import constants

# Side of the paper's input crops; pixel figures tuned there scale with the input size.
REFERENCE_SIZE = 224
OUTPUT_NAMES = ("vertices", "joints3d", "joints2d", "pose", "shape", "camera", "texture",
                "lighting")
OUTPUT_UNITS = {"vertices": "m, camera frame (x right, y down, z forward)",
                "joints3d": "m, camera frame", "joints2d": "pixels of the input image",
                "pose": "axis-angle rad [16, 3]", "camera": "scale, axis-angle [3], m [3]",
                "texture": "RGB in [0, 1]", "lighting": "11 values (see renderer)"}
MESH_FILE = "hand_mesh.json"


class ModelFileError(io.InputError):
  """A model file or checkpoint is missing, corrupt or does not match the network."""


def at_input_size(pixels_at_reference: float, image_size: int) -> float:
  """A pixel distance stated for 224 px crops, in pixels of an `image_size` input."""
  return pixels_at_reference * image_size / REFERENCE_SIZE


def write_mesh_file(out_dir: str, faces: np.ndarray, image_size: int) -> str:
  """Writes `hand_mesh.json` (faces `[1538, 3]`, names, units, input size); its path."""
  path = os.path.join(out_dir, MESH_FILE)
  io.write_json(path, {"faces": np.asarray(faces).tolist(),
                       "keypoint_names": list(constants.KEYPOINT_NAMES),
                       "outputs": list(OUTPUT_NAMES), "input_size": int(image_size),
                       "units": OUTPUT_UNITS})
  return path


def read_mesh_file(model_path: str) -> Tuple[np.ndarray, int]:
  """(faces `[1538, 3]` int32, input size) from the `hand_mesh.json` beside a model.

  Looks in the model's folder and up to two folders above it (a SavedModel's version
  folder sits two levels below the export folder).
  """
  folder = model_path if os.path.isdir(model_path) else os.path.dirname(
      os.path.abspath(model_path))
  for candidate in (folder, os.path.dirname(folder), os.path.dirname(os.path.dirname(folder))):
    path = os.path.join(candidate, MESH_FILE)
    if os.path.isfile(path):
      try:
        value = io.load_json(path)
        return np.asarray(value["faces"], np.int32), int(value["input_size"])
      except (io.InputError, KeyError, TypeError, ValueError) as e:
        raise ModelFileError(f"{path}: not a valid {MESH_FILE} ({e})") from e
  raise ModelFileError(f"{model_path}: no {MESH_FILE} beside the model (written by the "
                       "export; it holds the mesh faces)")
