"""Export a trained checkpoint for deployment.

  python -m export --checkpoint RUN_OR_PREFIX --out DIR \
      [--formats saved_model,tflite_fp32,tflite_fp16,tflite_int8,onnx]

'tflite' stands for all three TFLite variants.  int8 is calibrated on --num_calibration
images of the synthetic generator (or the images of --calibration_dir, a FreiHAND-layout
folder, e.g. real training crops).  Every artefact is checked against the Keras model;
a failed check exits non-zero and names the artefact (see DIR/parity.json).
"""

import sys
import tempfile

import numpy as np
from absl import app, flags

CHECKPOINT = flags.DEFINE_string("checkpoint", None, "Checkpoint prefix or run folder.",
                                 required=True)
OUT = flags.DEFINE_string("out", None, "Output folder.", required=True)
FORMATS = flags.DEFINE_list("formats", ["saved_model", "tflite", "onnx"],
                            "saved_model, tflite (= the three below), tflite_fp32, "
                            "tflite_fp16, tflite_int8, onnx.")
NUM_CALIBRATION = flags.DEFINE_integer("num_calibration", 32,
                                       "Representative images for int8 calibration.")
CALIBRATION_DIR = flags.DEFINE_string("calibration_dir", None,
                                      "FreiHAND-layout folder of calibration images "
                                      "(default: synthetic images).")
PARITY_COUNT = flags.DEFINE_integer("parity_count", 4, "Images the parity check runs.")


def expand_formats(names):
  out = []
  for name in names:
    out.extend(["tflite_fp32", "tflite_fp16", "tflite_int8"] if name == "tflite" else [name])
  return list(dict.fromkeys(out))


def calibration_set(image_size, count, root=None, mano_model_path=None):
  """`[M, S, S, 3]` uint8 images and `[M, 3, 3]` K (synthetic unless `root` is given)."""
  from hand_tf.data.crops import crop_image
  from hand_tf.data.freihand import read_freihand
  from hand_tf.data.synthetic_data import synthesize
  from hand_tf.reconstruct import read_image
  with tempfile.TemporaryDirectory(prefix="export_calibration_") as tmp:
    if root is None:
      root = tmp
      synthesize(root, count, image_size=image_size, seed=12345, progress=True,
                 mano_model_path=mano_model_path)
      records = read_freihand(root, image_size=image_size, source_size=image_size)
    else:
      records = read_freihand(root, image_size=image_size)
    records = records.subset(np.arange(min(count, len(records))))
    images = []
    for path, box in zip(records.image_paths, records.crop_boxes):
      images.append(crop_image(read_image(path), box, image_size))
  return np.stack(images), records.intrinsics


def main(argv):
  del argv
  from export.exporter import ParityError, export_model
  from hand_tf.predictors import load_checkpoint_model
  config, model = load_checkpoint_model(CHECKPOINT.value)
  formats = expand_formats(FORMATS.value)
  images, intrinsics = calibration_set(config.image_size, NUM_CALIBRATION.value,
                                       CALIBRATION_DIR.value, config.mano_model_path)
  try:
    report = export_model(model, config.image_size, OUT.value, formats, images, intrinsics,
                          PARITY_COUNT.value)
  except ParityError as e:
    print(f"export: {e}", file=sys.stderr)
    sys.exit(1)
  for kind, row in report.items():
    print(f"{kind:12s} {row['bytes'] / 1e6:7.1f} MB  parity {row['max_vertex_mm']:.4f} mm")


if __name__ == "__main__":
  app.run(main)
