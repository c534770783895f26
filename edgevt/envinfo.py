"""The machine and library versions recorded with every number edgevt reports."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys

PACKAGES = ("torch", "transformers", "onnx", "onnxruntime", "onnxscript", "coremltools", "litert-torch", "ai-edge-litert", "numpy")


def package_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    if sys.platform == "darwin":  # platform.processor() says only "arm" or "i386" there
        try:
            brand = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            brand = ""
        if brand:
            return brand
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(threads: int | None = None) -> dict:
    from edgevt import __version__

    return {
        "edgevt": __version__,
        "host_cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "machine": platform.machine(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "threads": threads,
        "packages": {p: package_version(p) for p in PACKAGES if package_version(p)},
    }
