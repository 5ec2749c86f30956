"""Shared test set-up: quiet TensorFlow, CPU only, and a synthetic MANO file on disk."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

# Two logical CPU devices, so distribution strategies can be tested without a GPU.  This
# must happen before TensorFlow initialises its devices.
_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)

# Grappler's graph rewrites take longer than the few steps tests run (27 s vs 11 s for
# the first training step on 2 cores); production runs keep them.
tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})

from mano_tf.model_file import save_mano_model  # noqa: E402
from mano_tf.synthetic import build_synthetic_mano  # noqa: E402


@pytest.fixture(scope="session")
def two_replicas():
  """A MirroredStrategy over the two logical CPUs, one for the whole run: every instance
  numbers its collective ops from the same keys, so a second instance's all-reduce
  collides with the first's ("Shape mismatch in the collective instance 100")."""
  return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


@pytest.fixture(scope="session")
def synthetic_model():
  return build_synthetic_mano("right")


@pytest.fixture(scope="session")
def synthetic_model_dir(tmp_path_factory, synthetic_model):
  """A directory laid out like the official download: MANO_RIGHT.pkl and MANO_LEFT.pkl."""
  directory = tmp_path_factory.mktemp("mano")
  save_mano_model(synthetic_model, directory / "MANO_RIGHT.pkl")
  save_mano_model(build_synthetic_mano("left"), directory / "MANO_LEFT.pkl")
  return directory


@pytest.fixture(scope="session")
def synthetic_dataset(tmp_path_factory):
  """A small synthetic FreiHAND-layout dataset (training split, 8 images, 96 px)."""
  from hand_tf.synthetic.dataset import synthesize
  root = tmp_path_factory.mktemp("synth")
  summary = synthesize(str(root), 8, image_size=96, seed=3, occluders=True, batch_size=4,
                       progress=False)
  return root, summary
