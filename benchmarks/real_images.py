"""Does a model read real photos?  No 3D labels: compared with MediaPipe's 2D keypoints.

  python benchmarks/real_images.py --images PHOTOS_DIR [--model RUN_OR_EXPORT] [--sheet PNG]

Every hand MediaPipe finds in the photos of --images (left ones through the mirror) is
reconstructed as `predict` does, in three settings:
  network   the network's own camera (crop around the keypoints, nothing else);
  placed    the network's hand moved rigidly onto the keypoints (predict's default);
  refined   then fitted to them (`predict --refine`: 151 steps, hand_tf.refine).
Per setting it prints the hands found, the mean distance of the projected joints to
MediaPipe's keypoints and the same for a constant skeleton (MediaPipe's keypoints
averaged over the hands, in crop coordinates: a model that ignores the image cannot
beat it by much) -- both in pixels of a 224 px crop around the hand -- the spread of the
projected joints across hands (0 for a constant hand), and milliseconds per hand.
--sheet writes a contact sheet of the last setting's overlays (every hand drawn on its
photo; refined unless --norefine).
"""

from absl import flags

from hand_tf import startup

MODEL = flags.DEFINE_string("model", None, "Checkpoint/run folder, SavedModel, .tflite or "
                            ".onnx (default: the model shipped in the package).")
IMAGES = flags.DEFINE_string("images", None, "Folder of photos (jpg/png).")
SHEET = flags.DEFINE_string("sheet", None, "Contact sheet of the overlays (PNG).")
REFINE = flags.DEFINE_bool("refine", True, "Also the 'refined' setting (needs TensorFlow).")


def main(argv):
  del argv
  from hand_tf.api import HandReconstructor
  from hand_tf.eval import photos
  from hand_tf.inputs import image_paths
  paths = image_paths([IMAGES.value])  # InputError (one line) if it holds no image
  reconstructor = HandReconstructor.load(MODEL.value)
  try:
    result = photos.measure(reconstructor, paths,
                            photos.SETTINGS if REFINE.value else photos.SETTINGS[:2])
  except ValueError as e:
    raise SystemExit(f"error: {e}") from None
  sides = result["sides"]
  print(f"{MODEL.value or 'the shipped model'}: {result['hands']} hands in "
        f"{result['photos_with_hands']} of {len(paths)} photos ({sides.count('right')} right, "
        f"{sides.count('left')} left); distances in pixels of a 224 px crop around each hand")
  print(f"{'setting':10s} {'hands':>6s} {'joints px':>10s} {'constant px':>12s} "
        f"{'spread px':>10s} {'ms/hand':>8s}")
  for setting, row in result["settings"].items():
    print(f"{setting:10s} {result['hands']:6d} {row['joints_px']:10.2f} "
          f"{result['constant_px']:12.2f} {row['spread_px']:10.2f} {row['ms_per_hand']:8.1f}")
  print(f"spread of MediaPipe's keypoints across hands: {result['keypoint_spread_px']:.2f} px")
  if SHEET.value:
    import cv2
    cv2.imwrite(SHEET.value, cv2.cvtColor(photos.contact_sheet(result["overlays"]),
                                          cv2.COLOR_RGB2BGR))
    print(f"wrote {SHEET.value}")


if __name__ == "__main__":
  flags.mark_flags_as_required(["images"])
  startup.run(main)
