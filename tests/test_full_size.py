"""Full-size variants (slow: minutes). `python -m pytest -m slow`; CI runs them."""

import json
import subprocess
import sys

import pytest

from edgevt import pipeline
from edgevt.models import list_models
from edgevt.parity import Precision

pytestmark = pytest.mark.slow


def test_swiftformer_xs_cli_export_meets_the_done_criterion(tmp_path):
    """`edgevt export swiftformer-xs --target onnx --weights random --json`: exit 0, cosine >= 0.99999, top-1 100%."""
    proc = subprocess.run(
        [sys.executable, "-m", "edgevt", "export", "swiftformer-xs", "--target", "onnx", "--weights", "random", "--json", "--runs", "5"],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rep = json.loads(proc.stdout)
    assert rep["parity"]["status"] == "pass"
    assert rep["parity"]["outputs"][0]["cosine"] >= 0.99999
    assert rep["parity"]["top1_agreement"] == 1.0 and rep["parity"]["photos"] == 8


@pytest.mark.parametrize("name", [s.name for s in list_models() if not s.name.startswith("tiny-")])
def test_every_variant_exports_fp32_and_passes_parity(name, tmp_path):
    outcome = pipeline.export(name, "onnx", Precision.FP32, "random", 0, tmp_path, {}, {}, None, lambda m: None)
    parity = outcome.report["parity"]
    assert outcome.exit_code == 0, parity["failures"]
    assert parity["outputs"][0]["cosine"] >= 0.99999 and parity["top1_agreement"] == 1.0


@pytest.mark.parametrize(
    "name, gmacs",
    [("swiftformer-xs", 0.60), ("swiftformer-l3", 4.01), ("swin-tiny", 4.35), ("swinv2-tiny", 5.94), ("cvt-13", 4.57)],
)
def test_info_macs_match_the_published_measurements(name, gmacs):
    """FACTS.md: the HF implementations measured with torch's FlopCounterMode."""
    from edgevt.commands import info_payload

    assert info_payload(name, "random", 0)["gmacs"] == pytest.approx(gmacs, abs=0.01)


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_swiftformer_xs_tflite_cli_export_meets_the_done_criteria(precision, tmp_path):
    """`edgevt export swiftformer-xs --target tflite [--precision int8] --weights random --json`."""
    proc = subprocess.run(
        [sys.executable, "-m", "edgevt", "export", "swiftformer-xs", "--target", "tflite", "--precision", precision,
         "--weights", "random", "--json", "--runs", "5"],
        capture_output=True, text=True, cwd=tmp_path,
    )
    rep = json.loads(proc.stdout)
    assert rep["parity"]["engine"] == "ai-edge-litert-xnnpack" and rep["parity"]["top1_agreement"] is not None
    if precision == "fp32":
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert rep["parity"]["status"] == "pass" and rep["parity"]["outputs"][0]["cosine"] >= 0.99999
        other = subprocess.run([sys.executable, "-m", "edgevt", "validate", rep["artifact"]["path"], "--weights", "random", "--seed", "1"],
                               capture_output=True, text=True, cwd=tmp_path)
        assert other.returncode == 1
