"""Export (SavedModel, TFLite fp32/fp16/int8, ONNX), predictors, predict CLI, mobile_demo
and the evaluate CLI, on one small (64 px) network exported once for the module."""

import json
import os

import cv2
import numpy as np
import pytest
from cli_runner import run_cli, run_script_without_tensorflow

from export.parity import compare, summary
from hand_tf.contract import OUTPUT_NAMES
from hand_tf.model.s2hand import ModelConfig

SIZE = 64
SMALL = ModelConfig(image_size=SIZE, hourglass_features=16, hourglass_stacks=1,
                    hourglass_modules=1)
FORMATS = ("saved_model", "tflite_fp32", "tflite_fp16", "tflite_int8", "onnx")
ARTEFACTS = {"saved_model": "saved_model", "tflite_fp32": "s2hand_fp32.tflite",
             "tflite_fp16": "s2hand_fp16.tflite", "tflite_int8": "s2hand_int8.tflite",
             "onnx": "s2hand.onnx"}


def _cli(module, *args, timeout=600, without_tensorflow=False):
  return run_cli(module, *args, timeout=timeout, without_tensorflow=without_tensorflow)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
  """(checkpoint dir, export dir, synthetic dataset root) with every format exported."""
  import keras

  from hand_tf.synthetic.dataset import synthesize
  from hand_tf.training.trainer import Trainer, TrainerConfig
  keras.utils.set_random_seed(0)  # the heads' initial weights, so parity figures repeat
  root = tmp_path_factory.mktemp("export")
  checkpoint = root / "run"
  trainer = Trainer(TrainerConfig(out_dir=str(checkpoint), model=SMALL))
  # Non-trivial batch-norm statistics, so that a wrong `training` flag would show (the
  # ImageNet encoder's are already; overriding them would feed its layers out-of-range
  # activations, which no trained model has).
  encoder = {id(v) for v in trainer.training_model.get_layer(
      f"encoder_{SMALL.backbone}").weights}
  for variable in trainer.training_model.non_trainable_variables:
    if "moving_variance" in variable.path and id(variable) not in encoder:
      variable.assign(np.full(variable.shape, 2.0, np.float32))
  trainer.save()
  data = root / "data"
  synthesize(str(data), 6, image_size=SIZE, seed=5, batch_size=6, progress=False)
  out = root / "exported"
  result = _cli("export", "--checkpoint", checkpoint, "--out", out, "--num_calibration", 8,
                "--formats", "saved_model,tflite,onnx")
  assert result.returncode == 0, result.stderr[-3000:]
  assert "fully_quantize" not in result.stdout + result.stderr  # the quantiser's C++ lines
  return checkpoint, out, data


def test_int8_model_runs_the_encoder_in_int8_and_the_hand_model_in_float(exported):
  from ai_edge_litert.interpreter import Interpreter
  _, out, _ = exported
  interpreter = Interpreter(model_path=str(out / "s2hand_int8.tflite"))
  tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
  output_types = {}
  for op in interpreter._get_ops_details():  # noqa: SLF001
    if len(op["outputs"]):
      first = tensors[op["outputs"][0]]
      output_types[first["name"]] = (op["op_name"], first["dtype"])
  encoder = [t for n, (op, t) in output_types.items() if "encoder" in n and op == "CONV_2D"]
  assert encoder and all(t == np.int8 for t in encoder)
  hand = [(n, t) for n, (op, t) in output_types.items()
          if op in ("FULLY_CONNECTED", "BATCH_MATMUL") and (
              "place_hand" in n or ("geometry_head" in n and "trunk" not in n))]
  assert len(hand) > 5 and all(t == np.float32 for _, t in hand), hand


def test_the_exported_model_sees_the_image(exported):
  """Every other export test compares outputs: they mean something only if the outputs
  depend on the image (different hands, and RGB against BGR, move the 2D joints)."""
  from hand_tf.predictors import load_predictor
  _, out, data = exported
  images, k = _inputs(data, 6)
  predictor = load_predictor(str(out / "s2hand_fp32.tflite"))
  joints = predictor.predict(images, k)["joints2d"]
  apart = np.linalg.norm(joints[1:] - joints[0], axis=-1).mean(axis=-1)
  assert apart.min() > 2.0, apart  # pixels of the 64 px input
  swapped = predictor.predict(np.ascontiguousarray(images[..., ::-1]), k)["joints2d"]
  moved = np.linalg.norm(swapped - joints, axis=-1).mean(axis=-1)
  assert moved.min() > 0.5, moved


