"""Evaluate a model on a FreiHAND-layout split with the FreiHAND protocol, or on your
own photos against a detector's keypoints.

  python -m hand_tf.evaluate --model PATH --data_dir DIR [--split evaluation] [--out DIR]
  python -m hand_tf.evaluate --model PATH --data_kind folder --data_dir PHOTOS \
      --detections DETECTIONS.json

--model: checkpoint (or run folder), SavedModel, .tflite or .onnx.  --data_dir: a FreiHAND
folder (the real dataset with its evaluation annotations, or `hand_tf.synthesize`'s
output): prints the paper's table columns and writes metrics.json, pck.png and pred.json
(for the FreiHAND challenge server) into --out.  With --data_kind folder: the folder
`hand_tf.detect` ran on and the file it wrote; with no 3D ground truth, prints how far
the predicted 2D joints lie from the detections and the prediction spread.
"""

import numpy as np
from absl import app, flags

from hand_tf import startup

MODEL = flags.DEFINE_string("model", None, "Model to evaluate (any exported form).",
                            required=True)
DATA_DIR = flags.DEFINE_string("data_dir", None, "FreiHAND-layout folder, or (--data_kind "
                               "folder) a folder of photos.", required=True)
DATA_KIND = flags.DEFINE_enum("data_kind", "freihand", ["freihand", "folder"],
                              "freihand: 3D metrics against ground truth; folder: photos "
                              "with a keypoints file (--detections), 2D error and spread.")
DETECTIONS = flags.DEFINE_string("detections", None, "--data_kind folder: the keypoints file "
                                 "(what hand_tf.detect writes).")
SPLIT = flags.DEFINE_enum("split", "evaluation", ["training", "evaluation"], "Split.")
SOURCE_SIZE = flags.DEFINE_integer("source_size", None,
                                   "Side of the stored images (default: read from them).")
LIMIT = flags.DEFINE_integer("limit", None, "Evaluate only the first N samples.")
OUT = flags.DEFINE_string("out", "evaluation", "Report folder.")
BATCH_SIZE = flags.DEFINE_integer("batch_size", 16, "Images per predictor call.")
NUM_THREADS = flags.DEFINE_integer("num_threads", 2, "Threads for TFLite / ONNX Runtime.")
REFINE = flags.DEFINE_bool(
    "refine", False, "Also evaluate the network + test-time refinement (hand_tf.refine) onto "
    "the split's detections (--data_kind freihand: its `<split>_detections.json`, or "
    "--detections); written to OUT/refined/.  Needs TensorFlow.")


def _record_held_out(evaluation, predictions, records):
  """Writes `held_out.json` beside the checkpoint (export carries it into the exported
  model, whose users are then told how it did): the figures, and when the split has
  detections, the template hand's on the same images, the network's hands placed on the
  detections (as `predict` returns them), and its shape against the template's per
  image (`template.shape_against_mean_hand`): what `contract.model_caveat` judges by."""
  import os

  from hand_tf.contract import HELD_OUT_FILE
  from hand_tf.data.freihand import annotation_path, read_freihand
  from hand_tf.eval import report, template
  from hand_tf.io import write_json
  from hand_tf.predictors import resolve_checkpoint
  keys = ("pa_mpjpe", "mpjpe", "pa_mpvpe", "f5", "f15", "spread_mm")
  value = {"data_dir": DATA_DIR.value, "split": SPLIT.value, "count": len(records),
           "metrics": {k: evaluation["metrics"][k] for k in keys if k in evaluation["metrics"]},
           "template": None}
  detections = annotation_path(DATA_DIR.value, SPLIT.value, "detections")
  if os.path.isfile(detections) and not LIMIT.value:
    with_detections = read_freihand(DATA_DIR.value, SPLIT.value, detections=detections,
                                    image_size=records.image_size,
                                    source_size=SOURCE_SIZE.value)
    baseline = report.evaluate_records(template.template_predictions(with_detections),
                                       with_detections)["metrics"]
    value["template"] = {k: baseline[k] for k in keys if k in baseline}
    placed = report.evaluate_records(template.place_on_keypoints(predictions, with_detections),
                                     with_detections)["metrics"]
    value["placed"] = {k: placed[k] for k in keys if k in placed}
    value["shape"] = template.shape_against_mean_hand(records.joints3d,
                                                      predictions["joints3d"])
  folder = os.path.dirname(resolve_checkpoint(MODEL.value))
  write_json(os.path.join(folder, HELD_OUT_FILE), value)


