"""Median LiteRT time per call of several .tflite files, timed in turn (shared by the
benchmarks that print times)."""

import time

import numpy as np


def interleaved_ms(paths, runs, threads):
  """{label: median ms} of .tflite files ({label: path}) timed in turn, one invoke of
  each per round: a host whose load drifts then slows them alike, and their ratios, the
  figures that matter, hold."""
  from ai_edge_litert.interpreter import Interpreter
  interpreters = {}
  for label, path in paths.items():
    interpreter = Interpreter(model_path=path, num_threads=threads)
    interpreter.allocate_tensors()
    for detail in interpreter.get_input_details():
      interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
    for _ in range(3):
      interpreter.invoke()
    interpreters[label] = interpreter
  times = {label: [] for label in paths}
  for _ in range(runs):
    for label, interpreter in interpreters.items():
      start = time.perf_counter()
      interpreter.invoke()
      times[label].append(time.perf_counter() - start)
  return {label: 1000 * float(np.median(values)) for label, values in times.items()}
