"""Attention projections prepared at export time: Swin / Swin V2 q, k and v as one Linear (one GEMM instead of
three); Swin's and CvT's softmax scale folded into the query weights (one multiply less per attention)."""

from edgevt.rewrites import register


@register("fused-qkv", "q/k/v projections as one Linear (Swin, Swin V2); softmax scale folded into the query weights (Swin, CvT)",
          families=("swin", "swinv2", "cvt"), default_targets=())
def apply(module) -> int:
    from edgevt.rewrites._cvt import cvt_attentions
    from edgevt.rewrites._windows import window_layers

    changed = 0
    for layer in window_layers(module):
        layer.attention.fuse_qkv()
        changed += 1
    for attention in cvt_attentions(module):
        attention.fold_scale()
        changed += 1
    return changed
