"""Export of the S2HAND inference graph: SavedModel, TFLite (fp32/fp16/int8), ONNX."""
