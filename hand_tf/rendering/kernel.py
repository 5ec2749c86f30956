"""The tensorflow-graphics CPU rasterizer kernel, compiled against the installed TF.

The `rasterizer_op.so` shipped in the tensorflow-graphics 2021.12.3 wheel was built for
an old TensorFlow and fails to load under TF 2.21 (undefined symbol).  Its C++ sources
ship in the same wheel, so we compile them with `tf.sysconfig`'s flags (about 20 s with
g++), cache the library keyed by TF version and source hash, and hand the loaded op
module to tfg under the name its CPU backend imports (`gen_rasterizer_op`).

`python -m hand_tf.rendering.kernel` builds it (the Makefile's install step does this).
"""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from typing import Optional

import tensorflow as tf
from absl import logging

from hand_tf import startup

_SOURCES = ("rasterize_triangles_op.cc", "rasterize_triangles_impl.cc")
_TFG_MODULE = "tensorflow_graphics.rendering.kernels.gen_rasterizer_op"
_loaded = None


class KernelUnavailableError(RuntimeError):
  """The compiled rasterizer is missing and cannot be built here."""


def _kernel_source_dir() -> str:
  import tensorflow_graphics.rendering.kernels as kernels
  return os.path.dirname(kernels.__file__)


def cache_dir() -> str:
  """Where compiled kernels live: $HAND_TF_KERNEL_DIR, else inside the active environment
  (a fresh venv builds its own), else ~/.cache/hand_tf."""
  if os.environ.get("HAND_TF_KERNEL_DIR"):
    return os.environ["HAND_TF_KERNEL_DIR"]
  in_prefix = os.path.join(sys.prefix, "share", "hand_tf", "kernels")
  if os.path.isdir(in_prefix) or os.access(sys.prefix, os.W_OK):
    return in_prefix
  return os.path.join(os.path.expanduser("~"), ".cache", "hand_tf", "kernels")


def library_path(directory: Optional[str] = None) -> str:
  """Path of the compiled kernel for this TensorFlow and these sources."""
  digest = hashlib.sha256(tf.__version__.encode())
  source_dir = _kernel_source_dir()
  for name in _SOURCES + ("rasterize_triangles_impl.h",):
    with open(os.path.join(source_dir, name), "rb") as f:
      digest.update(f.read())
  return os.path.join(directory or cache_dir(),
                      f"rasterizer_op-tf{tf.__version__}-{digest.hexdigest()[:12]}.so")


def build(directory: Optional[str] = None, compiler: Optional[str] = None,
          verbose: bool = False) -> str:
  """Compiles the rasterizer kernel (atomically) and returns the library's path.

  Raises:
    KernelUnavailableError: no C++ compiler, or compilation failed (with its output).
  """
  target = library_path(directory)
  if os.path.isfile(target):
    return target
  compiler = compiler or os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
  if not compiler:
    raise KernelUnavailableError(
        "No C++ compiler found to build the tensorflow-graphics rasterizer kernel. Install "
        "g++ (e.g. `apt-get install g++`), or use the pure-TensorFlow backend "
        "(backend='tf').")
  source_dir = _kernel_source_dir()
  os.makedirs(os.path.dirname(target), exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=os.path.dirname(target), suffix=".so.tmp")
  os.close(fd)
  command = ([compiler, "-std=c++17", "-shared", "-fPIC", "-O2", "-w", "-I", source_dir]
             + [os.path.join(source_dir, s) for s in _SOURCES] + ["-o", tmp]
             + tf.sysconfig.get_compile_flags() + tf.sysconfig.get_link_flags())
  if verbose:
    logging.info("%s", " ".join(command))
  result = subprocess.run(command, capture_output=True, text=True)
  if result.returncode != 0:
    os.remove(tmp)
    raise KernelUnavailableError(
        "Building the rasterizer kernel failed; use backend='tf' or fix the compiler.\n"
        + result.stderr[-4000:])
  os.replace(tmp, target)
  return target


@tf.autograph.experimental.do_not_convert  # host-side file checks, also from graphs
def load(build_if_missing: bool = True):
  """Loads the kernel (building it first if allowed) and registers it with tfg.

  Returns:
    The op module (with `rasterize_triangles`).

  Raises:
    KernelUnavailableError: when it is not built and cannot be built.
  """
  global _loaded
  if _loaded is not None:
    return _loaded
  path = library_path()
  if not os.path.isfile(path):
    if not build_if_missing:
      raise KernelUnavailableError(
          f"The rasterizer kernel is not built ({path}); run "
          "`python -m hand_tf.rendering.kernel` or use backend='tf'.")
    logging.warning("compiling the tensorflow-graphics rasterizer kernel into %s "
                    "(once, ~20 s)", path)
    path = build()
  _loaded = tf.load_op_library(path)
  sys.modules[_TFG_MODULE] = _loaded
  return _loaded


@tf.autograph.experimental.do_not_convert
def is_available() -> bool:
  """True if the kernel is loaded or can be loaded/built here."""
  try:
    load()
    return True
  except (KernelUnavailableError, tf.errors.NotFoundError, OSError):
    return False


def main(argv):
  del argv
  print(build(verbose=VERBOSE.value))


if __name__ == "__main__":
  from absl import flags
  VERBOSE = flags.DEFINE_bool("verbose", False, "Print the compiler command.")
  startup.run(main)
