"""Random scene content for synthetic hand images: skin, light, camera, backgrounds,
occluders.  Every function draws from the generator it is given and nothing else."""

import os
from typing import List, Optional

import cv2
import numpy as np

# Skin tones (linear RGB in [0, 1]) from light to dark.
SKIN_TONES = np.array([[0.94, 0.78, 0.68], [0.84, 0.64, 0.52], [0.70, 0.50, 0.37],
                       [0.52, 0.35, 0.25], [0.34, 0.22, 0.16]])


def skin_texture(rng, template: np.ndarray) -> np.ndarray:
  """[V, 3] per-vertex albedo: a skin tone with smooth, low-frequency variation."""
  t = rng.uniform(0, len(SKIN_TONES) - 1)
  low = int(np.floor(t))
  tone = SKIN_TONES[low] + (t - low) * (SKIN_TONES[min(low + 1, len(SKIN_TONES) - 1)]
                                         - SKIN_TONES[low])
  variation = np.zeros(len(template))
  for _ in range(3):
    direction = rng.normal(size=3)
    frequency = rng.uniform(20.0, 60.0)  # radians per meter: a few cm wavelength
    variation += np.cos(template @ direction * frequency + rng.uniform(0, 2 * np.pi))
  colors = tone[None] * (1.0 + 0.04 * variation[:, None]) + rng.normal(0, 0.01, (len(template), 3))
  return np.clip(colors, 0.0, 1.0).astype(np.float32)


def lighting(rng) -> np.ndarray:
  """[11] lighting in the renderer's layout, the light on the camera's side."""
  ambient = 1.0 - rng.uniform(0.0, 0.15, 3)
  directional = 1.0 - rng.uniform(0.0, 0.15, 3)
  direction = rng.normal(size=3)
  direction[2] = -abs(direction[2]) - 0.6  # towards the camera (z points away from it)
  direction /= np.linalg.norm(direction)
  return np.concatenate([[rng.uniform(0.35, 0.7), rng.uniform(0.3, 0.8)], ambient,
                         directional, direction]).astype(np.float32)


def _value_noise(rng, size, cells):
  grid = rng.uniform(0, 1, (cells, cells, 3)).astype(np.float32)
  return cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)


def procedural_background(rng, size: int) -> np.ndarray:
  """[size, size, 3] float32 in [0, 1]: noise, gradients, stripes or shapes."""
  kind = rng.integers(4)
  base = rng.uniform(0.1, 0.9, 3).astype(np.float32)
  if kind == 0:  # multi-octave value noise
    image = sum(_value_noise(rng, size, c) * w for c, w in ((4, 0.5), (12, 0.3), (40, 0.2)))
    image = 0.5 * image + 0.5 * base
  elif kind == 1:  # gradient
    other = rng.uniform(0.1, 0.9, 3).astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:size, 0:size] / size
    t = np.clip((np.cos(angle) * xs + np.sin(angle) * ys + 1) / 2, 0, 1)[..., None]
    image = base * (1 - t) + other * t
  elif kind == 2:  # stripes / fabric
    other = rng.uniform(0.1, 0.9, 3).astype(np.float32)
    angle = rng.uniform(0, np.pi)
    period = rng.uniform(6, 40)
    ys, xs = np.mgrid[0:size, 0:size]
    t = (np.sin((np.cos(angle) * xs + np.sin(angle) * ys) * 2 * np.pi / period) > 0)
    image = np.where(t[..., None], base, other) + 0.05 * _value_noise(rng, size, 30)
  else:  # clutter of shapes
    image = np.tile(base, (size, size, 1))
    for _ in range(rng.integers(5, 15)):
      color = tuple(float(c) for c in rng.uniform(0, 1, 3))
      center = tuple(int(c) for c in rng.uniform(0, size, 2))
      if rng.uniform() < 0.5:
        axes = tuple(int(a) for a in rng.uniform(5, size / 3, 2))
        cv2.ellipse(image, center, axes, rng.uniform(0, 180), 0, 360, color, -1)
      else:
        corner = tuple(int(c) for c in rng.uniform(0, size, 2))
        cv2.rectangle(image, center, corner, color, -1)
  return np.clip(image, 0, 1).astype(np.float32)


def list_images(directory: Optional[str]) -> List[str]:
  if not directory:
    return []
  names = sorted(n for n in os.listdir(directory)
                 if n.lower().endswith((".jpg", ".jpeg", ".png", ".bmp")))
  return [os.path.join(directory, n) for n in names]


def read_photo(path: str) -> np.ndarray:
  """`[H, W, 3]` float32 RGB in [0, 1]."""
  image = cv2.imread(path)
  if image is None:
    raise ValueError(f"{path}: background image unreadable")
  return cv2.cvtColor(image, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0


def photo_background(rng, paths: List[str], size: int) -> np.ndarray:
  """A random square crop of a random photo, resized to `size`."""
  image = read_photo(paths[rng.integers(len(paths))])
  h, w = image.shape[:2]
  side = int(rng.uniform(0.4, 1.0) * min(h, w))
  y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
  return cv2.resize(image[y:y + side, x:x + side], (size, size), interpolation=cv2.INTER_AREA)


def occluder(rng, size: int, near_uv: np.ndarray):
  """An object in front of the hand: (rgb [size, size, 3], mask [size, size] bool)."""
  mask = np.zeros((size, size), np.uint8)
  center = near_uv + rng.normal(0, size * 0.12, 2)
  if rng.uniform() < 0.5:
    axes = (int(rng.uniform(0.06, 0.2) * size), int(rng.uniform(0.04, 0.12) * size))
    cv2.ellipse(mask, tuple(int(c) for c in center), axes, rng.uniform(0, 180), 0, 360, 1, -1)
  else:
    angle = rng.uniform(0, np.pi)
    length, width = rng.uniform(0.2, 0.5) * size, rng.uniform(0.04, 0.1) * size
    d = np.array([np.cos(angle), np.sin(angle)])
    n = np.array([-d[1], d[0]])
    corners = np.array([center + s * d * length / 2 + t * n * width / 2
                        for s, t in ((-1, -1), (1, -1), (1, 1), (-1, 1))])
    cv2.fillConvexPoly(mask, np.round(corners).astype(np.int32), 1)
  color = rng.uniform(0.05, 0.95, 3).astype(np.float32)
  shading = 0.85 + 0.15 * _value_noise(rng, size, 8)
  return color * shading, mask.astype(bool)
