"""Throughput of ManoLayer on this machine: vertices per second (and hands per second).

  python benchmarks/mano_layer.py [--batches 1,64,1024] [--repeats 20]

Prints one row per (mode, batch): eager, tf.function and XLA (jit_compile=True).
Numbers are medians of `--repeats` timed calls after two warm-up calls.
"""

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import flags  # noqa: E402

from hand_tf import startup
from mano_tf.layer import ManoLayer  # noqa: E402

BATCHES = flags.DEFINE_list("batches", ["1", "64", "1024"], "Batch sizes.")
REPEATS = flags.DEFINE_integer("repeats", 20, "Timed calls per row.")
NCOMPS = flags.DEFINE_integer("ncomps", 30, "PCA components (S2HAND uses 30).")


def _time(fn, *args, repeats):
  for _ in range(2):
    _ = [t.numpy() for t in fn(*args)]
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    _ = [t.numpy() for t in fn(*args)]
    times.append(time.perf_counter() - start)
  return float(np.median(times))


def main(argv):
  del argv
  layer = ManoLayer(ncomps=NCOMPS.value)
  modes = {"eager": layer.__call__, "tf.function": tf.function(layer.__call__),
           "xla": tf.function(layer.__call__, jit_compile=True)}
  print(f"TensorFlow {tf.__version__}, {os.cpu_count()} CPU cores, "
        f"intra-op threads {tf.config.threading.get_intra_op_parallelism_threads() or 'auto'}")
  print(f"{'mode':<12} {'batch':>6} {'ms/call':>10} {'hands/s':>12} {'vertices/s':>14}")
  rng = np.random.default_rng(0)
  for batch in [int(b) for b in BATCHES.value]:
    pose = tf.constant(rng.normal(0, 0.5, (batch, 3 + NCOMPS.value)), tf.float32)
    betas = tf.constant(rng.normal(0, 1, (batch, 10)), tf.float32)
    for name, fn in modes.items():
      seconds = _time(fn, pose, betas, repeats=REPEATS.value)
      print(f"{name:<12} {batch:>6} {seconds * 1e3:>10.3f} {batch / seconds:>12.0f} "
            f"{batch * 778 / seconds:>14.3e}", flush=True)


if __name__ == "__main__":
  startup.run(main)
