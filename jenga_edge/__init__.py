"""JengaAI Edge runtime: scores security events with exported ONNX bundles.

This package is what runs on gateways. It depends on onnxruntime, numpy, pyyaml
and click only, and must never import torch (tests/jenga_edge/test_torch_free.py).
"""

__version__ = "0.2.0"
