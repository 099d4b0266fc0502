"""Deployment: what the cut buys, measured: execution forms (dense, CSR, 2:4 semi-structured),
latency and size, and export to ONNX and safetensors.

May import: ``deadwood.data``, ``deadwood.pruning``, ``deadwood.storage``, ``deadwood.device``,
``deadwood.errors``.
"""
