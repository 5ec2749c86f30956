"""The OpenCV mesh drawing the overlays use: nearer faces over farther ones whatever
their order in the face list, back faces and faces behind the camera left out."""

import cv2
import numpy as np
import pytest
from scipy.spatial import ConvexHull
from scipy.spatial.transform import Rotation

from hand_tf import visualize
from hand_tf.camera import project

K = np.array([[100.0, 0.0, 50.0], [0.0, 100.0, 50.0], [0.0, 0.0, 1.0]])
RED, GREEN = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0)


def _triangle(z, half, colour, facing=True):
  """Three vertices of a triangle in the plane at depth z around the optical axis
  (covering the image centre), counter-clockwise seen from the camera if `facing`."""
  points = np.array([[-half, -half, z], [-half, 2 * half, z], [2 * half, -half, z]])
  return (points if facing else points[[0, 2, 1]]), np.tile(colour, (3, 1))


def _draw(*triangles, reverse=False):
  vertices = np.concatenate([t[0] for t in triangles])
  colours = np.concatenate([t[1] for t in triangles])
  faces = np.arange(len(vertices)).reshape(-1, 3)
  if reverse:
    faces = faces[::-1]
  image = np.zeros((100, 100, 3), np.uint8)
  return visualize.draw_mesh(image, vertices, faces, K, colours)


@pytest.mark.parametrize("reverse", [False, True])
def test_the_nearer_face_covers_the_farther_one_in_either_order(reverse):
  far, near = _triangle(2.0, 0.8, RED), _triangle(1.0, 0.05, GREEN)
  drawn = _draw(far, near, reverse=reverse)
  # Lit head-on (shade 0.35 + 0.65 cos of 24 degrees): 240.6 of 255.
  np.testing.assert_array_equal(drawn[50, 50], [0, 241, 0])  # both cover the centre
  np.testing.assert_array_equal(drawn[30, 30], [241, 0, 0])  # only the far one here
  np.testing.assert_array_equal(drawn[2, 2], [0, 0, 0])  # neither


def test_back_faces_and_faces_behind_the_camera_are_not_drawn():
  far = _triangle(2.0, 0.8, RED)
  np.testing.assert_array_equal(
      _draw(far, _triangle(1.0, 0.05, GREEN, facing=False))[50, 50], [241, 0, 0])
  for facing in (True, False):  # wound either way (the culling test alone lets one in)
    behind = _triangle(-1.0, 0.05, GREEN, facing)
    np.testing.assert_array_equal(_draw(far, behind)[50, 50], [241, 0, 0])
  assert not _draw(_triangle(2.0, 0.8, RED, facing=False)).any()


@pytest.mark.parametrize("shift", [0.0, 0.6, -0.8])
def test_a_translucent_mesh_blends_where_it_is_drawn_and_nowhere_else(shift):
  """Blending is cut to the mesh's box: it must cover the mesh even where the mesh
  leaves the image (shift: the triangle half out on the right or on the left)."""
  vertices, colours = _triangle(2.0, 0.4, GREEN)
  vertices = vertices + [shift, 0.0, 0.0]
  image = np.full((100, 100, 3), 100, np.uint8)
  opaque = visualize.draw_mesh(image, vertices, np.array([[0, 1, 2]]), K, colours)
  half = visualize.draw_mesh(image, vertices, np.array([[0, 1, 2]]), K, colours, alpha=0.5)
  covered = np.any(opaque != image, axis=-1)
  assert covered.sum() > 300
  expected = (opaque.astype(float) + image) / 2
  np.testing.assert_allclose(half[covered], expected[covered], atol=1)
  np.testing.assert_array_equal(half[~covered], image[~covered])


def test_hands_drawn_onto_one_copy_match_drawing_them_one_at_a_time():
  """draw_hands paints every hand onto a single copy of the frame: the frame itself is
  left as it was, and the second translucent hand blends over the first."""
  from hand_tf import reconstruct
  image = np.full((100, 100, 3), 100, np.uint8)
  before = image.copy()
  meshes = [_triangle(2.0, 0.4, GREEN), _triangle(1.5, 0.2, RED)]
  joints2d = np.random.default_rng(0).uniform(10, 90, (21, 2))
  hands = [reconstruct.Hand(vertices=v, faces=np.array([[0, 1, 2]]), joints3d=np.zeros((21, 3)),
                            joints2d=joints2d, vertex_colors=c, box=np.array([5, 5, 90, 90]),
                            intrinsics=K, outputs={}) for v, c in meshes]
  drawn = reconstruct.draw_hands(image, hands, alpha=0.6)
  np.testing.assert_array_equal(image, before)
  expected = image
  for v, c in meshes:  # the farther hand first
    expected = visualize.draw_mesh(expected, v, np.array([[0, 1, 2]]), K, c, alpha=0.6)
  on_mesh = np.all(visualize.draw_keypoints(np.zeros_like(image), joints2d, 1, 1) == 0, -1)
  on_mesh &= np.any(expected != image, axis=-1)  # drawn mesh, no keypoint or box over it
  assert on_mesh.sum() > 100
  np.testing.assert_array_equal(drawn[on_mesh], expected[on_mesh])


