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
  hand_model.npz        the hand model (MANO's arrays) the network was trained with, for
                        test-time refinement (`hand_tf.refine`)
  parity.json           the parity check's figures
The set is built and parity-checked in a staging folder and then switched into place,
so an interrupted export never leaves a mix of old and new files (see `export_model`).
"""

import functools
import os
import shutil
import tempfile
import warnings
from typing import Dict, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from export import parity
from hand_tf import contract, io
from hand_tf.predictors import load_predictor
from hand_tf.serving import InferenceModule
from hand_tf.startup import native_output_muted
from mano_tf.layer import get_mano_model
from mano_tf.model_file import save_mano_model

FORMATS = ("saved_model", "tflite_fp32", "tflite_fp16", "tflite_int8", "onnx")
PARITY_FILE = "parity.json"
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


def tflite_ops(model: bytes):
  """[(op type, name of its first output)] of a .tflite's ops, in order."""
  from ai_edge_litert.interpreter import Interpreter
  interpreter = Interpreter(model_content=model)
  names = {t["index"]: t["name"] for t in interpreter.get_tensor_details()}
  # _get_ops_details is LiteRT's own op listing (no public equivalent).
  ops = interpreter._get_ops_details()  # noqa: SLF001
  return [(op["op_name"], names[op["outputs"][0]]) for op in ops if len(op["outputs"])]


def float_ops(float_model: bytes):
  """(op types, node names) of a float .tflite that the int8 model keeps in float."""
  ops = tflite_ops(float_model)
  types = sorted({kind for kind, _ in ops} - set(INT8_OPS))
  nodes = sorted({name for _, name in ops if _keeps_float(name)})
  return types, nodes


class ParityError(RuntimeError):
  pass


def int8_debugger(source_dir: str, calibration: np.ndarray, calibration_k: np.ndarray,
                  float_model: bytes, extra_float_nodes: Sequence[str] = ()):
  """TF's quantisation debugger over `source_dir` (an `export_archive` with batch 1),
  calibrated as the int8 export is: int8 for `INT8_OPS` only (the op list read from
  `float_model`, its fp32 conversion), `extra_float_nodes` float too.  Its
  `get_nondebug_quantized_model()` is the int8 model; `run()` gathers per-layer errors
  over the calibration set."""
  from ai_edge_litert.interpreter import Interpreter
  converter = tf.lite.TFLiteConverter.from_saved_model(source_dir, ["serve_with_intrinsics"])

  def representative():
    for image, k in zip(calibration, calibration_k):
      yield {"images": image[None], "intrinsics": k[None]}

  order = [d["name"] for d in Interpreter(model_content=float_model).get_input_details()]

  def in_input_order():  # what `run()` feeds: a list in the model's input order
    for image, k in zip(calibration, calibration_k):
      yield [image[None] if name.endswith("images:0") else k[None].astype(np.float32)
             for name in order]

  converter.optimizations = [tf.lite.Optimize.DEFAULT]
  converter.representative_dataset = representative
  converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                                         tf.lite.OpsSet.TFLITE_BUILTINS]
  float_types, float_nodes = float_ops(float_model)
  # The debugger runs the deprecated tf.lite.Interpreter internally (its warning is
  # about TF's internals, not something the user can change).
  warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
  # The quantiser prints its settings ("fully_quantize: 0, inference_type: 6, ...")
  # from C++ for every model it writes: not for the user.
  with native_output_muted(1, 2):
    return tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=in_input_order,
        debug_options=tf.lite.experimental.QuantizationDebugOptions(
            denylisted_ops=float_types,
            denylisted_nodes=sorted(set(float_nodes) | set(extra_float_nodes))))


