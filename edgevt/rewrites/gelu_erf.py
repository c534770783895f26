"""Exact GELU written out as x * (erf(x / sqrt 2) + 1) * 0.5.

torch's ONNX exporter decomposes F.gelu into Div, Erf, Add, Mul(0.5, .), Mul(x, .): an order ONNX Runtime's Gelu
fusion does not match, so five kernels run where one would. Written in this order the artifact still holds only
standard opset-18 ops, and ONNX Runtime fuses each into its Gelu kernel when it loads the file."""

from edgevt.rewrites import register


@register("gelu-erf", "exact GELU written as x·(erf(x/√2)+1)·0.5, the order ONNX Runtime fuses into one Gelu kernel",
          families=("swiftformer", "swin", "swinv2", "cvt"), targets=("onnx",), default_targets=("onnx",))
def apply(module) -> int:
    from edgevt.rewrites._util import ErfGelu, named_of

    changed = 0
    for parent, attr, child in named_of(module, ("GELU", "GELUActivation")):
        if ErfGelu.replaces(child):
            setattr(parent, attr, ErfGelu())
            changed += 1
    return changed
