"""--rewrites on the command line, in profiles and in the matrix (plan and cache key); ONNX Runtime's fusions."""

from __future__ import annotations

import json
import sys

import pytest

from edgevt import pipeline
from edgevt.cli import main
from edgevt.errors import ProfileError, UsageError
from edgevt.matrix import make_plan
from edgevt.matrix.cache import artifact_key
from edgevt.profiles import load_profile
from edgevt.rewrites import resolved_names


@pytest.fixture
def run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)

    def invoke(*args):
        monkeypatch.setattr(sys, "argv", ["edgevt", *args])
        with pytest.raises(SystemExit) as info:
            main()
        out = capsys.readouterr()
        return info.value.code, out.out, out.err

    return invoke


def _profile(tmp_path, text: str) -> str:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    return str(path)


def test_unknown_rewrite_on_the_command_line_is_a_usage_error_with_a_suggestion(run):
    code, _, err = run("export", "tiny-swin", "--rewrites", "swin-shift-slice", "--no-bench")
    assert code == 2 and "swin-shift-slices" in err


def test_cli_export_applies_the_target_defaults_unless_told_otherwise(run, tmp_path):
    code, out, _ = run("-q", "export", "tiny-swiftformer", "--target", "onnx", "--weights", "random", "--no-bench", "--json", "--out", "a")
    rewrites = json.loads(out)["export"]["rewrites"]
    assert code == 0 and rewrites["requested"] == "default"
    assert [a["name"] for a in rewrites["applied"]] == resolved_names("default", "swiftformer", "onnx") != []
    profile = _profile(tmp_path, "target: onnx\nrewrites: [swiftformer-attention]\n")
    code, out, _ = run("-q", "export", "tiny-swiftformer", "--profile", profile, "--rewrites", "none", "--weights", "random", "--no-bench",
                       "--json", "--out", "b")
    assert code == 0 and json.loads(out)["export"]["rewrites"] == {"requested": "none", "applied": [], "skipped": []}


@pytest.mark.parametrize("text, expected", [
    ("rewrites: none\n", "none"), ("rewrites: default\n", "default"),
    ("rewrites: [fused-qkv, l2norm-rsqrt]\n", ("l2norm-rsqrt", "fused-qkv")), ("rewrites: swin-shift-slices\n", ("swin-shift-slices",)),
])
def test_profile_rewrites_key(tmp_path, text, expected):
    assert load_profile(_profile(tmp_path, text)).rewrites == expected


@pytest.mark.parametrize("text", ["rewrites: [swin-rol]\n", "rewrites: 3\n", "rewrites: [none, fused-qkv]\n"])
def test_bad_profile_rewrites_name_the_key(tmp_path, text):
    with pytest.raises(ProfileError) as info:
        load_profile(_profile(tmp_path, text))
    assert info.value.key == "rewrites"


def test_matrix_cells_carry_their_resolved_rewrites_and_the_cache_key_tells_them_apart(tmp_path):
    plan = make_plan("tiny-swin,tiny-cvt", "onnx,coreml", "default", None, "random", 0, {}, {}, {}, None)
    assert plan.describe()["rewrites"] == "default"
    for cell in plan.cells:
        family = plan.specs[cell.model].family.name
        assert list(cell.rewrites) == resolved_names("default", family, cell.target)
    plain = make_plan("tiny-swin", "onnx", None, _profile(tmp_path, "rewrites: none\n"), "random", 0, {}, {}, {}, None)
    assert plain.cells[0].rewrites == () and plain.describe()["rewrites"] == "none"
    chosen = make_plan("tiny-swin", "onnx", None, None, "random", 0, {}, {}, {}, None, rewrites=("fused-qkv",))
    assert chosen.cells[0].rewrites == ("fused-qkv",)
    from edgevt.exporters import get_target
    from edgevt.models.registry import spec_to_dict

    spec, onnx = spec_to_dict(plan.specs["tiny-swin"]), get_target("onnx")
    coreml_default = next(c.rewrites for c in plan.cells if c.model == "tiny-swin" and c.target == "coreml")
    assert coreml_default and "fused-qkv" in coreml_default
    keys = {artifact_key(spec, {"random": True}, onnx, "fp32", {}, c) for c in [(), ("fused-qkv",), coreml_default]}
    assert len(keys) == 3


def test_list_shows_the_rewrites(run):
    code, out, _ = run("list", "--json")
    rewrites = {rw["name"]: rw for rw in json.loads(out)["rewrites"]}
    assert code == 0 and rewrites["swin-shift-slices"]["families"] == ["swin", "swinv2"]
    assert "tflite" not in rewrites["cvt-matmul"]["targets"]


def test_ort_fusions_are_saved_into_an_fp32_artifact_that_passes_parity(tmp_path):
    rep = pipeline.export("tiny-swin", "onnx", None, "random", 0, tmp_path, {"ort_fusions": True}, {}, None, lambda m: None,
                          rewrites="default").report
    assert rep["parity"]["status"] == "pass", rep["parity"]["failures"]
    fused = rep["export"]["ort_fusions"]["fused"]
    assert fused.get("SkipLayerNormalization", 0) + fused.get("LayerNormalization", 0) > 0 and fused.get("BiasGelu", 0) > 0
    assert "SkipLayerNormalization" in rep["export"]["ops"]


def test_ort_fusions_refuse_other_precisions(tmp_path):
    from edgevt.parity import Precision

    with pytest.raises(UsageError, match="fp32"):
        pipeline.export("tiny-swin", "onnx", Precision.FP16, "random", 0, tmp_path, {"ort_fusions": True}, {}, None, lambda m: None)
