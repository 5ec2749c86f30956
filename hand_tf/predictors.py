"""Load a trained model in any shipped form and predict with one interface.

`load_predictor(path)` accepts a training checkpoint (prefix, or its run folder), a
SavedModel folder (the export's `saved_model/` or `saved_model/1/`), a `.tflite` file
(run with ai-edge-litert, the on-device interpreter) or a `.onnx` file (onnxruntime).
Each returns a `Predictor`: `predict(images, intrinsics)` with uint8 images
`[N, S, S, 3]` and K `[N, 3, 3]`, giving the numpy outputs of `hand_tf.serving`.
"""

import dataclasses
import glob
import os
from typing import Dict, Optional

import numpy as np

from hand_tf.contract import OUTPUT_NAMES, ModelFileError, read_mesh_file


def resolve_checkpoint(path: str) -> str:
  """A checkpoint prefix from a prefix or a run folder (newest stage of a schedule)."""
  import tensorflow as tf
  if os.path.isdir(path):
    for candidate in (path, *(os.path.join(path, s) for s in ("finetune", "3d", "2d"))):
      latest = tf.train.latest_checkpoint(candidate)
      if latest:
        return latest
    raise ModelFileError(f"{path}: no checkpoint in this folder")
  if not glob.glob(path + ".index"):
    raise ModelFileError(f"{path}: checkpoint not found (no {os.path.basename(path)}.index)")
  return path


def load_checkpoint_model(path: str, model_config=None):
  """Rebuilds the network of a checkpoint and restores it; returns (config, inference model).

  The network is described by `model_config.json` beside the checkpoint (written by the
  trainer) unless `model_config` is given.  A checkpoint whose variables do not fit the
  network is refused with the reason.
  """
  import tensorflow as tf

  from hand_tf.io import InputError
  from hand_tf.model.s2hand import build_models, read_run_config
  prefix = resolve_checkpoint(path)
  if model_config is None:
    try:
      model_config = read_run_config(os.path.dirname(prefix))
    except InputError as e:
      raise ModelFileError(str(e)) from e
  # The checkpoint holds every weight: no need to load (or download) the encoder's.
  _check_checkpoint_files(prefix)
  trained_size = checkpoint_input_size(prefix)
  if trained_size is not None and trained_size != model_config.image_size:
    raise ModelFileError(f"{prefix}: weights trained at {trained_size} px, but its "
                         f"model_config.json says image_size {model_config.image_size}: "
                         "the config was changed after training; restore its image_size")
  inference, training = build_models(dataclasses.replace(model_config, encoder_weights=None))
  try:
    status = tf.train.Checkpoint(model=training).read(prefix)
    status.expect_partial().assert_existing_objects_matched()
  except (tf.errors.OpError, IndexError) as e:  # reading the data failed (a truncated
    # shard raises IndexError "Read less bytes than requested"), not the structure
    raise ModelFileError(f"{prefix}: checkpoint damaged (truncated or corrupt .data file: "
                         f"{str(e).splitlines()[0][:200]}); use another checkpoint of the "
                         "run or retrain") from e
  except (AssertionError, ValueError) as e:
    raise ModelFileError(f"{prefix}: checkpoint does not match the model "
                         f"{model_config}: {str(e).splitlines()[0][:300]}") from e
  return model_config, inference


def checkpoint_input_size(prefix: str) -> Optional[int]:
  """The input size a checkpoint's weights were trained at (None: written before the
  trainer recorded it)."""
  import tensorflow as tf
  try:
    return int(tf.train.load_variable(prefix, "input_size/.ATTRIBUTES/VARIABLE_VALUE"))
  except (tf.errors.NotFoundError, ValueError):
    return None


def _check_checkpoint_files(prefix: str) -> None:
  """ModelFileError naming a checkpoint's missing data file (TensorFlow's own error
  names a shard but not what to do)."""
  shards = glob.glob(glob.escape(prefix) + ".data-*-of-*")
  if not shards:
    raise ModelFileError(f"{prefix}: checkpoint incomplete: no {os.path.basename(prefix)}"
                         ".data-* file beside its .index (copy it too)")


class Predictor:
  """`predict(images, intrinsics)`; `input_size` S; `faces` [1538, 3] of the mesh;
  `source`: what was loaded (the file, or the checkpoint with its stage and step)."""
  kind = "base"
  input_size: int
  faces: np.ndarray
  source: str = "<memory>"
  path: Optional[str] = None  # the file or checkpoint prefix loaded; None: built in memory

  def describe(self) -> str:
    """One line for logs: runtime, what was loaded, input size."""
    return f"{self.kind} {self.source}, {self.input_size} px input"

  def predict(self, images: np.ndarray, intrinsics: np.ndarray) -> Dict[str, np.ndarray]:
    raise NotImplementedError

  def _check(self, images, intrinsics):
    images = np.asarray(images)
    intrinsics = np.asarray(intrinsics, np.float32)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
      raise ValueError(f"images must be uint8 [N, H, W, 3], got {images.dtype} "
                       f"{images.shape}")
    if intrinsics.shape != (len(images), 3, 3):
      raise ValueError(f"intrinsics must be [{len(images)}, 3, 3], got {intrinsics.shape}")
    return images, intrinsics


