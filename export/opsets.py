"""The ONNX opsets jenga-export writes, and the onnxruntime each needs (no heavy imports:
the CLI reads these before torch is loaded)."""

from __future__ import annotations

# Opset 18 by default, not 17: the dynamo exporter emits 18 natively and reaches 17
# only through onnx's version converter, which fails on the novelty head (see onnx_export.py).
SUPPORTED_OPSETS = range(18, 22)
DEFAULT_OPSET = 18
ORT_MIN_FOR_OPSET = {18: "1.14", 19: "1.16", 20: "1.17", 21: "1.18"}
