"""The GPU options, run on CPU: --mixed_precision (float16 compute, float32 hand, loss
scaling) and --jit_compile (XLA).  Apart from test_distributed.py so that `make test`'s
two pytest workers each get about half of the training tests' time."""

import numpy as np
import pytest
import tensorflow as tf
from test_trainer import SMALL, _config

from hand_tf.data import pipeline
from hand_tf.data.freihand import read_freihand
from hand_tf.training.trainer import Trainer, weights_checksum


def test_mixed_precision_scales_the_loss_and_keeps_the_hand_in_float32(tmp_path,
                                                                        synthetic_dataset):
  """--mixed_precision: the network computes in float16, every output the losses, MANO
  and the renderer see is float32, the loss is scaled (float16 gradients underflow
  without it), and a NaN batch is still skipped."""
  import keras
  root, _ = synthetic_dataset
  batch = next(iter(pipeline.make_dataset(read_freihand(
      str(root), detections=str(root / "training_detections.json"), image_size=64,
      source_size=96), 4, drop_remainder=True)))
  keras.utils.set_random_seed(0)
  keras.mixed_precision.set_global_policy("mixed_float16")
  try:
    trainer = Trainer(_config(tmp_path, stage="3d"))
  finally:
    keras.mixed_precision.set_global_policy("float32")  # no leak into later tests
  assert isinstance(trainer.optimizer, keras.optimizers.LossScaleOptimizer)
  model = trainer.training_model
  assert model.get_layer(f"encoder_{SMALL.backbone}").compute_dtype == "float16"
  assert model.get_layer("place_hand").compute_dtype == "float32"
  outputs = model([batch["image"], batch["intrinsics"]], training=False)
  assert {k: v.dtype for k, v in outputs.items()} == {k: tf.float32 for k in outputs}
  initial = float(trainer.optimizer.dynamic_scale.numpy())
  before = weights_checksum(model)
  results = []
  while int(trainer.optimizer.iterations.numpy()) < 2 and len(results) < 16:
    results.append(trainer.train_step(batch))
  assert all(r["applied"] and np.isfinite(r["total"]) for r in results), results
  # Each step either updated the weights (unscaled gradients) or overflowed float16 and
  # halved the scale without touching them; from random weights the first ones overflow.
  updates = int(trainer.optimizer.iterations.numpy())
  assert updates == 2 and weights_checksum(model) != before
  # From these random weights the gradients of the loss times 2^15 overflow float16 at
  # first (4 times): proof that the loss is scaled, not only the gradients unscaled.
  assert len(results) > updates
  assert float(trainer.optimizer.dynamic_scale.numpy()) == initial * 0.5 ** (
      len(results) - updates)
  assert all(np.all(np.isfinite(w)) for w in model.get_weights())
  poisoned = dict(batch, image=tf.tensor_scatter_nd_update(batch["image"], [[0, 0, 0, 0]],
                                                           [np.nan]))
  before = weights_checksum(model)
  assert not trainer.train_step(poisoned)["applied"]
  assert weights_checksum(model) == before


def test_jit_compile_trains_with_xla_and_refuses_several_replicas(tmp_path, synthetic_dataset,
                                                                  two_replicas):
  """--jit_compile: each step's forward and backward pass is one XLA computation (its
  HLO is there to read) computing the same objective as TensorFlow's graph; the steps
  apply and stay finite.  Several replicas are refused (their all-reduces cannot run in
  a compiled function nested in strategy.run)."""
  import dataclasses

  import keras
  root, _ = synthetic_dataset
  batch = next(iter(pipeline.make_dataset(read_freihand(
      str(root), detections=str(root / "training_detections.json"), image_size=64,
      source_size=96), 4, drop_remainder=True)))
  config = dataclasses.replace(_config(tmp_path, stage="3d"), jit_compile=True)
  with pytest.raises(ValueError, match="--jit_compile trains one replica per process"):
    Trainer(config, two_replicas)
  keras.utils.set_random_seed(0)
  trainer = Trainer(config)
  hlo = trainer.loss_and_gradients.experimental_get_compiler_ir(batch)(stage="hlo")
  assert hlo.startswith("HloModule") and "convolution(" in hlo
  uncompiled, _, _ = trainer._loss_and_gradients(batch)  # noqa: SLF001 (eager reference)
  before = weights_checksum(trainer.training_model)
  results = [trainer.train_step(batch) for _ in range(2)]
  assert results[0]["total"] == pytest.approx(float(uncompiled["total"]), rel=1e-4)
  assert all(r["applied"] and np.isfinite(r["total"]) for r in results), results
  assert weights_checksum(trainer.training_model) != before
