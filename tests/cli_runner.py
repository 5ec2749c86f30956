"""Runs the command-line tools as a user would, optionally on a device without TensorFlow."""

import os
import subprocess
import sys

# TensorFlow, tensorflow-graphics, Keras and SciPy made unimportable: what a device with
# the `deploy` install has.
_BLOCK_TENSORFLOW = """
import importlib.abc, runpy, sys
class _NoTensorFlow(importlib.abc.MetaPathFinder):
  def find_spec(self, name, path, target=None):
    if name.partition(".")[0] in ("tensorflow", "tensorflow_graphics", "keras", "tf2onnx",
                                  "scipy"):
      raise ImportError(f"{name} is not installed on this device")
sys.meta_path.insert(0, _NoTensorFlow())
sys.argv[0] = sys.argv[1]
del sys.argv[1]
"""
# Then as `python -m module` / `python file.py` would.
_RUN_MODULE = 'runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)\n'
_RUN_FILE = 'runpy.run_path(sys.argv[0], run_name="__main__")\n'


def _env(extra=None, as_user=False):
  """The tests' environment; `as_user`: without a TF log level chosen (a user's shell),
  so that the tools' own quiet start is what is tested."""
  if as_user:
    return {**{k: v for k, v in os.environ.items()
               if k not in ("TF_CPP_MIN_LOG_LEVEL", "HAND_TF_QUIET_START")}, **(extra or {})}
  return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(extra or {})}


def run_cli(module, *args, timeout=600, without_tensorflow=False, env=None, as_user=False):
  """`python -m module args...`; returns the CompletedProcess (text stdout/stderr)."""
  prefix = ["-c", _BLOCK_TENSORFLOW + _RUN_MODULE] if without_tensorflow else ["-m"]
  return subprocess.run([sys.executable, *prefix, module, *map(str, args)],
                        capture_output=True, text=True, timeout=timeout,
                        env=_env(env, as_user))


def kill_cli_at(module, *args, line_containing: str, timeout=600) -> str:
  """Starts `python -m module args...` and kills it (SIGKILL, as `kill -9`) as soon as
  it prints a line containing `line_containing`; returns everything it printed (run as
  a user runs it: no TF log level chosen).
  AssertionError if it ends without printing that line."""
  process = subprocess.Popen([sys.executable, "-m", module, *map(str, args)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             env=_env({"PYTHONUNBUFFERED": "1"}, as_user=True))
  printed = []
  try:
    for line in process.stdout:
      printed.append(line)
      if line_containing in line:
        process.kill()
        break
  finally:
    process.kill()
    process.wait(timeout)
  output = "".join(printed)
  assert line_containing in output, output[-3000:]
  return output


def run_script_without_tensorflow(path, cwd, timeout=600):
  """`python path` in `cwd` with TensorFlow unimportable; the CompletedProcess."""
  return subprocess.run([sys.executable, "-c", _BLOCK_TENSORFLOW + _RUN_FILE, str(path)],
                        capture_output=True, text=True, timeout=timeout, cwd=cwd, env=_env())
