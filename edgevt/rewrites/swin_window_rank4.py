"""Window partition/reverse as rank-4 reshape + transpose (HF views rank 6; Core ML and QNN stop at rank 5)."""

from edgevt.rewrites import register


@register("swin-window-rank4", "Swin/Swin V2 window partition and reverse at rank 4 instead of rank 6",
          families=("swin", "swinv2"), default_targets=("tflite",))
def apply(module) -> int:
    from edgevt.rewrites._windows import window_layers

    layers = window_layers(module)
    for layer in layers:
        layer.rank4 = True
    return len(layers)
