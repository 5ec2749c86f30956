"""An offline 2D hand detector: MediaPipe's palm detector and hand-landmark model on LiteRT.

The paper detects keypoints offline with OpenPose; the best detector available here is
MediaPipe's.  The `mediapipe` package cannot be installed beside TF 2.21 (it pins
protobuf < 5), and its newest wheels no longer ship the models, so `make models` (part
of the make targets' install step) downloads the `mediapipe==0.10.21` wheel with
`pip download --no-deps` and `python -m hand_tf.detection.mediapipe --extract WHEEL`
copies only these files out of it:

  palm_detection_{full,lite}.tflite  [1, 192, 192, 3] in [0, 1] -> 2016 anchors x 18
                                     (box + 7 keypoints) and 2016 scores (logits)
  hand_landmark_{full,lite}.tflite   [1, 224, 224, 3] in [0, 1] -> 63 landmark values
                                     (x, y in input pixels, z), presence probability,
                                     handedness, 63 world values

Nothing is downloaded at run time.  The pipeline follows MediaPipe's hand tracking
graph: letterbox the image to a square, detect palms (SSD anchors, sigmoid scores,
non-maximum suppression), turn each palm into a rotated square hand region (wrist to
middle-finger MCP pointing up, enlarged 2.6x and shifted towards the fingers), run the
landmark model on that crop and map the 21 landmarks back to image pixels.  MediaPipe's
landmark order is the FreiHAND/OpenPose order.  The landmark model also says which hand
it sees (handedness, P(right) for an unmirrored photo).

"Confidence" of a keypoint: MediaPipe predicts no per-joint confidence, so every
keypoint of a hand gets the hand-presence probability of the landmark model times the
palm detection score (both in [0, 1]); 0 where no palm is found or the hand
presence is below `min_presence` (MediaPipe's default 0.5).
"""

import dataclasses
import os
import shutil
import sys
import zipfile
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from hand_tf.io import InputError

MODEL_FILES = {
    "palm_detection_full.tflite": "mediapipe/modules/palm_detection/palm_detection_full.tflite",
    "palm_detection_lite.tflite": "mediapipe/modules/palm_detection/palm_detection_lite.tflite",
    "hand_landmark_full.tflite": "mediapipe/modules/hand_landmark/hand_landmark_full.tflite",
    "hand_landmark_lite.tflite": "mediapipe/modules/hand_landmark/hand_landmark_lite.tflite",
}
HOW_TO_GET = ("MediaPipe's hand models are missing. Run `make models` (it downloads the "
              "mediapipe==0.10.21 wheel from PyPI with `pip download --no-deps` and extracts "
              "the .tflite files), or point --models_dir / $HAND_TF_MEDIAPIPE_DIR at a folder "
              "holding them. Alternatively supply OpenPose JSON detections "
              "(see hand_tf.detection.keypoint_files).")


class ModelsMissingError(InputError):
  pass


def models_dir() -> str:
  """$HAND_TF_MEDIAPIPE_DIR, else the active environment's share folder."""
  return os.environ.get("HAND_TF_MEDIAPIPE_DIR") or os.path.join(
      sys.prefix, "share", "hand_tf", "mediapipe")


def extract_models(wheel_path: str, directory: Optional[str] = None) -> str:
  """Copies the four .tflite files out of a mediapipe wheel into `directory`."""
  directory = directory or models_dir()
  os.makedirs(directory, exist_ok=True)
  with zipfile.ZipFile(wheel_path) as wheel:
    for name, member in MODEL_FILES.items():
      tmp = os.path.join(directory, name + ".tmp")
      with wheel.open(member) as src, open(tmp, "wb") as dst:
        shutil.copyfileobj(src, dst)
      os.replace(tmp, os.path.join(directory, name))
  return directory


def ssd_anchors(input_size: int = 192, strides=(8, 16, 16, 16),
                anchors_per_cell: int = 2) -> np.ndarray:
  """[2016, 2] anchor centres (normalised) of MediaPipe's palm detector.

  Consecutive layers with the same stride share one grid, each contributing
  `anchors_per_cell` anchors per cell (fixed size 1, offset 0.5).
  """
  centers = []
  layer = 0
  while layer < len(strides):
    same = 1
    while layer + same < len(strides) and strides[layer + same] == strides[layer]:
      same += 1
    grid = int(np.ceil(input_size / strides[layer]))
    ys, xs = np.mgrid[0:grid, 0:grid]
    cell = np.stack([(xs.ravel() + 0.5) / grid, (ys.ravel() + 0.5) / grid], axis=1)
    centers.append(np.repeat(cell, anchors_per_cell * same, axis=0))
    layer += same
  return np.concatenate(centers).astype(np.float32)


