"""Data: synthetic generator, FreiHAND / HO-3D / folder readers, detections, tf.data."""

import json
import os
import pickle

import cv2
import numpy as np
import pytest

from hand_tf.camera import project
from hand_tf.data import pipeline
from hand_tf.data.folder import read_folder
from hand_tf.data.freihand import read_freihand
from hand_tf.data.ho3d import read_ho3d
from hand_tf.detection import keypoint_files as det
from hand_tf.io import InputError
from hand_tf.synthetic.dataset import synthesize
from mano_tf import constants


def test_synthetic_dataset_layout_and_content(synthetic_dataset):
  root, summary = synthetic_dataset
  assert summary["num"] == 8 and summary["images_per_second"] > 0
  for i in range(8):
    image = cv2.imread(str(root / "training" / "rgb" / ("%08d.jpg" % i)))
    mask = cv2.imread(str(root / "training" / "mask" / ("%08d.jpg" % i)), 0)
    assert image.shape == (96, 96, 3) and mask.shape == (96, 96)
    assert 0.02 < (mask > 127).mean() < 0.9  # a hand, not the whole image
  k = json.loads((root / "training_K.json").read_text())
  xyz = np.array(json.loads((root / "training_xyz.json").read_text()))
  mano = np.array(json.loads((root / "training_mano.json").read_text()))
  scale = np.array(json.loads((root / "training_scale.json").read_text()))
  assert len(k) == 8 and xyz.shape == (8, 21, 3) and mano.shape == (8, 1, 61)
  np.testing.assert_allclose(scale, np.linalg.norm(xyz[:, 9] - xyz[:, 10], axis=1), atol=1e-5)
  uv = project(xyz, np.array(k))
  np.testing.assert_allclose(mano[:, 0, 58:60], uv[:, 0], atol=1e-3)
  # The wrist projects inside the image, the hand is in front of the camera.
  assert np.all(xyz[..., 2] > 0.2) and np.all((uv[:, 0] > 0) & (uv[:, 0] < 96))


def test_generator_is_deterministic_whatever_the_batch_size(tmp_path, synthetic_dataset):
  root, _ = synthetic_dataset
  synthesize(str(tmp_path), 3, image_size=96, seed=3, occluders=True, batch_size=2,
             progress=False)
  for name in ("training_xyz.json", "training_K.json", "training_detections.json"):
    a = json.loads((tmp_path / name).read_text())
    b = json.loads((root / name).read_text())
    b = b if isinstance(b, list) else {**b, "images": b["images"][:3],
                                       "keypoints": b["keypoints"][:3]}
    if isinstance(a, list):
      np.testing.assert_allclose(np.array(a), np.array(b)[:3], atol=1e-6)
    else:  # the simulated detector's file: the same detections for the same images
      assert a["images"] == b["images"]
      np.testing.assert_allclose(np.array(a["keypoints"]), np.array(b["keypoints"]),
                                 atol=1e-3)
  for i in range(3):
    a = cv2.imread(str(tmp_path / "training" / "rgb" / ("%08d.jpg" % i))).astype(int)
    b = cv2.imread(str(root / "training" / "rgb" / ("%08d.jpg" % i))).astype(int)
    assert np.abs(a - b).max() <= 2


def test_freihand_reader_reads_the_synthetic_set(synthetic_dataset):
  root, _ = synthetic_dataset
  records = read_freihand(str(root), detections=str(root / "training_detections.json"),
                          image_size=96, source_size=96)
  assert len(records) == 8 and records.vertices.shape == (8, 778, 3)
  detected = json.loads((root / "training_detections.json").read_text())["keypoints"]
  np.testing.assert_allclose(records.keypoints, np.array(detected)[..., :2], atol=1e-3)
  wsl = read_freihand(str(root), image_size=96, source_size=96)  # GT 2D, confidence 1
  np.testing.assert_allclose(wsl.keypoints, project(wsl.joints3d, wsl.intrinsics),
                             atol=1e-3)
  assert np.all(wsl.confidence == 1.0)
  # Resizing the input rescales K and keypoints consistently.
  big = read_freihand(str(root), image_size=192, source_size=96)
  np.testing.assert_allclose(big.keypoints, 2 * wsl.keypoints, atol=1e-3)
  np.testing.assert_allclose(project(big.joints3d, big.intrinsics), big.keypoints,
                             atol=1e-3)


