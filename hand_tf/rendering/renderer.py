"""`render`: differentiable RGB, soft silhouette and depth of a coloured mesh.

Visibility comes from `rasterize` (C++ kernel or pure TF); everything after it is
differentiable TensorFlow built on tensorflow-graphics:

1. barycentrics recomputed from the clip-space vertices of the winning triangles
   (`tfg.rendering.barycentrics.differentiable_barycentrics`), so interpolated colours,
   normals and depth have gradients w.r.t. vertices;
2. per-vertex normals (`tfg...mesh.normals.vertex_normals`) and colours interpolated per
   pixel (`tfg.rendering.interpolate`), then ambient + directional Lambertian shading;
3. rasterize-then-splat (`tfg.rendering.splat.splat_at_pixel_centers`): each shaded
   surface sample is splatted with a small Gaussian at its (differentiable) screen
   position, which anti-aliases the silhouette and gives its edges vertex gradients.

Lighting, as in S2HAND's renderer (11 values per image):
  [0] ambient intensity, [1] directional intensity, [2:5] ambient RGB colour,
  [5:8] directional RGB colour, [8:11] direction towards the light (camera frame;
  normalised here, the original used it as given).
"""

from typing import Dict, Tuple

import numpy as np
import tensorflow as tf
from tensorflow_graphics.geometry.representation.mesh import normals as mesh_normals
from tensorflow_graphics.rendering import barycentrics as tfg_barycentrics
from tensorflow_graphics.rendering import interpolate, splat
from tensorflow_graphics.rendering import utils as tfg_utils
from tensorflow_graphics.util import shape

from hand_tf.rendering import camera, rasterize

NUM_LIGHTING = 11


def _check_faces(faces, num_vertices):
  if isinstance(faces, tf.Tensor) and not tf.executing_eagerly():
    faces = tf.cast(faces, tf.int32)
    if num_vertices is not None:
      tf.debugging.assert_less(faces, num_vertices, message="faces index missing vertices")
    return faces
  faces_np = np.asarray(faces)
  if faces_np.ndim != 2 or faces_np.shape[1] != 3:
    raise ValueError(f"faces must have shape [F, 3], got {faces_np.shape}")
  if faces_np.size and (faces_np.min() < 0 or (num_vertices is not None
                                               and faces_np.max() >= num_vertices)):
    raise ValueError(f"faces must index vertices in [0, {num_vertices}); got indices in "
                     f"[{faces_np.min()}, {faces_np.max()}]")
  return tf.constant(faces_np, tf.int32)


def vertex_normals(vertices: tf.Tensor, faces: tf.Tensor) -> tf.Tensor:
  """Unit per-vertex normals (area-weighted), pointing outwards for counter-clockwise faces.

  Args:
    vertices: `[B, V, 3]`.
    faces: `[F, 3]` int32, counter-clockwise seen from outside.

  Returns:
    `[B, V, 3]`.
  """
  batch_faces = tf.broadcast_to(faces, tf.concat([tf.shape(vertices)[:1], tf.shape(faces)], 0))
  # tfg's "clockwise" flag names the opposite convention: with clockwise=True its normals
  # point outwards for our winding (a test checks this).
  return mesh_normals.vertex_normals(vertices, batch_faces, clockwise=True)


def shade(normals: tf.Tensor, albedo: tf.Tensor, lighting: tf.Tensor) -> tf.Tensor:
  """Ambient + directional Lambertian shading.

  Args:
    normals: `[B, ..., 3]` unit surface normals (camera frame).
    albedo: `[B, ..., 3]` surface colour in [0, 1].
    lighting: `[B, 11]`, layout in the module docstring.

  Returns:
    `[B, ..., 3]` shaded colour.
  """
  extra = len(normals.shape) - 2
  expand = lambda t: tf.reshape(t, tf.concat([tf.shape(t)[:1], [1] * extra, [-1]], 0))  # noqa
  ambient = expand(lighting[:, 0:1] * lighting[:, 2:5])
  directional = expand(lighting[:, 1:2] * lighting[:, 5:8])
  direction = tf.math.l2_normalize(lighting[:, 8:11], axis=-1, epsilon=1e-12)
  cosine = tf.nn.relu(tf.reduce_sum(normals * expand(direction), axis=-1, keepdims=True))
  return albedo * (ambient + directional * cosine)


