"""Tiny variants of each family (registered like the real ones) keep the suite fast."""

from __future__ import annotations

import os
import tempfile
import warnings

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# No GEMM probe per test (seconds each, and never into the user's cache): pinned rates; tests of the probe unset it.
os.environ.setdefault("EDGEVT_GEMM_GFLOPS", "onnxruntime=100,torch=50")
# Run logs of in-process CLI calls go to a temporary directory, not ~/.local/state/edgevt/logs.
os.environ.setdefault("EDGEVT_LOG_DIR", tempfile.mkdtemp(prefix="edgevt-test-logs-"))
# The fast suite checks parity on 8 of the 104 built-in photos (the 8 originals: the cap picks every 13th view); users
# get all 104 by default. Tests of the default set clear this (monkeypatch.delenv).
os.environ.setdefault("EDGEVT_SAMPLES", "8")
warnings.filterwarnings("ignore", category=DeprecationWarning)

from edgevt.models import registry  # noqa: E402
from edgevt.models.registry import convnext_processor, family_processor  # noqa: E402

TINY = {
    "tiny-swiftformer": ("swiftformer", {"embed_dims": [8, 16, 24, 32], "depths": [1, 1, 1, 2]}),
    "tiny-swin": ("swin", {"embed_dim": 12, "depths": [2, 2], "num_heads": [1, 2], "window_size": 4}),
    "tiny-swinv2": ("swinv2", {"embed_dim": 12, "depths": [2, 2], "num_heads": [1, 2], "window_size": 4}),
    "tiny-cvt": (
        "cvt",
        {
            "embed_dim": [16, 32], "num_heads": [1, 2], "depth": [1, 2], "patch_sizes": [7, 3], "patch_stride": [4, 2],
            "patch_padding": [2, 1], "mlp_ratio": [2.0, 2.0], "attention_drop_rate": [0.0, 0.0], "drop_rate": [0.0, 0.0],
            "drop_path_rate": [0.0, 0.0], "qkv_bias": [True, True], "cls_token": [False, True],
            "qkv_projection_method": ["dw_bn", "dw_bn"], "kernel_qkv": [3, 3], "padding_kv": [1, 1],
            "stride_kv": [2, 2], "padding_q": [1, 1], "stride_q": [1, 1],
        },
    ),
}
TINY_NAMES = list(TINY)


def _register_tiny() -> None:
    fams = registry.families()
    for name, (family, config) in TINY.items():
        if name not in {s.name for s in registry.list_models()}:
            fam = fams[family]
            processor = convnext_processor(64) if family == "cvt" else family_processor(fam, 64)
            cfg = config if family == "cvt" else {"image_size": 64, **config}
            registry.register(name, fam, f"edgevt-tests/{name}", processor, cfg, input_size=64, paper_params_m=0.1, paper_gmacs=0.01)


_register_tiny()


@pytest.fixture
def quiet_log():
    return lambda msg: None
