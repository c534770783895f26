"""Core ML target on tiny configs: export, parity through the MIL interpreter, compression, safety, pre-flight."""

import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_NAMES

pytest.importorskip("coremltools")

from edgevt import pipeline  # noqa: E402
from edgevt.errors import EXIT_OK, EXIT_PARITY, ExportError, RuntimeUnavailable, UsageError  # noqa: E402
from edgevt.fsio import sha256_file  # noqa: E402
from edgevt.parity import Precision  # noqa: E402

WEIGHTS = Path("Data") / "com.apple.CoreML" / "weights" / "weight.bin"
SENTINEL = struct.pack("<I", 0xDEADBEEF)


def export(name, out, precision=Precision.FP16, options=None, seed=0, bench=None):
    return pipeline.export(name, "coreml", precision, "random", seed, out, options or {}, {}, bench, lambda m: None)


@pytest.fixture(scope="module")
def swiftformer_fp16(tmp_path_factory):
    out = tmp_path_factory.mktemp("sf16")
    outcome = export("tiny-swiftformer", out)
    assert outcome.exit_code == EXIT_OK, outcome.report["parity"]["failures"]
    return Path(outcome.report["artifact"]["path"])


@pytest.mark.parametrize("name", TINY_NAMES)
def test_each_family_exports_fp32_and_the_interpreter_matches_torch(name, tmp_path):
    from edgevt.bench import BenchSettings

    rep = export(name, tmp_path, Precision.FP32, bench=BenchSettings(runs=2, warmup=1)).report
    parity = rep["parity"]
    assert parity["status"] == "pass" and parity["engine"] == "mil-interpreter", parity["failures"]
    assert parity["outputs"][0]["cosine"] >= 0.99999
    assert rep["latency"] == {"status": "skipped", "reason": "needs macOS: Core ML latency is measured by Apple's runtime only"}
    artifact = Path(rep["artifact"]["path"])
    assert artifact.is_dir() and artifact.name == f"{name}-fp32.mlpackage" and (artifact / WEIGHTS).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([artifact.name, "report.json", "report.md"])


@pytest.mark.parametrize("name", [n for n in TINY_NAMES if n != "tiny-swiftformer"])  # swiftformer: the fixture
def test_each_family_exports_fp16_by_default_and_passes_fp16_parity(name, tmp_path):
    rep = pipeline.export(name, "coreml", None, "random", 0, tmp_path, {}, {}, None, lambda m: None).report
    assert rep["precision"] == "fp16"
    assert rep["parity"]["status"] == "pass", rep["parity"]["failures"]
    assert 0.999 <= rep["parity"]["outputs"][0]["cosine"] < 0.9999999  # fp16 rounding is really emulated
    assert rep["export"]["ane_preflight"]["fp16_program"] is True


def test_fp16_program_metadata_and_report(swiftformer_fp16):
    from edgevt.exporters.coreml import input_shape, metadata

    meta = metadata(swiftformer_fp16)
    assert meta["model"] == "tiny-swiftformer" and meta["precision"] == "fp16" and meta["compute_units"] == "ALL"
    assert input_shape(swiftformer_fp16) == [1, 3, 64, 64]
    rep = json.loads((swiftformer_fp16.parent / "report.json").read_text())
    assert rep["artifact"]["bytes"] > 1000 and len(rep["artifact"]["sha256"]) == 64
    md = (swiftformer_fp16.parent / "report.md").read_text()
    assert "mil-interpreter" in md and "Neural Engine pre-flight" in md and "reduce_l2_norm" in md


def test_altered_weight_file_fails_validate(swiftformer_fp16, tmp_path):
    copy = tmp_path / swiftformer_fp16.name
    shutil.copytree(swiftformer_fp16, copy)
    blob = bytearray((copy / WEIGHTS).read_bytes())
    # Each tensor in weight.bin has a 64-byte header (sentinel 0xDEADBEEF, dtype, size, offset): scale the
    # largest tensor's data by 1.5, leaving every header intact, as a silent corruption would.
    headers = []
    pos = blob.find(SENTINEL)
    while pos != -1:
        _, _, size, offset = struct.unpack_from("<IIQQ", blob, pos)
        headers.append((size, offset))
        pos = blob.find(SENTINEL, pos + 64)
    size, offset = max(headers)
    data = np.frombuffer(bytes(blob[offset : offset + size]), dtype=np.float16)
    blob[offset : offset + size] = (data * np.float16(1.5)).tobytes()
    (copy / WEIGHTS).write_bytes(bytes(blob))
    outcome = pipeline.validate(copy, "tiny-swiftformer", Precision.FP16, "random", 0, {}, None, lambda m: None)
    assert outcome.exit_code == EXIT_PARITY
    assert outcome.report["parity"]["status"] == "fail"


