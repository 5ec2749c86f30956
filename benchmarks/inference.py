"""Batch-1 inference latency and model size in every runtime we ship.

  python benchmarks/inference.py [--checkpoint RUN] [--image_size 224] [--runs 30]
      [--threads 2]

Exports the network (a checkpoint, or fresh random weights: latency does not depend on
the weights) to SavedModel, TFLite fp32/fp16/int8 and ONNX, then times one uint8 image
[1, S, S, 3] (+ K) through: the Keras model called eagerly, the same under tf.function,
the SavedModel signature, LiteRT (ai-edge-litert, XNNPACK) per TFLite file, and ONNX
Runtime; median of --runs after warm-up, --threads CPU threads everywhere.  Also times
the bare EfficientNet-Lite0 and -B0 backbones in TFLite fp32 and full-integer int8 (to
show what the MANO layer, heads and projection add, and what each backbone costs) and
MediaPipe's hand landmark models (full and lite) on LiteRT as the
on-device reference: they output 21 keypoints, ours the whole mesh, texture and camera.
Last, `mobile_demo`'s per-frame stages on a 640 x 480 frame with the int8 model (fixed
box: no detector), against the model's own time.
"""

import os
import tempfile
import time

import numpy as np
from absl import flags

from hand_tf import startup

CHECKPOINT = flags.DEFINE_string("checkpoint", None, "Checkpoint; default random weights.")
IMAGE_SIZE = flags.DEFINE_integer("image_size", 224, "Input size (random-weight model).")
RUNS = flags.DEFINE_integer("runs", 30, "Timed runs (median).")
THREADS = flags.DEFINE_integer("threads", 2, "CPU threads for every runtime.")


def _median_ms(fn, runs):
  for _ in range(3):
    fn()
  times = []
  for _ in range(runs):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return 1000 * float(np.median(times))


def _tflite_ms(path, runs, threads):
  from ai_edge_litert.interpreter import Interpreter
  interpreter = Interpreter(model_path=path, num_threads=threads)
  interpreter.allocate_tensors()
  for detail in interpreter.get_input_details():
    interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
  return _median_ms(interpreter.invoke, runs)


def _backbone_tflite(name, size, directory, int8=False):
  """The bare backbone (ImageNet weights for Lite0, random B0) as a .tflite file."""
  import keras
  import tensorflow as tf

  from hand_tf.model.encoder import build_backbone
  net = build_backbone(name, "imagenet" if name == "lite0" else None, size)
  backbone = keras.Sequential([net, keras.layers.GlobalAveragePooling2D()])
  # Through a SavedModel written by Keras' ExportArchive, as the exporter converts the
  # full model: it tracks Keras 3 variables so that the converter can freeze them
  # (from a bare concrete function, int8 calibration fails on READ_VARIABLE).
  archive = keras.export.ExportArchive()
  archive.track(backbone)
  signature = [tf.TensorSpec((1, size, size, 3), tf.float32)]
  archive.add_endpoint("serve", tf.function(lambda x: backbone(x, training=False),
                                            input_signature=signature), signature)
  saved = os.path.join(directory, f"{name}{'_int8' if int8 else ''}_saved_model")
  archive.write_out(saved, verbose=False)
  converter = tf.lite.TFLiteConverter.from_saved_model(saved)
  if int8:
    rng = np.random.default_rng(0)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: (
        [rng.uniform(0, 255, (1, size, size, 3)).astype(np.float32)] for _ in range(16))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
  path = os.path.join(directory, f"{name}{'_int8' if int8 else ''}.tflite")
  with open(path, "wb") as f:
    f.write(converter.convert())
  return path


def _mobile_frame_ms(model_path, image, runs, threads):
  """Median per-stage ms of mobile_demo's pipeline on a 640 x 480 frame holding `image`."""
  import cv2

  from mobile_demo.pipeline import HandPipeline
  frame = np.full((480, 640, 3), 60, np.uint8)
  frame[100:324, 200:424] = cv2.resize(image, (224, 224))
  pipeline = HandPipeline(model_path, threads, box=np.array([200, 100, 224, 224]))
  for _ in range(3):
    pipeline.process(frame)
  stages = {}
  for _ in range(runs):
    for name, ms in pipeline.process(frame)[2].items():
      stages.setdefault(name, []).append(ms)
  return {name: float(np.median(values)) for name, values in stages.items()}


