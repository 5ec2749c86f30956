"""Run the exported .tflite on images, a video file or a camera, as a phone would.

  python -m mobile_demo --input IMAGES_OR_VIDEO_OR_camera:0 [--model DIR/s2hand_fp16.tflite]
      [--out DIR] [--num_threads 4] [--detector mediapipe|none] [--box x0,y0,side]

--input (`hand_tf.inputs`): image files, folders or glob patterns (writes NAME_mesh.png
per image), video files (writes annotated.mp4, FPS on each frame), or camera:N (OpenCV
capture; --max_frames frames).  Every hand is reconstructed; on video, hands are tracked
from frame to frame (--track, --redetect_every) and their keypoints optionally smoothed
(--smooth: One-Euro filter).  Prints per-frame latency and FPS, and writes timings.json.
"""

import os
import sys

import cv2
import numpy as np
from absl import flags, logging

from hand_tf import inputs, shipped, startup

MODEL = flags.DEFINE_string("model", None, "Exported .tflite file (default: the model "
                            "shipped in the package, fp16).")
INPUT = flags.DEFINE_list("input", None, "Image files, folders, glob patterns, video files "
                          "or camera:N, comma-separated.",
                          required=True)
OUT = flags.DEFINE_string("out", "mobile_demo_out", "Output folder.")
NUM_THREADS = flags.DEFINE_integer("num_threads", 2, "LiteRT CPU threads (XNNPACK).")
DETECTOR = flags.DEFINE_enum("detector", "mediapipe", ["mediapipe", "none"],
                             "How to find the hand; 'none' uses --box or the whole frame.")
BOX = flags.DEFINE_list("box", None, "Fixed square crop x0,y0,side in frame pixels.")
FOCAL = flags.DEFINE_float("focal", None, "Focal length in pixels.")
flags.register_validator("focal", lambda v: v is None or v > 0,
                         "--focal must be a positive number of pixels")
PLACE = flags.DEFINE_bool(
    "place_on_keypoints", True, "On frames where the hand is detected, move the predicted "
    "hand rigidly onto the detected keypoints (shape and pose unchanged).")
MAX_FRAMES = flags.DEFINE_integer("max_frames", 300, "Frames to read from a video/camera.")
REFINE = flags.DEFINE_bool(
    "refine", False, "Fit each detected hand to its keypoints (hand_tf.refine, 151 steps); "
    "needs TensorFlow, which the rest of the demo does not.")
TRACK = flags.DEFINE_bool(
    "track", True, "Video: follow each hand from its previous keypoints (MediaPipe's "
    "tracking), running the palm detector only when a hand is lost or every "
    "--redetect_every frames.")
REDETECT = flags.DEFINE_integer("redetect_every", 30, "Video: palm detection at least this "
                                "often, in frames (0: only when a hand is lost).",
                                lower_bound=0)
SMOOTH = flags.DEFINE_bool("smooth", False, "Video: One-Euro filter on each hand's keypoints.")
SMOOTH_CUTOFF = flags.DEFINE_float("smooth_min_cutoff", 1.0, "One-Euro cutoff at rest (Hz): "
                                   "lower smooths more.", lower_bound=1e-3)
SMOOTH_BETA = flags.DEFINE_float("smooth_beta", 0.05, "One-Euro speed coefficient: higher "
                                 "lags less on fast motion.", lower_bound=0.0)
MAX_HANDS = flags.DEFINE_integer("max_hands", 4, "At most this many detected hands a frame.",
                                 lower_bound=1)


def main(argv):
  del argv
  from hand_tf.contract import model_caveat, read_held_out
  from hand_tf.io import InputError, output_folder, write_json
  from mobile_demo.pipeline import HandPipeline
  model = MODEL.value or shipped.model_path()
  detector = None
  if DETECTOR.value == "mediapipe" and not BOX.value:
    from hand_tf.detection.mediapipe import MediaPipeHandDetector
    detector = MediaPipeHandDetector(num_threads=NUM_THREADS.value)
  from hand_tf.data.crops import parse_box
  box = parse_box(BOX.value, np.inf, np.inf, "--box") if BOX.value else None
  from hand_tf.api import load_refiner
  refiner = load_refiner(model) if REFINE.value else None
  tracker = None
  if detector is not None and TRACK.value:
    from mobile_demo.tracking import HandTracker, OneEuroFilter
    tracker = HandTracker(detector, MAX_HANDS.value, REDETECT.value, smoothing=(
        lambda fps: OneEuroFilter(fps, SMOOTH_CUTOFF.value, SMOOTH_BETA.value))
        if SMOOTH.value else None)
  pipeline = HandPipeline(model, NUM_THREADS.value, detector, box, FOCAL.value,
                          PLACE.value, MAX_HANDS.value, refiner=refiner, tracker=tracker)
  print(f"model: {pipeline.predictor.describe()}", flush=True)
  caveat = model_caveat(pipeline.predictor.input_size, read_held_out(model))
  if caveat:
    print(caveat, file=sys.stderr, flush=True)
  skipped = []

  def skip(error):  # one unreadable input must not cost the rest of the batch
    logging.warning("skipped %s", error)
    skipped.append(str(error))

  with output_folder(OUT.value):
    writer, video_path, rows = None, os.path.join(OUT.value, "annotated.mp4"), []
    for name, frame, is_video, fps in inputs.frames(INPUT.value, MAX_FRAMES.value, skip):
      try:
        _, annotated, timings = pipeline.process(frame, video=is_video, fps=fps or 30.0)
      except InputError as e:
        skip(InputError(f"{name}: {e}"))
        continue
      rows.append(timings)
      bgr = cv2.cvtColor(annotated, cv2.COLOR_RGB2BGR)
      if is_video:  # this frame's rate, on screen
        cv2.putText(bgr, f"{1000.0 / timings['total_ms']:.0f} FPS", (8, 24),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2, cv2.LINE_AA)
        if writer is None:
          writer = cv2.VideoWriter(video_path + ".partial.mp4", cv2.VideoWriter_fourcc(*"mp4v"),
                                   fps, (frame.shape[1], frame.shape[0]))
        writer.write(bgr)
      else:
        cv2.imwrite(os.path.join(OUT.value, f"{name}_mesh.png"), bgr)
      print(f"{name}: " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()), flush=True)
    if writer is not None:
      writer.release()
      os.replace(video_path + ".partial.mp4", video_path)
    if not rows:
      raise InputError(f"{','.join(INPUT.value)}: no frames could be read"
                       f"{' (named above)' if skipped else ''}")
  summary = {k: float(np.median([r[k] for r in rows if k in r]))
             for k in rows[0]}
  summary["fps"] = 1000.0 / summary["total_ms"]
  summary["frames"] = len(rows)
  summary["num_threads"] = NUM_THREADS.value
  write_json(os.path.join(OUT.value, "timings.json"), summary)
  print(f"{len(rows)} frames, median {summary['total_ms']:.1f} ms/frame "
        f"({summary['fps']:.1f} FPS; model+crop {summary['crop_infer_ms']:.1f} ms)")
  if skipped:
    raise InputError(f"{len(skipped)} input(s) skipped (named above); {len(rows)} frames "
                     "done")
  return 0


if __name__ == "__main__":
  startup.run(main)
