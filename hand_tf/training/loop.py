"""Epoch loop of one stage, and the paper's stage-wise schedule.

`run_stage` resumes where the trainer's checkpoint left off, data position included:
each epoch's shuffle is seeded by the epoch, so a resumed run rebuilds the same order
and skips the batches it had already trained on.
"""

import dataclasses
import os
import time
from typing import Callable, List, Optional

import tensorflow as tf
from tqdm import tqdm

from hand_tf.data import pipeline
from hand_tf.data.records import HandRecords
from hand_tf.training import summaries
from hand_tf.training.settings import SCHEDULE, STAGES
from hand_tf.training.trainer import Trainer


@dataclasses.dataclass(frozen=True)
class StagePlan:
  stage: str
  epochs: int
  decay_every: int
  decay_factor: float
  out_dir: str


def plan_stages(stage: str, out_dir: str, epochs: Optional[int] = None,
                decay_every: Optional[int] = None,
                decay_factor: Optional[float] = None) -> List[StagePlan]:
  """The stages to run, with their epochs and learning-rate steps.

  Args:
    stage: '2d', '3d', 'finetune', or 'all' (the three in order, as the paper).
    out_dir: run folder; with 'all', each stage checkpoints into `out_dir/<stage>`.
    epochs: epochs of the stage (default: the paper's); with 'all', the total, shared
      90:90:60 as the paper's stages, each at least 1.
    decay_every, decay_factor: learning-rate steps (default: the paper's, scaled with
      the epochs).
  """
  if stage != "all":
    if stage not in STAGES:
      raise ValueError(f"stage must be one of {tuple(STAGES) + ('all',)}, got {stage!r}")
    paper_epochs, paper_every, paper_factor = SCHEDULE[stage]
    epochs = paper_epochs if epochs is None else epochs
    every = decay_every or max(1, round(epochs * paper_every / paper_epochs))
    return [StagePlan(stage, epochs, every, decay_factor or paper_factor, out_dir)]
  total_paper = sum(s[0] for s in SCHEDULE.values())
  plans = []
  for name in STAGES:
    paper_epochs = SCHEDULE[name][0]
    share = paper_epochs if epochs is None else max(1, round(epochs * paper_epochs
                                                             / total_paper))
    plans += plan_stages(name, os.path.join(out_dir, name), share, decay_every,
                         decay_factor)
  return plans


def run_schedule(plans: List[StagePlan], build_trainer: Callable[[StagePlan], Trainer],
                 train: Callable[[Trainer, StagePlan], None], init_from: Optional[str] = None,
                 announce: Callable[[StagePlan, Trainer, Optional[str], Optional[str]],
                                    None] = lambda *args: None) -> Optional[str]:
  """Runs stages in order, each from the previous stage's last checkpoint.

  A stage whose folder already holds a checkpoint resumes from it instead (a restarted
  'all' run passes quickly over the stages it finished and resumes the one it was in).

  Args:
    plans: from `plan_stages`.
    build_trainer: makes the trainer of a stage (checkpointing into its folder).
    train: trains a trainer through its stage (`run_stage`).
    init_from: the first stage's starting weights (a checkpoint path), if any.
    announce: called as (plan, trainer, restored path or None, starting weights or None)
      before each stage trains.

  Returns:
    The last stage's newest checkpoint.
  """
  previous = init_from
  for plan in plans:
    trainer = build_trainer(plan)
    restored = trainer.restore()
    if not restored and previous:
      trainer.init_from(previous)
    announce(plan, trainer, restored, None if restored else previous)
    train(trainer, plan)
    previous = trainer.manager.latest_checkpoint
  return previous


