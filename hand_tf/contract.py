"""What a shipped hand model is: its outputs, their units, and the files beside it.

TF-free (the deploy path reads it).  An exported model (SavedModel, .tflite, .onnx) has
one input size, read from the artefact itself by `hand_tf.predictors`, and a
`hand_mesh.json` beside it with the mesh faces, keypoint names, output names and units
(`write_mesh_file` / `read_mesh_file`).  Pixel thresholds of the paper are stated for its
224 px crops (`REFERENCE_SIZE`) and scaled to the model's input size.
"""

import os
from typing import Optional, Tuple

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
# The hand model's arrays (MANO's format), beside a run's checkpoints and in an export.
HAND_MODEL_FILE = "hand_model.npz"
# Written by `hand_tf.evaluate` beside a checkpoint; carried into `hand_mesh.json`.
HELD_OUT_FILE = "held_out.json"
# Below this input size a network is the demo's kind (the paper's is 224 px).
SMALL_INPUT_SIZE = 128


class ModelFileError(io.InputError):
  """A model file or checkpoint is missing, corrupt or does not match the network."""


def at_input_size(pixels_at_reference: float, image_size: int) -> float:
  """A pixel distance stated for 224 px crops, in pixels of an `image_size` input."""
  return pixels_at_reference * image_size / REFERENCE_SIZE


def write_mesh_file(out_dir: str, faces: np.ndarray, image_size: int,
                    held_out: Optional[dict] = None) -> str:
  """Writes `hand_mesh.json` (faces `[1538, 3]`, names, units, input size, and the
  model's recorded held-out figures when there are any); its path."""
  path = os.path.join(out_dir, MESH_FILE)
  io.write_json(path, {"faces": np.asarray(faces).tolist(),
                       "keypoint_names": list(constants.KEYPOINT_NAMES),
                       "outputs": list(OUTPUT_NAMES), "input_size": int(image_size),
                       "units": OUTPUT_UNITS, "held_out": held_out})
  return path


def _folders_around(model_path: str):
  """The folder of a model file (or the model folder) and the two above it: where a
  checkpoint's run files or an export's side files are."""
  folder = model_path if os.path.isdir(model_path) else os.path.dirname(
      os.path.abspath(model_path))
  return (folder, os.path.dirname(folder), os.path.dirname(os.path.dirname(folder)))


def find_hand_model(model_path: str) -> Optional[str]:
  """The `hand_model.npz` a model was trained with (written beside a run's checkpoints
  and into an export), or None (an export made before the file was written)."""
  for folder in _folders_around(model_path):
    path = os.path.join(folder, HAND_MODEL_FILE)
    if os.path.isfile(path):
      return path
  return None


def read_held_out(model_path: str) -> Optional[dict]:
  """The held-out figures recorded with a model: `held_out.json` in a checkpoint's
  folder (written by `hand_tf.evaluate`), or the `held_out` of an export's
  `hand_mesh.json`; None when none were recorded."""
  for candidate in _folders_around(model_path):
    for name, key in ((HELD_OUT_FILE, None), (MESH_FILE, "held_out")):
      path = os.path.join(candidate, name)
      if os.path.isfile(path):
        try:
          value = io.load_json(path)
        except io.InputError:
          return None
        return value.get(key) if key else value
  return None


def losing_to_template(model: dict, template: dict) -> Tuple[list, str]:
  """Which of PA-MPJPE and camera-frame MPJPE a model's held-out metrics do not beat the
  template hand's on (a list of names, empty when it beats both), and the figures."""
  names = (("pa_mpjpe", "PA-MPJPE"), ("mpjpe", "MPJPE"))
  losing = [name for key, name in names if model[key] >= template[key]]
  figures = ", ".join(f"{name} {model[key]:.1f} vs {template[key]:.1f} mm"
                      for key, name in names)
  return losing, figures


def not_beating_template(shape: dict, placed_mpjpe: float, template_mpjpe: float,
                         keypoints: str) -> list:
  """What a model does not beat the template hand on, judged beyond the held-out set's
  noise and with both given the same help (empty when it beats it on both).

  Args:
    shape: {"difference", "low", "high"}: per-image PA-MPJPE of the model minus the mean
      hand's, mm, with its paired 95% bootstrap interval, which must lie below 0.
    placed_mpjpe: camera-frame MPJPE (mm) of the model's hands placed on `keypoints`, as
      `predict` returns them.
    template_mpjpe: the template hand's, placed on the same keypoints.
    keypoints: whose keypoints both were placed on, for the message.
  """
  losing = []
  if shape["high"] >= 0:
    losing.append(f"PA-MPJPE ({shape['difference']:+.2f} mm, 95% interval "
                  f"[{shape['low']:+.2f}, {shape['high']:+.2f}])")
  if placed_mpjpe >= template_mpjpe:
    losing.append(f"MPJPE placed on {keypoints} ({placed_mpjpe:.1f} vs "
                  f"{template_mpjpe:.1f} mm)")
  return losing


def model_caveat(input_size: int, held_out: Optional[dict]) -> Optional[str]:
  """One line telling a user what the loaded model is not, or None.

  A constant-looking result from a small demo network must not be mistaken for what
  the method does: say when the network is small, when its recorded held-out figures
  do not beat the template hand, and when none were recorded.
  """
  notes = []
  if input_size < SMALL_INPUT_SIZE:
    notes.append(f"this is a small {input_size} px network (the demo's kind, trained for "
                 "minutes on a CPU)")
  if held_out is None:
    notes.append("no held-out figures were recorded with it (run hand_tf.evaluate on its "
                 "run folder before exporting)")
  elif held_out.get("template"):
    if held_out.get("shape") and held_out.get("placed"):
      losing = not_beating_template(held_out["shape"], held_out["placed"]["mpjpe"],
                                    held_out["template"]["mpjpe"], "the set's detections")
    else:  # recorded before the placed and paired figures were
      losing, figures = losing_to_template(held_out["metrics"], held_out["template"])
      losing = [" and ".join(losing) + f" ({figures})"] if losing else []
    if losing:
      notes.append(f"on its held-out set ({held_out.get('count', '?')} images) it does not "
                   f"beat the template hand on {' and '.join(losing)}")
  return ("note: " + "; ".join(notes) + ".") if notes else None


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
