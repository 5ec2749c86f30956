"""Writes the inference graph as SavedModel, TFLite (fp32, fp16, int8) and ONNX, and
checks every artefact against the Keras model on the same images.

Layout of the output folder:
  saved_model/1/        TF Serving layout; signatures serving_default (images) and
                        serve_with_intrinsics (images, intrinsics)
  s2hand_fp32.tflite, s2hand_fp16.tflite, s2hand_int8.tflite
                        signature serve_with_intrinsics: images uint8 [1, S, S, 3],
                        intrinsics float32 [1, 3, 3]
  s2hand.onnx           inputs images, intrinsics as above
  hand_mesh.json        faces, keypoint names, output names and units
  parity.json           the parity check's figures
Each artefact is written under a temporary name and renamed into place, so an
interrupted export never leaves a half-written file under a final name.
"""

import os
import shutil
import tempfile
import warnings
from typing import Dict, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from hand_tf import contract
from hand_tf.io import write_json
from hand_tf.predictors import load_predictor
from hand_tf.serving import InferenceModule

FORMATS = ("saved_model", "tflite_fp32", "tflite_fp16", "tflite_int8", "onnx")
# Which vertex difference to the Keras model each artefact is held to, and its bound
# (mm).  Float artefacts are held to the largest: a conversion bug shows at one vertex.
# int8 rounding is noise, whose largest value over a few images swings with the weights
# (31-66 mm on untrained models of one config): it is held to the mean distance, which
# is stable (9-12 mm there; 6 mm on the demo's trained model; 33 mm when MANO and the
# camera heads ran in int8 too, see `_keeps_float`).  fp16 weights are rounding noise
# too: two demo models' largest difference was 2.9 and 5.9 mm, the second's mean 0.7 mm.
TOLERANCE = {"saved_model": ("max_vertex_mm", 0.01), "tflite_fp32": ("max_vertex_mm", 0.1),
             "onnx": ("max_vertex_mm", 0.1), "tflite_fp16": ("mean_vertex_mm", 2.0),
             "tflite_int8": ("mean_vertex_mm", 20.0)}
ARTEFACT = {"saved_model": "saved_model", "tflite_fp32": "s2hand_fp32.tflite",
            "tflite_fp16": "s2hand_fp16.tflite", "tflite_int8": "s2hand_int8.tflite",
            "onnx": "s2hand.onnx"}


# The only op types the int8 model runs in int8: the network's layers (encoder, heads,
# texture branch), where the time goes.  Every other op (MANO's blend shapes, skinning
# and trigonometry, placement, projection) keeps its float kernel: quantising MANO alone
# moved a trained model's vertices by 51 mm, and everything together by 867 mm
# (measured on the demo's Lite0 model); an int8 divisor can also round to zero, which
# makes LiteRT's int8 DIV fail at run time.
INT8_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "MEAN", "RELU", "RELU6",
            "MAX_POOL_2D", "AVERAGE_POOL_2D", "PAD", "RESIZE_BILINEAR")


def _keeps_float(node_name: str) -> bool:
  """Whether a TFLite op (named by its first output) stays float in the int8 model."""
  # MANO's PCA and blend-shape products and the small MLPs that read pose, shape and
  # camera off the trunk are FULLY_CONNECTED ops like the encoder's; in int8 they moved
  # the demo model's vertices by 33 mm on average (6 mm when float) for 1.9 MB.
  return "place_hand" in node_name or (
      "geometry_head" in node_name and "trunk" not in node_name)


def _float_ops(float_model: bytes):
  """(op types, node names) of a float .tflite that the int8 model keeps in float."""
  from ai_edge_litert.interpreter import Interpreter
  interpreter = Interpreter(model_content=float_model)
  names = {t["index"]: t["name"] for t in interpreter.get_tensor_details()}
  # _get_ops_details is LiteRT's own op listing (no public equivalent).
  ops = interpreter._get_ops_details()  # noqa: SLF001
  types = sorted({op["op_name"] for op in ops} - set(INT8_OPS))
  nodes = sorted({names[op["outputs"][0]] for op in ops
                  if len(op["outputs"]) and _keeps_float(names[op["outputs"][0]])})
  return types, nodes


class ParityError(RuntimeError):
  pass


def _replace(tmp_path: str, final_path: str) -> None:
  """Renames into place; an existing folder is swapped out before it is deleted."""
  if os.path.isdir(final_path):
    old = final_path + ".old"
    shutil.rmtree(old, ignore_errors=True)
    os.replace(final_path, old)
    os.replace(tmp_path, final_path)
    shutil.rmtree(old)
  else:
    os.replace(tmp_path, final_path)