def render(vertices: tf.Tensor, faces, vertex_colors: tf.Tensor, intrinsics: tf.Tensor,
           lighting: tf.Tensor, image_size: Tuple[int, int], backend: str = "auto",
           background: float = 0.0, near: float = 0.01,
           far: float = 10.0) -> Dict[str, tf.Tensor]:
  """Renders coloured meshes seen by pinhole cameras.

  Args:
    vertices: `[B, V, 3]` in the camera frame, meters (OpenCV: x right, y down, z forward).
    faces: `[F, 3]` int triangle indices, counter-clockwise seen from outside.
    vertex_colors: `[B, V, 3]` albedo in [0, 1].
    intrinsics: `[B, 3, 3]` camera matrices K in pixels (see `camera.project`).
    lighting: `[B, 11]` (see the module docstring).
    image_size: (height, width) in pixels.
    backend: 'auto', 'kernel' or 'tf' (see `rasterize`).
    background: value of rgb where nothing is drawn.
    near, far: clipping distances, meters.

  Returns:
    A dict with
      rgb: `[B, H, W, 3]` shaded colour, composited over `background`;
      silhouette: `[B, H, W, 1]` soft coverage in [0, 1];
      mask: `[B, H, W, 1]` hard coverage of pixel centres (no gradient);
      depth: `[B, H, W, 1]` camera z in meters of the visible surface, 0 elsewhere;
      triangle_ids: `[B, H, W, 1]` int32 visible triangle, -1 for background;
      barycentrics: `[B, H, W, 3]` perspective-correct barycentrics (0 off the mesh).
  """
  vertices = tf.convert_to_tensor(vertices, tf.float32)
  vertex_colors = tf.convert_to_tensor(vertex_colors, tf.float32)
  intrinsics = tf.convert_to_tensor(intrinsics, tf.float32)
  lighting = tf.convert_to_tensor(lighting, tf.float32)
  shape.check_static(vertices, tensor_name="vertices", has_rank=3, has_dim_equals=(-1, 3))
  shape.check_static(vertex_colors, tensor_name="vertex_colors", has_rank=3,
                     has_dim_equals=(-1, 3))
  shape.check_static(intrinsics, tensor_name="intrinsics", has_rank=3,
                     has_dim_equals=((-1, 3), (-2, 3)))
  shape.check_static(lighting, tensor_name="lighting", has_rank=2,
                     has_dim_equals=(-1, NUM_LIGHTING))
  shape.compare_batch_dimensions(
      tensors=(vertices, vertex_colors, intrinsics, lighting),
      tensor_names=("vertices", "vertex_colors", "intrinsics", "lighting"),
      last_axes=(0, 0, 0, 0), broadcast_compatible=False)
  shape.compare_dimensions(tensors=(vertices, vertex_colors), axes=(-2, -2),
                           tensor_names=("vertices", "vertex_colors"))
  faces = _check_faces(faces, vertices.shape[1])
  backend = rasterize.resolve_backend(backend)
  size = (int(image_size[0]), int(image_size[1]))
  # Eagerly, tf.vectorized_map (used by tfg's barycentrics and splatting) re-traces on
  # every call; running the body as a cached graph makes eager rendering ~50x faster.
  return _render_graph(vertices, faces, vertex_colors, intrinsics, lighting, size, backend,
                       float(background), float(near), float(far))


# Static shapes: the kernel backend loops over the batch.  No AutoGraph: the body has no
# tensor-dependent Python control flow, and converting it doubled its tracing time.
@tf.function(autograph=False)
def _render_graph(vertices, faces, vertex_colors, intrinsics, lighting, image_size, backend,
                  background, near, far):
  height, width = image_size
  projection = camera.intrinsics_to_clip(intrinsics, (height, width), near, far)
  clip = tfg_utils.transform_homogeneous(projection, vertices)  # [B, V, 4]
  raster = rasterize.rasterize(clip, faces, (height, width), backend)
  framebuffer = tfg_barycentrics.differentiable_barycentrics(raster, clip, faces)

  normals = vertex_normals(vertices, faces)
  attributes = tf.concat([vertex_colors, normals, vertices[..., 2:]], axis=-1)  # 3 + 3 + 1
  pixels = interpolate.interpolate_vertex_attribute(attributes, framebuffer).value
  albedo = pixels[..., 0:3]
  normal = tf.math.l2_normalize(pixels[..., 3:6], axis=-1, epsilon=1e-12)
  depth_value = pixels[..., 6:7]
  # Surface-sample positions for the splat use the rasterizer's fixed barycentrics: with
  # differentiable ones the interpolated point would stay at the pixel centre whatever
  # the vertices do, and the silhouette would get no gradient.
  pixel_clip = interpolate.interpolate_vertex_attribute(clip, raster).value
  mask = framebuffer.foreground_mask  # [B, H, W, 1]
  color = shade(normal, albedo, lighting) * mask

  # Screen position of each surface sample: the pixel centre in the forward pass, but a
  # function of the vertices, so silhouette edges get gradients.
  safe_w = tf.where(mask > 0, pixel_clip[..., 3:4], 1.0)
  ndc = pixel_clip[..., :3] / safe_w
  viewport = (ndc + 1.0) * 0.5 * tf.constant([width, height, 1.0], tf.float32)
  rgba = tf.concat([color, mask], axis=-1)
  splatted, _, _ = tf.vectorized_map(splat.splat_at_pixel_centers,
                                     (viewport[:, None], rgba[:, None]))
  silhouette = splatted[..., 3:4]
  rgb = splatted[..., :3] + (1.0 - silhouette) * background
  depth = depth_value * mask
  triangle_ids = tf.where(mask > 0, framebuffer.triangle_id, -1)
  return {
      "rgb": rgb,
      "silhouette": silhouette,
      "mask": mask,
      "depth": depth,
      "triangle_ids": triangle_ids,
      "barycentrics": framebuffer.barycentrics.value,
  }
