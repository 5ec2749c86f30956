"""A synthetic video with ground truth: the synthetic hand moving smoothly before a camera.

For measuring tracking and temporal smoothing (`benchmarks/video_jitter.py`): the hand
turns a little about a palm-on view MediaPipe's detector finds, drifts across the frame
and opens and closes its fingers, each along a slow sinusoid, so that every frame's true
joints (and their acceleration: the true motion's) are known.
"""

from typing import Optional

import numpy as np
import tensorflow as tf
from scipy.spatial.transform import Rotation

from hand_tf.rendering import renderer
from hand_tf.synthetic.scenes import skin_texture
from mano_tf.layer import ManoLayer

BACKGROUND = (0.85, 0.85, 0.8)
# The view the trajectory moves about: a hand MediaPipe finds (tests/hand_images.py).
_BASE_ROTATION = Rotation.from_euler("x", 90, degrees=True) * Rotation.from_euler(
    "z", 110, degrees=True)


def trajectory(num_frames: int, seed: int = 0):
  """Per frame: root rotation [T, 3] (axis-angle), finger pose [T, 45] (within the joint
  bounds) and the hand's centre [T, 3] (meters, camera frame); smooth (periods of 2-6 s
  at 30 frames a second)."""
  rng = np.random.default_rng(seed)
  t = np.arange(num_frames) / 30.0

  def wave(amplitude, period_s):
    return amplitude * np.sin(2 * np.pi * t / period_s + rng.uniform(0, 2 * np.pi))

  turn = np.stack([wave(np.deg2rad(12), rng.uniform(3, 6)) for _ in range(3)], axis=1)
  rotation = (Rotation.from_rotvec(turn) * _BASE_ROTATION).as_rotvec()
  closure = 0.35 + wave(0.3, rng.uniform(2, 4))  # 0 open .. 1 fist
  fingers = np.zeros((num_frames, 15, 3))
  for first in (0, 3, 6, 9):  # index, middle, pinky, ring: flexion about z
    fingers[:, first:first + 3, 2] = np.deg2rad(80) * closure[:, None] * [1.0, 1.0, 0.7]
  fingers[:, 12:15, 2] = np.deg2rad(30) * closure[:, None]  # the thumb, a little
  centre = np.stack([wave(0.03, rng.uniform(3, 6)), wave(0.02, rng.uniform(3, 6)),
                     0.7 + wave(0.05, rng.uniform(4, 6))], axis=1)
  return rotation.astype(np.float32), fingers.reshape(num_frames, 45).astype(np.float32), \
      centre.astype(np.float32)


def render_clip(num_frames: int = 240, size: int = 256, seed: int = 0, batch: int = 16):
  """The clip's frames and truth.

  Returns:
    frames [T, size, size, 3] uint8 RGB; joints3d [T, 21, 3] meters, camera frame;
    intrinsics [3, 3] (focal 800 px at 256 px, principal point centred).
  """
  rotation, fingers, centre = trajectory(num_frames, seed)
  layer = ManoLayer(use_pca=False, flat_hand_mean=True)
  focal = 800.0 * size / 256
  k = np.array([[focal, 0, size / 2], [0, focal, size / 2], [0, 0, 1]], np.float32)
  texture = skin_texture(np.random.default_rng(seed), layer._template.numpy())  # noqa: SLF001
  light = np.array([0.6, 0.5, 1, 1, 1, 1, 1, 1, 0, 0, -1], np.float32)
  frames, joints3d = [], []
  for first in range(0, num_frames, batch):
    rows = slice(first, min(first + batch, num_frames))
    n = len(range(num_frames)[rows])
    pose = np.concatenate([rotation[rows], fingers[rows]], axis=1)
    vertices, joints = layer(pose, tf.zeros([n, 10]))
    mid = tf.reduce_mean(vertices, axis=1, keepdims=True)
    vertices = vertices - mid + centre[rows, None]
    joints = joints - mid + centre[rows, None]
    out = renderer.render(vertices, layer.faces, np.repeat(texture[None], n, 0),
                          np.repeat(k[None], n, 0), np.repeat(light[None], n, 0),
                          (size, size))
    image = out["rgb"].numpy() + (1 - out["silhouette"].numpy()) * BACKGROUND
    frames.append((np.clip(image, 0, 1) * 255).astype(np.uint8))
    joints3d.append(joints.numpy())
  return np.concatenate(frames), np.concatenate(joints3d), k


def jitter(points: np.ndarray, valid: Optional[np.ndarray] = None) -> float:
  """Mean magnitude of the second difference over frames of [T, N, D] points: the
  acceleration per frame^2 in the points' unit (0 for uniform motion).  `valid` [T]:
  frames to use; a second difference counts only when its three frames are valid."""
  acceleration = points[2:] - 2 * points[1:-1] + points[:-2]
  if valid is not None:
    acceleration = acceleration[valid[2:] & valid[1:-1] & valid[:-2]]
  return float(np.linalg.norm(acceleration, axis=-1).mean())
