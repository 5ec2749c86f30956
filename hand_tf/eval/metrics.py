"""Hand reconstruction metrics with the definitions of the official FreiHAND kit (NumPy).

See ../shared/reference/freihand_eval_protocol.md.  Points are meters in the camera
frame; errors are reported in millimetres here (the kit prints centimetres).  Shapes:
`[N, P, 3]` for N samples of P points (21 keypoints or 778 vertices).
"""

from typing import Dict, Optional

import numpy as np
from scipy.spatial import cKDTree

# The kit's PCK thresholds: 100 values from 0 to 50 mm inclusive.
PCK_THRESHOLDS_M = np.linspace(0.0, 0.05, 100)
FSCORE_THRESHOLDS_M = (0.005, 0.015)
PIXEL_THRESHOLDS = np.linspace(0.0, 30.0, 61)


def _check_pair(ground_truth, prediction, name):
  ground_truth = np.asarray(ground_truth, np.float64)
  prediction = np.asarray(prediction, np.float64)
  if ground_truth.shape != prediction.shape or ground_truth.ndim != 3:
    raise ValueError(f"{name}: ground truth {ground_truth.shape} and prediction "
                     f"{prediction.shape} must both be [N, P, D]")
  if not (np.all(np.isfinite(ground_truth)) and np.all(np.isfinite(prediction))):
    raise ValueError(f"{name}: NaN or infinite values")
  return ground_truth, prediction


def procrustes_align(ground_truth: np.ndarray, prediction: np.ndarray) -> np.ndarray:
  """Aligns each prediction to its ground truth by similarity transform (FreiHAND kit).

  Rotation, isotropic scale and translation; reflections are not excluded (as the kit,
  which uses scipy's orthogonal Procrustes).

  Args:
    ground_truth: `[N, P, 3]`.
    prediction: `[N, P, 3]`.

  Returns:
    `[N, P, 3]` aligned prediction, in the units of the ground truth.
  """
  ground_truth, prediction = _check_pair(ground_truth, prediction, "procrustes_align")
  gt_mean = ground_truth.mean(axis=1, keepdims=True)
  pred_mean = prediction.mean(axis=1, keepdims=True)
  gt_centred, pred_centred = ground_truth - gt_mean, prediction - pred_mean
  gt_norm = np.linalg.norm(gt_centred, axis=(1, 2), keepdims=True) + 1e-8
  pred_norm = np.linalg.norm(pred_centred, axis=(1, 2), keepdims=True) + 1e-8
  a, b = gt_centred / gt_norm, pred_centred / pred_norm
  # Orthogonal Procrustes: R = U V^T from the SVD of A^T B minimises |A R - B|; the
  # prediction maps onto the ground truth by R^T, scaled by the sum of singular values.
  u, singular, vt = np.linalg.svd(np.einsum("npi,npj->nij", a, b))
  rotation = u @ vt
  scale = singular.sum(axis=1)[:, None, None]
  return np.einsum("npj,nij->npi", b, rotation) * scale * gt_norm + gt_mean


def point_errors(ground_truth: np.ndarray, prediction: np.ndarray) -> np.ndarray:
  """`[N, P]` Euclidean distances (units of the input)."""
  ground_truth, prediction = _check_pair(ground_truth, prediction, "point_errors")
  return np.linalg.norm(ground_truth - prediction, axis=-1)


def paired_difference(errors_a: np.ndarray, errors_b: np.ndarray, samples: int = 10000,
                      level: float = 0.95, seed: int = 0) -> Dict[str, float]:
  """How much lower A's per-sample errors are than B's on the same samples, with a
  paired bootstrap interval: whether a difference of means is more than the samples'
  noise (128 held-out images put ~0.7 mm either side of a 15 mm PA-MPJPE).

  Args:
    errors_a, errors_b: `[N]` per-sample errors of two methods on the same N samples.
    samples: bootstrap resamples.
    level: the interval's coverage.
    seed: the resampling's seed (the interval is reproducible).

  Returns:
    {"difference": mean(a - b), "low", "high": the interval's ends}; A is better than B
    beyond the noise when "high" < 0.
  """
  a, b = np.asarray(errors_a, np.float64), np.asarray(errors_b, np.float64)
  if a.ndim != 1 or a.shape != b.shape or not len(a):
    raise ValueError(f"paired_difference needs two [N] arrays, got {a.shape} and {b.shape}")
  d = a - b
  rng = np.random.default_rng(seed)
  means = d[rng.integers(0, len(d), (samples, len(d)))].mean(axis=1)
  tail = 100 * (1 - level) / 2
  return {"difference": float(d.mean()), "low": float(np.percentile(means, tail)),
          "high": float(np.percentile(means, 100 - tail))}


def mean_error(errors: np.ndarray) -> float:
  """The kit's mean: per point id over samples, then over point ids."""
  return float(np.mean(np.mean(errors, axis=0)))


def pck_curve(errors: np.ndarray, thresholds: np.ndarray = PCK_THRESHOLDS_M) -> np.ndarray:
  """`[T]` mean over point ids of the fraction of samples with error <= threshold."""
  per_point = (errors[:, :, None] <= thresholds[None, None, :]).mean(axis=0)  # [P, T]
  return per_point.mean(axis=0)


