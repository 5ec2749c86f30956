"""A quiet start for the command-line tools: TensorFlow's C++ start-up lines hidden.

On a CPU machine, loading TensorFlow 2.21 prints a oneDNN banner, "Could not find cuda
drivers" and an `E0000 ... failed call to cuInit` line; they are written before
TensorFlow reads `TF_CPP_MIN_LOG_LEVEL` (before absl::InitializeLog), so the variable
alone does not hide them, and to a user an `E` line reads as a failure.
"""

import contextlib
import logging
import os
import sys

LOG_LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
# Marks a log level this module chose, which the tools it starts (the demo runs its steps
# as subprocesses) inherit and may choose again; a level the user set is left alone.
_CHOSEN_HERE = "HAND_TF_QUIET_START"


@contextlib.contextmanager
def native_output_muted(*descriptors: int):
  """Points file descriptors (default 2, where C++ logs go) at /dev/null, then restores
  them: for native libraries that print straight to the process's stdout or stderr.
  Python exceptions raised inside still propagate."""
  descriptors = descriptors or (2,)
  sys.stdout.flush()
  sys.stderr.flush()
  saved = [os.dup(fd) for fd in descriptors]
  null = os.open(os.devnull, os.O_WRONLY)
  try:
    for fd in descriptors:
      os.dup2(null, fd)
    yield
  finally:
    sys.stdout.flush()
    sys.stderr.flush()
    for fd, copy in zip(descriptors, saved):
      os.dup2(copy, fd)
      os.close(copy)
    os.close(null)


class _OnlyWarningsFromLibraries(logging.Filter):
  """Drops INFO lines that TensorFlow and Keras log through absl (saver timings,
  signature renames), keeping the tools' own INFO lines."""

  _LIBRARIES = tuple(os.sep + name + os.sep for name in ("tensorflow", "keras", "tf2onnx"))

  def filter(self, record):
    return record.levelno >= logging.WARNING or not any(
        library in record.pathname for library in self._LIBRARIES)


def quiet_tensorflow() -> None:
  """Loads TensorFlow with its start-up lines hidden and later C++ logs at warnings.

  Call it in an entry point before anything imports TensorFlow.  A user who set
  `TF_CPP_MIN_LOG_LEVEL` (e.g. to 0 to debug a GPU set-up) sees everything, as set.
  Python errors raised while importing are not hidden: they are printed after stderr
  is restored.
  """
  user_set = LOG_LEVEL_VARIABLE in os.environ and _CHOSEN_HERE not in os.environ
  if user_set or "tensorflow" in sys.modules:
    return
  os.environ[LOG_LEVEL_VARIABLE] = "2"  # later C++ logs: warnings and errors only
  os.environ[_CHOSEN_HERE] = "1"
  with native_output_muted():
    import tensorflow as tf
    # The CUDA probe (and its cuInit error line) runs when devices are first listed.
    tf.config.list_physical_devices()
  # absl's default verbosity is INFO, which the tools use for their own lines; TF's
  # Python INFO lines (signature renames, saver timings) are kept out of them.
  tf.get_logger().setLevel(logging.WARNING)
  from absl import logging as absl_logging
  absl_logging.get_absl_logger().addFilter(_OnlyWarningsFromLibraries())


HELP_FLAGS = ("--help", "-h", "-?", "--helpfull", "--helpshort", "--helpxml")
# A user error (bad flag, bad file) exits with this code, as argparse's do; 1 stays for
# a command that failed at its job (e.g. an export that misses its parity tolerance).
USAGE_EXIT_CODE = 2
# Set to 1 (or pass --verbosity=1) to see the traceback behind a one-line error.
TRACEBACK_VARIABLE = "HAND_TF_TRACEBACK"


def _wants_traceback() -> bool:
  from absl import flags
  verbosity = flags.FLAGS["verbosity"].value if "verbosity" in flags.FLAGS else 0
  return os.environ.get(TRACEBACK_VARIABLE, "") not in ("", "0") or verbosity >= 1


def fail(message: str, exit_code: int = 1) -> None:
  """Ends the tool with `error: message` on one line (the traceback on request)."""
  if _wants_traceback():
    import traceback
    traceback.print_exc()
  print(f"error: {message}", file=sys.stderr, flush=True)
  raise SystemExit(exit_code)


def _user_error(message: str) -> None:
  fail(message, USAGE_EXIT_CODE)


def run(main) -> None:
  """`absl.app.run(main)` as users expect of a command line tool.

  * `--help` (and its variants) exits 0: absl exits 1, which scripts and CI read as a
    failure of a command that did what was asked.
  * A usage error (a flag absl refuses, or `app.UsageError` raised by `main`) is one
    line naming the problem and pointing at `--help`, not the whole flag listing absl
    prints; exit code 2.
  * Bad input (`hand_tf.io.InputError` and its kinds: a missing or malformed file, a
    model file that is not one) is one line, not a traceback; exit code 2.  The
    traceback is printed too under `--verbosity=1` or `HAND_TF_TRACEBACK=1`.
  """
  from absl import app

  from hand_tf.io import InputError

  def guarded(argv):
    try:
      return main(argv)
    except app.UsageError as e:
      _user_error(f"{e} (see --help)")
    except InputError as e:
      _user_error(str(e))

  def parse_flags(argv):
    # absl's own parser prints "FATAL Flags parsing error" and a pointer to --helpfull,
    # then exits 1: a usage error like any other here.
    from absl import flags
    try:
      return flags.FLAGS(argv)
    except flags.Error as e:
      print(f"error: {e} (see --help)", file=sys.stderr, flush=True)
      raise SystemExit(USAGE_EXIT_CODE) from None

  try:
    app.run(guarded, flags_parser=parse_flags)
  except SystemExit as e:
    if e.code == 1 and any(a.split("=")[0] in HELP_FLAGS for a in sys.argv[1:]):
      raise SystemExit(0) from None
    raise
