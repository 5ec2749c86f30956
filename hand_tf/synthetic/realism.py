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

from hand_tf.rendering import renderer
from hand_tf.synthetic import forearm, scenes

# Keypoints (KEYPOINT_NAMES order) that span the palm.
_WRIST, _INDEX_BASE, _MIDDLE_BASE, _PINKY_BASE = 0, 5, 9, 17


def _palm_side(keypoints):
  """`[3]` unit normal of a right hand's palm, pointing out of the palm (not the back)."""
  normal = np.cross(keypoints[_INDEX_BASE] - keypoints[_WRIST],
                    keypoints[_PINKY_BASE] - keypoints[_WRIST])
  return normal / np.linalg.norm(normal)


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
  hand = _frame(keypoints_rest[_MIDDLE_BASE] - keypoints_rest[_WRIST],
                _palm_side(keypoints_rest))
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


def sample_scene(rng, photos: List[np.ndarray], image_size: int,
                 held_objects: bool = False) -> dict:
  """A scene's light, background, arm and camera draws (`render_scenes` reads them);
  with `held_objects`, 40% of the hands hold something (`held_object`)."""
  use_photo = len(photos) and rng.uniform() < 0.8
  sleeve = rng.uniform() < 0.5
  return {
      "light": sample_light(rng),
      "background": (photo_background(rng, photos, image_size) if use_photo
                     else scenes.procedural_background(rng, image_size)),
      "background_blur": rng.uniform(0.0, 2.5),
      "arm_length": rng.uniform(0.2, 0.3),
      "arm_widening": rng.uniform(1.05, 1.35),
      # A sleeve from this far up the arm (meters; past the arm's end: none).
      "sleeve_from": rng.uniform(0.04, 0.2) if sleeve else 1.0,
      "sleeve_color": rng.uniform(0.05, 0.9, 3),
      "effects_rng": np.random.default_rng(rng.integers(2 ** 63)),
      "object": (held_object_draws(rng) if held_objects and rng.uniform() < 0.4 else None),
  }


# Keypoints (KEYPOINT_NAMES order) of the knuckles.
_KNUCKLES = (5, 9, 13, 17)
_OBJECT_SEGMENTS = 16


def held_object_draws(rng) -> dict:
  """A cylinder held in the hand (a pen, a bottle, a handle): its size, colour and where
  along the palm it passes."""
  return {"radius": rng.uniform(0.006, 0.035), "length": rng.uniform(0.1, 0.25),
          "color": rng.uniform(0.05, 0.95, 3), "along": rng.uniform(0.3, 0.8),
          "tilt_deg": rng.normal(0.0, 20.0)}


def held_object(keypoints: np.ndarray, draws: dict, segments: int = _OBJECT_SEGMENTS):
  """A capped cylinder across the palm, just off its palm side, as a grasped object.

  Args:
    keypoints: `[21, 3]` the posed hand's keypoints, meters (camera frame).
    draws: `held_object_draws`'s dict.

  Returns:
    (vertices `[2 segments + 2, 3]`, faces `[4 segments, 3]` counter-clockwise seen from
    outside, indices into these vertices).
  """
  wrist, knuckles = keypoints[_WRIST], keypoints[list(_KNUCKLES)]
  across = knuckles[0] - knuckles[-1]  # index knuckle to little-finger knuckle
  across /= np.linalg.norm(across)
  palm_side = _palm_side(keypoints)
  axis = Rotation.from_rotvec(palm_side * np.deg2rad(draws["tilt_deg"])).apply(across)
  center = (wrist + draws["along"] * (knuckles.mean(axis=0) - wrist)
            + palm_side * (draws["radius"] + 0.01))
  side = np.cross(axis, palm_side)
  angles = np.arange(segments) * 2 * np.pi / segments
  circle = draws["radius"] * (np.cos(angles)[:, None] * palm_side
                              + np.sin(angles)[:, None] * side)
  half = axis * draws["length"] / 2
  vertices = np.concatenate([center - half + circle, center + half + circle,
                             [center - half, center + half]])
  # Around `axis` the circle turns from palm_side to side, i.e. counter-clockwise seen
  # from the +axis end, as `_cylinder_faces` winds it.
  return vertices.astype(np.float32), _cylinder_faces(segments)


