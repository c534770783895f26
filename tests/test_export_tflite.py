"""TFLite target: litert-torch export, ai-edge-quantizer precisions, XNNPACK runner, parity that can fail."""

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("litert_torch")
pytest.importorskip("ai_edge_litert")

from edgevt import pipeline  # noqa: E402
from edgevt.errors import EXIT_OK, EXIT_PARITY, ExportError, RuntimeUnavailable  # noqa: E402
from edgevt.exporters import tflite  # noqa: E402
from edgevt.parity import Precision  # noqa: E402

QUIET = lambda m: None  # noqa: E731


def export(name, out, precision=Precision.FP32, options=None, tolerances=None, bench=None):
    return pipeline.export(name, "tflite", precision, "random", 0, out, options or {}, tolerances or {}, bench, QUIET)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from edgevt.bench import BenchSettings

    out = tmp_path_factory.mktemp("tflite-swiftformer")
    outcome = export("tiny-swiftformer", out, bench=BenchSettings(runs=3, warmup=1, threads=1, min_time_s=0, max_time_s=0.5))
    assert outcome.exit_code == EXIT_OK, outcome.report["parity"]["failures"]
    return outcome.report


def test_fp32_export_runs_on_xnnpack_and_passes_parity(exported):
    parity, details = exported["parity"], exported["export"]
    assert parity["status"] == "pass" and parity["engine"] == "ai-edge-litert-xnnpack"
    assert parity["outputs"][0]["cosine"] >= 0.99999 and parity["top1_agreement"] == 1.0
    artifact = Path(exported["artifact"]["path"])
    assert artifact.name == "tiny-swiftformer-fp32.tflite"
    assert sorted(p.name for p in artifact.parent.iterdir()) == sorted([artifact.name, "report.json", "report.md"])
    xnn = details["xnnpack"]
    assert xnn["nodes_total"] == sum(details["ops"].values()) and 0 < xnn["nodes_delegated"] <= xnn["nodes_total"]
    assert details["layout"] == "NCHW" and details["converter"].startswith("litert-torch")
    lat = exported["latency"]
    assert lat["engine"] == "ai-edge-litert-xnnpack" and lat["baseline"]["engine"] == "torch-eager"
    assert lat["cold"]["load_ms"] > 0 and lat["speedup_vs_torch_eager"] > 0


def test_validate_against_another_seed_fails(exported):
    artifact = Path(exported["artifact"]["path"])
    outcome = pipeline.validate(artifact, "tiny-swiftformer", Precision.FP32, "random", 1, {}, None, QUIET)
    assert outcome.exit_code == EXIT_PARITY and outcome.report["parity"]["status"] == "fail"
    assert json.loads((artifact.parent / "report.json").read_text())["parity"]["status"] == "pass"


def _largest_weight(path: Path) -> np.ndarray:
    interp = tflite._interpreter(path, 1, xnnpack=False)
    consts = [t for t in interp.get_tensor_details() if t["dtype"] == np.float32 and np.prod(t["shape"]) > 0]
    sizes = {t["index"]: int(np.prod(t["shape"])) for t in consts}
    for index in sorted(sizes, key=sizes.get, reverse=True):
        try:
            return interp.get_tensor(index)  # constants are readable before any invoke
        except ValueError:
            continue
    raise AssertionError("no readable weight tensor")


