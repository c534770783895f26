"""What a cell is expected to cost: the weight that balances shards, and the CPUs and memory a Ray task asks for.

Cost model (a cell's expected compute, in GMAC-equivalents):

    cost = (CELL_OVERHEAD_GMACS + model GMACs) × TARGET_FACTOR[target] × PRECISION_FACTOR[precision]

Fitted by eye to the committed 75-cell matrix (reports/matrix-all-variants), where a cell took about 8 s plus
1.3 s per GMAC on ONNX fp32: the overhead is the process start, imports, building the model and timing torch
eager, whatever the model's size. Core ML conversion (MIL passes, the interpreter for parity) costs about 1.6× an
ONNX export; dynamic int8 quantization 2–3× its float export (quantizing, then a slower parity run); static int8
calibrates on top. Unsupported cells do not run and cost nothing. The model's GMACs are the registry's published
figure (`paper_gmacs`); an unregistered model (an HF id or a local directory) is counted once with torch's
FlopCounterMode on a meta-device build, which allocates no weights and computes nothing.
"""

from __future__ import annotations

import functools
import json

from edgevt.matrix.plan import Cell

CELL_OVERHEAD_GMACS = 6.0
TARGET_FACTOR = {"onnx": 1.0, "tflite": 1.0, "coreml": 1.6}  # any other target: 1.0
PRECISION_FACTOR = {"int8-dynamic": 2.5, "int8-static": 3.0}  # any other precision: 1.0
FALLBACK_GMACS, FALLBACK_PARAMS_M = 5.0, 30.0  # a model that cannot be counted: about a swin-tiny

# Memory a cell's process needs: torch, transformers and a converter loaded (about 1 GiB measured), plus about
# 30 MiB per million parameters (weights, the traced graph, the artifact and a runtime session holding it).
BASE_MEMORY_MIB, MEMORY_MIB_PER_MPARAM = 1024, 30


def cell_cost(cell: Cell, spec) -> float:
    if cell.unsupported:
        return 0.0
    gmacs, _ = model_size(spec)
    return (CELL_OVERHEAD_GMACS + gmacs) * TARGET_FACTOR.get(cell.target, 1.0) * PRECISION_FACTOR.get(cell.precision, 1.0)


def model_size(spec) -> tuple[float, float]:
    """(GMACs, millions of parameters): published figures when the registry has them, else counted."""
    if spec.paper_gmacs is not None and spec.paper_params_m is not None:
        return float(spec.paper_gmacs), float(spec.paper_params_m)
    model_class = getattr(spec, "model_class", None) or spec.family.model_class  # a checkpoint's own class (e.g. a backbone)
    counted = _counted(spec.family.config_class, model_class, json.dumps(dict(spec.config), sort_keys=True, default=str),
                       tuple(spec.input_shape))
    gmacs = spec.paper_gmacs if spec.paper_gmacs is not None else counted[0]
    params = spec.paper_params_m if spec.paper_params_m is not None else counted[1]
    return float(gmacs), float(params)


@functools.lru_cache(maxsize=64)
def _counted(config_class: str, model_class: str, config_json: str, shape: tuple) -> tuple[float, float]:
    try:
        import torch
        import transformers
        from torch.utils.flop_counter import FlopCounterMode

        config = getattr(transformers, config_class)(**json.loads(config_json))
        with torch.device("meta"):
            module = getattr(transformers, model_class)(config).eval()
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            module(pixel_values=torch.zeros(shape, device="meta"))
        params = sum(p.numel() for p in module.parameters())
        return counter.get_total_flops() / 2 / 1e9, params / 1e6  # FlopCounterMode counts 2 FLOPs per MAC
    except Exception:  # noqa: BLE001 — a cost estimate must never stop a run; the fallback is documented above
        return FALLBACK_GMACS, FALLBACK_PARAMS_M


def cell_resources(spec, threads: int) -> dict:
    """What one cell asks a scheduler for: a CPU per runtime thread, and memory estimated from the model's size."""
    _, params_m = model_size(spec)
    return {"num_cpus": threads, "memory": int((BASE_MEMORY_MIB + MEMORY_MIB_PER_MPARAM * params_m) * 2**20)}
