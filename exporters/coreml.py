"""Core ML target: torch.export -> coremltools mlprogram (.mlpackage), weight compression, and two runners.

On macOS the Core ML runtime runs the package (parity and latency, per compute unit). Everywhere else
edgevt's MIL reference interpreter runs it for parity, and latency reports "skipped: needs macOS".
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from edgevt.errors import ExportError, first_line
from edgevt.exporters.base import ExportResult, Option, Target
from edgevt.parity import Precision

COMPUTE_UNITS = ("ALL", "CPU_AND_NE", "CPU_ONLY", "CPU_AND_GPU")
DEPLOYMENT_TARGETS = ("iOS16", "iOS17", "iOS18", "macOS13", "macOS14", "macOS15")
META_PREFIX = "com.edgevt."
# The Core ML precisions: fp16 is what the Neural Engine computes in; the compressed ones store weights
# in fewer bits and still compute in fp16.
PRECISIONS = (Precision.FP16, Precision.FP32, Precision.INT8_WEIGHTS, Precision.PALETTIZE)

OPTIONS = {
    "compute_units": Option(str, "ALL", "compute units the model is meant for (stored in the model)", COMPUTE_UNITS),
    "deployment_target": Option(str, "iOS16", "minimum deployment target", DEPLOYMENT_TARGETS),
    "input_type": Option(str, "tensor", "tensor: the processor's normalised tensor; image: an RGB image input with the "
                         "checkpoint's rescale and normalisation inside the model", ("tensor", "image")),
    "flexible_batch": Option(bool, False, "batch axis 1..64 instead of fixed (pushes models off the Neural Engine)"),
    "palettize_bits": Option(int, 6, "palettize: bits per weight (k-means lookup table)", (1, 2, 3, 4, 6, 8)),
    "weight_threshold": Option(int, 2048, "int8/palettize: leave weights with fewer elements uncompressed", minimum=0),
}


def _convert(model, sample: np.ndarray, precision: Precision, options: dict, log):
    import torch

    import coremltools as ct

    module = model.module.eval()  # for an image input it already starts with the checkpoint's normalisation
    shape = tuple(sample.shape)
    log("tracing with torch.export")
    example = torch.from_numpy(sample)
    dynamic = None
    if options["flexible_batch"]:
        example = example.repeat(2, 1, 1, 1)  # an example batch of 1 would specialise the batch axis
        dynamic = ({0: torch.export.Dim("batch", min=1, max=64)},)
    with torch.no_grad():
        program = torch.export.export(module, (example,), dynamic_shapes=dynamic).run_decompositions({})
    batch = ct.RangeDim(1, 64, default=1, symbol="batch") if options["flexible_batch"] else shape[0]
    in_shape = ct.Shape((batch, *shape[1:])) if options["flexible_batch"] else shape
    if options["input_type"] == "image":
        inputs = [ct.ImageType(name=model.input_name, shape=in_shape, color_layout=ct.colorlayout.RGB)]
    else:
        inputs = [ct.TensorType(name=model.input_name, shape=in_shape, dtype=np.float32)]
    compute = ct.precision.FLOAT32 if precision is Precision.FP32 else ct.precision.FLOAT16
    log(f"converting to an mlprogram ({'fp32' if precision is Precision.FP32 else 'fp16'} compute, {options['deployment_target']})")
    return ct.convert(
        program,
        inputs=inputs,
        outputs=[ct.TensorType(name=name, dtype=np.float32) for name in model.output_names],
        convert_to="mlprogram",
        compute_precision=compute,
        compute_units=ct.ComputeUnit[options["compute_units"]],
        minimum_deployment_target=getattr(ct.target, options["deployment_target"]),
    )


def _compress(mlmodel, precision: Precision, options: dict, log):
    import coremltools.optimize.coreml as cto

    if precision is Precision.INT8_WEIGHTS:
        log("quantizing weights to int8 (linear, symmetric, per channel)")
        op = cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8", granularity="per_channel",
                                         weight_threshold=options["weight_threshold"])
        return cto.linear_quantize_weights(mlmodel, cto.OptimizationConfig(global_config=op)), {
            "weights": "int8 linear symmetric per channel", "compute": "fp16"}
    bits = options["palettize_bits"]
    log(f"palettizing weights ({bits}-bit k-means lookup tables)")
    op = cto.OpPalettizerConfig(mode="kmeans", nbits=bits, granularity="per_tensor", weight_threshold=options["weight_threshold"])
    return cto.palettize_weights(mlmodel, cto.OptimizationConfig(global_config=op)), {
        "weights": f"{bits}-bit k-means palette per tensor", "compute": "fp16"}


def _stamp(mlmodel, model, precision: Precision, options: dict) -> None:
    """What edgevt made: read back by the runners (compute units) and by users (the preprocessing the input expects)."""
    import json

    import edgevt
    from edgevt.preprocessing import describe

    meta = mlmodel.user_defined_metadata
    meta[META_PREFIX + "version"] = edgevt.__version__
    meta[META_PREFIX + "model"] = model.spec.name
    meta[META_PREFIX + "precision"] = precision.value
    meta[META_PREFIX + "compute_units"] = options["compute_units"]
    meta[META_PREFIX + "input_type"] = options["input_type"]
    meta[META_PREFIX + "preprocessing"] = json.dumps(describe(model.spec), sort_keys=True)
    mlmodel.short_description = f"{model.spec.name} ({precision.value}) exported by edgevt {edgevt.__version__}"


def export(model, samples, precision: Precision, options: dict, workdir: Path, log) -> ExportResult:
    from edgevt.mil.interpreter import load_program, quiet_coremltools
    from edgevt.mil.preflight import preflight

    t0 = time.perf_counter()
    details: dict = {"exporter": "torch.export -> coremltools", "format": "mlprogram", **{k: options[k] for k in
                     ("compute_units", "deployment_target", "input_type", "flexible_batch")}}
    # coremltools prints progress bars and notices: keep stdout clean for --json
    with quiet_coremltools(), contextlib.redirect_stdout(sys.stderr):
        import coremltools as ct

        details["coremltools"] = ct.__version__
        try:
            mlmodel = _convert(model, samples.batch[:1], precision, options, log)
            if precision in (Precision.INT8_WEIGHTS, Precision.PALETTIZE):
                mlmodel, details["compression"] = _compress(mlmodel, precision, options, log)
        except Exception as exc:
            raise ExportError(f"Core ML conversion of {model.spec.name} failed: {type(exc).__name__}: {first_line(exc)}",
                              "see the log above; `edgevt export ... --target onnx` shows whether the model itself traces") from exc
        _stamp(mlmodel, model, precision, options)
        out = workdir / "model.mlpackage"
        mlmodel.save(str(out))
    details["seconds"] = round(time.perf_counter() - t0, 3)
    _, program = load_program(out)
    details["ops"] = dict(Counter(op.op_type for op in program.functions["main"].operations if op.op_type != "const").most_common())
    details["ane_preflight"] = preflight(program).to_dict()
    return ExportResult(out, details)


def metadata(artifact: Path) -> dict:
    from edgevt.mil.interpreter import load_spec

    return spec_metadata(load_spec(artifact))


def spec_metadata(spec) -> dict:
    """edgevt's entries in a loaded model description's user-defined metadata, prefix stripped."""
    return {k[len(META_PREFIX):]: v for k, v in spec.description.metadata.userDefined.items() if k.startswith(META_PREFIX)}


def input_shape(artifact: Path) -> list:
    from edgevt.mil.interpreter import load_spec

    spec = load_spec(artifact)
    first = spec.description.input[0].type
    if first.WhichOneof("Type") == "imageType":
        return [1, 3, first.imageType.height, first.imageType.width]
    return list(first.multiArrayType.shape)


def input_name(artifact: Path) -> str:
    from edgevt.mil.interpreter import load_spec

    return load_spec(artifact).description.input[0].name


def _latency_unavailable() -> str | None:
    from edgevt.exporters.coreml_runtime import runtime_unavailable

    return runtime_unavailable("Core ML latency is measured by Apple's runtime only")


def _open_runner(artifact: Path, threads: int | None = None, compute_units: str | None = None):
    from edgevt.exporters.coreml_runtime import open_runner

    return open_runner(artifact, threads, compute_units)


def _diagnose(artifact: Path, sample: np.ndarray) -> dict:
    """Run the fp16 program with and without fp16 rounding and name the ops that add the most error."""
    from edgevt.exporters.coreml_runtime import MilInterpreterRunner
    from edgevt.mil.interpreter import fp16_divergence

    runner = MilInterpreterRunner(artifact)
    feeds = {runner.input_name: sample}
    return {"engine": "mil-interpreter (fp16 rounding on vs off)", **fp16_divergence(runner.program, feeds)}


TARGET = Target(
    name="coreml",
    suffix=".mlpackage",
    precisions=PRECISIONS,
    options=OPTIONS,
    requires=("coremltools",),
    install_hint="pip install coremltools (palettize also needs kmeans1d or scikit-learn)",
    export=export,
    open_runner=_open_runner,
    input_shape=input_shape,
    input_name=input_name,
    default_precision=Precision.FP16,
    latency_unavailable=_latency_unavailable,
    runner_options=("compute_units",),
    diagnose=_diagnose,
)
