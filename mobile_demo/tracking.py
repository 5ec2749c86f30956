"""Hands followed from frame to frame, as MediaPipe's tracking graph does.

The palm detector is the slow, jumpy part: on video, each hand's previous keypoints give
the next frame's landmark region directly (`MediaPipeHandDetector.track`), and the palm
detector runs only when a hand is lost (its landmark presence drops) or every
`redetect_every` frames (to pick up new hands).  Each hand's keypoints can be smoothed
with a One-Euro filter (Casiez et al., CHI 2012): a low-pass whose cutoff rises with the
keypoints' speed, so that a still hand stops shaking and a moving one lags little.
"""

import dataclasses
import math
from typing import List, Optional

import numpy as np


class OneEuroFilter:
  """One-Euro filter of an array signal (written here: a dozen lines, and no maintained
  package on PyPI offers it).

  Args:
    frequency: samples per second (the frame rate).
    min_cutoff: cutoff (Hz) at rest: lower smooths more.
    beta: how fast the cutoff rises with speed: higher lags less when moving.
    derivative_cutoff: cutoff (Hz) of the speed estimate.
  """

  def __init__(self, frequency: float, min_cutoff: float = 1.0, beta: float = 0.05,
               derivative_cutoff: float = 1.0):
    self.frequency = frequency
    self.min_cutoff = min_cutoff
    self.beta = beta
    self.derivative_cutoff = derivative_cutoff
    self._previous = None
    self._speed = None

  def _alpha(self, cutoff):
    tau = 1.0 / (2 * math.pi * cutoff)
    return 1.0 / (1.0 + tau * self.frequency)

  def __call__(self, value: np.ndarray) -> np.ndarray:
    value = np.asarray(value, np.float64)
    if self._previous is None:
      self._previous, self._speed = value, np.zeros_like(value)
      return value.astype(np.float32)
    speed = (value - self._previous) * self.frequency
    a = self._alpha(self.derivative_cutoff)
    self._speed = a * speed + (1 - a) * self._speed
    cutoff = self.min_cutoff + self.beta * np.abs(self._speed)
    a = self._alpha(cutoff)
    self._previous = a * value + (1 - a) * self._previous
    return self._previous.astype(np.float32)


@dataclasses.dataclass
class _Track:
  hand: object  # the DetectedHand last seen, its track_id set
  smoother: Optional[OneEuroFilter]


class HandTracker:
  """Per frame, the hands of a video: tracked from the previous frame's keypoints,
  re-detected when one is lost and every `redetect_every` frames.

  Args:
    detector: a `MediaPipeHandDetector` (`detect_hands` and `track`).
    max_hands: at most this many hands.
    redetect_every: run the palm detector at least this often (frames; 0: only when a
      hand is lost).
    smoothing: `frames per second -> OneEuroFilter`, a filter for each hand's keypoints,
      or None.
  """

  def __init__(self, detector, max_hands: int = 4, redetect_every: int = 30,
               smoothing=None):
    self.detector = detector
    self.max_hands = max_hands
    self.redetect_every = redetect_every
    self.smoothing = smoothing
    self._tracks: List[_Track] = []
    self._next_id = 0
    self._since_detection = 0
    self.detections = 0  # palm-detector runs, for the timings

  def __call__(self, frame: np.ndarray, fps: float = 30.0) -> list:
    """The hands in `frame` ([H, W, 3] uint8 RGB) of a video at `fps`: `DetectedHand`s,
    keypoints smoothed."""
    followed = []
    for track in self._tracks:
      hand = self.detector.track(frame, track.hand.keypoints, track.hand.side)
      if hand is not None:
        followed.append(_Track(dataclasses.replace(hand, track_id=track.hand.track_id),
                               track.smoother))
    due = self.redetect_every and self._since_detection + 1 >= self.redetect_every
    if len(followed) < len(self._tracks) or not self._tracks or due:
      found = self.detector.detect_hands(frame, self.max_hands)
      self.detections += 1
      self._since_detection = 0
      followed = self._match(followed, found, fps)
    else:
      self._since_detection += 1
    self._tracks = followed
    hands = []
    for track in followed:
      hand = track.hand
      if track.smoother is not None:
        hand = dataclasses.replace(hand, keypoints=track.smoother(hand.keypoints))
      hands.append(hand)
    return hands

  def _match(self, followed, found, fps):
    """Detected hands, each keeping the filter of the followed hand it overlaps."""
    tracks = []
    for hand in found:
      centre = hand.keypoints.mean(axis=0)
      size = np.ptp(hand.keypoints, axis=0).max()
      near = [t for t in followed
              if np.linalg.norm(t.hand.keypoints.mean(axis=0) - centre) < 0.5 * size]
      if near:
        track_id, smoother = near[0].hand.track_id, near[0].smoother
        followed.remove(near[0])
      else:  # a new hand
        track_id, smoother = self._next_id, self.smoothing(fps) if self.smoothing else None
        self._next_id += 1
      tracks.append(_Track(dataclasses.replace(hand, track_id=track_id), smoother))
    return tracks
