"""Swin V2 (Liu et al., CVPR 2022): cosine attention (F.normalize) and a continuous position-bias MLP."""

from edgevt.models.registry import Family, register, register_family, vit_processor

SWINV2 = register_family(
    Family(
        name="swinv2",
        model_type="swinv2",
        config_class="Swinv2Config",
        model_class="Swinv2ForImageClassification",
        backbone_class="Swinv2Model",
        processor="ViTImageProcessor",
        resample=3,
        sized_by_config=True,
        extra_classes=("Swinv2Backbone",),
    )
)
# microsoft/swinv2-*-256: ViTImageProcessor, warp to 256, bicubic (resample 3), ImageNet mean/std.
_PROCESSOR = vit_processor(256, resample=3)


def _variant(name, hf_id, embed_dim, depths, heads, params, gmacs):
    register(name, SWINV2, hf_id, _PROCESSOR,
             {"image_size": 256, "embed_dim": embed_dim, "depths": depths, "num_heads": heads, "window_size": 8},
             input_size=256, paper_params_m=params, paper_gmacs=gmacs)


_variant("swinv2-tiny", "microsoft/swinv2-tiny-patch4-window8-256", 96, [2, 2, 6, 2], [3, 6, 12, 24], 28, 5.9)
_variant("swinv2-small", "microsoft/swinv2-small-patch4-window8-256", 96, [2, 2, 18, 2], [3, 6, 12, 24], 50, 11.5)
_variant("swinv2-base", "microsoft/swinv2-base-patch4-window8-256", 128, [2, 2, 18, 2], [4, 8, 16, 32], 88, 20.3)
