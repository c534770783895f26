"""One tiny-config export per family, every precision once, and the artifact-safety rules."""

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import TINY_NAMES

from edgevt import pipeline
from edgevt.errors import EXIT_OK, EXIT_PARITY, ExportError
from edgevt.fsio import sha256_file
from edgevt.parity import Precision

REQUIRED_KEYS = {"schema_version", "model", "target", "precision", "artifact", "parity", "latency", "environment"}


def export(name, out, precision=Precision.FP32, tolerances=None, options=None, bench=None):
    return pipeline.export(name, "onnx", precision, "random", 0, out, options or {}, tolerances or {}, bench, lambda m: None)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("swiftformer")
    outcome = export("tiny-swiftformer", out)
    assert outcome.exit_code == EXIT_OK
    return Path(outcome.report["artifact"]["path"])


@pytest.mark.parametrize("name", TINY_NAMES)
def test_each_family_exports_fp32_and_passes_parity(name, tmp_path):
    outcome = export(name, tmp_path)
    rep = outcome.report
    assert outcome.exit_code == EXIT_OK, rep["parity"]["failures"]
    assert REQUIRED_KEYS <= set(rep)
    assert rep["parity"]["status"] == "pass" and rep["parity"]["engine"] == "onnxruntime-cpu"
    assert rep["parity"]["outputs"][0]["cosine"] >= 0.99999
    assert rep["parity"]["top1_agreement"] == 1.0
    artifact = Path(rep["artifact"]["path"])
    assert artifact.is_file() and artifact.name == f"{name}-fp32.onnx"
    onnx.checker.check_model(str(artifact))
    on_disk = json.loads((tmp_path / "report.json").read_text())
    assert on_disk["parity"]["status"] == "pass" and (tmp_path / "report.md").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([artifact.name, "report.json", "report.md"])  # no staging left


@pytest.mark.parametrize("precision", [Precision.FP16, Precision.INT8_DYNAMIC, Precision.INT8_STATIC])
def test_reduced_precisions_export_and_report_their_thresholds(precision, tmp_path):
    rep = export("tiny-swin", tmp_path, precision).report
    assert rep["precision"] == precision.value
    assert rep["parity"]["status"] in ("pass", "fail")
    assert rep["parity"]["outputs"][0]["cosine"] > 0.98
    if precision is not Precision.FP16:
        assert "quantization" in rep["export"]
        assert "QuantizeLinear" in rep["export"]["ops"] or "DynamicQuantizeLinear" in rep["export"]["ops"]
    else:
        assert rep["parity"]["thresholds"]["atol"] == 5e-2


def test_dynamo_failure_falls_back_to_torchscript_and_says_why(tmp_path, monkeypatch):
    from edgevt.exporters import onnx as onnx_target

    real = onnx_target._torch_export

    def dynamo_breaks(module, sample, path, use_dynamo, *args):
        if use_dynamo:
            raise RuntimeError("simulated decomposition failure")
        return real(module, sample, path, use_dynamo, *args)

    monkeypatch.setattr(onnx_target, "_torch_export", dynamo_breaks)
    rep = export("tiny-swin", tmp_path).report
    assert rep["export"]["exporter"] == "torchscript"
    assert "simulated decomposition failure" in rep["export"]["fallback_reason"]
    assert rep["parity"]["status"] == "pass"


def test_converter_error_is_an_export_error_and_leaves_nothing(tmp_path, monkeypatch):
    from edgevt.exporters import onnx as onnx_target

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(onnx_target, "_torch_export", broken)
    with pytest.raises(ExportError, match="boom"):
        export("tiny-swin", tmp_path / "new" / "dir")
    assert list(tmp_path.iterdir()) == []


def test_failed_parity_never_replaces_a_good_artifact(exported, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(exported.parent, out)
    good = out / exported.name
    before = (sha256_file(good), (out / "report.json").read_text())
    # exact equality to float64 rounding: must fail (a cosine above 1, which used to force this, is now refused as bad input)
    outcome = export("tiny-swiftformer", out, tolerances={"min_cosine": 1.0, "atol": 0.0, "rtol": 0.0})
    assert outcome.exit_code == EXIT_PARITY
    assert (sha256_file(good), (out / "report.json").read_text()) == before
    assert (out / "tiny-swiftformer-fp32.rejected.onnx").is_file()
    failed = json.loads((out / "report.failed.json").read_text())
    assert failed["parity"]["status"] == "fail" and any("cosine" in f for f in failed["parity"]["failures"])


def test_validate_passes_against_the_same_reference(exported):
    outcome = pipeline.validate(exported, "tiny-swiftformer", Precision.FP32, "random", 0, {}, None, lambda m: None)
    assert outcome.exit_code == EXIT_OK
    assert outcome.report["command"] == "validate" and "export" in outcome.report  # merged into the export report


def test_validate_against_another_seed_fails(exported):
    outcome = pipeline.validate(exported, "tiny-swiftformer", Precision.FP32, "random", 1, {}, None, lambda m: None)
    assert outcome.exit_code == EXIT_PARITY
    assert outcome.report["parity"]["top1_agreement"] < 1.0 or outcome.report["parity"]["outputs"][0]["cosine"] < 0.99999
    assert (exported.parent / "report.failed.json").is_file()
    assert json.loads((exported.parent / "report.json").read_text())["parity"]["status"] == "pass"


def test_validate_detects_tampered_weights(exported, tmp_path):
    model = onnx.load(str(exported))
    init = max(model.graph.initializer, key=lambda t: np.prod(t.dims))  # the biggest weight tensor
    arr = onnx.numpy_helper.to_array(init).copy()
    arr.flat[: arr.size // 10] *= 1.05  # 5% change on a tenth of one tensor
    init.CopyFrom(onnx.numpy_helper.from_array(arr, init.name))
    tampered = tmp_path / exported.name
    onnx.save(model, str(tampered))
    outcome = pipeline.validate(tampered, "tiny-swiftformer", Precision.FP32, "random", 0, {}, None, lambda m: None)
    assert outcome.exit_code == EXIT_PARITY
    assert outcome.report["parity"]["status"] == "fail"


def test_bench_measures_artifact_and_torch_baseline(exported):
    from edgevt.bench import BenchSettings

    settings = BenchSettings(runs=5, warmup=1, threads=1, min_time_s=0, max_time_s=0.5)
    outcome = pipeline.bench_artifact(exported, settings, "tiny-swiftformer", "random", 0, lambda m: None)
    lat = outcome.report["latency"]
    assert lat["engine"] == "onnxruntime-cpu" and lat["warm"]["runs"] >= 5 and len(lat["samples_ms"]) == lat["warm"]["runs"]
    assert lat["protocol"]["engines"] == ["onnxruntime-cpu", "torch-eager"] and lat["efficiency"] > 0
    assert lat["cold"]["load_ms"] > 0 and lat["cold"]["first_inference_ms"] > 0
    assert lat["baseline"]["engine"] == "torch-eager" and lat["speedup_vs_torch_eager"] > 0
    assert lat["settings"]["threads"] == lat["baseline"]["settings"]["threads"] == 1
    assert outcome.report["environment"]["threads"] == 1


def test_dynamic_batch_export_runs_a_batch_of_four(tmp_path):
    from edgevt.exporters.onnx import OrtRunner

    rep = export("tiny-swiftformer", tmp_path, options={"dynamic_batch": True}).report
    runner = OrtRunner(Path(rep["artifact"]["path"]))
    out = runner.run(np.zeros((4, 3, 64, 64), np.float32))
    assert out["logits"].shape == (4, 1000)
