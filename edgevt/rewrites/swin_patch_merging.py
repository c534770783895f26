"""Swin's 2x2 patch merging as a rank-4 reshape + transpose instead of four stride-2 slices and a concat."""

from edgevt.rewrites import register


@register("swin-patch-merging", "Swin/Swin V2 patch merging: reshape + transpose (weights permuted) instead of stride-2 slices",
          families=("swin", "swinv2"), default_targets=("coreml", "tflite"))
def apply(module) -> int:
    from edgevt.rewrites._merging import patch_mergings

    return len(patch_mergings(module))
