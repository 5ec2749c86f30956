"""Per-frame hand reconstruction as an app would run it: detect, crop, infer, draw.

Runs the exported `.tflite` with ai-edge-litert's Interpreter (the LiteRT runtime that
Android ships, with the XNNPACK CPU delegate it applies by default).  The hand is found
by MediaPipe's palm detector + landmark model (`hand_tf.detection.mediapipe`) or
given as a fixed box; when detection fails on a frame the previous frame's box is kept,
as MediaPipe's tracker does.
"""

import time
from typing import Dict, Optional

import numpy as np

from hand_tf import reconstruct
from hand_tf.camera import default_intrinsics
from hand_tf.data import crops
from hand_tf.io import check_image_size
from hand_tf.predictors import TFLitePredictor


class HandPipeline:
  """detect -> crop -> LiteRT -> overlay, with per-stage timings in milliseconds."""

  def __init__(self, model_path: str, num_threads: int = 2, detector=None,
               box: Optional[np.ndarray] = None, focal: Optional[float] = None,
               place_on_keypoints: bool = True):
    """Args:
      model_path: exported `.tflite` (with `hand_mesh.json` beside it).
      num_threads: LiteRT CPU threads.
      detector: object with `detect(image) -> (keypoints [21, 2], confidence [21])`, or
        None to use `box` (or the whole frame).
      box: fixed square crop (x0, y0, side, side) in frame pixels.
      focal: focal length in pixels (default 2.5 x the longer frame side).
      place_on_keypoints: on frames where the detector found the hand, move the predicted
        hand rigidly onto its keypoints (`hand_tf.reconstruct.reconstruct`).
    """
    self.predictor = TFLitePredictor(model_path, num_threads)
    self.faces = self.predictor.faces
    self.detector = detector
    self.fixed_box = None if box is None else np.asarray(box, np.float32)
    self.focal = focal
    self.place_on_keypoints = place_on_keypoints
    self._last_box = None

  def _box(self, frame, timings):
    """(box, keypoints, confidence); keypoints None unless detected on this frame."""
    if self.fixed_box is not None:
      return crops.parse_box(self.fixed_box, *frame.shape[:2], "--box"), None, None
    if self.detector is not None:
      start = time.perf_counter()
      keypoints, confidence = self.detector.detect(frame)
      box = crops.box_from_keypoints(keypoints, confidence)
      timings["detect_ms"] = 1000 * (time.perf_counter() - start)
      if box is not None:
        self._last_box = box
        return box, keypoints, confidence
    if self._last_box is not None:
      return self._last_box, None, None
    return crops.whole_image_box(*frame.shape[:2]), None, None

  def process(self, frame: np.ndarray, draw: bool = True):
    """frame: `[H, W, 3]` uint8 RGB -> (reconstruct.Hand, annotated frame or None, timings)."""
    check_image_size(frame, "frame")
    timings: Dict[str, float] = {}
    start = time.perf_counter()
    box, keypoints, confidence = self._box(frame, timings)
    height, width = frame.shape[:2]
    k = default_intrinsics(height, width, self.focal)
    infer_start = time.perf_counter()
    result = reconstruct.reconstruct(self.predictor, frame, box, k, self.faces, keypoints,
                                     confidence, self.place_on_keypoints)
    timings["crop_infer_ms"] = 1000 * (time.perf_counter() - infer_start)
    annotated = None
    if draw:
      draw_start = time.perf_counter()
      annotated = reconstruct.draw_overlay(frame, result, self.faces)
      timings["draw_ms"] = 1000 * (time.perf_counter() - draw_start)
    timings["total_ms"] = 1000 * (time.perf_counter() - start)
    return result, annotated, timings
