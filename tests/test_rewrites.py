"""Rewrites: registry, choice parsing, and each rewrite computing what the original module computes (tiny configs)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from conftest import TINY
from edgevt.errors import ExportError, UsageError
from edgevt.models.loading import load_model, resolve_spec
from edgevt.models.registry import families
from edgevt.rewrites import TARGETS, Rewrite, get_rewrite, list_rewrites, parse_choice, resolved_names, select
from edgevt.rewrites.apply import check_equal, prepare, rewrite_module, torch_ops

TINY_BY_FAMILY = {family: name for name, (family, _) in TINY.items()}
CASES = [(rw.name, TINY_BY_FAMILY[fam]) for rw in list_rewrites() for fam in rw.families]
MAX_ABS = 1e-5


@pytest.fixture(scope="module")
def tiny_models():
    return {name: load_model(resolve_spec(name), "random", 0) for name in TINY}


def _inputs(seed: int = 1) -> torch.Tensor:
    return torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(seed))  # batch 2: constants must broadcast


def _max_abs(a: torch.nn.Module, b: torch.nn.Module, x: torch.Tensor) -> float:
    with torch.no_grad():
        return float((a(x) - b(x)).abs().max())


def test_every_rewrite_declares_known_families_and_targets():
    known = set(families())
    names = [rw.name for rw in list_rewrites()]
    assert len(names) == len(set(names)) >= 9
    for rw in list_rewrites():
        assert set(rw.families) <= known and rw.families, rw.name
        assert set(rw.default_targets) <= set(rw.targets) <= set(TARGETS), rw.name
    assert [rw.name for rw in list_rewrites("swin-*")] == ["swin-shift-slices", "swin-window-rank4", "swin-constant-bias",
                                                          "swin-patch-merging", "swin-window-gather"]


def test_unknown_rewrite_suggests_close_names():
    with pytest.raises(UsageError) as err:
        get_rewrite("swin-shift-slice")
    assert "swin-shift-slices" in err.value.hint


@pytest.mark.parametrize("text, expected", [
    ("none", "none"), ("default", "default"), (None, "default"), (["default"], "default"),
    ("fused-qkv,swin-shift-slices", ("swin-shift-slices", "fused-qkv")),  # registry order, whatever the user's
    (["l2norm-rsqrt", "l2norm-rsqrt"], ("l2norm-rsqrt",)),
])
def test_parse_choice(text, expected):
    assert parse_choice(text) == expected


@pytest.mark.parametrize("text", ["none,swin-shift-slices", "default,fused-qkv", "", "swin-rool"])
def test_parse_choice_rejects_mixtures_empty_and_unknown(text):
    with pytest.raises(UsageError):
        parse_choice(text)


def test_select_keeps_what_applies_and_says_why_the_rest_is_skipped():
    chosen, skipped = select(("l2norm-rsqrt", "swin-shift-slices", "cvt-matmul"), "swinv2", "coreml")
    assert [rw.name for rw in chosen] == ["l2norm-rsqrt", "swin-shift-slices"]
    assert skipped == [{"name": "cvt-matmul", "reason": "does not apply to swinv2 (only cvt)"}]
    assert select("none", "swin", "onnx") == ([], [])
    defaults = resolved_names("default", "swinv2", "coreml")
    assert defaults == [rw.name for rw in list_rewrites() if "swinv2" in rw.families and "coreml" in rw.default_targets]
    assert "l2norm-rsqrt" in defaults and "swin-shift-slices" in defaults
    assert resolved_names("default", "swin", "an-extra-target") == []


@pytest.mark.parametrize("rewrite, model", CASES)
def test_rewrite_alone_computes_what_the_original_computes(rewrite, model, tiny_models):
    loaded = tiny_models[model]
    rewritten, applied = rewrite_module(loaded.module, [get_rewrite(rewrite)], _inputs()[:1].numpy(), lambda m: None)
    assert applied[0]["modules_changed"] > 0 and applied[0]["torch_ops_delta"], "the rewrite changed nothing"
    assert _max_abs(rewritten, loaded.module, _inputs()) <= MAX_ABS


@pytest.mark.parametrize("model", list(TINY))
def test_all_rewrites_of_a_family_together_compute_what_the_original_computes(model, tiny_models):
    loaded = tiny_models[model]
    family = loaded.spec.family.name
    chosen = [rw for rw in list_rewrites() if family in rw.families]
    rewritten, _ = rewrite_module(loaded.module, chosen, _inputs()[:1].numpy(), lambda m: None)
    assert _max_abs(rewritten, loaded.module, _inputs(2)) <= MAX_ABS


@pytest.mark.parametrize("rewrite, family, gone", [
    ("swin-shift-slices", "swin", {"roll"}),
    ("swin-constant-bias", "swin", {"index", "arange", "masked_fill"}),  # table gather, mask built from arange
    ("swin-constant-bias", "swinv2", {"index", "sigmoid", "exp", "relu_", "arange"}),  # CPB-MLP, logit scale, mask
    ("swin-patch-merging", "swinv2", {"slice"}),
    ("swin-window-rank4", "swin", {"constant_pad_nd"}),
    ("l2norm-rsqrt", "swinv2", {"linalg_vector_norm"}),
    ("l2norm-rsqrt", "swiftformer", {"linalg_vector_norm"}),
    ("swiftformer-attention", "swiftformer", {"repeat", "_softmax"}),
    ("bn-fold", "cvt", {"native_batch_norm"}),
    ("swin-window-gather", "swin", {"roll", "constant_pad_nd"}),
    ("swin-window-gather", "swinv2", {"roll", "constant_pad_nd"}),
    ("gelu-erf", "cvt", {"gelu"}),
    ("gelu-erf", "swin", {"gelu"}),
])
def test_rewrite_removes_the_ops_it_targets(rewrite, family, gone, tiny_models):
    loaded = tiny_models[TINY_BY_FAMILY[family]]
    rewritten, _ = rewrite_module(loaded.module, [get_rewrite(rewrite)], _inputs()[:1].numpy(), lambda m: None)
    before, after = torch_ops(loaded.module, _inputs()[:1].numpy()), torch_ops(rewritten, _inputs()[:1].numpy())
    assert all(before[op] > 0 for op in gone) and all(after[op] == 0 for op in gone), {op: (before[op], after[op]) for op in gone}


def _tensors(out):
    return [t for t in (out if isinstance(out, (tuple, list)) else (out,)) if isinstance(t, torch.Tensor)]


def _max_rank(module: torch.nn.Module) -> int:
    """Highest rank of any tensor an aten op returns in one forward."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Ranks(TorchDispatchMode):
        top = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            Ranks.top = max([Ranks.top, *(t.dim() for t in _tensors(out))])
            return out

    with torch.no_grad(), Ranks():
        module(_inputs()[:1])
    return Ranks.top


