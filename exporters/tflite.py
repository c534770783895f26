"""TFLite/LiteRT target: litert-torch conversion, ai-edge-quantizer precisions, ai-edge-litert XNNPACK runner.

litert-torch is the maintained successor of the deprecated `ai-edge-torch` package; it needs no TensorFlow.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from edgevt.errors import ExportError, UsageError, first_line
from edgevt.exporters.base import ExportResult, Option, Target
from edgevt.parity import Precision

ENGINE = "ai-edge-litert-xnnpack"

OPTIONS = {
    "input_type": Option(str, "tensor", "tensor: the processor's normalised tensor; image: RGB pixels 0..255 with the checkpoint's "
                         "rescale and normalisation as the first ops", ("tensor", "image")),
    "channel_last": Option(bool, False, "NHWC image input (litert_torch.to_channel_last_io), as Android camera pipelines feed it"),
    "static_activations": Option(str, "int8", "int8-static: activation width (int16 keeps more accuracy, a16w8)", ("int8", "int16")),
    "static_ops": Option(str, "all", "int8-static: all = full integer; compute = only matmul/conv ops (LayerNorm, Softmax, "
                         "GELU, residual adds stay float)", ("all", "compute")),
}

# int8-static with static_ops=compute: the ops that carry the MACs.
COMPUTE_OPS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D", "BATCH_MATMUL")

# Ops whose weights ai-edge-quantizer's float casting (fp16 weights) supports.
FP16_WEIGHT_OPS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D")


@contextlib.contextmanager
def _quiet_converters():
    """litert-torch and ai-edge-quantizer print progress on stdout; keep stdout clean for --json."""
    saved = os.environ.get("LITERT_TORCH_SHOW_PROGRESS")
    os.environ["LITERT_TORCH_SHOW_PROGRESS"] = "n"
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        if saved is None:
            os.environ.pop("LITERT_TORCH_SHOW_PROGRESS", None)
        else:
            os.environ["LITERT_TORCH_SHOW_PROGRESS"] = saved


def _named(model, channel_last: bool):
    """Signature input named as the model's input (`pixel_values`, or `image` for an image-input model), outputs named
    as HF names them (litert-torch names a signature after the forward's keyword and the returned dict's keys)."""
    import litert_torch
    import torch

    inner = litert_torch.to_channel_last_io(model.module, args=[0]) if channel_last else model.module
    names = tuple(model.output_names)

    def named(out):
        return dict(zip(names, out if isinstance(out, (tuple, list)) else (out,)))

    if model.input_name == "image":

        class Named(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.inner = inner

            def forward(self, image):
                return named(self.inner(image))

    else:

        class Named(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.inner = inner

            def forward(self, pixel_values):
                return named(self.inner(pixel_values))

    return Named().eval()


def convert_fp32(model, sample: np.ndarray, channel_last: bool, path: Path) -> None:
    import litert_torch
    import torch

    x = torch.from_numpy(np.ascontiguousarray(sample.transpose(0, 2, 3, 1) if channel_last else sample))
    with _quiet_converters(), torch.no_grad():
        edge = litert_torch.convert(_named(model, channel_last), sample_kwargs={model.input_name: x})
        edge.export(str(path))


def _fp16_weights(src: Path, dst: Path) -> dict:
    from ai_edge_quantizer import quantizer, qtyping

    q = quantizer.Quantizer(str(src))
    config = qtyping.OpQuantizationConfig(
        weight_tensor_config=qtyping.TensorQuantizationConfig(num_bits=16, dtype=qtyping.TensorDataType.FLOAT),
        compute_precision=qtyping.ComputePrecision.FLOAT,
        explicit_dequantize=True,
    )
    for op in FP16_WEIGHT_OPS:
        q.update_quantization_recipe(regex=".*", operation_name=qtyping.TFLOperationName(op),
                                     algorithm_key=quantizer.AlgorithmName.FLOAT_CASTING, op_config=config)
    q.quantize(enable_progress_bar=False).export_model(str(dst), overwrite=True)
    return {"tool": "ai-edge-quantizer", "algorithm": "float_casting", "weights": f"float16 ({', '.join(FP16_WEIGHT_OPS)})",
            "compute": "float32 (weights dequantized at load; XNNPACK folds the DEQUANTIZE)"}


def _int8_dynamic(src: Path, dst: Path) -> dict:
    from ai_edge_quantizer import quantizer, recipe

    q = quantizer.Quantizer(str(src), recipe.dynamic_wi8_afp32())
    q.quantize(enable_progress_bar=False).export_model(str(dst), overwrite=True)
    return {"tool": "ai-edge-quantizer", "recipe": "dynamic_wi8_afp32", "weights": "int8 per-channel",
            "activations": "float32 (quantized on the fly by the kernels)"}


def _static_recipe(bits: int, scope: str):
    from ai_edge_quantizer import qtyping, recipe_manager

    manager = recipe_manager.RecipeManager()
    for op in ("ALL_SUPPORTED",) if scope == "all" else COMPUTE_OPS:
        manager.add_static_config(regex=".*", operation_name=qtyping.TFLOperationName[op], activation_num_bits=bits, weight_num_bits=8)
    return manager.get_quantization_recipe()


def _calibrate_minmax(q, batches: list[np.ndarray], input_name: str) -> dict:
    """Global min/max over all photos. ai-edge-quantizer's own calibrate() merges samples with a 0.95 moving
    average, so with a handful of photos the first one sets every range and the others clip."""
    merged: dict = {}
    for batch in batches:
        stats = q.calibrate({"serving_default": [{input_name: batch}]}, num_threads=os.cpu_count() or 1)
        for tensor, qsv in stats.items():
            if tensor not in merged or not qsv:
                merged[tensor] = dict(qsv)
            elif "min" in qsv and "max" in qsv:
                merged[tensor]["min"] = np.minimum(merged[tensor]["min"], qsv["min"])
                merged[tensor]["max"] = np.maximum(merged[tensor]["max"], qsv["max"])
    return merged


def _int8_static(src: Path, dst: Path, calib: np.ndarray, input_name: str, options: dict, log) -> dict:
    from ai_edge_quantizer import quantizer

    bits = 16 if options["static_activations"] == "int16" else 8
    q = quantizer.Quantizer(str(src), _static_recipe(bits, options["static_ops"]))
    log(f"calibrating int{bits} activations on {len(calib)} photos")
    nhwc = options["channel_last"]
    batches = [np.ascontiguousarray(calib[i : i + 1].transpose(0, 2, 3, 1) if nhwc else calib[i : i + 1]) for i in range(len(calib))]
    q.quantize(_calibrate_minmax(q, batches, input_name), enable_progress_bar=False).export_model(str(dst), overwrite=True)
    ops = "all supported ops (full integer)" if options["static_ops"] == "all" else ", ".join(COMPUTE_OPS)
    return {"tool": "ai-edge-quantizer", "recipe": f"static_wi8_ai{bits}", "quantized_ops": ops, "weights": "int8 per-channel",
            "activations": f"int{bits} (min/max calibration)", "calibration": {"method": "global min/max per tensor", "samples": int(len(calib))}}


def export(model, samples, precision: Precision, options: dict, workdir: Path, log) -> ExportResult:
    import litert_torch

    if precision not in TARGET.precisions:  # never let another precision fall through to a recipe it did not ask for
        raise UsageError(f"target tflite does not support {precision.value}", f"tflite makes {', '.join(p.value for p in TARGET.precisions)}")
    fp32 = workdir / "fp32.tflite"
    t0 = time.perf_counter()
    layout = "NHWC" if options["channel_last"] else "NCHW"
    log(f"converting with litert-torch {litert_torch.__version__} ({layout} input)")
    try:
        convert_fp32(model, samples.batch[:1], options["channel_last"], fp32)
    except Exception as exc:  # a converter error: report it with its first line
        raise ExportError(f"litert-torch conversion of {model.spec.name} failed: {type(exc).__name__}: {first_line(exc)}",
                          "run with the onnx target to see whether the model exports at all, or report the op named above") from exc
    details: dict = {"converter": f"litert-torch {litert_torch.__version__}", "layout": layout}
    out = fp32
    if precision is not Precision.FP32:
        out = workdir / f"{precision.value}.tflite"
        log(f"converting to {precision.value} with ai-edge-quantizer")
        try:
            with _quiet_converters():
                if precision is Precision.FP16:
                    details["quantization"] = _fp16_weights(fp32, out)
                elif precision is Precision.INT8_DYNAMIC:
                    details["quantization"] = _int8_dynamic(fp32, out)
                else:
                    details["quantization"] = _int8_static(fp32, out, samples.calibration_batch(), model.input_name, options, log)
        except Exception as exc:
            raise ExportError(f"ai-edge-quantizer could not make {precision.value} of {model.spec.name}: "
                              f"{type(exc).__name__}: {first_line(exc)}", "try another precision") from exc
    details["seconds"] = round(time.perf_counter() - t0, 3)
    details.update(graph_summary(out))
    return ExportResult(out, details)


def _interpreter(artifact: Path, threads: int | None, xnnpack: bool = True):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    try:
        interp = Interpreter(model_path=str(artifact), num_threads=threads or os.cpu_count() or 1, experimental_op_resolver_type=resolver)
        interp.allocate_tensors()  # the default XNNPACK delegate is applied here
    except (ValueError, RuntimeError) as exc:
        raise ExportError(f"ai-edge-litert cannot load {artifact}: {first_line(exc)}",
                          "is it a complete .tflite file? re-export it with `edgevt export`") from exc
    return interp


def xnnpack_delegation(interp) -> dict:
    """Which nodes the XNNPACK delegate took. The interpreter lists the original nodes plus one DELEGATE node per
    partition, whose inputs/outputs are the partition's boundary: walking back from its outputs to its inputs finds
    the nodes it replaced. Everything else runs on TFLite's built-in CPU kernels."""
    ops = interp._get_ops_details()  # experimental API of ai-edge-litert 2.x
    delegates = [op for op in ops if op["op_name"] == "DELEGATE"]
    originals = {op["index"]: op for op in ops if op["op_name"] != "DELEGATE"}
    producer = {int(t): idx for idx, op in originals.items() for t in op["outputs"]}
    taken: set[int] = set()
    for d in delegates:
        boundary = {int(t) for t in d["inputs"]}
        stack = [int(t) for t in d["outputs"]]
        while stack:
            node = producer.get(stack.pop())
            if node is None or node in taken:
                continue
            taken.add(node)
            stack.extend(int(t) for t in originals[node]["inputs"] if int(t) >= 0 and int(t) not in boundary)
    left = Counter(op["op_name"] for idx, op in originals.items() if idx not in taken)
    return {"nodes_total": len(originals), "nodes_delegated": len(taken), "partitions": len(delegates),
            "not_delegated": dict(left.most_common()), "method": "interpreter._get_ops_details(): DELEGATE node boundaries"}


