"""Writes a synthetic hand dataset in the FreiHAND layout (see `hand_tf.synthetic.dataset`).

  python -m hand_tf.synthesize --out DIR --num N --image_size 224 --seed S \
      [--split training] [--mano_model_path P] [--backgrounds PHOTOS_DIR] [--occluders]
      [--generator realistic|plain] [--detector simulated|mediapipe]

Prints the generation speed and the simulated detector's error statistics; with
`--detector mediapipe` also how often MediaPipe found the hand and how far off it was.
"""

from absl import app, flags

from hand_tf import startup

OUT = flags.DEFINE_string("out", None, "Output dataset folder.")
NUM = flags.DEFINE_integer("num", 64, "Number of images.")
IMAGE_SIZE = flags.DEFINE_integer("image_size", 224, "Image side in pixels.")
SEED = flags.DEFINE_integer("seed", 0, "Random seed.")
SPLIT = flags.DEFINE_enum("split", "training", ["training", "evaluation"], "Split name.")
MANO_MODEL_PATH = flags.DEFINE_string("mano_model_path", None,
                                      "MANO_RIGHT.pkl or its folder; default: synthetic hand.")
BACKGROUNDS = flags.DEFINE_string("backgrounds", None, "Folder of background photos.")
OCCLUDERS = flags.DEFINE_bool("occluders", False, "Add random occluding objects (realistic: "
                              "objects held in the hand; plain: flat shapes in front).")
NOISE = flags.DEFINE_float("noise_level", 1.0, "Simulated detector noise (0 = exact).")
BATCH = flags.DEFINE_integer("batch_size", 16, "Images rendered together.")
GENERATOR = flags.DEFINE_enum(
    "generator", "realistic", ["realistic", "plain"],
    "realistic: views people photograph, a forearm, skin shading, photo backgrounds "
    "(scikit-image's and matplotlib's sample photos, or --backgrounds), camera blur, noise "
    "and JPEG; plain: the hand alone, Lambertian light, procedural backgrounds (the "
    "renders of the README's recorded experiments).")
DETECTOR = flags.DEFINE_enum(
    "detector", "simulated", ["simulated", "mediapipe"],
    "mediapipe: also run MediaPipe's models on the images and write its detections as "
    "<split>_mediapipe_detections.json (a real detector's training signal) beside the "
    "simulated detector's <split>_detections.json.")
MAX_ROTATION = flags.DEFINE_float(
    "max_rotation_deg", None, "Global rotations within this angle of S2HAND's canonical "
    "view (default: uniform over all rotations).")


def main(argv):
  del argv
  from hand_tf.startup import quiet_tensorflow
  quiet_tensorflow()  # before the renderer loads TensorFlow
  from hand_tf.synthetic.dataset import synthesize
  if not OUT.value:
    raise app.UsageError("--out is required")
  summary = synthesize(OUT.value, NUM.value, IMAGE_SIZE.value, SEED.value, SPLIT.value,
                       MANO_MODEL_PATH.value, BACKGROUNDS.value, OCCLUDERS.value,
                       NOISE.value, BATCH.value, max_rotation_deg=MAX_ROTATION.value,
                       generator=GENERATOR.value, detector=DETECTOR.value)
  det = summary["detector"]
  print(f"wrote {summary['num']} images to {OUT.value} in {summary['seconds']} s "
        f"({summary['images_per_second']} images/s)")
  print(f"simulated detector: mean error {det['mean_px_error']:.2f} px, median "
        f"{det['median_px_error']:.2f} px, within "
        + ", ".join(f"{t} px: {100 * v:.1f}%" for t, v in det["within_px"].items()))
  if "mediapipe" in summary:
    found = summary["mediapipe"]
    median = found["median_px_error"]
    print(f"MediaPipe: found the hand in {100 * found['found']:.1f}% of the images, median "
          f"keypoint error {'-' if median is None else f'{median:.1f} px'}, within 8 px "
          f"{100 * found['found_within_8px']:.1f}%")


if __name__ == "__main__":
  startup.run(main)
