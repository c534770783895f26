"""edgevt's Swin / Swin V2 window layer: HF's SwinLayer / Swinv2Layer at its fixed input resolution, taking over
their weights, with the steps the swin-* rewrites switch one by one (each switch computes the same function):

- shift_slices: torch.roll (gather on Core ML) as two slices and a concat per axis;
- rank4: window partition/reverse as rank-4 reshape + transpose instead of HF's rank-6 view (and no zero padding);
- constants: relative position bias (Swin), CPB-MLP bias and clamp(logit_scale).exp() (Swin V2), and the
  shifted-window mask, computed once for the fixed input size and stored as one constant per layer;
- rsqrt_normalize (Swin V2): F.normalize of q and k as x * rsqrt(max(sum(x^2), eps^2));
- scale_folded (Swin): the softmax scale 1/sqrt(head_dim) folded into the query projection's weights;
- fused_qkv: one Linear for q, k and v;
- gather: the shift and the window partition as one gather of tokens (and the reverse and unshift as another), with
  the token order computed once for the fixed grid: a row copy on ONNX Runtime, where HF's rank-6 transposes, zero
  pads and rolls are separate copies (not for Core ML, where gather leaves the Neural Engine).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from edgevt.rewrites._util import convert, l2_normalize

LAYERS = {"SwinLayer": "swin", "Swinv2Layer": "swinv2"}


def _hf_windows(family: str):
    if family == "swin":
        from transformers.models.swin.modeling_swin import window_partition, window_reverse
    else:
        from transformers.models.swinv2.modeling_swinv2 import window_partition, window_reverse
    return window_partition, window_reverse


def cyclic_shift(x: torch.Tensor, shift: int, slices: bool, reverse: bool = False) -> torch.Tensor:
    """torch.roll(x, (-shift, -shift) or (shift, shift), dims=(1, 2)) of a (B, H, W, C) tensor."""
    if shift == 0:
        return x
    if not slices:
        return torch.roll(x, shifts=(shift, shift) if reverse else (-shift, -shift), dims=(1, 2))
    for dim in (1, 2):
        cut = x.shape[dim] - shift if reverse else shift
        x = torch.cat([x.narrow(dim, cut, x.shape[dim] - cut), x.narrow(dim, 0, cut)], dim=dim)
    return x


class WindowAttention(nn.Module):
    """Takes the place of SwinAttention / Swinv2Attention (kept inside as `hf`, weights and all). Until a rewrite
    switches something on it runs HF's own forward; then edgevt's, which computes the same function."""

    def __init__(self, hf: nn.Module, family: str, window: int):
        super().__init__()
        self.hf, self.family, self.tokens = hf, family, window * window
        self.heads = hf.num_attention_heads if family == "swin" else hf.self.num_attention_heads
        self.qkv: nn.Linear | None = None  # fused_qkv
        self.query_scaled: nn.Linear | None = None  # scale_folded (Swin): q_proj with the softmax scale in its weights
        self.rsqrt_normalize = False
        self.register_buffer("constant", None, persistent=False)  # constants: bias + mask, (windows or 1, heads, N, N)
        self.register_buffer("scale_constant", None, persistent=False)  # constants (Swin V2): clamp(logit_scale).exp()

    @property
    def rewritten(self) -> bool:
        return self.qkv is not None or self.query_scaled is not None or self.rsqrt_normalize or self.constant is not None

    def _linears(self) -> tuple[nn.Linear, nn.Linear, nn.Linear, nn.Linear]:
        if self.family == "swin":
            return self.query_scaled or self.hf.q_proj, self.hf.k_proj, self.hf.v_proj, self.hf.o_proj
        return self.hf.self.query, self.hf.self.key, self.hf.self.value, self.hf.output.dense

    def position_bias_now(self) -> torch.Tensor:
        """(1, heads, N, N) as HF computes it on every forward."""
        if self.family == "swin":
            return self.hf.relative_position_bias()
        inner = self.hf.self
        table = inner.continuous_position_bias_mlp(inner.relative_coords_table).view(-1, self.heads)
        bias = table[inner.relative_position_index.view(-1)].view(self.tokens, self.tokens, -1).permute(2, 0, 1).contiguous()
        return (16 * torch.sigmoid(bias)).unsqueeze(0)

    def logit_scale_now(self) -> torch.Tensor:
        return torch.clamp(self.hf.self.logit_scale, max=math.log(1.0 / 0.01)).exp()

    def _project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        shape = (x.shape[0], x.shape[1], self.heads, -1)
        if self.qkv is not None:
            q, k, v = self.qkv(x).chunk(3, dim=-1)
        else:
            q, k, v = (lin(x) for lin in self._linears()[:3])
        return tuple(t.view(shape).transpose(1, 2) for t in (q, k, v))

    def _scores(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        if self.family == "swin":
            scores = q @ k.transpose(-2, -1)
            return scores if self.query_scaled is not None else scores * self.hf.scaling
        scale = self.scale_constant if self.scale_constant is not None else self.logit_scale_now()
        if self.rsqrt_normalize and self.scale_constant is not None:
            # the per-head logit scale rides on q's (tokens x 1) normalising factor instead of a pass over the scores
            q, k = l2_normalize(q, True, scale=scale), l2_normalize(k, True)
            return q @ k.transpose(-2, -1)
        q, k = l2_normalize(q, self.rsqrt_normalize), l2_normalize(k, self.rsqrt_normalize)
        return (q @ k.transpose(-2, -1)) * scale

    def _add_bias(self, scores: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        n, h = self.tokens, self.heads
        if self.constant is not None:
            windows = self.constant.shape[0]
            if windows == 1:
                return scores + self.constant
            return (scores.view(-1, windows * h, n, n) + self.constant.view(1, windows * h, n, n)).view(-1, h, n, n)
        bias = self.position_bias_now()
        if mask is None:
            return scores + bias
        windows = mask.shape[0]
        if self.family == "swin":  # SwinAttention: bias + mask expanded over the batch, then added once
            mask = mask.unsqueeze(1).unsqueeze(0).expand(scores.shape[0] // windows, -1, -1, -1, -1).reshape(-1, 1, n, n)
            return scores + (bias + mask)
        scores = (scores + bias).view(-1, windows, h, n, n)  # Swinv2SelfAttention adds the mask twice
        scores = scores + mask.unsqueeze(1).unsqueeze(0)
        return (scores + mask.unsqueeze(1).unsqueeze(0)).view(-1, h, n, n)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, output_attentions: bool = False):
        if not self.rewritten:
            out = self.hf(x, mask) if self.family == "swin" else self.hf(x, mask, output_attentions)
            return out[0], (out[1] if len(out) > 1 else None)
        q, k, v = self._project(x)
        probs = torch.softmax(self._add_bias(self._scores(q, k), mask), dim=-1)
        context = (probs @ v).transpose(1, 2).reshape(x.shape[0], x.shape[1], -1)
        return self._linears()[3](context), probs

    @torch.no_grad()
    def make_constant(self, mask: torch.Tensor | None) -> None:
        bias = self.position_bias_now()
        if mask is not None:
            twice = 2 if self.family == "swinv2" else 1
            bias = bias + twice * mask.unsqueeze(1)  # (windows, heads, N, N)
        self.constant = bias.detach().clone()
        if self.family == "swinv2":
            self.scale_constant = self.logit_scale_now().detach().clone()

    @torch.no_grad()
    def fold_scale(self) -> None:
        """Swin: q_proj's weights and bias times 1/sqrt(head_dim), so the scores need no multiply."""
        if self.family != "swin" or self.query_scaled is not None:
            return
        q = self.hf.q_proj
        scaled = nn.Linear(q.in_features, q.out_features, bias=q.bias is not None)
        scaled.weight.copy_(q.weight * self.hf.scaling)
        if q.bias is not None:
            scaled.bias.copy_(q.bias * self.hf.scaling)
        self.query_scaled = scaled.eval()
        if self.qkv is not None:
            self.fuse_qkv()

    @torch.no_grad()
    def fuse_qkv(self) -> None:
        """One Linear(C, 3C) from the current q, k and v projections (a zero bias where HF has none)."""
        linears = self._linears()[:3]
        fused = nn.Linear(linears[0].in_features, 3 * linears[0].out_features, bias=True)
        fused.weight.copy_(torch.cat([lin.weight for lin in linears]))
        fused.bias.copy_(torch.cat([lin.bias if lin.bias is not None else torch.zeros(lin.out_features) for lin in linears]))
        self.qkv = fused.eval()


