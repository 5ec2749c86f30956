"""Writes the synthetic hand model in MANO's file format.

  python -m mano_tf.synthetic --out models/SYNTH_MANO_RIGHT.pkl [--side left] [--format npz]
"""

from absl import flags

from hand_tf import startup
from mano_tf.model_file import save_mano_model
from mano_tf.synthetic import build_synthetic_mano

FLAGS = flags.DEFINE_string("out", None, "Destination file (.pkl or .npz).", required=True)
SIDE = flags.DEFINE_enum("side", "right", ["right", "left"], "Which hand.")
FORMAT = flags.DEFINE_enum("format", None, ["pkl", "npz"],
                           "File format; by default from the extension (pkl otherwise).")


def main(argv):
  del argv
  model = build_synthetic_mano(SIDE.value)
  save_mano_model(model, FLAGS.value, FORMAT.value)
  print(f"wrote {SIDE.value} synthetic hand ({model.v_template.shape[0]} vertices, "
        f"{model.faces.shape[0]} faces) to {FLAGS.value}")


if __name__ == "__main__":
  startup.run(main)
