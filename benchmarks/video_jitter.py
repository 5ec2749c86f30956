"""Tracking and smoothing on a video with ground truth: error, jitter and delay.

  python benchmarks/video_jitter.py --model EXPORT/s2hand_fp32.tflite [--frames 240]

Renders a synthetic clip (`hand_tf.synthetic.video`: the synthetic hand turning,
drifting and closing its fingers along slow sinusoids, 30 frames a second) and runs
`mobile_demo`'s pipeline on it in three settings:
  per-frame   MediaPipe's palm detector on every frame (the last boxes kept on misses);
  tracked     each hand followed from its previous keypoints (palm detection when lost
              or every 30 frames);
  smoothed    tracked, and the keypoints One-Euro filtered (--min_cutoff, --beta).
Per setting: frames with keypoints, their error to the true 2D joints (px) and jitter
(mean |second difference|, px/frame^2), the reconstructed joints' camera-frame error
(mm) and jitter (mm/frame^2), the delay of the keypoints behind the truth (frames: the
lag d that best explains their error as truth(t - d)), and ms per frame.  The truth's
own jitter (the motion's acceleration) is printed for scale.
"""

import numpy as np
from absl import flags

from hand_tf import startup

MODEL = flags.DEFINE_string("model", None, "Exported .tflite.")
FRAMES = flags.DEFINE_integer("frames", 240, "Frames to render (30 per second).")
MIN_CUTOFF = flags.DEFINE_float("min_cutoff", 1.0, "One-Euro cutoff at rest (Hz).")
BETA = flags.DEFINE_float("beta", 0.05, "One-Euro speed coefficient.")
SEED = flags.DEFINE_integer("seed", 0, "Trajectory seed.")


def _delay(points, truth):
  """Frames d with points ~ truth(t - d), least squares over frames with points."""
  velocity = np.gradient(truth, axis=0)
  error = points - truth
  keep = np.all(np.isfinite(error), axis=(1, 2))
  return float(-np.sum(error[keep] * velocity[keep]) / np.sum(velocity[keep] ** 2))


def _run(pipeline, frames):
  keypoints, joints3d, milliseconds = [], [], []
  for frame in frames:
    hands, _, timings = pipeline.process(frame, draw=False, video=True, fps=30.0)
    milliseconds.append(timings["total_ms"])
    hand = hands[0] if hands else None
    seen = hand is not None and hand.keypoints is not None
    keypoints.append(hand.keypoints if seen else np.full((21, 2), np.nan))
    joints3d.append(hand.joints3d if hand is not None else np.full((21, 3), np.nan))
  return np.stack(keypoints), np.stack(joints3d), float(np.median(milliseconds))


def main(argv):
  del argv
  from hand_tf.camera import project
  from hand_tf.detection.mediapipe import MediaPipeHandDetector
  from hand_tf.synthetic.video import jitter, render_clip
  from mobile_demo.pipeline import HandPipeline
  from mobile_demo.tracking import HandTracker, OneEuroFilter

  frames, truth3d, k = render_clip(FRAMES.value, seed=SEED.value)
  truth2d = project(truth3d, k)
  focal = float(k[0, 0])
  detector = MediaPipeHandDetector()
  settings = {
      "per-frame": None,
      "tracked": HandTracker(detector, 1, 30),
      "smoothed": HandTracker(detector, 1, 30, smoothing=lambda fps: OneEuroFilter(
          fps, MIN_CUTOFF.value, BETA.value)),
  }
  print(f"{MODEL.value}: {FRAMES.value} frames at 30 fps, 256 px; truth's jitter "
        f"{jitter(truth2d):.2f} px/frame^2, {1000 * jitter(truth3d):.2f} mm/frame^2")
  print(f"{'setting':10s} {'found':>6s} {'2D px':>6s} {'2D jitter':>10s} {'3D mm':>6s} "
        f"{'3D jitter':>10s} {'delay':>6s} {'ms':>6s}")
  for name, tracker in settings.items():
    pipeline = HandPipeline(MODEL.value, detector=detector, focal=focal, max_hands=1,
                            tracker=tracker)
    keypoints, joints3d, milliseconds = _run(pipeline, frames)
    seen = np.all(np.isfinite(keypoints), axis=(1, 2))
    error2d = np.linalg.norm(keypoints[seen] - truth2d[seen], axis=-1).mean()
    error3d = 1000 * np.nanmean(np.linalg.norm(joints3d - truth3d, axis=-1))
    jitter2d = jitter(keypoints, seen)  # over frames with keypoints only
    jitter3d = 1000 * jitter(joints3d, seen)
    print(f"{name:10s} {seen.mean():6.0%} {error2d:6.1f} {jitter2d:10.2f} {error3d:6.1f} "
          f"{jitter3d:10.2f} {_delay(keypoints, truth2d):6.2f} {milliseconds:6.1f}")


if __name__ == "__main__":
  flags.mark_flags_as_required(["model"])
  startup.run(main)
