"""A run outside training: an ONNX file (export; rnnkit.onnx runs it without torch) and an
HTTP service (serve)."""
