"""Custom training loop over a `tf.distribute` strategy, with exact resume and a NaN guard.

One `Trainer` trains one stage.  Its checkpoint holds the training model (which shares
its weights with the inference model), the optimizer, the global step, the count of
skipped steps and the stage name, written by `tf.train.CheckpointManager` (which writes
a new checkpoint before pointing to it, so a crash never corrupts the latest one).
"""

import dataclasses
import os
from typing import Dict, Optional

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from hand_tf import losses
from hand_tf.eval.template import mean_hand_of
from hand_tf.model.s2hand import ModelConfig, RunFolderMismatch, build_models, write_run_files
from hand_tf.training.objective import Objective, ObjectiveConfig


@keras.saving.register_keras_serializable(package="hand_tf")
class StepDecay(keras.optimizers.schedules.LearningRateSchedule):
  """lr = initial * factor ** floor(epoch / every), with epoch = step // steps_per_epoch.

  The paper: halve every 30 epochs for the separate stages; divide by 3 every 20 epochs
  when finetuning.
  """

  def __init__(self, initial: float, steps_per_epoch: int, every: int, factor: float):
    self.initial, self.steps_per_epoch = initial, max(1, int(steps_per_epoch))
    self.every, self.factor = max(1, int(every)), factor

  def __call__(self, step):
    epoch = tf.cast(step, tf.int64) // self.steps_per_epoch
    exponent = tf.cast(epoch // self.every, tf.float32)
    return self.initial * tf.pow(self.factor, exponent)

  def get_config(self):
    return {"initial": self.initial, "steps_per_epoch": self.steps_per_epoch,
            "every": self.every, "factor": self.factor}


@dataclasses.dataclass
class TrainerConfig:
  out_dir: str
  model: ModelConfig = ModelConfig()
  objective: ObjectiveConfig = ObjectiveConfig()
  learning_rate: float = 1e-3
  steps_per_epoch: int = 100
  decay_every_epochs: int = 30
  decay_factor: float = 0.5
  keep_checkpoints: int = 3
  # XLA for each replica's forward and backward pass (the renderer then uses its
  # TensorFlow backend: the rasterizer kernel has no XLA version).
  jit_compile: bool = False
  # Where `restore` looks: the chief's run folder on every worker of a multi-worker run
  # (default: out_dir), so that all of them resume from the same step after a restart.
  restore_dir: Optional[str] = None


def check_jit_compile(jit_compile: bool, num_replicas: int) -> None:
  """ValueError if XLA is asked for with several replicas in the process: their
  all-reduces (synchronised batch norm, the batch-weighted loss means) cannot run
  inside a compiled function nested in strategy.run."""
  if jit_compile and num_replicas > 1:
    raise ValueError(f"--jit_compile trains one replica per process, not {num_replicas}: "
                     "leave it out with --strategy mirrored or multi_worker")


class Trainer:
  """Builds models and optimizer under `strategy` and runs distributed train steps."""

  def __init__(self, config: TrainerConfig,
               strategy: Optional[tf.distribute.Strategy] = None):
    self.config = config
    self.strategy = strategy or tf.distribute.get_strategy()
    check_jit_compile(config.jit_compile, self.strategy.num_replicas_in_sync)
    with self.strategy.scope():
      self.inference_model, self.training_model = build_models(config.model)
      schedule = StepDecay(config.learning_rate, config.steps_per_epoch,
                           config.decay_every_epochs, config.decay_factor)
      self.optimizer = keras.optimizers.Adam(schedule)
      # float16 gradients underflow without it; Keras' fit() adds it, a custom loop must.
      self.loss_scaled = keras.mixed_precision.global_policy().compute_dtype == "float16"
      if self.loss_scaled:
        self.optimizer = keras.optimizers.LossScaleOptimizer(self.optimizer)
      self.optimizer.build(self.training_model.trainable_variables)
      self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
      self.skipped = tf.Variable(0, dtype=tf.int64, trainable=False, name="skipped_steps")
    mano = self.training_model.get_layer("place_hand").mano
    faces = mano.faces
    objective = config.objective
    if config.jit_compile and objective.render_backend != "tf":
      objective = dataclasses.replace(objective, render_backend="tf")
    self.objective = Objective(faces, objective, mean_joints=mean_hand_of(mano)[1])
    self.laplacian = losses.uniform_laplacian(faces, 778)
    if config.jit_compile:
      self.laplacian = tf.sparse.to_dense(self.laplacian)
    self.stage = tf.Variable(config.objective.stage, trainable=False, name="stage")
    # The input size the weights were trained at, kept with them: conv weights load at
    # any size, so only this tells a loader which size they are good for.
    self.input_size = tf.Variable(config.model.image_size, dtype=tf.int64, trainable=False,
                                  name="input_size")
    self.checkpoint = tf.train.Checkpoint(model=self.training_model, optimizer=self.optimizer,
                                          step=self.step, skipped=self.skipped,
                                          stage=self.stage, input_size=self.input_size)
    os.makedirs(config.out_dir, exist_ok=True)
    # What export and evaluation need to rebuild the network of these checkpoints.
    write_run_files(config.out_dir, config.model)
    self.manager = tf.train.CheckpointManager(self.checkpoint, config.out_dir,
                                              max_to_keep=config.keep_checkpoints)
    # No AutoGraph: the step branches with an explicit tf.cond, and converting every
    # function it calls (Keras' optimizer included) was a third of its tracing time.
    self._train_step = tf.function(self._distributed_step, autograph=False)
    # XLA compiles the forward and backward pass of one replica; the all-reduce, the
    # NaN guard and the update stay outside it (as Keras' fit does with jit_compile).
    self.loss_and_gradients = (
        tf.function(self._loss_and_gradients, jit_compile=True, autograph=False)
        if config.jit_compile else self._loss_and_gradients)
    # Without a 2D-branch term the branch's forward pass is wasted work (and would move
    # its batch-norm statistics), so such stages run the inference model.
    uses_branch = any(t in self.objective.terms for t in ("keypoint_branch", "consistency"))
    self._model_for_stage = self.training_model if uses_branch else self.inference_model

  def restore(self) -> Optional[str]:
    """Restores the latest checkpoint of `restore_dir` (default `out_dir`), if any;
    returns its path.  Under several workers, refuses to go on unless all of them
    restored the same step."""
    restore_dir = self.config.restore_dir or self.config.out_dir
    path = tf.train.latest_checkpoint(restore_dir)
    if path:
      self.checkpoint.restore(path).assert_existing_objects_matched()
      stage = self.stage.numpy().decode()
      if int(self.input_size.numpy()) != self.config.model.image_size:
        raise RunFolderMismatch(f"{path} was trained at {int(self.input_size.numpy())} px, "
                                f"not {self.config.model.image_size}")
      if stage != self.config.objective.stage:
        raise RunFolderMismatch(f"{path} is a checkpoint of stage {stage!r}, not "
                                f"{self.config.objective.stage!r}")
    self._check_workers_agree_on_the_step(restore_dir)
    return path

  def _check_workers_agree_on_the_step(self, restore_dir: str) -> None:
    # Workers at different steps would run different numbers of collectives and hang.
    if self.strategy.num_replicas_in_sync == 1:
      return
    # All equal iff N * sum(s^2) == sum(s)^2 (tf.distribute reduces by SUM or MEAN
    # only); every worker gets the same sums, so all of them stop, none waits.
    local = self.strategy.run(lambda: tf.cast(tf.stack([self.step, self.step ** 2]),
                                              tf.float64))
    total, squares = self.strategy.reduce(tf.distribute.ReduceOp.SUM, local, axis=None).numpy()
    replicas = self.strategy.num_replicas_in_sync
    if replicas * squares != total ** 2:
      raise RunFolderMismatch(
          f"the workers resumed from different steps (this one {int(self.step.numpy())},"
          f" mean {total / replicas:g}): every worker must see the chief's run folder "
          f"{restore_dir} (shared storage)")

  def init_from(self, path: str) -> None:
    """Loads the network weights (not optimizer or step) of another stage's checkpoint."""
    status = tf.train.Checkpoint(model=self.training_model).read(path)
    status.expect_partial().assert_existing_objects_matched()

  def save(self) -> str:
    return self.manager.save(checkpoint_number=self.step)

  def _loss_and_gradients(self, batch):
    """This replica's loss terms, its share of the total, and the gradients of that share."""
    with tf.GradientTape() as tape:
      outputs = self._model_for_stage([batch["image"], batch["intrinsics"]], training=True)
      values = self.objective(outputs, batch, self.laplacian)
      share = values["total"] / self.strategy.num_replicas_in_sync
      scaled = self.optimizer.scale_loss(share) if self.loss_scaled else share
    return values, share, tape.gradient(scaled, self.training_model.trainable_variables)

  def _replica_step(self, batch):
    variables = self.training_model.trainable_variables
    # Batch-norm statistics change in the forward pass itself; keep a copy so that a
    # skipped step leaves them untouched too.
    state = self.training_model.non_trainable_variables
    backup = [tf.identity(v) for v in state]
    values, share, grads = self.loss_and_gradients(batch)
    bad = tf.cast(tf.logical_not(tf.math.is_finite(share)), tf.int32)
    # With loss scaling, non-finite gradients of a finite loss are an overflow of the
    # scale: the LossScaleOptimizer skips that update and halves the scale itself.
    for g in ([] if self.loss_scaled else grads):
      if g is not None:
        bad += tf.cast(tf.logical_not(tf.reduce_all(tf.math.is_finite(g))), tf.int32)
    # Every replica must take the same decision, or their weights would diverge.
    bad = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, bad)
    used = [i for i, g in enumerate(grads) if g is not None]
    applied = tf.__internal__.distribute.interim.maybe_merge_call(
        self._apply_unless_bad, self.strategy, [grads[i] for i in used],
        [variables[i] for i in used], bad, backup)
    return values, applied

  def _apply_unless_bad(self, distribution, grads, variables, bad, backup):
    """Applies the gradients, or restores the batch-norm statistics if `bad` > 0.

    Strategies that all-reduce through `merge_call` (MirroredStrategy) cannot branch in
    replica context around the optimizer's all-reduce, so then this runs in cross-replica
    context and branches there, as Keras' LossScaleOptimizer does.
    """
    cross = tf.distribute.in_cross_replica_context()
    state = self.training_model.non_trainable_variables

    def each_replica(fn, *args):
      if cross:
        return distribution.extended.call_for_each_replica(fn, args=args)
      return fn(*args)

    def update(replica_grads):
      self.optimizer.apply_gradients(zip(replica_grads, variables))

    def restore(saved):
      for v, value in zip(state, saved):
        v.assign(value)

    def apply():
      each_replica(update, grads)
      return tf.constant(True)

    def skip():
      each_replica(restore, backup)
      return tf.constant(False)

    flag = distribution.experimental_local_results(bad)[0] if cross else bad
    return tf.cond(flag == 0, apply, skip)

  def _distributed_step(self, batch):
    values, applied = self.strategy.run(self._replica_step, args=(batch,))
    mean = {k: self.strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
            for k, v in values.items()}
    applied = self.strategy.experimental_local_results(applied)[0]
    self.step.assign_add(1)
    self.skipped.assign_add(tf.cast(tf.logical_not(applied), tf.int64))
    return mean, applied

  def train_step(self, batch) -> Dict[str, float]:
    """One step on a (distributed) batch; returns the mean loss terms and 'applied'."""
    values, applied = self._train_step(batch)
    out = {k: float(v) for k, v in values.items()}
    out["applied"] = bool(applied)
    if not out["applied"]:
      logging.warning("step %d skipped: non-finite loss or gradient", int(self.step.numpy()))
    return out

  def evaluate_loss(self, batch) -> float:
    """The objective's total on a batch in inference mode (no update)."""
    outputs = self.training_model([batch["image"], batch["intrinsics"]], training=False)
    return float(self.objective(outputs, batch, self.laplacian)["total"])


def weights_checksum(model: keras.Model) -> float:
  return float(sum(np.abs(v.numpy()).sum() for v in model.weights))
