"""The shipped model's card: held-out renders, real photos and latency, in one run.

  python benchmarks/model_card.py --data_dir runs/pretrained/data [--models_dir DIR] \
      [--demo_model demo_out/export/s2hand_fp16.tflite] [--photos PHOTOS_DIR] \
      [--sheet PNG] [--runs 50] [--out card.json]

1. The held-out renders of the recipe (`hand_tf.pretrain`: realistic renders the
   training never saw, 3D truth known): the FreiHAND protocol's figures (PA-MPJPE,
   PA-MPVPE, their AUCs, F@5/F@15, camera-frame MPJPE, prediction spread) of the shipped
   fp16 and int8 models, the template hand (mean hand, camera fitted by PnP to the
   simulated detector's keypoints, the truth plus noise, and to MediaPipe's: the floor)
   and, if given, the demo model.
2. With --photos: every hand MediaPipe finds (`hand_tf.eval.photos`): the distance of
   the projected joints to MediaPipe's keypoints with the network's own camera and placed
   on the keypoints, against a constant skeleton, and the spread across hands.
3. Latency: batch 1, LiteRT, --threads, median of --runs, for each model file.
"""

import os
import time

import numpy as np
from absl import flags

from hand_tf import startup

DATA = flags.DEFINE_string("data_dir", "runs/pretrained/data",
                           "The recipe's renders (FreiHAND layout, 'evaluation' split).")
SOURCE_SIZE = flags.DEFINE_integer("source_size", 224, "Side of the rendered images.")
MODELS_DIR = flags.DEFINE_string("models_dir", None, "Folder with s2hand_fp16.tflite and "
                                 "s2hand_int8.tflite (default: the shipped model's; e.g. "
                                 "runs/pretrained/export before --install).")
DEMO = flags.DEFINE_string("demo_model", None, "Another model to compare (e.g. the demo's).")
PHOTOS = flags.DEFINE_string("photos", None, "Folder of photos of hands (jpg/png).")
SHEET = flags.DEFINE_string("sheet", None, "Contact sheet of the shipped model's overlays "
                            "on --photos (placed on the keypoints).")
RUNS = flags.DEFINE_integer("runs", 50, "Timed runs per model (median).")
THREADS = flags.DEFINE_integer("threads", 2, "LiteRT threads.")
OUT = flags.DEFINE_string("out", None, "Also write every figure as JSON here.")


def _models():
  from hand_tf import shipped
  models = {f"shipped {v}": shipped.model_path(v, MODELS_DIR.value)
            for v in shipped.MODEL_FILES}
  if DEMO.value:
    models["demo model"] = DEMO.value
  return models


def held_out(models):
  """FreiHAND-protocol metrics per model and of the template hand."""
  from hand_tf.data.freihand import read_freihand
  from hand_tf.demo_job import TEMPLATE_ON_MEDIAPIPE, template_baseline
  from hand_tf.eval import report
  from hand_tf.predictors import load_predictor
  rows, sizes = {}, []
  for name, path in models.items():
    predictor = load_predictor(path, THREADS.value)
    records = read_freihand(DATA.value, "evaluation", image_size=predictor.input_size,
                            source_size=SOURCE_SIZE.value)
    predictions = report.predict_records(predictor, records, progress=False)
    rows[name] = report.evaluate_records(predictions, records)["metrics"]
    sizes.append(predictor.input_size)
  # Fitted in the first model's crops, as the recipe's own evaluation fits it.
  rows["template hand"], _ = template_baseline(DATA.value, sizes[0],
                                               source_size=SOURCE_SIZE.value)
  rows[TEMPLATE_ON_MEDIAPIPE], _ = template_baseline(
      DATA.value, sizes[0], source_size=SOURCE_SIZE.value, detector="mediapipe")
  return rows, len(records)


def latency_ms(path):
  from hand_tf.predictors import load_predictor
  predictor = load_predictor(path, THREADS.value)
  size = predictor.input_size
  image = np.random.default_rng(0).integers(0, 255, (1, size, size, 3), np.uint8)
  k = np.array([[[2 * size, 0, size / 2], [0, 2 * size, size / 2], [0, 0, 1]]], np.float32)
  for _ in range(3):
    predictor.predict(image, k)
  times = []
  for _ in range(RUNS.value):
    start = time.perf_counter()
    predictor.predict(image, k)
    times.append(1000 * (time.perf_counter() - start))
  return float(np.median(times)), size, os.path.getsize(path) / 1e6


def main(argv):
  del argv
  from hand_tf.eval import report
  models = _models()
  card = {}
  rows, count = held_out(models)
  card["held_out"] = {"count": count, "rows": rows}
  print(f"## Held-out renders ({count} images, {DATA.value})\n")
  print(report.format_table(rows))
  print("ground truth's spread: "
        f"{next(iter(rows.values()))['ground_truth_spread_mm']:.1f} mm\n")
  if PHOTOS.value:
    from hand_tf.api import HandReconstructor
    from hand_tf.eval import photos
    from hand_tf.inputs import image_paths
    paths = image_paths([PHOTOS.value])
    card["photos"] = {}
    print(f"## Photos ({len(paths)} in {PHOTOS.value}; pixels of a 224 px crop)\n")
    print("| model | hands | network's camera px | placed px | constant skeleton px | "
          "spread px (network) | keypoints' spread px |")
    print("|---|---|---|---|---|---|---|")
    for name, path in models.items():
      result = photos.measure(HandReconstructor.load(path, THREADS.value), paths,
                              photos.SETTINGS[:2], log=lambda _: None)
      overlays = result.pop("overlays")
      card["photos"][name] = result
      network, placed = result["settings"]["network"], result["settings"]["placed"]
      print(f"| {name} | {result['hands']} | {network['joints_px']:.1f} | "
            f"{placed['joints_px']:.1f} | {result['constant_px']:.1f} | "
            f"{network['spread_px']:.1f} | {result['keypoint_spread_px']:.1f} |")
      if SHEET.value and name == "shipped fp16":
        import cv2
        cv2.imwrite(SHEET.value, cv2.cvtColor(photos.contact_sheet(overlays),
                                              cv2.COLOR_RGB2BGR))
    print()
  print(f"## Latency (LiteRT, batch 1, {THREADS.value} threads, median of {RUNS.value})\n")
  print("| model | input px | MB | ms |")
  print("|---|---|---|---|")
  card["latency"] = {}
  for name, path in models.items():
    ms, size, megabytes = latency_ms(path)
    card["latency"][name] = {"ms": ms, "input_size": size, "mb": megabytes}
    print(f"| {name} | {size} | {megabytes:.1f} | {ms:.2f} |")
  if SHEET.value and PHOTOS.value:
    print(f"\nwrote {SHEET.value}")
  if OUT.value:
    from hand_tf.io import write_json
    write_json(OUT.value, card)


if __name__ == "__main__":
  startup.run(main)
