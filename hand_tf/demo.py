"""`make demo`: the main job on the embedded default (the synthetic hand).

Today it builds the synthetic MANO-format hand, writes it to disk, poses it in natural
poses through `ManoLayer`, and writes a contact sheet (PNG) and one mesh per pose (.obj).
"""

import json
import os
import time

import cv2
import numpy as np
from absl import app, flags

OUT = flags.DEFINE_string("out", "demo_out", "Output folder.")
NUM_POSES = flags.DEFINE_integer("num_poses", 8, "How many random poses to show.")
SEED = flags.DEFINE_integer("seed", 0, "Random seed.")
MANO_MODEL_PATH = flags.DEFINE_string(
    "mano_model_path", None,
    "MANO_RIGHT.pkl (or a folder holding it); default: the built-in synthetic hand.")


def _log(message):
  print(f"[demo {time.strftime('%H:%M:%S')}] {message}", flush=True)


def main(argv):
  del argv
  import tensorflow as tf

  from hand_tf import mesh_io, visualize
  from mano_tf import pose_sampling
  from mano_tf.layer import ManoLayer, get_mano_model
  from mano_tf.model_file import save_mano_model

  out = OUT.value
  os.makedirs(out, exist_ok=True)
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
    tile = visualize.draw_keypoints(tile, visualize.project_points(j, intrinsics), radius=2,
                                    thickness=1)
    tiles.append(tile)
    mesh_io.write_obj(os.path.join(out, f"hand_{k:02d}.obj"), vertices[k], model.faces)
  columns = 4
  rows = [np.concatenate(tiles[r:r + columns], axis=1) for r in range(0, num, columns)]
  rows[-1] = np.pad(rows[-1], ((0, 0), (0, columns * size - rows[-1].shape[1]), (0, 0)),
                    constant_values=255)
  sheet = np.concatenate(rows, axis=0)
  cv2.imwrite(os.path.join(out, "posed_hands.png"), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
  with open(os.path.join(out, "joints.json"), "w") as f:
    json.dump({"units": "meters", "order": "FreiHAND/OpenPose 21 keypoints",
               "joints3d": joints.round(6).tolist()}, f)
  _log(f"wrote {out}/posed_hands.png, {num} .obj meshes and joints.json")
  del tf


if __name__ == "__main__":
  app.run(main)