def _write_freihand_fixture(root, num=3, versions=4, size=32):
  rng = np.random.default_rng(0)
  os.makedirs(root / "training" / "rgb")
  os.makedirs(root / "training" / "mask")
  for i in range(num * versions):
    cv2.imwrite(str(root / "training" / "rgb" / ("%08d.jpg" % i)),
                np.full((size, size, 3), 10 * i, np.uint8))
  for i in range(num):
    cv2.imwrite(str(root / "training" / "mask" / ("%08d.jpg" % i)), np.zeros((size, size)))
  k = [[[100.0, 0, 16], [0, 100.0, 16], [0, 0, 1]]] * num
  xyz = (rng.normal(0, 0.03, (num, 21, 3)) + [0, 0, 0.6]).tolist()
  (root / "training_K.json").write_text(json.dumps(k))
  (root / "training_xyz.json").write_text(json.dumps(xyz))
  (root / "training_scale.json").write_text(json.dumps([0.03] * num))
  return np.array(xyz), np.array(k)


def test_freihand_four_versions_share_annotations(tmp_path):
  xyz, k = _write_freihand_fixture(tmp_path)
  records = read_freihand(str(tmp_path), versions=("gs", "hom", "sample", "auto"),
                          image_size=32, source_size=32)
  assert len(records) == 12
  assert os.path.basename(records.image_paths[7]) == "%08d.jpg" % 7  # id 1, version 'sample'
  np.testing.assert_allclose(records.joints3d[7], xyz[1], atol=1e-6)
  assert records.mask_paths[7].endswith("%08d.jpg" % 1)
  pixels = next(iter(pipeline.make_dataset(records.subset([7]), 1)))["image"].numpy()
  assert pixels.mean() == pytest.approx(70 / 255, abs=0.02)  # image 7 was filled with 70


@pytest.mark.parametrize("damage,message", [
    (lambda r: os.remove(r / "training_K.json"), "training_K.json: intrinsics file not found"),
    (lambda r: (r / "training_K.json").write_text("[[1, 2"), "training_K.json: not valid JSON"),
    (lambda r: (r / "training_xyz.json").write_text(json.dumps([[[0, 0, 1]] * 21] * 2)),
     r"field 'xyz' has shape \(2, 21, 3\), expected \(3, 21, 3\)"),
    (lambda r: (r / "training_K.json").write_text(json.dumps([[[1, 0], [0, 1]]] * 3)),
     "field 'K' has shape"),
    (lambda r: os.remove(r / "training" / "rgb" / "00000002.jpg"), "00000002.jpg: image missing"),
])
def test_freihand_errors_name_the_file_and_field(tmp_path, damage, message):
  _write_freihand_fixture(tmp_path)
  damage(tmp_path)
  with pytest.raises(InputError, match=message):
    read_freihand(str(tmp_path), image_size=32, source_size=32)


