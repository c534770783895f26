"""edgevt: export vision transformers to ONNX, Core ML and TFLite, and prove the exports still compute the same thing."""

__version__ = "0.1.0"
REPORT_SCHEMA_VERSION = 1
