"""Synthetic hand images with ground truth, written in the FreiHAND layout.

Command line: `python -m hand_tf.synthesize` (see that module).

Each sample: the hand model in a random plausible pose (inside the skeleton prior's
joint limits), random shape, global orientation (uniform, or within a given angle of
S2HAND's canonical view) and distance, skin-like per-vertex
texture and random light, rendered over a procedural (or photo) background, optionally
with an occluder.  The 'realistic' generator (`hand_tf.synthetic.realism`) instead
draws the views people photograph, grows a forearm from the wrist, shades skin in a
room's light over photographs and passes the image through a camera.

Written as `DIR/<split>/rgb/%08d.jpg`, `DIR/<split>/mask/%08d.jpg`,
`DIR/<split>_{K,xyz,verts,mano,scale}.json` exactly as FreiHAND stores them, plus
`DIR/<split>_detections.json` from the simulated detector and
`DIR/<split>_visibility.json`.  So `freihand.read_freihand` reads both.

`mano` rows are FreiHAND's 61 values: 48 axis-angle pose values (global rotation about
the wrist, then the absolute articulation, i.e. MANO's mean already included), 10 betas,
the wrist's image position (u, v) and the scale bone's length in meters.

Deterministic: sample i draws only from `default_rng([seed, i])` (its scene) and
`default_rng([seed, i, 7])` (its detections), so its output does not depend on the batch
size or on how many samples the set has.
"""

import os
import time

import cv2
import numpy as np
from scipy.spatial.transform import Rotation
from tqdm import tqdm

from hand_tf.camera import project
from hand_tf.detection import keypoint_files as detections_lib
from hand_tf.io import write_json
from hand_tf.rendering import renderer
from hand_tf.synthetic import realism, scenes
from mano_tf import constants, pose_sampling
from mano_tf.layer import ManoLayer

# A joint counts as visible if no surface lies more than this in front of it (meters):
# joints sit inside the finger, about a finger radius below the skin.
_VISIBILITY_TOLERANCE = 0.014


def _sample_rotation(rng, max_rotation_deg):
  """Global rotation (axis-angle): uniform over SO(3), or within `max_rotation_deg` of
  S2HAND's root rotation (the view its rotation head predicts offsets from)."""
  if max_rotation_deg is None:
    return Rotation.random(random_state=rng.integers(2 ** 31)).as_rotvec()
  axis = rng.normal(size=3)
  angle = np.deg2rad(rng.uniform(0.0, max_rotation_deg))
  offset = Rotation.from_rotvec(axis / np.linalg.norm(axis) * angle)
  return (offset * Rotation.from_rotvec(constants.S2HAND_ROOT_ROTATION)).as_rotvec()


GENERATORS = ("realistic", "plain")
# The 'realistic' generator frames hands with more room around them (MediaPipe's
# landmark model reads crops with a margin) and closes them less often into fists, as
# photos of hands mostly show them: with both, MediaPipe found 61% -> 75% of 256 renders
# (benchmarks/detector_realism.py, docs/experiments.md).
_REALISTIC_DEPTH_SCALE = 1.3
_REALISTIC_CLOSURE = 0.6


def _sample_scene(index, seed, layer_template, image_size, photo_paths,
                  max_rotation_deg=None, generator="plain", rest_keypoints=None,
                  photos=(), occluders=False):
  rng = np.random.default_rng([seed, index])
  realistic = generator == "realistic"
  articulation = pose_sampling.sample_articulations(
      rng, 1, _REALISTIC_CLOSURE if realistic else 1.0)[0].reshape(45)
  if realistic and max_rotation_deg is None:
    rotation = realism.sample_view_rotation(rng, rest_keypoints)
  else:
    rotation = _sample_rotation(rng, max_rotation_deg)
  betas = np.clip(rng.normal(0.0, 0.8, 10), -2.5, 2.5)
  focal = rng.uniform(2.2, 2.9) * image_size
  principal = image_size / 2 + rng.normal(0, 0.01 * image_size, 2)
  intrinsics = np.array([[focal, 0, principal[0]], [0, focal, principal[1]], [0, 0, 1]])
  return {
      "rng": rng,
      "pose": np.concatenate([rotation, articulation]).astype(np.float32),
      "betas": betas.astype(np.float32),
      "K": intrinsics.astype(np.float32),
      "depth": rng.uniform(0.45, 0.75) * (_REALISTIC_DEPTH_SCALE if realistic else 1.0),
      "offset": rng.normal(0, 0.04 * image_size, 2),
      "texture": scenes.skin_texture(rng, layer_template),
      **(realism.sample_scene(rng, photos, image_size, occluders) if realistic else {
          "lighting": scenes.lighting(rng),
          "background": (scenes.photo_background(rng, photo_paths, image_size)
                         if photo_paths else scenes.procedural_background(rng, image_size)),
      }),
  }


