"""How closely each exported artefact must reproduce the Keras model, output by output.

Every output a user reads is compared on the same images: vertices, 3D joints, 2D
joints, pose, shape, camera, texture and lighting.  Float artefacts (SavedModel, fp32
TFLite, ONNX) differ from Keras only by kernel rounding and are held to the largest
difference: a conversion bug shows at a single value.  Quantised artefacts (fp16
weights, int8) carry rounding noise whose largest value swings with the weights, so
they are held to the mean absolute difference, which is stable.

The bounds are about 10x what the demo's trained 64 px model measured (mean |difference|
fp16 / int8: vertices 0.10 / 1.5 mm, 2D joints 0.07 / 1.1 px at 224 px, pose 0.0006 /
0.012 rad, shape 0.0008 / 0.009, camera 0.0008 / 0.011, texture 0.0001 / 0.004,
lighting 0.0003 / 0.020; float artefacts: under 1e-5 of each unit); int8 pose, shape and
camera 20x, since an untrained network's (as the tests export) reach 0.06-0.12 there.
"""

from typing import Dict

import numpy as np

from hand_tf.contract import OUTPUT_NAMES

# What each output's difference is reported in: meters are shown as mm, 2D joints as
# pixels of a 224 px input (the bound scales with the input size).
_UNIT = {"vertices": ("mm", 1000.0), "joints3d": ("mm", 1000.0), "joints2d": ("px@224", None),
         "pose": ("rad", 1.0), "shape": ("", 1.0), "camera": ("", 1.0), "texture": ("", 1.0),
         "lighting": ("", 1.0)}
_FLOAT = {"vertices": 0.1, "joints3d": 0.1, "joints2d": 0.05, "pose": 1e-3, "shape": 1e-3,
          "camera": 1e-3, "texture": 1e-3, "lighting": 1e-3}
_FP16 = {"vertices": 1.0, "joints3d": 1.0, "joints2d": 1.0, "pose": 0.01, "shape": 0.01,
         "camera": 0.01, "texture": 0.005, "lighting": 0.01}
_INT8 = {"vertices": 15.0, "joints3d": 15.0, "joints2d": 12.0, "pose": 0.25, "shape": 0.25,
         "camera": 0.25, "texture": 0.05, "lighting": 0.2}
# (statistic gated, bounds) per artefact.
TOLERANCES = {"saved_model": ("max", {k: v / 10 for k, v in _FLOAT.items()}),
              "tflite_fp32": ("max", _FLOAT), "onnx": ("max", _FLOAT),
              "tflite_fp16": ("mean", _FP16), "tflite_int8": ("mean", _INT8)}
assert all(set(bounds) == set(OUTPUT_NAMES) for _, bounds in TOLERANCES.values())


def compare(kind: str, got: Dict[str, np.ndarray], reference: Dict[str, np.ndarray],
            input_size: int) -> Dict[str, dict]:
  """Per output: {"max", "mean", "unit", "gate", "tolerance", "ok"} of |got - reference|.

  Args:
    kind: an artefact kind of `TOLERANCES`.
    got, reference: the artefact's and the Keras model's outputs on the same inputs.
    input_size: the model's input side S (2D joints are in its pixels).
  """
  gate, bounds = TOLERANCES[kind]
  rows = {}
  for name in OUTPUT_NAMES:
    unit, factor = _UNIT[name]
    if factor is None:
      factor = 224.0 / input_size
    difference = np.abs(np.asarray(got[name], np.float64) - reference[name]) * factor
    row = {"max": float(difference.max()), "mean": float(difference.mean()), "unit": unit,
           "gate": gate, "tolerance": bounds[name]}
    row["ok"] = bool(np.isfinite(row[gate]) and row[gate] <= bounds[name])
    rows[name] = row
  return rows


def summary(rows: Dict[str, dict]) -> str:
  """One line: every output's gated figure against its bound; failures first."""
  ordered = sorted(rows.items(), key=lambda item: item[1]["ok"])
  return ", ".join(f"{name} {row[row['gate']]:.3g}{row['unit'] and ' ' + row['unit']}"
                   f"{'' if row['ok'] else ' > ' + format(row['tolerance'], 'g') + ' FAILED'}"
                   for name, row in ordered)