def test_detection_formats(tmp_path):
  rng = np.random.default_rng(1)
  kp = rng.uniform(0, 200, (3, 21, 2)).astype(np.float32)
  conf = rng.uniform(0, 1, (3, 21)).astype(np.float32)
  names = ["a.jpg", "b.jpg", "c.jpg"]
  ours = tmp_path / "ours.json"
  det.write_detections(ours, kp, conf, names)
  s2hand = tmp_path / "detect.json"
  s2hand.write_text(json.dumps([kp.tolist(), conf[..., None].tolist(), names]))
  openpose = tmp_path / "openpose"
  openpose.mkdir()
  for i, name in enumerate(names):
    rows = np.concatenate([kp[i], conf[i, :, None]], axis=1).ravel().tolist()
    (openpose / f"{name[:-4]}_keypoints.json").write_text(json.dumps(
        {"people": [{"hand_left_keypoints_2d": [0.0] * 63, "hand_right_keypoints_2d": rows}]}))
  for source in (ours, s2hand, openpose):
    found = det.read_detections(source)
    got_kp, got_conf = found.lookup(["c.jpg", "a.jpg"])
    np.testing.assert_allclose(got_kp, kp[[2, 0]], atol=1e-3)
    np.testing.assert_allclose(got_conf, conf[[2, 0]], atol=1e-3)


@pytest.mark.parametrize("content,message", [
    ({"format": det.FORMAT, "images": [], "keypoints": []}, "the detections file is empty"),
    ({"format": det.FORMAT, "images": ["a"], "keypoints": [[[0, 0, 1]] * 20]},
     r"field 'keypoints' has shape \(1, 20, 3\)"),
    ({"format": "other"}, "field 'format' must be"),
    ([[], []], "the detections file is empty"),
])
def test_bad_detection_files(tmp_path, content, message):
  path = tmp_path / "d.json"
  path.write_text(json.dumps(content))
  with pytest.raises(InputError, match=message):
    det.read_detections(path)
  found = det.Detections(np.zeros((1, 21, 2)), np.ones((1, 21)), ["x.jpg"], "f.json")
  with pytest.raises(InputError, match="f.json: no detection for image 'y.jpg'"):
    found.lookup(["y.jpg"])


def test_simulated_detector():
  rng = np.random.default_rng(0)
  gt = rng.uniform(40, 180, (400, 21, 2))
  visible = rng.uniform(size=(400, 21)) > 0.2
  exact, conf = det.simulate_detections(rng, gt, visible, 224, noise_level=0.0)
  np.testing.assert_allclose(exact, gt, atol=1e-3)
  assert conf[visible].min() > 0.85
  noisy, conf = det.simulate_detections(rng, gt, visible, 224, noise_level=1.0)
  stats = det.detection_statistics(noisy, gt)
  assert 1.0 < stats["median_px_error"] < 8.0
  assert stats["within_px"]["30"] < 1.0  # outliers exist
  assert conf[visible].mean() > conf[~visible].mean() + 0.2
  error = np.linalg.norm(noisy - gt, axis=-1)
  assert conf[error > 30].mean() < 0.4 < conf[error < 3].mean()


def _write_ho3d_fixture(root, size=(160, 120)):
  rng = np.random.default_rng(2)
  cam = np.array([[200.0, 0, 80], [0, 200.0, 60], [0, 0, 1]])
  for split, names in (("train", ["SEQ1/0000", "SEQ2/0000"]), ("evaluation", ["EV/0003"])):
    (root / f"{split}.txt").write_text("\n".join(names) + "\n")
    for name in names:
      seq, frame = name.split("/")
      os.makedirs(root / split / seq / "rgb", exist_ok=True)
      os.makedirs(root / split / seq / "meta", exist_ok=True)
      cv2.imwrite(str(root / split / seq / "rgb" / f"{frame}.png"),
                  np.zeros((size[1], size[0], 3), np.uint8))
      joints = rng.normal(0, 0.02, (21, 3)) + [0.0, 0.0, -0.5]  # OpenGL: -z forward
      meta = {"camMat": cam, "handJoints3D": joints if split == "train" else joints[0],
              "handBoundingBox": np.array([60.0, 40.0, 100.0, 90.0]) if split != "train"
              else None, "handPose": None}
      with open(root / split / seq / "meta" / f"{frame}.pkl", "wb") as f:
        pickle.dump(meta, f, protocol=2)
  return cam


