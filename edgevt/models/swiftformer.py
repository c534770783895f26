"""SwiftFormer (Shaker et al., ICCV 2023): the mobile model, and edgevt's priority."""

from edgevt.models.registry import Family, register, register_family, vit_processor

SWIFTFORMER = register_family(
    Family(
        name="swiftformer",
        model_type="swiftformer",
        config_class="SwiftFormerConfig",
        model_class="SwiftFormerForImageClassification",
        backbone_class="SwiftFormerModel",
        processor="ViTImageProcessor",
        resample=None,
        # HF initialises layer scales to 1e-5, which makes random-weight logits ~1e-4.
        layer_scale_init=0.1,
    )
)
# MBZUAI/swiftformer-*: ViTImageProcessor, warp to 224, ImageNet mean/std, and no `resample` key, so HF resizes
# bilinear (the class default). The authors' own evaluation (256 bicubic + centre crop) is not what the HF processor does.
_PROCESSOR = vit_processor(224)


def _variant(name, hf_id, embed_dims, depths, params, gmacs):
    register(name, SWIFTFORMER, hf_id, _PROCESSOR, {"embed_dims": embed_dims, "depths": depths}, input_size=224,
             paper_params_m=params, paper_gmacs=gmacs)


_variant("swiftformer-xs", "MBZUAI/swiftformer-xs", [48, 56, 112, 220], [3, 3, 6, 4], 3.5, 0.6)
_variant("swiftformer-s", "MBZUAI/swiftformer-s", [48, 64, 168, 224], [3, 3, 9, 6], 6.1, 1.0)
_variant("swiftformer-l1", "MBZUAI/swiftformer-l1", [48, 96, 192, 384], [4, 3, 10, 5], 12.1, 1.6)
_variant("swiftformer-l3", "MBZUAI/swiftformer-l3", [64, 128, 320, 512], [4, 4, 12, 6], 28.5, 4.0)
