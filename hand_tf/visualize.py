"""Drawing meshes and keypoints with OpenCV (no renderer needed, works with any runtime)."""

from typing import Optional, Sequence

import cv2
import numpy as np

from hand_tf.camera import project
from mano_tf import constants

# One colour per finger (BGR is not used: images here are RGB uint8).
FINGER_COLORS = ((230, 60, 60), (60, 180, 60), (60, 100, 230), (230, 170, 40), (170, 60, 200))


def draw_mesh(image: np.ndarray, vertices: np.ndarray, faces: np.ndarray,
              intrinsics: np.ndarray, vertex_colors: Optional[np.ndarray] = None,
              light_dir: Sequence[float] = (0.2, 0.4, 1.0), alpha: float = 1.0) -> np.ndarray:
  """Draws a shaded mesh over an RGB image (painter's algorithm, back faces culled, the
  outline antialiased).

  Args:
    image: `[H, W, 3]` uint8 RGB; not modified.
    vertices: `[V, 3]` camera-frame vertices in meters (OpenCV axes).
    faces: `[F, 3]` triangle indices, counter-clockwise seen from outside.
    intrinsics: `[3, 3]` camera matrix in pixels.
    vertex_colors: optional `[V, 3]` RGB in [0, 1]; a skin tone by default.
    light_dir: direction the light travels, camera frame (default: from behind the camera).
    alpha: opacity of the mesh over the image.

  Returns:
    A new `[H, W, 3]` uint8 image.
  """
  canvas = image.copy()
  paint_mesh(canvas, vertices, faces, intrinsics, vertex_colors, light_dir, alpha)
  return canvas


