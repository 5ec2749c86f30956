"""hand-tf: self-supervised 3D hand reconstruction (S2HAND) in TensorFlow/Keras.

`from hand_tf import HandReconstructor` (see `hand_tf.api`) is the Python API; it loads
lazily, so importing the package costs nothing and needs no TensorFlow.
"""

__all__ = ["Hand", "HandReconstructor", "draw_hands"]


def __getattr__(name):
  if name in __all__:
    from hand_tf import api
    return getattr(api, name)
  raise AttributeError(f"module 'hand_tf' has no attribute {name!r}")
