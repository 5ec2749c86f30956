"""What a failed or interrupted run leaves behind, and how bad input is refused (issue 20):
a good run folder stays loadable, impossible cameras and boxes are errors, files keep the
user's permissions, checkpoints name their own damage and input size."""

import dataclasses
import glob
import json
import logging
import os

import cv2
import numpy as np
import pytest

from hand_tf import io
from hand_tf.camera import check_intrinsics
from hand_tf.data.crops import parse_box
from hand_tf.io import InputError

SMALL = dict(image_size=64, hourglass_features=16, hourglass_stacks=1, hourglass_modules=1,
             encoder_weights=None)


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
  """(run folder, its ModelConfig) with one saved checkpoint of an untrained network."""
  from hand_tf.model.s2hand import ModelConfig
  from hand_tf.training.trainer import Trainer, TrainerConfig
  folder = tmp_path_factory.mktemp("reliability") / "run"
  config = ModelConfig(**SMALL)
  Trainer(TrainerConfig(out_dir=str(folder), model=config)).save()
  return folder, config


def test_a_rerun_with_another_network_is_refused_before_it_writes(saved_run):
  from hand_tf.model.s2hand import RunFolderMismatch
  from hand_tf.predictors import load_checkpoint_model
  from hand_tf.training.trainer import Trainer, TrainerConfig
  folder, config = saved_run
  before = {p: open(p, "rb").read() for p in glob.glob(str(folder / "*"))
            if os.path.isfile(p)}
  wider = dataclasses.replace(config, hourglass_features=32)
  with pytest.raises(RunFolderMismatch, match=r"hourglass_features=16 \(asked: 32\).*new "
                                              "--out_dir"):
    Trainer(TrainerConfig(out_dir=str(folder), model=wider))
  after = {p: open(p, "rb").read() for p in glob.glob(str(folder / "*")) if os.path.isfile(p)}
  assert after == before  # model_config.json and the hand untouched
  assert load_checkpoint_model(str(folder))[0].hourglass_features == 16
  # What only sets the starting point may change on resume.
  Trainer(TrainerConfig(out_dir=str(folder), model=dataclasses.replace(
      config, encoder_weights="imagenet", sync_batch_norm=True))).restore()


def test_weights_trained_at_one_size_refuse_a_config_that_names_another(saved_run, tmp_path):
  import shutil

  from hand_tf.contract import ModelFileError
  from hand_tf.predictors import checkpoint_input_size, load_checkpoint_model
  folder, _ = saved_run
  copy = tmp_path / "run"
  shutil.copytree(folder, copy)
  prefix = glob.glob(str(copy / "ckpt-*.index"))[0][:-len(".index")]
  assert checkpoint_input_size(prefix) == 64
  config = json.loads((copy / "model_config.json").read_text())
  (copy / "model_config.json").write_text(json.dumps({**config, "image_size": 128}))
  with pytest.raises(ModelFileError, match="weights trained at 64 px, but its "
                                           "model_config.json says image_size 128"):
    load_checkpoint_model(str(copy))