def test_ho3d_reader_crops_and_updates_k(tmp_path):
  _write_ho3d_fixture(tmp_path)
  train = read_ho3d(str(tmp_path), "train", image_size=64)
  assert len(train) == 2
  np.testing.assert_allclose(project(train.joints3d, train.intrinsics), train.keypoints,
                             atol=1e-3)
  assert np.all(train.joints3d[..., 2] > 0)  # converted to OpenCV axes
  kp = train.keypoints
  assert np.all((kp > 0) & (kp < 64))  # the crop contains the hand
  with pytest.raises(InputError, match="needs detections"):
    read_ho3d(str(tmp_path), "evaluation")
  det_path = tmp_path / "det.json"
  det.write_detections(det_path, np.full((1, 21, 2), 80.0), np.ones((1, 21)), ["EV/0003"])
  evaluation = read_ho3d(str(tmp_path), "evaluation", detections=str(det_path), image_size=64)
  box = evaluation.crop_boxes[0]
  center = box[:2] + box[2:] / 2
  np.testing.assert_allclose(center, [80.0, 65.0], atol=1e-3)  # centre of the given bbox
  np.testing.assert_allclose(evaluation.keypoints[0, 0],
                             (np.array([80.0, 80.0]) - box[:2]) * 64 / box[2], atol=1e-3)


def test_ho3d_errors(tmp_path):
  _write_ho3d_fixture(tmp_path)
  meta_path = tmp_path / "train" / "SEQ1" / "meta" / "0000.pkl"
  with open(meta_path, "wb") as f:
    pickle.dump({"camMat": np.eye(3)}, f)
  with pytest.raises(InputError, match="0000.pkl: missing field 'handJoints3D'"):
    read_ho3d(str(tmp_path), "train")
  meta_path.write_bytes(b"garbage")
  with pytest.raises(InputError, match="0000.pkl: not a readable pickle"):
    read_ho3d(str(tmp_path), "train")


def test_folder_reader(tmp_path):
  images = tmp_path / "images"
  images.mkdir()
  cv2.imwrite(str(images / "hand.png"), np.zeros((100, 150, 3), np.uint8))
  kp = np.random.default_rng(3).uniform(40, 90, (1, 21, 2))
  det.write_detections(tmp_path / "kp.json", kp, np.ones((1, 21)), ["hand.png"])
  records = read_folder(str(images), str(tmp_path / "kp.json"), image_size=64)
  box = records.crop_boxes[0]
  np.testing.assert_allclose(records.keypoints[0], (kp[0] - box[:2]) * 64 / box[2], atol=1e-3)
  full = read_folder(str(images), str(tmp_path / "kp.json"), image_size=64, crop="full")
  np.testing.assert_allclose(full.crop_boxes[0], [0, -25, 150, 150])
  det.write_detections(tmp_path / "kp2.json", kp, np.ones((1, 21)), ["missing.png"])
  with pytest.raises(InputError, match="missing.png: image missing or unreadable"):
    read_folder(str(images), str(tmp_path / "kp2.json"))


def _dot_image(path, points, size):
  image = np.zeros((size, size, 3), np.uint8)
  for p in points:
    cv2.circle(image, (int(round(p[0] * 16 - 8)), int(round(p[1] * 16 - 8))), 24,
               (255, 255, 255), -1, cv2.LINE_AA, shift=4)
  cv2.imwrite(str(path), image)


def _brightest(image, near, radius=6):
  x, y = int(near[0]), int(near[1])
  y0, y1 = max(y - radius, 0), min(y + radius, image.shape[0])
  x0, x1 = max(x - radius, 0), min(x + radius, image.shape[1])
  patch = image[y0:y1, x0:x1].mean(axis=-1)
  weights = np.clip(patch - 0.5 * patch.max(), 0, None)
  ys, xs = np.mgrid[y0:y1, x0:x1]
  return np.array([(xs * weights).sum(), (ys * weights).sum()]) / weights.sum() + 0.5


