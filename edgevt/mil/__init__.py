"""Core ML MIL programs read back from .mlpackage files: a numpy reference interpreter and the ANE pre-flight."""
