"""Skeleton and surface of the synthetic right hand.

Frame (MANO's): the flat hand lies with the fingers pointing along -x, the palm facing
-y (so +y is the back of the hand) and the thumb on the +z side.  A finger's bend is then
a positive rotation about z, its spread a rotation about y and its twist one about x.

The surface is built from closed rings of vertices (cross-sections) joined by triangle
strips: a palm tube open at the wrist, four finger tubes rising from its distal end and a
thumb tube rising from a hole in its radial-palmar side.  The palm covers the knuckles
and the proximal phalanges up to the webs, as on a real hand, where the fingers part
1.5-2.5 cm past their MCP joints: a detector trained on photos reads the knuckles from
where the fingers part, so a hand whose fingers left the palm at the knuckles had its
joints found a knuckle's breadth towards the wrist.  Every ring is ordered
counter-clockwise about the direction in which its tube grows, which makes all triangles
face outwards.  The counts are chosen so that the mesh has exactly MANO's 778 vertices
and 1538 faces, with a 16-vertex wrist opening (a disk: F = 2V - 2 - 16).
"""

import dataclasses
from typing import Dict, List, Tuple

import numpy as np

from mano_tf import constants

# Region ids stored per vertex.
PALM, THUMB = 0, 5
FINGER_REGIONS = {"index": 1, "middle": 2, "ring": 3, "pinky": 4}


@dataclasses.dataclass(frozen=True)
class FingerSpec:
  mcp: Tuple[float, float, float]   # MCP joint, meters.
  fan_deg: float                    # direction in the palm plane, + towards the thumb.
  lengths: Tuple[float, float, float]  # MCP->PIP, PIP->DIP, DIP->tip, meters.
  radius: Tuple[float, float]       # half-width at the base and at the tip, meters.


# Adult proportions; the middle finger's proximal phalanx (MCP->PIP) is 3.95 cm.
FINGERS: Dict[str, FingerSpec] = {
    "index": FingerSpec((0.004, 0.0, 0.0240), 5.0, (0.0365, 0.0225, 0.0210), (0.0092, 0.0074)),
    "middle": FingerSpec((0.000, 0.0, 0.0035), 0.0, (0.0395, 0.0255, 0.0220), (0.0095, 0.0076)),
    "ring": FingerSpec((0.005, 0.0, -0.0165), -5.0, (0.0370, 0.0240, 0.0210), (0.0090, 0.0072)),
    "pinky": FingerSpec((0.015, 0.0, -0.0345), -12.0, (0.0290, 0.0180, 0.0190), (0.0080, 0.0064)),
}
FINGER_ORDER = ("index", "middle", "ring", "pinky")  # radial to ulnar.
# MANO's joint ids of each finger's MCP, PIP and DIP joints (MANO orders pinky before ring).
FINGER_JOINTS = {"index": (1, 2, 3), "middle": (4, 5, 6), "pinky": (7, 8, 9),
                 "ring": (10, 11, 12)}
THUMB_LENGTHS = (0.040, 0.032, 0.027)  # CMC->MCP, MCP->IP, IP->tip.
THUMB_RADIUS = (0.0135, 0.0105, 0.0095, 0.0080)  # thenar, MCP, IP, tip.

# Palm cross-sections from the wrist towards the knuckles: x, half-width (z), half-
# thickness (y), centre z.  Ring 1 is centred on the wrist joint.
PALM_RINGS = ((0.100, 0.028, 0.0150, -0.003), (0.085, 0.032, 0.0160, -0.002),
              (0.068, 0.036, 0.0165, -0.003), (0.051, 0.039, 0.0160, -0.004),
              (0.034, 0.040, 0.0150, -0.0045))
WRIST_RING_SIZE = 16
PALM_RING_SIZE = 20
FINGER_RING_SIZE = 12
WEB_OFFSET = 0.016  # the fingers part (their web loop) 16 mm distal of the MCP joint.
THUMB_PATCH_COLUMNS = (11, 14)  # palm-ring vertex columns of the thumb hole (3 quads).
THUMB_PATCH_RINGS = (1, 3)      # palm rings spanned by the hole (2 quads).


