"""Swin Transformer (Liu et al., ICCV 2021): shifted windows, torch.roll, rank-6 window partition."""

from edgevt.models.registry import Family, register, register_family

SWIN = register_family(
    Family(
        name="swin",
        model_type="swin",
        config_class="SwinConfig",
        model_class="SwinForImageClassification",
        backbone_class="SwinModel",
        processor="ViTImageProcessor",
        resample=3,
        sized_by_config=True,
        extra_classes=("SwinBackbone",),
    )
)
# microsoft/swin-*-224: ViTFeatureExtractor, warp to 224, bicubic (resample 3), ImageNet mean/std.
_PROCESSOR = {"feature_extractor_type": "ViTFeatureExtractor", "do_resize": True, "size": 224, "resample": 3, "do_normalize": True,
              "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]}


def _variant(name, hf_id, embed_dim, depths, heads, params, gmacs):
    register(name, SWIN, hf_id, _PROCESSOR,
             {"image_size": 224, "embed_dim": embed_dim, "depths": depths, "num_heads": heads, "window_size": 7},
             input_size=224, paper_params_m=params, paper_gmacs=gmacs)


_variant("swin-tiny", "microsoft/swin-tiny-patch4-window7-224", 96, [2, 2, 6, 2], [3, 6, 12, 24], 28, 4.5)
_variant("swin-small", "microsoft/swin-small-patch4-window7-224", 96, [2, 2, 18, 2], [3, 6, 12, 24], 50, 8.7)
_variant("swin-base", "microsoft/swin-base-patch4-window7-224", 128, [2, 2, 18, 2], [4, 8, 16, 32], 88, 15.4)
