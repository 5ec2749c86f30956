"""Detects 2D hand keypoints in images with MediaPipe's models on LiteRT.

  python -m hand_tf.detect IMAGES... --out detections.json [--variant full|lite]

IMAGES: image files, folders or glob patterns (`hand_tf.inputs`).

Writes the project's detections format (21 keypoints in FreiHAND order, image pixels,
with confidences; see hand_tf.detection.mediapipe for what confidence means).
"""

import os
import time

import numpy as np
from absl import app, flags

from hand_tf import inputs, startup
from hand_tf.detection.keypoint_files import write_detections
from hand_tf.detection.mediapipe import MediaPipeHandDetector, detect_files

OUT = flags.DEFINE_string("out", None, "Output detections JSON.")
VARIANT = flags.DEFINE_enum("variant", "full", ["full", "lite"], "MediaPipe model variant.")
MODELS_DIR = flags.DEFINE_string("models_dir", None, "Folder with the .tflite files.")
THREADS = flags.DEFINE_integer("num_threads", 2, "LiteRT threads.")
MIN_SCORE = flags.DEFINE_float("min_palm_score", 0.5, "Palm detection threshold.")


def main(argv):
  if len(argv) < 2 or not OUT.value:
    raise app.UsageError("usage: python -m hand_tf.detect IMAGES... --out FILE")
  paths = inputs.image_paths(argv[1:])
  names = [os.path.basename(p) for p in paths]
  repeated = sorted({n for n in names if names.count(n) > 1})
  if repeated:  # the detections file keys images by file name
    raise app.UsageError(f"two inputs share the file name {repeated[0]}; detect them in "
                         "separate runs")
  detector = MediaPipeHandDetector(MODELS_DIR.value, VARIANT.value, THREADS.value,
                                   MIN_SCORE.value)
  start = time.time()
  keypoints, confidence = detect_files(paths, detector, progress=True)
  write_detections(OUT.value, keypoints, confidence, names)
  found = int(np.sum(confidence[:, 0] > 0))
  print(f"{found}/{len(names)} hands found; {len(names) / (time.time() - start):.1f} images/s; "
        f"wrote {OUT.value}")
  return 0


if __name__ == "__main__":
  startup.run(main)
