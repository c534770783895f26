"""Runners for .mlpackage files: Apple's Core ML runtime on macOS, edgevt's MIL interpreter everywhere else."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from edgevt.errors import RuntimeUnavailable, UsageError, first_line

ENGINE_ENV = "EDGEVT_COREML_ENGINE"  # "runtime" | "interpreter": force one engine (default: runtime where it exists)
DEVICE_NAMES = {"MLCPUComputeDevice": "CPU", "MLGPUComputeDevice": "GPU", "MLNeuralEngineComputeDevice": "ANE"}


def runtime_available() -> bool:
    """Core ML's runtime ships with coremltools only on macOS (the libcoremlpython extension)."""
    if os.environ.get(ENGINE_ENV) == "interpreter":
        return False
    return sys.platform == "darwin" and importlib.util.find_spec("coremltools.libcoremlpython") is not None


class MilInterpreterRunner:
    """Parity off a Mac: the saved program, op by op in numpy, with fp16 storage emulated."""

    engine = "mil-interpreter"

    def __init__(self, artifact: Path, threads: int | None = None):
        from edgevt.exporters.coreml import spec_metadata
        from edgevt.mil.interpreter import Interpreter, load_program

        spec, self.program = load_program(artifact)
        self.meta = spec_metadata(spec)
        self.interpreter = Interpreter(self.program)
        self.input_name = next(iter(self.interpreter.inputs))

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        return self.interpreter.run({self.input_name: batch})


class CoreMLRuntimeRunner:
    """MLModel.predict on one compute-unit setting; loading (which compiles the model) is the cold start."""

    def __init__(self, artifact: Path, compute_units: str):
        import coremltools as ct

        from edgevt.exporters.coreml import metadata

        self.engine = f"coreml-runtime:{compute_units}"
        self.meta = metadata(artifact)
        try:
            self.model = ct.models.MLModel(str(artifact), compute_units=ct.ComputeUnit[compute_units])
        except Exception as exc:
            raise RuntimeUnavailable(f"Core ML could not load {artifact}: {first_line(exc)}",
                                     "check the deployment target against this macOS version") from exc

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        description = self.model.get_spec().description
        x = batch
        if description.input[0].type.WhichOneof("Type") == "imageType":
            from PIL import Image

            x = Image.fromarray(np.clip(np.rint(batch[0].transpose(1, 2, 0)), 0, 255).astype(np.uint8), "RGB")
        out = self.model.predict({description.input[0].name: x})
        return {o.name: np.asarray(out[o.name], dtype=np.float32) for o in description.output}


def _compute_units(artifact: Path, requested: str | None) -> str:
    from edgevt.exporters.coreml import COMPUTE_UNITS, metadata

    units = requested or metadata(artifact).get("compute_units", "ALL")
    if units not in COMPUTE_UNITS:
        raise UsageError(f"unknown compute units {units!r}", f"choose one of {', '.join(COMPUTE_UNITS)}")
    return units


def open_runner(artifact: Path, threads: int | None = None, compute_units: str | None = None):
    units = _compute_units(artifact, compute_units)
    if runtime_available():
        return CoreMLRuntimeRunner(artifact, units)
    if os.environ.get(ENGINE_ENV) == "runtime":
        raise RuntimeUnavailable("the Core ML runtime was requested but exists only on macOS", f"unset {ENGINE_ENV}")
    return MilInterpreterRunner(artifact, threads)


def summarize_placement(operations, usage_of) -> dict:
    """Per-op device placement -> counts per device and the ops kept off the Neural Engine."""
    counts: Counter = Counter()
    off_ane: Counter = Counter()
    for op in operations:
        usage = usage_of(op)
        if usage is None or op.operator_name == "const":
            continue
        device = DEVICE_NAMES.get(type(usage.preferred_compute_device).__name__, type(usage.preferred_compute_device).__name__)
        counts[device] += 1
        if device != "ANE":
            off_ane[f"{op.operator_name} -> {device}"] += 1
    total = sum(counts.values())
    return {"ops": total, "by_device": dict(counts), "ane_share": counts["ANE"] / total if total else None,
            "off_ane": dict(off_ane.most_common())}


def compute_plan(artifact: Path, compute_units: str | None = None) -> dict:
    """Where Core ML would run each op (MLComputePlan, macOS 14.4+); 'skipped' with the reason elsewhere."""
    if not runtime_available():
        return {"status": "skipped", "reason": "needs macOS: MLComputePlan is part of Apple's Core ML runtime"}
    import coremltools as ct
    from coremltools.models.compute_plan import MLComputePlan

    units = _compute_units(artifact, compute_units)
    try:
        model = ct.models.MLModel(str(artifact), compute_units=ct.ComputeUnit[units])
        plan = MLComputePlan.load_from_path(path=model.get_compiled_model_path(), compute_units=ct.ComputeUnit[units])
    except Exception as exc:  # older macOS: no compute plan API
        return {"status": "skipped", "reason": f"MLComputePlan unavailable: {first_line(exc)}"}
    operations = plan.model_structure.program.functions["main"].block.operations
    return {"status": "measured", "compute_units": units,
            **summarize_placement(operations, plan.get_compute_device_usage_for_mlprogram_operation)}
