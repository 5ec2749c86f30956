"""`make demo`: the main job on the embedded default (the synthetic hand), end to end.

1. builds the synthetic MANO-format hand, writes it to disk, poses it in natural poses
   through `ManoLayer`, and writes a contact sheet (PNG) and one mesh per pose (.obj);
2. renders a small synthetic dataset in FreiHAND's layout with the differentiable
   renderer, simulates detector keypoints, and runs MediaPipe's detector on it (when
   `make models` has extracted the models); writes a contact sheet and statistics;
3. the main job (`hand_tf.demo_job`): renders a training and a held-out set, trains
   briefly from the simulated detections alone (self-supervised: no 3D labels), evaluates
   on the held-out set with the FreiHAND protocol, exports SavedModel / TFLite / ONNX with
   parity checks, runs `mobile_demo` on the held-out images with the .tflite, and writes
   `report/` (metrics.json, pck.png, overlays, summary.md).
Each step prints the command a user would run for it.
"""

import json
import os
import time

import cv2
import numpy as np
from absl import flags

from hand_tf import startup

OUT = flags.DEFINE_string("out", "demo_out", "Output folder.")
NUM_POSES = flags.DEFINE_integer("num_poses", 8, "How many random poses to show.")
NUM_IMAGES = flags.DEFINE_integer("num_images", 16, "Synthetic images to generate.")
SEED = flags.DEFINE_integer("seed", 0, "Random seed.")
TRAIN_IMAGES = flags.DEFINE_integer("train_images", 640, "Synthetic training images.")
TEST_IMAGES = flags.DEFINE_integer("test_images", 64, "Held-out synthetic images.")
IMAGE_SIZE = flags.DEFINE_integer("image_size", 64, "Model input size of the demo network.")
EPOCHS = flags.DEFINE_integer("epochs", 8, "Training epochs of the demo (stage 3d).")
MAX_ROTATION = flags.DEFINE_float(
    "max_rotation_deg", 45.0, "Demo hands within this angle of the canonical view "
    "(negative: any rotation).")
BATCH_SIZE = flags.DEFINE_integer("batch_size", 16, "Training batch size.")
ONLY_MAIN_JOB = flags.DEFINE_bool("only_main_job", False, "Skip steps 1-2.")
MANO_MODEL_PATH = flags.DEFINE_string(
    "mano_model_path", None,
    "MANO_RIGHT.pkl (or a folder holding it); default: the built-in synthetic hand.")


def _log(message):
  print(f"[demo {time.strftime('%H:%M:%S')}] {message}", flush=True)


def main(argv):
  del argv
  from hand_tf.startup import quiet_tensorflow
  quiet_tensorflow()  # before TensorFlow loads: its C++ start-up lines are not for users
  out = OUT.value
  os.makedirs(out, exist_ok=True)
  started = time.time()
  if not ONLY_MAIN_JOB.value:
    _hand_stage(out)
    _data_stage(out, NUM_IMAGES.value, SEED.value, MANO_MODEL_PATH.value)
  from hand_tf import demo_job
  demo_job.run(out, demo_job.JobConfig(
      train_images=TRAIN_IMAGES.value, test_images=TEST_IMAGES.value,
      image_size=IMAGE_SIZE.value, epochs=EPOCHS.value, batch_size=BATCH_SIZE.value,
      seed=SEED.value, mano_model_path=MANO_MODEL_PATH.value,
      max_rotation_deg=MAX_ROTATION.value if MAX_ROTATION.value >= 0 else None), _log)
  _log(f"done in {(time.time() - started) / 60:.1f} min; see {out}/report/summary.md")