def test_damaged_checkpoints_and_configs_say_what_is_wrong(saved_run, tmp_path):
  import shutil

  from hand_tf.contract import ModelFileError
  from hand_tf.predictors import load_checkpoint_model
  folder, _ = saved_run
  copy = tmp_path / "run"
  shutil.copytree(folder, copy)
  (data,) = glob.glob(str(copy / "ckpt-*.data-*"))
  payload = open(data, "rb").read()
  with open(data, "wb") as f:
    f.write(payload[:len(payload) // 2])
  with pytest.raises(ModelFileError, match="checkpoint damaged .truncated or corrupt"):
    load_checkpoint_model(str(copy))
  os.remove(data)
  with pytest.raises(ModelFileError, match="checkpoint incomplete: no ckpt-0.data-"):
    load_checkpoint_model(str(copy))
  (copy / "model_config.json").write_text("{not json")
  with pytest.raises(ModelFileError, match=r"model_config.json: not valid JSON"):
    load_checkpoint_model(str(copy))


@pytest.mark.parametrize("k, message", [
    (np.zeros((3, 3)), "focal lengths must be positive, got fx=0"),
    ([[-100, 0, 32], [0, 100, 32], [0, 0, 1]], "focal lengths must be positive, got fx=-100"),
    ([[100, 0, 32], [0, 100, 32], [0, 0, 0]], r"K.s last row must be \[0, 0, 1\]"),
    ([[100, 0, 500], [0, 100, 32], [0, 0, 1]], r"principal point \(500, 32\) lies outside"),
    ([[np.nan, 0, 32], [0, 100, 32], [0, 0, 1]], "K has non-finite"),
])
def test_impossible_intrinsics_are_refused_naming_where(k, message):
  with pytest.raises(InputError, match="K.json: " + message):
    check_intrinsics(k, "K.json", 64, 64)
  good = [[100, 0, 32], [0, 100, 32], [0, 0, 1]]
  np.testing.assert_array_equal(check_intrinsics(good, "K.json", 64, 64), good)


def test_a_folder_dataset_with_a_singular_k_is_refused(tmp_path):
  from hand_tf.data.folder import read_folder
  from hand_tf.detection.keypoint_files import write_detections
  cv2.imwrite(str(tmp_path / "a.png"), np.zeros((64, 64, 3), np.uint8))
  keypoints = np.random.default_rng(0).uniform(10, 50, (1, 21, 2))
  write_detections(tmp_path / "kp.json", keypoints, np.ones((1, 21)), ["a.png"])
  data = json.loads((tmp_path / "kp.json").read_text())
  (tmp_path / "kp.json").write_text(json.dumps({**data, "intrinsics": [np.zeros((3, 3)).tolist()]}))
  with pytest.raises(InputError, match=r"kp.json: intrinsics\[0\] \(a.png\): focal lengths"):
    read_folder(str(tmp_path), str(tmp_path / "kp.json"), image_size=64)


@pytest.mark.parametrize("box, message", [
    (["a", "b", "c"], "is not x0,y0,side"), (["1", "2"], "is not x0,y0,side"),
    (["10", "10", "0"], "side must be a positive"), (["500", "10", "50"], "lies outside"),
    (["-90", "10", "50"], "lies outside"), (["0", "0", "20", "30"], "a square"),
])
def test_degenerate_boxes_are_refused(box, message):
  with pytest.raises(InputError, match="--box: .*" + message):
    parse_box(box, 100, 200, "--box")
  np.testing.assert_array_equal(parse_box(["-10", "5", "50"], 100, 200), [-10, 5, 50, 50])


def test_tiny_and_truncated_images_are_named(tmp_path, caplog):
  with pytest.raises(InputError, match=r"frame: 1x1 pixels is too small"):
    io.check_image_size(np.zeros((1, 1, 3), np.uint8), "frame")
  photo = np.random.default_rng(1).integers(0, 255, (96, 96, 3), np.uint8)
  cv2.imwrite(str(tmp_path / "whole.jpg"), photo)
  payload = (tmp_path / "whole.jpg").read_bytes()
  (tmp_path / "cut.jpg").write_bytes(payload[:-2])  # just the end marker gone
  with caplog.at_level(logging.WARNING):
    io.read_image(tmp_path / "whole.jpg")
    assert not caplog.records
    assert io.read_image(tmp_path / "cut.jpg").shape == (96, 96, 3)
  assert [r.getMessage() for r in caplog.records] == [
      f"{tmp_path / 'cut.jpg'}: truncated JPEG (no end marker); its lower part is grey"]


def test_written_files_keep_the_users_permissions(tmp_path):
  previous = os.umask(0o022)
  try:
    io.write_json(tmp_path / "a.json", {"x": 1})
    assert os.stat(tmp_path / "a.json").st_mode & 0o777 == 0o644
    staging = io.staging_folder(str(tmp_path / "export"))
    io.switch_into_place(staging, str(tmp_path / "export"))
    assert os.stat(tmp_path / "export").st_mode & 0o777 == 0o755
  finally:
    os.umask(previous)


def test_a_switch_killed_halfway_is_put_back_by_the_next_run(tmp_path, monkeypatch):
  target = tmp_path / "export"
  target.mkdir()
  (target / "old.txt").write_text("old set")
  staging = io.staging_folder(str(target))
  (tmp_path / os.path.basename(staging) / "new.txt").write_text("new set")
  renames, rename = [], os.rename

  def dies_at_the_second_rename(source, destination):
    renames.append(source)
    if len(renames) == 2:
      raise KeyboardInterrupt  # the process is killed here
    rename(source, destination)

  monkeypatch.setattr(io.os, "rename", dies_at_the_second_rename)
  with pytest.raises(KeyboardInterrupt):
    io.switch_into_place(staging, str(target))
  monkeypatch.undo()
  assert not target.exists()  # between the renames: only the parked old set
  io.recover_folder(str(target))
  assert sorted(os.listdir(target)) == ["old.txt"]  # the complete old set
  assert os.listdir(tmp_path) == ["export"]  # staging and previous gone
  staging = io.staging_folder(str(target))
  (tmp_path / os.path.basename(staging) / "new.txt").write_text("new set")
  io.switch_into_place(staging, str(target))
  assert sorted(os.listdir(target)) == ["new.txt"] and os.listdir(tmp_path) == ["export"]


def test_inputs_name_a_missing_video_as_a_video_and_go_on_past_bad_ones(tmp_path):
  from hand_tf import inputs
  with pytest.raises(InputError, match="clip.mp4: video not found"):
    list(inputs.frames([str(tmp_path / "clip.mp4")], 5))
  cv2.imwrite(str(tmp_path / "good.png"), np.zeros((20, 20, 3), np.uint8))
  (tmp_path / "bad.jpg").write_bytes(b"not a jpeg")
  problems = []
  read = list(inputs.frames([str(tmp_path / "bad.jpg"), str(tmp_path / "gone.png"),
                             str(tmp_path / "good.png")], 5, problems.append))
  assert [name for name, *_ in read] == ["good"]
  assert [str(p) for p in problems] == [f"{tmp_path / 'bad.jpg'}: not a readable image",
                                        f"{tmp_path / 'gone.png'}: image not found"]


def test_parity_fails_an_artefact_whose_2d_joints_are_off_though_its_vertices_agree():
  from export.parity import compare
  from hand_tf.contract import OUTPUT_NAMES
  rng = np.random.default_rng(2)
  reference = {name: rng.normal(size=(2, 5, 3)) for name in OUTPUT_NAMES}
  got = {name: value.copy() for name, value in reference.items()}
  got["joints2d"] = got["joints2d"] + 37.0  # pixels of a 64 px input
  rows = compare("tflite_int8", got, reference, 64)
  assert not rows["joints2d"]["ok"] and rows["vertices"]["ok"]
  assert rows["joints2d"]["mean"] == pytest.approx(37.0 * 224 / 64)
  got["joints2d"] = reference["joints2d"] + 0.1  # noise for int8, a bug for a float format
  assert all(row["ok"] for row in compare("tflite_int8", got, reference, 64).values())
  assert not compare("tflite_fp32", got, reference, 64)["joints2d"]["ok"]


def test_an_export_failing_parity_leaves_the_previous_set_and_keeps_the_failed_one_aside(
    saved_run, tmp_path, monkeypatch):
  from export import exporter, parity
  from hand_tf.camera import default_intrinsics
  from hand_tf.predictors import load_checkpoint_model
  folder, _ = saved_run
  _, model = load_checkpoint_model(str(folder))
  out = tmp_path / "exported"
  out.mkdir()
  (out / "parity.json").write_text('{"previous": true}')  # a previous export's file
  bounds = {name: -1.0 for name in parity.TOLERANCES["tflite_fp32"][1]}  # nothing passes
  monkeypatch.setitem(parity.TOLERANCES, "tflite_fp32", ("max", bounds))
  images = np.random.default_rng(6).integers(0, 255, (1, 64, 64, 3), np.uint8)
  with pytest.raises(exporter.ParityError, match=r"\['tflite_fp32'\] beyond parity tolerance: "
                                                 "kept for inspection in .*exported.failed"):
    exporter.export_model(model, 64, str(out), ["tflite_fp32"], images,
                          default_intrinsics(64, 64)[None], parity_count=1, log=lambda _: None)
  assert os.listdir(out) == ["parity.json"] and "previous" in (out / "parity.json").read_text()
  failed = tmp_path / "exported.failed"
  report = json.loads((failed / "parity.json").read_text())
  assert not report["tflite_fp32"]["ok"] and (failed / "s2hand_fp32.tflite").is_file()
  assert sorted(os.listdir(tmp_path)) == ["exported", "exported.failed"]  # no staging left
