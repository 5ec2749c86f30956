"""Does a trained model read real photos?  No 3D labels: compared with MediaPipe's 2D.

  python benchmarks/real_images.py --model RUN_OR_EXPORT --images PHOTOS_DIR

For each photo in --images, MediaPipe's palm + landmark models (LiteRT) give 21
keypoints; the hand is cropped around them exactly as `predict --keypoints` crops, and
the model predicts the hand.  Prints, in pixels of the model's input crop:
  * the mean distance of the projected joints to MediaPipe's keypoints;
  * the same for a constant skeleton (MediaPipe's keypoints averaged over the photos, in
    crop coordinates): a model that ignores the image cannot beat it by much;
  * the spread across photos of the projected joints (0 for a constant hand) and of
    MediaPipe's keypoints.
Photos where MediaPipe finds no hand are listed and left out.
"""

import glob
import os

import numpy as np
from absl import flags

from hand_tf import startup

MODEL = flags.DEFINE_string("model", None, "Checkpoint/run folder, SavedModel, .tflite or .onnx.")
IMAGES = flags.DEFINE_string("images", None, "Folder of photos (jpg/png).")


def main(argv):
  del argv
  from hand_tf.camera import default_intrinsics
  from hand_tf.data import crops
  from hand_tf.data.crops import box_from_keypoints
  from hand_tf.detection.mediapipe import MediaPipeHandDetector
  from hand_tf.io import read_image
  from hand_tf.predictors import load_predictor
  from hand_tf.reconstruct import reconstruct

  paths = sorted(p for p in glob.glob(os.path.join(IMAGES.value, "*"))
                 if p.lower().endswith((".jpg", ".jpeg", ".png")))
  if not paths:
    raise SystemExit(f"error: {IMAGES.value}: no .jpg/.png photos")
  predictor = load_predictor(MODEL.value)
  faces = load_predictor(MODEL.value).faces
  detector = MediaPipeHandDetector()
  size = predictor.input_size
  predicted, detected, names = [], [], []
  for path in paths:
    image = read_image(path)
    keypoints, confidence = detector.detect(image)
    box = box_from_keypoints(keypoints, confidence)
    if box is None:
      print(f"{os.path.basename(path)}: MediaPipe finds no hand; left out")
      continue
    k = default_intrinsics(*image.shape[:2])  # as `predict` without --focal
    result = reconstruct(predictor, image, box, k, faces)
    to_crop = crops.crop_matrix(box, size)
    predicted.append(crops.apply_to_points(to_crop, result.joints2d))
    detected.append(crops.apply_to_points(to_crop, keypoints))
    names.append(os.path.basename(path))
  if len(names) < 2:
    raise SystemExit("error: fewer than two photos with a detected hand")
  predicted, detected = np.stack(predicted), np.stack(detected)
  model_error = np.linalg.norm(predicted - detected, axis=-1).mean(axis=1)
  constant_error = np.linalg.norm(detected.mean(axis=0) - detected, axis=-1).mean(axis=1)
  print(f"{MODEL.value} on {len(names)} photos, {size} px crops around MediaPipe's keypoints")
  print(f"{'photo':28s} {'model px':>9s} {'constant px':>12s}")
  for name, a, b in zip(names, model_error, constant_error):
    print(f"{name:28s} {a:9.2f} {b:12.2f}")
  print(f"{'mean':28s} {model_error.mean():9.2f} {constant_error.mean():12.2f}")
  print(f"spread of the projected joints across photos: {predicted.std(axis=0).mean():.2f} px "
        f"(MediaPipe's keypoints: {detected.std(axis=0).mean():.2f} px; a constant hand: 0)")


if __name__ == "__main__":
  flags.mark_flags_as_required(["model", "images"])
  startup.run(main)