def _hand_stage(out):
  """The synthetic hand, posed: contact sheet, meshes and joints."""
  from hand_tf import mesh_io, visualize
  from hand_tf.camera import project
  from mano_tf import pose_sampling
  from mano_tf.layer import ManoLayer, get_mano_model
  from mano_tf.model_file import save_mano_model
  model = get_mano_model(MANO_MODEL_PATH.value)
  if MANO_MODEL_PATH.value is None:
    save_mano_model(model, os.path.join(out, "SYNTH_MANO_RIGHT.pkl"))
    _log(f"wrote the synthetic hand model to {out}/SYNTH_MANO_RIGHT.pkl")

  rng = np.random.default_rng(SEED.value)
  num = NUM_POSES.value
  articulation = pose_sampling.sample_articulations(rng, num).reshape(num, 45)
  # Turn the palm towards the camera (OpenCV axes: x right, y down, z forward).
  global_rotation = np.tile([np.pi / 2, 0.0, 0.0], (num, 1))
  global_rotation[0] = 0.0  # first pose: back of the hand seen from above the palm plane
  pose = np.concatenate([global_rotation, articulation - model.hands_mean], axis=1)
  layer = ManoLayer(model_path=MANO_MODEL_PATH.value, use_pca=False)
  betas = rng.normal(0.0, 1.0, (num, 10)).astype(np.float32)
  betas[0] = 0.0
  vertices, joints = layer(pose.astype(np.float32), betas)
  vertices, joints = vertices.numpy(), joints.numpy()
  _log(f"posed {num} hands: vertices {vertices.shape}, joints {joints.shape}")

  size = 256
  intrinsics = np.array([[480.0, 0, size / 2], [0, 480.0, size / 2], [0, 0, 1]])
  tiles = []
  for k in range(num):
    center = vertices[k].mean(axis=0)
    v = vertices[k] - center + [0.0, 0.0, 0.55]
    j = joints[k] - center + [0.0, 0.0, 0.55]
    tile = np.full((size, size, 3), 245, np.uint8)
    tile = visualize.draw_mesh(tile, v, model.faces, intrinsics)
    tile = visualize.draw_keypoints(tile, project(j, intrinsics), radius=2,
                                    thickness=1)
    tiles.append(tile)
    mesh_io.write_obj(os.path.join(out, f"hand_{k:02d}.obj"), vertices[k], model.faces)
  sheet = visualize.tile_grid(tiles, columns=4)
  cv2.imwrite(os.path.join(out, "posed_hands.png"), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
  with open(os.path.join(out, "joints.json"), "w") as f:
    json.dump({"units": "meters", "order": "FreiHAND/OpenPose 21 keypoints",
               "joints3d": joints.round(6).tolist()}, f)
  _log(f"wrote {out}/posed_hands.png, {num} .obj meshes and joints.json")


def _data_stage(out, num_images, seed, mano_model_path):
  """Synthetic data, simulated and MediaPipe detections, and a contact sheet of them."""
  from hand_tf import visualize
  from hand_tf.data.freihand import read_freihand
  from hand_tf.detection import keypoint_files as detections
  from hand_tf.detection.mediapipe import MediaPipeHandDetector, ModelsMissingError
  from hand_tf.synthetic.dataset import synthesize

  root = os.path.join(out, "synthetic_data")
  summary = synthesize(root, num_images, image_size=224, seed=seed, occluders=True,
                       mano_model_path=mano_model_path)
  stats = summary["detector"]
  _log(f"rendered {num_images} images at {summary['images_per_second']} images/s into {root}; "
       f"simulated detector: median error {stats['median_px_error']:.1f} px, "
       f"{100 * stats['within_px']['10']:.0f}% within 10 px")
  records = read_freihand(root, detections=os.path.join(root, "training_detections.json"))
  truth = np.einsum("nij,nkj->nki", records.intrinsics, records.joints3d)
  truth = truth[..., :2] / truth[..., 2:]
  report = {"synthesis": summary}
  try:
    detector = MediaPipeHandDetector(min_palm_score=0.1)
    found = [detector.detect(cv2.cvtColor(cv2.imread(p), cv2.COLOR_BGR2RGB))
             for p in records.image_paths]
    mp_kp = np.stack([f[0] for f in found])
    hit = np.stack([f[1][0] for f in found]) > 0
    mp_stats = detections.detection_statistics(mp_kp[hit], truth[hit]) if hit.any() else {}
    report["mediapipe"] = {"hands_found": int(hit.sum()), "images": num_images, **mp_stats}
    _log(f"MediaPipe found {hit.sum()}/{num_images} hands" + (
        f", median error {mp_stats['median_px_error']:.1f} px" if hit.any() else ""))
  except ModelsMissingError as e:
    mp_kp, hit = None, None
    _log(f"skipping MediaPipe: {e}")
  tiles = []
  for i in range(min(8, num_images)):
    image = cv2.cvtColor(cv2.imread(records.image_paths[i]), cv2.COLOR_BGR2RGB)
    row = [visualize.draw_keypoints(image, truth[i], 2, 1),
           visualize.draw_keypoints(image, records.keypoints[i], 2, 1)]
    if mp_kp is not None:
      row.append(visualize.draw_keypoints(image, mp_kp[i], 2, 1) if hit[i] else image)
    tiles.append(np.concatenate(row, axis=0))
  sheet = np.concatenate(tiles, axis=1)
  cv2.imwrite(os.path.join(out, "synthetic_data.png"), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
  with open(os.path.join(out, "data_report.json"), "w") as f:
    json.dump(report, f, indent=2)
  _log(f"wrote {out}/synthetic_data.png (rows: ground truth, simulated detector, MediaPipe) "
       f"and {out}/data_report.json")


if __name__ == "__main__":
  startup.run(main)
