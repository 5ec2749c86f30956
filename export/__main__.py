"""Export a trained checkpoint for deployment.

  python -m export --checkpoint RUN_OR_PREFIX --out DIR \
      [--formats saved_model,tflite_fp32,tflite_fp16,tflite_int8,onnx]

'tflite' stands for all three TFLite variants.  int8 is calibrated on --num_calibration
images of the synthetic generator (or the images of --calibration_dir, a FreiHAND-layout
folder, e.g. real training crops).  Every artefact is checked against the Keras model;
a failed check exits non-zero and names the artefact (see DIR/parity.json).
"""

import sys

from absl import flags, logging

from hand_tf import startup

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


def main(argv):
  del argv
  from hand_tf.startup import quiet_tensorflow
  quiet_tensorflow()  # before TensorFlow loads: its C++ start-up lines are not for users
  # The export prints its own lines; TF's savers log each file they write at INFO.
  logging.set_verbosity(logging.WARNING)
  from export.exporter import FORMATS as KNOWN_FORMATS
  from export.exporter import ParityError, calibration_set, check_output_folder, export_model
  from hand_tf.contract import read_held_out
  from hand_tf.io import InputError
  from hand_tf.predictors import load_checkpoint_model, resolve_checkpoint
  try:
    formats = expand_formats(FORMATS.value)
    unknown = sorted(set(formats) - set(KNOWN_FORMATS))
    if unknown:
      raise InputError(f"--formats: unknown {unknown}; choose from tflite, "
                       f"{', '.join(KNOWN_FORMATS)}")
    check_output_folder(OUT.value)  # before the slow part
    prefix = resolve_checkpoint(CHECKPOINT.value)
    config, model = load_checkpoint_model(prefix)
    print(f"model: {prefix}, {config.image_size} px input", flush=True)
    images, intrinsics = calibration_set(config.image_size, NUM_CALIBRATION.value,
                                         CALIBRATION_DIR.value, config.mano_model_path)
    report = export_model(model, config.image_size, OUT.value, formats, images, intrinsics,
                          PARITY_COUNT.value, held_out=read_held_out(prefix))
  except ParityError as e:  # the export failed at its job; not a usage error
    print(f"error: {e}", file=sys.stderr)
    sys.exit(1)
  for kind, row in report.items():
    vertices = row["outputs"]["vertices"]
    print(f"{kind:12s} {row['bytes'] / 1e6:7.1f} MB  vertex difference max "
          f"{vertices['max']:.4f} mm, mean {vertices['mean']:.4f} mm")


if __name__ == "__main__":
  startup.run(main)