def face_neighbours(faces: np.ndarray) -> np.ndarray:
  """`[F, 3]` the face across each face's edges (k, k+1), or -1 on an open boundary.

  Args:
    faces: `[F, 3]` triangle indices, consistently wound (each directed edge once).
  """
  faces = np.asarray(faces, np.int64)
  num_vertices = int(faces.max()) + 1 if faces.size else 0
  start, end = faces, np.roll(faces, -1, axis=1)
  edge_keys = (start * num_vertices + end).ravel()  # edge (k, k+1) of face f at 3f + k
  across_keys = (end * num_vertices + start).ravel()
  sorted_edges = np.argsort(edge_keys)
  found = np.searchsorted(edge_keys[sorted_edges], across_keys).clip(0, len(edge_keys) - 1)
  match = sorted_edges[found]
  neighbours = np.where(edge_keys[match] == across_keys, match // 3, -1)
  return neighbours.reshape(-1, 3)


_NEIGHBOURS_CACHE = {}


def _cached_neighbours(faces: np.ndarray) -> np.ndarray:
  # A frame's hands share one face array: the adjacency is built once per mesh topology.
  key = (faces.shape, faces.dtype.str, faces.tobytes())
  if key not in _NEIGHBOURS_CACHE:
    if len(_NEIGHBOURS_CACHE) > 8:
      _NEIGHBOURS_CACHE.clear()
    _NEIGHBOURS_CACHE[key] = face_neighbours(faces)
  return _NEIGHBOURS_CACHE[key]


def paint_mesh(canvas: np.ndarray, vertices: np.ndarray, faces: np.ndarray,
               intrinsics: np.ndarray, vertex_colors: Optional[np.ndarray] = None,
               light_dir: Sequence[float] = (0.2, 0.4, 1.0), alpha: float = 1.0) -> None:
  """`draw_mesh` onto `canvas` itself (`[H, W, 3]` uint8 RGB, modified in place): a frame
  with several hands is then copied once, not once a hand and once for its keypoints."""
  uv = project(vertices, intrinsics)
  # Per-face sums written out over the 3 corners: numpy's axis reductions and einsum on
  # [F, 3, 3] arrays cost as much as all of OpenCV's filling at this size.
  a, b, c = (vertices[faces[:, i]] for i in range(3))
  normals = np.cross(b - a, c - a)
  normals /= np.linalg.norm(normals, axis=1, keepdims=True) + 1e-12
  centers = (a + b + c) / 3.0
  facing = (normals * centers).sum(axis=1) < 0  # facing the camera
  drawn = facing & (a[:, 2] > 1e-6) & (b[:, 2] > 1e-6) & (c[:, 2] > 1e-6)
  order = np.flatnonzero(drawn)
  if not len(order):
    return
  order = order[np.argsort(-centers[order, 2])]  # far to near
  light = -np.asarray(light_dir, dtype=np.float64)
  light /= np.linalg.norm(light)
  shade = 0.35 + 0.65 * np.clip(normals[order] @ light, 0.0, 1.0)
  if vertex_colors is None:
    face_colors = np.array([0.87, 0.68, 0.58])
  else:
    drawn_faces = faces[order]
    vertex_colors = np.asarray(vertex_colors)
    face_colors = (vertex_colors[drawn_faces[:, 0]] + vertex_colors[drawn_faces[:, 1]]
                   + vertex_colors[drawn_faces[:, 2]]) / 3.0
  # Integer colours: OpenCV takes them as they are, and ints convert to lists faster.
  colors = np.clip(face_colors * shade[:, None] * 255.0 + 0.5, 0, 255).astype(np.int32)
  shift = 4  # sub-pixel precision of cv2.fillConvexPoly (fractional bits)
  scale = 1 << shift
  corners = np.round(uv[faces[order]] * scale).astype(np.int32)  # [drawn F, 3, 2]
  under = None
  if alpha < 1.0:
    # Blend only the mesh's box: the rest of the canvas stays as it was.
    height, width = canvas.shape[:2]
    x0, y0 = np.clip(corners.reshape(-1, 2).min(axis=0) // scale - 1, 0, [width, height])
    x1, y1 = np.clip(corners.reshape(-1, 2).max(axis=0) // scale + 2, 0, [width, height])
    box = np.s_[y0:y1, x0:x1]
    under = canvas[box].copy()
  # Antialiasing shows only on the outline (faces next to a culled or missing face);
  # inside, neighbours cover each other's edges, and OpenCV's antialiased fill costs
  # ~40% more a face.
  neighbours = _cached_neighbours(faces)[order]
  outline = np.any(neighbours < 0, axis=1) | ~np.all(drawn[neighbours], axis=1)
  line_types = np.where(outline, cv2.LINE_AA, cv2.LINE_8).tolist()
  # The loop only hands OpenCV its triangles, a face at a time: each has its own colour,
  # and the painter's order must hold.
  fill = cv2.fillConvexPoly
  for pts, color, line_type in zip(list(corners), colors.tolist(), line_types):
    fill(canvas, pts, color, line_type, shift)
  if under is not None and under.size:
    canvas[box] = cv2.addWeighted(canvas[box], alpha, under, 1.0 - alpha, 0.0)


def draw_keypoints(image: np.ndarray, keypoints: np.ndarray, radius: int = 3,
                   thickness: int = 2) -> np.ndarray:
  """Draws 21 keypoints (KEYPOINT_NAMES order, pixels) and their bones, one colour a finger."""
  canvas = image.copy()
  paint_keypoints(canvas, keypoints, radius, thickness)
  return canvas


def paint_keypoints(canvas: np.ndarray, keypoints: np.ndarray, radius: int = 3,
                    thickness: int = 2) -> None:
  """`draw_keypoints` onto `canvas` itself (modified in place)."""
  pts = [tuple(p) for p in np.rint(np.asarray(keypoints, np.float64)).astype(int).tolist()]
  for parent, child in constants.BONES:
    cv2.line(canvas, pts[parent], pts[child], FINGER_COLORS[(child - 1) // 4], thickness,
             cv2.LINE_AA)
  for k, p in enumerate(pts):
    color = (255, 255, 255) if k == 0 else FINGER_COLORS[(k - 1) // 4]
    cv2.circle(canvas, p, radius, color, -1, cv2.LINE_AA)


def tile_grid(tiles: Sequence[np.ndarray], columns: int = 4, fill: int = 255) -> np.ndarray:
  """Equal-size `[h, w, 3]` uint8 tiles -> one image of rows of `columns` tiles, left to
  right and top to bottom, the last row completed with tiles of `fill`."""
  tiles = list(tiles)
  tiles += [np.full_like(tiles[0], fill)] * (-len(tiles) % columns)
  rows = [np.concatenate(tiles[i:i + columns], axis=1) for i in range(0, len(tiles), columns)]
  return np.concatenate(rows, axis=0)
