"""Finding hands: MediaPipe's palm detector and landmark model run with LiteRT
(`mediapipe`), and the keypoint files detections are stored in (`keypoint_files`)."""
