"""Export targets, one module each. Installed as `edgevt.exporters` (see pyproject's package-dir)."""

from __future__ import annotations

import difflib
import importlib
import importlib.util
from pathlib import Path

from edgevt.errors import RuntimeUnavailable, UsageError

# name -> module defining TARGET. Modules are imported only when a target is used.
_TARGET_MODULES = {
    "onnx": "edgevt.exporters.onnx",
    "coreml": "edgevt.exporters.coreml",
    "tflite": "edgevt.exporters.tflite",
}


def target_names() -> list[str]:
    return list(_TARGET_MODULES)


def get_target(name: str):
    if name not in _TARGET_MODULES:
        close = difflib.get_close_matches(name, list(_TARGET_MODULES), n=2)
        raise UsageError(
            f"unknown target {name!r}",
            f"did you mean {', '.join(close)}?" if close else f"targets: {', '.join(_TARGET_MODULES)}",
        )
    return importlib.import_module(_TARGET_MODULES[name]).TARGET


def missing_requirements(target) -> list[str]:
    return [m for m in target.requires if importlib.util.find_spec(m) is None]


def require(target) -> None:
    missing = missing_requirements(target)
    if missing:
        raise RuntimeUnavailable(f"target {target.name} needs {', '.join(missing)}, which is not installed", target.install_hint)


def target_for_artifact(path: Path):
    for name in _TARGET_MODULES:
        target = get_target(name)
        if path.name.endswith(target.suffix):
            return target
    raise UsageError(f"{path.name}: not an artifact edgevt knows (suffixes: {', '.join(get_target(n).suffix for n in _TARGET_MODULES)})")
