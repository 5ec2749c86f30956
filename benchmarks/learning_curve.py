"""Is longer training worth it?  Held-out accuracy and prediction spread against minutes.

  python benchmarks/learning_curve.py --data_dir DATA --out curve [--epochs 48] \
      [--eval_every 4] [--image_size 64] [--batch_size 16]

Trains the '3d' stage self-supervised (the training split's detections with their
confidences, every '3d' term including the rendered ones; the paper's learning-rate
steps scaled to --epochs) on DATA (FreiHAND layout, e.g. the demo's `ssl_data`), and
every --eval_every epochs evaluates on the held-out split with the FreiHAND protocol.
Camera-frame MPJPE is also given for the network's hands moved rigidly onto the test
detections by the template's PnP fit (what the network adds when it gets the same help).
Writes --out/curve.json and --out/curve.png (PA-MPJPE, camera-frame MPJPE and the
prediction spread against training minutes, the template hand as horizontal lines).
"""

import json
import os
import time

import numpy as np
from absl import flags

from hand_tf import startup

DATA = flags.DEFINE_string("data_dir", None, "Dataset with training and evaluation splits.")
OUT = flags.DEFINE_string("out", "learning_curve", "Output folder.")
EPOCHS = flags.DEFINE_integer("epochs", 48, "Epochs of the '3d' stage.")
EVAL_EVERY = flags.DEFINE_integer("eval_every", 4, "Evaluate every N epochs.")
SIZE = flags.DEFINE_integer("image_size", 64, "Network input size (= the images').")
BATCH = flags.DEFINE_integer("batch_size", 16, "Batch size.")
SEED = flags.DEFINE_integer("seed", 0, "Training seed.")
DECAY_EVERY = flags.DEFINE_integer("decay_every", None, "Epochs between learning-rate "
                                   "halvings (default: the paper's, scaled to --epochs).")
FROM_IMAGE = flags.DEFINE_bool("translation_from_image", False,
                               "Translation head in crop terms placed through K "
                               "(ModelConfig.translation_from_image).")


def _plot(points, template, path):
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  minutes = [p["minutes"] for p in points]
  figure, axes = plt.subplots(1, 3, figsize=(13, 3.8), dpi=100)
  for axis, key, title in zip(axes, ("pa_mpjpe", "mpjpe", "spread_mm"),
                              ("PA-MPJPE (mm)", "camera-frame MPJPE (mm)",
                               "prediction spread (mm)")):
    axis.plot(minutes, [p["metrics"][key] for p in points], "o-", label="self-supervised")
    if key == "mpjpe":
      axis.plot(minutes, [p["metrics"]["mpjpe_placed_on_detections"] for p in points], "s-",
                label="same hands, placed by PnP on the detections")
    if key == "spread_mm":
      axis.axhline(points[-1]["metrics"]["ground_truth_spread_mm"], color="gray",
                   linestyle="--", label="ground truth")
    else:
      axis.axhline(template[key], color="red", linestyle="--", label="template hand (PnP)")
    axis.set_xlabel("training minutes (2-core CPU)")
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
  figure.tight_layout()
  partial = path + ".partial.png"
  figure.savefig(partial)
  plt.close(figure)
  os.replace(partial, path)


def _bone(joints, bone):
  """[N] length of the joints' `bone` (a pair of keypoint indices), meters."""
  return np.linalg.norm(joints[:, bone[0]] - joints[:, bone[1]], axis=-1)


