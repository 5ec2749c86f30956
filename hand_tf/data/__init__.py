"""Hand data: readers (FreiHAND, HO-3D, folders), detections, synthetic data, tf.data."""
