"""Shared test set-up: quiet TensorFlow, CPU only, and a synthetic MANO file on disk."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import pytest  # noqa: E402

from mano_tf.model_file import save_mano_model  # noqa: E402
from mano_tf.synthetic import build_synthetic_mano  # noqa: E402


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
