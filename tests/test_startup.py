"""Command-line tools start quietly: TensorFlow's C++ start-up lines are not shown,
unless the user asked for them with TF_CPP_MIN_LOG_LEVEL."""

import os
import re
import subprocess
import sys

# glog/absl-style C++ log lines (I0000 ..., E0000 ... cuInit), and TF's banners.
_CXX_LOG = re.compile(r"^[IWE]\d{4} |oneDNN|cuda|cuInit", re.MULTILINE | re.IGNORECASE)


def _export_missing_checkpoint(tmp_path, **env):
  clean = {k: v for k, v in os.environ.items()
           if k not in ("TF_CPP_MIN_LOG_LEVEL", "HAND_TF_QUIET_START")}
  return subprocess.run(
      [sys.executable, "-m", "export", "--checkpoint", str(tmp_path / "missing"),
       "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=300,
      env={**clean, **env})


def test_a_tool_that_loads_tensorflow_prints_only_its_own_lines(tmp_path):
  result = _export_missing_checkpoint(tmp_path)
  assert result.returncode == 2  # a user error, as argparse's
  assert not _CXX_LOG.search(result.stderr), result.stderr
  assert result.stderr.strip().splitlines() == [
      f"error: {tmp_path / 'missing'}: checkpoint not found (no missing.index)"]


def test_the_traceback_behind_a_user_error_is_there_on_request(tmp_path):
  result = _export_missing_checkpoint(tmp_path, HAND_TF_TRACEBACK="1")
  lines = result.stderr.strip().splitlines()
  assert result.returncode == 2 and lines[0].startswith("Traceback")
  assert lines[-1] == f"error: {tmp_path / 'missing'}: checkpoint not found (no missing.index)"


def test_a_log_level_the_user_set_is_respected(tmp_path):
  result = _export_missing_checkpoint(tmp_path, TF_CPP_MIN_LOG_LEVEL="0")
  assert _CXX_LOG.search(result.stderr), result.stderr


def test_library_info_lines_are_dropped_and_the_tools_own_kept():
  import logging

  from hand_tf.startup import _OnlyWarningsFromLibraries
  keep = _OnlyWarningsFromLibraries().filter

  def record(path, level):
    return logging.LogRecord("absl", level, path, 1, "message", None, None)
  site = os.path.join(os.sep, "venv", "site-packages")
  assert not keep(record(os.path.join(site, "tensorflow", "saver.py"), logging.INFO))
  assert not keep(record(os.path.join(site, "keras", "export.py"), logging.INFO))
  assert keep(record(os.path.join(site, "tensorflow", "saver.py"), logging.WARNING))
  assert keep(record(os.path.join(os.sep, "work", "hand_tf", "predict.py"), logging.INFO))


ENTRY_POINTS = ("hand_tf.train", "hand_tf.synthesize", "hand_tf.evaluate", "hand_tf.predict",
                "hand_tf.detect", "hand_tf.demo", "hand_tf.pretrain", "export", "mobile_demo")


def test_help_answers_at_once_and_exits_zero_on_every_entry_point():
  from cli_runner import run_cli
  for module in ENTRY_POINTS:
    # Without TensorFlow importable: help must come before anything loads it.
    result = run_cli(module, "--help", without_tensorflow=True, timeout=60)
    assert result.returncode == 0, (module, result.stderr[-2000:])
    assert "--" in result.stdout and not result.stderr.strip(), (module, result.stderr)
  # A flag error still fails.
  result = run_cli("hand_tf.train", "--stage", "bogus", without_tensorflow=True, timeout=60)
  assert result.returncode != 0 and "--stage" in result.stderr