def _sigmoid(x):
  return 1.0 / (1.0 + np.exp(-np.clip(np.asarray(x, np.float64), -60.0, 60.0)))


def decode_palms(raw_boxes, raw_scores, anchors, input_size=192, min_score=0.5,
                 iou_threshold=0.3):
  """Palm boxes and keypoints (normalised input coordinates) after NMS, best first.

  Returns:
    list of (score, box [x_center, y_center, w, h], keypoints [7, 2]).
  """
  scores = _sigmoid(raw_scores.reshape(-1))
  raw = raw_boxes.reshape(-1, 18) / input_size
  centers = raw[:, :2] + anchors
  sizes = raw[:, 2:4]
  keypoints = raw[:, 4:].reshape(-1, 7, 2) + anchors[:, None]
  order = [i for i in np.argsort(-scores) if scores[i] >= min_score]
  kept = []
  for i in order:
    box_i = np.concatenate([centers[i] - sizes[i] / 2, centers[i] + sizes[i] / 2])
    overlaps = False
    for _, box_k, _ in kept:
      other = np.concatenate([box_k[:2] - box_k[2:] / 2, box_k[:2] + box_k[2:] / 2])
      inter = np.prod(np.clip(np.minimum(box_i[2:], other[2:])
                              - np.maximum(box_i[:2], other[:2]), 0, None))
      union = np.prod(box_i[2:] - box_i[:2]) + np.prod(other[2:] - other[:2]) - inter
      if inter / max(union, 1e-9) > iou_threshold:
        overlaps = True
        break
    if not overlaps:
      kept.append((float(scores[i]), np.concatenate([centers[i], sizes[i]]), keypoints[i]))
  return kept


def hand_region(box, keypoints, image_size: Tuple[int, int]):
  """Rotated square hand region from a palm (pixels): (center [2], side, angle radians).

  As MediaPipe: rotation such that wrist (keypoint 0) -> middle MCP (keypoint 2) points
  up, side = 2.6 x the palm box's longer side, shifted by half a box towards the fingers.
  """
  width, height = image_size
  scale = np.array([width, height], np.float32)
  wrist, middle = keypoints[0] * scale, keypoints[2] * scale
  angle = np.pi / 2 - np.arctan2(-(middle[1] - wrist[1]), middle[0] - wrist[0])
  angle = (angle + np.pi) % (2 * np.pi) - np.pi
  center = box[:2] * scale
  size = box[2:] * scale
  up = np.array([np.sin(angle), -np.cos(angle)])  # the hand's "up" in image pixels
  return center + 0.5 * size[1] * up, 2.6 * max(size), angle


def region_from_keypoints(keypoints):
  """Rotated square hand region from a hand's 21 landmarks (pixels): (center [2], side,
  angle), as MediaPipe's tracking derives the next frame's region: "up" from the wrist to
  the middle-finger MCP, the landmarks' extent along those axes enlarged 2x and shifted
  a tenth of it towards the fingers."""
  keypoints = np.asarray(keypoints, np.float64)
  wrist, middle = keypoints[0], keypoints[9]
  angle = np.pi / 2 - np.arctan2(-(middle[1] - wrist[1]), middle[0] - wrist[0])
  angle = (angle + np.pi) % (2 * np.pi) - np.pi
  across = np.array([np.cos(angle), np.sin(angle)])  # the region's x axis in the image
  down = np.array([-np.sin(angle), np.cos(angle)])  # its y axis (wrist side)
  local = np.stack([keypoints @ across, keypoints @ down], axis=1)
  low, high = local.min(axis=0), local.max(axis=0)
  middle_local = 0.5 * (low + high)
  extent = float(np.max(high - low))
  center = middle_local[0] * across + (middle_local[1] - 0.1 * extent) * down
  return center, 2.0 * extent, angle


def region_to_image_matrix(center, side, angle, crop_size):
  """[2, 3] affine mapping crop pixels to image pixels."""
  cos, sin = np.cos(angle), np.sin(angle)
  scale = side / crop_size
  rotation = np.array([[cos, -sin], [sin, cos]]) * scale
  offset = center - rotation @ np.array([crop_size / 2, crop_size / 2])
  return np.concatenate([rotation, offset[:, None]], axis=1)