def convert_tflite(source_dir: str, kind: str, calibration: np.ndarray,
                   calibration_k: np.ndarray, float_model: Optional[bytes] = None,
                   extra_float_nodes: Sequence[str] = ()) -> bytes:
  """Converts `source_dir` (an `export_archive` with batch 1) to one TFLite kind; int8
  reads its op list from `float_model` (the fp32 conversion of the same source;
  converted here when not given) and also keeps `extra_float_nodes` float."""
  converter = tf.lite.TFLiteConverter.from_saved_model(source_dir, ["serve_with_intrinsics"])
  if kind == "tflite_fp16":
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]
  elif kind == "tflite_int8":
    debugger = int8_debugger(
        source_dir, calibration, calibration_k,
        float_model or convert_tflite(source_dir, "tflite_fp32", calibration, calibration_k),
        extra_float_nodes)
    with native_output_muted(1, 2):
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

  The whole set is built and checked in a staging folder beside `out_dir`, then
  switched in (`hand_tf.io.switch_into_place`): an interrupted or failed export leaves
  `out_dir` as it was (the previous export, complete, or nothing).

  Args:
    model: inference model of `hand_tf.model.s2hand.build_models`.
    image_size: its input side S.
    out_dir: output folder: new, or holding a previous export (nothing else).
    formats: subset of FORMATS.
    images: `[M, S, S, 3]` uint8 images: int8 calibration and parity inputs.
    intrinsics: `[M, 3, 3]` their K.
    parity_count: how many of the images the parity check runs.
    log: where progress lines go.
    held_out: the model's recorded held-out figures (`hand_tf.contract.read_held_out`),
      carried into `hand_mesh.json` so that its users are told how it did.

  Returns:
    {format: {"file", "bytes", "ok", "outputs": {output: `parity.compare` row}}}, also
    written as `parity.json`.

  Raises:
    ParityError: an artefact differs from the Keras model beyond a tolerance; the set is
      then left in `OUT_DIR.failed` for inspection, and `out_dir` is untouched.
    InputError: `out_dir` holds files that are not an export's.
  """
  unknown = set(formats) - set(FORMATS)
  if unknown:
    raise ValueError(f"unknown formats {sorted(unknown)}; choose from {FORMATS}")
  check_output_folder(out_dir)
  staging = io.staging_folder(out_dir)
  try:
    _write_artefacts(model, image_size, staging, formats, images, intrinsics, log, held_out)
    report = _check_parity(model, image_size, staging, formats, images[:parity_count],
                           intrinsics[:parity_count], log)
    io.write_json(os.path.join(staging, PARITY_FILE), report)
  except BaseException:
    shutil.rmtree(staging, ignore_errors=True)
    raise
  failures = [kind for kind, row in report.items() if not row["ok"]]
  if failures:
    failed = os.path.normpath(out_dir) + ".failed"
    shutil.rmtree(failed, ignore_errors=True)
    os.rename(staging, failed)
    raise ParityError(f"{failures} beyond parity tolerance: kept for inspection in {failed} "
                      f"(see its {PARITY_FILE}); {out_dir} is unchanged")
  io.switch_into_place(staging, out_dir)
  log(f"wrote {out_dir}: {', '.join(ARTEFACT[k] for k in formats)}, {contract.MESH_FILE}, "
      f"{contract.HAND_MODEL_FILE}, {PARITY_FILE}")
  return report


def check_output_folder(out_dir: str) -> None:
  """InputError if `out_dir` holds anything an export did not write (replacing the
  folder would delete it)."""
  if not os.path.isdir(out_dir):
    if os.path.exists(out_dir):
      raise io.InputError(f"{out_dir}: exists and is not a folder; choose another --out")
    return
  ours = set(ARTEFACT.values()) | {contract.MESH_FILE, contract.HAND_MODEL_FILE, PARITY_FILE}
  foreign = sorted(n for n in os.listdir(out_dir)
                   if n not in ours and not n.startswith((".export-", ".tmp-")))
  if foreign:
    raise io.InputError(f"{out_dir}: holds files an export did not write ({foreign[0]}, ...); "
                        "export into a new or empty folder")


def export_archive(model, module, image_size: int, batch: Optional[int],
                   size: Optional[int], with_default_k: bool):
  """The inference functions of `module` (an `InferenceModule` of `model`) for `batch`
  images of `size` px (None: any), as a Keras ExportArchive to write out."""
  # Keras' ExportArchive tracks Keras 3 variables so that converters can freeze them.
  result = keras.export.ExportArchive()
  result.track(model)
  result.add_variable_collection("input_size", [tf.Variable(image_size, trainable=False)])
  serve, serve_k = module.functions(batch, size, size)
  if with_default_k:
    result.add_endpoint("serving_default", serve, serve.input_signature)
  result.add_endpoint("serve_with_intrinsics", serve_k, serve_k.input_signature)
  return result


def _write_artefacts(model, image_size, folder, formats, images, intrinsics, log, held_out):
  module = InferenceModule(model, image_size)
  archive = functools.partial(export_archive, model, module, image_size)

  mano = model.get_layer("place_hand").mano
  contract.write_mesh_file(folder, mano.faces, image_size, held_out)
  save_mano_model(get_mano_model(mano.model_path, mano.side),
                  os.path.join(folder, contract.HAND_MODEL_FILE))
  if "saved_model" in formats:
    archive(None, None, True).write_out(os.path.join(folder, "saved_model", "1"),
                                           verbose=False)
    log("built saved_model/1")
  lite = [f for f in formats if f.startswith("tflite")]
  if lite:
    with tempfile.TemporaryDirectory(dir=folder, prefix=".work-") as work:
      archive(1, image_size, False).write_out(work, verbose=False)
      float_model = None
      for kind in sorted(lite, key=FORMATS.index):  # fp32 first: int8 reuses it
        data = convert_tflite(work, kind, images, intrinsics, float_model)
        if kind == "tflite_fp32":
          float_model = data
        with open(os.path.join(folder, ARTEFACT[kind]), "wb") as f:
          f.write(data)
        log(f"built {ARTEFACT[kind]} ({len(data) / 1e6:.1f} MB)")
  if "onnx" in formats:
    _write_onnx(module.functions(1, image_size, image_size)[1],
                os.path.join(folder, ARTEFACT["onnx"]))
    log(f"built {ARTEFACT['onnx']}")


def _check_parity(model, image_size, folder, formats, images, intrinsics, log):
  serve_k = InferenceModule(model, image_size).functions()[1]
  reference = {k: v.numpy() for k, v in serve_k(images, intrinsics).items()}
  report = {}
  for kind in formats:
    path = os.path.join(folder, ARTEFACT[kind])
    got = load_predictor(path).predict(images, intrinsics)
    size = (sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)
            if os.path.isdir(path) else os.path.getsize(path))
    outputs = parity.compare(kind, got, reference, image_size)
    ok = all(row["ok"] for row in outputs.values())
    report[kind] = {"file": ARTEFACT[kind], "bytes": size, "ok": ok, "outputs": outputs}
    log(f"parity {kind:12s} {'ok' if ok else 'FAILED'} ({parity.TOLERANCES[kind][0]} "
        f"|difference|): {parity.summary(outputs)}")
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
