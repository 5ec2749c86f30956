"""Per-frame hand reconstruction as an app would run it: detect, crop, infer, draw.

Runs the exported `.tflite` with ai-edge-litert's Interpreter (the LiteRT runtime that
Android ships, with the XNNPACK CPU delegate it applies by default).  The hand is found
by MediaPipe's palm detector + landmark model (`hand_tf.detection.mediapipe`) or
given as a fixed box.  Every hand found is reconstructed (left ones through the mirror);
when detection fails on a frame the previous frame's boxes are kept, as MediaPipe's
tracker does.
"""

import dataclasses
import time
from typing import Dict, Optional

import numpy as np

from hand_tf import reconstruct
from hand_tf.camera import default_intrinsics, project
from hand_tf.data import crops
from hand_tf.io import check_image_size
from hand_tf.predictors import TFLitePredictor


class HandPipeline:
  """detect -> crop -> LiteRT -> overlay, with per-stage timings in milliseconds."""

  def __init__(self, model_path: str, num_threads: int = 2, detector=None,
               box: Optional[np.ndarray] = None, focal: Optional[float] = None,
               place_on_keypoints: bool = True, max_hands: int = 4, side: str = "right",
               refiner=None, tracker=None):
    """Args:
      model_path: exported `.tflite` (with `hand_mesh.json` beside it).
      num_threads: LiteRT CPU threads.
      detector: object with `detect_hands(image, max_hands) -> [DetectedHand]`
        (`hand_tf.detection.mediapipe`), or None to use `box` (or the whole frame).
      box: fixed square crop (x0, y0, side, side) in frame pixels.
      focal: focal length in pixels (default 2.5 x the longer frame side).
      place_on_keypoints: on frames where the detector found a hand, move the predicted
        hand rigidly onto its keypoints (`hand_tf.reconstruct.reconstruct`).
      max_hands: at most this many detected hands per frame.
      side: the side of the hand in `box` or the whole frame.
      refiner: a `hand_tf.refine.HandRefiner` to fit detected hands to their keypoints
        (needs TensorFlow), or None.
      tracker: a `mobile_demo.tracking.HandTracker` over `detector`, used for video
        frames (`process(..., video=True)`): hands followed from the previous frame.
    """
    self.predictor = TFLitePredictor(model_path, num_threads)
    self.faces = self.predictor.faces
    self.detector = detector
    self.fixed_box = None if box is None else np.asarray(box, np.float32)
    self.focal = focal
    self.place_on_keypoints = place_on_keypoints
    self.max_hands = max_hands
    self.side = side
    self.refiner = refiner
    self.tracker = tracker
    self._placement_filters = {}  # track id -> One-Euro filter of the hand's 3D position
    self._last_hands = []  # (box, side) of the hands last detected

  def _crops(self, frame, timings, video, fps):
    """[(box, keypoints, confidence, side, detection score, track id)] to reconstruct
    in `frame`; keypoints None unless detected on this frame."""
    if self.fixed_box is not None:
      box = crops.parse_box(self.fixed_box, *frame.shape[:2], "--box")
      return [(box, None, None, self.side, None, None)]
    if self.detector is not None:
      start = time.perf_counter()
      if video and self.tracker is not None:
        found = self.tracker(frame, fps)
      else:
        found = self.detector.detect_hands(frame, self.max_hands)
      timings["detect_ms"] = 1000 * (time.perf_counter() - start)
      if found:
        hands = [(crops.box_from_keypoints(h.keypoints), h.keypoints, h.confidence, h.side,
                  float(h.confidence[0]), h.track_id) for h in found]
        self._last_hands = [(box, side) for box, _, _, side, _, _ in hands]
        return hands
    if self._last_hands:
      return [(box, None, None, side, None, None) for box, side in self._last_hands]
    return [(crops.whole_image_box(*frame.shape[:2]), None, None, self.side, None, None)]

  def _smooth_placement(self, hands, track_ids, fps):
    """Each tracked hand moved rigidly to its One-Euro-filtered 3D position (mm, the
    same filter settings as the keypoints'): the placement's depth, fitted to noisy
    keypoints, is what shakes most in 3D (benchmarks/video_jitter.py)."""
    smoothed = []
    for hand, track_id in zip(hands, track_ids):
      if track_id is None:
        smoothed.append(hand)
        continue
      if track_id not in self._placement_filters:
        self._placement_filters[track_id] = self.tracker.smoothing(fps)
      points = np.concatenate([hand.joints3d, hand.vertices])
      points = self._placement_filters[track_id](1000.0 * points) / 1000.0
      joints3d = points[:len(hand.joints3d)].astype(np.float32)
      smoothed.append(dataclasses.replace(
          hand, vertices=points[len(hand.joints3d):].astype(np.float32), joints3d=joints3d,
          joints2d=project(joints3d, hand.intrinsics).astype(np.float32)))
    live = {t for t in track_ids if t is not None}
    self._placement_filters = {t: f for t, f in self._placement_filters.items() if t in live}
    return smoothed

  def process(self, frame: np.ndarray, draw: bool = True, video: bool = False,
              fps: float = 30.0):
    """frame: `[H, W, 3]` uint8 RGB -> ([reconstruct.Hand], annotated frame or None,
    timings).  `video`: the frame follows the previous one (the tracker may be used),
    at `fps` frames a second."""
    check_image_size(frame, "frame")
    timings: Dict[str, float] = {}
    start = time.perf_counter()
    to_crop = self._crops(frame, timings, video, fps)
    height, width = frame.shape[:2]
    k = default_intrinsics(height, width, self.focal)
    infer_start = time.perf_counter()
    hands = [reconstruct.reconstruct(self.predictor, frame, box, k, self.faces, keypoints,
                                     confidence, self.place_on_keypoints, side, score)
             for box, keypoints, confidence, side, score, _ in to_crop]
    if video and self.tracker is not None and self.tracker.smoothing is not None:
      hands = self._smooth_placement(hands, [c[-1] for c in to_crop], fps)
    timings["crop_infer_ms"] = 1000 * (time.perf_counter() - infer_start)
    if self.refiner is not None:
      refine_start = time.perf_counter()
      hands = self.refiner.refine(hands)
      timings["refine_ms"] = 1000 * (time.perf_counter() - refine_start)
    annotated = None
    if draw:
      draw_start = time.perf_counter()
      annotated = reconstruct.draw_hands(frame, hands)
      timings["draw_ms"] = 1000 * (time.perf_counter() - draw_start)
    timings["total_ms"] = 1000 * (time.perf_counter() - start)
    return hands, annotated, timings
