"""Bad input is refused at the edge, before any work, with exit 2 and a message that says what to do."""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from contract_fixtures import CORRUPTIONS, check_contract, copy_export, corrupt, edgevt, env, exported, snapshot  # noqa: F401
from edgevt.limits import TOLERANCE_RANGES
from edgevt.parity import Thresholds


def test_the_tolerance_rules_cover_every_threshold():
    assert list(TOLERANCE_RANGES) == Thresholds.keys()


@pytest.mark.parametrize("command", [["export", "tiny-swiftformer", "--weights", "random"], ["info", "tiny-swin"],
                                     ["bench", "x.onnx"], ["validate", "x.onnx"], ["matrix", "-m", "tiny-swin"]])
@pytest.mark.parametrize("seed", ["-5", "99999999999999999999", "18446744073709551616"])
def test_a_seed_torch_and_numpy_cannot_take_exits_2_with_one_json_object(command, seed, tmp_path):
    result = edgevt(*command, "--seed", seed, "--json", *(["--out", str(tmp_path / "o")] if command[0] in ("export", "matrix") else []))
    check_contract(result, as_json=True)
    assert result.code == 2 and "--seed" in result.json()["error"] and "18446744073709551615" in result.json()["error"]
    assert not (tmp_path / "o").exists()


def test_the_largest_seed_torch_takes_is_accepted():
    from edgevt.limits import SEED_MAX, seed_problem

    assert seed_problem(SEED_MAX) is None and seed_problem(SEED_MAX + 1) and seed_problem(-1) and seed_problem(True)


@pytest.mark.parametrize("tolerance", ["atol=.nan", "rtol=nan", "min_cosine=-1", "min_cosine=1.1", "min_top1=2", "atol=-1e-3",
                                       "min_psnr_db=inf", "min_cosine=abc", "cosine=0.9"])
def test_a_tolerance_outside_its_meaning_exits_2(tolerance, tmp_path):
    result = edgevt("export", "tiny-swiftformer", "--weights", "random", "--out", str(tmp_path / "o"), "--tolerance", tolerance, "--json")
    check_contract(result, as_json=True)
    assert result.code == 2 and "tolerance" in result.json()["error"] and not (tmp_path / "o").exists()


def test_tolerances_in_scientific_notation_are_numbers():
    from edgevt.limits import tolerance_value

    assert tolerance_value("atol", "1e-4") == (1e-4, None) and tolerance_value("min_top1", 0)[0] == 0.0


def test_the_issue_s_nan_tolerances_no_longer_pass_a_swin_artifact_as_swiftformer(exported, tmp_path):
    artifact = copy_export(exported("tiny-swin", "onnx"), tmp_path / "swin")
    before = snapshot(tmp_path / "swin")
    result = edgevt("validate", str(artifact), "--model", "tiny-swiftformer", "--weights", "random", "--json",
                    "--tolerance", "atol=.nan", "--tolerance", "rtol=.nan", "--tolerance", "min_cosine=-1", "--tolerance", "min_top1=0")
    check_contract(result, as_json=True)
    assert result.code == 2 and snapshot(tmp_path / "swin") == before
    honest = edgevt("-q", "validate", str(artifact), "--model", "tiny-swiftformer", "--weights", "random", "--json")
    check_contract(honest, as_json=True)
    assert honest.code == 1 and honest.json()["parity"]["status"] == "fail"
    after = snapshot(tmp_path / "swin")
    assert {k: v for k, v in after.items() if not k.startswith("report.failed")} == before  # the earlier report is untouched


@pytest.mark.parametrize("yaml_text, key", [
    ("bench:\n  runs: 0\n", "bench.runs"),
    ("bench:\n  threads: 0\n", "bench.threads"),
    ("bench:\n  min_time_s: .inf\n", "bench.min_time_s"),
    ("bench:\n  warmup: -1\n", "bench.warmup"),
    ("tolerances:\n  atol: .nan\n", "tolerances.atol"),
    ("tolerances:\n  min_cosine: 1.1\n", "tolerances.min_cosine"),
    ("target: tflite\nprecision: palettize\n", "precision"),
    ("target: [onnx]\n", "target"),
])
def test_profile_values_follow_the_command_line_rules(yaml_text, key, tmp_path):
    (tmp_path / "p.yaml").write_text(yaml_text)
    result = edgevt("export", "tiny-swiftformer", "--weights", "random", "--profile", str(tmp_path / "p.yaml"), "--out", str(tmp_path / "o"))
    check_contract(result, as_json=False)
    assert result.code == 2 and f"key '{key}'" in result.err and not (tmp_path / "o").exists()


def test_a_profile_path_that_is_a_directory_or_not_text_says_so(tmp_path):
    (tmp_path / "dir.yaml").mkdir()
    result = edgevt("export", "tiny-swin", "--profile", str(tmp_path / "dir.yaml"))
    assert result.code == 2 and "is a directory" in result.err and "does not exist" not in result.err
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00garbage")
    result = edgevt("export", "tiny-swin", "--profile", str(tmp_path / "bin.yaml"))
    check_contract(result, as_json=False)
    assert result.code == 2 and "not UTF-8" in result.err


def _unwritable_dir(tmp_path: Path) -> Path:
    """A directory nobody can create files in: read-only permissions, or (as root, who ignores them) sysfs."""
    candidate = tmp_path / "ro"
    candidate.mkdir()
    candidate.chmod(0o555)
    for path in (candidate, Path("/sys/edgevt-out")):
        parent = path if path.exists() else path.parent
        try:
            with tempfile.TemporaryFile(dir=parent):
                pass
        except OSError:
            return path / "out"
    pytest.skip("no unwritable directory here (root ignores permissions and /sys is writable)")