def _evaluate_folder(predictor):
  from hand_tf.data.folder import read_folder
  from hand_tf.eval import report
  if not DETECTIONS.value:
    raise app.UsageError("--data_kind folder needs --detections (e.g. what "
                         "`python -m hand_tf.detect PHOTOS --out FILE` writes)")
  records = read_folder(DATA_DIR.value, DETECTIONS.value, predictor.input_size)
  predictions = report.predict_records(predictor, records, BATCH_SIZE.value)
  evaluation = report.evaluate_against_keypoints(predictions, records)
  report.write_report(OUT.value, predictor.kind, evaluation, predictions,
                      {"model": MODEL.value, "loaded": predictor.describe(),
                       "data_dir": DATA_DIR.value, "detections": DETECTIONS.value})
  figures = evaluation["metrics"]
  print(f"{predictor.kind}: 2D joints {figures['keypoints_2d_px']:.1f} px from the detections "
        f"(at 224 px), spread {figures['spread_mm']:.1f} mm; {len(records)} images; report in "
        f"{OUT.value}/ (metrics.json, pred.json)")
  return 0


def _evaluate_refined(predictor, predictions, records, about):
  """The network's predictions refined onto the split's detections, evaluated and
  written to OUT/refined/; their metrics."""
  import os

  from hand_tf import refine
  from hand_tf.data.freihand import annotation_path, read_freihand
  from hand_tf.eval import report
  detections = DETECTIONS.value or annotation_path(DATA_DIR.value, SPLIT.value, "detections")
  if not os.path.isfile(detections):
    raise app.UsageError(f"--refine fits to a detector's keypoints: {detections} not found; "
                         "give --detections (what `python -m hand_tf.detect` writes)")
  detected = read_freihand(DATA_DIR.value, SPLIT.value, detections=detections,
                           image_size=predictor.input_size, source_size=SOURCE_SIZE.value)
  detected = detected.subset(np.arange(len(records)))
  refined, milliseconds = refine.refine_predictions(refine.for_model(MODEL.value),
                                                    predictions, detected)
  evaluation = report.evaluate_records(refined, records)
  evaluation["metrics"]["refine_ms_per_hand"] = milliseconds
  report.write_report(os.path.join(OUT.value, "refined"), f"{predictor.kind} + refinement",
                      evaluation, refined, {**about, "detections": detections})
  return evaluation["metrics"]


def main(argv):
  del argv
  if not MODEL.value.endswith((".tflite", ".onnx")):  # those run without TensorFlow
    startup.quiet_tensorflow()  # before it loads: its C++ start-up lines are not for users
  from hand_tf.data.freihand import read_freihand
  from hand_tf.eval import report
  from hand_tf.predictors import load_predictor
  predictor = load_predictor(MODEL.value, NUM_THREADS.value)
  print(f"model: {predictor.describe()}", flush=True)
  if DATA_KIND.value == "folder":
    if REFINE.value:  # against the detections it would be fitted to: no measure at all
      raise app.UsageError("--refine needs 3D ground truth to be measured against; on "
                           "photos use `predict --refine`")
    return _evaluate_folder(predictor)
  records = read_freihand(DATA_DIR.value, SPLIT.value, image_size=predictor.input_size,
                          source_size=SOURCE_SIZE.value)
  if LIMIT.value:
    records = records.subset(np.arange(min(LIMIT.value, len(records))))
  predictions = report.predict_records(predictor, records, BATCH_SIZE.value)
  evaluation = report.evaluate_records(predictions, records)
  about = {"model": MODEL.value, "loaded": predictor.describe(), "data_dir": DATA_DIR.value,
           "split": SPLIT.value}
  report.write_report(OUT.value, predictor.kind, evaluation, predictions, about)
  if predictor.kind == "checkpoint":
    _record_held_out(evaluation, predictions, records)
  rows = {predictor.kind: evaluation["metrics"]}
  if REFINE.value:
    rows[f"{predictor.kind} + refinement"] = _evaluate_refined(predictor, predictions, records,
                                                              about)
  print(report.format_table(rows))
  print(f"{len(records)} samples; report in {OUT.value}/ (metrics.json, pck.png, pred.json)")


if __name__ == "__main__":
  startup.run(main)
