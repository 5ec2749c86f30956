"""The training's names and numbers, free of TensorFlow.

Stages and their schedule, modes and the loss weights: what `python -m hand_tf.train`
needs to define and explain its flags, so that `--help` answers before TensorFlow loads.
`hand_tf.training.objective` and `hand_tf.losses` build on them.
"""

import dataclasses

# Stage: what it trains (paper Section 4.1).
STAGES = {
    "2d": "the 2D keypoint branch alone, from the detections",
    "3d": "the 3D network (encoder, heads, MANO) with the joint, bone, prior and rendering "
          "terms",
    "finetune": "both branches, every term plus the 2D-3D consistency term",
}
# stage: (epochs, learning-rate drop every N epochs, drop factor), paper Section 4.1.
SCHEDULE = {"2d": (90, 30, 0.5), "3d": (90, 30, 0.5), "finetune": (60, 20, 1.0 / 3.0)}
# Mode: which 2D supervision reaches training.
MODES = {
    "ssl": "self-supervised: detector keypoints with their confidences (no labels)",
    "wsl": "weakly supervised: ground-truth 2D keypoints, equal confidences",
    "fsl": "fully supervised: WSL plus the 3D joint losses",
}


@dataclasses.dataclass(frozen=True)
class LossWeights:
  """Per-term weights: the released code's (its option names in the comments), plus the
  apparent-size term this project adds."""
  joint_location: float = 1e-3   # open_2dj
  bone_direction: float = 0.1    # open_bone_direc
  keypoint_branch: float = 1e-3  # hm_integral
  consistency: float = 2e-4      # kp_cons
  scale: float = 0.1             # mscale
  shape: float = 1e-2            # mshape
  skeleton: float = 0.1          # tsa_poses
  laplacian: float = 0.1         # triangle
  photometric: float = 5e-3      # texture
  mean_color: float = 1e-3       # mrgb
  texture_regularization: float = 5e-3  # mtex
  ssim: float = 1e-3             # ssim_tex
  # Not in the paper (--w_apparent_size 0 trains the paper's objective): it stops the 2D
  # shrink that became depth error (demo configuration: MPJPE 984 -> 82 mm; see
  # hand_tf.losses.apparent_size_loss and README "Training").
  apparent_size: float = 1e-3
  # Not in the paper either: the hand's rotation towards the mean hand's PnP fit to the
  # detections, so that it turns the right way round (hand_tf.training.facing).
  facing: float = 1e-2
  joint_3d: float = 100.0        # FSL only
  joint_3d_root_relative: float = 100.0  # FSL only


def describe(choices: dict) -> str:
  """'a: what a is; b: what b is' for a flag's help."""
  return "; ".join(f"{name}: {meaning}" for name, meaning in choices.items())
