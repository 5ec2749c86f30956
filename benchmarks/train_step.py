"""Training-step speed: images/s, and the share of step time in each part of the network.

  python benchmarks/train_step.py [--sizes 224,128] [--batch_size 16] [--repeats 3]
      [--configs float32/256,mixed_bfloat16/256,float32/64x1,float32/64x1s64,float32/64/xla]

For each size and each configuration (compute precision / 2D-branch hourglass features,
'xN' for N stacks instead of 2, 'sN' for a stem N wide instead of 128, and '/xla' for
the trainer's `jit_compile`: XLA compiles the forward and backward pass, and the
renderer runs its TensorFlow backend) prints the first step's time (tracing the step
and setting its graph up: what every run, test and resume pays once), then times
(forward + backward, after that warm-up) the full 'finetune' train step (every loss,
rendering, the 2D branch) and, separately, each part on the same inputs: the
EfficientNet encoder, the 2D branch (hourglass), MANO with the camera placement, the
renderer and the loss terms (uncompiled, with the step's rasterizer: under XLA they say
where the work is, not what XLA makes of it).  The remainder (heads, optimizer update)
is printed as 'other'.  Ends with images/s per configuration as a ratio to the first
one, measured in the same run.
"""

import time

import numpy as np
import tensorflow as tf
from absl import app, flags
from branch_spec import parse_branch

from hand_tf import startup
from hand_tf.model.s2hand import ModelConfig
from hand_tf.rendering import renderer
from hand_tf.synthetic.dataset import synthesize
from hand_tf.training.objective import ObjectiveConfig
from hand_tf.training.trainer import Trainer, TrainerConfig

SIZES = flags.DEFINE_list("sizes", ["224", "128"], "Input sizes.")
BATCH = flags.DEFINE_integer("batch_size", 16, "Batch size.")
REPEATS = flags.DEFINE_integer("repeats", 3, "Timed repetitions (median).")
BACKEND = flags.DEFINE_string("render_backend", "auto", "Rasterizer backend.")
CONFIGS = flags.DEFINE_list(
    "configs", ["float32/256"],
    "precision/hourglass_features[xstacks][sstem][/xla] per configuration; precision is a Keras "
    "policy (float32, mixed_bfloat16, mixed_float16); the first is the reference of the "
    "ratios.")


def _median_seconds(fn, repeats):
  fn()  # trace and warm up
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return float(np.median(times))


def _grad_fn(forward, variables):
  @tf.function
  def step():
    with tf.GradientTape() as tape:
      # Keras variables are watched already; the tensors standing in for outputs not.
      tape.watch([v for v in variables if isinstance(v, tf.Tensor)])
      value = forward()
    grads = tape.gradient(value, variables)
    return [g for g in grads if g is not None]
  return lambda: [g.numpy() for g in step()]


def _batch(size, batch_size, seed=0):
  import tempfile

  from hand_tf.data import pipeline
  from hand_tf.data.freihand import read_freihand
  root = tempfile.mkdtemp(prefix="train_step_bench_")
  synthesize(root, batch_size, image_size=size, seed=seed, batch_size=batch_size,
             progress=False)
  records = read_freihand(root, detections=f"{root}/training_detections.json",
                          image_size=size, source_size=size)
  return next(iter(pipeline.make_dataset(records, batch_size, drop_remainder=True)))