class WindowLayer(nn.Module):
    """Takes the place of SwinLayer / Swinv2Layer (kept inside as `hf`, weights and all) at its fixed resolution."""

    def __init__(self, hf: nn.Module, family: str):
        super().__init__()
        self.hf, self.family = hf, family
        self.resolution = tuple(int(r) for r in hf.input_resolution)
        if family == "swin":
            hf.set_shift_and_window_size(self.resolution)  # what SwinLayer.forward does first, for this resolution
        self.window, self.shift = int(hf.window_size), int(hf.shift_size)
        # SwinBackbone's always_partition skips that clamp. hf.window_size/shift_size may already be clamped (HF sets
        # them on every forward, e.g. the loader's probe), so judge by the constructor's window: whenever the grid is no
        # larger than it, the clamp may have changed the window or the shift.
        bias = getattr(hf.attention, "relative_position_bias", None)
        configured = int(bias.window_size[0]) if bias is not None and hasattr(bias, "window_size") else self.window
        self.clamped = family == "swin" and min(self.resolution) <= configured
        self.padded = tuple(math.ceil(r / self.window) * self.window for r in self.resolution)
        hf.attention = WindowAttention(hf.attention, family, self.window)
        self.shift_slices = self.rank4 = False
        self.register_buffer("order", None, persistent=False)  # gather: window position -> grid token
        self.register_buffer("inverse", None, persistent=False)  # gather: grid token -> window position

    @property
    def attention(self) -> WindowAttention:
        return self.hf.attention

    def mask_now(self) -> torch.Tensor | None:
        """HF's shifted-window mask, built from arange as HF does on every forward."""
        return self.hf.get_attn_mask(*self.padded, dtype=torch.float32, device=None)

    def _partition(self, x: torch.Tensor) -> torch.Tensor:
        ws, (b, h, w, c) = self.window, x.shape
        if not self.rank4:
            return _hf_windows(self.family)[0](x, ws).view(-1, ws * ws, c)
        return x.reshape(-1, ws, w // ws, ws * c).permute(0, 2, 1, 3).reshape(-1, ws * ws, c)

    def _reverse(self, windows: torch.Tensor) -> torch.Tensor:
        ws, (h, w), c = self.window, self.padded, windows.shape[-1]
        if not self.rank4:
            return _hf_windows(self.family)[1](windows.view(-1, ws, ws, c), ws, h, w)
        return windows.reshape(-1, w // ws, ws, ws * c).permute(0, 2, 1, 3).reshape(-1, h, w, c)

    @torch.no_grad()
    def use_gather(self) -> None:
        """Switch to gathered windows: the token order of HF's pad + shift + partition, found by running HF's own
        partition on the token indices (so it is HF's order by construction). A padded position takes index H*W: a
        zero row appended before the gather, as HF pads by zeros."""
        (h, w), (ph, pw), ws = self.resolution, self.padded, self.window
        grid = torch.full((1, ph, pw, 1), float(h * w), dtype=torch.float64)  # exact: the indices are small integers
        grid[0, :h, :w, 0] = torch.arange(h * w, dtype=torch.float64).view(h, w)
        windows = _hf_windows(self.family)[0](cyclic_shift(grid, self.shift, slices=False), ws)
        self.order = windows.reshape(-1).round().long()
        real = self.order < h * w
        self.inverse = torch.nonzero(real).reshape(-1)[torch.argsort(self.order[real])]

    def _gathered(self, x: torch.Tensor, output_attentions: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        (b, tokens, c), n = x.shape, self.window * self.window
        if self.padded != self.resolution:
            x = torch.cat([x, x.new_zeros(b, 1, c)], dim=1)
        mask = None if self.attention.constant is not None else self.mask_now()
        out, probs = self.attention(x.index_select(1, self.order).view(-1, n, c), mask, output_attentions)
        if self.family == "swin":
            out = self.hf.dropout(out)
        return out.reshape(b, -1, c).index_select(1, self.inverse), probs

    def _windowed(self, x: torch.Tensor, output_attentions: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, H*W, C) -> shift, partition, window attention, reverse, unshift -> (B, H*W, C), as both HF layers do."""
        if self.order is not None:
            return self._gathered(x, output_attentions)
        (b, _, c), (h, w) = x.shape, self.resolution
        x = x.view(b, h, w, c)
        if not self.rank4 or self.padded != self.resolution:  # HF pads even by zero; rank4 skips that no-op
            x = self.hf.maybe_pad(x, h, w)[0]
        mask = None if self.attention.constant is not None else self.mask_now()
        out, probs = self.attention(self._partition(cyclic_shift(x, self.shift, self.shift_slices)), mask, output_attentions)
        if self.family == "swin":
            out = self.hf.dropout(out)
        x = cyclic_shift(self._reverse(out), self.shift, self.shift_slices, reverse=True)
        if self.padded != self.resolution:
            x = x[:, :h, :w, :].contiguous()
        return x.reshape(b, h * w, c), probs

    def forward(self, hidden_states: torch.Tensor, input_dimensions, *args, **kwargs):
        if tuple(int(d) for d in input_dimensions) != self.resolution:
            raise ValueError(f"this Swin layer was rewritten for a {self.resolution} grid, got {tuple(input_dimensions)}: "
                             "export at the model's configured image size")
        hf = self.hf
        if self.family == "swin":
            always_partition = args[0] if args else kwargs.get("always_partition", False)
            if always_partition and self.clamped:
                raise ValueError("this Swin layer was rewritten with its window clamped to the grid; always_partition "
                                 "(SwinBackbone) needs the unclamped window: export with --rewrites none")
            windows, probs = self._windowed(hf.layernorm_before(hidden_states), False)
            hidden_states = hidden_states + hf.drop_path(windows)
            return hf.dropout(hf.mlp(hf.layernorm_after(hidden_states))) + hidden_states, probs
        output_attentions = args[0] if args else kwargs.get("output_attentions", False)
        windows, probs = self._windowed(hidden_states, output_attentions)
        hidden_states = hidden_states + hf.drop_path(hf.layernorm_before(windows))
        out = hidden_states + hf.drop_path(hf.layernorm_after(hf.output(hf.intermediate(hidden_states))))
        return (out, probs) if output_attentions else (out,)


def window_layers(module: nn.Module) -> list[WindowLayer]:
    """Every Swin / Swin V2 layer in module as a WindowLayer (converting HF's on first use)."""
    return convert(module, LAYERS, WindowLayer, WindowLayer)
