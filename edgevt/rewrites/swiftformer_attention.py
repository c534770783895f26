"""SwiftFormer's softmax over a size-1 axis (identically 1) folded into a sum, and .repeat (Tile) as broadcasting."""

from edgevt.rewrites import register


@register("swiftformer-attention", "SwiftFormer additive attention: size-1 softmax folded (it is 1), .repeat as broadcasting",
          families=("swiftformer",), default_targets=("onnx", "coreml", "tflite"))
def apply(module) -> int:
    from edgevt.rewrites._swiftformer import additive_attentions

    found = additive_attentions(module)
    for attention in found:
        attention.fold_softmax = True
    return len(found)
