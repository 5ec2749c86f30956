"""The Python API: load a model, give it a photo, get hands.

  from hand_tf import HandReconstructor
  reconstructor = HandReconstructor.load()  # the shipped model; or a path
  for hand in reconstructor("photo.jpg"):  # every hand MediaPipe finds, left and right
    print(hand.side, hand.joints3d)      # [21, 3] meters, camera frame
    hand.save(f"{hand.side}.obj")        # or .ply / .json

Any model form loads (`.tflite`, `.onnx`: no TensorFlow needed; a SavedModel or a
training checkpoint: TensorFlow).  Images are file paths or RGB uint8 arrays.
"""

import os
from typing import List, Optional, Sequence

import numpy as np

from hand_tf import camera, reconstruct, shipped
from hand_tf.data import crops
from hand_tf.io import InputError, check_image_size, read_image
from hand_tf.reconstruct import Hand, draw_hands

__all__ = ["Hand", "HandReconstructor", "draw_hands"]
# Where `HandReconstructor.load()` looks when given no path.
MODEL_VARIABLE = "HAND_TF_MODEL"


def load_refiner(model_path: Optional[str]):
  """`hand_tf.refine.for_model(model_path)`, loading TensorFlow quietly; InputError
  saying what to install when TensorFlow is not there (the deploy install)."""
  from hand_tf.startup import quiet_tensorflow
  quiet_tensorflow()
  try:
    from hand_tf import refine
  except ImportError as e:
    raise InputError(f"refinement needs TensorFlow ({e}): pip install 'hand-tf[train]'"
                     ) from None
  return refine.for_model(model_path)


class HandReconstructor:
  """A loaded model plus, on demand, MediaPipe's hand detector (both on CPU)."""

  def __init__(self, predictor, num_threads: int = 2):
    self.predictor = predictor
    self.num_threads = num_threads
    self._detector = None
    self._refiner = None

  @classmethod
  def load(cls, path: Optional[str] = None, num_threads: int = 2) -> "HandReconstructor":
    """Loads a model file or folder (default: the path in $HAND_TF_MODEL, else the
    model shipped in the package, `hand_tf.shipped`).

    Raises:
      InputError: no model anywhere (a source tree without the shipped model), or the
        model cannot be read.
    """
    path = path or os.environ.get(MODEL_VARIABLE) or shipped.model_path()
    from hand_tf.predictors import load_predictor
    if not path.endswith((".tflite", ".onnx")):
      from hand_tf.startup import quiet_tensorflow
      quiet_tensorflow()
    return cls(load_predictor(os.fspath(path), num_threads), num_threads)

  @property
  def input_size(self) -> int:
    return self.predictor.input_size

  def describe(self) -> str:
    return self.predictor.describe()

  def caveat(self) -> Optional[str]:
    """One line on what this model is not (small, untested, or losing to the template
    hand on its recorded held-out set), or None: see `contract.model_caveat`."""
    from hand_tf.contract import model_caveat, read_held_out
    path = self.predictor.path
    return model_caveat(self.input_size, read_held_out(path) if path else None)

  @property
  def detector(self):
    """MediaPipe's hand detector, loaded on first use."""
    if self._detector is None:
      from hand_tf.detection.mediapipe import MediaPipeHandDetector
      self._detector = MediaPipeHandDetector(num_threads=self.num_threads)
    return self._detector

  def detect(self, image: np.ndarray):
    """(keypoints [21, 2], confidence [21]) of the most confident hand in `image`."""
    return self.detector.detect(image)

  def refine(self, hands: Sequence[Hand], keypoints=None, confidence=None) -> List[Hand]:
    """Test-time refinement: each hand fitted to its keypoints (`hand_tf.refine`, the
    hands of a call at once).  Needs TensorFlow (the `train` extra).

    Args:
      hands: what this reconstructor returned.
      keypoints, confidence: per hand [21, 2] image pixels and [21]; default each hand's
        detected keypoints (hands without any come back unchanged).

    Raises:
      InputError: TensorFlow is not installed.
    """
    if self._refiner is None:
      self._refiner = load_refiner(self.predictor.path)
    return self._refiner.refine(hands, keypoints, confidence)

  def __call__(self, image, detect: bool = True, box: Optional[Sequence[float]] = None,
               keypoints: Optional[np.ndarray] = None,
               confidence: Optional[np.ndarray] = None,
               intrinsics: Optional[np.ndarray] = None,
               place_on_keypoints: bool = True, side: str = "right",
               max_hands: int = 4, refine: bool = False) -> List[Hand]:
    """Reconstructs the hands in `image`.

    Args:
      image: a file path, or an [H, W, 3] uint8 RGB array.
      detect: find every hand with MediaPipe, left and right (ignored when `box` or
        `keypoints` is given).
      box: square crop (x0, y0, side, side) in image pixels of the one hand.
      keypoints, confidence: [21, 2] keypoints (image pixels) and [21] confidences of
        the one hand from your own detector; they place the crop (unless `box`) and the
        hand.
      intrinsics: [3, 3] K of the image; default `camera.default_intrinsics`.
      place_on_keypoints: move each hand rigidly onto its keypoints when there are any.
      side: "right" or "left", the side of the hand given by `box` or `keypoints`
        (detected hands carry the side the detector saw).
      max_hands: at most this many detected hands.
      refine: fit each hand to its keypoints afterwards (`refine`).

    Returns:
      The hands, most confident first: every hand found when detecting ([] when there is
      none); otherwise the one hand in `box`, at `keypoints` or filling the image.
    """
    if isinstance(image, (str, os.PathLike)):
      image = read_image(os.fspath(image))
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
      raise InputError(f"image must be a path or uint8 [H, W, 3] RGB, got {image.dtype} "
                       f"{image.shape}")
    check_image_size(image)
    height, width = image.shape[:2]
    k = (camera.default_intrinsics(height, width) if intrinsics is None
         else camera.check_intrinsics(intrinsics, "intrinsics", height, width))
    faces = self.predictor.faces
    if keypoints is None and box is None and detect:
      hands = [reconstruct.reconstruct(
          self.predictor, image, crops.box_from_keypoints(found.keypoints), k, faces,
          found.keypoints, found.confidence, place_on_keypoints, found.side,
          float(found.confidence[0])) for found in self.detector.detect_hands(image, max_hands)]
    else:
      if box is not None:
        box = crops.parse_box(box, height, width)
      elif keypoints is not None:
        box = crops.box_from_keypoints(keypoints, confidence)
        if box is None:
          raise InputError("the keypoints given have fewer than 3 confident points")
      else:
        box = crops.whole_image_box(height, width)
      hands = [reconstruct.reconstruct(self.predictor, image, box, k, faces, keypoints,
                                       confidence, place_on_keypoints, side)]
    return self.refine(hands) if refine and hands else hands
