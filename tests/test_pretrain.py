"""The shipped model's recipe (hand_tf.pretrain): its training log, and the install that
replaces the shipped folder only with a complete one."""

import os

import pytest

from hand_tf import pretrain, shipped


def test_the_recipe_trains_from_mediapipe_detections_with_the_stagewise_schedule():
  args = [str(a) for a in pretrain.train_args(pretrain.Recipe(), "DATA", "RUN", 0.0395)]
  assert args[args.index("--detections") + 1] == os.path.join(
      "DATA", "training_mediapipe_detections.json")
  assert args[args.index("--stage") + 1] == "all"
  assert int(args[args.index("--image_size") + 1]) >= 128
  assert "--mode" not in args and "--no_appearance" not in args  # SSL, every loss
  assert float(args[args.index("--w_facing") + 1]) > 0  # the rotation learns with it only


def test_the_log_keeps_each_progress_bar_once_in_its_last_state(tmp_path, monkeypatch):
  from hand_tf.demo_job import run_module
  (tmp_path / "bars.py").write_text(
      "import sys\nprint('start')\nfor i in range(3):\n  sys.stdout.write(f'\\rstep {i}')\n"
      "sys.stdout.write('\\n')\nprint('done', file=sys.stderr)\n")
  monkeypatch.setenv("PYTHONPATH", str(tmp_path) + os.pathsep + os.environ.get(
      "PYTHONPATH", ""))
  monkeypatch.chdir(tmp_path)
  run_module(lambda _: None, "bars", log_file=str(tmp_path / "log.txt"))
  assert (tmp_path / "log.txt").read_text() == "$ python -m bars\nstart\nstep 2\ndone\n"
  (tmp_path / "fails.py").write_text("import sys\nsys.exit(3)\n")
  with pytest.raises(RuntimeError, match="exit 3"):
    run_module(lambda _: None, "fails", log_file=str(tmp_path / "log.txt"))


def _export_folder(path, model_bytes):
  os.makedirs(path)
  for name in shipped.MODEL_FILES.values():
    (path / name).write_bytes(model_bytes)
  (path / "hand_mesh.json").write_text("{}")
  (path / "hand_model.npz").write_bytes(b"npz")
  return {name: _record(path, name) for name in shipped.RECORD_FILES}


def _record(path, name):
  (path / ("record_" + name)).write_text("{}" if name.endswith(".json") else "log\n")
  return str(path / ("record_" + name))


def test_install_switches_in_a_complete_folder_and_keeps_the_old_one_otherwise(tmp_path):
  package = tmp_path / "pretrained"
  tflite = b"\x1c\0\0\0TFL3" + b"\0" * 56  # FlatBuffer header with TFLite's identifier
  records = _export_folder(tmp_path / "export1", tflite + b"first")
  pretrain.install(str(tmp_path / "export1"), records, str(package))
  assert (package / "s2hand_fp16.tflite").read_bytes().endswith(b"first")
  assert (package / "training_log.txt").read_text() == "log\n"
  broken = _export_folder(tmp_path / "export2", b"not a model")
  with pytest.raises(shipped.InputError, match="not a TFLite model"):
    pretrain.install(str(tmp_path / "export2"), broken, str(package))
  assert (package / "s2hand_fp16.tflite").read_bytes().endswith(b"first")  # untouched
  assert sorted(os.listdir(tmp_path)) == ["export1", "export2", "pretrained"]


def test_without_a_shipped_model_loading_says_how_to_get_one(tmp_path, monkeypatch):
  """A source tree whose recipe never ran with --install: one message naming the missing
  file, --model and `make pretrained` (predict loads through the API, mobile_demo
  through `shipped.model_path`)."""
  from hand_tf.api import MODEL_VARIABLE, HandReconstructor
  monkeypatch.delenv(MODEL_VARIABLE, raising=False)
  monkeypatch.setattr(shipped, "FOLDER", str(tmp_path / "pretrained"))
  message = (r"no shipped model at .*pretrained/s2hand_fp16\.tflite: pass --model, or "
             r"train it with `make pretrained`")
  with pytest.raises(shipped.InputError, match=message):
    HandReconstructor.load()
  with pytest.raises(shipped.InputError, match=message):
    shipped.model_path()
  with pytest.raises(shipped.InputError, match="variant 'int4'"):
    shipped.model_path("int4")


def test_only_a_model_that_beats_the_template_hand_is_installed():
  """Shape by the paired interval of per-image PA-MPJPE (a mean 0.03 mm lower is a tie);
  the camera frame as `predict` returns it (placed on MediaPipe's keypoints) against the
  template placed on the same keypoints, not against the simulated detections'
  template (the truth plus noise)."""
  from hand_tf.demo_job import TEMPLATE_ON_MEDIAPIPE

  def rows(placed, raw=157.4):
    return {"checkpoint": {"mpjpe": raw}, pretrain.PLACED_ON_MEDIAPIPE: {"mpjpe": placed},
            "template hand": {"mpjpe": 59.5}, TEMPLATE_ON_MEDIAPIPE: {"mpjpe": 123.5}}

  better = {"difference": -1.2, "low": -1.9, "high": -0.5}
  tie = {"difference": -0.03, "low": -0.72, "high": 0.66}  # the 40-epoch run's
  with pytest.raises(shipped.InputError, match=r"not installed: the model does not beat the "
                     r"template hand on PA-MPJPE \(-0\.03 mm, 95% interval \[-0\.72, "
                     r"\+0\.66\]\) and MPJPE placed on MediaPipe's keypoints \(130\.0 vs "
                     r"123\.5 mm\)"):
    pretrain.check_installable(rows(130.0), tie)
  pretrain.check_installable(rows(130.0), tie, force=True)
  with pytest.raises(shipped.InputError, match="template hand on PA-MPJPE "):
    pretrain.check_installable(rows(121.2), tie)
  with pytest.raises(shipped.InputError, match="template hand on MPJPE placed"):
    pretrain.check_installable(rows(124.0), better)
  # Its own camera may lose to the simulated detections' template: not what users get.
  pretrain.check_installable(rows(120.0, raw=150.0), better)
