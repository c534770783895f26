"""ONNX target: torch.onnx export (dynamo, falling back to TorchScript), onnxruntime quantization, ORT runner."""

from __future__ import annotations

import contextlib
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from edgevt.errors import ExportError, UsageError, first_line
from edgevt.exporters.base import ExportResult, Option, Target
from edgevt.parity import Precision

# Ops whose inputs onnxruntime's quantizer may turn int8. Everything else (LayerNorm, Softmax,
# ReduceL2/normalize, residual Adds, GELU) stays float: transformers lose accuracy there first.
QUANTIZED_OPS = ("Conv", "MatMul", "Gemm")

OPTIONS = {
    "input_type": Option(str, "tensor", "tensor: the processor's normalised tensor; image: RGB pixels 0..255 with the checkpoint's "
                         "rescale and normalisation as the first ops", ("tensor", "image")),
    "opset": Option(int, 18, "ONNX opset (>= 17)", minimum=17),
    "exporter": Option(str, "auto", "auto: dynamo, falling back to TorchScript", ("auto", "dynamo", "torchscript")),
    "dynamic_batch": Option(bool, False, "export a dynamic batch axis"),
    "calibration_method": Option(str, "minmax", "int8-static calibration", ("minmax", "entropy", "percentile")),
    "per_channel": Option(bool, True, "int8-static: per-channel weight scales"),
    "ort_fusions": Option(bool, False, "fp32: save ONNX Runtime's transformer-optimizer fusions (LayerNorm, SkipLayerNorm, "
                          "Gelu, attention) into the artifact as com.microsoft ops: ONNX Runtime only, any execution provider"),
}


def _torch_export(model, sample, path: Path, use_dynamo: bool, opset: int, dynamic_batch: bool) -> None:
    import torch

    name, outputs = model.input_name, list(model.output_names)
    kwargs = dict(input_names=[name], output_names=outputs, opset_version=opset, dynamo=use_dynamo)
    if use_dynamo:
        kwargs.update(verbose=False, external_data=False)
        if dynamic_batch:
            kwargs["dynamic_shapes"] = ({0: torch.export.Dim("batch", min=1, max=64)},)
    elif dynamic_batch:
        kwargs["dynamic_axes"] = {name: {0: "batch"}, **{n: {0: "batch"} for n in outputs}}
    # The exporters print progress on stdout; keep stdout clean for --json.
    with contextlib.redirect_stdout(sys.stderr), torch.no_grad():
        torch.onnx.export(model.module, (torch.from_numpy(sample),), str(path), **kwargs)


def export_fp32(model, sample: np.ndarray, options: dict, path: Path, log) -> dict:
    """Try the dynamo exporter, fall back to TorchScript; the details say which path ran and why."""
    import onnx

    order = {"auto": ["dynamo", "torchscript"], "dynamo": ["dynamo"], "torchscript": ["torchscript"]}[options["exporter"]]
    details: dict = {"exporter": None, "fallback_reason": None, "opset": options["opset"], "dynamic_batch": options["dynamic_batch"]}
    for name in order:
        log(f"exporting with the {name} exporter (opset {options['opset']})")
        try:
            _torch_export(model, sample, path, name == "dynamo", options["opset"], options["dynamic_batch"])
            details["exporter"] = name
            break
        except Exception as exc:  # a converter error: try the next path or report
            reason = f"{type(exc).__name__}: {first_line(exc)}"
            if name == order[-1]:
                raise ExportError(f"ONNX export of {model.spec.name} failed ({name}): {reason}",
                                  "try --option exporter=torchscript or another opset") from exc
            log(f"{name} exporter failed ({reason}); falling back")
            details["fallback_reason"] = reason
    try:
        onnx.checker.check_model(str(path), full_check=False)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"onnx.checker rejected the export: {first_line(exc)}") from exc
    return details


