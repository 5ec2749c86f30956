"""Training beyond one machine: two MultiWorkerMirroredStrategy workers on loopback
(equivalence with one process, a lost worker, SLURM)."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _train_args(root, out, *extra):
  return [sys.executable, "-m", "hand_tf.train", "--data_dir", str(root), "--detections",
          str(root / "training_detections.json"), "--stage", "3d", "--image_size", "64",
          "--batch_size", "4", "--epochs", "1", "--no_appearance", "--hourglass_features",
          "16", "--hourglass_stacks", "1", "--sync_batch_norm", "--seed", "0",
          "--drop_connect_rate", "0", "--nograppler",
          "--out_dir", str(out), *extra]


def _checkpoint_arrays(path, prefix):
  reader = tf.train.load_checkpoint(str(path))
  names = sorted(n for n in reader.get_variable_to_shape_map()
                 if n.startswith(prefix) and "OPTIMIZER_SLOT" not in n)
  arrays = [reader.get_tensor(n) for n in names]
  return np.concatenate([a.ravel() for a in arrays if a.dtype.kind == "f"])


def _assert_same_checkpoints(path, other):
  """Every model and optimizer variable and the step of two checkpoints, bit for bit."""
  readers = [tf.train.load_checkpoint(str(p)) for p in (path, other)]
  names = [n for n in readers[1].get_variable_to_shape_map()
           if n.startswith(("model/", "optimizer/", "step/"))]
  assert len(names) > 300
  for name in names:
    np.testing.assert_array_equal(*(r.get_tensor(name) for r in readers), name)


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


def _launch_workers(root, out, logs, *extra):
  """Two worker processes of `hand_tf.train` on loopback, printing into files in `logs`
  (pipes left unread could fill and stall them); their Popen objects."""
  workers = [f"127.0.0.1:{_free_port()}" for _ in range(2)]
  logs.mkdir(parents=True, exist_ok=True)
  procs = []
  for index in range(2):
    env = dict(os.environ, TF_CONFIG=json.dumps(
        {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}))
    with open(logs / f"worker_{index}.out", "w") as stdout, \
        open(logs / f"worker_{index}.err", "w") as stderr:
      procs.append(subprocess.Popen(
          _train_args(root, out, "--strategy", "multi_worker", "--save_every_steps", "1",
                      *extra), env=env, stdout=stdout, stderr=stderr, text=True))
  return procs


def _printed(logs, index):
  return tuple((logs / f"worker_{index}.{kind}").read_text() for kind in ("out", "err"))


def _run_workers(root, out, logs, *extra, others=()):
  """Runs two workers to the end; [(stdout, stderr)] of each.  A hang (what the README
  once said of --sync_batch_norm here) fails the test at the timeout.  A port found free
  can be taken before its worker binds it (close-then-bind): such a launch is retried
  with new ports."""
  for _ in range(3):
    procs = _launch_workers(root, out, logs, *extra)
    try:
      for p in procs:
        p.wait(timeout=400)
    except subprocess.TimeoutExpired:
      for p in [*procs, *others]:
        p.kill()
      pytest.fail("two workers with --sync_batch_norm did not finish 2 steps in 400 s")
    results = [_printed(logs, index) for index in range(2)]
    if not any("address already in use" in err.lower() for _, err in results):
      break
  for p, (_, stderr) in zip(procs, results):
    assert p.returncode == 0, stderr[-3000:]
  return results


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory, synthetic_dataset):
  """Two workers (--sync_batch_norm, global batch 4: 2 each) trained 2 steps through the
  CLI, saving after each, and one process with the whole batch run alongside."""
  root, _ = synthetic_dataset
  tmp_path = tmp_path_factory.mktemp("two_workers")
  out, single = tmp_path / "run", tmp_path / "single"
  # The one process is the reference for the first step.  (Without TensorBoard's
  # rendered panels, 10 s; the chief's are checked below.)
  reference = subprocess.Popen(_train_args(root, single, "--save_every_steps", "1",
                                           "--image_every_epochs", "0"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  results = _run_workers(root, out, tmp_path / "logs", others=[reference])
  _, stderr = reference.communicate(timeout=400)
  assert reference.returncode == 0, stderr[-3000:]
  return root, out, single, results


def test_two_workers_with_synchronised_batch_norm_compute_what_one_process_computes(
    two_workers):
  """The two workers end with identical weights, batch-norm statistics (taken over the
  global batch) and optimizer state; after their first step they hold what one process
  with batch 4 holds."""
  _, out, single, results = two_workers
  chief_out = results[0][0]
  assert "stage 3d: starting, 64 px input, 8 images, 2 steps/epoch, 1 epochs" in chief_out
  assert "2 replica(s)" in chief_out and "3d epoch 1/1: loss" in chief_out
  assert not (out / "workers" / "worker_1" / "train").exists()  # TensorBoard: chief only
  _assert_same_checkpoints(out / "ckpt-2", out / "workers" / "worker_1" / "ckpt-2")
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


def test_a_lost_worker_stops_the_other_and_a_restart_resumes_as_if_nothing_happened(
    two_workers, tmp_path):
  """Worker 1 is killed (SIGKILL) in the second step of the epoch, after the step-1
  checkpoint: the chief notices (TensorFlow's heartbeats), stops with one line saying
  how to resume, and leaves the run folder at that checkpoint.  Both started again, they
  resume from the chief's checkpoint (worker 1 has none of its own) and end where the
  uninterrupted run ended: every weight and optimizer variable bit for bit."""
  root, whole, _, _ = two_workers
  run = tmp_path / "run"
  run.mkdir()
  # The run folder as the two workers left it right after their step-1 save.
  for name in os.listdir(whole):
    if name.startswith("ckpt-1.") or name in ("hand_model.npz", "model_config.json"):
      shutil.copy(whole / name, run / name)
  tf.compat.v1.train.update_checkpoint_state(str(run), "ckpt-1", ["ckpt-1"])
  assert tf.train.latest_checkpoint(str(run)) == str(run / "ckpt-1")

  logs = tmp_path / "killed"
  chief, worker = _launch_workers(root, run, logs, "--image_every_epochs", "0")
  try:
    deadline = time.time() + 300
    while "resumed from" not in _printed(logs, 0)[0]:
      assert chief.poll() is None and time.time() < deadline, _printed(logs, 0)[1][-3000:]
      time.sleep(0.2)
    worker.kill()  # past the restore (its step check is a collective), in the training
    killed = time.time()
    chief.wait(timeout=120)  # a chief waiting forever on the lost worker fails here
    noticed = time.time() - killed
  finally:
    for p in (chief, worker):
      p.kill()
      p.wait()
  stdout, stderr = _printed(logs, 0)
  assert chief.returncode == 1, stderr[-3000:]
  assert stderr.strip().splitlines()[-1] == (
      f"error: lost worker 1 (no heartbeat); start every worker again with the same "
      f"command to resume from the last checkpoint ({run / 'ckpt-1'})"), (noticed, stderr[-3000:])
  # Nothing half-written: the newest checkpoint is still step 1's, and it is whole.
  assert tf.train.latest_checkpoint(str(run)) == str(run / "ckpt-1")
  assert not [n for n in os.listdir(run) if n.startswith("ckpt-2")]

  results = _run_workers(root, run, tmp_path / "restarted", "--image_every_epochs", "0")
  for stdout, _ in results:  # worker 1's own folder holds no checkpoint: the chief's
    assert f"stage 3d: resumed from {run / 'ckpt-1'}, " in stdout, stdout
  _assert_same_checkpoints(run / "ckpt-2", whole / "ckpt-2")


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