def graph_summary(artifact: Path) -> dict:
    """Op histogram of the flatbuffer, how many ops compute in integers, and what XNNPACK takes."""
    plain = _interpreter(artifact, 1, xnnpack=False)
    ops = plain._get_ops_details()
    integer = sum(1 for op in ops if op["result_types"] and np.issubdtype(op["result_types"][0], np.integer)
                  and op["op_name"] not in ("RESHAPE", "TRANSPOSE"))
    return {
        "ops": dict(Counter(op["op_name"] for op in ops).most_common()),
        "integer_ops": integer,
        "xnnpack": xnnpack_delegation(_interpreter(artifact, 1)),
    }


def _layout_nhwc(shape) -> bool:
    return len(shape) == 4 and shape[3] in (1, 3) and shape[1] not in (1, 3)


class LiteRTRunner:
    """ai-edge-litert's interpreter with the default XNNPACK delegate; takes N x C x H x W like every runner."""

    engine = ENGINE

    def __init__(self, artifact: Path, threads: int | None = None):
        self.name = Path(artifact).name
        self.interp = _interpreter(artifact, threads)
        self.input = self.interp.get_input_details()[0]
        self.nhwc = _layout_nhwc(list(self.input["shape"]))
        by_index = {d["index"]: d for d in self.interp.get_output_details()}
        named = _signature(self.interp).get("outputs") or {}
        if named and set(named.values()) <= set(by_index):
            self.outputs = {name: by_index[index] for name, index in named.items()}
        else:  # a file from elsewhere: outputs in order, under their tensor names
            self.outputs = {d["name"]: d for d in by_index.values()}

    def _quantize_in(self, x: np.ndarray) -> np.ndarray:
        scale, zero = self.input["quantization"]
        if self.input["dtype"] == np.float32 or not scale:
            return x.astype(self.input["dtype"], copy=False)
        info = np.iinfo(self.input["dtype"])
        return np.clip(np.round(x / scale + zero), info.min, info.max).astype(self.input["dtype"])

    def _dequantize_out(self, detail: dict, y: np.ndarray) -> np.ndarray:
        scale, zero = detail["quantization"]
        return (y.astype(np.float32) - zero) * scale if detail["dtype"] != np.float32 and scale else y.astype(np.float32)

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        x = np.ascontiguousarray(batch.transpose(0, 2, 3, 1) if self.nhwc else batch, dtype=np.float32)
        self.interp.set_tensor(self.input["index"], self._quantize_in(x))
        try:
            self.interp.invoke()
        except RuntimeError as exc:  # a kernel refused the data, e.g. an int8 DIV by a zero-quantized divisor
            raise ExportError(f"ai-edge-litert failed to run {self.name}: {first_line(exc)}",
                              "for int8-static try --option static_ops=compute or --option static_activations=int16") from exc
        return {name: self._dequantize_out(d, self.interp.get_tensor(d["index"])) for name, d in self.outputs.items()}


