"""torch.roll -> two slices and a concat per axis (Core ML lowers roll to gather, which leaves the Neural Engine)."""

from edgevt.rewrites import register


@register("swin-shift-slices", "Swin/Swin V2 cyclic shift: torch.roll as slices + concat (no gather)",
          families=("swin", "swinv2"), default_targets=("coreml",))
def apply(module) -> int:
    from edgevt.rewrites._windows import window_layers

    layers = [layer for layer in window_layers(module) if layer.shift]
    for layer in layers:
        layer.shift_slices = True
    return len(layers)
