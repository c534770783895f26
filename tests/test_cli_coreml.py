"""The Core ML commands as a user runs them, and the macOS-only paths as far as Linux can exercise them."""

import json
import sys
from types import SimpleNamespace

import pytest

pytest.importorskip("coremltools")

from edgevt.cli import main  # noqa: E402
from edgevt.errors import RuntimeUnavailable  # noqa: E402
from edgevt.exporters import coreml_runtime  # noqa: E402


def invoke(monkeypatch, capsys, *args):
    monkeypatch.setattr(sys, "argv", ["edgevt", *args])
    with pytest.raises(SystemExit) as info:
        main()
    out = capsys.readouterr()
    return info.value.code, out.out, out.err


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli-coreml")
    mp = pytest.MonkeyPatch()
    mp.setattr(sys, "argv", ["edgevt", "export", "tiny-swiftformer", "--target", "coreml", "--weights", "random", "--out", str(out), "--json",
                             "--rewrites", "none"])  # HF's modules as they are: F.normalize stays, for the pre-flight to find
    with pytest.raises(SystemExit) as info:
        main()
    mp.undo()
    assert info.value.code == 0
    return out / "tiny-swiftformer-fp16.mlpackage"


def test_export_defaults_to_fp16_and_reports_interpreter_parity(package):
    rep = json.loads((package.parent / "report.json").read_text())
    assert rep["target"] == "coreml" and rep["precision"] == "fp16"
    assert rep["parity"]["status"] == "pass" and rep["parity"]["engine"] == "mil-interpreter"
    assert rep["parity"]["diagnosis"]["worst_ops"]  # where fp16 loses accuracy
    assert rep["latency"]["status"] == "skipped" and "needs macOS" in rep["latency"]["reason"]
    assert rep["export"]["ane_preflight"]["findings"][0]["op_type"] == "reduce_l2_norm"


def test_preflight_command(package, monkeypatch, capsys):
    code, out, _ = invoke(monkeypatch, capsys, "preflight", str(package), "--json")
    payload = json.loads(out)
    assert code == 0
    assert [f["op_type"] for f in payload["preflight"]["findings"]] == ["reduce_l2_norm"]
    assert payload["compute_plan"] == {"status": "skipped", "reason": "needs macOS: MLComputePlan is part of Apple's Core ML runtime"}
    code, out, _ = invoke(monkeypatch, capsys, "preflight", str(package))
    assert code == 0 and "reduce_l2_norm" in out and "hint" in out


def test_preflight_rejects_other_artifacts(tmp_path, monkeypatch, capsys):
    other = tmp_path / "m.onnx"
    other.write_bytes(b"not a model")
    code, _, err = invoke(monkeypatch, capsys, "preflight", str(other))
    assert code == 2 and "not a Core ML package" in err


def test_bench_off_macos_exits_3_and_says_why(package, monkeypatch, capsys):
    code, _, err = invoke(monkeypatch, capsys, "bench", str(package))
    assert code == 3 and "needs macOS" in err and "edgevt validate" in err


def test_validate_with_another_seed_exits_1(package, monkeypatch, capsys):
    code, out, _ = invoke(monkeypatch, capsys, "validate", str(package), "--weights", "random", "--seed", "5", "--json")
    assert code == 1 and json.loads(out)["parity"]["status"] == "fail"


def test_forcing_the_runtime_off_macos_is_a_clear_error(package, monkeypatch):
    monkeypatch.setenv(coreml_runtime.ENGINE_ENV, "runtime")
    with pytest.raises(RuntimeUnavailable, match="only on macOS"):
        coreml_runtime.open_runner(package)
    monkeypatch.setenv(coreml_runtime.ENGINE_ENV, "interpreter")
    assert coreml_runtime.open_runner(package).engine == "mil-interpreter"


class MLNeuralEngineComputeDevice:
    pass


class MLCPUComputeDevice:
    pass


def test_compute_plan_placement_is_summarized_per_device():
    ops = [SimpleNamespace(operator_name=name) for name in ("const", "conv", "conv", "gather", "softmax")]
    devices = {"conv": MLNeuralEngineComputeDevice(), "softmax": MLNeuralEngineComputeDevice(), "gather": MLCPUComputeDevice()}

    def usage(op):
        return None if op.operator_name == "const" else SimpleNamespace(preferred_compute_device=devices[op.operator_name])

    summary = coreml_runtime.summarize_placement(ops, usage)
    assert summary == {"ops": 4, "by_device": {"ANE": 3, "CPU": 1}, "ane_share": 0.75, "off_ane": {"gather -> CPU": 1}}
