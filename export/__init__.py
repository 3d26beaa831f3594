"""jenga-export: trained best_model/ -> per-task ONNX graphs in a verifiable bundle."""
