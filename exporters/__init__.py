"""Export targets, one module each. Installed as `edgevt.exporters` (see pyproject's package-dir)."""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import os
from pathlib import Path

from edgevt.errors import RuntimeUnavailable, UsageError

# name -> module defining TARGET. Modules are imported only when a target is used.
_TARGET_MODULES = {
    "onnx": "edgevt.exporters.onnx",
    "coreml": "edgevt.exporters.coreml",
    "tflite": "edgevt.exporters.tflite",
}


EXTRA_TARGETS_ENV = "EDGEVT_EXTRA_TARGETS"


def _modules() -> dict[str, str]:
    """The built-in targets, plus NAME=MODULE pairs (comma-separated) from $EDGEVT_EXTRA_TARGETS: a module
    defining TARGET, for a target that lives outside edgevt. Read on each call, so worker processes see it too."""
    extra = {}
    for item in filter(None, (p.strip() for p in os.environ.get(EXTRA_TARGETS_ENV, "").split(","))):
        name, sep, module = item.partition("=")
        name, module = name.strip(), module.strip()
        if not sep or not name or not all(part.isidentifier() for part in module.split(".")):
            raise UsageError(f"${EXTRA_TARGETS_ENV}: {item!r} is not NAME=MODULE (a dotted module name)",
                             "e.g. EDGEVT_EXTRA_TARGETS=mytarget=mypackage.target")
        extra[name] = module
    return {**_TARGET_MODULES, **extra}


def target_names() -> list[str]:
    return list(_modules())


def get_target(name: str):
    modules = _modules()
    if name not in modules:
        close = difflib.get_close_matches(name, list(modules), n=2)
        raise UsageError(
            f"unknown target {name!r}",
            f"did you mean {', '.join(close)}?" if close else f"targets: {', '.join(modules)}",
        )
    if name in _TARGET_MODULES and modules[name] == _TARGET_MODULES[name]:
        return importlib.import_module(modules[name]).TARGET
    return _extra_target(name, modules[name])


def _extra_target(name: str, module_name: str):
    """A target from $EDGEVT_EXTRA_TARGETS: a wrong module name or a module without a TARGET is the user's input to fix."""
    from edgevt.exporters.base import Target

    where = f"${EXTRA_TARGETS_ENV} names {name}={module_name}"
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:  # includes ModuleNotFoundError: a typo, or the module's own missing dependency
        raise UsageError(f"{where}, which cannot be imported: {exc}",
                         f"put the module on PYTHONPATH, or fix or unset {EXTRA_TARGETS_ENV}") from None
    except SyntaxError as exc:
        raise UsageError(f"{where}, which has a syntax error: {exc}", f"fix the module or unset {EXTRA_TARGETS_ENV}") from None
    target = getattr(module, "TARGET", None)
    if not isinstance(target, Target):
        raise UsageError(f"{where}, which defines no TARGET (an edgevt.exporters.base.Target)",
                         f"define TARGET in {module_name}, or fix or unset {EXTRA_TARGETS_ENV}")
    if target.name != name:
        raise UsageError(f"{where}, but that module's TARGET is named {target.name!r}",
                         f"name it {target.name}={module_name} in {EXTRA_TARGETS_ENV}")
    return target


def missing_requirements(target) -> list[str]:
    return [m for m in target.requires if importlib.util.find_spec(m) is None]


def require(target) -> None:
    missing = missing_requirements(target)
    if missing:
        raise RuntimeUnavailable(f"target {target.name} needs {', '.join(missing)}, which is not installed", target.install_hint)


def target_for_artifact(path: Path):
    for name in _modules():
        target = get_target(name)
        if path.name.endswith(target.suffix):
            return target
    raise UsageError(f"{path.name}: not an artifact edgevt knows (suffixes: {', '.join(get_target(n).suffix for n in _modules())})")


def artifact_input_kind(target, artifact: Path) -> str:
    """"image" if the artifact takes RGB pixels (its input is named `image`), else "tensor"."""
    from edgevt.preprocessing import IMAGE_INPUT

    return "image" if target.input_name(artifact) == IMAGE_INPUT else "tensor"
