"""Swin / Swin V2 cyclic shift + window partition as one gather of tokens, and window reverse + unshift as another.

HF shifts with torch.roll, pads (by zero rows, a copy) and partitions through a rank-6 transpose; on ONNX Runtime each
is a separate copy of the activations, and the 6-D transpose takes its slow general path. A gather along the token axis
with the order computed once for the fixed grid is one row copy. Not for Core ML (gather leaves the Neural Engine) or
TFLite (XNNPACK does not take GATHER)."""

from edgevt.rewrites import register


@register("swin-window-gather", "Swin/Swin V2 shift + window partition (and reverse + unshift) as one token gather each",
          families=("swin", "swinv2"), targets=("onnx",), default_targets=("onnx",))
def apply(module) -> int:
    from edgevt.rewrites._windows import window_layers

    layers = window_layers(module)
    for layer in layers:
        layer.use_gather()
    return len(layers)