def _tflite(source_dir: str, kind: str, calibration: np.ndarray,
            calibration_k: np.ndarray, float_model: Optional[bytes] = None) -> bytes:
  """Converts `source_dir` to one TFLite kind; int8 reads its op list from `float_model`
  (the fp32 conversion of the same source; converted here when not given)."""
  converter = tf.lite.TFLiteConverter.from_saved_model(source_dir, ["serve_with_intrinsics"])
  if kind == "tflite_fp16":
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]
  elif kind == "tflite_int8":
    def representative():
      for image, k in zip(calibration, calibration_k):
        yield {"images": image[None], "intrinsics": k[None]}
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                                           tf.lite.OpsSet.TFLITE_BUILTINS]
    # TF's selective quantisation: int8 for `INT8_OPS` only.
    float_types, float_nodes = _float_ops(
        float_model or _tflite(source_dir, "tflite_fp32", calibration, calibration_k))
    # The debugger runs the deprecated tf.lite.Interpreter internally (its warning is
    # about TF's internals, not something the user can change).
    warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=representative,
        debug_options=tf.lite.experimental.QuantizationDebugOptions(
            denylisted_ops=float_types, denylisted_nodes=float_nodes))
    return debugger.get_nondebug_quantized_model()
  return converter.convert()


def _write_onnx(function, path: str) -> None:
  """tf.function -> ONNX with inputs and outputs named as the signature's."""
  import logging

  # tf2onnx logs its versions, its progress and a traceback when one of its optional
  # graph rewrites does not apply (its einsum rewrite cannot read '...'), and the TF
  # functions it calls log deprecations: none of it concerns the user, and the
  # conversion is parity-checked.
  logging.getLogger("tf2onnx").setLevel(logging.ERROR)
  tf_level = tf.get_logger().level
  tf.get_logger().setLevel(logging.ERROR)
  try:
    _convert_to_onnx(function, path)
  finally:
    tf.get_logger().setLevel(tf_level)


def _convert_to_onnx(function, path: str) -> None:
  import tf2onnx
  from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2
  concrete = function.get_concrete_function()
  # Freezing turns both the weights and the captured MANO arrays into constants;
  # tf2onnx alone would make the captured arrays extra graph inputs.
  frozen = convert_variables_to_constants_v2(concrete)
  # tf.nest flattens dict outputs in sorted key order, as the frozen function lists them.
  outputs = dict(zip(sorted(concrete.structured_outputs), frozen.outputs))
  rename = {t.name: spec.name for t, spec in zip(frozen.inputs, function.input_signature)}
  rename.update({tensor.name: name for name, tensor in outputs.items()})
  proto, _ = tf2onnx.convert.from_graph_def(
      frozen.graph.as_graph_def(), input_names=[t.name for t in frozen.inputs],
      output_names=[t.name for t in outputs.values()], opset=17)
  for node in proto.graph.node:
    node.input[:] = [rename.get(n, n) for n in node.input]
    node.output[:] = [rename.get(n, n) for n in node.output]
  for value in list(proto.graph.input) + list(proto.graph.output):
    value.name = rename.get(value.name, value.name)
  with open(path, "wb") as f:
    f.write(proto.SerializeToString())