def _stamp(path: Path, model) -> None:
    """metadata_props an app can read: which model, and the preprocessing its input expects."""
    import json

    import onnx

    import edgevt
    from edgevt.preprocessing import describe

    proto = onnx.load(str(path))
    props = {"edgevt.version": edgevt.__version__, "edgevt.model": model.spec.name, "edgevt.input": model.input_name,
             "edgevt.preprocessing": json.dumps(describe(model.spec), sort_keys=True)}
    onnx.helper.set_model_props(proto, {**{p.key: p.value for p in proto.metadata_props}, **props})
    onnx.save(proto, str(path))


def ort_fusions(src: Path, dst: Path) -> dict:
    """ONNX Runtime's transformer optimizer, python fusion passes only (opt_level 0): the saved graph holds standard
    ops plus ORT contrib ops, none of ORT's hardware-specific offline optimisations (NCHWc layouts, CPU-only kernels),
    so any ONNX Runtime build and execution provider loads it; other ONNX runtimes do not know the contrib ops."""
    import logging

    from onnxruntime.transformers import optimizer

    logging.getLogger("onnxruntime.transformers").setLevel(logging.ERROR)
    with contextlib.redirect_stdout(sys.stderr):
        model = optimizer.optimize_model(str(src), model_type="swin", num_heads=0, hidden_size=0, opt_level=0)
        model.save_model_to_file(str(dst))
    fused = {op: n for op, n in model.get_fused_operator_statistics().items() if n}
    return {"tool": "onnxruntime.transformers.optimizer", "opt_level": 0, "fused": fused,
            "portability": "ONNX Runtime (any execution provider); com.microsoft contrib ops"}


def _op_histogram(path: Path) -> dict:
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return dict(Counter(node.op_type for node in graph.node).most_common())


def ops_at_load(path: Path) -> dict:
    """The op histogram of the graph ONNX Runtime runs: the artifact after the CPU session's own graph optimisations
    (constant folding, its Gelu/LayerNorm/MatMul fusions, layout changes), which is what decides the speed."""
    import tempfile

    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="edgevt-ort-") as tmp:
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.optimized_model_filepath = str(Path(tmp) / "loaded.onnx")
        opts.log_severity_level = 3
        try:
            ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            graph = onnx.load(opts.optimized_model_filepath, load_external_data=False).graph
        except Exception as exc:  # too large to save, or not loadable: the parity step reports the latter
            return {"error": f"{type(exc).__name__}: {first_line(exc)}"}
    return dict(Counter(node.op_type for node in graph.node).most_common())


def _to_fp16(src: Path, dst: Path) -> dict:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    onnx.save(model, str(dst))
    return {"io_types": "float32 (cast at the graph edges)"}


def _preprocessed(src: Path, workdir: Path, log) -> Path:
    """ORT's recommended pre-quantization pass (shape inference + optimisation); skipped if it fails."""
    from onnxruntime.quantization import quant_pre_process

    import onnx

    # The dynamo exporter annotates intermediate shapes; after ORT's fusions some of those annotations
    # go stale and the quantizer's shape inference rejects them. Start from an unannotated graph.
    bare = onnx.load(str(src))
    del bare.graph.value_info[:]
    bare_path = workdir / "bare.onnx"
    onnx.save(bare, str(bare_path))
    dst = workdir / "preprocessed.onnx"
    try:
        quant_pre_process(str(bare_path), str(dst), skip_symbolic_shape=True)
        return dst
    except Exception as exc:
        log(f"quantization pre-processing failed ({type(exc).__name__}); quantizing the raw export")
        return bare_path


def _int8_dynamic(src: Path, dst: Path, workdir: Path, log) -> dict:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    ops = ["MatMul", "Gemm"]  # ORT's CPU ConvInteger takes uint8 weights only; convs stay float
    quantize_dynamic(str(_preprocessed(src, workdir, log)), str(dst), weight_type=QuantType.QInt8, op_types_to_quantize=ops)
    return {"quantized_ops": ops, "weights": "int8", "activations": "float (quantized on the fly)"}