class KerasPredictor(Predictor):
  kind = "checkpoint"

  def __init__(self, path: Optional[str] = None, model=None, image_size: Optional[int] = None):
    """From a checkpoint `path`, or an inference `model` in memory (e.g. while training)
    taking `image_size` inputs."""
    from hand_tf.serving import InferenceModule
    if path is not None:
      config, model = load_checkpoint_model(path)
      image_size = config.image_size
      prefix = resolve_checkpoint(path)
      self.path = prefix
      stage = os.path.basename(os.path.dirname(prefix))
      step = prefix.rsplit("-", 1)[-1]
      self.source = (f"{prefix} (step {step}" + (f", stage '{stage}')" if stage in
                                                  ("2d", "3d", "finetune") else ")"))
    self.input_size = image_size
    self.module = InferenceModule(model, image_size)
    self.faces = np.asarray(model.get_layer("place_hand").mano.faces, np.int32)
    self._fn = self.module.functions()[1]

  def predict(self, images, intrinsics):
    images, intrinsics = self._check(images, intrinsics)
    return {k: v.numpy() for k, v in self._fn(images, intrinsics).items()}


class SavedModelPredictor(Predictor):
  kind = "saved_model"

  def __init__(self, path: str):
    import tensorflow as tf
    if os.path.isdir(os.path.join(path, "1")):
      path = os.path.join(path, "1")  # TF Serving layout: version folders
    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
      raise ModelFileError(f"{path}: not a SavedModel (no saved_model.pb)")
    self.model = tf.saved_model.load(path)
    self._fn = self.model.signatures["serve_with_intrinsics"]
    self.input_size = int(self.model.input_size[0].numpy())
    self.faces = read_mesh_file(path)[0]

  def predict(self, images, intrinsics):
    images, intrinsics = self._check(images, intrinsics)
    return {k: v.numpy() for k, v in self._fn(images=images, intrinsics=intrinsics).items()}


class TFLitePredictor(Predictor):
  kind = "tflite"

  def __init__(self, path: str, num_threads: Optional[int] = 2):
    from ai_edge_litert.interpreter import Interpreter
    if not os.path.isfile(path):
      raise ModelFileError(f"{path}: TFLite model not found")
    try:
      self.interpreter = Interpreter(model_path=path, num_threads=num_threads)
    except ValueError as e:
      raise ModelFileError(f"{path}: not a valid TFLite model ({e})") from e
    self.runner = self.interpreter.get_signature_runner("serve_with_intrinsics")
    details = self.runner.get_input_details()["images"]
    self.input_size = int(details["shape"][1])
    self.faces = read_mesh_file(path)[0]
    # One call now: LiteRT applies its delegate (and prints that it did) on the first
    # run, which would otherwise land inside the caller's progress bar and first timing.
    self.runner(images=np.zeros(details["shape"], details["dtype"]),
                intrinsics=np.eye(3, dtype=np.float32)[None])

  def predict(self, images, intrinsics):
    images, intrinsics = self._check(images, intrinsics)
    rows = [self.runner(images=images[i:i + 1], intrinsics=intrinsics[i:i + 1])
            for i in range(len(images))]
    return {k: np.concatenate([r[k] for r in rows]) for k in OUTPUT_NAMES}


class OnnxPredictor(Predictor):
  kind = "onnx"

  def __init__(self, path: str, num_threads: Optional[int] = 2):
    import onnxruntime as ort
    if not os.path.isfile(path):
      raise ModelFileError(f"{path}: ONNX model not found")
    options = ort.SessionOptions()
    if num_threads:
      options.intra_op_num_threads = num_threads
    try:
      self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types
      raise ModelFileError(f"{path}: not a valid ONNX model ({e})") from e
    self.input_size = int(self.session.get_inputs()[0].shape[1])
    self.names = [o.name for o in self.session.get_outputs()]
    self.faces = read_mesh_file(path)[0]

  def predict(self, images, intrinsics):
    images, intrinsics = self._check(images, intrinsics)
    rows = []
    for i in range(len(images)):
      values = self.session.run(None, {"images": images[i:i + 1],
                                       "intrinsics": intrinsics[i:i + 1]})
      rows.append(dict(zip(self.names, values)))
    return {k: np.concatenate([r[k] for r in rows]) for k in OUTPUT_NAMES}


def load_predictor(path: str, num_threads: Optional[int] = 2) -> Predictor:
  """Chooses the runtime from what `path` is (see the module docstring)."""
  if path.endswith(".tflite"):
    predictor = TFLitePredictor(path, num_threads)
  elif path.endswith(".onnx"):
    predictor = OnnxPredictor(path, num_threads)
  elif os.path.isdir(path) and (os.path.isfile(os.path.join(path, "saved_model.pb"))
                                or os.path.isfile(os.path.join(path, "1", "saved_model.pb"))):
    predictor = SavedModelPredictor(path)
  elif os.path.isdir(os.path.join(path, "saved_model")):
    predictor = SavedModelPredictor(os.path.join(path, "saved_model"))
  else:
    return KerasPredictor(path)  # names its checkpoint itself
  predictor.source = predictor.path = path
  return predictor
