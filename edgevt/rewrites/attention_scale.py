"""The softmax scale 1/sqrt(d) folded into the query projection's weights (Swin, CvT): the scores need no multiply.
(Swin V2's cosine attention scales after normalising, so there is nothing to fold.)"""

from edgevt.rewrites import register


@register("attention-scale-fold", "Swin, CvT: softmax scale folded into the query projection's weights",
          families=("swin", "cvt"), default_targets=("coreml",))
def apply(module) -> int:
    from edgevt.rewrites._cvt import cvt_attentions
    from edgevt.rewrites._windows import window_layers

    changed = 0
    for layer in window_layers(module):
        if layer.family == "swin":
            layer.attention.fold_scale()
            changed += 1
    for attention in cvt_attentions(module):
        attention.fold_scale()
        changed += 1
    return changed