def test_pipeline_crop_and_augmentation_keep_keypoints_on_the_image(tmp_path):
  rng = np.random.default_rng(4)
  points = rng.uniform(60, 140, (3, 2))
  _dot_image(tmp_path / "dots.png", points, 200)
  keypoints = np.zeros((1, 21, 2), np.float32)
  keypoints[0, :3] = points
  det.write_detections(tmp_path / "kp.json", keypoints, np.ones((1, 21)), ["dots.png"])
  records = read_folder(str(tmp_path), str(tmp_path / "kp.json"), image_size=96)
  plain = next(iter(pipeline.make_dataset(records, 1)))
  for k in range(3):  # the crop moved the dots where the keypoints say
    np.testing.assert_allclose(_brightest(plain["image"][0].numpy(), plain["keypoints"][0, k]),
                               plain["keypoints"][0, k].numpy(), atol=0.6)
  config = pipeline.AugmentConfig(scale_range=(0.8, 1.2), rotation_degrees=180,
                                  brightness=0, contrast=0, saturation=0, hue=0)
  dataset = pipeline.make_dataset(records, 1, augment_config=config, seed=5, repeat=True)
  for element in dataset.take(3):
    for k in range(3):
      np.testing.assert_allclose(
          _brightest(element["image"][0].numpy(), element["keypoints"][0, k]),
          element["keypoints"][0, k].numpy(), atol=0.8)
    # K follows: any point projects through the new K where the warp moved it.
    matrix = element["intrinsics"][0].numpy() @ np.linalg.inv(records.intrinsics[0])
    np.testing.assert_allclose(records.keypoints[0, :3] @ matrix[:2, :2].T + matrix[:2, 2],
                               element["keypoints"][0, :3].numpy(), atol=1e-3)


def test_pipeline_batches_shuffles_deterministically_and_distributes(synthetic_dataset,
                                                                    two_replicas):
  root, _ = synthetic_dataset
  records = read_freihand(str(root), detections=str(root / "training_detections.json"),
                          image_size=64, source_size=96)
  kwargs = dict(shuffle=True, seed=7, deterministic=True, include_masks=True,
                augment_config=pipeline.AugmentConfig())
  a = [b["index"].numpy() for b in pipeline.make_dataset(records, 3, **kwargs)]
  b = [b["index"].numpy() for b in pipeline.make_dataset(records, 3, **kwargs)]
  assert [len(x) for x in a] == [3, 3, 2]
  np.testing.assert_array_equal(np.concatenate(a), np.concatenate(b))
  assert sorted(np.concatenate(a)) == list(range(8))
  batch = next(iter(pipeline.make_dataset(records, 4, **kwargs)))
  assert batch["image"].shape == (4, 64, 64, 3) and batch["mask"].shape == (4, 64, 64, 1)
  assert batch["vertices"].shape == (4, constants.NUM_VERTICES, 3)
  assert 0.0 <= batch["image"].numpy().min() and batch["image"].numpy().max() <= 1.0
  strategy = two_replicas
  distributed = pipeline.distributed_dataset(strategy, records, 4)
  per_replica = next(iter(distributed))["image"]
  shapes = [t.shape for t in strategy.experimental_local_results(per_replica)]
  assert shapes == [(2, 64, 64, 3), (2, 64, 64, 3)]


def test_worker_shards_together_are_the_one_worker_batches(synthetic_dataset):
  """Two workers (shards) at batch 2 each: step k's two batches hold exactly the images
  of one worker's k-th batch of 4, augmented identically; every image once an epoch."""
  root, _ = synthetic_dataset
  records = read_freihand(str(root), detections=str(root / "training_detections.json"),
                          image_size=32, source_size=96)
  kwargs = dict(shuffle=True, seed=5, deterministic=True, drop_remainder=True,
                augment_config=pipeline.AugmentConfig())
  whole = list(pipeline.make_dataset(records, 4, **kwargs))
  shards = [list(pipeline.make_dataset(records, 2, shard=(2, i), **kwargs)) for i in (0, 1)]
  assert len(whole) == len(shards[0]) == len(shards[1]) == 2
  for k, batch in enumerate(whole):
    parts = [shards[0][k], shards[1][k]]
    together = {key: np.concatenate([p[key].numpy() for p in parts]) for key in batch}
    order = np.argsort(together["index"])
    expected = np.argsort(batch["index"].numpy())
    for key in ("index", "image", "keypoints", "intrinsics"):
      np.testing.assert_allclose(together[key][order], batch[key].numpy()[expected],
                                 atol=1e-6, err_msg=key)
  seen = np.concatenate([p["index"].numpy() for shard in shards for p in shard])
  assert sorted(seen) == list(range(8))


