"""Visibility: which triangle covers each pixel, from one of two backends.

* 'kernel': tensorflow-graphics' C++ CPU rasterizer (compiled by `kernel.py`), fast on
  CPU; a host op, so it cannot run inside XLA or on an accelerator without a round trip.
* 'tf': the same computation in plain TensorFlow ops (2D-homogeneous edge functions,
  every pixel against every triangle in chunks), which XLA compiles for GPU/TPU.
* 'auto': 'tf' when a GPU/TPU is visible, else 'kernel' if it can be loaded, else 'tf'.

Both return a tfg `Framebuffer` with one layer whose barycentrics carry no gradient; the
renderer recomputes differentiable barycentrics from the winning triangle ids, as tfg does.
"""

from typing import Tuple

import tensorflow as tf
from tensorflow_graphics.rendering import framebuffer as fb

from hand_tf.rendering import kernel

BACKENDS = ("auto", "kernel", "tf")


@tf.autograph.experimental.do_not_convert
def resolve_backend(backend: str) -> str:
  """Maps 'auto' to a concrete backend; validates the name."""
  if backend not in BACKENDS:
    raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
  if backend != "auto":
    return backend
  if tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"):
    return "tf"
  return "kernel" if kernel.is_available() else "tf"


def _framebuffer(triangle_id, barycentrics, mask, faces):
  """Packs [B, H, W] ids, [B, H, W, 3] barycentrics and [B, H, W] mask.

  The result has no layer dimension (like tfg's `Framebuffer.layer(0)`), which is what
  tfg's differentiable barycentrics and interpolation expect for a single layer.
  """
  triangle_id = triangle_id[..., None]
  return fb.Framebuffer(
      foreground_mask=mask[..., None],
      triangle_id=triangle_id,
      vertex_ids=tf.gather(faces, triangle_id[..., 0]),
      barycentrics=fb.RasterizedAttribute(barycentrics, None, None))


def rasterize_kernel(clip_vertices: tf.Tensor, faces: tf.Tensor,
                     image_size: Tuple[int, int]) -> fb.Framebuffer:
  """Rasterizes with the compiled C++ kernel (no face culling).

  Args:
    clip_vertices: `[B, V, 4]` clip-space vertices (static B).
    faces: `[F, 3]` int32.
    image_size: (height, width).
  """
  ops = kernel.load()
  height, width = image_size
  ids, bary, masks = [], [], []
  for b in range(clip_vertices.shape[0]):
    barycentrics, triangle_ids, z_buffer = ops.rasterize_triangles(
        clip_vertices[b], faces, width, height, 1, 0)
    # The op declares no output shapes; graphs need them.
    barycentrics = tf.ensure_shape(barycentrics, [1, height, width, 3])
    triangle_ids = tf.ensure_shape(triangle_ids, [1, height, width])
    z_buffer = tf.ensure_shape(z_buffer, [1, height, width])
    ids.append(triangle_ids[0])
    bary.append(barycentrics[0])
    masks.append(tf.cast(tf.not_equal(z_buffer[0], 1.0), tf.float32))
  return _framebuffer(tf.stack(ids), tf.stop_gradient(tf.stack(bary)), tf.stack(masks), faces)