def _cylinder_faces(segments: int) -> np.ndarray:
  """`[4 segments, 3]` outward faces of `held_object`'s vertex layout: two rings turning
  counter-clockwise about the axis (near end first), then the near and far centres."""
  faces = []
  for i in range(segments):
    j = (i + 1) % segments
    faces += [(i, j, segments + j), (i, segments + j, segments + i),
              (j, i, 2 * segments), (segments + i, segments + j, 2 * segments + 1)]
  return np.array(faces, np.int32)


# Rendering with this light gives the vertex colours back (times coverage).
_UNLIT = np.array([1, 0, 1, 1, 1, 0, 0, 0, 0, 0, -1], np.float32)


def render_scenes(samples, verts, keypoints, faces, intrinsics, image_size: int,
                  backend: str):
  """Hands + forearms, shaded as skin in a room, over photos, through a camera.

  Args:
    samples: per image, a dict with `sample_scene`'s draws and the hand's "texture"
      (`[V, 3]` albedo).
    verts: `[B, V, 3]` the posed hands, camera frame, meters.
    keypoints: `[B, 21, 3]` their keypoints (where a held object goes).
    faces: `[F, 3]` the hand mesh's triangles.
    intrinsics: `[B, 3, 3]`.
    image_size: the images' side, pixels.
    backend: the rasterizer's (`hand_tf.rendering.rasterize`).

  Returns:
    (images [B, H, W, 3] float in [0, 1], hand mask [B, H, W] bool, depth [B, H, W]).
  """
  loop = forearm.wrist_opening(faces)
  meshes = [forearm.attach(v, faces, loop, s["arm_length"], s["arm_widening"])
            for v, s in zip(verts, samples)]
  # Every image gets an object's vertices, so that the batch shares one mesh; where the
  # hand holds none they all sit on the wrist, and its triangles cover no pixel.
  object_faces = _cylinder_faces(_OBJECT_SEGMENTS)
  objects = [held_object(k, s["object"])[0] if s["object"] else
             np.repeat(k[_WRIST][None], 2 * _OBJECT_SEGMENTS + 2, axis=0)
             for k, s in zip(keypoints, samples)]
  all_verts = np.stack([np.concatenate([m[0], o]) for m, o in zip(meshes, objects)])
  all_faces = np.concatenate([meshes[0][1], object_faces + len(meshes[0][0])])
  colors = []
  for s, (_, _, along), object_verts in zip(samples, meshes, objects):
    skin = s["texture"].mean(axis=0)
    arm = np.where(along[:, None] > s["sleeve_from"], s["sleeve_color"], skin)
    held = np.tile(s["object"]["color"] if s["object"] else skin, (len(object_verts), 1))
    colors.append(np.concatenate([s["texture"], arm, held]).astype(np.float32))
  unlit = np.tile(_UNLIT, (len(samples), 1))
  size = (image_size, image_size)
  albedo_out = renderer.render(all_verts, all_faces, np.stack(colors), intrinsics, unlit,
                               size, backend=backend)
  normals = renderer.vertex_normals(all_verts, all_faces).numpy()
  normal_out = renderer.render(all_verts, all_faces, (normals + 1) / 2, intrinsics, unlit,
                               size, backend=backend)
  coverage = albedo_out["silhouette"].numpy()
  safe = np.maximum(coverage, 1e-4)
  albedo = albedo_out["rgb"].numpy() / safe
  normal = normal_out["rgb"].numpy() / safe * 2 - 1
  normal /= np.linalg.norm(normal, axis=-1, keepdims=True) + 1e-9
  pixels = np.stack([*np.meshgrid(np.arange(image_size) + 0.5, np.arange(image_size) + 0.5)]
                    + [np.ones((image_size, image_size))], axis=-1)
  images = []
  for b, s in enumerate(samples):
    rays = pixels @ np.linalg.inv(intrinsics[b]).T
    view = -rays / np.linalg.norm(rays, axis=-1, keepdims=True)
    background = s["background"]
    blur = s["background_blur"] * image_size / 224  # depth of field, 224 px terms
    if blur > 0.3:
      background = cv2.GaussianBlur(background, (0, 0), blur)
    color = shade(albedo[b], normal[b], view, s["light"],
                  background.reshape(-1, 3).mean(axis=0))
    image = np.clip(color, 0, 1) * coverage[b] + (1 - coverage[b]) * background
    images.append(camera_effects(s["effects_rng"], image))
  triangle = albedo_out["triangle_ids"].numpy()[..., 0]
  hand = (triangle >= 0) & (triangle < len(faces))
  return np.stack(images), hand, albedo_out["depth"].numpy()[..., 0]