def benchmark(size, batch_size, repeats, backend, precision="float32", features=256,
              stacks=2, stem=128, xla=False):
  """Prints the step's figures; returns images/s."""
  import keras
  batch = _batch(size, batch_size)
  import tempfile
  keras.mixed_precision.set_global_policy(precision)
  try:
    trainer = Trainer(TrainerConfig(
        out_dir=tempfile.mkdtemp(prefix=f"train_step_bench_{size}_"),
        model=ModelConfig(image_size=size, hourglass_features=features,
                          hourglass_stacks=stacks, hourglass_stem_features=stem),
        objective=ObjectiveConfig(stage="finetune", render_backend=backend),
        jit_compile=xla))
  finally:
    keras.mixed_precision.set_global_policy("float32")
  model = trainer.training_model
  backend = trainer.objective.config.render_backend
  start = time.perf_counter()
  trainer.train_step(batch)
  first = time.perf_counter() - start
  full = _median_seconds(lambda: trainer.train_step(batch), repeats)
  print(f"size {size}, batch {batch_size}, {precision}, hourglass {features} features "
        f"x {stacks} stacks, stem {stem}"
        f"{', XLA' if xla else ''}: "
        f"{full * 1000:.0f} ms/step, "
        f"{batch_size / full:.1f} images/s; first step {first:.1f} s (tracing and "
        f"graph set-up)", flush=True)

  encoder = model.get_layer(f"encoder_{trainer.config.model.backbone}")
  encoder_time = _median_seconds(_grad_fn(
      lambda: tf.add_n([tf.reduce_sum(t) for t in encoder(batch["image"], training=True)]),
      encoder.trainable_variables), repeats)

  branch = model.get_layer("keypoint_branch")
  branch_time = _median_seconds(_grad_fn(
      lambda: tf.add_n([tf.reduce_sum(tf.cast(k, tf.float32))
                        for k in tf.nest.flatten(branch(batch["image"], training=True))]),
      branch.trainable_variables), repeats)

  outputs = model([batch["image"], batch["intrinsics"]], training=False)
  place = model.get_layer("place_hand")
  # The geometry head's own outputs (the model reports its rotation as axis-angle).
  head = model.get_layer("geometry_head")(encoder(batch["image"], training=False)[0])
  params = [tf.identity(head[k]) for k in ("pose_coeffs", "shape", "rotation",
                                            "translation", "scale")]
  mano_time = _median_seconds(_grad_fn(
      lambda: tf.reduce_sum(place(*params, batch["intrinsics"])["vertices"]), params),
      repeats)

  vertices, texture, lighting = (tf.identity(outputs[k]) for k in
                                 ("vertices", "texture", "lighting"))
  faces = trainer.objective.faces
  render_time = _median_seconds(_grad_fn(
      lambda: tf.reduce_sum(renderer.render(vertices, faces, tf.tanh(texture),
                                            batch["intrinsics"], lighting, (size, size),
                                            backend=backend)["rgb"]),
      [vertices, texture, lighting]), repeats)

  watched = {k: tf.identity(v) for k, v in outputs.items()}
  loss_inputs = list(watched.values())
  loss_time = _median_seconds(_grad_fn(
      lambda: trainer.objective(watched, batch, trainer.laplacian)["total"], loss_inputs),
      repeats) - render_time  # the photometric terms render; counted above
  parts = {"encoder": encoder_time, "2d branch": branch_time, "mano+placement": mano_time,
           "renderer": render_time, "losses": max(loss_time, 0.0)}
  parts["other"] = max(full - sum(parts.values()), 0.0)
  for name, seconds in parts.items():
    print(f"  {name:16s} {seconds * 1000:8.0f} ms  {100 * seconds / full:5.1f} %")
  return batch_size / full


def main(argv):
  del argv
  print(f"devices: {[d.name for d in tf.config.list_logical_devices()]}, "
        f"CPU threads: {tf.config.threading.get_intra_op_parallelism_threads() or 'all'}")
  for size in SIZES.value:
    rates = {}
    for config in CONFIGS.value:
      precision, width, *xla = config.split("/")
      try:
        if xla not in ([], ["xla"]):
          raise ValueError("ends in something other than /xla")
        features, stacks, stem = parse_branch(width)
      except ValueError as error:
        raise app.UsageError(f"--configs: {config!r} is not "
                             f"precision/features[xstacks][sstem][/xla]: {error}") from None
      rates[config] = benchmark(int(size), BATCH.value, REPEATS.value, BACKEND.value,
                                precision, features, stacks, stem, bool(xla))
    reference = rates[CONFIGS.value[0]]
    print(f"size {size}: images/s per configuration (x {CONFIGS.value[0]}, same run): "
          + ", ".join(f"{c} {r:.1f} ({r / reference:.2f}x)" for c, r in rates.items()),
          flush=True)


if __name__ == "__main__":
  startup.run(main)