def test_synthesize_cli_prints_speed_and_detector_statistics(tmp_path):
  import subprocess
  import sys
  result = subprocess.run([sys.executable, "-m", "hand_tf.synthesize", "--out",
                           str(tmp_path), "--num", "2", "--image_size", "64"],
                          capture_output=True, text=True, check=True)
  assert "images/s" in result.stdout and "simulated detector: mean error" in result.stdout
  assert len(json.loads((tmp_path / "training_K.json").read_text())) == 2


def test_skipping_batches_resumes_the_same_order_and_augmentation(synthetic_dataset):
  root, _ = synthetic_dataset
  records = read_freihand(str(root), image_size=32, source_size=96)
  kwargs = dict(shuffle=True, seed=7, deterministic=True,
                augment_config=pipeline.AugmentConfig())
  full = list(pipeline.make_dataset(records, 2, **kwargs))
  resumed = list(pipeline.make_dataset(records, 2, skip_batches=2, **kwargs))
  assert len(resumed) == len(full) - 2
  for a, b in zip(full[2:], resumed):
    np.testing.assert_array_equal(a["index"].numpy(), b["index"].numpy())
    np.testing.assert_allclose(a["image"].numpy(), b["image"].numpy(), atol=1e-6)


def test_rotation_range_keeps_hands_near_the_canonical_view():
  from scipy.spatial.transform import Rotation

  from hand_tf.synthetic import dataset as synthetic_data
  from mano_tf import constants
  rng = np.random.default_rng(0)
  canonical = Rotation.from_rotvec(constants.S2HAND_ROOT_ROTATION)
  near = [(Rotation.from_rotvec(synthetic_data._sample_rotation(rng, 30.0))  # noqa: SLF001
           * canonical.inv()).magnitude() for _ in range(200)]
  assert max(near) <= np.deg2rad(30.0) + 1e-9 and max(near) > np.deg2rad(20.0)
  anywhere = [(Rotation.from_rotvec(synthetic_data._sample_rotation(rng, None))  # noqa: SLF001
               * canonical.inv()).magnitude() for _ in range(200)]
  assert max(anywhere) > np.deg2rad(150.0)


def test_freihand_reader_takes_the_image_side_from_the_images(synthetic_dataset):
  # The training CLI passes no source size: a 96 px set must not be read as 224 px crops.
  root, _ = synthetic_dataset
  records = read_freihand(str(root), image_size=64)
  np.testing.assert_allclose(records.crop_boxes[0], [0, 0, 96, 96])
  explicit = read_freihand(str(root), image_size=64, source_size=96)
  np.testing.assert_allclose(records.keypoints, explicit.keypoints)
  np.testing.assert_allclose(records.intrinsics, explicit.intrinsics)


