"""Every latency section says how it was timed (protocol, threading, what sampling reached) and gives the compute
bound and efficiency: report.md of export/bench, the matrix's report.md and index.html."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from matrix_fixtures import sample_report

from edgevt import pipeline, report
from edgevt.bench import PROTOCOL, BenchSettings
from edgevt.html_report import render
from edgevt.matrix.reports import markdown as matrix_markdown
from matrix_fixtures import FakeTarget


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    import torch

    return pipeline.benchmark(FakeTarget, tmp_path_factory.mktemp("a") / "m.onnx", np.zeros((1, 16), np.float32),
                              BenchSettings(runs=5, warmup=1, min_time_s=0, max_time_s=0.1, threads=1), lambda m: None,
                              torch.nn.Linear(16, 8))


def test_report_md_latency_section_says_how_it_was_timed(measured):
    text = report.markdown(report.new_report("export", model={"name": "m"}, latency=measured, environment={}))
    section = text.split("## Latency")[1].split("## Environment")[0]
    assert "| efficiency |" in section and section.count("%") >= 2  # artifact and torch eager rows
    assert f"protocol `{PROTOCOL}`" in section and "edgevt.bench.measure" in section
    assert "stopped by" in section and "reached ±" in section
    rounds = measured["protocol"]["blocks"]["rounds"]
    assert measured["speedup"]["rounds"] == rounds and f"median of {rounds} per-round ratios of adjacent blocks" in section
    assert measured["speedup_vs_torch_eager"] == measured["protocol"]["paired"]["ratios"][1]["median"]
    assert "OMP_WAIT_POLICY unset (library default)" in section and "allow_spinning library default (on)" in section
    assert "compute bound" in section and "GFLOP/s" in section and "efficiency = bound / p50" in section


def test_report_md_says_when_the_compute_bound_is_unknown(measured):
    lat = {**measured, "compute_bound": {"status": "skipped", "reason": "the model's MACs are unknown here"}, "efficiency": None}
    text = report.markdown(report.new_report("bench", latency=lat, environment={}))
    assert "compute bound skipped: the model's MACs are unknown here" in text


def test_matrix_report_md_has_efficiency_and_the_protocol():
    text = matrix_markdown(sample_report())
    assert "| vs torch eager | efficiency | at full speed: p50 ms, vs torch eager | engine |" in text
    assert f"protocol `{PROTOCOL}`" in text and "5 of 5 timed cells reached the ±2% target" in text
    assert "fp32 GEMM peak (300 GFLOP/s" in text
    row = next(line for line in text.splitlines() if line.startswith("| swin-tiny | onnx | fp32"))
    assert "| 5.0% |" in row  # bound 4 ms / p50 ~80 ms


def test_matrix_reports_flag_cells_timed_before_the_protocol():
    old = copy.deepcopy(sample_report())
    for cell in old["cells"]:
        for key in ("protocol", "threading", "compute_bound", "efficiency"):
            (cell.get("latency") or {}).pop(key, None)
    text = matrix_markdown(old)
    assert "5 of 5 timed cells record no timing protocol" in text and "--remeasure" in text
    assert "no efficiency" in text and "timed before edgevt" in render(old)


def test_index_html_shows_efficiency_and_the_timing():
    page = render(sample_report())
    assert "<th class=n>efficiency</th>" in page and ">5.0%<" in page
    assert "<dt>timing</dt>" in page and f"protocol {PROTOCOL}" in page and "efficiency 57.1%" in page  # ship candidate


def test_matrix_report_md_says_how_many_cells_saw_the_host_change_speed():
    rep = sample_report()
    timed = [c for c in rep["cells"] if (c.get("latency") or {}).get("status") == "measured"]
    assert "changed speed" not in matrix_markdown(rep)  # no cell says so: no sentence
    timed[0]["latency"]["protocol"]["host"] = {"unsteady": True}
    timed[0]["latency"]["speedup"] = {"rounds": 9}
    text = matrix_markdown(rep)
    assert f"In 1 of {len(timed)} timed cells the host changed speed" in text
    assert "median over rounds of torch eager's block median" in text


def test_report_md_and_the_terminal_give_the_full_speed_figures_only_when_the_host_changed_speed(measured):
    from edgevt.commands import summary_text

    steady = copy.deepcopy(measured)
    steady["protocol"]["host"]["unsteady"] = False
    changed = copy.deepcopy(measured)
    changed["protocol"]["host"]["unsteady"] = True
    changed["warm"]["full_speed"].update(p50_ms=1.234, blocks=3, of_blocks=5)
    changed["speedup"]["full_speed"].update(median=4.321, rounds=2)

    def texts(lat):
        r = report.new_report("bench", latency=lat, environment={}, artifact={"path": "m.onnx", "bytes": 1})
        return report.markdown(r), summary_text(r, None)

    for text in texts(steady):
        assert "full speed" not in text
    md, terminal = texts(changed)
    assert "At the host's full speed" in md and "p50 1.234 ms" in md and "3 of 5 blocks" in md
    assert "4.32× over the 2 rounds in which both ran at full speed" in md
    assert "at full speed (3 of 5 blocks): p50 1.234 ms, 4.32x torch eager" in terminal


def test_matrix_report_md_has_the_full_speed_column():
    # the figures of the blocks at the host's full speed, in the table (not only in report.json); — where a cell
    # was timed before edgevt recorded them
    rep = sample_report()
    timed = [c for c in rep["cells"] if (c.get("latency") or {}).get("status") == "measured"]
    timed[0]["latency"]["warm"]["full_speed"] = {"p50_ms": 9.876, "blocks": 4, "of_blocks": 11}
    timed[0]["latency"]["speedup"] = {"rounds": 11, "full_speed": {"median": 3.21, "rounds": 4}}
    text = matrix_markdown(rep)
    assert "| at full speed: p50 ms, vs torch eager | engine |" in text
    row = next(line for line in text.splitlines() if line.startswith(f"| {timed[0]['model']} | {timed[0]['target']} | {timed[0]['precision']}"))
    assert "| 9.876, 3.21× (4 of 11 blocks) |" in row
    other = next(line for line in text.splitlines() if line.startswith(f"| {timed[1]['model']} | {timed[1]['target']} | {timed[1]['precision']}"))
    assert other.count("| — |") >= 1
