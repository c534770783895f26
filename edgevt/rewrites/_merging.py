"""edgevt's Swin / Swin V2 patch merging without strided slices.

HF gathers the 2x2 neighbours with four stride-2 slices and a concat (channel blocks in the order (row, col) =
(0,0), (1,0), (0,1), (1,1)). A rank-4 reshape + transpose brings the same values together in the order
(0,0), (0,1), (1,0), (1,1); the LayerNorm (Swin: over the 4C channels) and the reduction Linear's input columns
are permuted to match, so the output is the same.
"""

from __future__ import annotations

import torch
from torch import nn

from edgevt.rewrites._util import convert

MERGINGS = {"SwinPatchMerging": "swin", "Swinv2PatchMerging": "swinv2"}


def _permutation(channels: int) -> torch.Tensor:
    """HF's channel index for each channel of the reshaped layout: blocks (r, c) in row-major order."""
    hf_block = {(0, 0): 0, (1, 0): 1, (0, 1): 2, (1, 1): 3}
    order = [hf_block[(r, c)] for r in range(2) for c in range(2)]
    return torch.cat([torch.arange(b * channels, (b + 1) * channels) for b in order])


class PatchMerging(nn.Module):
    def __init__(self, hf: nn.Module, family: str):
        super().__init__()
        self.family = family
        self.reduction, self.norm = hf.reduction, hf.norm
        channels = hf.reduction.in_features // 4
        perm = _permutation(channels)
        with torch.no_grad():
            self.reduction.weight.copy_(self.reduction.weight[:, perm])
            if family == "swin":  # the norm is over the 4C concatenated channels, before the reduction
                self.norm.weight.copy_(self.norm.weight[perm])
                self.norm.bias.copy_(self.norm.bias[perm])

    def forward(self, input_feature: torch.Tensor, input_dimensions) -> torch.Tensor:
        height, width = input_dimensions
        batch, _, channels = input_feature.shape
        x = input_feature.view(batch, height, width, channels)
        if height % 2 or width % 2:
            x = nn.functional.pad(x, (0, 0, 0, width % 2, 0, height % 2))
        h, w = x.shape[1], x.shape[2]
        x = x.reshape(-1, 2, w // 2, 2 * channels).permute(0, 2, 1, 3).reshape(batch, (h // 2) * (w // 2), 4 * channels)
        if self.family == "swin":
            return self.reduction(self.norm(x))
        return self.norm(self.reduction(x))


def patch_mergings(module: nn.Module) -> list[PatchMerging]:
    return convert(module, MERGINGS, PatchMerging, PatchMerging)
