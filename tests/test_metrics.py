"""FreiHAND-protocol metrics on cases with known answers."""

import numpy as np
import pytest

from hand_tf.eval import metrics


def _hands(count=4, points=21, seed=0):
  rng = np.random.default_rng(seed)
  return rng.normal(0, 0.03, (count, points, 3)) + np.array([0, 0, 0.6])


def _rotation(axis, angle):
  from scipy.spatial.transform import Rotation
  return Rotation.from_rotvec(np.asarray(axis) / np.linalg.norm(axis) * angle).as_matrix()


def test_identical_predictions_score_perfectly():
  gt = _hands(points=778)
  joints = gt[:, :21]
  result = metrics.hand_metrics(joints, joints, gt, gt, joints[..., :2], joints[..., :2])
  for key in ("mpjpe", "rr_mpjpe", "pa_mpjpe", "mpvpe", "pa_mpvpe", "mpjpe_2d_px"):
    assert result[key] == pytest.approx(0.0, abs=1e-4), key  # the kit adds 1e-8 to norms
  for key in ("auc_mpjpe", "auc_mpvpe", "f5", "f15", "f5_camera"):
    assert result[key] == pytest.approx(1.0), key
  # Alignment leaves nanometres, which miss only the 0 mm threshold of the 100.
  for key in ("auc_pa_mpjpe", "auc_pa_mpvpe"):
    assert result[key] == pytest.approx(1.0, abs=0.006), key


@pytest.mark.parametrize("transform", ["translate", "scale", "rotate", "reflect", "all"])
def test_procrustes_removes_similarity_transforms(transform):
  gt = _hands()
  matrix = {"translate": np.eye(3), "scale": 1.7 * np.eye(3),
            "rotate": _rotation([1, 2, 3], 2.0), "reflect": np.diag([-1.0, 1.0, 1.0]),
            "all": 0.6 * _rotation([0, 1, 1], -1.0)}[transform]
  shift = np.array([0.05, -0.02, 0.3]) if transform in ("translate", "all") else 0.0
  prediction = gt @ matrix.T + shift
  aligned = metrics.procrustes_align(gt, prediction)
  np.testing.assert_allclose(aligned, gt, atol=1e-8)
  result = metrics.hand_metrics(gt, prediction)
  assert result["pa_mpjpe"] == pytest.approx(0.0, abs=1e-4)
  assert result["mpjpe"] > 1.0  # the camera-frame error sees the transform


def test_errors_and_auc_follow_the_kit_definitions():
  gt = np.zeros((2, 21, 3))
  prediction = gt.copy()
  prediction[0, :, 0] = 0.010   # 10 mm on every joint of sample 0
  prediction[1, :, 0] = 0.030   # 30 mm on sample 1
  result = metrics.hand_metrics(gt, prediction)
  assert result["mpjpe"] == pytest.approx(20.0)
  assert result["rr_mpjpe"] == pytest.approx(0.0)  # a pure translation
  # PCK is 0 below 10 mm, 1/2 to 30 mm, 1 above: area = (40 - 20 / 2) / 50 of the range,
  # up to the 0.5 mm grid of the 100 thresholds.
  errors = metrics.point_errors(gt, prediction)
  assert metrics.area_under_curve(errors) == pytest.approx(0.6, abs=0.01)
  curve = metrics.pck_curve(errors)
  assert curve[0] == 0.0 and curve[-1] == 1.0 and np.all(np.diff(curve) >= 0)
  assert metrics.area_under_curve(np.zeros((3, 21))) == pytest.approx(1.0)


def test_f_score_counts_points_closer_than_the_threshold():
  gt = _hands(count=1, points=200, seed=1)
  prediction = gt.copy()
  prediction[0, :100] += np.array([0.01, 0, 0])  # half the points move by 10 mm
  # Moved points are > 5 mm from every GT point only if no other GT point is near; use
  # a far-apart grid to make that certain.
  grid = np.stack(np.meshgrid(*[np.arange(6) * 0.05] * 3), -1).reshape(1, -1, 3)[:, :200]
  moved = grid.copy()
  moved[0, :100] += np.array([0.01, 0, 0])
  assert metrics.f_score(grid, moved, 0.005) == pytest.approx(0.5)
  assert metrics.f_score(grid, moved, 0.015) == pytest.approx(1.0)
  assert metrics.f_score(grid, grid + 1.0, 0.005) == 0.0


def test_bad_shapes_and_nan_are_refused():
  gt = _hands()
  with pytest.raises(ValueError, match=r"\[N, P, D\]"):
    metrics.point_errors(gt, gt[:, :20])
  bad = gt.copy()
  bad[0, 0, 0] = np.nan
  with pytest.raises(ValueError, match="NaN"):
    metrics.procrustes_align(gt, bad)


def test_palm_turn_sees_the_rotation_alignment_hides():
  """A hand turned about an axis in its palm (wrist to index knuckle): PA-MPJPE 0 at
  every turn, the palm turn the angle itself (180: the wrong way round)."""
  gt = _hands()
  for degrees in (0.0, 30.0, 120.0, 180.0):
    turned = []
    for hand in gt:
      axis = hand[5] - hand[0]
      turned.append((hand - hand[0]) @ _rotation(axis, np.radians(degrees)).T + hand[0])
    turned = np.stack(turned)
    np.testing.assert_allclose(metrics.palm_turn_degrees(gt, turned), degrees, atol=1e-4)
    result = metrics.hand_metrics(gt, turned)
    assert result["pa_mpjpe"] == pytest.approx(0.0, abs=1e-4)
    assert result["palm_turn_deg"] == pytest.approx(degrees, abs=1e-4)
    assert result["turned_round"] == (1.0 if degrees > 90 else 0.0)


def test_a_paired_difference_is_only_decisive_beyond_the_samples_noise():
  rng = np.random.default_rng(0)
  template = rng.normal(15.7, 3.0, 128)
  # The same images, each 1 mm better: decisive however large the images' own spread.
  better = metrics.paired_difference(template - 1.0 + rng.normal(0, 0.2, 128), template)
  assert better["high"] < 0 and abs(better["difference"] + 1.0) < 0.05, better
  # A mean 0.03 mm lower with per-image noise of 4 mm: a tie, the interval straddles 0.
  network = template - 0.03 + rng.normal(0, 4.0, 128)
  tie = metrics.paired_difference(network, template)
  assert tie["low"] < 0 < tie["high"], tie
  assert metrics.paired_difference(network, template) == tie  # seeded: reproducible
  with pytest.raises(ValueError, match=r"two \[N\] arrays"):
    metrics.paired_difference(np.zeros(3), np.zeros(4))
