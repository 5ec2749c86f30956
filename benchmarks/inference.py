"""Batch-1 inference latency and model size in every runtime we ship.

  python benchmarks/inference.py [--checkpoint RUN] [--image_size 224] [--runs 30]
      [--threads 2]

Exports the network (a checkpoint, or fresh random weights: latency does not depend on
the weights) to SavedModel, TFLite fp32/fp16/int8 and ONNX, then times one uint8 image
[1, S, S, 3] (+ K) through: the Keras model called eagerly, the same under tf.function,
the SavedModel signature, LiteRT (ai-edge-litert, XNNPACK) per TFLite file, and ONNX
Runtime; median of --runs after warm-up, --threads CPU threads everywhere.  Also times
the bare EfficientNet-Lite0 and -B0 backbones in TFLite fp32 and full-integer int8 (to
show what each backbone costs), this model's own encoder and its encoder with every head
(fp32 and int8: what the heads cost, and what MANO, placement, the serving graph and the
int8 model's quantise / dequantise pairs around its float islands add after them),
MANO + placement + projection on their own (the int8 model's float island), and
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

import litert_timing  # benchmarks/, on the path when run as a script

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


def _keras_tflite(net, size, path, int8, images=None):
  """`net` (image [1, S, S, 3] -> tensors) as a .tflite file at `path`, in fp32 or
  full-integer int8 calibrated on `images` (uint8; uniform noise if None, as the image's
  scale is all the bare backbones' int8 ranges depend on)."""
  import keras
  import tensorflow as tf
  # Through a SavedModel written by Keras' ExportArchive, as the exporter converts the
  # full model: it tracks Keras 3 variables so that the converter can freeze them
  # (from a bare concrete function, int8 calibration fails on READ_VARIABLE).
  archive = keras.export.ExportArchive()
  archive.track(net)
  signature = [tf.TensorSpec((1, size, size, 3), tf.float32)]
  archive.add_endpoint("serve", tf.function(lambda x: net(x, training=False),
                                            input_signature=signature), signature)
  saved = path[:-len(".tflite")] + "_saved_model"
  archive.write_out(saved, verbose=False)
  converter = tf.lite.TFLiteConverter.from_saved_model(saved)
  if int8:
    samples = (np.random.default_rng(0).uniform(0, 255, (16, size, size, 3)) if images is None
               else images / 255.0).astype(np.float32)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([sample[None]] for sample in samples)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
  with open(path, "wb") as f:
    f.write(converter.convert())
  return path


def _backbone_tflite(name, size, directory, int8=False):
  """The bare backbone (ImageNet weights for Lite0, random B0) as a .tflite file."""
  import keras

  from hand_tf.model.encoder import build_backbone
  net = build_backbone(name, "imagenet" if name == "lite0" else None, size)
  backbone = keras.Sequential([net, keras.layers.GlobalAveragePooling2D()])
  return _keras_tflite(backbone, size, os.path.join(
      directory, f"{name}{'_int8' if int8 else ''}.tflite"), int8)


def _parts_tflite(model, backbone, size, directory, images, int8):
  """The model's own encoder, and its encoder with every head (no MANO, placement or
  serving), as .tflite files: the full graph's time minus theirs is what the heads
  and the rest cost.  Returns {part: path}."""
  import keras
  # The model's own layers called on a new input (the encoder is a nested model, whose
  # input name a sub-model of the outer graph would hold twice).
  image = keras.Input((size, size, 3), name="pixels")
  pooled, low_level = model.get_layer(f"encoder_{backbone}")(image)
  heads = [model.get_layer("geometry_head")(pooled),
           model.get_layer("texture_light_head")(low_level)]
  nets = {"encoder": keras.Model(image, pooled),
          "encoder + heads": keras.Model(image, keras.tree.flatten(heads))}
  tag = "_int8" if int8 else ""
  return {part: _keras_tflite(net, size, os.path.join(
      directory, f"part_{part.replace(' + ', '_')}{tag}.tflite"), int8, images)
      for part, net in nets.items()}


def _float_island_tflite(model, directory):
  """The model's MANO, placement and projection alone (the float island of the int8
  model), fed what the geometry head outputs, as a float .tflite file."""
  import tensorflow as tf
  place = model.get_layer("place_hand")
  specs = [tf.TensorSpec((1,) + tuple(t.shape[1:]), tf.float32) for t in place.input]
  island = tf.function(lambda *inputs: place(*inputs), input_signature=specs)
  path = os.path.join(directory, "part_float_island.tflite")
  with open(path, "wb") as f:
    f.write(tf.lite.TFLiteConverter.from_concrete_functions(
        [island.get_concrete_function()], place).convert())
  return path


def _op_counts(path):
  """{op name: count} of a .tflite file's graph (before delegation)."""
  import collections

  from export.exporter import tflite_ops
  with open(path, "rb") as f:
    return collections.Counter(op for op, _ in tflite_ops(f.read()))


def _mobile_frame_ms(model_path, image, intrinsics, runs, threads):
  """Median per-stage ms of mobile_demo's pipeline on a 640 x 480 frame holding `image`;
  the median ms of the model alone (`image`, `intrinsics` through the pipeline's
  predictor) in the same rounds; and the drawn mesh's height in pixels (drawing time
  grows with it)."""
  import cv2

  from hand_tf.camera import project
  from mobile_demo.pipeline import HandPipeline
  frame = np.full((480, 640, 3), 60, np.uint8)
  frame[100:324, 200:424] = cv2.resize(image, (224, 224))
  pipeline = HandPipeline(model_path, threads, box=np.array([200, 100, 224, 224]))
  for _ in range(3):
    hands = pipeline.process(frame)[0]
  stages, model_ms = {}, []
  for _ in range(runs):
    start = time.perf_counter()
    pipeline.predictor.predict(image[None], intrinsics[None])
    model_ms.append(1000 * (time.perf_counter() - start))
    for name, ms in pipeline.process(frame)[2].items():
      stages.setdefault(name, []).append(ms)
  height = float(np.ptp(project(hands[0].vertices, hands[0].intrinsics)[:, 1]))
  return ({name: float(np.median(values)) for name, values in stages.items()},
          float(np.median(model_ms)), height)


def main(argv):
  del argv
  startup.quiet_tensorflow()
  import keras
  import tensorflow as tf
  tf.config.threading.set_intra_op_parallelism_threads(THREADS.value)
  tf.config.threading.set_inter_op_parallelism_threads(THREADS.value)
  from export.exporter import ARTEFACT, calibration_set, export_model
  from hand_tf.detection.mediapipe import models_dir
  from hand_tf.model.s2hand import ModelConfig, build_models
  from hand_tf.predictors import load_checkpoint_model, load_predictor
  from hand_tf.serving import InferenceModule

  if CHECKPOINT.value:
    config, model = load_checkpoint_model(CHECKPOINT.value)
  else:
    # Seeded: latency does not depend on the weights, but mobile_demo's drawing time
    # grows with the hand they predict (its size and how much of it overlaps).
    keras.utils.set_random_seed(0)
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
  onnx = load_predictor(os.path.join(directory, ARTEFACT["onnx"]), THREADS.value)
  onnx_ms = _median_ms(lambda: onnx.predict(image, k), RUNS.value)
  # Every LiteRT model, {label: path}, timed together below.
  litert = {f"LiteRT {kind[7:]}": os.path.join(directory, ARTEFACT[kind])
            for kind in ("tflite_fp32", "tflite_fp16", "tflite_int8")}
  backbones = {}
  for name in dict.fromkeys(("lite0", "b0", config.backbone)):
    for int8 in (False, True):
      label = f"LiteRT {'int8' if int8 else 'fp32'}, EfficientNet-{name.capitalize()} alone"
      litert[label] = backbones[(name, int8)] = _backbone_tflite(name, size, directory, int8)
  for int8 in (False, True):
    for part, path in _parts_tflite(model, config.backbone, size, directory, images,
                                    int8).items():
      litert[f"LiteRT {'int8' if int8 else 'fp32'}, this model's {part}"] = path
  island = "LiteRT fp32, MANO + placement + projection alone"
  litert[island] = _float_island_tflite(model, directory)
  for variant in ("full", "lite"):
    path = os.path.join(models_dir(), f"hand_landmark_{variant}.tflite")
    if os.path.isfile(path):
      litert[f"MediaPipe hand landmark {variant} (21 keypoints)"] = path
    else:
      print(f"MediaPipe model not found: {path}; run `make models`")
  litert_ms = litert_timing.interleaved_ms(litert, RUNS.value, THREADS.value)
  for label, path in litert.items():
    rows.append((label, litert_ms[label], os.path.getsize(path)))
    if label == "LiteRT int8":
      rows.append(("ONNX Runtime", onnx_ms, report["onnx"]["bytes"]))
  backbone = backbones[(config.backbone, False)]
  backbone_ms, backbone_int8_ms = (
      litert_ms[f"LiteRT {kind}, EfficientNet-{config.backbone.capitalize()} alone"]
      for kind in ("fp32", "int8"))

  print(f"\nbatch 1, {size} px, {THREADS.value} threads, median of {RUNS.value} runs")
  print(f"{'runtime':48s} {'ms':>8s} {'MB':>7s}")
  for name, ms, size_bytes in rows:
    mb = f"{size_bytes / 1e6:7.1f}" if size_bytes else "      -"
    print(f"{name:48s} {ms:8.1f} {mb}")
  fp32_ms, int8_ms = litert_ms["LiteRT fp32"], litert_ms["LiteRT int8"]
  print(f"full inference graph / bare backbone (LiteRT fp32): {fp32_ms / backbone_ms:.2f}x "
        f"time, {report['tflite_fp32']['bytes'] / os.path.getsize(backbone):.2f}x size")
  for variant in ("full", "lite"):
    reference = litert_ms.get(f"MediaPipe hand landmark {variant} (21 keypoints)")
    if reference:
      print(f"int8 mesh model / MediaPipe hand landmark {variant}: {int8_ms / reference:.2f}x "
            f"(the int8 {config.backbone} backbone alone: "
            f"{backbone_int8_ms / reference:.2f}x)")
  # Where the time after the backbone goes: the heads (int8 in the int8 model), then MANO,
  # placement and projection (float islands), the serving graph's input scaling and the
  # quantise / dequantise pairs between them.
  islands = _op_counts(os.path.join(directory, ARTEFACT["tflite_int8"]))
  for kind in ("fp32", "int8"):
    encoder_ms = litert_ms[f"LiteRT {kind}, this model's encoder"]
    with_heads_ms = litert_ms[f"LiteRT {kind}, this model's encoder + heads"]
    heads_ms = with_heads_ms - encoder_ms
    rest_ms = litert_ms[f"LiteRT {kind}"] - with_heads_ms
    print(f"after the backbone ({kind}): {heads_ms + rest_ms:.2f} ms = "
          f"{100 * (heads_ms + rest_ms) / encoder_ms:.0f}% of the encoder's {encoder_ms:.2f} "
          f"ms; heads {heads_ms:.2f} ms ({100 * heads_ms / encoder_ms:.0f}%), MANO + "
          f"placement + serving{' + quantise/dequantise' if kind == 'int8' else ''} "
          f"{rest_ms:.2f} ms "
          f"({100 * rest_ms / encoder_ms:.0f}%)")
  fp32_encoder_ms = litert_ms["LiteRT fp32, this model's encoder"]
  print(f"int8 model: {islands['QUANTIZE']} QUANTIZE and {islands['DEQUANTIZE']} DEQUANTIZE "
        f"ops around its float islands, {sum(islands.values())} ops in all; MANO + "
        f"placement + projection on their own: {litert_ms[island]:.2f} ms "
        f"({100 * litert_ms[island] / fp32_encoder_ms:.0f}% of the fp32 encoder's)")
  stages, model_ms, height = _mobile_frame_ms(
      os.path.join(directory, ARTEFACT["tflite_int8"]), images[0], intrinsics[0],
      RUNS.value, THREADS.value)
  print(f"mobile_demo per frame (640 x 480, int8, fixed box, mesh {height:.0f} px tall), ms: "
        + ", ".join(f"{name[:-3]} {ms:.1f}" for name, ms in stages.items())
        + f"; the model alone {model_ms:.1f} in the same rounds; total / model "
        f"{stages['total_ms'] / model_ms:.2f}x")
  print("parity (vertex difference to Keras, mm; max for float, mean for fp16/int8): "
        + ", ".join(f"{k} {v['outputs']['vertices'][v['outputs']['vertices']['gate']]:.3f}"
                    for k, v in report.items()))


if __name__ == "__main__":
  startup.run(main)
