"""What makes a rendered hand look photographed: the views people take, skin lit by a
room, the camera's blur, noise and compression, photographs behind it.

Used by `hand_tf.synthetic.dataset` for its 'realistic' generator; measured by
`benchmarks/detector_realism.py` (does MediaPipe, trained on photos, find the hand?).
Every function draws from the generator it is given and nothing else.
"""

import glob
import os
from typing import List

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

# Keypoints (KEYPOINT_NAMES order) that span the palm.
_WRIST, _INDEX_BASE, _MIDDLE_BASE, _PINKY_BASE = 0, 5, 9, 17


def _frame(forward, normal):
  """Orthonormal [3, 3] (columns: forward, normal made orthogonal to it, their cross)."""
  forward = forward / np.linalg.norm(forward)
  normal = normal - np.dot(normal, forward) * forward
  normal /= np.linalg.norm(normal)
  return np.stack([forward, normal, np.cross(forward, normal)], axis=1)


def sample_view_rotation(rng, keypoints_rest: np.ndarray) -> np.ndarray:
  """A global rotation (axis-angle [3]) giving a view of the hand people photograph.

  Fingers point up in the image, rolled by ~30 degrees either way (one view in seven
  at any roll); the palm or the back faces the camera, turned by up to 40 degrees about the
  finger axis; the fingers lean towards or away from the camera by ~25 degrees.

  Args:
    keypoints_rest: `[21, 3]` the right hand's keypoints with no global rotation.
  """
  palm_side = np.cross(keypoints_rest[_INDEX_BASE] - keypoints_rest[_WRIST],
                       keypoints_rest[_PINKY_BASE] - keypoints_rest[_WRIST])
  hand = _frame(keypoints_rest[_MIDDLE_BASE] - keypoints_rest[_WRIST], palm_side)
  # In the camera frame (x right, y down, z forward): fingers up, palm to the camera.
  facing = -1.0 if rng.uniform() < 0.6 else 1.0  # palm (60%) or back to the camera
  upright = _frame(np.array([0.0, -1.0, 0.0]), np.array([0.0, 0.0, facing]))
  roll = rng.normal(0.0, 30.0) if rng.uniform() < 0.85 else rng.uniform(-180.0, 180.0)
  view = (Rotation.from_euler("z", roll, degrees=True)
          * Rotation.from_euler("x", rng.normal(0.0, 25.0), degrees=True)
          * Rotation.from_rotvec(np.array([0.0, -1.0, 0.0]) * np.deg2rad(rng.uniform(-40, 40))))
  target = view.as_matrix() @ upright
  return Rotation.from_matrix(target @ hand.T).as_rotvec()


def sample_light(rng) -> dict:
  """A room's light: a key light (mostly from above and the camera's side), a sky/ground
  ambient pair, and the skin's highlight."""
  direction = np.array([rng.normal(0, 0.6), -abs(rng.normal(0.5, 0.5)), -rng.uniform(0.3, 1.0)])
  warmth = rng.uniform(-0.1, 0.1)
  key_color = np.array([1.0 + warmth, 1.0, 1.0 - warmth])
  return {
      "direction": direction / np.linalg.norm(direction),  # towards the light
      "key": rng.uniform(0.5, 1.0) * key_color,
      "sky": rng.uniform(0.35, 0.65) * np.array([1.0, 1.0, 1.0 + rng.uniform(0, 0.1)]),
      "ground": rng.uniform(0.1, 0.3),
      "wrap": rng.uniform(0.2, 0.5),  # light reaching past the terminator, as in skin
      "shininess": rng.uniform(8.0, 40.0),
      "specular": rng.uniform(0.03, 0.2),
  }


