"""edgevt's CvT self-attention: HF's CvtSelfAttention, taking over its weights, with two switches (each computes
the same function):

- matmul: the two einsums ("bhlk,bhtk->bhlt", "bhlt,bhtv->bhlv") as batched matmuls;
- scale_folded: the softmax scale folded into the query projection's weights (key and value come from different
  convolutions, so unlike Swin's they cannot share one Linear).
"""

from __future__ import annotations

import torch
from torch import nn

from edgevt.rewrites._util import convert


class CvtAttention(nn.Module):
    def __init__(self, hf: nn.Module, family: str = "cvt"):
        super().__init__()
        self.scale, self.with_cls_token, self.embed_dim, self.heads = hf.scale, hf.with_cls_token, hf.embed_dim, hf.num_heads
        self.conv_query = hf.convolution_projection_query
        self.conv_key = hf.convolution_projection_key
        self.conv_value = hf.convolution_projection_value
        self.projection_query, self.projection_key, self.projection_value = hf.projection_query, hf.projection_key, hf.projection_value
        self.dropout = hf.dropout
        self.matmul = self.scale_folded = False

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, _ = x.shape
        return x.view(batch, tokens, self.heads, self.embed_dim // self.heads).permute(0, 2, 1, 3)

    def forward(self, hidden_state: torch.Tensor, height: int, width: int) -> torch.Tensor:
        if self.with_cls_token:
            cls_token, hidden_state = torch.split(hidden_state, [1, height * width], 1)
        batch, tokens, channels = hidden_state.shape
        hidden_state = hidden_state.permute(0, 2, 1).view(batch, channels, height, width)
        key, query, value = self.conv_key(hidden_state), self.conv_query(hidden_state), self.conv_value(hidden_state)
        if self.with_cls_token:
            query, key, value = (torch.cat((cls_token, t), dim=1) for t in (query, key, value))
        query = self._heads(self.projection_query(query))
        key, value = self._heads(self.projection_key(key)), self._heads(self.projection_value(value))
        scores = query @ key.transpose(-2, -1) if self.matmul else torch.einsum("bhlk,bhtk->bhlt", [query, key])
        if not self.scale_folded:
            scores = scores * self.scale
        probs = self.dropout(torch.nn.functional.softmax(scores, dim=-1))
        context = probs @ value if self.matmul else torch.einsum("bhlt,bhtv->bhlv", [probs, value])
        tokens = context.shape[2]
        return context.permute(0, 2, 1, 3).contiguous().view(batch, tokens, self.embed_dim)


    @torch.no_grad()
    def fold_scale(self) -> None:
        if not self.scale_folded:
            self.projection_query.weight.mul_(self.scale)
            if self.projection_query.bias is not None:
                self.projection_query.bias.mul_(self.scale)
            self.scale_folded = True


def cvt_attentions(module: nn.Module) -> list[CvtAttention]:
    return convert(module, {"CvtSelfAttention": "cvt"}, CvtAttention, CvtAttention)
