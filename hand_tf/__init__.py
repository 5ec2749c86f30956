"""hand-tf: self-supervised 3D hand reconstruction (S2HAND) in TensorFlow/Keras."""
