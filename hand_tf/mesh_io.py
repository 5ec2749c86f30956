"""Writing meshes: Wavefront .obj (with vertex colours) and binary-free ASCII .ply."""

import io
from typing import Optional

import numpy as np

from hand_tf.io import atomic_write_bytes


def _check(vertices, faces, colors):
  vertices = np.asarray(vertices, dtype=np.float64)
  faces = np.asarray(faces, dtype=np.int64)
  if vertices.ndim != 2 or vertices.shape[1] != 3:
    raise ValueError(f"vertices must have shape [V, 3], got {vertices.shape}")
  if faces.ndim != 2 or faces.shape[1] != 3:
    raise ValueError(f"faces must have shape [F, 3], got {faces.shape}")
  if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
    raise ValueError("faces index vertices that do not exist")
  if colors is not None:
    colors = np.clip(np.asarray(colors, dtype=np.float64), 0.0, 1.0)
    if colors.shape != vertices.shape:
      raise ValueError(f"colors must have shape {vertices.shape}, got {colors.shape}")
  return vertices, faces, colors


def write_obj(path, vertices, faces, colors: Optional[np.ndarray] = None):
  """Writes an .obj (vertex colours as the common `v x y z r g b` extension), atomically.

  Args:
    path: destination.
    vertices: `[V, 3]` positions (meters).
    faces: `[F, 3]` 0-based triangle indices.
    colors: optional `[V, 3]` RGB in [0, 1].
  """
  vertices, faces, colors = _check(vertices, faces, colors)
  out = io.StringIO()
  for k, v in enumerate(vertices):
    extra = "" if colors is None else " %.4f %.4f %.4f" % tuple(colors[k])
    out.write("v %.6f %.6f %.6f%s\n" % (v[0], v[1], v[2], extra))
  for f in faces + 1:
    out.write("f %d %d %d\n" % tuple(f))
  atomic_write_bytes(path, out.getvalue().encode())


def write_ply(path, vertices, faces, colors: Optional[np.ndarray] = None):
  """Writes an ASCII .ply with optional uchar vertex colours, atomically."""
  vertices, faces, colors = _check(vertices, faces, colors)
  out = io.StringIO()
  out.write("ply\nformat ascii 1.0\nelement vertex %d\n" % len(vertices))
  out.write("property float x\nproperty float y\nproperty float z\n")
  if colors is not None:
    out.write("property uchar red\nproperty uchar green\nproperty uchar blue\n")
  out.write("element face %d\nproperty list uchar int vertex_indices\nend_header\n" % len(faces))
  for k, v in enumerate(vertices):
    extra = "" if colors is None else " %d %d %d" % tuple(np.round(colors[k] * 255))
    out.write("%.6f %.6f %.6f%s\n" % (v[0], v[1], v[2], extra))
  for f in faces:
    out.write("3 %d %d %d\n" % tuple(f))
  atomic_write_bytes(path, out.getvalue().encode())


def read_obj(path):
  """Reads vertices `[V, 3]` and 0-based triangles `[F, 3]` from an .obj."""
  vertices, faces = [], []
  with open(path) as f:
    for line in f:
      parts = line.split()
      if not parts:
        continue
      if parts[0] == "v":
        vertices.append([float(x) for x in parts[1:4]])
      elif parts[0] == "f":
        faces.append([int(p.split("/")[0]) - 1 for p in parts[1:4]])
  return np.asarray(vertices), np.asarray(faces, dtype=np.int64)
