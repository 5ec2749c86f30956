"""One notion of input: files, folders, globs, videos and cameras, with one-line errors."""

import cv2
import numpy as np
import pytest

from hand_tf import inputs
from hand_tf.io import InputError


@pytest.fixture
def photos(tmp_path):
  folder = tmp_path / "photos"
  folder.mkdir()
  for name, value in (("b.jpg", 10), ("a.png", 20), ("c.JPG", 30)):
    cv2.imwrite(str(folder / name), np.full((6, 8, 3), value, np.uint8))
  (folder / "notes.txt").write_text("not an image")
  return folder


def test_files_folders_and_globs_name_the_same_images(photos):
  every = [str(photos / n) for n in ("a.png", "b.jpg", "c.JPG")]
  assert inputs.image_paths([str(photos)]) == every  # a folder: its images, by name
  assert inputs.image_paths([str(photos / "*.jpg")]) == [str(photos / "b.jpg")]
  assert inputs.image_paths([str(photos / "c.JPG"), str(photos / "a.png")]) == [
      str(photos / "c.JPG"), str(photos / "a.png")]  # files: in the order given


def test_inputs_that_name_no_image_say_which(photos, tmp_path):
  (tmp_path / "empty").mkdir()
  for item, message in ((photos / "nope.jpg", "nope.jpg: image not found"),
                        (photos / "notes.txt", "notes.txt: not an image file"),
                        (tmp_path / "empty", "empty: no images in this folder"),
                        (photos / "*.gif", r"\*.gif: no images match")):
    with pytest.raises(InputError, match=message):
      inputs.image_paths([str(item)])
  with pytest.raises(InputError, match="camera:N with N its number"):
    list(inputs.frames(["camera:front"], 1))


def test_frames_read_images_and_videos_alike(photos, tmp_path):
  video = str(tmp_path / "clip.avi")
  writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"MJPG"), 12.0, (16, 12))
  for value in (0, 100, 200):
    writer.write(np.full((12, 16, 3), value, np.uint8))
  writer.release()
  read = list(inputs.frames([str(photos / "b.jpg"), video], max_frames=2))
  assert [(name, from_stream) for name, _, from_stream, _ in read] == [
      ("b", False), ("frame_00000", True), ("frame_00001", True)]
  assert read[1][1].shape == (12, 16, 3) and read[2][3] == pytest.approx(12.0)
  assert abs(int(read[2][1].mean()) - 100) < 8  # the second frame, not the first again


def test_a_failed_command_leaves_no_empty_output_folder(tmp_path):
  from hand_tf.io import output_folder
  with pytest.raises(InputError):
    with output_folder(str(tmp_path / "new")):
      raise InputError("bad input")
  assert not (tmp_path / "new").exists()
  (tmp_path / "old").mkdir()  # a folder the user already had stays, even empty
  with pytest.raises(InputError):
    with output_folder(str(tmp_path / "old")):
      raise InputError("bad input")
  assert (tmp_path / "old").is_dir()
  with pytest.raises(InputError):  # results written before the failure stay
    with output_folder(str(tmp_path / "partial")) as folder:
      (tmp_path / "partial" / "a.obj").write_text("v 0 0 0")
      raise InputError(f"{folder}: second image unreadable")
  assert (tmp_path / "partial" / "a.obj").exists()


def test_images_are_read_as_rgb(tmp_path):
  """OpenCV decodes to BGR; everything downstream (network, detector, overlays) wants RGB."""
  from hand_tf.io import read_image
  bgr = np.zeros((20, 20, 3), np.uint8)
  bgr[..., 2] = 250  # red, in OpenCV's order
  for name in ("red.png", "red.jpg"):
    cv2.imwrite(str(tmp_path / name), bgr)
    pixel = read_image(tmp_path / name)[10, 10].astype(int)
    assert pixel[0] > 230 and pixel[1] < 20 and pixel[2] < 20, (name, pixel)
  assert read_image(tmp_path / "red.png", channels=1).shape == (20, 20, 1)