def test_validate_detects_altered_weight_bytes(exported, tmp_path):
    artifact = Path(exported["artifact"]["path"])
    data = artifact.read_bytes()
    weight = _largest_weight(artifact)
    raw = weight.astype("<f4").tobytes()
    at = data.find(raw)
    assert at > 0 and data.find(raw, at + 1) == -1  # the weight's bytes appear once in the flatbuffer
    altered = weight.copy()
    altered.flat[: altered.size // 10] *= 1.05  # 5% change on a tenth of one tensor
    tampered = tmp_path / artifact.name
    tampered.write_bytes(data[:at] + altered.astype("<f4").tobytes() + data[at + len(raw):])
    outcome = pipeline.validate(tampered, "tiny-swiftformer", Precision.FP32, "random", 0, {}, None, QUIET)
    assert outcome.exit_code == EXIT_PARITY


@pytest.fixture
def reuse_fp32(exported, monkeypatch):
    """Reuse the fp32 conversion (litert-torch is the slow step); quantization and parity run for real."""
    fp32 = Path(exported["artifact"]["path"])
    monkeypatch.setattr(tflite, "convert_fp32", lambda model, sample, channel_last, path: path.write_bytes(fp32.read_bytes()))
    return exported


@pytest.mark.parametrize("precision,options", [(Precision.FP16, {}), (Precision.INT8_DYNAMIC, {}),
                                               (Precision.INT8_STATIC, {"static_ops": "compute"})])
def test_quantized_precisions(reuse_fp32, precision, options, tmp_path):
    from edgevt.images import ImageOptions
    from photo_fixtures import natural_folder

    calibration = natural_folder(tmp_path / "calibration", 3)  # int8-static calibrates on these 3 crops
    rep = pipeline.export("tiny-swiftformer", "tflite", precision, "random", 0, tmp_path / "out", options, {}, None, QUIET,
                          images=ImageOptions(calibration=str(calibration))).report
    assert rep["parity"]["engine"] == "ai-edge-litert-xnnpack" and rep["parity"]["top1_agreement"] is not None
    assert rep["parity"]["outputs"][0]["cosine"] > 0.98, rep["parity"]
    assert rep["artifact"]["bytes"] < reuse_fp32["artifact"]["bytes"]
    quant = rep["export"]["quantization"]
    assert quant["tool"] == "ai-edge-quantizer"
    if precision is Precision.INT8_STATIC:
        assert quant["calibration"]["samples"] == 3 and rep["export"]["integer_ops"] > 0
        assert rep["inputs"]["calibration"]["source"] == str(calibration) and rep["inputs"]["calibration"]["shared_with_evaluation"] == 0
        runner = tflite.LiteRTRunner(Path(rep["artifact"]["path"]), 1)
        assert runner.input["dtype"] == np.float32  # static_ops=compute: only matmul/conv are integer, the edges stay float


def test_full_integer_either_passes_or_fails_with_a_hint_and_leaves_nothing(reuse_fp32, tmp_path):
    """Full-integer SwiftFormer: TFLite's int8 DIV refuses F.normalize's divisor when it quantizes to zero."""
    try:
        rep = export("tiny-swiftformer", tmp_path / "out", Precision.INT8_STATIC).report
    except ExportError as exc:
        assert "static_ops=compute" in exc.hint and not (tmp_path / "out").exists()
    else:
        assert rep["export"]["quantization"]["quantized_ops"].startswith("all")


def test_cli_int8_reports_top1_agreement_and_keeps_stdout_json(tmp_path):
    from click.testing import CliRunner

    from edgevt.cli import cli

    result = CliRunner().invoke(cli, ["-q", "export", "tiny-cvt", "--target", "tflite", "--precision", "int8", "--weights", "random",
                                      "--no-bench", "--out", str(tmp_path), "--json"])
    report = json.loads(result.stdout)  # converter progress must not leak into stdout
    assert report["precision"] == "int8-dynamic" and report["target"] == "tflite"
    assert report["parity"]["top1_agreement"] is not None and result.exit_code in (0, 1)
    assert report["export"]["quantization"]["recipe"] == "dynamic_wi8_afp32"


def test_channel_last_export_takes_nhwc_and_passes(tmp_path):
    rep = export("tiny-swin", tmp_path, options={"channel_last": True}).report
    assert rep["parity"]["status"] == "pass" and rep["export"]["layout"] == "NHWC"
    artifact = Path(rep["artifact"]["path"])
    runner = tflite.LiteRTRunner(artifact, 1)
    assert list(runner.input["shape"]) == [1, 64, 64, 3] and runner.nhwc
    assert tflite.input_shape(artifact) == [1, 3, 64, 64]
    assert rep["export"]["xnnpack"]["nodes_total"] > rep["export"]["xnnpack"]["nodes_delegated"] > 0


def test_swinv2_exports_and_passes_fp32(tmp_path):
    rep = export("tiny-swinv2", tmp_path).report
    assert rep["parity"]["status"] == "pass", rep["parity"]["failures"]


def test_converter_error_is_an_export_error_and_leaves_nothing(tmp_path, monkeypatch):
    def broken(*args):
        raise RuntimeError("unsupported op aten::boom")

    monkeypatch.setattr(tflite, "convert_fp32", broken)
    with pytest.raises(ExportError, match="aten::boom"):
        export("tiny-swiftformer", tmp_path / "new")
    assert list(tmp_path.iterdir()) == []


def test_missing_runtime_names_the_package_and_exit_code_3(monkeypatch):
    import importlib.util

    from edgevt.exporters import get_target, require

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ai_edge_litert" else real(name, *a))
    with pytest.raises(RuntimeUnavailable) as err:
        require(get_target("tflite"))
    assert err.value.exit_code == 3 and "ai_edge_litert" in err.value.message and "pip install" in err.value.hint


def _op(index, name, inputs, outputs):
    return {"index": index, "op_name": name, "inputs": np.array(inputs), "outputs": np.array(outputs)}


def test_xnnpack_delegation_walks_partition_boundaries():
    """Graph t0 -conv-> t1 -add-> t2 -slice-> t3 -fc-> t4: XNNPACK took conv+add and fc, not the slice."""

    class FakeInterpreter:
        def _get_ops_details(self):
            return [_op(0, "CONV_2D", [0, 10], [1]), _op(1, "ADD", [1, 11], [2]), _op(2, "STRIDED_SLICE", [2, 12], [3]),
                    _op(3, "FULLY_CONNECTED", [3, 13, -1], [4]),
                    _op(4, "DELEGATE", [0, 10, 11], [2]), _op(5, "DELEGATE", [3, 13], [4])]

    info = tflite.xnnpack_delegation(FakeInterpreter())
    assert (info["nodes_total"], info["nodes_delegated"], info["partitions"]) == (4, 3, 2)
    assert info["not_delegated"] == {"STRIDED_SLICE": 1}
