"""Runs a predictor over a dataset and writes the evaluation report.

The report folder holds `metrics.json` (every metric of `metrics.hand_metrics`, the
PCK curves and what was evaluated), `pck.png` (3D PCK of joints and vertices, aligned
and in the camera frame) and `pred.json` in the format of the FreiHAND challenge server
(`[xyz_list, verts_list]`, meters, dataset order).
"""

import os
from typing import Dict

import numpy as np
from tqdm import tqdm

from hand_tf.camera import project
from hand_tf.data.crops import crop_image
from hand_tf.data.records import HandRecords
from hand_tf.eval import metrics
from hand_tf.io import read_image, write_json

# The paper's table columns: (metric key, heading, format).
PAPER_COLUMNS = (("pa_mpjpe", "PA-MPJPE mm", "{:.1f}"), ("auc_pa_mpjpe", "AUC_J", "{:.3f}"),
                 ("pa_mpvpe", "PA-MPVPE mm", "{:.1f}"), ("auc_pa_mpvpe", "AUC_V", "{:.3f}"),
                 ("f5", "F@5", "{:.3f}"), ("f15", "F@15", "{:.3f}"),
                 ("mpjpe", "MPJPE mm", "{:.1f}"), ("mpvpe", "MPVPE mm", "{:.1f}"),
                 ("spread_mm", "spread mm", "{:.1f}"),
                 ("palm_turn_deg", "palm turn", "{:.0f} deg"))


def prediction_spread(joints3d: np.ndarray) -> float:
  """How much predicted hands differ between images, in mm.

  The standard deviation across images of the root-relative joints [N, 21, 3] (meters),
  averaged over joints and axes.  A network that gives every image the same hand scores
  0, whatever its mean error; the ground truth's own spread is the scale to compare with.
  """
  relative = joints3d - joints3d[:, :1]
  return float(1000.0 * relative.std(axis=0).mean())


def predict_records(predictor, records: HandRecords, batch_size: int = 16,
                    progress: bool = True) -> Dict[str, np.ndarray]:
  """Runs `predictor` on every record's crop; returns the stacked numpy outputs."""
  size = predictor.input_size
  if size != records.image_size:
    raise ValueError(f"the model takes {size} px inputs but the records are cropped to "
                     f"{records.image_size} px; read the dataset with image_size={size}")
  rows = []
  bar = tqdm(total=len(records), desc="evaluate", unit="img", disable=not progress)
  for first in range(0, len(records), batch_size):
    index = range(first, min(first + batch_size, len(records)))
    images = np.stack([crop_image(read_image(records.image_paths[i]), records.crop_boxes[i],
                                  size) for i in index])
    rows.append(predictor.predict(images, records.intrinsics[list(index)]))
    bar.update(len(index))
  bar.close()
  return {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}


def evaluate_records(predictions: Dict[str, np.ndarray], records: HandRecords) -> dict:
  """Metrics of `predictions` against the records' ground truth, and the PCK curves."""
  if records.joints3d is None:
    raise ValueError("the dataset has no 3D ground truth (joints3d) to evaluate against")
  gt_2d = project(records.joints3d, records.intrinsics)
  result = metrics.hand_metrics(records.joints3d, predictions["joints3d"], records.vertices,
                                predictions["vertices"] if records.vertices is not None
                                else None, gt_2d, predictions["joints2d"])
  result["spread_mm"] = prediction_spread(predictions["joints3d"])
  result["ground_truth_spread_mm"] = prediction_spread(records.joints3d)
  curves = {"thresholds_mm": (metrics.PCK_THRESHOLDS_M * 1000).tolist()}
  joints_pa = metrics.procrustes_align(records.joints3d, predictions["joints3d"])
  curves["pa_joints"] = metrics.pck_curve(
      metrics.point_errors(records.joints3d, joints_pa)).tolist()
  curves["camera_joints"] = metrics.pck_curve(
      metrics.point_errors(records.joints3d, predictions["joints3d"])).tolist()
  if records.vertices is not None:
    verts_pa = metrics.procrustes_align(records.vertices, predictions["vertices"])
    curves["pa_vertices"] = metrics.pck_curve(
        metrics.point_errors(records.vertices, verts_pa)).tolist()
  return {"metrics": result, "pck": curves, "count": len(records)}


def evaluate_against_keypoints(predictions: Dict[str, np.ndarray], records: HandRecords,
                               min_confidence: float = 0.5) -> dict:
  """For images without 3D ground truth (your own photos): how far the predicted 2D
  joints lie from the records' keypoints (a detector's), and the prediction spread.

  Returns:
    {"metrics": {"keypoints_2d_px": mean distance over keypoints of confidence >=
    `min_confidence`, in pixels of the 224 px reference crop; "spread_mm"}, "count"}.
  """
  from hand_tf import contract
  distance = np.linalg.norm(predictions["joints2d"] - records.keypoints, axis=-1)
  trusted = records.confidence >= min_confidence
  scale = contract.REFERENCE_SIZE / float(records.image_size)
  mean = float(distance[trusted].mean() * scale) if trusted.any() else float("nan")
  return {"metrics": {"keypoints_2d_px": mean,
                      "spread_mm": prediction_spread(predictions["joints3d"])},
          "count": len(records)}


def format_table(rows: Dict[str, Dict[str, float]]) -> str:
  """The paper's columns, one row per named result."""
  width = max([len(name) for name in rows] + [10])
  lines = [" " * width + "  " + "  ".join(f"{h:>11s}" for _, h, _ in PAPER_COLUMNS)]
  for name, values in rows.items():
    cells = [fmt.format(values[key]) if key in values else "-" for key, _, fmt in PAPER_COLUMNS]
    lines.append(f"{name:{width}s}  " + "  ".join(f"{c:>11s}" for c in cells))
  return "\n".join(lines)


def plot_pck(curves: Dict[str, dict], path: str) -> None:
  """One PCK plot: a line per (result name, curve) pair; written atomically."""
  import matplotlib
  matplotlib.use("Agg")  # files only; no display on servers
  import matplotlib.pyplot as plt
  figure, axis = plt.subplots(figsize=(6, 4.5), dpi=100)
  for name, pck in curves.items():
    for key, label in (("pa_joints", "joints, aligned"), ("pa_vertices", "vertices, aligned"),
                       ("camera_joints", "joints, camera frame")):
      if key in pck:
        axis.plot(pck["thresholds_mm"], pck[key], label=f"{name}: {label}")
  axis.set_xlabel("error threshold (mm)")
  axis.set_ylabel("3D PCK")
  axis.set_xlim(0, 50)
  axis.set_ylim(0, 1)
  axis.grid(alpha=0.3)
  axis.legend(fontsize=7, loc="lower right")
  figure.tight_layout()
  partial = path + ".partial.png"
  figure.savefig(partial)
  plt.close(figure)
  os.replace(partial, path)


def write_report(out_dir: str, name: str, evaluation: dict,
                 predictions: Dict[str, np.ndarray], extra: dict) -> None:
  """metrics.json, pck.png (with 3D ground truth) and pred.json into `out_dir`."""
  os.makedirs(out_dir, exist_ok=True)
  write_json(os.path.join(out_dir, "metrics.json"), {**extra, **evaluation})
  if "pck" in evaluation:  # not for images without 3D ground truth
    plot_pck({name: evaluation["pck"]}, os.path.join(out_dir, "pck.png"))
  write_json(os.path.join(out_dir, "pred.json"),
             [np.round(predictions["joints3d"], 6).tolist(),
              np.round(predictions["vertices"], 6).tolist()])