def main(argv):
  del argv
  startup.quiet_tensorflow()
  import tensorflow as tf
  tf.config.threading.set_intra_op_parallelism_threads(THREADS.value)
  tf.config.threading.set_inter_op_parallelism_threads(THREADS.value)
  from export.exporter import ARTEFACT, calibration_set, export_model
  from hand_tf.detection.mediapipe import ModelsMissingError, models_dir
  from hand_tf.model.s2hand import ModelConfig, build_models
  from hand_tf.predictors import load_checkpoint_model, load_predictor
  from hand_tf.serving import InferenceModule

  if CHECKPOINT.value:
    config, model = load_checkpoint_model(CHECKPOINT.value)
  else:
    config = ModelConfig(image_size=IMAGE_SIZE.value)
    model = build_models(config)[0]
  size = config.image_size
  directory = tempfile.mkdtemp(prefix="inference_bench_")
  images, intrinsics = calibration_set(size, 16, mano_model_path=config.mano_model_path)
  report = export_model(model, size, directory, list(ARTEFACT), images, intrinsics,
                        log=lambda m: None)
  image, k = images[:1], intrinsics[:1]
  rows = []
  keras_inputs = [tf.constant(image, tf.float32) / 255.0, tf.constant(k)]
  rows.append(("Keras, eager", _median_ms(lambda: model(keras_inputs, training=False),
                                          RUNS.value), None))
  serve = InferenceModule(model, size).functions(1, size, size)[1]
  rows.append(("tf.function", _median_ms(lambda: serve(image, k), RUNS.value), None))
  saved = load_predictor(os.path.join(directory, "saved_model"))
  rows.append(("SavedModel", _median_ms(lambda: saved.predict(image, k), RUNS.value),
               report["saved_model"]["bytes"]))
  for kind in ("tflite_fp32", "tflite_fp16", "tflite_int8"):
    rows.append((f"LiteRT {kind[7:]}", _tflite_ms(os.path.join(directory, ARTEFACT[kind]),
                                                  RUNS.value, THREADS.value),
                 report[kind]["bytes"]))
  onnx = load_predictor(os.path.join(directory, ARTEFACT["onnx"]), THREADS.value)
  rows.append(("ONNX Runtime", _median_ms(lambda: onnx.predict(image, k), RUNS.value),
               report["onnx"]["bytes"]))
  backbones = {}
  for name in dict.fromkeys(("lite0", "b0", config.backbone)):
    for int8 in (False, True):
      path = _backbone_tflite(name, size, directory, int8)
      label = f"LiteRT {'int8' if int8 else 'fp32'}, EfficientNet-{name.capitalize()} alone"
      backbones[(name, int8)] = (path, _tflite_ms(path, RUNS.value, THREADS.value))
      rows.append((label, backbones[(name, int8)][1], os.path.getsize(path)))
  backbone, backbone_ms = backbones[(config.backbone, False)]
  try:
    for variant in ("full", "lite"):
      path = os.path.join(models_dir(), f"hand_landmark_{variant}.tflite")
      if not os.path.isfile(path):
        raise ModelsMissingError(path)
      rows.append((f"MediaPipe hand landmark {variant} (21 keypoints)",
                   _tflite_ms(path, RUNS.value, THREADS.value), os.path.getsize(path)))
  except ModelsMissingError as e:
    print(f"MediaPipe models not found ({e}); run `make models`")

  print(f"\nbatch 1, {size} px, {THREADS.value} threads, median of {RUNS.value} runs")
  print(f"{'runtime':48s} {'ms':>8s} {'MB':>7s}")
  for name, ms, size_bytes in rows:
    mb = f"{size_bytes / 1e6:7.1f}" if size_bytes else "      -"
    print(f"{name:48s} {ms:8.1f} {mb}")
  fp32_ms = dict((r[0], r[1]) for r in rows)["LiteRT fp32"]
  print(f"full inference graph / bare backbone (LiteRT fp32): {fp32_ms / backbone_ms:.2f}x "
        f"time, {report['tflite_fp32']['bytes'] / os.path.getsize(backbone):.2f}x size")
  timed = dict((r[0], r[1]) for r in rows)
  int8_ms = timed["LiteRT int8"]
  for variant in ("full", "lite"):
    reference = timed.get(f"MediaPipe hand landmark {variant} (21 keypoints)")
    if reference:
      print(f"int8 mesh model / MediaPipe hand landmark {variant}: {int8_ms / reference:.2f}x "
            f"(the int8 {config.backbone} backbone alone: "
            f"{backbones[(config.backbone, True)][1] / reference:.2f}x)")
  stages = _mobile_frame_ms(os.path.join(directory, ARTEFACT["tflite_int8"]), images[0],
                            RUNS.value, THREADS.value)
  print("mobile_demo per frame (640 x 480, int8, fixed box), ms: "
        + ", ".join(f"{name[:-3]} {ms:.1f}" for name, ms in stages.items())
        + f"; total / model {stages['total_ms'] / int8_ms:.2f}x")
  print("parity (vertex difference to Keras, mm; max for float, mean for fp16/int8): "
        + ", ".join(f"{k} {v['outputs']['vertices'][v['outputs']['vertices']['gate']]:.3f}"
                    for k, v in report.items()))


if __name__ == "__main__":
  startup.run(main)
