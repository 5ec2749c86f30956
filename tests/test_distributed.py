"""Training beyond one device: two MultiWorkerMirroredStrategy workers on loopback, and
mixed precision (the GPU option) on CPU."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from test_trainer import SMALL, _config

from hand_tf.data import pipeline
from hand_tf.data.freihand import read_freihand
from hand_tf.training.trainer import Trainer, weights_checksum


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _train_args(root, out, *extra):
  return [sys.executable, "-m", "hand_tf.train", "--data_dir", str(root), "--detections",
          str(root / "training_detections.json"), "--stage", "3d", "--image_size", "64",
          "--batch_size", "4", "--epochs", "1", "--no_appearance", "--hourglass_features",
          "16", "--hourglass_stacks", "1", "--sync_batch_norm", "--seed", "0",
          "--drop_connect_rate", "0",
          "--out_dir", str(out), *extra]


def _checkpoint_arrays(path, prefix):
  reader = tf.train.load_checkpoint(str(path))
  names = sorted(n for n in reader.get_variable_to_shape_map()
                 if n.startswith(prefix) and "OPTIMIZER_SLOT" not in n)
  arrays = [reader.get_tensor(n) for n in names]
  return np.concatenate([a.ravel() for a in arrays if a.dtype.kind == "f"])


def _logged(run_dir):
  """({step: {term: value}}, {image panel tags}) from a run's TensorBoard events."""
  found, panels = {}, set()
  for path in (run_dir / "train").iterdir():
    for event in tf.compat.v1.train.summary_iterator(str(path)):
      for value in event.summary.value:
        if value.tag.startswith("loss/"):
          found.setdefault(event.step, {})[value.tag[5:]] = float(
              tf.make_ndarray(value.tensor))
        elif value.tag.startswith("images/"):
          panels.add(value.tag)
  return found, panels


def test_two_workers_with_synchronised_batch_norm_compute_what_one_process_computes(
    tmp_path, synthetic_dataset):
  """Two worker processes on loopback (--sync_batch_norm, global batch 4: 2 each) train
  2 steps through the CLI and end with identical weights, batch-norm statistics (taken
  over the global batch) and optimizer state; after their first step they hold what
  one process with batch 4 holds.  A hang (what the README once said of
  --sync_batch_norm here) fails the test at its timeout."""
  root, _ = synthetic_dataset
  out, single = tmp_path / "run", tmp_path / "single"
  # One process with the whole batch, alongside (the reference for the first step).
  # (Without TensorBoard's rendered panels, 10 s; the chief's are checked below.)
  reference = subprocess.Popen(_train_args(root, single, "--save_every_steps", "1",
                                           "--image_every_epochs", "0"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  # A port found free can be taken before the worker binds it (close-then-bind): a
  # launch that fails to bind is retried with new ports rather than failing the test.
  for _ in range(3):
    workers = [f"127.0.0.1:{_free_port()}" for _ in range(2)]
    procs = []
    for index in range(2):
      env = dict(os.environ, TF_CONFIG=json.dumps(
          {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}))
      procs.append(subprocess.Popen(
          _train_args(root, out, "--strategy", "multi_worker", "--save_every_steps", "1"),
          env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
      results = [p.communicate(timeout=400) for p in procs]
    except subprocess.TimeoutExpired:
      for p in procs + [reference]:
        p.kill()
      pytest.fail("two workers with --sync_batch_norm did not finish 2 steps in 400 s")
    if not any("address already in use" in err.lower() for _, err in results):
      break
  for p, (_, stderr) in zip(procs, results):
    assert p.returncode == 0, stderr[-3000:]
  _, stderr = reference.communicate(timeout=400)
  assert reference.returncode == 0, stderr[-3000:]
  chief_out = results[0][0]
  assert "stage 3d: starting, 64 px input, 8 images, 2 steps/epoch, 1 epochs" in chief_out
  assert "2 replica(s)" in chief_out and "3d epoch 1/1: loss" in chief_out
  assert not (out / "workers" / "worker_1" / "train").exists()  # TensorBoard: chief only
  chief = tf.train.load_checkpoint(str(out / "ckpt-2"))
  worker = tf.train.load_checkpoint(str(out / "workers" / "worker_1" / "ckpt-2"))
  names = [n for n in chief.get_variable_to_shape_map()
           if n.startswith(("model/", "optimizer/"))]
  assert len(names) > 300
  for name in names:
    np.testing.assert_array_equal(chief.get_tensor(name), worker.get_tensor(name), name)
  # Against one process with the whole batch: the first step's loss terms (measured
  # 3e-6 to 3e-4 apart; with each worker dividing by its own summed confidence, the
  # joint term 3e-3) ...  (The second step's are 1e-3 to 2e-2 apart: Adam's first
  # update, lr sign(g), moves near-zero-gradient weights opposite ways; from the same
  # state a second step matches again: docs/experiments.md.)
  (losses, panels), (reference_losses, _) = _logged(out), _logged(single)
  assert len(panels) >= 2, panels  # the chief's rendered training panels
  assert sorted(losses) == sorted(reference_losses) == [1, 2]
  assert losses[1].keys() == reference_losses[1].keys()
  for term, value in reference_losses[1].items():
    assert losses[1][term] == pytest.approx(value, rel=1e-3, abs=1e-7), term
  # ... and after the first step Adam's moments (0.1 g and 0.001 g^2: the all-reduced
  # gradient) and the weights.  Measured: moments 1.5% apart (norm of the difference
  # over the norm; one process against itself with oneDNN's kernels switched off: 2.2%:
  # batch norm over a few samples amplifies float rounding), and 0.5% of the weights
  # more than 1e-4 apart (Adam's first update is lr sign(g): a gradient
  # within float noise of 0 flips its sign).
  moments = [_checkpoint_arrays(d / "ckpt-1", "optimizer/_variables/") for d in (out, single)]
  assert np.count_nonzero(moments[1]) > 1_000_000
  moments_apart = np.linalg.norm(moments[0] - moments[1]) / np.linalg.norm(moments[1])
  weights = [_checkpoint_arrays(d / "ckpt-1", "optimizer/_trainable_variables/")
             for d in (out, single)]
  weights_apart = np.mean(np.abs(weights[0] - weights[1]) > 1e-4)
  assert moments_apart < 0.06 and weights_apart < 0.02, (moments_apart, weights_apart)


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


def test_a_slurm_allocation_names_the_workers_and_the_chief(monkeypatch):
  """`--cluster slurm`: task 1 of 2 on node[07-08] is worker 1 of a two-node cluster,
  not the chief; task 0 is."""
  import types

  from hand_tf.training import loop
  for name, value in (("SLURM_STEP_NUM_TASKS", "2"), ("SLURM_STEP_NODELIST", "node[07-08]"),
                      ("SLURM_STEP_TASKS_PER_NODE", "1(x2)"), ("CUDA_VISIBLE_DEVICES", "0")):
    monkeypatch.setenv(name, value)
  for rank in (0, 1):
    monkeypatch.setenv("SLURM_PROCID", str(rank))
    resolver = loop.cluster_resolver("slurm")
    assert resolver.cluster_spec().as_dict() == {"worker": ["node07:8888", "node08:8888"]}
    assert (resolver.task_type, resolver.task_id) == ("worker", rank)
    strategy = types.SimpleNamespace(cluster_resolver=resolver)
    assert loop.is_chief(strategy) == (rank == 0)
