"""mano_tf: the MANO hand model in TensorFlow, and a licence-free synthetic MANO hand.

`ManoLayer` and `get_mano_model` are imported lazily so that the NumPy-only parts
(`model_file`, `synthetic`) load without TensorFlow.
"""

from mano_tf.model_file import ManoModel, ManoModelError, load_mano_model, save_mano_model

__all__ = ["ManoLayer", "ManoModel", "ManoModelError", "get_mano_model", "load_mano_model",
           "save_mano_model"]


def __getattr__(name):
  if name in ("ManoLayer", "get_mano_model"):
    from mano_tf import layer
    return getattr(layer, name)
  raise AttributeError(f"module 'mano_tf' has no attribute {name!r}")
