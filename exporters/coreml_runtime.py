"""Runners for .mlpackage files: Apple's Core ML runtime on macOS, edgevt's MIL interpreter everywhere else.

Facts from coremltools 9.0 this module is built on (models/model.py, coremlpython/CoreMLPython.mm):
- `MLModel(path)` compiles the package (`compileModelAtURL`) and loads it. When Core ML cannot, coremltools only
  warns and keeps no proxy (`__proxy__` is None); `predict()` then fails with a plain Exception.
- `load_duration_in_nano_seconds` times only the load of the compiled model; `last_predict_duration_in_nano_seconds`
  times only Core ML's `predictionFromFeatures`, without coremltools' Python input checks.
- `MLModel.get_available_compute_devices()` lists what Core ML may use (macOS 14+); an Intel Mac has no Neural Engine.
"""

from __future__ import annotations

import importlib
import os
import platform
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

from edgevt.errors import RuntimeCannotLoad, RuntimeUnavailable, UsageError, first_line

ENGINE_ENV = "EDGEVT_COREML_ENGINE"  # "runtime" | "interpreter": force one engine (default: runtime where it exists)
DEVICE_NAMES = {"MLCPUComputeDevice": "CPU", "MLGPUComputeDevice": "GPU", "MLNeuralEngineComputeDevice": "ANE"}
MAC_ANE_NOTE = ("a Mac's Neural Engine is not an iPhone's (core count, clock, memory and the Core ML build differ): "
                "placement and latency measured on a Mac say little about an iPhone; measure there for phone numbers")
PREDICT_SOURCE = "Core ML's own predict time (MLModel.last_predict_duration_in_nano_seconds)"
TIMING_NOTE = ("Cold: compile = MLModel(...) wall time minus Core ML's load_duration_in_nano_seconds (compileModelAtURL "
               "and coremltools' spec read); load = load_duration_in_nano_seconds (an app that ships the compiled "
               ".mlmodelc pays only this). Warm: p50/p90/p99 are wall time around MLModel.predict, which includes "
               "coremltools' Python input checks; predict_only is Core ML's own time.")


def binding_error() -> str | None:
    """None if Core ML's runtime is reachable here (macOS, and coremltools' native binding imports), else why not."""
    if sys.platform != "darwin":
        return "needs macOS"
    try:
        importlib.import_module("coremltools.libcoremlpython")
    except Exception as exc:  # a wheel without the binding, or one built for another macOS or architecture
        return f"coremltools' Core ML binding (coremltools.libcoremlpython) does not import: {first_line(exc)}"
    return None


def runtime_available() -> bool:
    """Core ML's runtime runs the package here: its binding imports and EDGEVT_COREML_ENGINE does not force the interpreter."""
    return os.environ.get(ENGINE_ENV) != "interpreter" and binding_error() is None


def runtime_unavailable(needs: str) -> str | None:
    """Why Core ML's runtime is not used here, in a skip message ending with what needed it (None when it is used)."""
    if os.environ.get(ENGINE_ENV) == "interpreter":
        return f"{ENGINE_ENV}=interpreter forces the MIL interpreter: {needs} (unset it to use Core ML)"
    error = binding_error()
    if error is None:
        return None
    if error == "needs macOS":
        return f"needs macOS: {needs}"
    return f"{error}: {needs} (reinstall coremltools from its macOS wheel)"


def spec_targets(version: int) -> tuple[str, str | None]:
    """Specification version -> ('iOS18 / macOS15', '15'): the deployment targets and the macOS a Mac needs."""
    from coremltools.converters.mil._deployment_compatibility import AvailableTarget

    names = [name for name, member in AvailableTarget.__members__.items() if int(member) == version]
    ios = [n for n in names if n.startswith("iOS")]
    macos = [n for n in names if n.startswith("macOS")]
    if not macos:
        return f"specification version {version}, newer than coremltools knows", None
    return " / ".join(ios[:1] + macos[-1:]), macos[-1][len("macOS"):].replace("_", ".")


def _version(text: str) -> tuple:
    return tuple(int(p) for p in text.split(".") if p.isdigit())


def _framework_message(model, caught, version: int) -> str:
    """Core ML's own words: the RuntimeWarning coremltools turns the load error into, else why it did not try."""
    for warning in caught:
        text = str(warning.message)
        if "Underlying exception message was:" in text:
            return text.split("Underlying exception message was:", 1)[1].strip()
    error = getattr(model, "_framework_error", None)
    if error:
        return first_line(error)
    try:  # coremltools skips loading a spec newer than its binding supports, without a word
        from coremltools.models import model as model_module

        newest = model_module._MLModelProxy.maximum_supported_specification_version()
    except Exception:
        newest = None
    if newest is not None and version > newest:
        return f"coremltools' Core ML binding supports specification versions up to {newest}, so it did not try"
    return "Core ML gave no message"