@dataclasses.dataclass
class DetectedHand:
  """One hand MediaPipe found in an image.

  Attributes:
    keypoints: [21, 2] landmarks, image pixels (x, y), FreiHAND order.
    confidence: [21] palm score times hand presence (MediaPipe gives no per-joint value).
    side: "right" or "left", from the landmark model's handedness output.
    right_probability: that output, P(right hand) for an unmirrored photo (FreiHAND's
      right hands score 0.9-1.0; mirrored they score below 0.05).
    palm_score: the palm detector's score (1.0 when no palm was detected: the
      whole-image fallback, or a hand tracked from its previous keypoints).
    presence: the landmark model's hand-presence probability.
    track_id: which hand of a video this is (`mobile_demo.tracking`), or None.
  """
  keypoints: np.ndarray
  confidence: np.ndarray
  side: str
  right_probability: float
  palm_score: float
  presence: float
  track_id: Optional[int] = None


def _keypoint_box(keypoints):
  """[x0, y0, x1, y1] around keypoints."""
  return np.concatenate([keypoints.min(axis=0), keypoints.max(axis=0)])


def _iou(a, b):
  inter = np.prod(np.clip(np.minimum(a[2:], b[2:]) - np.maximum(a[:2], b[:2]), 0, None))
  union = np.prod(a[2:] - a[:2]) + np.prod(b[2:] - b[:2]) - inter
  return inter / max(union, 1e-9)


def _letterbox(image_rgb):
  """The image padded (bottom, right) to a square, as the palm model is fed."""
  height, width = image_rgb.shape[:2]
  side = max(height, width)
  square = np.zeros((side, side, 3), np.uint8)
  square[:height, :width] = image_rgb
  return square