@pytest.mark.parametrize("model", ["tiny-swin", "tiny-swinv2"])
def test_window_rewrites_keep_every_tensor_at_rank_4(model, tiny_models):
    loaded = tiny_models[model]
    rewritten, _ = rewrite_module(loaded.module, list_rewrites("swin-*"), _inputs()[:1].numpy(), lambda m: None)
    assert _max_rank(loaded.module) == 6 and _max_rank(rewritten) == 4


@pytest.mark.parametrize("family", ["swin", "swinv2"])
def test_window_rewrites_handle_a_grid_the_window_does_not_divide(family):
    """window 3 on a 16x16 and an 8x8 grid: HF pads to 18 and 9; the rewritten layer pads, masks and crops alike."""
    spec = resolve_spec(TINY_BY_FAMILY[family])
    spec = type(spec)(**{**spec.__dict__, "name": f"padded-{family}", "config": {**spec.config, "window_size": 3}})
    loaded = load_model(spec, "random", 0)
    chosen = [rw for rw in list_rewrites() if family in rw.families]
    rewritten, applied = rewrite_module(loaded.module, chosen, _inputs()[:1].numpy(), lambda m: None)
    assert all(a["modules_changed"] for a in applied)
    assert _max_abs(rewritten, loaded.module, _inputs()) <= MAX_ABS


def test_rewritten_window_layer_refuses_another_resolution(tiny_models):
    loaded = tiny_models["tiny-swin"]
    rewritten, _ = rewrite_module(loaded.module, [get_rewrite("swin-constant-bias")], _inputs()[:1].numpy(), lambda m: None)
    with pytest.raises(ValueError, match="rewritten for a"), torch.no_grad():
        rewritten(torch.zeros(1, 3, 96, 96))