def test_other_seed_fails_validate_and_same_seed_passes(swiftformer_fp16):
    ok = pipeline.validate(swiftformer_fp16, None, None, "random", 0, {}, None, lambda m: None)
    assert ok.exit_code == EXIT_OK and ok.report["parity"]["engine"] == "mil-interpreter"
    bad = pipeline.validate(swiftformer_fp16, None, None, "random", 1, {}, None, lambda m: None)
    assert bad.exit_code == EXIT_PARITY


@pytest.mark.parametrize("precision", [Precision.INT8_WEIGHTS, Precision.PALETTIZE])
def test_weight_compression_precisions(precision, tmp_path):
    opts = {"weight_threshold": 0, "palettize_bits": 4}
    rep = export("tiny-swin", tmp_path, precision, opts).report
    ops = rep["export"]["ops"]
    marker = "constexpr_affine_dequantize" if precision is Precision.INT8_WEIGHTS else "constexpr_lut_to_dense"
    assert ops.get(marker, 0) > 0, ops
    assert rep["parity"]["thresholds"]["min_psnr_db"] == 25.0
    assert rep["parity"]["outputs"][0]["cosine"] > 0.95
    assert rep["parity"]["status"] in ("pass", "fail")


def test_int8_means_weight_int8_on_coreml():
    assert Precision.parse("int8", "coreml") is Precision.INT8_WEIGHTS
    assert Precision.parse("int8", "onnx") is Precision.INT8_DYNAMIC


def test_image_input_normalizes_inside_the_model(tmp_path):
    rep = export("tiny-cvt", tmp_path, Precision.FP32, {"input_type": "image"}).report
    assert rep["export"]["input_type"] == "image"
    assert rep["parity"]["status"] == "pass" and rep["parity"]["outputs"][0]["cosine"] >= 0.99999


def test_flexible_batch_runs_in_the_interpreter_and_preflight_flags_it(tmp_path):
    rep = export("tiny-swiftformer", tmp_path, options={"flexible_batch": True}).report
    assert rep["parity"]["status"] == "pass", rep["parity"]["failures"]
    dynamic = [f for f in rep["export"]["ane_preflight"]["findings"] if f["check"] == "dynamic shape"]
    assert dynamic and dynamic[0]["count"] > 10 and dynamic[0]["off_ane"]


def test_reexport_replaces_the_package_and_a_failed_one_keeps_it(tmp_path):
    first = export("tiny-swiftformer", tmp_path, Precision.FP32)
    artifact = Path(first.report["artifact"]["path"])
    digest = sha256_file(artifact)
    again = export("tiny-swiftformer", tmp_path, Precision.FP32, seed=3)
    assert again.exit_code == EXIT_OK and sha256_file(artifact) != digest  # replaced, directory and all
    digest = sha256_file(artifact)
    failing = pipeline.export("tiny-swiftformer", "coreml", Precision.FP32, "random", 0, tmp_path, {}, {"atol": 0.0, "rtol": 0.0}, None,
                              lambda m: None)
    assert failing.exit_code == EXIT_PARITY
    assert sha256_file(artifact) == digest
    assert (tmp_path / "tiny-swiftformer-fp32.rejected.mlpackage").is_dir() and (tmp_path / "report.failed.json").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_converter_failure_leaves_nothing(tmp_path, monkeypatch):
    from edgevt.exporters import coreml

    def boom(*args, **kwargs):
        raise RuntimeError("unsupported op aten::frobnicate")

    monkeypatch.setattr(coreml, "_convert", boom)
    out = tmp_path / "new" / "dir"
    with pytest.raises(ExportError, match="frobnicate"):
        export("tiny-swiftformer", out)
    assert not (tmp_path / "new").exists()


def test_options_and_precisions_are_validated(tmp_path):
    with pytest.raises(UsageError, match="compute_units"):
        export("tiny-swiftformer", tmp_path, options={"compute_units": "NPU"})
    with pytest.raises(UsageError, match="does not support int8-static"):
        export("tiny-swiftformer", tmp_path, Precision.INT8_STATIC)


def test_latency_needs_macos_and_says_so(swiftformer_fp16):
    from edgevt.bench import BenchSettings

    with pytest.raises(RuntimeUnavailable, match="needs macOS"):
        pipeline.bench_artifact(swiftformer_fp16, BenchSettings(runs=2, warmup=1), None, "random", 0, lambda m: None)


def test_compute_units_apply_to_coreml_artifacts_only(tmp_path):
    from edgevt.bench import BenchSettings

    onnx_out = pipeline.export("tiny-swiftformer", "onnx", Precision.FP32, "random", 0, tmp_path, {}, {}, None, lambda m: None)
    artifact = Path(onnx_out.report["artifact"]["path"])
    with pytest.raises(UsageError, match="--compute-units does not apply to onnx"):
        pipeline.bench_artifact(artifact, BenchSettings(runs=2, warmup=1), None, "random", 0, lambda m: None, {"compute_units": "ALL"})
