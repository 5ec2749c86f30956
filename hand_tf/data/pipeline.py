"""tf.data input pipeline over `HandRecords`.

Each element is a dict:
  image: [S, S, 3] float32 in [0, 1] (what S2HAND's encoder is fed; the model rescales
    for ImageNet weights itself), the record's crop resized to S = records.image_size;
  intrinsics [3, 3], keypoints [21, 2], confidence [21], index []  (+ joints3d [21, 3],
  vertices [778, 3], mask [S, S, 1] when available).

Augmentation is off by default (the paper uses none on FreiHAND).  When on, colour jitter
and a random in-plane similarity (scale, rotation, translation about the image centre)
are applied; the same map updates keypoints and K (K' = A K), so projecting 3D joints
with the new K still lands on the new keypoints.
"""

import dataclasses
from typing import Optional, Tuple

import numpy as np
import tensorflow as tf

from hand_tf import io
from hand_tf.data import crops
from hand_tf.data.records import HandRecords


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
  scale_range: Tuple[float, float] = (0.9, 1.1)
  rotation_degrees: float = 180.0   # S2HAND rotates FreiHAND crops by U(-pi, pi)
  translate_fraction: float = 0.05  # of the image side
  brightness: float = 0.15
  contrast: float = 0.15
  saturation: float = 0.15
  hue: float = 0.03


def _load_crop(path, box, size, channels):
  """`[size, size, channels]` float32 in [0, 1]: the crop inference feeds the model.

  The same `io.read_image` and `crops.crop_image` as `reconstruct` and the exporter, run
  through `tf.numpy_function`, so that training sees exactly the pixels serving sees
  (TF's crop_and_resize does not antialias: at 3.5x shrink it differed by 9/255 on
  average, 42/255 at most).  OpenCV releases the GIL, so parallel map still scales.
  """
  def load(path, box):
    image = io.read_image(path.decode(), channels)
    return crops.crop_image(image, box, size).astype(np.float32) / np.float32(255.0)

  crop = tf.numpy_function(load, [path, box], tf.float32, stateful=False)
  crop.set_shape([size, size, channels])
  return crop


def similarity_matrix(scale, angle, translation, size):
  """[3, 3] map of pixel coordinates: about the image centre, scale, rotate, translate."""
  c = size / 2.0
  cos, sin = tf.cos(angle) * scale, tf.sin(angle) * scale
  tx = c + translation[0] - (cos * c - sin * c)
  ty = c + translation[1] - (sin * c + cos * c)
  return tf.stack([tf.stack([cos, -sin, tx]), tf.stack([sin, cos, ty]),
                   tf.constant([0.0, 0.0, 1.0])])