def cluster_resolver(kind: str = "tf_config"):
  """The workers of a multi-worker run: 'tf_config' (the TF_CONFIG variable) or 'slurm'
  (TensorFlow's SlurmClusterResolver: every Slurm task a worker, task 0 the chief, the
  node's GPUs shared among its tasks through CUDA_VISIBLE_DEVICES)."""
  resolvers = tf.distribute.cluster_resolver
  if kind == "tf_config":
    return resolvers.TFConfigClusterResolver()
  if kind == "slurm":
    return resolvers.SlurmClusterResolver()
  raise ValueError(f"cluster must be 'tf_config' or 'slurm', got {kind!r}")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
  resolver = getattr(strategy, "cluster_resolver", None)
  if resolver is None or not resolver.task_type:
    return True
  return resolver.task_type == "chief" or (
      resolver.task_type == "worker" and resolver.task_id == 0
      and "chief" not in resolver.cluster_spec().as_dict())


def worker_dir(strategy: tf.distribute.Strategy, out_dir: str) -> str:
  """Where this worker checkpoints: `out_dir` on the chief, a folder of its own elsewhere.

  Every worker of MultiWorkerMirroredStrategy must save (saving runs collectives); only the
  chief's copy is the run's.
  """
  if is_chief(strategy):
    return out_dir
  resolver = strategy.cluster_resolver
  return os.path.join(out_dir, "workers", f"{resolver.task_type}_{resolver.task_id}")


def run_stage(trainer: Trainer, records: HandRecords, epochs: int, global_batch_size: int,
              seed: int = 0, augment: Optional[pipeline.AugmentConfig] = None,
              save_every_steps: int = 0, image_every_epochs: int = 1,
              log: Callable[[str], None] = print) -> dict:
  """Trains `trainer` up to `epochs` epochs; returns the last step's loss terms."""
  strategy = trainer.strategy
  chief = is_chief(strategy)
  steps_per_epoch = len(records) // global_batch_size
  if steps_per_epoch == 0:
    raise ValueError(f"{len(records)} images for a global batch of {global_batch_size}")
  writer = (tf.summary.create_file_writer(os.path.join(trainer.config.out_dir, "train"))
            if chief else tf.summary.create_noop_writer())
  step = int(trainer.step.numpy())
  values = {}
  for epoch in range(step // steps_per_epoch, epochs):
    done = int(trainer.step.numpy()) - epoch * steps_per_epoch
    dataset = pipeline.distributed_dataset(
        strategy, records, global_batch_size, shuffle=True, seed=seed * 1000 + epoch,
        augment_config=augment, skip_batches=done,
        # Parallel decoding in a fixed order: a seed, or a resume, gives the same batches.
        deterministic=True)
    bar = tqdm(dataset, total=steps_per_epoch - done, disable=not chief,
               desc=f"{trainer.config.objective.stage} epoch {epoch + 1}/{epochs}")
    start = time.time()
    batch = None
    for batch in bar:
      values = trainer.train_step(batch)
      seen = global_batch_size * (bar.n + 1)
      bar.set_postfix(loss=f"{values['total']:.4f}",
                      img_s=f"{seen / (time.time() - start):.1f}")
      step = int(trainer.step.numpy())
      with writer.as_default(step=step):
        for name, value in values.items():
          if name != "applied":
            tf.summary.scalar(f"loss/{name}", value)
      if save_every_steps and step % save_every_steps == 0 and step % steps_per_epoch:
        trainer.save()
    path = trainer.save()
    if chief and batch is not None and image_every_epochs and (epoch + 1) % image_every_epochs == 0:
      local = {k: strategy.experimental_local_results(v)[0] for k, v in batch.items()}
      panels = summaries.training_images(
          trainer.inference_model, trainer.objective.faces, local,
          render_backend=trainer.config.objective.render_backend)
      summaries.write_training_images(writer, step, panels)
    if values:
      log(f"{trainer.config.objective.stage} epoch {epoch + 1}/{epochs}: "
          f"loss {values['total']:.4f}, "
          f"{global_batch_size * (steps_per_epoch - done) / (time.time() - start):.1f} img/s;"
          f" saved {path}")
  writer.flush()
  return values