def test_the_crop_has_known_answers(exported):
  """Where the hand is in the frame: the same crop pixels with the same crop K, cut
  130 px right and 60 px lower in a larger frame, give the same hand with its 2D joints
  moved by exactly that; the frame and box at twice the size give the joints at twice
  the pixels; a box far from the principal point still holds its hand."""
  from hand_tf.camera import default_intrinsics
  from hand_tf.predictors import load_predictor
  from hand_tf.reconstruct import reconstruct
  _, out, data = exported
  images, _ = _inputs(data, 2)
  predictor = load_predictor(str(out / "s2hand_fp32.tflite"))
  faces = predictor.faces
  for image in images:
    frame = np.zeros((200, 300, 3), np.uint8)
    frame[30:30 + SIZE, 20:20 + SIZE] = image
    k = default_intrinsics(200, 300)
    near = reconstruct(predictor, frame, np.array([20, 30, SIZE, SIZE]), k, faces)
    moved = np.zeros((260, 400, 3), np.uint8)
    moved[90:90 + SIZE, 150:150 + SIZE] = image
    k_moved = k.copy()
    k_moved[:2, 2] += [130, 60]
    far = reconstruct(predictor, moved, np.array([150, 90, SIZE, SIZE]), k_moved, faces)
    np.testing.assert_allclose(far.vertices, near.vertices, atol=1e-5)
    np.testing.assert_allclose(far.joints2d, near.joints2d + [130, 60], atol=1e-3)
    # Twice the frame: the crop is resized back to the network's input (antialiased, so
    # not bit-equal) and the joints come back in the big frame's pixels.
    big = cv2.resize(frame, (600, 400), interpolation=cv2.INTER_NEAREST)
    k_big = np.diag([2.0, 2.0, 1.0]).astype(np.float32) @ k
    double = reconstruct(predictor, big, np.array([40, 60, 2 * SIZE, 2 * SIZE]), k_big, faces)
    np.testing.assert_allclose(double.joints2d, 2 * near.joints2d, atol=1.0)
    # The box is 98 px left of and 38 px above the principal point (150, 100): the hand
    # lands in it, where it lands in a box centred on the principal point (up to
    # perspective), not on the camera axis.
    centred = np.zeros((200, 300, 3), np.uint8)
    centred[68:68 + SIZE, 118:118 + SIZE] = image
    on_axis = reconstruct(predictor, centred, np.array([118, 68, SIZE, SIZE]), k, faces)
    in_box = near.joints2d.mean(axis=0) - [20, 30]
    assert np.all((in_box > 0) & (in_box < SIZE)), in_box
    np.testing.assert_allclose(in_box, on_axis.joints2d.mean(axis=0) - [118, 68], atol=3.0)


def _inputs(data, count=3):
  from hand_tf.data.freihand import read_freihand
  from hand_tf.io import read_image
  records = read_freihand(str(data), image_size=SIZE, source_size=SIZE)
  images = np.stack([read_image(p) for p in records.image_paths[:count]])
  return images, records.intrinsics[:count]


def test_export_writes_every_format_within_its_parity_tolerance(exported):
  _, out, _ = exported
  parity = json.loads((out / "parity.json").read_text())
  assert sorted(parity) == sorted(FORMATS)
  for kind, row in parity.items():
    assert os.path.exists(out / ARTEFACTS[kind]), kind
    # Every output a user reads was compared, each within its bound.
    assert sorted(row["outputs"]) == sorted(OUTPUT_NAMES) and row["ok"], (kind, row)
    assert all(o[o["gate"]] <= o["tolerance"] for o in row["outputs"].values()), (kind, row)
  assert parity["saved_model"]["outputs"]["vertices"]["max"] < 0.01
  assert parity["tflite_fp32"]["outputs"]["vertices"]["max"] < 0.1
  # int8 halves the file of fp16 at least once more; fp16 about halves fp32.
  sizes = {k: parity[k]["bytes"] for k in FORMATS}
  assert sizes["tflite_int8"] < sizes["tflite_fp16"] < 0.6 * sizes["tflite_fp32"]
  mesh = json.loads((out / "hand_mesh.json").read_text())
  assert np.asarray(mesh["faces"]).shape == (1538, 3)
  assert len(mesh["keypoint_names"]) == 21 and mesh["input_size"] == SIZE
  assert os.path.isfile(out / "saved_model" / "1" / "saved_model.pb")
  assert not [n for n in os.listdir(out) if n.startswith(".export-")]  # no leftovers


def test_every_runtime_matches_the_checkpoint_on_new_images(exported):
  from hand_tf.predictors import load_predictor
  checkpoint, out, data = exported
  images, k = _inputs(data)
  reference = load_predictor(str(checkpoint)).predict(images, k)
  assert reference["vertices"].shape == (3, 778, 3)
  assert reference["camera"].shape == (3, 7) and reference["lighting"].shape == (3, 11)
  assert reference["texture"].shape == (3, 778, 3)  # (its [0, 1] range is a clip)
  for kind in FORMATS:
    predictor = load_predictor(str(out / ARTEFACTS[kind]))
    assert predictor.input_size == SIZE and predictor.faces.shape == (1538, 3)
    got = predictor.predict(images, k)
    assert set(got) == set(reference), kind
    # Each output within its bound (export.parity: max for float formats, mean for
    # fp16 and int8), on images the export's own check did not see.
    outputs = compare(kind, got, reference, SIZE)
    assert all(row["ok"] for row in outputs.values()), (kind, summary(outputs))