def warp_image(image, matrix, size):
  """Resamples `image` so that input pixel p moves to matrix @ p (continuous coords)."""
  # Output index -> input index: shift to continuous, invert, shift back.
  shift = tf.constant([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
  unshift = tf.constant([[1.0, 0.0, -0.5], [0.0, 1.0, -0.5], [0.0, 0.0, 1.0]])
  inverse = unshift @ tf.linalg.inv(matrix) @ shift
  params = tf.reshape(inverse, [9])[:8] / inverse[2, 2]
  return tf.raw_ops.ImageProjectiveTransformV3(
      images=image[None], transforms=params[None], output_shape=[size, size],
      fill_value=0.0, interpolation="BILINEAR", fill_mode="CONSTANT")[0]


def augment(element, seed, config: AugmentConfig, size: int):
  """Applies random colour jitter and an in-plane similarity to one element."""
  seeds = tf.random.experimental.stateless_split(seed, 8)
  uniform = lambda i, lo, hi: tf.random.stateless_uniform([], seeds[i], lo, hi)  # noqa: E731
  scale = uniform(0, *config.scale_range)
  angle = uniform(1, -1.0, 1.0) * np.deg2rad(config.rotation_degrees)
  shift = config.translate_fraction * size
  translation = tf.stack([uniform(2, -shift, shift + 1e-9), uniform(3, -shift, shift + 1e-9)])
  matrix = similarity_matrix(scale, angle, translation, size)
  out = dict(element)
  out["image"] = warp_image(element["image"], matrix, size)
  if "mask" in element:
    out["mask"] = warp_image(element["mask"], matrix, size)
  out["keypoints"] = element["keypoints"] @ tf.transpose(matrix[:2, :2]) + matrix[:2, 2]
  out["intrinsics"] = matrix @ element["intrinsics"]
  image = out["image"]
  if config.brightness:
    image = tf.image.stateless_random_brightness(image, config.brightness, seeds[4])
  if config.contrast:
    image = tf.image.stateless_random_contrast(image, 1 - config.contrast, 1 + config.contrast,
                                               seeds[5])
  if config.saturation:
    image = tf.image.stateless_random_saturation(image, 1 - config.saturation,
                                                 1 + config.saturation, seeds[6])
  if config.hue:
    image = tf.image.stateless_random_hue(image, config.hue, seeds[7])
  out["image"] = tf.clip_by_value(image, 0.0, 1.0)
  return out


def make_dataset(records: HandRecords, batch_size: int, shuffle: bool = False, seed: int = 0,
                 deterministic: bool = False, augment_config: Optional[AugmentConfig] = None,
                 repeat: bool = False, drop_remainder: bool = False,
                 include_masks: bool = False,
                 shard: Optional[Tuple[int, int]] = None,
                 skip_batches: int = 0) -> tf.data.Dataset:
  """Builds the batched, prefetched dataset.

  Args:
    records: the rows to read.
    batch_size: per-call batch size (per replica under a distribution strategy).
    shuffle: shuffle rows (full-dataset buffer; rows are small, images load later).
    seed: seed of shuffling and augmentation.
    deterministic: keep element order fixed under parallel decoding.
    augment_config: None disables augmentation.
    repeat: repeat forever (shuffling anew each epoch).
    drop_remainder: drop the last incomplete batch (needed for static batch shapes).
    include_masks: also load `records.mask_paths` as `mask`.
    shard: (num_shards, index) to read a disjoint part, e.g. one input pipeline of many:
      element i of the shuffled order goes to pipeline i % num_shards.
    skip_batches: leave out the first batches (resuming mid-epoch); their images are not
      read, and the rest are augmented exactly as they would have been.
  """
  size = records.image_size
  columns = {"image_path": np.asarray(records.image_paths),
             "crop_box": records.crop_boxes, "intrinsics": records.intrinsics,
             "keypoints": records.keypoints, "confidence": records.confidence,
             "index": np.arange(len(records), dtype=np.int64)}
  if records.joints3d is not None:
    columns["joints3d"] = records.joints3d
  if records.vertices is not None:
    columns["vertices"] = records.vertices
  if include_masks:
    if records.mask_paths is None:
      raise ValueError("include_masks=True but the records have no mask paths")
    columns["mask_path"] = np.asarray(records.mask_paths)
  dataset = tf.data.Dataset.from_tensor_slices(columns)
  if shuffle:
    dataset = dataset.shuffle(len(records), seed=seed, reshuffle_each_iteration=True)
  if repeat:
    dataset = dataset.repeat()
  dataset = tf.data.Dataset.zip((dataset, tf.data.Dataset.random(seed=seed).batch(2)))
  if shard is not None:
    # After the shuffle and the augmentation seeds (the same on every pipeline): pipeline
    # i takes elements i, i + n, ..., so step k's per-replica batches together are the
    # k-th global batch of one pipeline, augmented alike.  (This is the DATA auto-shard
    # policy, done by hand: `distributed_dataset` builds one pipeline per worker.)
    dataset = dataset.shard(*shard)
  if skip_batches:
    dataset = dataset.skip(skip_batches * batch_size)

  def load(row, element_seed):
    element = {k: v for k, v in row.items() if k not in ("image_path", "crop_box", "mask_path")}
    element["image"] = _load_crop(row["image_path"], row["crop_box"], size, 3)
    if include_masks:
      element["mask"] = _load_crop(row["mask_path"], row["crop_box"], size, 1)
    if augment_config is not None:
      element = augment(element, element_seed, augment_config, size)
    return element

  options = tf.data.Options()
  options.deterministic = deterministic
  dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE).with_options(options)
  return dataset.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)


def distributed_dataset(strategy: tf.distribute.Strategy, records: HandRecords,
                        global_batch_size: int, **kwargs):
  """One input pipeline per worker, each reading its shard at the per-replica batch size."""

  def dataset_fn(context: tf.distribute.InputContext):
    batch = context.get_per_replica_batch_size(global_batch_size)
    return make_dataset(records, batch, drop_remainder=True,
                        shard=(context.num_input_pipelines, context.input_pipeline_id),
                        **kwargs)

  return strategy.distribute_datasets_from_function(dataset_fn)