def _unit(v):
  v = np.asarray(v, dtype=np.float64)
  return v / np.linalg.norm(v, axis=-1, keepdims=True)


def finger_direction(fan_deg: float) -> np.ndarray:
  a = np.deg2rad(fan_deg)
  return np.array([-np.cos(a), 0.0, np.sin(a)])


def ellipse_ring(center, forward, up, half_width, half_height, angles_deg, exponent=1.0):
  """Points of a (super-)ellipse around `forward`; angle 0 is `up`, increasing CCW."""
  forward, up = _unit(forward), _unit(up)
  up = _unit(up - np.dot(up, forward) * forward)
  side = np.cross(forward, up)  # CCW about forward: up -> side.
  phi = np.deg2rad(np.asarray(angles_deg, dtype=np.float64))
  c, s = np.cos(phi), np.sin(phi)
  c = np.sign(c) * np.abs(c) ** exponent
  s = np.sign(s) * np.abs(s) ** exponent
  return (np.asarray(center)[None] + half_height * c[:, None] * up[None]
          + half_width * s[:, None] * side[None])


def ring_angles(points, center, forward, up) -> np.ndarray:
  """Angles (degrees, CCW about forward from up) of points around an axis."""
  forward, up = _unit(forward), _unit(up)
  up = _unit(up - np.dot(up, forward) * forward)
  side = np.cross(forward, up)
  d = np.asarray(points) - np.asarray(center)
  return np.rad2deg(np.arctan2(d @ side, d @ up))


class MeshBuilder:
  """Accumulates vertices with per-vertex rig labels, and triangles."""

  def __init__(self):
    self.points: List[np.ndarray] = []
    self.region: List[int] = []
    self.arc: List[float] = []     # position along the finger/thumb chain, meters.
    self.axis: List[np.ndarray] = []  # the ring centre the vertex was placed around.
    self.faces: List[Tuple[int, int, int]] = []

  def add(self, points, region, arc, center) -> np.ndarray:
    start = len(self.points)
    for p in np.atleast_2d(points):
      self.points.append(np.asarray(p, dtype=np.float64))
      self.region.append(region)
      self.arc.append(arc)
      self.axis.append(np.asarray(center, dtype=np.float64))
    return np.arange(start, len(self.points))

  def zip_rings(self, ring_a, angles_a, ring_b, angles_b):
    """Joins two closed rings (CCW about the growth direction, b further along).

    The triangulation walks both rings by angle, so rings of different sizes join
    without slivers; topologically it is always a valid strip of len(a)+len(b) faces.
    """
    na, nb = len(ring_a), len(ring_b)
    roll = int(np.argmin(np.abs((np.asarray(angles_b) - angles_a[0] + 180) % 360 - 180)))
    ring_b = np.roll(ring_b, -roll)
    angles_b = np.roll(angles_b, -roll)
    ta = np.maximum.accumulate((np.asarray(angles_a) - angles_a[0]) % 360)
    tb = np.maximum.accumulate((np.asarray(angles_b) - angles_b[0]) % 360)
    tb = tb + ((angles_b[0] - angles_a[0] + 180) % 360 - 180)
    ta = np.append(ta, 360.0)
    tb = np.append(tb, tb[0] + 360.0)
    i = j = 0
    while i < na or j < nb:
      advance_a = j == nb or (i < na and ta[i + 1] <= tb[j + 1])
      if advance_a:
        self.faces.append((ring_a[i % na], ring_a[(i + 1) % na], ring_b[j % nb]))
        i += 1
      else:
        self.faces.append((ring_a[i % na], ring_b[(j + 1) % nb], ring_b[j % nb]))
        j += 1

  def cap(self, ring, apex):
    n = len(ring)
    for i in range(n):
      self.faces.append((ring[i], ring[(i + 1) % n], apex))