def test_saved_model_serving_default_resizes_and_uses_the_default_camera(exported):
  import tensorflow as tf

  from hand_tf.camera import default_intrinsics
  _, out, data = exported
  images, _ = _inputs(data, 2)
  loaded = tf.saved_model.load(str(out / "saved_model" / "1"))
  assert set(loaded.signatures) >= {"serving_default", "serve_with_intrinsics"}
  big = np.stack([cv2.resize(i, (2 * SIZE, 2 * SIZE), interpolation=cv2.INTER_NEAREST)
                  for i in images])
  default = loaded.signatures["serving_default"](images=tf.constant(big))
  k_big = np.stack([default_intrinsics(2 * SIZE, 2 * SIZE)] * 2)
  explicit = loaded.signatures["serve_with_intrinsics"](images=tf.constant(big),
                                                        intrinsics=tf.constant(k_big))
  np.testing.assert_allclose(default["vertices"], explicit["vertices"], atol=1e-6)
  # The signature resizes to the network's input (antialiased) and scales K with the
  # pixels: its mesh is the Keras model's on the resized image with K scaled.
  from hand_tf.predictors import load_checkpoint_model
  checkpoint = exported[0]
  _, keras_model = load_checkpoint_model(str(checkpoint))
  pixels = tf.image.resize(tf.constant(big, tf.float32) / 255.0, [SIZE, SIZE],
                           antialias=True)
  k_small = tf.constant(np.stack([default_intrinsics(SIZE, SIZE)] * 2))
  reference = keras_model([pixels, k_small], training=False)
  np.testing.assert_allclose(reference["vertices"], explicit["vertices"], atol=1e-4)
  # 2D joints come back in the pixels of the image given (twice the network's).
  np.testing.assert_allclose(explicit["joints2d"], 2 * reference["joints2d"].numpy(),
                             atol=1e-2)


def test_bad_model_files_are_refused_with_the_file_named(exported, tmp_path):
  from hand_tf.predictors import ModelFileError, load_checkpoint_model, load_predictor
  checkpoint, out, _ = exported
  bad = tmp_path / "broken.tflite"
  bad.write_bytes(b"not a flatbuffer")
  (tmp_path / "hand_mesh.json").write_text("{}")
  with pytest.raises(ModelFileError, match="broken.tflite"):
    load_predictor(str(bad))
  with pytest.raises(ModelFileError, match="no checkpoint"):
    load_predictor(str(tmp_path))
  other = ModelConfig(image_size=SIZE, hourglass_features=32, hourglass_stacks=1,
                      hourglass_modules=1)
  with pytest.raises(ModelFileError, match="does not match"):
    load_checkpoint_model(str(checkpoint), other)
  result = _cli("export", "--checkpoint", tmp_path / "missing", "--out", tmp_path / "x")
  assert result.returncode != 0 and "missing" in result.stderr