def test_an_unwritable_out_exits_2_before_the_reference_is_built(tmp_path):
    out = _unwritable_dir(tmp_path)
    result = edgevt("export", "tiny-swiftformer", "--weights", "random", "--out", str(out), "--json")
    check_contract(result, as_json=True)
    assert result.code == 2 and "--out" in result.json()["error"] and "loading" not in result.err  # no work was done
    file_out = tmp_path / "a-file"
    file_out.write_text("x")
    assert edgevt("export", "tiny-swiftformer", "--weights", "random", "--out", str(file_out / "sub")).code == 2


@pytest.mark.parametrize("target", ["onnx", "tflite", "coreml"])
@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_a_corrupt_artifact_is_bad_input_for_validate_bench_and_preflight(exported, target, kind, tmp_path):
    good = exported("tiny-swiftformer", target)
    other = exported("tiny-swiftformer", "onnx" if target != "onnx" else "tflite")
    bad = corrupt(kind, good, other, tmp_path / f"bad{good.suffix}", np.random.default_rng(len(kind)))
    commands = [["validate", str(bad), "--model", "tiny-swiftformer", "--weights", "random"], ["bench", str(bad), "--runs", "2"]]
    if target == "coreml":
        commands.append(["preflight", str(bad)])
    for command in commands:
        result = edgevt(*command, "--json")
        check_contract(result, as_json=True)
        assert result.code == 2, (command, result)
        assert "loading" not in result.err  # refused before the reference model was built


def test_an_artifact_of_another_input_size_is_bad_input(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["pixel_values"], ["logits"])], "g",
                              [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, [1, 3, 32, 32])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3, 32, 32])])
    path = tmp_path / "small.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    result = edgevt("-q", "validate", str(path), "--model", "tiny-swiftformer", "--weights", "random", "--json")
    check_contract(result, as_json=True)
    assert result.code == 2 and "takes input [1, 3, 32, 32]" in result.json()["error"]


@pytest.mark.parametrize("spec, says", [("foo=no_such_module", "cannot be imported"), ("foo=json", "defines no TARGET"),
                                        ("foo", "is not NAME=MODULE"), ("foo=..rel", "is not NAME=MODULE")])
def test_a_bad_extra_target_is_a_usage_error_even_for_list(spec, says):
    with env(EDGEVT_EXTRA_TARGETS=spec):
        result = edgevt("list", "--json")
    check_contract(result, as_json=True)
    assert result.code == 2 and says in result.json()["error"] and "EDGEVT_EXTRA_TARGETS" in result.json()["hint"]


@pytest.mark.parametrize("precision", ["palettize", "int8-weights"])
def test_tflite_refuses_core_ml_precisions_and_the_matrix_lists_them_unsupported(precision, tmp_path):
    result = edgevt("export", "tiny-swiftformer", "--target", "tflite", "--precision", precision, "--weights", "random",
                    "--option", "static_ops=compute", "--out", str(tmp_path / "o"), "--json")
    check_contract(result, as_json=True)
    assert result.code == 2 and "int8-static" in result.json()["hint"] and not (tmp_path / "o").exists()
    from edgevt.matrix import make_plan

    plan = make_plan("tiny-swiftformer", "tflite", precision, None, "random", 0, {}, {}, {}, None)
    assert plan.cells[0].unsupported and "tflite does not make" in plan.cells[0].unsupported


def test_tflite_exporter_itself_refuses_a_precision_it_does_not_make(tmp_path):
    from edgevt.errors import UsageError
    from edgevt.exporters.tflite import export
    from edgevt.parity import Precision

    with pytest.raises(UsageError, match="does not support palettize"):
        export(None, None, Precision.PALETTIZE, {}, tmp_path, lambda msg: None)


@pytest.mark.parametrize("fault", [["--seed", "-5"], ["--weights", "no/such.safetensors"], ["--tolerance", "min_cosine=2"],
                                   ["--profile", "PROFILE"], ["--out", "UNWRITABLE"], ["-p", "int4"], ["--threads", "0"]])
def test_matrix_usage_errors_exit_2_and_write_and_cache_nothing(fault, tmp_path):
    (tmp_path / "p.yaml").write_text("bench:\n  runs: 0\n")
    if "UNWRITABLE" in fault:
        fault = [fault[0], str(_unwritable_dir(tmp_path))]
    fault = [str(tmp_path / "p.yaml") if a == "PROFILE" else a for a in fault]
    out, cache = tmp_path / "out", tmp_path / "cache"
    with env(EDGEVT_CACHE_DIR=str(cache)):
        result = edgevt("-q", "matrix", "-m", "tiny-swiftformer", "--weights", "random", "--out", str(out), "--json", *fault)
    check_contract(result, as_json=True)
    assert result.code == 2 and not out.exists() and not cache.exists()


def test_click_usage_errors_print_one_json_object(tmp_path):
    for args in (["bench", "x.onnx", "--runs", "0"], ["export"], ["export", "m", "--no-such-flag"], ["frobnicate"],
                 ["-q", "-v", "list"], ["bench", "x.onnx", "--min-time", "nan"], ["export", "m", "--option", "opset={"]):
        result = edgevt(*args, "--json")
        check_contract(result, as_json=True)
        assert result.code == 2 and result.json()["exit_code"] == 2 and result.json()["hint"], args
