"""Helpers the rewrites share: find HF submodules by class name, swap them, and the equal-math functions."""

from __future__ import annotations

import math
from typing import Callable, Iterator

import torch
from torch import nn


def named_of(module: nn.Module, class_names: set[str] | tuple[str, ...]) -> Iterator[tuple[nn.Module, str, nn.Module]]:
    """(parent, attribute, child) for every submodule whose class is named in class_names (a snapshot: safe to swap)."""
    found = []
    for parent in module.modules():
        for attr, child in parent.named_children():
            if type(child).__name__ in class_names:
                found.append((parent, attr, child))
    return iter(found)


def convert(module: nn.Module, class_names: dict[str, str], make: Callable[[nn.Module, str], nn.Module], edgevt_class: type) -> list:
    """Replace each HF submodule named in class_names ({class name: family}) by make(child, family); return every
    edgevt_class instance in the module afterwards (already converted ones included), so rewrites compose.
    An edgevt module may keep the HF one inside it (as `hf`): that one is not converted again."""
    for parent, attr, child in named_of(module, tuple(class_names)):
        if isinstance(parent, edgevt_class):
            continue
        setattr(parent, attr, make(child, class_names[type(child).__name__]))
    return [m for m in module.modules() if isinstance(m, edgevt_class)]


# l2_normalize works on x / 16: a power of two, so the result is the same in fp32 (scaling by 2^k commutes with
# rounding), while in fp16 the sum of squares overflows only once |x| passes 4096 instead of 256.
PRESCALE = 1.0 / 16


def l2_normalize(x: torch.Tensor, rsqrt: bool, eps: float = 1e-12, scale: torch.Tensor | None = None) -> torch.Tensor:
    """F.normalize(x, dim=-1); with rsqrt, the same function as x * rsqrt(max(sum(x^2), eps^2)): mul, reduce_sum,
    maximum and rsqrt run on the Neural Engine, reduce_l2_norm does not (max(sqrt(s), eps) = sqrt(max(s, eps^2))).
    scale (rsqrt only; broadcast over the last axis) multiplies the small normalising factor instead of the result."""
    if not rsqrt:
        return nn.functional.normalize(x, dim=-1)
    y = x * PRESCALE
    squares = (y * y).sum(dim=-1, keepdim=True)
    floor = torch.full((), (eps * PRESCALE) ** 2, dtype=squares.dtype)  # maximum, not clamp: Core ML's clip needs an upper bound
    factor = torch.rsqrt(torch.maximum(squares, floor))
    return y * (factor if scale is None else factor * scale)


def fold_bn_into_conv(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """conv followed by bn (eval statistics) as one conv with bias: w' = w * g, b' = (b - mean) * g + beta,
    g = gamma / sqrt(var + eps)."""
    g = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                      conv.groups, bias=True, padding_mode=conv.padding_mode)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    with torch.no_grad():
        fused.weight.copy_(conv.weight * g.reshape(-1, 1, 1, 1))
        fused.bias.copy_((bias - bn.running_mean) * g + bn.bias)
    return fused.eval()


def fold_bn_before_pointwise(bn: nn.BatchNorm2d, conv: nn.Conv2d) -> nn.Conv2d:
    """bn then a 1x1 conv without padding (exact: no padded border sees BN's shift) as one conv:
    w' = w * g (per input channel), b' = b + w @ (beta - mean * g)."""
    g = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    shift = bn.bias - bn.running_mean * g
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, 1, bias=True)
    bias = conv.bias if conv.bias is not None else torch.zeros(conv.out_channels)
    with torch.no_grad():
        fused.weight.copy_(conv.weight * g.reshape(1, -1, 1, 1))
        fused.bias.copy_(bias + conv.weight.reshape(conv.out_channels, -1) @ shift)
    return fused.eval()


def is_pointwise(conv: nn.Module) -> bool:
    return (isinstance(conv, nn.Conv2d) and conv.kernel_size == (1, 1) and conv.stride == (1, 1) and conv.padding in ((0, 0), 0)
            and conv.groups == 1)


class ErfGelu(nn.Module):
    """Exact (erf) GELU in the operation order ONNX Runtime's Gelu fusion matches: Div, Erf, Add, Mul(x), Mul(0.5)."""

    @staticmethod
    def replaces(module: nn.Module) -> bool:
        """nn.GELU without the tanh approximation, or transformers' GELUActivation (its 'gelu' and 'gelu_python',
        both exact); the tanh and clipped variants are other functions and stay."""
        if isinstance(module, nn.GELU):
            return module.approximate == "none"
        return type(module).__name__ == "GELUActivation"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * (torch.erf(x / math.sqrt(2.0)) + 1.0)) * 0.5


@torch.no_grad()
def fold_layernorm_into(norm: nn.LayerNorm, linears: list[nn.Linear]) -> nn.LayerNorm:
    """LN(x) @ W.T + b = x_hat @ (W * gamma).T + (W @ beta + b), x_hat the LayerNorm without its affine: each Linear
    that reads the LayerNorm takes gamma into its input columns and beta into its bias; returns the plain LayerNorm."""
    for lin in linears:
        bias = lin.bias if lin.bias is not None else torch.zeros(lin.out_features)
        folded = bias + lin.weight @ norm.bias
        lin.weight.mul_(norm.weight)
        lin.bias = nn.Parameter(folded)
    return nn.LayerNorm(norm.normalized_shape, eps=norm.eps, elementwise_affine=False).eval()