class MediaPipeHandDetector:
  """Palm detection + hand landmarks on LiteRT (ai-edge-litert)."""

  # At most this many pixels on the longer side, an image with no palm found is tried as
  # one hand crop: the palm detector misses hands that fill a tight crop (FreiHAND's).
  WHOLE_IMAGE_FALLBACK_MAX_SIDE = 320

  def __init__(self, directory: Optional[str] = None, variant: str = "full",
               num_threads: int = 2, min_palm_score: float = 0.5,
               min_presence: float = 0.5):
    from ai_edge_litert.interpreter import Interpreter
    directory = directory or models_dir()
    palm = os.path.join(directory, f"palm_detection_{variant}.tflite")
    landmark = os.path.join(directory, f"hand_landmark_{variant}.tflite")
    for path in (palm, landmark):
      if not os.path.isfile(path):
        raise ModelsMissingError(f"{path} not found. {HOW_TO_GET}")
    self._palm = Interpreter(palm, num_threads=num_threads)
    self._landmark = Interpreter(landmark, num_threads=num_threads)
    for interpreter in (self._palm, self._landmark):
      interpreter.allocate_tensors()
    self._anchors = ssd_anchors()
    self._min_palm_score = min_palm_score
    self._min_presence = min_presence

  def _run(self, interpreter, tensor):
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], tensor[None])
    interpreter.invoke()
    outputs = sorted(interpreter.get_output_details(), key=lambda d: d["name"])
    return [interpreter.get_tensor(d["index"])[0] for d in outputs]

  def _landmarks(self, square, to_image, palm_score):
    """The landmark model on the crop `to_image` maps from; a DetectedHand or None."""
    crop = cv2.warpAffine(square, to_image, (224, 224),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT)
    landmarks, presence, handedness, _ = self._run(self._landmark,
                                                   crop.astype(np.float32) / 255.0)
    presence = float(presence.reshape(-1)[0])  # the model outputs probabilities already
    if presence < self._min_presence:  # the landmark model sees no hand in the region
      return None
    points = landmarks.reshape(21, 3)[:, :2]
    keypoints = (points @ to_image[:, :2].T + to_image[:, 2]).astype(np.float32)
    right = float(handedness.reshape(-1)[0])
    return DetectedHand(keypoints=keypoints,
                        confidence=np.full(21, palm_score * presence, np.float32),
                        side="right" if right >= 0.5 else "left", right_probability=right,
                        palm_score=float(palm_score), presence=presence)

  def detect_hands(self, image_rgb: np.ndarray, max_hands: int = 4) -> List[DetectedHand]:
    """Every hand in an image, most confident first.

    Every palm above the score threshold after non-maximum suppression (up to
    `max_hands`) gets the landmark model; hands whose landmark boxes overlap by more than
    half (two palms of one hand) count once.  When no palm is found in a small image
    (<= WHOLE_IMAGE_FALLBACK_MAX_SIDE px), the whole image is tried as one hand crop.

    Args:
      image_rgb: [H, W, 3] uint8 RGB.
      max_hands: at most this many hands.
    """
    square = _letterbox(image_rgb)
    side = len(square)
    palm_input = cv2.resize(square, (192, 192), interpolation=cv2.INTER_AREA)
    raw_boxes, raw_scores = self._run(self._palm, palm_input.astype(np.float32) / 255.0)
    palms = decode_palms(raw_boxes, raw_scores, self._anchors, min_score=self._min_palm_score)
    hands = []
    for score, box, palm_keypoints in palms:
      if len(hands) == max_hands:
        break
      center, region_side, angle = hand_region(box, palm_keypoints, (side, side))
      hand = self._landmarks(square, region_to_image_matrix(center, region_side, angle, 224),
                             score)
      if hand is not None and all(
          _iou(_keypoint_box(hand.keypoints), _keypoint_box(h.keypoints)) <= 0.5
          for h in hands):
        hands.append(hand)
    if not palms and side <= self.WHOLE_IMAGE_FALLBACK_MAX_SIDE and max_hands > 0:
      whole = region_to_image_matrix(np.array([side / 2, side / 2]), side, 0.0, 224)
      hand = self._landmarks(square, whole, 1.0)
      hands = [] if hand is None else [hand]
    return sorted(hands, key=lambda h: -h.confidence[0])

  def track(self, image_rgb: np.ndarray, keypoints: np.ndarray,
            side: Optional[str] = None) -> Optional[DetectedHand]:
    """The hand whose previous-frame keypoints are `keypoints`, found again in this frame
    from the region they give (no palm detection), or None when it is lost.

    Args:
      image_rgb: [H, W, 3] uint8 RGB.
      keypoints: [21, 2] the hand's keypoints in the previous frame, pixels.
      side: the side it had; kept (the landmark model's verdict can flip on one frame).
    """
    center, region_side, angle = region_from_keypoints(keypoints)
    hand = self._landmarks(_letterbox(image_rgb),
                           region_to_image_matrix(center, region_side, angle, 224), 1.0)
    if hand is not None and side is not None:
      hand = dataclasses.replace(hand, side=side)
    return hand

  def detect(self, image_rgb: np.ndarray):
    """Detects the most confident hand.

    Args:
      image_rgb: [H, W, 3] uint8 RGB.

    Returns:
      (keypoints [21, 2] image pixels (x, y), confidence [21]); zeros when none is found.
    """
    hands = self.detect_hands(image_rgb, max_hands=1)
    if not hands:
      return np.zeros((21, 2), np.float32), np.zeros(21, np.float32)
    return hands[0].keypoints, hands[0].confidence


def detect_files(paths: Sequence[str], detector: Optional[MediaPipeHandDetector] = None,
                 progress: bool = False):
  """The most confident hand of each image file (`MediaPipeHandDetector.detect`).

  Returns:
    (keypoints `[N, 21, 2]` image pixels, confidence `[N, 21]`; zeros where none found).
  """
  from tqdm import tqdm

  from hand_tf.io import read_image
  detector = detector or MediaPipeHandDetector()
  found = [detector.detect(read_image(p)) for p in tqdm(paths, desc="detect", unit="img",
                                                        disable=not progress)]
  return (np.stack([f[0] for f in found]).reshape(-1, 21, 2),
          np.stack([f[1] for f in found]).reshape(-1, 21))


def main(argv):
  del argv
  print(extract_models(EXTRACT.value, OUT.value))


if __name__ == "__main__":
  from absl import flags
  EXTRACT = flags.DEFINE_string("extract", None, "mediapipe 0.10.21 wheel to take the hand "
                                "models out of (the Makefile downloads it).", required=True)
  OUT = flags.DEFINE_string("out", None, "Folder for the models (default: where the "
                            "detector looks for them).")
  from hand_tf import startup
  startup.run(main)