def cannot_load(artifact: Path, version: int, message: str) -> RuntimeCannotLoad:
    targets, needed = spec_targets(version)
    running = platform.mac_ver()[0] or "unknown"
    if needed and running != "unknown" and _version(running) < _version(needed):
        why = f"its specification version {version} ({targets}) needs macOS {needed} or newer, and this Mac runs macOS {running}"
    else:
        why = f"specification version {version} ({targets}); this Mac runs macOS {running}"
    return RuntimeCannotLoad(
        f"Core ML cannot load {artifact.name}: {why}. Core ML said: {message}",
        f"check parity with the MIL interpreter instead: {ENGINE_ENV}=interpreter edgevt validate {artifact}; "
        "or export for this Mac with an older --option deployment_target (iOS16 runs on macOS 13)")


def load_mlmodel(artifact: Path, compute_units: str):
    """MLModel(...) with its failure made visible: (model, wall ms of compile + load)."""
    import coremltools as ct

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        try:
            model = ct.models.MLModel(str(artifact), compute_units=ct.ComputeUnit[compute_units])
        except Exception as exc:  # a package coremltools itself cannot read
            raise RuntimeCannotLoad(f"coremltools could not open {artifact}: {first_line(exc)}",
                                    f"check parity with the MIL interpreter: {ENGINE_ENV}=interpreter edgevt validate {artifact}") from exc
        wall_ms = (time.perf_counter() - t0) * 1e3
    if getattr(model, "__proxy__", None) is None:
        version = model.get_spec().specificationVersion
        raise cannot_load(artifact, version, _framework_message(model, caught, version))
    return model, wall_ms


def available_compute_devices() -> dict:
    """What Core ML may run on here (MLModel.get_available_compute_devices, macOS 14+)."""
    import coremltools as ct

    try:
        devices = list(ct.models.MLModel.get_available_compute_devices())
    except Exception as exc:  # before macOS 14 Core ML has no MLComputeDevice
        return {"status": "unknown", "reason": first_line(exc)}
    names = [DEVICE_NAMES.get(type(d).__name__, type(d).__name__) for d in devices]
    out: dict = {"status": "measured", "available": names, "neural_engine": "ANE" in names}
    for device in devices:
        if type(device).__name__ == "MLNeuralEngineComputeDevice":
            try:
                out["ane_cores"] = int(device.total_core_count)
            except Exception:  # the count is informational
                pass
    return out


def device_notes(compute_units: str, devices: dict) -> list[str]:
    notes = []
    if devices.get("neural_engine") is False and compute_units in ("ALL", "CPU_AND_NE"):
        usable = [d for d in devices.get("available", []) if d != "ANE" and (d != "GPU" or compute_units == "ALL")]
        where = " and ".join(usable) if len(usable) > 1 else "the CPU only"
        notes.append(f"this Mac has no Neural Engine (Core ML lists {', '.join(devices.get('available', [])) or 'nothing'}): "
                     f"{compute_units} runs on {where} here, so nothing in this report measures an ANE")
    notes.append(MAC_ANE_NOTE)
    return notes


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


def to_image(pixels: np.ndarray, name: str):
    """One 3xHxW sample of RGB pixels 0..255 (integer-valued floats) -> the PIL image Core ML takes, value for value."""
    from PIL import Image

    if pixels.ndim != 3 or pixels.shape[0] != 3:
        raise UsageError(f"image input {name!r} takes RGB pixels shaped 3xHxW per sample, got {tuple(pixels.shape)}")
    bad = ~np.isfinite(pixels) | (pixels < 0) | (pixels > 255) | (pixels != np.round(pixels))
    if bad.any():
        raise UsageError(f"image input {name!r} takes RGB pixels 0..255 as whole numbers: {int(bad.sum())} of {pixels.size} "
                         f"values are not (e.g. {float(pixels[bad][0])!r}; range {float(np.nanmin(pixels)):.4g}..{float(np.nanmax(pixels)):.4g})",
                         "feed the resized RGB pixels an app feeds the model, not normalised tensors; edgevt does not round "
                         "or clip them, since that would change what is compared")
    return Image.fromarray(np.ascontiguousarray(pixels.transpose(1, 2, 0)).astype(np.uint8), "RGB")