def finger_skeleton(spec: FingerSpec) -> np.ndarray:
  """[4, 3] MCP, PIP, DIP and tip positions of a straight finger."""
  direction = finger_direction(spec.fan_deg)
  offsets = np.concatenate([[0.0], np.cumsum(spec.lengths)])
  return np.asarray(spec.mcp)[None] + offsets[:, None] * direction[None]


def _tube_profile(lengths, radius_base, radius_tip, start, joint_bulge=0.05):
  """Arc positions and radii of the rings of a finger-like tube, and its apex position.

  Rings lie exactly on the joints past `start` (so joints can be regressed as ring
  centroids), with intermediate rings on each segment and a rounded cap at the tip.
  """
  s1, s2, s3 = np.cumsum(lengths)
  stations = [start + (s1 - start) / 3, start + 2 * (s1 - start) / 3, s1,
              s1 + (s2 - s1) / 3, s1 + 2 * (s2 - s1) / 3, s2,
              s2 + (s3 - s2) / 3, s2 + 0.62 * (s3 - s2)]
  radius = [radius_base + (radius_tip - radius_base) * s / s3 for s in stations]
  for k, s in enumerate(stations):
    if s in (s1, s2):
      radius[k] *= 1.0 + joint_bulge
  cap = [(s3 - 0.55 * radius_tip, 0.84 * radius_tip), (s3 - 0.2 * radius_tip, 0.55 * radius_tip)]
  stations += [c[0] for c in cap]
  radius += [c[1] for c in cap]
  return np.asarray(stations), np.asarray(radius), s3


def _palm_ring(builder, x, half_width, half_height, center_z, size):
  center = np.array([x, 0.0, center_z])
  angles = np.arange(size) * 360.0 / size
  points = ellipse_ring(center, (-1, 0, 0), (0, 1, 0), half_width, half_height, angles, 0.6)
  return builder.add(points, PALM, 0.0, center), angles, center


