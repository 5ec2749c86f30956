"""What quantisation costs in accuracy: every .tflite of an export against its fp32 model
on a held-out set with 3D ground truth.

  python benchmarks/quantized_accuracy.py --export EXPORT_DIR --data_dir SET \
      [--split evaluation] [--source_size 224] [--variants_from CHECKPOINT] \
      [--float_layers 25,40,60]

--variants_from converts the export's checkpoint three times more into EXPORT_DIR,
calibrated on --data_dir's training images as `export --calibration_dir` calibrates int8:
s2hand_int8_head_float.tflite (int8 with the whole geometry head float),
s2hand_16x8.tflite (int16 activations and int8 weights where LiteRT has 16x8 kernels,
MANO included, float elsewhere; a graph with ops 16x8 cannot calibrate has none) and
s2hand_int8_weights.tflite (int8 weights, float activations: LiteRT's dynamic-range
quantisation, which needs no calibration).
(TF's selective-quantisation debugger, which the exporter uses, ignores the 16x8 op set,
so the second is converted without it.)  With --float_layers K,... it also writes
s2hand_int8_float{K}.tflite: the exporter's int8 with the K int8 layers of largest
quantisation error (the debugger's per-layer RMSE over the tensor's scale, each layer fed
float inputs) kept float as well.

For each model in EXPORT_DIR (s2hand_fp32.tflite is the reference; every other .tflite
there is compared) it prints PA-MPJPE and its change against fp32 (issue 19's aim for
int8: within 2%), and how far its 2D joints land from fp32's on each image, in pixels of
a 224 px crop (the aim: within 2 px on every image): the median and worst per-image
maximum and the share of images within 2 px; with the spread of the predictions across
images (a model that ignores its input has 0), and how far it turns the hands from fp32's
rotation (median, and on the image with the worst 2D), and its median time per call
(LiteRT, 2 threads, batch 1; the models timed in turn in the same rounds).
"""

import csv
import glob
import io
import os

import numpy as np
from absl import flags
from scipy.spatial.transform import Rotation

from hand_tf import startup

import litert_timing  # benchmarks/, on the path when run as a script

EXPORT = flags.DEFINE_string("export", None, "An export folder (python -m export).")
DATA_DIR = flags.DEFINE_string("data_dir", None, "FreiHAND-layout set with ground truth.")
SPLIT = flags.DEFINE_enum("split", "evaluation", ["training", "evaluation"], "Its split.")
SOURCE_SIZE = flags.DEFINE_integer("source_size", None, "Its images' side (default: read).")
VARIANTS_FROM = flags.DEFINE_string("variants_from", None,
                                    "The export's checkpoint: also convert three variants.")
FLOAT_LAYERS = flags.DEFINE_list("float_layers", [], "With --variants_from: also int8 with "
                                 "this many largest-error layers float (comma-separated).")
REFERENCE = "s2hand_fp32.tflite"


def convert_variants(checkpoint, out_dir, calibration_dir, float_layers=(), count=64):
  """Writes the variants of the module's docstring into `out_dir`."""
  import tempfile

  import tensorflow as tf

  from export import exporter
  from hand_tf.predictors import load_checkpoint_model, resolve_checkpoint
  config, model = load_checkpoint_model(resolve_checkpoint(checkpoint))
  images, intrinsics = exporter.calibration_set(config.image_size, count, calibration_dir)

  def representative():
    for image, k in zip(images, intrinsics):
      yield {"images": image[None], "intrinsics": k[None]}

  archive = exporter.export_archive(model, exporter.InferenceModule(model, config.image_size),
                                    config.image_size, 1, config.image_size, False)
  with open(os.path.join(out_dir, REFERENCE), "rb") as f:
    float_model = f.read()
  head = [name for _, name in exporter.tflite_ops(float_model) if "geometry_head" in name]
  with tempfile.TemporaryDirectory() as work:
    archive.write_out(work, verbose=False)
    variants = {"s2hand_int8_head_float.tflite": exporter.convert_tflite(
        work, "tflite_int8", images, intrinsics, float_model, extra_float_nodes=head)}
    # The exporter's int8 path goes through the debugger, which ignores the 16x8 op set.
    converter = tf.lite.TFLiteConverter.from_saved_model(work, ["serve_with_intrinsics"])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8,
        tf.lite.OpsSet.TFLITE_BUILTINS]
    try:
      variants["s2hand_16x8.tflite"] = converter.convert()
    except RuntimeError as e:  # e.g. an ArgMax, whose integer output 16x8 cannot calibrate
      print(f"s2hand_16x8.tflite: not converted ({str(e).splitlines()[0]})", flush=True)
    converter = tf.lite.TFLiteConverter.from_saved_model(work, ["serve_with_intrinsics"])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    variants["s2hand_int8_weights.tflite"] = converter.convert()
    if float_layers:
      variants.update(_largest_error_float(work, float_model, images, intrinsics,
                                           float_layers))
  for name, data in variants.items():
    with open(os.path.join(out_dir, name), "wb") as f:
      f.write(data)
    print(f"converted {name} ({len(data) / 1e6:.1f} MB)", flush=True)


