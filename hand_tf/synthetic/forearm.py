"""A forearm for the hand mesh's wrist opening, so rendered hands do not float.

Photos of hands always show the forearm; a detector trained on them (MediaPipe's palm
model) expects one.  The arm is a tube grown from the mesh's wrist opening (its one
boundary loop, in MANO and in the project's synthetic hand alike) along the opening's
normal, slightly widening, then capped.  It is rendered with the hand but belongs to no
annotation: the hand's 778 vertices and 21 joints are unchanged.
"""

import collections

import numpy as np


def wrist_opening(faces: np.ndarray) -> np.ndarray:
  """The mesh's boundary loop, vertex indices in order around it.

  Args:
    faces: `[F, 3]` triangles, counter-clockwise seen from outside.

  Returns:
    `[L]` int: the loop, in the direction its faces traverse it.

  Raises:
    ValueError: when the mesh has no boundary, or more than one loop.
  """
  uses = collections.Counter()
  for a, b, c in np.asarray(faces):
    for u, v in ((a, b), (b, c), (c, a)):
      uses[(int(u), int(v))] += 1
  # A boundary edge is used by one face, so its reverse by none.
  following = {u: v for (u, v) in uses if (v, u) not in uses}
  if not following:
    raise ValueError("the mesh has no boundary (no wrist opening to attach an arm to)")
  start = min(following)
  loop = [start]
  while following[loop[-1]] != start:
    loop.append(following[loop[-1]])
    if len(loop) > len(following):
      break
  if len(loop) != len(following):
    raise ValueError(f"the mesh's boundary is not one loop ({len(following)} boundary edges, "
                     f"a loop of {len(loop)})")
  return np.array(loop)


def attach(vertices: np.ndarray, faces: np.ndarray, loop: np.ndarray, length: float,
           widening: float, rings: int = 6):
  """Grows an arm out of the wrist opening.

  Args:
    vertices: `[V, 3]` the posed hand, meters (any frame).
    faces: `[F, 3]` its triangles, counter-clockwise seen from outside.
    loop: `[L]` the wrist opening (`wrist_opening(faces)`).
    length: the arm's length from the opening, meters.
    widening: its radius at the far end over the opening's (1.0: a cylinder).
    rings: rings of vertices along the arm after the opening's own.

  Returns:
    (vertices `[V + rings * L + 1, 3]`: the hand's first, unchanged, then the arm's;
     faces `[F + 2 * rings * L + L, 3]`: the hand's first, then the arm's, wound as the
     hand's are, the far end closed;
     `[rings * L + 1]` how far along the arm each of its vertices is, meters).
  """
  vertices = np.asarray(vertices, np.float64)
  ring = vertices[loop]
  center = ring.mean(axis=0)
  # The opening's normal, pointing away from the hand.
  _, _, axes = np.linalg.svd(ring - center)
  axis = axes[2] * np.sign(np.dot(axes[2], center - vertices.mean(axis=0)) or 1.0)
  new_vertices, new_faces, along = [], [], []
  previous = np.asarray(loop)
  count = len(vertices)
  size = len(loop)
  for k in range(1, rings + 1):
    t = k / rings
    # Widen fast near the wrist, as a forearm's muscles do, then keep the width.
    scale = 1.0 + (widening - 1.0) * np.sqrt(t)
    flat = ring - np.outer((ring - center) @ axis, axis)  # the loop flattened to its plane
    new_vertices.append(center + axis * length * t + (flat - center) * scale)
    along.append(np.full(size, length * t))
    current = np.arange(count, count + size)
    count += size
    for i in range(size):
      j = (i + 1) % size
      # The loop runs the way the hand's faces traverse its edges, so the arm's faces
      # traverse them the other way: (previous[j], previous[i], current[i]).
      new_faces.append((previous[j], previous[i], current[i]))
      new_faces.append((previous[j], current[i], current[j]))
    previous = current
  new_vertices.append((center + axis * length)[None])
  for i in range(size):
    new_faces.append((previous[(i + 1) % size], previous[i], count))
  return (np.concatenate([vertices, *new_vertices]).astype(np.float32),
          np.concatenate([np.asarray(faces), np.array(new_faces)]).astype(np.int32),
          np.concatenate([*along, [length]]))
