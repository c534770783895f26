"""BatchNorm folded into its neighbouring convolution (eval statistics): conv -> BN as one conv with bias, and
SwiftFormer's BN -> 1x1 conv as one conv (exact there: a 1x1 conv without padding has no border)."""

from edgevt.rewrites import register

# class name -> (conv, bn) attribute pairs, conv first
CONV_THEN_BN = {
    "CvtSelfAttentionConvProjection": [("convolution", "normalization")],
    "SwiftFormerEmbeddings": [("proj", "norm")],
    "SwiftFormerConvEncoder": [("depth_wise_conv", "norm")],
    "SwiftFormerLocalRepresentation": [("depth_wise_conv", "norm")],
}
BN_THEN_POINTWISE = {"SwiftFormerMlp": [("norm1", "fc1")]}
SEQUENTIAL_OWNERS = ("SwiftFormerPatchEmbedding",)  # an nn.Sequential of conv, BN, ReLU, conv, BN, ReLU


@register("bn-fold", "BatchNorm folded into the neighbouring conv (CvT projections, SwiftFormer stem, blocks and MLP)",
          families=("cvt", "swiftformer"), default_targets=("coreml",))
def apply(module) -> int:
    from torch import nn

    from edgevt.rewrites._util import fold_bn_before_pointwise, fold_bn_into_conv, is_pointwise

    folded = 0
    for owner in list(module.modules()):
        name = type(owner).__name__
        for conv_attr, bn_attr in CONV_THEN_BN.get(name, []):
            conv, bn = getattr(owner, conv_attr), getattr(owner, bn_attr)
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                setattr(owner, conv_attr, fold_bn_into_conv(conv, bn))
                setattr(owner, bn_attr, nn.Identity())
                folded += 1
        for bn_attr, conv_attr in BN_THEN_POINTWISE.get(name, []):
            bn, conv = getattr(owner, bn_attr), getattr(owner, conv_attr)
            if isinstance(bn, nn.BatchNorm2d) and is_pointwise(conv):
                setattr(owner, conv_attr, fold_bn_before_pointwise(bn, conv))
                setattr(owner, bn_attr, nn.Identity())
                folded += 1
        if name in SEQUENTIAL_OWNERS:
            for seq in owner.children():
                if isinstance(seq, nn.Sequential):
                    folded += _fold_sequential(seq, fold_bn_into_conv)
    return folded


def _fold_sequential(seq, fold) -> int:
    from torch import nn

    folded = 0
    for i in range(len(seq) - 1):
        if isinstance(seq[i], nn.Conv2d) and isinstance(seq[i + 1], nn.BatchNorm2d):
            seq[i] = fold(seq[i], seq[i + 1])
            seq[i + 1] = nn.Identity()
            folded += 1
    return folded
