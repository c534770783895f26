"""The CLI's exit codes, messages and JSON, run in-process with Click's CliRunner."""

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from edgevt.cli import cli, main


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args):
        # main() maps EdgevtErrors to exit codes; emulate it around the group for in-process runs.
        monkeypatch.setattr(sys, "argv", ["edgevt", *args])
        with pytest.raises(SystemExit) as info:
            main()
        return info.value.code

    invoke.runner = runner
    return invoke


def test_help_documents_exit_codes_and_commands():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for text in ("Exit codes", "parity failed", "export", "validate", "bench", "doctor", "list", "info"):
        assert text in result.output


def test_help_is_instant_because_nothing_heavy_is_imported():
    code = "import sys, edgevt.cli; heavy = [m for m in ('torch', 'onnx', 'onnxruntime', 'transformers', 'litert_torch', 'ai_edge_litert', 'ai_edge_quantizer', 'tensorflow') if m in sys.modules]; print(heavy)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_list_json_has_all_variants_and_targets(run, capsys):
    assert run("list", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    names = [m["name"] for m in data["models"]]
    assert "swiftformer-xs" in names and "cvt-w24" in names
    assert data["targets"][0]["name"] == "onnx" and data["targets"][0]["available"]


def test_info_reports_params_macs_and_shapes(run, capsys):
    assert run("info", "swiftformer-xs", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["gmacs"] == pytest.approx(0.60, abs=0.02)  # FACTS: 0.60 GMACs measured with FlopCounterMode
    assert data["outputs"][0]["shape"] == [1, 1000] and data["inputs"][0]["shape"] == [1, 3, 224, 224]
    assert 2.5e6 < data["params"] < 4e6


def test_unknown_model_exits_2_with_suggestions(run, capsys):
    assert run("export", "swiftformer-x", "--weights", "random") == 2
    err = capsys.readouterr().err
    assert "unknown model 'swiftformer-x'" in err and "swiftformer-xs" in err


def test_unknown_model_in_json_mode_prints_an_error_object(run, capsys):
    assert run("info", "nope", "--json") == 2
    data = json.loads(capsys.readouterr().out)
    assert data["exit_code"] == 2 and "unknown model" in data["error"]


def test_bad_precision_is_a_usage_error(run, capsys):
    assert run("export", "swiftformer-xs", "--precision", "int4") == 2
    assert "int4" in capsys.readouterr().err


def test_unknown_target_exits_2(run, capsys):
    assert run("export", "tiny-swin", "--target", "onxx", "--weights", "random") == 2
    assert "did you mean onnx" in capsys.readouterr().err


def test_bad_tolerance_key_exits_2(run, capsys):
    assert run("export", "tiny-swin", "--tolerance", "cosine=0.9") == 2
    assert "unknown tolerance" in capsys.readouterr().err


def test_missing_weights_path_exits_2(run, capsys):
    assert run("export", "tiny-swin", "--weights", "does/not/exist.safetensors") == 2
    assert "does not exist" in capsys.readouterr().err


def test_pretrained_without_hub_suggests_random(run, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-cache"))
    assert run("export", "swiftformer-xs") == 2
    err = capsys.readouterr().err
    assert "--weights random" in err and "HF_HUB_OFFLINE" in err


def test_validate_missing_artifact_exits_2(run, capsys):
    assert run("validate", "nothing.onnx", "--model", "tiny-swin") == 2
    assert "does not exist" in capsys.readouterr().err


def test_bench_unknown_artifact_kind_exits_2(run, capsys, tmp_path):
    (tmp_path / "model.bin").write_bytes(b"x")
    assert run("bench", "model.bin") == 2
    assert "not an artifact" in capsys.readouterr().err


def test_export_validate_bench_round_trip(run, capsys, tmp_path):
    assert run("-q", "export", "tiny-swiftformer", "--weights", "random", "--out", "x", "--runs", "3", "--warmup", "1", "--max-time", "1",
               "--json") == 0
    rep = json.loads(capsys.readouterr().out)
    for key in ("model", "target", "precision", "artifact"):
        assert key in rep
    assert rep["parity"]["status"] == "pass" and rep["parity"]["outputs"][0]["name"] == "logits"
    assert {"max_abs", "cosine", "psnr_db"} <= set(rep["parity"]["outputs"][0])
    assert rep["latency"]["cold"] and rep["latency"]["warm"]
    artifact = rep["artifact"]["path"]
    assert run("-q", "validate", artifact, "--weights", "random", "--seed", "0") == 0  # model read from report.json
    capsys.readouterr()
    assert run("-q", "validate", artifact, "--weights", "random", "--seed", "1", "--json") == 1
    assert json.loads(capsys.readouterr().out)["parity"]["status"] == "fail"
    assert run("-q", "bench", artifact, "--runs", "3", "--warmup", "0", "--threads", "1", "--min-time", "0", "--max-time", "0.5", "--json") == 0
    latency = json.loads(capsys.readouterr().out)["latency"]
    assert latency["warm"]["runs"] >= 3 and latency["protocol"]["sampling"]["max_time_s"] == 0.5  # --runs is a floor
    assert latency["compute_bound"]["macs"] == rep["latency"]["compute_bound"]["macs"] > 0  # no --model: MACs from the export


def test_profile_supplies_target_precision_and_bench(run, capsys):
    assert run("-q", "export", "tiny-swin", "--weights", "random", "--profile", "ci-fast", "--out", "p", "--json") == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["precision"] == "fp32" and rep["latency"]["warm"]["runs"] >= 10 and rep["latency"]["settings"]["runs"] == 10


def test_bad_profile_exits_2_naming_file_and_key(run, capsys, tmp_path):
    (tmp_path / "bad.yaml").write_text("target: onnx\nbench:\n  runz: 3\n")
    assert run("export", "tiny-swin", "--profile", str(tmp_path / "bad.yaml")) == 2
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "bench.runz" in err


def test_doctor_reports_runtimes(run, capsys):
    assert run("doctor", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    mods = {c["module"]: c for c in data["checks"]}
    assert mods["onnxruntime"]["ok"] and data["torch_build"] == "cpu"
    assert "coremltools" in mods  # reported even when missing, with how to install it


def test_too_old_opset_is_refused_before_any_work(run, capsys):
    assert run("export", "tiny-swin", "--weights", "random", "--option", "opset=13") == 2
    assert "at least 17" in capsys.readouterr().err


def test_unknown_target_option_exits_2(run, capsys):
    assert run("export", "tiny-swin", "--weights", "random", "--option", "colour=red") == 2
    assert "unknown onnx option" in capsys.readouterr().err
