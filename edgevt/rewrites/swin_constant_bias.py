"""Input-independent attention terms computed once for the fixed input size and stored as one constant per layer:
Swin's relative position bias (a gather from its table), Swin V2's continuous-position-bias MLP and
clamp(logit_scale).exp(), and the shifted-window mask (which HF rebuilds from arange on every forward)."""

from edgevt.rewrites import register


@register("swin-constant-bias", "Swin/Swin V2 relative position bias, CPB-MLP, logit scale and shifted-window mask as constants",
          families=("swin", "swinv2"), default_targets=("onnx", "coreml", "tflite"))
def apply(module) -> int:
    from edgevt.rewrites._windows import window_layers

    layers = window_layers(module)
    for layer in layers:
        layer.attention.make_constant(layer.mask_now())
    return len(layers)
