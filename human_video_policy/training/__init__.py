"""Offline training (torch): demonstrations, the default reach policy, ONNX export."""