class CoreMLRuntimeRunner:
    """MLModel.predict with one compute-unit setting; input and output names and kinds come from the model's spec."""

    threads_note = "Core ML schedules its own threads (--threads does not apply)"
    engine_ms_source = PREDICT_SOURCE

    def __init__(self, artifact: Path, compute_units: str):
        from coremltools.proto import FeatureTypes_pb2

        self.engine = f"coreml-runtime:{compute_units}"
        self.model, open_ms = load_mlmodel(artifact, compute_units)
        load_ns = self.model.load_duration_in_nano_seconds
        load_ms = load_ns / 1e6 if load_ns else None
        self.cold_details = {"open_ms": open_ms, "load_ms": load_ms if load_ms is not None else open_ms,
                             "compile_ms": open_ms - load_ms if load_ms is not None else None}
        description = self.model.get_spec().description
        first = description.input[0]
        self.input_name, self.input_kind = first.name, first.type.WhichOneof("Type")
        if self.input_kind == "imageType" and first.type.imageType.colorSpace != FeatureTypes_pb2.ImageFeatureType.RGB:
            space = FeatureTypes_pb2.ImageFeatureType.ColorSpace.Name(first.type.imageType.colorSpace)
            raise UsageError(f"{artifact.name}: image input {self.input_name!r} is {space}; edgevt feeds RGB images")
        self.output_names = [o.name for o in description.output]
        self.engine_ms: list[float] = []
        devices = available_compute_devices()
        self.notes = device_notes(compute_units, devices)
        self.runtime_info = {"name": f"Apple Core ML via coremltools MLModel.predict, compute units {compute_units}",
                             "compute_units": compute_units, "compute_devices": devices, "timing": TIMING_NOTE}

    def _predict(self, feeds: dict) -> tuple[dict, float | None]:
        out = self.model.predict(feeds)
        ns = self.model.last_predict_duration_in_nano_seconds
        return out, (ns / 1e6 if ns is not None else None)

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        if self.input_kind == "imageType":
            feeds = [{self.input_name: to_image(sample, self.input_name)} for sample in batch]
        else:
            feeds = [{self.input_name: np.ascontiguousarray(batch, dtype=np.float32)}]
        results, engine = zip(*(self._predict(f) for f in feeds))
        if all(ms is not None for ms in engine):
            self.engine_ms.append(float(sum(engine)))
        return {name: np.concatenate([np.asarray(r[name], dtype=np.float32) for r in results]) for name in self.output_names}


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
        error = binding_error()
        where = "exists only on macOS" if error == "needs macOS" else f"is not usable here: {error}"
        raise RuntimeUnavailable(f"the Core ML runtime was requested ({ENGINE_ENV}=runtime) but {where}", f"unset {ENGINE_ENV}")
    return MilInterpreterRunner(artifact, threads)


def summarize_placement(operations, usage_of, cost_of=None) -> dict:
    """Per-op device placement -> counts per device and the ops kept off the Neural Engine; with cost_of (Core ML's
    estimated share of the model's work per op) also the ANE's share of that cost, so a few heavy ops off the ANE show."""
    counts: Counter = Counter()
    off_ane: Counter = Counter()
    cost: Counter = Counter()
    off_cost: Counter = Counter()
    for op in operations:
        usage = usage_of(op)
        if usage is None or op.operator_name == "const":
            continue
        kind = type(usage.preferred_compute_device).__name__
        device = DEVICE_NAMES.get(kind, kind)
        counts[device] += 1
        weight = getattr(cost_of(op), "weight", None) if cost_of else None
        if weight is not None:
            cost[device] += float(weight)
        if device != "ANE":
            off_ane[f"{op.operator_name} -> {device}"] += 1
            off_cost[f"{op.operator_name} -> {device}"] += float(weight or 0.0)
    total = sum(counts.values())
    summary = {"ops": total, "by_device": dict(counts), "ane_share": counts["ANE"] / total if total else None,
               "off_ane": dict(off_ane.most_common())}
    if cost_of is not None:
        total_cost = sum(cost.values())
        summary["cost_by_device"] = {k: round(v, 6) for k, v in cost.items()}
        summary["ane_cost_share"] = cost["ANE"] / total_cost if total_cost > 0 else None
        summary["off_ane_cost"] = {k: round(v, 6) for k, v in off_cost.most_common() if v > 0}
    return summary


def compute_plan(artifact: Path, compute_units: str | None = None) -> dict:
    """Where Core ML would run each op and its estimated cost (MLComputePlan, macOS 14.4+); 'skipped' with the reason elsewhere."""
    reason = runtime_unavailable("MLComputePlan is part of Apple's Core ML runtime")
    if reason:
        return {"status": "skipped", "reason": reason}
    import coremltools as ct
    from coremltools.models.compute_plan import MLComputePlan

    units = _compute_units(artifact, compute_units)
    devices = available_compute_devices()
    try:
        model, _ = load_mlmodel(artifact, units)
    except RuntimeCannotLoad as exc:
        return {"status": "skipped", "reason": exc.message, "compute_devices": devices}
    try:
        plan = MLComputePlan.load_from_path(path=model.get_compiled_model_path(), compute_units=ct.ComputeUnit[units])
        operations = plan.model_structure.program.functions["main"].block.operations
    except Exception as exc:  # before macOS 14.4 there is no compute plan
        return {"status": "skipped", "reason": f"MLComputePlan unavailable (macOS 14.4+): {first_line(exc)}", "compute_devices": devices}
    summary = summarize_placement(operations, plan.get_compute_device_usage_for_mlprogram_operation,
                                  plan.get_estimated_cost_for_mlprogram_operation)
    return {"status": "measured", "compute_units": units, "compute_devices": devices, **summary,
            "notes": device_notes(units, devices)}
