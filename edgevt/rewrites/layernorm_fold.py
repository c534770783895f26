"""Swin's LayerNorm scale and shift folded into the Linear layers that read it: the q/k/v projections after
layernorm_before, fc1 after layernorm_after, and patch merging's reduction. The LayerNorms keep only their
normalisation, which saves a multiply and an add over the activations per LayerNorm where a converter lowers
LayerNorm to elementwise ops (TFLite). Swin V2 normalises after its attention and MLP, so nothing reads its
LayerNorms linearly; a window layer whose grid needs padding is left alone (HF pads after the norm, by zeros)."""

from edgevt.rewrites import register


@register("layernorm-fold", "Swin: LayerNorm scale and shift folded into the q/k/v, fc1 and patch-merging Linears",
          families=("swin",), default_targets=("tflite",))
def apply(module) -> int:
    from edgevt.rewrites._util import fold_layernorm_into, named_of
    from edgevt.rewrites._windows import window_layers

    changed = 0
    for layer in window_layers(module):
        hf, attention = layer.hf, layer.attention
        if layer.padded == layer.resolution:
            readers = [attention.qkv] if attention.qkv is not None else list(attention._linears()[:3])
            hf.layernorm_before = fold_layernorm_into(hf.layernorm_before, readers)
        hf.layernorm_after = fold_layernorm_into(hf.layernorm_after, [hf.mlp.fc1])
        changed += 1
    for _, _, merging in named_of(module, ("SwinPatchMerging", "PatchMerging")):  # HF's, or edgevt's (swin-patch-merging)
        if getattr(merging, "family", "swin") == "swin":
            merging.norm = fold_layernorm_into(merging.norm, [merging.reduction])
            changed += 1
    return changed