def main(argv):
  del argv
  startup.quiet_tensorflow()
  import keras

  from hand_tf.data import pipeline
  from hand_tf.data.freihand import read_freihand
  from hand_tf.demo_job import template_baseline
  from hand_tf.eval import report
  from hand_tf.eval.template import place_on_keypoints, scale_bone_length
  from hand_tf.io import write_json
  from hand_tf.model.s2hand import ModelConfig
  from hand_tf.predictors import KerasPredictor
  from hand_tf.training import loop
  from hand_tf.training.objective import ObjectiveConfig
  from hand_tf.training.trainer import Trainer, TrainerConfig
  from mano_tf.constants import SCALE_BONE
  keras.utils.set_random_seed(SEED.value)
  size, data = SIZE.value, DATA.value
  train = read_freihand(data, image_size=size, source_size=size, load_vertices=False,
                        detections=os.path.join(data, "training_detections.json"))
  test = read_freihand(data, "evaluation", image_size=size, source_size=size,
                       detections=os.path.join(data, "evaluation_detections.json"))
  plan = loop.plan_stages("3d", OUT.value, EPOCHS.value, DECAY_EVERY.value)[0]
  trainer = Trainer(TrainerConfig(
      out_dir=os.path.join(OUT.value, "run"),
      model=ModelConfig(image_size=size, hourglass_features=32, hourglass_stacks=1,
                        translation_from_image=FROM_IMAGE.value),
      objective=ObjectiveConfig(stage="3d", mode="ssl",
                                scale_target_m=scale_bone_length(None)),
      learning_rate=1e-3, steps_per_epoch=len(train) // BATCH.value,
      decay_every_epochs=plan.decay_every, decay_factor=plan.decay_factor))
  template, _ = template_baseline(data, size)
  predictor = KerasPredictor(model=trainer.inference_model, image_size=size)
  points, seconds = [], 0.0
  for epoch in range(1, EPOCHS.value + 1):
    start = time.time()
    for batch in pipeline.make_dataset(train, BATCH.value, shuffle=True,
                                       seed=SEED.value * 1000 + epoch, drop_remainder=True):
      trainer.train_step(batch)
    seconds += time.time() - start
    if epoch % EVAL_EVERY.value and epoch != EPOCHS.value:
      continue
    predictions = report.predict_records(predictor, test, progress=False)
    metrics = report.evaluate_records(predictions, test)["metrics"]
    # The same network's hands with the template's help: placed by PnP on the detections.
    placed = report.evaluate_records(place_on_keypoints(predictions, test), test)["metrics"]
    metrics["mpjpe_placed_on_detections"] = placed["mpjpe"]
    # Where camera-frame error comes from: the hand's size (scale bone, the only thing
    # the scale prior fixes) and its depth, each as the median ratio to the truth.
    metrics["bone_ratio_median"] = float(np.median(
        _bone(predictions["joints3d"], SCALE_BONE) / _bone(test.joints3d, SCALE_BONE)))
    metrics["depth_ratio_median"] = float(np.median(predictions["joints3d"][:, 0, 2]
                                                    / test.joints3d[:, 0, 2]))
    points.append({"epoch": epoch, "steps": int(trainer.step.numpy()),
                   "minutes": seconds / 60, "metrics": metrics})
    print(f"epoch {epoch:3d} ({seconds / 60:5.1f} min): PA-MPJPE {metrics['pa_mpjpe']:.1f} "
          f"(template {template['pa_mpjpe']:.1f}), MPJPE {metrics['mpjpe']:.1f} "
          f"(template {template['mpjpe']:.1f}; placed on the detections "
          f"{metrics['mpjpe_placed_on_detections']:.1f}; size "
          f"x{metrics['bone_ratio_median']:.2f}, depth x{metrics['depth_ratio_median']:.2f} "
          f"of the truth), spread {metrics['spread_mm']:.1f} mm "
          f"(ground truth {metrics['ground_truth_spread_mm']:.1f})", flush=True)
    write_json(os.path.join(OUT.value, "curve.json"), {"points": points, "template": template})
    _plot(points, template, os.path.join(OUT.value, "curve.png"))
  print(json.dumps({"final": points[-1]["metrics"]}, default=float)[:300])


if __name__ == "__main__":
  flags.mark_flags_as_required(["data_dir"])
  startup.run(main)
