"""Renderer speed: forward and forward+backward milliseconds per image.

  python benchmarks/render.py [--batch 16] [--sizes 224,128] [--backends kernel,tf]

The scene is the synthetic hand in a natural pose, filling a hand-centred crop the way
training images do (about 60% of the crop's width).  Each row is the median of
`--repeats` timed calls of a tf.function after one warm-up call; the 'tf' backend is also
run under XLA (jit_compile=True), which is how it is meant to run on accelerators.
"""

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import flags  # noqa: E402

from hand_tf import startup
from hand_tf.rendering import renderer  # noqa: E402
from mano_tf import pose_sampling  # noqa: E402
from mano_tf.layer import ManoLayer  # noqa: E402

BATCH = flags.DEFINE_integer("batch", 16, "Images per call.")
SIZES = flags.DEFINE_list("sizes", ["224", "128"], "Square image sizes.")
BACKENDS = flags.DEFINE_list("backends", ["kernel", "tf"], "Rasterizer backends.")
REPEATS = flags.DEFINE_integer("repeats", 5, "Timed calls per row.")


def _scene(batch, size):
  layer = ManoLayer(use_pca=False)
  rng = np.random.default_rng(0)
  articulation = pose_sampling.sample_articulations(rng, batch).reshape(batch, 45)
  pose = np.concatenate([np.tile([[np.pi / 2, 0, 0]], (batch, 1)),
                         articulation - layer._hands_mean.numpy()], axis=1).astype(np.float32)
  vertices, _ = layer(pose, tf.zeros([batch, 10]))
  vertices = vertices - tf.reduce_mean(vertices, axis=1, keepdims=True) + [0.0, 0.0, 0.5]
  focal = 0.6 * size * 0.5 / 0.19  # a 19 cm hand spans 60% of the crop at 0.5 m
  k = np.tile(np.array([[focal, 0, size / 2], [0, focal, size / 2], [0, 0, 1]], np.float32),
              (batch, 1, 1))
  colors = tf.ones_like(vertices) * [0.8, 0.6, 0.5]
  lighting = np.tile(np.array([[0.5, 0.6, 1, 1, 1, 1, 1, 1, 0.2, -0.3, -1]], np.float32),
                     (batch, 1))
  return vertices, layer.faces, colors, k, lighting


def _median_ms(fn, repeats):
  fn()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return 1e3 * float(np.median(times))


def main(argv):
  del argv
  batch = BATCH.value
  print(f"TensorFlow {tf.__version__}, {os.cpu_count()} CPU cores, batch {batch}")
  print(f"{'backend':<10} {'size':>5} {'fwd ms/img':>11} {'fwd+bwd ms/img':>15}")
  for size in [int(s) for s in SIZES.value]:
    vertices, faces, colors, k, lighting = _scene(batch, size)
    variables = tf.Variable(vertices)
    for backend in BACKENDS.value:
      for jit in ([False, True] if backend == "tf" else [False]):
        fwd, fwd_bwd = _compiled(variables, faces, colors, k, lighting, size, backend, jit)
        name = backend + ("+xla" if jit else "")
        f_ms = _median_ms(lambda: fwd().numpy(), REPEATS.value) / batch  # noqa: B023
        fb_ms = _median_ms(lambda: fwd_bwd().numpy(), REPEATS.value) / batch  # noqa: B023
        print(f"{name:<10} {size:>5} {f_ms:>11.2f} {fb_ms:>15.2f}", flush=True)


def _compiled(variables, faces, colors, k, lighting, size, backend, jit):
  """Forward and forward+backward graphs for one configuration."""

  def forward():
    return renderer.render(variables, faces, colors, k, lighting, (size, size),
                           backend=backend)["rgb"]

  def forward_backward():
    with tf.GradientTape() as tape:
      out = renderer.render(variables, faces, colors, k, lighting, (size, size),
                            backend=backend)
      loss = tf.reduce_sum(out["rgb"]) + tf.reduce_sum(out["silhouette"])
    return tape.gradient(loss, variables)

  return tf.function(forward, jit_compile=jit), tf.function(forward_backward, jit_compile=jit)


if __name__ == "__main__":
  startup.run(main)
