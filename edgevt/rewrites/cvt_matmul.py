"""CvT's attention einsums as batched matmuls (what every converter maps einsum to anyway, without its pattern matching).

Not for TFLite: litert-torch lowers a batch-1 matmul of two activations to FULLY_CONNECTED with a non-constant
weight, which XNNPACK does not take (the einsum stays a BATCH_MATMUL there)."""

from edgevt.rewrites import register


@register("cvt-matmul", "CvT attention: einsum as batched matmul", families=("cvt",), targets=("onnx", "coreml"),
          default_targets=("onnx", "coreml"))
def apply(module) -> int:
    from edgevt.rewrites._cvt import cvt_attentions

    found = cvt_attentions(module)
    for attention in found:
        attention.matmul = True
    return len(found)