def _signature(interp) -> dict:
    """{"inputs": {name: tensor index}, "outputs": {...}} of a file's only signature ({} when it has none or several)."""
    sigs = interp._get_full_signature_list()
    return next(iter(sigs.values())) if len(sigs) == 1 else {}


def input_name(artifact: Path) -> str:
    interp = _interpreter(artifact, 1, xnnpack=False)
    names = list((_signature(interp).get("inputs") or {}))
    return names[0] if len(names) == 1 else interp.get_input_details()[0]["name"]


def input_shape(artifact: Path) -> list:
    """The N x C x H x W shape a runner takes (an NHWC file is transposed by the runner)."""
    shape = [int(d) for d in _interpreter(artifact, 1, xnnpack=False).get_input_details()[0]["shape"]]
    return [shape[0], shape[3], shape[1], shape[2]] if _layout_nhwc(shape) else shape


TARGET = Target(
    name="tflite",
    suffix=".tflite",
    # What ai-edge-quantizer makes here; Core ML's int8-weights and palettize have no TFLite recipe in edgevt.
    precisions=(Precision.FP32, Precision.FP16, Precision.INT8_DYNAMIC, Precision.INT8_STATIC),
    options=OPTIONS,
    requires=("litert_torch", "ai_edge_litert", "ai_edge_quantizer"),
    install_hint="pip install litert-torch ai-edge-litert ai-edge-quantizer",
    export=export,
    open_runner=LiteRTRunner,
    input_shape=input_shape,
    input_name=input_name,
)