def test_predict_cli_writes_meshes_joints_and_overlays(exported, tmp_path):
  from hand_tf import mesh_io
  from hand_tf.io import read_image
  _, out, data = exported
  image_path = sorted((data / "training" / "rgb").iterdir())[0]
  # A larger frame with the hand somewhere in it: the crop box brings it back.
  frame = np.zeros((200, 300, 3), np.uint8)
  frame[40:40 + 2 * SIZE, 100:100 + 2 * SIZE] = cv2.resize(
      read_image(str(image_path)), (2 * SIZE, 2 * SIZE))
  frame_path = tmp_path / "frame.png"
  cv2.imwrite(str(frame_path), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
  for model in (out / "s2hand_fp32.tflite", out / "s2hand.onnx", out / "saved_model"):
    result = _cli("hand_tf.predict", frame_path, "--model", model, "--out", tmp_path / "pred",
                  "--box", "100,40,128", "--focal", 320,
                  without_tensorflow=model.suffix in (".tflite", ".onnx"))
    assert result.returncode == 0, result.stderr[-3000:]
    vertices, faces = mesh_io.read_obj(str(tmp_path / "pred" / "frame_hand0_right.obj"))[:2]
    assert vertices.shape == (778, 3) and faces.shape == (1538, 3)
    assert (tmp_path / "pred" / "frame_hand0_right.ply").read_bytes().startswith(b"ply")
    listed = json.loads((tmp_path / "pred" / "frame_hands.json").read_text())
    assert listed["intrinsics_source"] == "focal" and len(listed["hands"]) == 1
    joints = listed["hands"][0]
    assert joints["side"] == "right" and joints["meshes"] == [
        "frame_hand0_right.obj", "frame_hand0_right.ply"]
    j3d, j2d = np.asarray(joints["joints3d_m_camera_frame"]), np.asarray(joints["joints2d_px"])
    k = np.asarray(joints["intrinsics"])
    assert k[0, 0] == 320 and j3d.shape == (21, 3)
    uvw = j3d @ k.T
    np.testing.assert_allclose(j2d, uvw[:, :2] / uvw[:, 2:], atol=1e-2)
    overlay = cv2.imread(str(tmp_path / "pred" / "frame_overlay.png"))
    # The hand is drawn inside its box, not just the box's outline (always drawn).
    changed = np.any(overlay != frame[..., ::-1], axis=-1)
    assert overlay.shape == frame.shape and changed[45:163, 105:223].sum() > 300
  # One missing file and one box outside an image do not cost the batch its other images.
  cv2.imwrite(str(tmp_path / "small.png"), frame[:60, :90])
  result = _cli("hand_tf.predict", frame_path, tmp_path / "nope.png", tmp_path / "small.png",
                "--model", out / "s2hand.onnx", "--box", "100,40,128", "--out",
                tmp_path / "batch", without_tensorflow=True)
  assert result.returncode == 2 and result.stderr.strip().splitlines()[-1] == (
      "error: 2 input(s) skipped (named above); 1 done")
  assert f"{tmp_path / 'nope.png'}: image not found" in result.stderr
  assert f"{tmp_path / 'small.png'}: box: (100, 40, side 128) lies outside" in result.stderr
  assert sorted(os.listdir(tmp_path / "batch")) == [
      "frame_hand0_right.obj", "frame_hand0_right.ply", "frame_hands.json",
      "frame_overlay.png"]
  result = _cli("hand_tf.predict", tmp_path / "nope.png", "--model", out / "s2hand.onnx",
                "--out", tmp_path / "none", without_tensorflow=True)
  assert result.returncode == 2 and result.stderr.strip().splitlines()[-1] == (
      f"error: {tmp_path / 'nope.png'}: image not found")
  assert not (tmp_path / "none").exists()


def test_predict_takes_a_folder_and_the_keypoint_file_detect_writes(exported, tmp_path):
  from hand_tf.detection.keypoint_files import write_detections
  _, out, data = exported
  folder = data / "training" / "rgb"
  names = sorted(p.name for p in folder.iterdir())
  # What `hand_tf.detect` writes, with each image's keypoints in a different corner: the
  # crops, and so the predicted 2D joints, must follow them.
  corners = np.array([[4.0, 4.0], [40.0, 40.0]])
  spread = np.random.default_rng(0).uniform(0, 20, (21, 2))
  keypoints = np.stack([corners[i % 2] + spread for i in range(len(names))])
  write_detections(tmp_path / "detect.json", keypoints, np.ones((len(names), 21)), names)
  result = _cli("hand_tf.predict", folder, "--model", out / "s2hand_fp32.tflite", "--out",
                tmp_path / "pred", "--keypoints", tmp_path / "detect.json",
                without_tensorflow=True)
  assert result.returncode == 0, result.stderr[-3000:]
  from hand_tf.data.crops import box_from_keypoints
  for i, name in enumerate(names):  # every image predicted, in the crop its keypoints give
    stem = os.path.splitext(name)[0]
    joints = json.loads((tmp_path / "pred" / f"{stem}_hands.json").read_text())["hands"][0]
    np.testing.assert_allclose(joints["crop_box_px"], box_from_keypoints(keypoints[i]),
                               atol=1e-3)


def test_detect_then_predict_with_the_detector_and_a_camera_file(exported, tmp_path):
  """`detect` on a folder (a photo with a hand, one without) writes the keypoints
  MediaPipe finds; `predict --detect --intrinsics K.json` crops where they are, uses
  that K, and places the hand on them; neither needs TensorFlow."""
  from hand_images import palm_view

  from hand_tf.data.crops import box_from_keypoints
  from hand_tf.detection.keypoint_files import read_detections
  _, out, _ = exported
  image, truth = palm_view()
  photos = tmp_path / "photos"
  photos.mkdir()
  cv2.imwrite(str(photos / "hand.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
  cv2.imwrite(str(photos / "wall.png"), np.full((120, 160, 3), 200, np.uint8))
  result = _cli("hand_tf.detect", photos, "--out", tmp_path / "detect.json",
                without_tensorflow=True)
  assert result.returncode == 0, result.stderr[-3000:]
  found = read_detections(tmp_path / "detect.json")
  assert sorted(found.names) == ["hand.png", "wall.png"]
  keypoints, confidence = (v[0] for v in found.lookup(["hand.png"]))
  assert confidence.min() > 0.5 and np.linalg.norm(keypoints - truth, axis=1).mean() < 10
  assert found.lookup(["wall.png"])[1].max() == 0.0  # no hand: nothing confident
  k = np.array([[350.0, 0, 120], [0, 360.0, 130], [0, 0, 1]])
  (tmp_path / "K.json").write_text(json.dumps(k.tolist()))
  result = _cli("hand_tf.predict", photos / "hand.png", "--model", out / "s2hand.onnx",
                "--detect", "--intrinsics", tmp_path / "K.json", "--out", tmp_path / "pred",
                without_tensorflow=True)
  assert result.returncode == 0, result.stderr[-3000:]
  listed = json.loads((tmp_path / "pred" / "hand_hands.json").read_text())
  assert listed["intrinsics_source"] == "intrinsics" and len(listed["hands"]) == 1
  joints = listed["hands"][0]
  np.testing.assert_allclose(joints["intrinsics"], k)
  detected = np.asarray(joints["detected_keypoints_px"])
  np.testing.assert_allclose(detected, keypoints, atol=0.5)
  np.testing.assert_allclose(joints["crop_box_px"], box_from_keypoints(detected), atol=1e-3)
  j3d, j2d = np.asarray(joints["joints3d_m_camera_frame"]), np.asarray(joints["joints2d_px"])
  uvw = j3d @ k.T
  np.testing.assert_allclose(j2d, uvw[:, :2] / uvw[:, 2:], atol=1e-2)
  # Placed on the detections: the hand's joints sit on them (the untrained network's
  # fingers differ; a constant miss would be the hand's size, ~60 px here).
  assert joints["placed_on_keypoints"]
  assert np.linalg.norm(j2d - detected, axis=1).mean() < 20


def test_predict_detects_both_hands_of_a_photo_and_refines_them(exported, tmp_path):
  """`predict --detect --refine` on a photo with a right and a left hand: one mesh per
  hand, one JSON listing both (each where it is), each refined onto its keypoints with
  the hand model the export carries; the overlay draws both."""
  from hand_images import two_hands
  _, out, _ = exported
  assert (out / "hand_model.npz").is_file()
  image, truth = two_hands()
  cv2.imwrite(str(tmp_path / "two.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
  result = _cli("hand_tf.predict", tmp_path / "two.png", "--model", out / "s2hand.onnx",
                "--detect", "--refine", "--out", tmp_path / "pred")
  assert result.returncode == 0, result.stderr[-3000:]
  assert "no hand_model.npz" not in result.stderr
  listed = json.loads((tmp_path / "pred" / "two_hands.json").read_text())
  assert listed["intrinsics_source"] == "default" and len(listed["hands"]) == 2
  found = []
  for index, hand in enumerate(listed["hands"]):
    assert hand["meshes"] == [f"two_hand{index}_{hand['side']}.obj",
                              f"two_hand{index}_{hand['side']}.ply"]
    assert all((tmp_path / "pred" / name).is_file() for name in hand["meshes"])
    detected = np.asarray(hand["detected_keypoints_px"])
    found.append(min(truth, key=lambda side: np.linalg.norm(detected - truth[side], axis=1).mean()))
    refinement = hand["refinement"]
    assert refinement["error_after_px"] < refinement["error_before_px"], refinement
    j2d = np.asarray(hand["joints2d_px"])
    assert np.linalg.norm(j2d - detected, axis=1).mean() == pytest.approx(
        refinement["error_after_px"], abs=0.05)
  assert sorted(found) == ["left", "right"]  # one hand each
  overlay = cv2.imread(str(tmp_path / "pred" / "two_overlay.png"))[..., ::-1]
  changed = np.any(overlay != image, axis=-1)
  assert changed[:, :256].sum() > 300 and changed[:, 256:].sum() > 300


def test_mobile_demo_runs_the_tflite_without_tensorflow_and_reports_fps(exported, tmp_path):
  _, out, data = exported
  result = _cli("mobile_demo", "--model", out / "s2hand_int8.tflite", "--input",
                tmp_path / "nowhere", "--out", tmp_path / "failed", "--detector", "none",
                without_tensorflow=True)
  assert result.returncode == 2 and result.stderr.strip().splitlines()[-1] == (
      f"error: {tmp_path / 'nowhere'}: no frames could be read (named above)")
  assert f"{tmp_path / 'nowhere'}: image not found" in result.stderr
  assert not (tmp_path / "failed").exists()
  # An unreadable image in the folder is skipped, named, and the run finishes.
  import shutil
  shutil.copytree(data / "training" / "rgb", tmp_path / "frames")
  (tmp_path / "frames" / "broken.jpg").write_bytes(b"not a jpeg")
  result = _cli("mobile_demo", "--model", out / "s2hand_int8.tflite", "--input",
                tmp_path / "frames", "--out", tmp_path / "demo", "--detector", "none",
                without_tensorflow=True)
  assert result.returncode == 2 and result.stderr.strip().splitlines()[-1] == (
      "error: 1 input(s) skipped (named above); 6 frames done")
  assert f"{tmp_path / 'frames' / 'broken.jpg'}: not a readable image" in result.stderr
  written = sorted(os.listdir(tmp_path / "demo"))
  assert len([n for n in written if n.endswith("_mesh.png")]) == 6
  timings = json.loads((tmp_path / "demo" / "timings.json").read_text())
  # The summary is the median of the per-frame lines it printed, and its stages fit in
  # the frame's total.
  frames = [dict((k, float(v)) for k, v in (item.split() for item in line.split(": ")[1]
                                            .split(", ")))
            for line in result.stdout.splitlines() if "total_ms" in line and ": " in line]
  assert timings["frames"] == len(frames) == 6
  for key in ("total_ms", "crop_infer_ms", "draw_ms"):
    assert timings[key] == pytest.approx(np.median([f[key] for f in frames]), abs=0.06)
  # Each printed value is rounded to 0.1 ms (off by up to 0.05): two summed against a
  # third can exceed it by 0.15 when the frame has little else (a 0.1 bound failed once).
  assert all(f["crop_infer_ms"] + f["draw_ms"] <= f["total_ms"] + 0.15 for f in frames)
  assert timings["fps"] == pytest.approx(1000.0 / timings["total_ms"])


def test_evaluate_cli_reports_freihand_metrics_and_pred_json(exported, tmp_path):
  _, out, data = exported
  result = _cli("hand_tf.evaluate", "--model", out / "s2hand.onnx", "--data_dir", data,
                "--split", "training", "--source_size", SIZE, "--out", tmp_path / "eval")
  assert result.returncode == 0, result.stderr[-3000:]
  report = json.loads((tmp_path / "eval" / "metrics.json").read_text())
  assert report["count"] == 6
  for key in ("pa_mpjpe", "auc_pa_mpjpe", "pa_mpvpe", "f5", "f15", "mpjpe", "mpjpe_2d_px"):
    assert np.isfinite(report["metrics"][key]), key
  # Procrustes alignment can only lower the error.
  assert report["metrics"]["pa_mpjpe"] < report["metrics"]["mpjpe"]
  xyz, verts = json.loads((tmp_path / "eval" / "pred.json").read_text())
  assert np.asarray(xyz).shape == (6, 21, 3) and np.asarray(verts).shape == (6, 778, 3)
  # The report's figures are those of the predictions it wrote against the ground truth
  # (recomputed here: camera-frame and similarity-aligned joint errors, mm).
  truth = np.asarray(json.loads((data / "training_xyz.json").read_text()))
  errors = np.linalg.norm(np.asarray(xyz) - truth, axis=-1)
  assert report["metrics"]["mpjpe"] == pytest.approx(1000 * errors.mean(), rel=1e-4)
  aligned = [_similarity_aligned(t, p) for t, p in zip(truth, np.asarray(xyz))]
  assert report["metrics"]["pa_mpjpe"] == pytest.approx(
      1000 * np.linalg.norm(np.asarray(aligned) - truth, axis=-1).mean(), rel=1e-3)
  assert cv2.imread(str(tmp_path / "eval" / "pck.png")) is not None
  assert "PA-MPJPE" in result.stdout
  assert f"model: onnx {out / 's2hand.onnx'}, {SIZE} px input" in result.stdout
  # Evaluating a checkpoint records its figures (and the template hand's) beside it,
  # which export carries to the model's users.
  checkpoint = exported[0]
  result = _cli("hand_tf.evaluate", "--model", checkpoint, "--data_dir", data, "--split",
                "training", "--source_size", SIZE, "--out", tmp_path / "eval_ckpt")
  assert result.returncode == 0, result.stderr[-3000:]
  held_out = json.loads((checkpoint / "held_out.json").read_text())
  assert held_out["count"] == 6 and held_out["template"]["mpjpe"] > 0
  assert held_out["metrics"]["pa_mpjpe"] == pytest.approx(
      json.loads((tmp_path / "eval_ckpt" / "metrics.json").read_text())["metrics"]["pa_mpjpe"])
  # ... and what the caveat judges by: its hands placed on the detections (placement is
  # rigid: the same shape, another camera-frame error) and its per-image shape against
  # the template's.
  placed, shape = held_out["placed"], held_out["shape"]
  assert placed["pa_mpjpe"] == pytest.approx(held_out["metrics"]["pa_mpjpe"], rel=1e-3)
  assert placed["mpjpe"] != pytest.approx(held_out["metrics"]["mpjpe"], rel=1e-3)
  assert shape["low"] <= shape["difference"] <= shape["high"]
  assert shape["difference"] == pytest.approx(
      held_out["metrics"]["pa_mpjpe"] - held_out["template"]["pa_mpjpe"], abs=1e-3)
  (checkpoint / "held_out.json").unlink()  # the module's other tests see it as exported
  # The synthesizer writes a training split; the default split says how to reach it.
  result = _cli("hand_tf.evaluate", "--model", out / "s2hand.onnx", "--data_dir", data,
                "--out", tmp_path / "eval2")
  assert result.returncode != 0 and result.stderr.strip().splitlines()[-1].endswith(
      "only 'training': pass --split training")
  assert not (tmp_path / "eval2").exists()
  # Photos without 3D ground truth: the folder detect ran on and the file it wrote.
  result = _cli("hand_tf.evaluate", "--model", out / "s2hand.onnx", "--data_kind", "folder",
                "--data_dir", data / "training" / "rgb", "--detections",
                data / "training_detections.json", "--out", tmp_path / "photos")
  assert result.returncode == 0, result.stderr[-3000:]
  figures = json.loads((tmp_path / "photos" / "metrics.json").read_text())
  assert figures["count"] == 6 and figures["metrics"]["keypoints_2d_px"] > 0
  assert figures["metrics"]["spread_mm"] > 0  # the test network's hands differ by image
  assert "px from the detections (at 224 px)" in result.stdout


def _similarity_aligned(truth, points):
  """`points` [N, 3] moved by the scale, rotation and translation that best fit `truth`,
  as the FreiHAND kit does it (scipy's orthogonal Procrustes; reflections allowed)."""
  from scipy.linalg import orthogonal_procrustes
  t, p = truth - truth.mean(0), points - points.mean(0)
  t_norm, p_norm = np.linalg.norm(t), np.linalg.norm(p)
  rotation, scale = orthogonal_procrustes(t / t_norm, p / p_norm)
  return (p / p_norm) @ rotation.T * scale * t_norm + truth.mean(0)


def test_evaluate_refine_adds_the_refined_rows(exported, tmp_path):
  """`evaluate --refine`: the network's predictions fitted to the split's detections
  (not its labels) are evaluated beside them; on this untrained network the fit brings
  the 2D joints nearer the truth (the detections are the truth plus detector noise)."""
  _, out, data = exported
  result = _cli("hand_tf.evaluate", "--model", out / "s2hand.onnx", "--data_dir", data,
                "--split", "training", "--source_size", SIZE, "--out", tmp_path / "eval",
                "--refine")
  assert result.returncode == 0, result.stderr[-3000:]
  assert "onnx + refinement" in result.stdout
  network = json.loads((tmp_path / "eval" / "metrics.json").read_text())
  refined = json.loads((tmp_path / "eval" / "refined" / "metrics.json").read_text())
  assert refined["detections"] == str(data / "training_detections.json")
  assert refined["count"] == network["count"] == 6
  before, after = network["metrics"]["mpjpe_2d_px"], refined["metrics"]["mpjpe_2d_px"]
  assert after < 0.5 * before, (before, after)
  assert refined["metrics"]["refine_ms_per_hand"] > 0


def test_the_readme_api_example_runs_without_tensorflow(exported, tmp_path):
  """The README's Python example, run as written on a photo with a hand in it."""
  import re

  from hand_images import palm_view
  _, out, _ = exported
  readme = open(os.path.join(os.path.dirname(__file__), "..", "README.md")).read()
  example = re.search(r"<!-- api-example[^>]*-->\n```python\n(.*?)```", readme, re.S).group(1)
  os.symlink(out, tmp_path / "exported")
  image, _ = palm_view()
  cv2.imwrite(str(tmp_path / "photo.jpg"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
  (tmp_path / "example.py").write_text(example)
  result = run_script_without_tensorflow("example.py", tmp_path, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.split("\n")[0] == "(21, 3) (778, 3) (16, 3) (10,)"  # a hand was found
  from hand_tf import mesh_io
  meshes = sorted(tmp_path.glob("hand0_*.obj"))  # its side is what MediaPipe said
  assert len(meshes) == 1 and not list(tmp_path.glob("hand1_*"))
  vertices, faces = mesh_io.read_obj(str(meshes[0]))[:2]
  assert vertices.shape == (778, 3) and faces.shape == (1538, 3)
  overlay = cv2.imread(str(tmp_path / "overlay.png"))
  assert overlay.shape == image.shape and np.any(overlay[..., ::-1] != image)


def test_photo_measure_finds_each_hand_and_placement_lands_on_its_keypoints(exported,
                                                                          tmp_path):
  """`hand_tf.eval.photos` (real_images.py, model_card.py): every detected hand once, its
  distances in 224 px crop pixels (a hand 1.6x the size in the photo counts the same),
  the placed joints nearer the keypoints than the network's own camera puts them."""
  from hand_images import palm_view

  from hand_tf.api import HandReconstructor
  from hand_tf.eval import photos
  _, out, _ = exported
  paths = []
  for i, (zoom, centre) in enumerate(((1.0, None), (1.6, (150, 110)))):
    image, _ = palm_view(zoom=zoom, centre=centre)
    paths.append(str(tmp_path / f"hand{i}.png"))
    cv2.imwrite(paths[-1], cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
  result = photos.measure(HandReconstructor.load(str(out / "s2hand_fp32.tflite")), paths,
                          photos.SETTINGS[:2], log=lambda _: None)
  assert result["hands"] == 2 and result["photos_with_hands"] == 2
  placed, network = result["settings"]["placed"], result["settings"]["network"]
  # PnP moves the (barely trained) network's hand onto the keypoints: nearer than its own
  # camera puts it.
  assert placed["joints_px"] < network["joints_px"], result
  # Both palm views are the same hand in the same pose: in crop pixels its keypoints
  # nearly coincide whatever the zoom, so the constant skeleton fits them well.
  assert result["constant_px"] < 10, result
  assert len(result["overlays"]) == 2


def test_mobile_pipeline_keeps_the_last_box_when_detection_fails(exported):
  """As MediaPipe's tracker does: a frame where the detector sees no hand is cropped
  where the hand last was, and only detected frames are placed on keypoints."""
  from hand_tf.data.crops import box_from_keypoints
  from mobile_demo.pipeline import HandPipeline
  _, out, _ = exported
  seen = np.random.default_rng(1).uniform(20, 60, (21, 2)).astype(np.float32) + [30, 10]

  from hand_tf.detection.mediapipe import DetectedHand

  class FlakyDetector:
    def __init__(self):
      self.calls = 0

    def detect_hands(self, image, max_hands):
      self.calls += 1
      if self.calls == 2:  # the second frame: nothing found
        return []
      return [DetectedHand(seen, np.ones(21, np.float32), "left", 0.1, 1.0, 1.0)]

  pipeline = HandPipeline(str(out / "s2hand_fp32.tflite"), detector=FlakyDetector())
  frame = np.full((120, 160, 3), 90, np.uint8)
  (first,), _, timings = pipeline.process(frame, draw=False)
  (second,), _, _ = pipeline.process(frame, draw=False)
  assert first.side == second.side == "left"  # the hand's side is kept with its box
  np.testing.assert_allclose(first.box, box_from_keypoints(seen, np.ones(21)))
  np.testing.assert_allclose(second.box, first.box)  # kept, not the whole frame
  assert first.keypoints is not None and second.keypoints is None
  assert "detect_ms" in timings and timings["total_ms"] >= timings["crop_infer_ms"]


def test_a_left_hand_is_the_mirror_of_the_right_hand_prediction_on_the_flipped_photo(
    exported):
  """A rendered left hand (MANO's left model) in an off-centre box under an off-centre
  camera, predicted as a left hand, is the reflection of the right-hand prediction on
  the flipped photo (its box and camera flipped here by hand), to float tolerance; taken
  for a right hand instead, it is predicted elsewhere."""
  from hand_images import palm_view

  from hand_tf import reconstruct
  from hand_tf.predictors import load_predictor
  _, out, _ = exported
  predictor = load_predictor(str(out / "s2hand_fp32.tflite"))
  hand, _ = palm_view(128, "left", zoom=2.0)
  photo = np.full((200, 300, 3), 60, np.uint8)
  photo[30:158, 150:278] = hand
  box, k = [150, 30, 128, 128], np.array([[400.0, 0, 170], [0, 410, 90], [0, 0, 1]])
  left = reconstruct.reconstruct(predictor, photo, box, k, predictor.faces, side="left")
  flipped_box = [300 - 150 - 128, 30, 128, 128]
  flipped_k = np.array([[400.0, 0, 300 - 170], [0, 410, 90], [0, 0, 1]])
  right = reconstruct.reconstruct(predictor, np.ascontiguousarray(photo[:, ::-1]),
                                  flipped_box, flipped_k, predictor.faces)
  assert left.side == "left" and right.side == "right"
  np.testing.assert_allclose(left.joints2d[:, 0], 300 - right.joints2d[:, 0], atol=1e-3)
  np.testing.assert_allclose(left.joints2d[:, 1], right.joints2d[:, 1], atol=1e-3)
  np.testing.assert_allclose(left.vertices, right.vertices * [-1, 1, 1], atol=1e-6)
  np.testing.assert_allclose(left.pose, right.pose * [1, -1, -1], atol=1e-6)
  np.testing.assert_array_equal(left.faces, predictor.faces[:, [0, 2, 1]])
  as_right = reconstruct.reconstruct(predictor, photo, box, k, predictor.faces)
  print("left vs taken for right", np.abs(as_right.joints2d - left.joints2d).max())
  assert np.abs(as_right.joints2d - left.joints2d).max() > 2.0


def _snapshot(folder):
  """{relative path: file bytes' digest} of every file under `folder`."""
  import hashlib
  return {os.path.relpath(os.path.join(root, name), folder):
          hashlib.sha1(open(os.path.join(root, name), "rb").read()).hexdigest()
          for root, _, names in os.walk(folder) for name in names}


def test_a_killed_re_export_leaves_the_previous_set_whole(exported, tmp_path):
  """kill -9 during an export into a folder holding a complete export: the folder is
  the complete old set, and the next run's first step removes what the killed run
  left.  Its log is short lines of its own
  (no multi-thousand-character lists of renamed inputs, TensorSpec dumps or banners)."""
  import shutil

  from cli_runner import kill_cli_at
  checkpoint, out, data = exported
  target = tmp_path / "exported"
  shutil.copytree(out, target)
  old = _snapshot(target)
  args = ("--checkpoint", checkpoint, "--out", target, "--formats", "tflite_fp32",
          "--parity_count", 1, "--num_calibration", 2, "--calibration_dir", data)
  # With the new artefact built, before its check (earlier kills leave less to undo;
  # one between the final renames, and a complete switch: tests/test_reliability.py).
  printed = kill_cli_at("export", *args, line_containing="built s2hand_fp32.tflite")
  assert _snapshot(target) == old
  assert len(os.listdir(tmp_path)) > 1  # the killed run's staging folder
  from hand_tf.io import recover_folder
  recover_folder(str(target))  # what the next export does first
  assert os.listdir(tmp_path) == ["exported"] and _snapshot(target) == old
  lines = printed.splitlines()
  assert lines and max(len(line) for line in lines) < 300, max(lines, key=len)[:300]
  assert not [line for line in lines if "TensorSpec" in line or "oneDNN" in line]
  # A folder holding anything else is not replaced (export's first check).
  from export.exporter import check_output_folder
  from hand_tf.io import InputError
  (target / "notes.txt").write_text("mine")
  with pytest.raises(InputError, match=f"{target}: holds files an export did not write "
                                       r"\(notes.txt, ...\); export into a new or empty"):
    check_output_folder(str(target))
