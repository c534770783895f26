"""edgevt's SwiftFormer efficient additive attention: HF's module, taking over its weights, with two switches
(each computes the same function):

- fold_softmax: HF takes a softmax over an axis of size 1, which is identically 1 (for finite inputs), so the
  global query is the plain sum of the normalised queries; and `.repeat` over the tokens becomes broadcasting;
- rsqrt_normalize: F.normalize of query and key as x * rsqrt(max(sum(x^2), eps^2)) (no reduce_l2_norm).
"""

from __future__ import annotations

import torch
from torch import nn

from edgevt.rewrites._util import convert, l2_normalize


class AdditiveAttention(nn.Module):
    def __init__(self, hf: nn.Module, family: str = "swiftformer"):
        super().__init__()
        self.to_query, self.to_key, self.proj, self.final = hf.to_query, hf.to_key, hf.proj, hf.final
        self.w_g, self.scale_factor = hf.w_g, hf.scale_factor
        self.fold_softmax = self.rsqrt_normalize = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        query = l2_normalize(self.to_query(x), self.rsqrt_normalize)
        key = l2_normalize(self.to_key(x), self.rsqrt_normalize)
        if self.fold_softmax:
            global_queries = query.sum(dim=1, keepdim=True)  # softmax over a size-1 axis is 1: a plain sum
            out = self.proj(global_queries * key) + query
        else:
            weights = ((query @ self.w_g) * self.scale_factor).softmax(dim=-1)
            global_queries = torch.sum(weights * query, dim=1)
            global_queries = global_queries.unsqueeze(1).repeat(1, key.shape[1], 1)
            out = self.proj(global_queries * key) + query
        return self.final(out)


def additive_attentions(module: nn.Module) -> list[AdditiveAttention]:
    return convert(module, {"SwiftFormerEfficientAdditiveAttention": "swiftformer"}, AdditiveAttention, AdditiveAttention)