def rasterize_tf(clip_vertices: tf.Tensor, faces: tf.Tensor, image_size: Tuple[int, int],
                 triangles_per_chunk: int = 128) -> fb.Framebuffer:
  """Rasterizes with plain TensorFlow ops (XLA-compatible; no face culling).

  Each pixel centre is tested against every triangle with 2D-homogeneous edge functions
  (which handle triangles crossing the camera plane), in chunks of triangles to bound
  memory at B * H * W * chunk; the nearest covering triangle wins, the earlier one on a
  tie, as in the C++ kernel.

  Args:
    clip_vertices: `[B, V, 4]` clip-space vertices.
    faces: `[F, 3]` int32.
    image_size: (height, width).
    triangles_per_chunk: triangles tested per step.
  """
  height, width = image_size
  clip_vertices = tf.stop_gradient(tf.convert_to_tensor(clip_vertices, tf.float32))
  batch = tf.shape(clip_vertices)[0]
  num_faces = faces.shape[0]
  chunk = min(triangles_per_chunk, num_faces)
  num_chunks = -(-num_faces // chunk)
  padded = tf.concat([faces, tf.zeros([num_chunks * chunk - num_faces, 3], faces.dtype)], 0)
  valid = tf.range(num_chunks * chunk) < num_faces

  xs = (2.0 * tf.range(width, dtype=tf.float32) + 1.0) / width - 1.0
  ys = (2.0 * tf.range(height, dtype=tf.float32) + 1.0) / height - 1.0
  px, py = tf.meshgrid(xs, ys)
  pixels = tf.stack([tf.reshape(px, [-1]), tf.reshape(py, [-1]),
                     tf.ones([height * width])], axis=-1)  # [P, 3] homogeneous

  def edge_matrices(face_ids):
    """[B, C, 3, 3] edge functions (rows) and the sign of each triangle's determinant."""
    corners = tf.gather(clip_vertices, tf.gather(padded, face_ids), axis=1)  # [B, C, 3, 4]
    xyw = tf.gather(corners, [0, 1, 3], axis=-1)
    v0, v1, v2 = xyw[:, :, 0], xyw[:, :, 1], xyw[:, :, 2]
    edges = tf.stack([tf.linalg.cross(v1, v2), tf.linalg.cross(v2, v0),
                      tf.linalg.cross(v0, v1)], axis=2)
    det = tf.reduce_sum(v0 * edges[:, :, 0], axis=-1)
    return corners, edges * tf.sign(det)[..., None, None], det

  def body(k, best_z, best_id):
    ids = k * chunk + tf.range(chunk)  # static length, as XLA needs
    corners, edges, det = edge_matrices(ids)
    # Edge values e_i(p) = edges_i . p; barycentrics are e_i / sum(e), so depth
    # z/w = sum(e_i z_i) / sum(e_i w_i) needs no per-pair barycentrics at all.
    e = [tf.einsum("bcj,pj->bpc", edges[:, :, i], pixels) for i in range(3)]
    z_num = tf.einsum("bcj,pj->bpc", tf.einsum("bcij,bci->bcj", edges, corners[..., 2]), pixels)
    w_num = tf.einsum("bcj,pj->bpc", tf.einsum("bcij,bci->bcj", edges, corners[..., 3]), pixels)
    ok = (tf.abs(det) > 1e-12) & tf.gather(valid, ids)[None, :]
    inside = (e[0] >= 0) & (e[1] >= 0) & (e[2] >= 0) & ok[:, None, :] & (w_num > 0)
    z_ndc = z_num / tf.where(inside, w_num, 1.0)
    z_ndc = tf.where(inside & (z_ndc >= -1.0) & (z_ndc <= 1.0), z_ndc, float("inf"))
    local = tf.argmin(z_ndc, axis=-1, output_type=tf.int32)  # [B, P]
    chunk_z = tf.reduce_min(z_ndc, axis=-1)
    closer = chunk_z < best_z
    return (k + 1, tf.where(closer, chunk_z, best_z), tf.where(closer, k * chunk + local, best_id))

  pixels_count = height * width
  init = (tf.constant(0), tf.fill([batch, pixels_count], float("inf")),
          tf.zeros([batch, pixels_count], tf.int32))
  _, best_z, best_id = tf.while_loop(lambda k, *_: k < num_chunks, body, init,
                                     maximum_iterations=num_chunks)
  mask = tf.math.is_finite(best_z)
  best_id = tf.where(mask, best_id, 0)
  # Perspective-correct barycentrics of the winning triangle only.
  corners = tf.gather(clip_vertices, tf.gather(padded, best_id), axis=1, batch_dims=1)
  xyw = tf.gather(corners, [0, 1, 3], axis=-1)  # [B, P, 3, 3]
  v0, v1, v2 = xyw[:, :, 0], xyw[:, :, 1], xyw[:, :, 2]
  e = tf.stack([tf.reduce_sum(tf.linalg.cross(v1, v2) * pixels, -1),
                tf.reduce_sum(tf.linalg.cross(v2, v0) * pixels, -1),
                tf.reduce_sum(tf.linalg.cross(v0, v1) * pixels, -1)], axis=-1)
  total = tf.reduce_sum(e, axis=-1, keepdims=True)
  bary = tf.where(mask[..., None], e / tf.where(total != 0, total, 1.0), 0.0)
  shape = [batch, height, width]
  return _framebuffer(tf.reshape(best_id, shape), tf.reshape(bary, shape + [3]),
                      tf.reshape(tf.cast(mask, tf.float32), shape), faces)


def rasterize(clip_vertices: tf.Tensor, faces: tf.Tensor, image_size: Tuple[int, int],
              backend: str = "auto") -> fb.Framebuffer:
  """Rasterizes `[B, V, 4]` clip-space vertices with the chosen backend (see module doc)."""
  backend = resolve_backend(backend)
  if backend == "kernel":
    return rasterize_kernel(clip_vertices, faces, image_size)
  return rasterize_tf(clip_vertices, faces, image_size)
