"""TensorBoard image summaries of training: input, render, and keypoint overlay."""

from typing import Dict

import cv2
import numpy as np
import tensorflow as tf

from hand_tf import visualize
from hand_tf.rendering import renderer


def _to_uint8(images: np.ndarray) -> np.ndarray:
  return (np.clip(images, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def training_images(model, faces, batch: Dict[str, tf.Tensor], max_images: int = 3,
                    render_backend: str = "auto") -> Dict[str, np.ndarray]:
  """Predicts on the first images of a batch and returns three `[N, H, W, 3]` uint8 panels.

  input: the crops; render: the textured, lit mesh the photometric loss compares (black
  background); overlay: the crop with the detections as white crosses and the projected
  joints of the 3D hand as the coloured skeleton.
  """
  image = batch["image"][:max_images]
  intrinsics = batch["intrinsics"][:max_images]
  outputs = model([image, intrinsics], training=False)
  size = image.shape[1:3]
  rendered = renderer.render(outputs["vertices"], faces, tf.tanh(outputs["texture"]),
                             intrinsics, outputs["lighting"], size, backend=render_backend)
  inputs = _to_uint8(image.numpy())
  overlays = []
  for i, crop in enumerate(inputs):
    canvas = visualize.draw_keypoints(crop, outputs["joints2d"][i].numpy(), radius=2,
                                      thickness=1)
    detected = batch["keypoints"][i].numpy()
    for point in detected:
      canvas = _cross(canvas, point)
    overlays.append(canvas)
  return {"input": inputs, "render": _to_uint8(rendered["rgb"].numpy()),
          "overlay": np.stack(overlays)}


def _cross(image: np.ndarray, point, size: int = 2) -> np.ndarray:
  x, y = int(round(float(point[0]))), int(round(float(point[1])))
  cv2.line(image, (x - size, y - size), (x + size, y + size), (255, 255, 255), 1)
  cv2.line(image, (x - size, y + size), (x + size, y - size), (255, 255, 255), 1)
  return image


def write_training_images(writer, step: int, panels: Dict[str, np.ndarray]) -> None:
  with writer.as_default(step=step):
    for name, images in panels.items():
      tf.summary.image(f"images/{name}", images, max_outputs=len(images))
