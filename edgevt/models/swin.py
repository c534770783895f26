"""Swin Transformer (Liu et al., ICCV 2021): shifted windows, torch.roll, rank-6 window partition."""

from edgevt.models.registry import Family, Preprocess, register, register_family

SWIN = register_family(
    Family(
        name="swin",
        model_type="swin",
        config_class="SwinConfig",
        model_class="SwinForImageClassification",
        processor="ViTImageProcessor",
    )
)
_PRE = Preprocess(size=224, resample="bicubic")


def _variant(name, hf_id, embed_dim, depths, heads, params, gmacs):
    register(
        name,
        SWIN,
        hf_id,
        _PRE,
        {"embed_dim": embed_dim, "depths": depths, "num_heads": heads, "window_size": 7},
        paper_params_m=params,
        paper_gmacs=gmacs,
    )


_variant("swin-tiny", "microsoft/swin-tiny-patch4-window7-224", 96, [2, 2, 6, 2], [3, 6, 12, 24], 28, 4.5)
_variant("swin-small", "microsoft/swin-small-patch4-window7-224", 96, [2, 2, 18, 2], [3, 6, 12, 24], 50, 8.7)
_variant("swin-base", "microsoft/swin-base-patch4-window7-224", 128, [2, 2, 18, 2], [4, 8, 16, 32], 88, 15.4)
