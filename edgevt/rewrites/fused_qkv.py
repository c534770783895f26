"""Swin / Swin V2 q, k and v projections as one Linear: one GEMM instead of three (ONNX Runtime already fuses
them itself; measure before turning it on anywhere)."""

from edgevt.rewrites import register


@register("fused-qkv", "Swin/Swin V2: q, k and v projections as one Linear", families=("swin", "swinv2"), default_targets=("coreml",))
def apply(module) -> int:
    from edgevt.rewrites._windows import window_layers

    layers = window_layers(module)
    for layer in layers:
        layer.attention.fuse_qkv()
    return len(layers)