def _largest_error_float(work, float_model, images, intrinsics, counts):
  """{name: int8 .tflite with the `count` layers of largest error float} per count."""
  import tensorflow as tf

  from export import exporter
  from hand_tf.startup import native_output_muted
  debugger = exporter.int8_debugger(work, images, intrinsics, float_model)
  exporters_float = debugger.options  # the op types and nodes the exporter keeps float
  with native_output_muted(1, 2):
    debugger.run()
    # RMSE in units of the tensor's quantisation step, as TF's debugger guide ranks layers
    # (through its CSV dump: the public form that names each layer's tensor).
    dump = io.StringIO()
    debugger.layer_statistics_dump(dump)
    dump.seek(0)
    rows = list(csv.DictReader(dump))
    ranked = [row["tensor_name"] for row in sorted(rows, key=lambda row: -np.sqrt(
        float(row["mean_squared_error"])) / float(row["scale"]))]
    variants = {}
    for count in counts:
      debugger.options = tf.lite.experimental.QuantizationDebugOptions(
          denylisted_ops=exporters_float.denylisted_ops,
          denylisted_nodes=sorted(set(exporters_float.denylisted_nodes) | set(ranked[:count])))
      variants[f"s2hand_int8_float{count}.tflite"] = debugger.get_nondebug_quantized_model()
  return variants


def main(argv):
  del argv
  from hand_tf.contract import REFERENCE_SIZE
  from hand_tf.data.freihand import read_freihand
  from hand_tf.eval import report
  from hand_tf.predictors import load_predictor
  if not EXPORT.value or not DATA_DIR.value:
    raise SystemExit("error: --export and --data_dir are required")
  if VARIANTS_FROM.value:
    startup.quiet_tensorflow()
    convert_variants(VARIANTS_FROM.value, EXPORT.value, DATA_DIR.value,
                     [int(count) for count in FLOAT_LAYERS.value])
  paths = sorted(glob.glob(os.path.join(EXPORT.value, "*.tflite")),
                 key=lambda p: (os.path.basename(p) != REFERENCE, p))
  if not paths or os.path.basename(paths[0]) != REFERENCE:
    raise SystemExit(f"error: {EXPORT.value}: no {REFERENCE} to compare against")
  results = {}
  for path in paths:
    predictor = load_predictor(path, 2)
    records = read_freihand(DATA_DIR.value, SPLIT.value, image_size=predictor.input_size,
                            source_size=SOURCE_SIZE.value)
    predictions = report.predict_records(predictor, records, progress=False)
    metrics = report.evaluate_records(predictions, records)["metrics"]
    # joints2d are in the crop's pixels: in 224 px terms, as the parity checks state them.
    results[os.path.basename(path)] = (
        metrics, predictions["joints2d"] * REFERENCE_SIZE / predictor.input_size,
        Rotation.from_rotvec(predictions["camera"][:, 1:4]))
  milliseconds = litert_timing.interleaved_ms({path: path for path in paths}, 30, 2)
  reference, reference_2d, reference_turn = results[REFERENCE]
  print(f"{len(reference_2d)} images of {DATA_DIR.value} ({SPLIT.value}); 2D in px of a "
        f"{REFERENCE_SIZE} px crop")
  print(f"{'model':28s} {'PA-MPJPE':>9s} {'vs fp32':>8s} {'2D max/img median':>18s} "
        f"{'worst':>7s} {'<= 2 px':>8s} {'spread mm':>10s} {'turn deg median':>16s} "
        f"{'at worst 2D':>12s} {'ms':>6s}")
  for name, (metrics, joints2d, turn) in results.items():
    apart = np.linalg.norm(joints2d - reference_2d, axis=-1).max(axis=-1)
    change = 100 * (metrics["pa_mpjpe"] / reference["pa_mpjpe"] - 1)
    # How far the variant turns each hand from fp32's: large turns on a few images, not
    # a shift, are what put a quantised model's 2D joints beyond the aim.
    degrees = np.degrees((turn.inv() * reference_turn).magnitude())
    print(f"{name:28s} {metrics['pa_mpjpe']:9.2f} {change:+7.1f}% {np.median(apart):18.2f} "
          f"{apart.max():7.2f} {np.mean(apart <= 2.0):8.0%} {metrics['spread_mm']:10.1f} "
          f"{np.median(degrees):16.1f} {degrees[apart.argmax()]:12.1f} "
          f"{milliseconds[os.path.join(EXPORT.value, name)]:6.2f}")


if __name__ == "__main__":
  startup.run(main)
