"""Detects 2D hand keypoints in a folder of images with MediaPipe's models on LiteRT.

  python -m hand_tf.detect IMAGES_DIR --out detections.json [--variant full|lite]

Writes the project's detections format (21 keypoints in FreiHAND order, image pixels,
with confidences; see hand_tf.detection.mediapipe for what confidence means).
"""

import os
import sys
import time

import cv2
import numpy as np
from absl import app, flags
from tqdm import tqdm

from hand_tf import startup
from hand_tf.detection.keypoint_files import write_detections
from hand_tf.detection.mediapipe import MediaPipeHandDetector, ModelsMissingError

OUT = flags.DEFINE_string("out", None, "Output detections JSON.")
VARIANT = flags.DEFINE_enum("variant", "full", ["full", "lite"], "MediaPipe model variant.")
MODELS_DIR = flags.DEFINE_string("models_dir", None, "Folder with the .tflite files.")
THREADS = flags.DEFINE_integer("num_threads", 2, "LiteRT threads.")
MIN_SCORE = flags.DEFINE_float("min_palm_score", 0.5, "Palm detection threshold.")


def main(argv):
  if len(argv) != 2 or not OUT.value:
    raise app.UsageError("usage: python -m hand_tf.detect IMAGES_DIR --out FILE")
  directory = argv[1]
  if not os.path.isdir(directory):
    raise app.UsageError(f"{directory}: not a folder")
  try:
    detector = MediaPipeHandDetector(MODELS_DIR.value, VARIANT.value, THREADS.value,
                                     MIN_SCORE.value)
  except ModelsMissingError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  names = sorted(n for n in os.listdir(directory)
                 if n.lower().endswith((".jpg", ".jpeg", ".png", ".bmp")))
  if not names:
    raise app.UsageError(f"{directory}: no images")
  keypoints, confidence = [], []
  start = time.time()
  for name in tqdm(names, desc="detect", unit="img"):
    image = cv2.imread(os.path.join(directory, name))
    if image is None:
      raise app.UsageError(f"{os.path.join(directory, name)}: unreadable image")
    kp, conf = detector.detect(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    keypoints.append(kp)
    confidence.append(conf)
  write_detections(OUT.value, np.stack(keypoints), np.stack(confidence), names)
  found = int(np.sum(np.stack(confidence)[:, 0] > 0))
  print(f"{found}/{len(names)} hands found; {len(names) / (time.time() - start):.1f} images/s; "
        f"wrote {OUT.value}")
  return 0


if __name__ == "__main__":
  startup.run(main)