def _grid(n=4, z=2.0, half=0.8):
  """An n x n grid of squares (two triangles each) facing the camera, colours alternating."""
  xs = np.linspace(-half, half, n + 1)
  vertices = np.array([[x, y, z] for y in xs for x in xs])
  faces, colours = [], []
  for row in range(n):
    for col in range(n):
      a = row * (n + 1) + col
      b, c, d = a + 1, a + n + 1, a + n + 2
      faces += [[a, c, b], [b, c, d]]  # counter-clockwise seen from the camera (y down)
  faces = np.array(faces)
  colours = np.where((np.arange(len(vertices)) % 2)[:, None], RED, GREEN)
  return vertices, faces, colours


def test_face_neighbours_pair_up_across_every_shared_edge():
  from mano_tf.synthetic import build_synthetic_mano
  faces = build_synthetic_mano().faces
  neighbours = visualize.face_neighbours(faces)
  assert (neighbours < 0).sum() == 16  # the wrist opening
  for f in range(len(faces)):
    for k in range(3):
      g = neighbours[f, k]
      if g >= 0:  # g has the same edge, the other way round, and f across it
        edge = {faces[f, k], faces[f, (k + 1) % 3]}
        (m,) = [m for m in range(3) if {faces[g, m], faces[g, (m + 1) % 3]} == edge]
        assert neighbours[g, m] == f


def _outline(drawn):
  """The drawn pixels with an undrawn one among their 8 neighbours."""
  covered = drawn.any(axis=-1).astype(np.uint8)
  return covered.astype(bool) & ~cv2.erode(covered, np.ones((3, 3), np.uint8)).astype(bool)


def test_the_outline_is_antialiased_and_the_inside_is_not():
  """Only the mesh's outline blends into the background; inside, faces meet crisply
  (antialiasing costs OpenCV ~40% more a face and would only blur the facets)."""
  vertices, faces, colours = _grid(6)  # squares of 13.3 px from 10 to 90 px
  drawn = visualize.draw_mesh(np.zeros((100, 100, 3), np.uint8), vertices, faces, K, colours)
  centroids = np.rint(project(vertices[faces].mean(axis=1), K)).astype(int)
  face_colours = {tuple(drawn[y, x]) for x, y in centroids}
  assert len(face_colours) >= 2
  # The faces of the inner 4 x 4 squares (from 23.3 to 76.7 px) touch no outline.
  inside = np.s_[26:75, 26:75]
  assert {tuple(p) for p in drawn[inside].reshape(-1, 3)} <= face_colours  # no blends
  outline = drawn[_outline(drawn)].max(axis=-1)
  assert np.sum((outline > 0) & (outline < 0.6 * max(max(c) for c in face_colours))) > 20
  # A closed mesh has no open edge: its outline is where faces meet culled ones.
  corners = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], float)
  turn = Rotation.from_euler("xy", [35, 40], degrees=True)
  cube = turn.apply(0.5 * corners) + [0.0, 0.0, 3.0]
  faces = ConvexHull(cube).simplices
  normals = np.cross(cube[faces[:, 1]] - cube[faces[:, 0]], cube[faces[:, 2]] - cube[faces[:, 0]])
  inward = np.sum(normals * (cube[faces].mean(axis=1) - cube.mean(axis=0)), axis=1) < 0
  faces[inward] = faces[inward][:, ::-1]
  drawn = visualize.draw_mesh(np.zeros((100, 100, 3), np.uint8), cube, faces, K)
  lit = np.median(drawn[drawn.any(axis=-1)].max(axis=-1))
  assert np.sum(drawn[_outline(drawn)].max(axis=-1) < 0.5 * lit) > 20


def test_tiles_fill_rows_left_to_right_and_the_last_row_with_blank_tiles():
  tiles = [np.full((2, 3, 3), k, np.uint8) for k in range(5)]
  grid = visualize.tile_grid(tiles, columns=2)
  assert grid.shape == (6, 6, 3)
  np.testing.assert_array_equal(grid[::2, ::3, 0], [[0, 1], [2, 3], [4, 255]])