class _Calibration:
    """onnxruntime CalibrationDataReader over the calibration photos (pixels, for an image-input model)."""

    def __init__(self, batch: np.ndarray, input_name: str):
        self._it = iter([{input_name: batch[i : i + 1]} for i in range(len(batch))])

    def get_next(self):
        return next(self._it, None)


def _int8_static(src: Path, dst: Path, workdir: Path, calib: np.ndarray, input_name: str, options: dict, log) -> dict:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
              "percentile": CalibrationMethod.Percentile}[options["calibration_method"]]
    log(f"calibrating int8 activations on {len(calib)} photos ({options['calibration_method']})")
    quantize_static(
        str(_preprocessed(src, workdir, log)),
        str(dst),
        _Calibration(calib, input_name),
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=list(QUANTIZED_OPS),
        per_channel=options["per_channel"],
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=method,
        # Not CalibMaxIntermediateOutputs: onnxruntime 1.31 discards the batches it flushes.
    )
    return {"quantized_ops": list(QUANTIZED_OPS), "format": "QDQ", "weights": "int8 per-channel" if options["per_channel"] else "int8",
            "activations": "uint8", "calibration": {"method": options["calibration_method"], "samples": int(len(calib))}}


def export(model, samples, precision: Precision, options: dict, workdir: Path, log) -> ExportResult:
    fp32 = workdir / "fp32.onnx"
    t0 = time.perf_counter()
    if options["ort_fusions"] and precision is not Precision.FP32:
        raise UsageError(f"--option ort_fusions=true applies to fp32 exports, not {precision.value}",
                         "drop the option, or export fp32")
    details = export_fp32(model, samples.batch[:1], options, fp32, log)
    if precision is Precision.FP32 and options["ort_fusions"]:
        out = workdir / "fused.onnx"
        log("saving ONNX Runtime's transformer fusions into the artifact")
        details["ort_fusions"] = ort_fusions(fp32, out)
    elif precision is Precision.FP32:
        out = fp32
    else:
        out = workdir / f"{precision.value}.onnx"
        log(f"converting to {precision.value}")
        if precision is Precision.FP16:
            details["conversion"] = _to_fp16(fp32, out)
        elif precision is Precision.INT8_DYNAMIC:
            details["quantization"] = _int8_dynamic(fp32, out, workdir, log)
        else:
            details["quantization"] = _int8_static(fp32, out, workdir, samples.calibration_batch(), model.input_name, options, log)
    _stamp(out, model)
    details["seconds"] = round(time.perf_counter() - t0, 3)
    details["ops"] = _op_histogram(out)
    details["ops_at_load"] = ops_at_load(out)
    details["input"] = {"name": model.input_name, "outputs": list(model.output_names)}
    return ExportResult(out, details)


class OrtRunner:
    engine = "onnxruntime-cpu"

    def __init__(self, artifact: Path, threads: int | None = None):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.inter_op_num_threads = 1
        if threads:
            opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(artifact), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ExportError(f"onnxruntime cannot load {artifact}: {first_line(exc)}") from exc
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        values = self.session.run(self.output_names, {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)})
        return dict(zip(self.output_names, values))


def _first_input(artifact: Path):
    import onnx

    graph = onnx.load(str(artifact), load_external_data=False).graph
    initializers = {i.name for i in graph.initializer}
    return next(i for i in graph.input if i.name not in initializers)


def input_shape(artifact: Path) -> list:
    return [d.dim_value if d.HasField("dim_value") else d.dim_param for d in _first_input(artifact).type.tensor_type.shape.dim]


def input_name(artifact: Path) -> str:
    return _first_input(artifact).name


TARGET = Target(
    name="onnx",
    suffix=".onnx",
    precisions=(Precision.FP32, Precision.FP16, Precision.INT8_DYNAMIC, Precision.INT8_STATIC),
    options=OPTIONS,
    requires=("onnx", "onnxruntime", "onnxscript"),
    install_hint="pip install onnx onnxruntime onnxscript",
    export=export,
    open_runner=OrtRunner,
    input_shape=input_shape,
    input_name=input_name,
)
