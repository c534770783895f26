"""Cells timed on different kinds of machine (CI shards, Ray nodes): reports rank and plot each kind on its own, and
`edgevt compare` never compares latency across kinds. Synthetic reports: nothing runs here."""

from __future__ import annotations

import json

import matrix_fixtures as fx
from click.testing import CliRunner

from edgevt.cli import cli
from edgevt.html_report import render
from edgevt.matrix import reports


def on(cell: dict, kind: str, hostname: str, node: str | None = None) -> dict:
    cell["host"] = {"executor": "ray" if node else "local", "hostname": hostname, "cpu": kind, "logical_cpus": 8, "kind": kind,
                    **({"node": {"id": node, "ip": "10.0.0.1", "resources": {"CPU": 8.0}, "labels": {"edgevt-kind": kind}}} if node else {})}
    return cell


def two_kinds() -> dict:
    return fx.report([
        on(fx.cell("swiftformer-xs", "onnx", "fp32", p50=5.0), "fast-box", "a", "aa" * 28),
        on(fx.cell("swiftformer-xs", "tflite", "fp32", p50=9.0, seed=1), "fast-box", "a", "aa" * 28),
        on(fx.cell("swiftformer-xs", "onnx", "int8-dynamic", p50=7.0, seed=2), "slow-box", "b", "bb" * 28),
        on(fx.cell("swiftformer-xs", "tflite", "int8-dynamic", p50=3.0, seed=3), "slow-box", "b", "bb" * 28),
        fx.cell("swiftformer-xs", "coreml", "int8-static", status="unsupported"),
    ])


def test_report_md_has_a_table_and_a_ship_candidate_per_machine_kind():
    text = reports.markdown(two_kinds())
    fast, slow = text.index("## On fast-box (a node aaaaaaaa)"), text.index("## On slow-box (b node bbbbbbbb)")
    rest = text.index("## Not run on any machine")
    assert "2 kinds of machine; latency is compared within a kind only" in text
    assert "| swiftformer-xs | onnx | fp32 | pass |" in text[fast:slow] and "| swiftformer-xs | onnx | int8-dynamic |" in text[slow:rest]
    # the 3 ms cell is faster than the 5 ms one, but on another kind of machine: each kind has its own pick
    assert "- **swiftformer-xs**: onnx fp32: p50 " in text[fast:slow]
    assert "- **swiftformer-xs**: tflite int8-dynamic: p50 " in text[slow:rest]


def test_a_report_of_one_machine_kind_keeps_one_table_and_names_the_machine():
    rep = fx.report([on(fx.cell("m", "onnx", "fp32"), "box", "runner-1"), on(fx.cell("m", "tflite", "fp32", seed=1), "box", "runner-2")])
    text = reports.markdown(rep)
    assert "Cells ran on box (runner-1, runner-2)" in text and "## On " not in text and text.count("| model | target |") == 1


def test_index_html_has_plots_and_ship_candidates_per_machine_kind():
    page = render(two_kinds())
    assert page.count('<h2 class="kind">') == 3 and "On fast-box" in page and "On slow-box" in page
    assert "<dt>cells ran on</dt><dd>fast-box: a node aaaaaaaa; slow-box: b node bbbbbbbb</dd>" in page
    assert 'id="plot-latency-1"' in page and 'id="plot-latency-2"' in page and 'id="results-3"' in page
    single = render(fx.sample_report())
    assert 'id="plot-latency"' in single and '<h2 class="kind">' not in single  # reports without hosts look as before


def _compare(tmp_path, base: dict, cand: dict) -> dict:
    (tmp_path / "b.json").write_text(json.dumps(base))
    (tmp_path / "c.json").write_text(json.dumps(cand))
    result = CliRunner().invoke(cli, ["compare", str(tmp_path / "b.json"), str(tmp_path / "c.json"), "--json"])
    return {"exit": result.exit_code, **{c["id"]: c for c in json.loads(result.output)["cells"]}}


def test_compare_never_compares_latency_across_machine_kinds(tmp_path):
    base = fx.report([on(fx.cell("m", "onnx", "fp32", p50=10.0), "fast-box", "a")])
    slower_elsewhere = fx.scaled(base, 2.0)
    on(slower_elsewhere["cells"][0], "slow-box", "b")
    got = _compare(tmp_path, base, slower_elsewhere)
    assert got["exit"] == 0 and got["m/onnx/fp32"]["latency"]["verdict"] == "not comparable"
    assert "timed on different kinds of machine (fast-box vs slow-box)" in got["m/onnx/fp32"]["notes"][0]

    slower_here = fx.scaled(base, 2.0)  # the same kind of machine: a real regression
    got = _compare(tmp_path, base, slower_here)
    assert got["exit"] == 1 and got["m/onnx/fp32"]["latency"]["verdict"] == "regression"