def test_prepare_leaves_the_reference_untouched(tiny_models):
    loaded = tiny_models["tiny-swin"]
    state = copy.deepcopy(loaded.module.state_dict())
    to_export, record = prepare(loaded, "default", "tflite", _inputs()[:1].numpy(), lambda m: None)
    assert to_export is not loaded and to_export.module is not loaded.module and to_export.spec is loaded.spec
    assert [a["name"] for a in record["applied"]] == resolved_names("default", "swin", "tflite")
    assert "swin-patch-merging" in resolved_names("default", "swin", "tflite")
    assert record["torch_max_rel_diff"] <= 1e-5
    after = loaded.module.state_dict()
    assert state.keys() == after.keys() and all(torch.equal(state[k], after[k]) for k in state)  # merging permutes the copy only
    assert type(next(m for m in loaded.module.modules() if type(m).__name__.endswith("PatchMerging"))).__name__ == "SwinPatchMerging"


def test_prepare_with_none_exports_the_reference_itself(tiny_models):
    loaded = tiny_models["tiny-cvt"]
    to_export, record = prepare(loaded, "none", "coreml", _inputs()[:1].numpy(), lambda m: None)
    assert to_export is loaded and record == {"requested": "none", "applied": [], "skipped": []}


def test_a_rewrite_that_changes_the_function_is_caught_before_conversion(tiny_models):
    loaded = tiny_models["tiny-cvt"]

    def break_it(module) -> int:
        head = next(m for m in module.modules() if isinstance(m, torch.nn.Linear))
        with torch.no_grad():
            head.weight.mul_(1.5)
        return 1

    broken = Rewrite("broken", "scales a Linear", ("cvt",), TARGETS, (), break_it)
    rewritten, _ = rewrite_module(loaded.module, [broken], _inputs()[:1].numpy(), lambda m: None)
    with pytest.raises(ExportError, match="no longer computes"):
        check_equal(loaded.module, rewritten, _inputs()[:1].numpy(), ["broken"])
    assert check_equal(loaded.module, copy.deepcopy(loaded.module), _inputs()[:1].numpy(), ["none"]) == 0.0


def test_swiftformer_attention_fold_is_bit_exact(tiny_models):
    """softmax over a size-1 axis is exactly 1, so the folded sum equals HF's weighted sum bit for bit."""
    loaded = tiny_models["tiny-swiftformer"]
    rewritten, _ = rewrite_module(loaded.module, [get_rewrite("swiftformer-attention")], _inputs()[:1].numpy(), lambda m: None)
    with torch.no_grad():
        assert np.array_equal(rewritten(_inputs()).numpy(), loaded.module(_inputs()).numpy())


def test_rsqrt_normalize_is_normalize_and_survives_fp16_where_squaring_overflows():
    from edgevt.rewrites._util import l2_normalize

    x = torch.randn(4, 7, 32, generator=torch.Generator().manual_seed(3)) * 40  # norms ~ 230: x*x sums past fp16's 65504
    assert torch.allclose(l2_normalize(x, True), torch.nn.functional.normalize(x, dim=-1), rtol=1e-6, atol=1e-7)
    assert torch.equal(l2_normalize(torch.zeros(1, 3), True), torch.zeros(1, 3))  # eps keeps a zero vector zero
    half = (x * 10).half()  # norms ~ 2300: below the 4096 the prescale allows
    assert not torch.isfinite((half * half).sum(-1)).all()  # the naive sum of squares overflows in fp16
    ours = l2_normalize(half, True)
    assert torch.isfinite(ours).all() and torch.allclose(ours.float(), torch.nn.functional.normalize(half.float(), dim=-1), atol=2e-3)


def test_a_window_clamped_to_its_grid_refuses_always_partition():
    """Swin clamps the window (and drops the shift) when the grid is no larger than it; SwinBackbone's
    always_partition skips that clamp, which the rewritten layer, built for the clamped window, cannot follow."""
    from edgevt.rewrites._windows import window_layers

    spec = resolve_spec("tiny-swin")
    spec = type(spec)(**{**spec.__dict__, "name": "clamped-swin", "config": {**spec.config, "window_size": 8}})
    loaded = load_model(spec, "random", 0)
    layers = window_layers(copy.deepcopy(loaded.module))
    clamped = [layer for layer in layers if layer.clamped]
    assert clamped and all(layer.resolution == (8, 8) and layer.shift == 0 for layer in clamped)
    x = torch.zeros(1, 64, clamped[0].hf.layernorm_before.normalized_shape[0])
    with pytest.raises(ValueError, match="always_partition"), torch.no_grad():
        clamped[0](x, (8, 8), True)
    with torch.no_grad():
        assert clamped[0](x, (8, 8), False)[0].shape == x.shape