def shade(albedo: np.ndarray, normals: np.ndarray, view: np.ndarray, light: dict,
          ground_color: np.ndarray) -> np.ndarray:
  """Skin under `sample_light`'s light.

  Args:
    albedo: `[H, W, 3]` surface colour in [0, 1].
    normals: `[H, W, 3]` unit normals, camera frame (y down).
    view: `[H, W, 3]` unit vectors from the surface towards the camera.
    light: `sample_light`'s dict.
    ground_color: `[3]` the background's mean colour (light bounced off the scene).

  Returns:
    `[H, W, 3]` colour (not clipped).
  """
  up = np.clip(-normals[..., 1:2], -1.0, 1.0)  # 1 facing up, -1 facing down
  ambient = (0.5 * (1 + up) * light["sky"]
             + 0.5 * (1 - up) * light["ground"] * (0.5 + ground_color))
  cosine = np.sum(normals * light["direction"], axis=-1, keepdims=True)
  diffuse = np.clip((cosine + light["wrap"]) / (1 + light["wrap"]), 0.0, None) * light["key"]
  halfway = view + light["direction"]
  halfway /= np.linalg.norm(halfway, axis=-1, keepdims=True) + 1e-9
  highlight = np.clip(np.sum(normals * halfway, axis=-1, keepdims=True), 0.0, None)
  specular = light["specular"] * highlight ** light["shininess"] * (cosine > 0) * light["key"]
  return albedo * (ambient + diffuse) + specular


def bundled_photos() -> List[str]:
  """Colour photographs that ship inside installed packages (scikit-image's and
  matplotlib's sample data), for backgrounds: nothing is downloaded."""
  paths = []
  for package, names in (("skimage", ("data/astronaut.png", "data/chelsea.png",
                                      "data/coffee.png", "data/rocket.jpg",
                                      "data/motorcycle_left.png", "data/motorcycle_right.png",
                                      "data/brick.png",
                                      "data/gravel.png", "data/grass.png")),
                         ("matplotlib", ("mpl-data/sample_data/grace_hopper.jpg",))):
    try:
      module = __import__(package)
    except ImportError:
      continue
    base = os.path.dirname(module.__file__)
    paths += [p for name in names for p in glob.glob(os.path.join(base, name))]
  return sorted(paths)


def photo_background(rng, photos: List[np.ndarray], size: int) -> np.ndarray:
  """`[size, size, 3]` float32: a random crop of a random photo (`[H, W, 3]` float32 in
  [0, 1]), flipped, turned and recoloured at random, so a dozen photos give many
  backgrounds."""
  image = photos[rng.integers(len(photos))]
  height, width = image.shape[:2]
  side = int(rng.uniform(0.25, 1.0) * min(height, width))
  y, x = rng.integers(0, height - side + 1), rng.integers(0, width - side + 1)
  crop = cv2.resize(image[y:y + side, x:x + side], (size, size), interpolation=cv2.INTER_AREA)
  crop = np.rot90(crop, rng.integers(4))
  if rng.uniform() < 0.5:
    crop = crop[:, ::-1]
  gain = rng.uniform(0.6, 1.2) * (1 + rng.normal(0, 0.08, 3))
  return np.clip(crop * gain, 0, 1).astype(np.float32)


def camera_effects(rng, image: np.ndarray) -> np.ndarray:
  """A photo's imperfections on a `[H, W, 3]` float image in [0, 1]: defocus blur,
  white balance and exposure, sensor noise.  (JPEG compression: the writer's quality.)
  Blur is in pixels of a 224 px image, scaled to this one's size."""
  sigma = rng.uniform(0.0, 1.2) * image.shape[0] / 224
  if sigma > 0.3:
    image = cv2.GaussianBlur(image, (0, 0), sigma)
  image = image * rng.uniform(0.8, 1.15) * (1 + rng.normal(0, 0.04, 3))
  image = image + rng.normal(0, rng.uniform(0.0, 0.025), image.shape)
  return np.clip(image, 0, 1).astype(np.float32)


def jpeg_quality(rng) -> int:
  return int(rng.integers(55, 96))
