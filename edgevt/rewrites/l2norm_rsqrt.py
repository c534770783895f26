"""F.normalize(x) as x * rsqrt(max(sum(x^2), eps^2)): the same function, in ops the Neural Engine runs
(the SwiftFormer authors dropped normalize for Core ML instead, which changes the model). With Swin V2's constants
(swin-constant-bias) its per-head logit scale rides on q's normalising factor instead of a pass over the scores; on
ONNX Runtime and XNNPACK that made swinv2-tiny a few percent faster, and it is neutral on SwiftFormer."""

from edgevt.rewrites import register


@register("l2norm-rsqrt", "F.normalize as x * rsqrt(max(sum(x^2), eps^2)) (SwiftFormer q/k, Swin V2 cosine attention)",
          families=("swiftformer", "swinv2"), default_targets=("onnx", "coreml", "tflite"))
def apply(module) -> int:
    from edgevt.rewrites._swiftformer import additive_attentions
    from edgevt.rewrites._windows import window_layers

    targets = additive_attentions(module) + [layer.attention for layer in window_layers(module) if layer.family == "swinv2"]
    for attention in targets:
        attention.rsqrt_normalize = True
    return len(targets)
