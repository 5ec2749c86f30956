"""Left hands through a right-hand network: mirror the crop, predict, mirror back.

MANO and S2HAND are right-handed (FreiHAND holds right hands only).  A left hand is a
right hand reflected through a plane: reflecting the camera frame through its x = 0
plane, M = diag(-1, 1, 1), turns one into the other, and MANO's left model is its right
model reflected so (`mano_tf.synthetic.mirror_to_left`).  A left hand is therefore
predicted by flipping its crop left-right, running the network on the flipped crop with
the flipped camera, and reflecting the result back:

  pixels      u -> W - u (pixel c covers [c, c + 1), `hand_tf.camera`)
  K           F K M, with F the pixel flip: a point M X projects where X projects, flipped
  3D points   x -> -x
  rotations   M R M: axis-angle (a, b, c) -> (a, -b, -c); in this form the pose is the
              left MANO model's
  triangles   winding reversed, so that they still face outwards
"""

from typing import Dict

import numpy as np

REFLECTION = np.diag([-1.0, 1.0, 1.0]).astype(np.float32)
_AXIS_ANGLE_SIGN = np.array([1.0, -1.0, -1.0], np.float32)
# Per output of `hand_tf.contract.OUTPUT_NAMES`: the sign of each value under M
# (None: the output does not change).  camera = scale, axis-angle [3], translation [3] m;
# lighting = 8 strengths and colours, then the light's direction [3] (renderer).
_SIGNS = {
    "vertices": np.array([-1.0, 1.0, 1.0], np.float32),
    "joints3d": np.array([-1.0, 1.0, 1.0], np.float32),
    "pose": _AXIS_ANGLE_SIGN,
    "camera": np.array([1.0, 1.0, -1.0, -1.0, -1.0, 1.0, 1.0], np.float32),
    "lighting": np.array([1.0] * 8 + [-1.0, 1.0, 1.0], np.float32),
    "shape": None,
    "texture": None,  # per vertex or per face: neither is renumbered by the reflection
}


def flip_matrix(width: float) -> np.ndarray:
  """`[3, 3]` map of pixels u -> width - u (v unchanged): the left-right flip of an image
  `width` pixels wide."""
  return np.array([[-1.0, 0.0, width], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], np.float32)


def mirror_image(image: np.ndarray) -> np.ndarray:
  """`[..., H, W, C]` image flipped left-right."""
  return np.ascontiguousarray(np.asarray(image)[..., :, ::-1, :])


def mirror_intrinsics(intrinsics: np.ndarray, width: float) -> np.ndarray:
  """`[..., 3, 3]` K of the flipped image (`width` pixels wide) seeing the reflected
  scene: F K M."""
  return (flip_matrix(width) @ np.asarray(intrinsics, np.float32) @ REFLECTION).astype(
      np.float32)


def mirror_faces(faces: np.ndarray) -> np.ndarray:
  """`[F, 3]` triangles with their winding reversed."""
  return np.asarray(faces)[:, [0, 2, 1]]


def mirror_outputs(outputs: Dict[str, np.ndarray], width: float) -> Dict[str, np.ndarray]:
  """The network's outputs on a flipped crop, reflected back (see the module docstring).

  Args:
    outputs: `hand_tf.contract.OUTPUT_NAMES` -> arrays with any leading dimensions;
      joints2d in pixels of the `width`-pixel crop.
    width: the crop's width in pixels.

  Raises:
    ValueError: an output without a mirroring rule (a new output needs one here).
  """
  mirrored = {}
  for name, value in outputs.items():
    value = np.asarray(value)
    if name == "joints2d":
      mirrored[name] = np.stack([width - value[..., 0], value[..., 1]], axis=-1).astype(
          value.dtype)
    elif name not in _SIGNS:
      raise ValueError(f"no rule to mirror the output {name!r}")
    elif _SIGNS[name] is None:
      mirrored[name] = value
    else:
      sign = _SIGNS[name]
      mirrored[name] = (value * sign).astype(value.dtype)
  return mirrored
