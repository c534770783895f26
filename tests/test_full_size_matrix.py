"""Issue 5's Done criterion on the real model: swiftformer-xs × {onnx, tflite} × fp32 through `edgevt matrix`."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import pytest

pytestmark = pytest.mark.slow


def run_matrix(out, cache):
    cmd = [sys.executable, "-m", "edgevt", "matrix", "-m", "swiftformer-xs", "-t", "onnx,tflite", "-p", "fp32", "--weights", "random",
           "--out", str(out), "--cache-dir", str(cache), "--json"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
    return proc, time.perf_counter() - t0


def test_swiftformer_xs_matrix_writes_four_reports_and_reruns_from_the_cache(tmp_path):
    out, cache = tmp_path / "run", tmp_path / "cache"
    first, first_s = run_matrix(out, cache)
    assert first.returncode == 0, first.stderr[-2000:]
    rep = json.loads(first.stdout)
    assert {p.name for p in out.iterdir()} >= {"report.json", "report.md", "junit.xml", "index.html"}
    assert [c["status"] for c in rep["cells"]] == ["pass", "pass"]
    assert len(ET.parse(out / "junit.xml").getroot().findall(".//testcase")) == 2

    again, again_s = run_matrix(out, cache)
    assert again.returncode == 0
    rep2 = json.loads(again.stdout)
    assert rep2["summary"]["cached"] == 2
    assert [c["parity"] for c in rep2["cells"]] == [c["parity"] for c in rep["cells"]]
    assert again_s < first_s / 5, (first_s, again_s)
