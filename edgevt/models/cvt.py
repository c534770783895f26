"""CvT (Wu et al., ICCV 2021): convolutional token embeddings and projections, einsum attention."""

from edgevt.models.registry import Family, Preprocess, register, register_family

CVT = register_family(
    Family(
        name="cvt",
        model_type="cvt",
        config_class="CvtConfig",
        model_class="CvtForImageClassification",
        processor="ConvNextImageProcessor",
    )
)
# ConvNextImageProcessor: below 384 px, resize the shortest edge to size/crop_pct (224/0.875 = 256) and
# centre-crop; at 384 px and above it warps straight to size x size.
_PRE_224 = Preprocess(size=224, resize_shortest=256, resample="bicubic")
_PRE_384 = Preprocess(size=384, resample="bicubic")

register("cvt-13", CVT, "microsoft/cvt-13", _PRE_224, {}, paper_params_m=20, paper_gmacs=4.5)
register("cvt-21", CVT, "microsoft/cvt-21", _PRE_224, {"depth": [1, 4, 16]}, paper_params_m=32, paper_gmacs=7.1)
register(
    "cvt-w24",
    CVT,
    "microsoft/cvt-w24-384-22k",
    _PRE_384,
    {"embed_dim": [192, 768, 1024], "num_heads": [3, 12, 16], "depth": [2, 2, 20]},
    paper_params_m=277,
    paper_gmacs=193.2,
    notes="ImageNet-22k pre-trained, fine-tuned on ImageNet-1k at 384 px",
)
