"""On-device style demo: the exported .tflite on ai-edge-litert (see README.md here)."""