def build_right_hand(transition_ring_size: int):
  """Builds the rest-pose right hand.

  Args:
    transition_ring_size: number of vertices of the palm ring that joins the regular
      palm rings to the finger bases (tuned so that the total is 778 vertices).

  Returns:
    (builder, joints [16, 3], tips dict name -> vertex id, joint_rings dict joint ->
    vertex ids whose centroid is the joint (None for the thumb CMC)).
  """
  b = MeshBuilder()
  joints = np.zeros((constants.NUM_JOINTS, 3))
  joint_rings: Dict[int, np.ndarray] = {}
  tips: Dict[str, int] = {}

  # Palm: wrist opening, regular rings (the thumb hole is cut into them), transition.
  rings = [_palm_ring(b, x, w, h, cz, WRIST_RING_SIZE if k == 0 else PALM_RING_SIZE)
           for k, (x, w, h, cz) in enumerate(PALM_RINGS[:4])]
  joints[0] = rings[1][2]
  joint_rings[0] = rings[1][0]
  x, w, h, cz = PALM_RINGS[4]
  transition = _palm_ring(b, x, w, h, cz, transition_ring_size)
  b.zip_rings(rings[0][0], rings[0][1], rings[1][0], rings[1][1])
  c0, c1 = THUMB_PATCH_COLUMNS
  r0, r1 = THUMB_PATCH_RINGS
  for k in range(1, 3):
    ring_a, ring_b = rings[k][0], rings[k + 1][0]
    for col in range(PALM_RING_SIZE):
      if r0 <= k < r1 and c0 <= col < c1:
        continue  # the thumb grows out of this hole.
      nxt = (col + 1) % PALM_RING_SIZE
      b.faces.append((ring_a[col], ring_a[nxt], ring_b[col]))
      b.faces.append((ring_a[nxt], ring_b[nxt], ring_b[col]))
  b.zip_rings(rings[3][0], rings[3][1], transition[0], transition[1])

  # Knuckles and webs: the knuckle ring, centred on each MCP joint, and the web ring
  # further along are each every finger's loop, dorsal rows (radial to ulnar) then
  # palmar rows (ulnar to radial); the skin between them covers the proximal phalanges
  # together, and the fingers part at the web ring.
  half = FINGER_RING_SIZE // 2
  dorsal_angles = np.linspace(-60.0, 60.0, half)
  palmar_angles = 180.0 - dorsal_angles
  loop_angles = np.concatenate([dorsal_angles, palmar_angles[::-1]])

  def finger_loops(offset, scale):  # loops of palm skin, `offset` past the MCP joints
    dorsal, palmar, loops = [], [], {}
    for name in FINGER_ORDER:
      spec = FINGERS[name]
      direction = finger_direction(spec.fan_deg)
      center = np.asarray(spec.mcp) + offset * direction
      r = spec.radius[0] * scale
      d_ids = b.add(ellipse_ring(center, direction, (0, 1, 0), r, 0.85 * r, dorsal_angles),
                    PALM, offset, center)
      p_ids = b.add(ellipse_ring(center, direction, (0, 1, 0), r, 0.85 * r, palmar_angles),
                    PALM, offset, center)
      dorsal.append(d_ids)
      palmar.append(p_ids)
      loops[name] = np.concatenate([d_ids, p_ids[::-1]])
    ring = np.concatenate([np.concatenate(dorsal), np.concatenate(palmar)[::-1]])
    return ring, dorsal, palmar, loops

  knuckle, _, _, knuckle_loops = finger_loops(0.0, 1.15)
  points = np.asarray(b.points)
  b.zip_rings(transition[0], transition[1], knuckle,
              ring_angles(points[knuckle], transition[2], (-1, 0, 0), (0, 1, 0)))
  web, dorsal, palmar, web_loops = finger_loops(WEB_OFFSET, 1.06)
  for k in range(len(knuckle)):  # rings of equal size and order: a strip of quads.
    nxt = (k + 1) % len(knuckle)
    b.faces.append((knuckle[k], knuckle[nxt], web[k]))
    b.faces.append((knuckle[nxt], web[nxt], web[k]))
  for f in range(len(FINGER_ORDER) - 1):  # webs between neighbouring fingers.
    b.faces.append((dorsal[f][-1], dorsal[f + 1][0], palmar[f][-1]))
    b.faces.append((dorsal[f + 1][0], palmar[f + 1][0], palmar[f][-1]))

  # Fingers.
  ring_angles_uniform = -60.0 + np.arange(FINGER_RING_SIZE) * 360.0 / FINGER_RING_SIZE
  for name in FINGER_ORDER:
    spec = FINGERS[name]
    direction = finger_direction(spec.fan_deg)
    skeleton = finger_skeleton(spec)
    joints[list(FINGER_JOINTS[name])] = skeleton[:3]
    stations, radii, length = _tube_profile(spec.lengths, *spec.radius, WEB_OFFSET)
    joint_arcs = np.concatenate([[0.0], np.cumsum(spec.lengths)[:2]])
    previous, previous_angles = web_loops[name], loop_angles
    for s, r in zip(stations, radii):
      center = skeleton[0] + s * direction
      ids = b.add(ellipse_ring(center, direction, (0, 1, 0), r, 0.85 * r, ring_angles_uniform),
                  FINGER_REGIONS[name], s, center)
      b.zip_rings(previous, previous_angles, ids, ring_angles_uniform)
      for joint, joint_s in zip(FINGER_JOINTS[name][1:], joint_arcs[1:]):
        if np.isclose(s, joint_s):
          joint_rings[joint] = ids
      previous, previous_angles = ids, ring_angles_uniform
    joint_rings[FINGER_JOINTS[name][0]] = knuckle_loops[name]
    apex = b.add(skeleton[3] - 0.1 * spec.radius[1] * np.array([0, 1, 0]),
                 FINGER_REGIONS[name], length, skeleton[3])[0]
    b.cap(previous, apex)
    tips[name] = int(apex)

  _add_thumb(b, rings, joints, joint_rings, tips)
  return b, joints, tips, joint_rings