def test_training_sees_the_pixels_inference_crops(tmp_path):
  """The tf.data pipeline and `crops.crop_image` (evaluation, export, inference) give the
  same crop at every shrink factor, masks included (train/serve skew guard)."""
  from hand_tf.data import crops
  from hand_tf.data.records import HandRecords
  from hand_tf.io import read_image
  rng = np.random.default_rng(3)
  size = 32
  # Fine detail, where an unfiltered resampler and an antialiased one disagree most.
  image = cv2.resize(rng.integers(0, 256, (90, 120, 3), np.uint8), (480, 360),
                     interpolation=cv2.INTER_NEAREST)
  cv2.imwrite(str(tmp_path / "image.png"), image[..., ::-1])
  cv2.imwrite(str(tmp_path / "mask.png"), image[..., 0])
  shrinks = (1.0, 2.0, 3.5, 5.0, 9.0)
  boxes = np.array([[100.3, 40.7, s * size, s * size] for s in shrinks] +
                   [[-40.0, 300.0, 120.0, 120.0]], np.float32)  # partly outside
  n = len(boxes)
  records = HandRecords(
      image_paths=[str(tmp_path / "image.png")] * n, image_size=size, crop_boxes=boxes,
      intrinsics=np.tile(np.eye(3, dtype=np.float32), (n, 1, 1)),
      keypoints=np.zeros((n, 21, 2), np.float32), confidence=np.ones((n, 21), np.float32),
      mask_paths=[str(tmp_path / "mask.png")] * n)
  batch = next(iter(pipeline.make_dataset(records, n, deterministic=True, include_masks=True)))
  for i, box in enumerate(boxes):
    for key, channels in (("image", 3), ("mask", 1)):
      served = crops.crop_image(read_image(tmp_path / f"{key}.png", channels), box, size)
      trained = batch[key][i].numpy() * 255.0
      difference = np.abs(trained - served.astype(np.float32))
      assert difference.max() <= 1.0, (key, box, difference.mean(), difference.max())


def test_crops_sample_pixel_centres():
  """Source pixel c covers [c, c + 1): in a 2x enlarged crop, output pixel j's centre
  lies at source coordinate (j + 0.5) / 2, i.e. 0.25 px before source pixel centre j/2
  for even j.  On a ramp whose value is 10 x the column, output column 10 reads 47.5
  (OpenCV's own centre convention would give 50)."""
  from hand_tf.data.crops import crop_image
  ramp = np.tile((np.arange(16) * 10).astype(np.uint8)[None, :, None], (16, 1, 3))
  crop = crop_image(ramp, (0.0, 0.0, 16.0, 16.0), 32)
  assert abs(float(crop[16, 10, 0]) - 47.5) <= 0.6, crop[16, :12, 0]
  assert abs(float(crop[16, 11, 0]) - 52.5) <= 0.6, crop[16, :12, 0]
  # At scale 1 with an integer offset a crop is an exact copy.
  np.testing.assert_array_equal(crop_image(ramp, (3.0, 2.0, 8.0, 8.0), 8), ramp[2:10, 3:11])


def test_folder_training_takes_what_detect_writes_and_leaves_out_images_without_a_hand(
    tmp_path, caplog):
  """`detect photos/ --out d.json` then `train --data_kind folder --data_dir photos
  --detections d.json`: an image where the detector found nothing (confidence 0) is
  left out, not cropped around (0, 0)."""
  import logging
  for name in ("a.png", "b.png", "c.png"):
    cv2.imwrite(str(tmp_path / name), np.zeros((100, 120, 3), np.uint8))
  kp = np.random.default_rng(5).uniform(30, 80, (3, 21, 2))
  confidence = np.ones((3, 21))
  kp[1], confidence[1] = 0.0, 0.0  # what detect writes for an image without a hand
  det.write_detections(tmp_path / "d.json", kp, confidence, ["a.png", "b.png", "c.png"])
  with caplog.at_level(logging.WARNING):
    records = read_folder(str(tmp_path), str(tmp_path / "d.json"), image_size=64)
  assert [os.path.basename(p) for p in records.image_paths] == ["a.png", "c.png"]
  assert len(records.confidence) == 2 and "1 of 3 images have no detected hand" in caplog.text
  det.write_detections(tmp_path / "none.json", kp[1:2], confidence[1:2], ["b.png"])
  with pytest.raises(InputError, match="none.json: no image with a detected hand"):
    read_folder(str(tmp_path), str(tmp_path / "none.json"))
