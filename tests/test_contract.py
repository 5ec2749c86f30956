"""What a shipped model says about itself: held-out figures and the user-facing caveat."""

import numpy as np

from hand_tf import contract

TEMPLATE = {"pa_mpjpe": 16.5, "mpjpe": 76.1}


def test_a_model_losing_to_the_template_says_so_with_the_figures():
  losing = {"count": 64, "metrics": {"pa_mpjpe": 15.3, "mpjpe": 81.5}, "template": TEMPLATE}
  note = contract.model_caveat(224, losing)
  assert note == ("note: on its held-out set (64 images) it does not beat the template hand "
                  "on MPJPE (PA-MPJPE 15.3 vs 16.5 mm, MPJPE 81.5 vs 76.1 mm).")
  winning = {"count": 64, "metrics": {"pa_mpjpe": 9.0, "mpjpe": 30.0}, "template": TEMPLATE}
  assert contract.model_caveat(224, winning) is None
  assert "small 64 px network" in contract.model_caveat(64, winning)
  assert "no held-out figures" in contract.model_caveat(224, None)


def test_the_caveat_judges_shape_beyond_noise_and_the_camera_with_the_same_help():
  """With the placed and paired figures recorded, a model is judged as the recipe's
  install check judges it: shape by the interval, camera frame placed against placed."""
  tie = {"difference": -0.03, "low": -0.72, "high": 0.66}
  better = {"difference": -1.5, "low": -2.1, "high": -0.9}
  held_out = {"count": 128, "metrics": {"pa_mpjpe": 15.66, "mpjpe": 171.6},
              "template": {"pa_mpjpe": 15.69, "mpjpe": 62.5}, "placed": {"mpjpe": 60.0},
              "shape": tie}
  note = contract.model_caveat(224, held_out)
  assert note == ("note: on its held-out set (128 images) it does not beat the template "
                  "hand on PA-MPJPE (-0.03 mm, 95% interval [-0.72, +0.66]).")
  # Its own camera (171.6 mm) is not what a user gets: the placed hands are.
  assert contract.model_caveat(224, dict(held_out, shape=better)) is None
  worse_placed = dict(held_out, shape=better, placed={"mpjpe": 70.0})
  assert "MPJPE placed on the set's detections (70.0 vs 62.5 mm)" in contract.model_caveat(
      224, worse_placed)


def test_held_out_figures_travel_from_the_run_folder_into_the_export(tmp_path):
  run, export = tmp_path / "run", tmp_path / "export"
  run.mkdir()
  export.mkdir()
  figures = {"count": 8, "metrics": {"pa_mpjpe": 20.0, "mpjpe": 90.0}, "template": TEMPLATE}
  contract.io.write_json(str(run / contract.HELD_OUT_FILE), figures)
  (run / "ckpt-7.index").write_text("")
  carried = contract.read_held_out(str(run / "ckpt-7"))  # a checkpoint prefix
  assert carried == figures
  contract.write_mesh_file(str(export), np.zeros((1538, 3), np.int32), 64, carried)
  assert contract.read_held_out(str(export / "s2hand_fp16.tflite")) == figures
  contract.write_mesh_file(str(export), np.zeros((1538, 3), np.int32), 64, None)
  assert contract.read_held_out(str(export / "s2hand_fp16.tflite")) is None