def _thumb_hole(b: MeshBuilder) -> np.ndarray:
  """The boundary loop of the thumb hole, oriented for the thumb tube (CCW outwards)."""
  directed = {}
  for face in b.faces:
    for k in range(3):
      directed[(face[k], face[(k + 1) % 3])] = True
  # Open edges of the palm so far: the wrist, the distal ring and the thumb hole.  The
  # hole's edges are those whose both ends lie in the regular palm rings.
  open_edges = [(u, v) for (u, v) in directed if (v, u) not in directed]
  hole_vertices = set()
  for k in range(THUMB_PATCH_RINGS[0], THUMB_PATCH_RINGS[1] + 1):
    start = WRIST_RING_SIZE + (k - 1) * PALM_RING_SIZE
    hole_vertices.update(range(start, start + PALM_RING_SIZE))
  hole = {u: v for (u, v) in open_edges if u in hole_vertices and v in hole_vertices}
  # The palm traverses the hole one way; the thumb must traverse it the other way.
  reverse = {v: u for u, v in hole.items()}
  loop = [next(iter(reverse))]
  while len(loop) < len(reverse):
    loop.append(reverse[loop[-1]])
  return np.asarray(loop)


def _add_thumb(b, palm_rings, joints, joint_rings, tips):
  loop = _thumb_hole(b)
  points = np.asarray(b.points)
  hole_center = points[loop].mean(axis=0)
  palm_axis_point = np.array([hole_center[0], 0.0, -0.003])
  outward = _unit(hole_center - palm_axis_point)
  cmc = hole_center - 0.010 * outward
  d1 = _unit(0.35 * outward + np.array([-0.8, 0.1, 0.35]))
  d2 = _unit(d1 + np.array([-0.25, -0.05, -0.12]))
  d3 = _unit(d2 + np.array([-0.20, -0.03, -0.10]))
  lengths = THUMB_LENGTHS
  mcp = cmc + lengths[0] * d1
  ip = mcp + lengths[1] * d2
  tip = ip + lengths[2] * d3
  joints[13], joints[14], joints[15] = cmc, mcp, ip
  nail_up = np.array([0.35, 0.55, 0.75])  # back of the thumb faces up and outwards.

  chain = [(0.0, cmc, d1), (lengths[0], mcp, d2), (lengths[0] + lengths[1], ip, d3)]

  def point_at(s):
    seg = 0 if s < lengths[0] else (1 if s < lengths[0] + lengths[1] else 2)
    s0, p0, d = chain[seg]
    return p0 + (s - s0) * d, d

  r_then, r_mcp, r_ip, r_tip = THUMB_RADIUS
  s_mcp, s_ip, s_tip = np.cumsum(lengths)
  stations = [(0.55 * s_mcp, r_then), (s_mcp, r_mcp), ((s_mcp + s_ip) / 2, (r_mcp + r_ip) / 2),
              (s_ip, r_ip), (s_ip + (s_tip - s_ip) / 3, r_ip * 0.97),
              (s_ip + 0.62 * (s_tip - s_ip), r_tip),
              (s_tip - 0.55 * r_tip, 0.84 * r_tip), (s_tip - 0.2 * r_tip, 0.55 * r_tip)]
  first_center, first_dir = point_at(stations[0][0])
  previous = loop
  previous_angles = ring_angles(points[loop], hole_center, first_dir, nail_up)
  angles = np.arange(FINGER_RING_SIZE) * 360.0 / FINGER_RING_SIZE
  for s, r in stations:
    center, direction = point_at(s)
    if np.isclose(s, s_mcp) or np.isclose(s, s_ip):
      direction = _unit(direction + point_at(s - 1e-3)[1])  # bisect the joint.
    ids = b.add(ellipse_ring(center, direction, nail_up, r, 0.9 * r, angles), THUMB, s, center)
    b.zip_rings(previous, previous_angles, ids, angles)
    if np.isclose(s, s_mcp):
      joint_rings[14] = ids
    if np.isclose(s, s_ip):
      joint_rings[15] = ids
    previous, previous_angles = ids, angles
  apex = b.add(tip, THUMB, s_tip, tip)[0]
  b.cap(previous, apex)
  tips["thumb"] = int(apex)
