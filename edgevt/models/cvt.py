"""CvT (Wu et al., ICCV 2021): convolutional token embeddings and projections, einsum attention.

CvtConfig has no `image_size`: a CvT checkpoint's input size lives only in its processor config."""

from edgevt.models.registry import Family, convnext_processor, register, register_family

CVT = register_family(
    Family(
        name="cvt",
        model_type="cvt",
        config_class="CvtConfig",
        model_class="CvtForImageClassification",
        backbone_class="CvtModel",
        processor="ConvNextImageProcessor",
        resample=3,
    )
)
# microsoft/cvt-13 and cvt-21: ConvNextFeatureExtractor, crop_pct 0.875, bicubic, size 224: HF resizes the shortest
# edge to int(224 / 0.875) = 256 (truncating, and the long edge with int too) and centre-crops 224.
# microsoft/cvt-w24-384-22k: the same processor at 384, where ConvNext warps straight to 384 x 384.
_PROCESSOR_224 = {"feature_extractor_type": "ConvNextFeatureExtractor", "do_resize": True, "size": 224, "crop_pct": 0.875,
                  "resample": 3, "do_normalize": True, "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]}
_PROCESSOR_384 = convnext_processor(384)

register("cvt-13", CVT, "microsoft/cvt-13", _PROCESSOR_224, {}, input_size=224, paper_params_m=20, paper_gmacs=4.5)
register("cvt-21", CVT, "microsoft/cvt-21", _PROCESSOR_224, {"depth": [1, 4, 16]}, input_size=224, paper_params_m=32,
         paper_gmacs=7.1)
register(
    "cvt-w24",
    CVT,
    "microsoft/cvt-w24-384-22k",
    _PROCESSOR_384,
    {"embed_dim": [192, 768, 1024], "num_heads": [3, 12, 16], "depth": [2, 2, 20]},
    input_size=384,
    paper_params_m=277,
    paper_gmacs=193.2,
    notes="ImageNet-22k pre-trained, fine-tuned on ImageNet-1k at 384 px (1000 classes)",
)
