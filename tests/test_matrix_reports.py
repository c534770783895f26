"""report.md and junit.xml of a matrix run, on a synthetic report (no cell runs here)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import matrix_fixtures as fx

from edgevt.matrix import reports
from edgevt.matrix.runner import exit_code


def test_junit_has_one_testcase_per_cell_with_the_right_outcome():
    rep = fx.sample_report()
    suite = ET.fromstring(reports.junit(rep)).find("testsuite")
    cases = suite.findall("testcase")
    assert len(cases) == len(rep["cells"]) == int(suite.get("tests"))
    outcome = {f"{c.get('classname').split('.')[-1]}/{c.get('name')}": [child.tag for child in c] for c in cases}
    assert outcome["swiftformer-xs/tflite/int8-dynamic"] == ["failure", "system-out"]
    assert outcome["swin-tiny/tflite/fp32"] == ["error"] and outcome["swin-tiny/tflite/int8-static"] == ["error"]
    assert outcome["swin-tiny/coreml/int8-dynamic"] == ["skipped"]
    assert outcome["swiftformer-xs/onnx/fp32"] == ["system-out"]
    assert (suite.get("failures"), suite.get("errors"), suite.get("skipped")) == ("1", "2", "1")


def test_a_junit_failure_carries_the_parity_numbers():
    rep = fx.sample_report()
    failure = ET.fromstring(reports.junit(rep)).find(".//failure")
    assert "worst cosine 0.9980000" in failure.get("message") and "top-1 agreement 87.5%" in failure.get("message")
    assert "cosine 0.998000 < 0.99999" in failure.text and "thresholds" in failure.text


def test_markdown_table_has_a_row_per_cell_and_names_the_failures():
    rep = fx.sample_report()
    text = reports.markdown(rep)
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| model")]
    assert len(rows) == len(rep["cells"])
    assert "| swiftformer-xs | onnx | fp32 | pass | 12.40 | 0.9999999 | 100.0% |" in text
    assert "| swiftformer-xs | coreml | fp16 | pass | 6.20 | 0.9999980 | 100.0% | skipped |" in text
    assert "`swin-tiny/tflite/int8-static` **crashed**: the cell's process was killed by SIGSEGV" in text
    assert "Latency skipped: Core ML runs only on macOS" in text


def test_ship_candidate_is_the_fastest_passing_cell_not_the_fastest_cell():
    picks = reports.ship_candidates(fx.sample_report()["cells"])
    assert picks["swiftformer-xs"].startswith("tflite fp32")  # tflite int8 is faster but failed parity
    assert "coreml fp16" in picks["swiftformer-xs"]  # passing, but not timed here
    only_failures = [fx.cell("m", "onnx", "fp32", status="fail")]
    assert reports.ship_candidates(only_failures) == {"m": "no cell passed"}


def test_exit_code_prefers_cells_that_could_not_run_over_parity_failures():
    cells = fx.sample_report()["cells"]
    assert exit_code(cells) == 3
    assert exit_code([c for c in cells if c["status"] in ("pass", "fail", "unsupported")]) == 1
    assert exit_code([c for c in cells if c["status"] in ("pass", "unsupported")]) == 0


def test_write_all_writes_the_four_files_as_standard_json(tmp_path):
    rep = fx.sample_report()
    rep["cells"][0]["parity"]["outputs"][0]["psnr_db"] = float("inf")
    reports.write_all(rep, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(reports.FILES)
    data = json.loads((tmp_path / "report.json").read_text())  # inf written as a string: still standard JSON
    assert data["cells"][0]["parity"]["outputs"][0]["psnr_db"] == "inf"


def test_a_model_whose_cells_are_still_pending_is_not_called_a_failure():
    from edgevt.html_report import render

    rep = fx.report([fx.cell("m", "onnx", "fp32", status="pending")])
    assert reports.ship_candidates(rep["cells"]) == {"m": "not run yet (cells pending)"}
    page = render(rep)
    assert "not run yet (cells pending)" in page and "none passed" not in page


def test_a_failed_cell_lists_its_top1_interval_and_every_flip_with_its_margin():
    rep = fx.sample_report()
    failed = next(c for c in rep["cells"] if c["status"] == "fail")
    failed["parity"].update(top1_ci95=[0.529, 0.978], top1_disagreements=[
        {"sample": "coffee.png#crop60-tl", "reference_class": 3, "candidate_class": 9, "reference_margin": 0.0123}])
    text = reports.markdown(rep)
    assert "| 87.5% (52.9%–97.8%) |" in text
    assert "  - top-1 changed on coffee.png#crop60-tl: class 3 → 9 (reference top-1/top-2 margin 0.0123)" in text
    failure = ET.fromstring(reports.junit(rep)).find(".//failure")
    assert "top-1 agreement 87.5% (52.9%–97.8%) of 8 photos" in failure.get("message")
    assert "top-1 changed on coffee.png#crop60-tl: class 3 → 9 (reference top-1/top-2 margin 0.0123)" in failure.text


def test_ship_candidate_is_ranked_by_the_p50_at_full_speed_where_cells_record_it():
    # onnx fp32's p50 over every block is lower only because the tflite cell spent more of its timing in the host's
    # slow state; at full speed tflite is faster, and both report.md and index.html pick it
    from edgevt.html_report import render

    rep = fx.sample_report()
    onnx, tflite = (next(c for c in rep["cells"] if c["id"] == f"swiftformer-xs/{t}/fp32") for t in ("onnx", "tflite"))
    onnx["latency"]["warm"].update(p50_ms=6.0, full_speed={"p50_ms": 5.9, "blocks": 9, "of_blocks": 10})
    tflite["latency"]["warm"].update(p50_ms=7.0, full_speed={"p50_ms": 4.2, "blocks": 3, "of_blocks": 10})
    pick = reports.ship_candidates(rep["cells"])["swiftformer-xs"]
    assert pick.startswith("tflite fp32: p50 7.000 ms (4.200 at full speed)"), pick
    ship = re.search(r'<ul class="ship">(.*?)</ul>', render(rep), re.S).group(1)
    assert "swiftformer-xs</span> → <b>tflite fp32</b>: p50 7" in ship and "p50 7.00 ms, 4.20 ms at full speed (" in ship
    del tflite["latency"]["warm"]["full_speed"], onnx["latency"]["warm"]["full_speed"]  # older cells: the plain p50
    assert reports.ship_candidates(rep["cells"])["swiftformer-xs"].startswith("onnx fp32")