def export_model(model, image_size: int, out_dir: str, formats: Sequence[str],
                 images: np.ndarray, intrinsics: np.ndarray, parity_count: int = 4,
                 log=print, held_out: Optional[dict] = None) -> Dict[str, dict]:
  """Exports `model` (the Keras inference model) and checks parity.

  Args:
    model: inference model of `hand_tf.model.s2hand.build_models`.
    image_size: its input side S.
    out_dir: output folder (created).
    formats: subset of FORMATS.
    images: `[M, S, S, 3]` uint8 images: int8 calibration and parity inputs.
    intrinsics: `[M, 3, 3]` their K.
    parity_count: how many of the images the parity check runs.
    log: where progress lines go.
    held_out: the model's recorded held-out figures (`hand_tf.contract.read_held_out`),
      carried into `hand_mesh.json` so that its users are told how it did.

  Returns:
    {format: {"path", "bytes", "max_vertex_mm", "mean_vertex_mm", "max_joints2d_px",
    "gate", "tolerance_mm"}}: `gate` names the figure held to `tolerance_mm`.

  Raises:
    ParityError: an artefact differs from the Keras model beyond its tolerance (the
      artefact is kept so it can be inspected; parity.json says which).
  """
  unknown = set(formats) - set(FORMATS)
  if unknown:
    raise ValueError(f"unknown formats {sorted(unknown)}; choose from {FORMATS}")
  os.makedirs(out_dir, exist_ok=True)
  module = InferenceModule(model, image_size)

  def archive(batch, size, with_default_k):
    # Keras' ExportArchive tracks Keras 3 variables so that converters can freeze them.
    result = keras.export.ExportArchive()
    result.track(model)
    result.add_variable_collection("input_size", [tf.Variable(image_size, trainable=False)])
    serve, serve_k = module.functions(batch, size, size)
    if with_default_k:
      result.add_endpoint("serving_default", serve, serve.input_signature)
    result.add_endpoint("serve_with_intrinsics", serve_k, serve_k.input_signature)
    return result, serve_k

  contract.write_mesh_file(out_dir, model.get_layer("place_hand").mano.faces, image_size,
                           held_out)
  report = {}
  with tempfile.TemporaryDirectory(dir=out_dir, prefix=".export-") as tmp:
    if "saved_model" in formats:
      staged = os.path.join(tmp, "saved_model")
      archive(None, None, True)[0].write_out(os.path.join(staged, "1"), verbose=False)
      _replace(staged, os.path.join(out_dir, "saved_model"))
      log(f"wrote {out_dir}/saved_model/1")
    lite = [f for f in formats if f.startswith("tflite")]
    if lite:
      source = os.path.join(tmp, "fixed_shape")
      fixed, _ = archive(1, image_size, False)
      fixed.write_out(source, verbose=False)
      float_model = None
      for kind in sorted(lite, key=FORMATS.index):  # fp32 first: int8 reuses it
        data = _tflite(source, kind, images, intrinsics, float_model)
        if kind == "tflite_fp32":
          float_model = data
        staged = os.path.join(tmp, ARTEFACT[kind])
        with open(staged, "wb") as f:
          f.write(data)
        _replace(staged, os.path.join(out_dir, ARTEFACT[kind]))
        log(f"wrote {out_dir}/{ARTEFACT[kind]} ({len(data) / 1e6:.1f} MB)")
    if "onnx" in formats:
      staged = os.path.join(tmp, ARTEFACT["onnx"])
      _write_onnx(module.functions(1, image_size, image_size)[1], staged)
      _replace(staged, os.path.join(out_dir, ARTEFACT["onnx"]))
      log(f"wrote {out_dir}/{ARTEFACT['onnx']}")

  parity_images, parity_k = images[:parity_count], intrinsics[:parity_count]
  serve_k = module.functions()[1]
  reference = {k: v.numpy() for k, v in serve_k(parity_images, parity_k).items()}
  failures = []
  for kind in formats:
    path = os.path.join(out_dir, ARTEFACT[kind])
    got = load_predictor(path).predict(parity_images, parity_k)
    difference = got["vertices"] - reference["vertices"]
    size = (sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)
            if os.path.isdir(path) else os.path.getsize(path))
    gate, tolerance = TOLERANCE[kind]
    row = {"path": path, "bytes": size,
           "max_vertex_mm": float(np.abs(difference).max() * 1000),
           "mean_vertex_mm": float(np.linalg.norm(difference, axis=-1).mean() * 1000),
           "max_joints2d_px": float(np.abs(got["joints2d"] - reference["joints2d"]).max()),
           "gate": gate, "tolerance_mm": tolerance}
    report[kind] = row
    ok = row[gate] <= tolerance
    log(f"parity {kind:12s} vertices max {row['max_vertex_mm']:8.4f} mm, mean "
        f"{row['mean_vertex_mm']:8.4f} mm ({gate.split('_')[0]} <= {tolerance} mm), "
        f"joints2d max {row['max_joints2d_px']:.3f} px: {'ok' if ok else 'FAILED'}")
    if not ok:
      failures.append(kind)
  write_json(os.path.join(out_dir, "parity.json"), report)
  if failures:
    raise ParityError(f"{failures}: beyond parity tolerance; see {out_dir}/parity.json")
  return report


def calibration_set(image_size, count, root=None, mano_model_path=None):
  """`[M, S, S, 3]` uint8 images and `[M, 3, 3]` K (synthetic unless `root` is given)."""
  from hand_tf.data.crops import crop_image
  from hand_tf.data.freihand import read_freihand
  from hand_tf.io import read_image
  from hand_tf.synthetic.dataset import synthesize
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