def area_under_curve(errors: np.ndarray, thresholds: np.ndarray = PCK_THRESHOLDS_M) -> float:
  """Normalised trapezoid area of the PCK curve per point id, averaged (in [0, 1])."""
  per_point = (errors[:, :, None] <= thresholds[None, None, :]).mean(axis=0)
  areas = np.trapezoid(per_point, thresholds, axis=1) / np.trapezoid(
      np.ones_like(thresholds), thresholds)
  return float(areas.mean())


def f_score(ground_truth: np.ndarray, prediction: np.ndarray, threshold: float) -> float:
  """Mean over samples of the F-score between point sets at `threshold` (strict <)."""
  ground_truth, prediction = _check_pair(ground_truth, prediction, "f_score")
  scores = []
  for gt, pred in zip(ground_truth, prediction):
    d_gt = cKDTree(pred).query(gt)[0]     # each GT point to the closest prediction
    d_pred = cKDTree(gt).query(pred)[0]   # each prediction to the closest GT point
    precision, recall = np.mean(d_pred < threshold), np.mean(d_gt < threshold)
    total = precision + recall
    scores.append(0.0 if total == 0 else 2 * precision * recall / total)
  return float(np.mean(scores))


# The palm's plane: wrist, index and little-finger knuckles (FreiHAND order).
_PALM = (0, 5, 17)


def palm_turn_degrees(gt_joints: np.ndarray, pred_joints: np.ndarray) -> np.ndarray:
  """[N] angle between the predicted and the true palm normal, degrees: how far a hand is
  turned from the truth (180: the wrong way round, back for palm).  Procrustes alignment
  hides exactly this, so PA-MPJPE alone cannot show it.

  Args:
    gt_joints, pred_joints: `[N, 21, 3]` camera frame (any units).
  """
  def normal(joints):
    wrist, index, little = (np.asarray(joints)[:, i] for i in _PALM)
    n = np.cross(index - wrist, little - wrist)
    return n / np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-12)

  cosine = np.sum(normal(gt_joints) * normal(pred_joints), axis=-1)
  return np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))


def hand_metrics(gt_joints: np.ndarray, pred_joints: np.ndarray,
                 gt_vertices: Optional[np.ndarray] = None,
                 pred_vertices: Optional[np.ndarray] = None,
                 gt_keypoints2d: Optional[np.ndarray] = None,
                 pred_keypoints2d: Optional[np.ndarray] = None) -> Dict[str, float]:
  """Every metric of the report, in mm (3D), pixels (2D) and [0, 1] (AUC, F).

  Args:
    gt_joints, pred_joints: `[N, 21, 3]` meters, camera frame.
    gt_vertices, pred_vertices: optional `[N, 778, 3]`.
    gt_keypoints2d, pred_keypoints2d: optional `[N, 21, 2]` pixels.

  Returns:
    mpjpe, rr_mpjpe (root-relative: wrist subtracted), pa_mpjpe and their AUCs; with
    meshes mpvpe, rr_mpvpe (wrist subtracted), pa_mpvpe, auc_pa_mpvpe, f5, f15 (aligned)
    and f5_camera, f15_camera; with 2D mpjpe_2d_px; palm_turn_deg (median of
    `palm_turn_degrees`) and turned_round (the fraction turned more than 90 degrees).
  """
  out = {}
  root = slice(0, 1)  # the wrist, keypoint 0
  errors = point_errors(gt_joints, pred_joints)
  rr_errors = point_errors(gt_joints - gt_joints[:, root], pred_joints - pred_joints[:, root])
  pa_errors = point_errors(gt_joints, procrustes_align(gt_joints, pred_joints))
  for name, e in (("mpjpe", errors), ("rr_mpjpe", rr_errors), ("pa_mpjpe", pa_errors)):
    out[name] = 1000 * mean_error(e)
    out[f"auc_{name}"] = area_under_curve(e)
  turn = palm_turn_degrees(gt_joints, pred_joints)
  out["palm_turn_deg"] = float(np.median(turn))
  out["turned_round"] = float(np.mean(turn > 90.0))
  if gt_vertices is not None and pred_vertices is not None:
    aligned = procrustes_align(gt_vertices, pred_vertices)
    v_errors = point_errors(gt_vertices, pred_vertices)
    rr_v = point_errors(gt_vertices - np.asarray(gt_joints)[:, root],
                        pred_vertices - np.asarray(pred_joints)[:, root])
    pa_v = point_errors(gt_vertices, aligned)
    for name, e in (("mpvpe", v_errors), ("rr_mpvpe", rr_v), ("pa_mpvpe", pa_v)):
      out[name] = 1000 * mean_error(e)
      out[f"auc_{name}"] = area_under_curve(e)
    for threshold in FSCORE_THRESHOLDS_M:
      mm = int(round(threshold * 1000))
      out[f"f{mm}"] = f_score(gt_vertices, aligned, threshold)
      out[f"f{mm}_camera"] = f_score(gt_vertices, pred_vertices, threshold)
  if gt_keypoints2d is not None and pred_keypoints2d is not None:
    e2d = point_errors(gt_keypoints2d, pred_keypoints2d)
    out["mpjpe_2d_px"] = mean_error(e2d)
    out["auc_2d_0_30px"] = area_under_curve(e2d, PIXEL_THRESHOLDS)
  return out