def _place_in_front_of_camera(vertices, joints, intrinsics, depth, offset, image_size):
  """Translates a hand so its centre projects near the image centre and it fits."""
  center = vertices.mean(axis=0)
  f = intrinsics[0, 0]
  extent = np.ptp(vertices[:, :2], axis=0).max()
  depth = max(depth, 1.15 * f * extent / image_size)  # keep the whole hand in the crop
  target_uv = intrinsics[:2, 2] + offset
  target = np.array([(target_uv[0] - intrinsics[0, 2]) * depth / f,
                     (target_uv[1] - intrinsics[1, 2]) * depth / f, depth])
  shift = target - center
  return vertices + shift, joints + shift


def _mediapipe_detections(out_dir, split, names, keypoints, progress):
  """Runs MediaPipe on the written images; writes its detections; their statistics."""
  from hand_tf.detection.mediapipe import detect_files
  detected, confidence = detect_files(
      [os.path.join(out_dir, split, "rgb", name) for name in names], progress=progress)
  detections_lib.write_detections(
      os.path.join(out_dir, f"{split}_mediapipe_detections.json"), detected, confidence, names)
  return detections_lib.found_statistics(detected, confidence, keypoints)


def synthesize(out_dir, num, image_size=224, seed=0, split="training", mano_model_path=None,
               backgrounds_dir=None, occluders=False, noise_level=1.0, batch_size=16,
               progress=True, backend="auto", max_rotation_deg=None, generator="plain",
               detector="simulated"):
  """Generates `num` samples into `out_dir` (see the module docstring).

  `generator`: 'plain' (the hand alone, Lambertian light, procedural backgrounds) or
  'realistic' (views people photograph, a forearm, skin shading, photo backgrounds,
  camera blur, noise and JPEG: `hand_tf.synthetic.realism`).
  `detector`: 'simulated' (ground truth plus the detector noise model, always written
  as `<split>_detections.json`) or 'mediapipe': MediaPipe's palm and landmark models
  are also run on the written images, their keypoints and confidences (zero where no
  hand is found) written as `<split>_mediapipe_detections.json`.

  Returns:
    A summary dict (count, seconds, images/s, detector statistics).
  """
  start_time = time.time()
  layer = ManoLayer(model_path=mano_model_path, use_pca=False, flat_hand_mean=True)
  template = layer._template.numpy()
  photo_paths = scenes.list_images(backgrounds_dir)
  if generator not in GENERATORS:
    raise ValueError(f"generator must be one of {GENERATORS}, got {generator!r}")
  rest_keypoints, photos = None, ()
  if generator == "realistic":
    rest_keypoints = layer(np.zeros((1, 48), np.float32), np.zeros((1, 10), np.float32))[1]
    rest_keypoints = rest_keypoints.numpy()[0]
    photos = [scenes.read_photo(p) for p in (photo_paths or realism.bundled_photos())]
  faces = np.asarray(layer.faces)
  for sub in ("rgb", "mask"):
    os.makedirs(os.path.join(out_dir, split, sub), exist_ok=True)
  columns = {k: [] for k in ("K", "xyz", "verts", "mano", "scale", "kp", "visible")}
  names = []
  bar = tqdm(total=num, desc=f"synthesize {split}", unit="img", disable=not progress)
  for first in range(0, num, batch_size):
    indices = range(first, min(first + batch_size, num))
    samples = [_sample_scene(i, seed, template, image_size, photo_paths, max_rotation_deg,
                             generator, rest_keypoints, photos, occluders)
               for i in indices]
    vertices, joints = layer(np.stack([s["pose"] for s in samples]),
                             np.stack([s["betas"] for s in samples]))
    placed = [_place_in_front_of_camera(v, j, s["K"], s["depth"], s["offset"], image_size)
              for v, j, s in zip(vertices.numpy(), joints.numpy(), samples)]
    verts = np.stack([p[0] for p in placed]).astype(np.float32)
    xyz = np.stack([p[1] for p in placed]).astype(np.float32)
    intrinsics = np.stack([s["K"] for s in samples])
    if generator == "realistic":
      images, masks, depth = realism.render_scenes(samples, verts, xyz, faces, intrinsics,
                                                   image_size, backend)
    else:
      out = renderer.render(verts, faces, np.stack([s["texture"] for s in samples]),
                            intrinsics, np.stack([s["lighting"] for s in samples]),
                            (image_size, image_size), backend=backend)
      silhouette = out["silhouette"].numpy()
      images = out["rgb"].numpy() + (1.0 - silhouette) * np.stack(
          [s["background"] for s in samples])
      masks, depth = out["mask"].numpy()[..., 0] > 0, out["depth"].numpy()[..., 0]
    keypoints = project(xyz, intrinsics)
    for b, (i, s) in enumerate(zip(indices, samples)):
      image = images[b]
      hand_mask = masks[b].copy()
      kp = keypoints[b]
      pixel = np.clip(np.floor(kp).astype(int), 0, image_size - 1)
      surface = depth[b][pixel[:, 1], pixel[:, 0]]
      in_image = np.all((kp >= 0) & (kp < image_size), axis=1)
      visible = in_image & ((surface == 0) | (xyz[b, :, 2] - surface < _VISIBILITY_TOLERANCE))
      # (The realistic generator's occluders are objects in the hand, rendered with it.)
      if occluders and generator == "plain" and s["rng"].uniform() < 0.4:
        color, covered = scenes.occluder(s["rng"], image_size, kp.mean(axis=0))
        image = np.where(covered[..., None], color, image)
        hand_mask &= ~covered
        visible &= ~covered[pixel[:, 1], pixel[:, 0]]
      name = "%08d.jpg" % i
      bgr = cv2.cvtColor(np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR)
      quality = (realism.jpeg_quality(s["effects_rng"]) if generator == "realistic" else 95)
      cv2.imwrite(os.path.join(out_dir, split, "rgb", name), bgr,
                  [cv2.IMWRITE_JPEG_QUALITY, quality])
      cv2.imwrite(os.path.join(out_dir, split, "mask", name), hand_mask.astype(np.uint8) * 255)
      scale_bone = float(np.linalg.norm(xyz[b, constants.SCALE_BONE[0]]
                                        - xyz[b, constants.SCALE_BONE[1]]))
      columns["K"].append(s["K"])
      columns["xyz"].append(xyz[b])
      columns["verts"].append(verts[b])
      columns["mano"].append(np.concatenate([s["pose"], s["betas"], kp[0], [scale_bone]])[None])
      columns["scale"].append(scale_bone)
      columns["kp"].append(kp)
      columns["visible"].append(visible)
      names.append(name)
    bar.update(len(indices))
  bar.close()

  keypoints = np.stack(columns["kp"])
  visible = np.stack(columns["visible"])
  # One generator per sample, as for its scene: a sample's detections must not depend
  # on how many samples the set has (they did when one generator served the whole set).
  detected, confidence = (np.concatenate(column) for column in zip(*(
      detections_lib.simulate_detections(np.random.default_rng([seed, i, 7]),
                                         keypoints[i:i + 1], visible[i:i + 1], image_size,
                                         noise_level) for i in range(len(keypoints)))))
  for key in ("K", "xyz", "verts", "mano"):
    write_json(os.path.join(out_dir, f"{split}_{key}.json"),
               np.round(np.stack(columns[key]).astype(np.float64), 6).tolist())
  write_json(os.path.join(out_dir, f"{split}_scale.json"), columns["scale"])
  write_json(os.path.join(out_dir, f"{split}_visibility.json"), visible.astype(int).tolist())
  detections_lib.write_detections(os.path.join(out_dir, f"{split}_detections.json"),
                                  detected, confidence, names)
  seconds = time.time() - start_time
  stats = detections_lib.detection_statistics(detected, keypoints)
  summary = {"split": split, "num": num, "image_size": image_size, "seed": seed,
             "generator": generator,
             "max_rotation_deg": max_rotation_deg,
             "seconds": round(seconds, 2), "images_per_second": round(num / seconds, 2),
             "visible_fraction": float(visible.mean()), "detector": stats}
  if detector == "mediapipe":
    summary["mediapipe"] = _mediapipe_detections(out_dir, split, names, keypoints, progress)
  write_json(os.path.join(out_dir, f"{split}_synthesis.json"), summary)
  return summary
