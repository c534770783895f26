"""The matrix run's index.html: structure, escaping, edge cases, and what a real browser draws from it."""

from __future__ import annotations

import html
import json
import math
import re
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from matrix_fixtures import cell, report, sample_report

from edgevt.html_report import STATUS_COLOURS, TARGET_COLOURS, render, write_html
from edgevt.report import to_json

PLOTS = ("plot-latency", "plot-tradeoff", "plot-size")
CHROMIUM = Path("/usr/bin/chromium")


def figures(page: str) -> dict[str, ET.Element]:
    """Each plot's <svg>, parsed as XML: a browser forgives broken markup, the parser does not."""
    out = {}
    for fig_id in PLOTS:
        match = re.search(rf'<figure id="{fig_id}"><figcaption>.+?</figcaption>(<svg\b.*?</svg>)</figure>', page, re.S)
        assert match, f"{fig_id}: no <figure> with a caption and an <svg>"
        out[fig_id] = ET.fromstring(match.group(1))
    return out


def by_class(svg: ET.Element, cls: str) -> list[ET.Element]:
    return [e for e in svg.iter() if cls in (e.get("class") or "").split()]


def text_of(svg: ET.Element) -> str:
    return " ".join("".join(e.itertext()) for e in svg.iter() if e.tag.endswith("text"))


def measured(c: dict) -> bool:
    return (c.get("latency") or {}).get("status") == "measured"


def plottable(c: dict) -> bool:
    """A scatter point needs a finite, positive p50 and at least one parity output."""
    p50 = float(c["latency"]["warm"]["p50_ms"]) if measured(c) else math.nan
    return math.isfinite(p50) and p50 > 0 and bool((c.get("parity") or {}).get("outputs"))


def test_sample_report_has_three_captioned_plots_that_parse_as_xml():
    svgs = figures(render(sample_report()))
    assert set(svgs) == set(PLOTS)
    for svg in svgs.values():
        assert svg.tag.endswith("svg") and svg.get("viewBox")


def test_one_scatter_point_per_cell_with_measured_latency_and_parity_and_failures_are_ringed():
    rep = sample_report()
    points = by_class(figures(render(rep))["plot-tradeoff"], "pt")
    expected = [c["id"] for c in rep["cells"] if measured(c) and c.get("parity")]
    assert len(points) == len(expected) == 5
    tips = {p.find("{http://www.w3.org/2000/svg}title").text: p for p in points}
    for cid in expected:
        (point,) = [p for tip, p in tips.items() if tip.startswith(cid + " ")]
        assert bool(by_class(point, "ring")) == (cid == "swiftformer-xs/tflite/int8-dynamic")


def test_latency_bars_have_baseline_ticks_and_skipped_cells_get_a_note():
    rep = sample_report()
    svg = figures(render(rep))["plot-latency"]
    with_base = [c for c in rep["cells"] if measured(c) and c["latency"].get("baseline")]
    assert len(by_class(svg, "base")) == len(with_base) + 1  # + the legend's sample tick
    assert len(by_class(svg, "whisker")) == len(with_base) + 1
    assert "latency skipped: Core ML runs only on macOS; this is Linux" in text_of(svg)
    assert "(log scale)" in text_of(svg)  # 4 ms next to 150 ms


def test_latency_axis_is_linear_when_values_are_close():
    rep = report([cell("m", "onnx", "fp32", p50=10.0, torch_p50=12.0), cell("m", "tflite", "fp32", p50=11.0, torch_p50=12.0)])
    assert "(log scale)" not in text_of(figures(render(rep))["plot-latency"])


def test_size_plot_has_a_bar_per_artifact():
    rep = sample_report()
    svg = figures(render(rep))["plot-size"]
    bars = [e for e in svg.iter() if e.tag.endswith("rect") and e.find("{http://www.w3.org/2000/svg}title") is not None]
    assert len(bars) == sum(bool(c.get("artifact")) for c in rep["cells"]) == 6
    assert "113 MB" in text_of(svg)


def test_every_cell_is_a_table_row_and_errors_show_their_message():
    rep = sample_report()
    page = render(rep)
    for c in rep["cells"]:
        assert page.count(f'<tr data-cell="{html.escape(c["id"])}">') == 1, c["id"]
    assert "converter failed: unsupported op aten::foo" in page
    assert "the cell&#x27;s process was killed by SIGSEGV" in page and "signal SIGSEGV" in page
    assert "parity failed: logits: cosine 0.998000 &lt; 0.99999" in page


def test_header_says_what_ran_where():
    page = render(sample_report())
    for needle in ("2 models × 3 targets × 4 precisions", "Test CPU (2 logical CPUs", "Linux 6", "torch 2.13.0", "random, seed 0",
                   "2026-11-21T10:00:00+00:00", "pass 5", "fail 1", "error 1", "crashed 1", "unsupported 1", "timeout 0", "cached 0 of 9"):
        assert needle in page, needle


def test_skipped_cell_gets_its_own_neutral_badge_in_the_header_and_the_table():
    skipped = cell("m", "tflite", "fp32", status="pass", p50=5.0, seed=1)
    skipped["status"], skipped["parity"] = "skipped", {"status": "skipped", "reason": "no runtime"}
    rep = report([cell("m", "onnx", "fp32"), skipped])
    assert rep["summary"]["skipped"] == 1
    page = render(rep)
    colour = STATUS_COLOURS["skipped"]
    assert colour not in (STATUS_COLOURS["pass"], STATUS_COLOURS["fail"], "#57606a")  # neither a verdict nor the unknown-status grey
    assert f'<span style="background:{colour}">skipped 1</span>' in page  # a counted chip, not greyed out as zero
    row = re.search(r'<tr data-cell="m/tflite/fp32">(.*?)</tr>', page).group(1)
    assert f'<span class="badge" style="background:{colour}">skipped</span>' in row
    assert "pass 1" in page and "none passed" not in page
    svgs = figures(page)  # the skipped cell's missing parity numbers still leave well-formed plots
    assert len(by_class(svgs["plot-tradeoff"], "pt")) == 1  # no parity outputs: no point on the tradeoff plot


def test_ship_candidate_is_the_fastest_passing_cell():
    page = render(sample_report())
    ship = re.search(r'<ul class="ship">(.*?)</ul>', page, re.S).group(1)
    # tflite int8-dynamic is faster (4 ms) but failed parity; coreml passed but could not be timed on Linux
    assert "swiftformer-xs</span> → <b>tflite fp32</b>: p50 7." in ship
    assert "coreml fp16 not compared (latency skipped: Core ML runs only on macOS; this is Linux)" in ship
    assert "swin-tiny</span> → <b>onnx fp32</b>" in ship
    rep = report([cell("broken", "onnx", "fp32", status="fail", cosine=0.9), cell("broken", "tflite", "fp32", status="error")])
    assert "broken</span> → <span class=\"bad\">none passed</span>" in render(rep)


def test_nothing_is_loaded_from_outside_the_page():
    page = render(sample_report())
    assert not re.search(r"""(src|href)\s*=\s*["']?[a-z]+:""", page, re.I)
    assert "<script" not in page and "<link" not in page and "@import" not in page and "url(" not in page


def test_strings_from_the_report_are_escaped():
    evil = "<script>alert(1)</script>&x"
    bad = cell(evil, "onnx", "fp32", status="error", error={"type": "<T>", "message": 'a < b & "c"', "hint": "<i>", "exit_code": 3,
                                                              "signal": None, "log_tail": "</pre><b>"})
    rep = report([cell(evil, "onnx", "fp32"), cell(evil, "tflite", "fp32", status="fail"), bad])
    rep["environment"]["host_cpu"] = "<cpu>"
    page = render(rep)
    assert evil not in page and "<script" not in page and "</pre><b>" not in page and "<cpu>" not in page
    assert html.escape(evil) in page and "a &lt; b &amp; &quot;c&quot;" in page
    figures(page)  # the escaped name inside SVG <text> and <title> is still well-formed XML


def _inf_report() -> dict:
    odd = cell("m", "onnx", "fp32", p50=10.0)
    odd["latency"]["warm"]["p50_ms"] = float("inf")
    odd["latency"]["speedup_vs_torch_eager"] = 0.0
    nan = cell("m", "tflite", "fp32", p50=5.0, seed=1)
    nan["parity"]["outputs"][0]["cosine"] = float("nan")
    nan["latency"]["warm"]["p90_ms"] = float("nan")
    nan["latency"]["speedup_vs_torch_eager"] = float("inf")
    nan["artifact"]["bytes"] = float("inf")
    return json.loads(to_json(report([odd, nan, cell("m", "onnx", "int8-dynamic", p50=2.0, seed=2)])))  # inf/nan as strings


def _identical() -> dict:
    same = {"precision": "fp32", "p50": 10.0, "torch_p50": None, "cosine": 0.99999}
    return report([cell("m", "onnx", **same), cell("n", "tflite", **same)])


def _bare() -> dict:
    """No matrix, summary or environment; a target edgevt does not know; zero bytes; no parity."""
    return {"cells": [{"id": "a/b/c", "model": "a", "target": "b", "precision": "c", "status": "pass",
                       "latency": {"status": "measured", "warm": {"p50_ms": 3}}, "artifact": {"bytes": 0}}]}


EDGE_CASES = {
    "no cells": lambda: report([]),
    "all failed or errored": lambda: report([
        cell("m", "onnx", "fp32", status="fail", cosine=0.5), cell("m", "tflite", "fp32", status="error"),
        cell("m", "tflite", "int8-static", status="crashed"), cell("m", "onnx", "fp16", status="timeout")]),
    "pending only": lambda: report([cell("m", "onnx", "fp32", status="pending"), cell("m", "tflite", "fp32", status="pending")]),
    "one cell": lambda: report([cell("m", "onnx", "fp32")]),
    "identical values": _identical,
    "inf and nan strings": _inf_report,
    "long model names": lambda: report([
        cell("x" * 300, "onnx", "fp32", p50=5.0), cell("y" * 80 + " " + "z" * 80, "tflite", "fp32", p50=2000.0)]),
    "coreml only": lambda: report([cell("m", "coreml", "fp16"), cell("m", "coreml", "int8-dynamic", seed=1)]),
    "sections missing": _bare,
}


@pytest.mark.parametrize("case", EDGE_CASES)
def test_edge_cases_render_well_formed_plots(case):
    rep = EDGE_CASES[case]()
    page = render(rep)
    svgs = figures(page)
    assert len(by_class(svgs["plot-tradeoff"], "pt")) == sum(map(plottable, rep["cells"]))
    for c in rep["cells"]:
        assert page.count(f'<tr data-cell="{html.escape(c["id"])}">') == 1
    assert "None" not in page  # a missing field reads "—", not Python's repr
    if not any(measured(c) for c in rep["cells"]):
        assert "no measured latency" in text_of(svgs["plot-latency"]) and "no measured latency" in text_of(svgs["plot-tradeoff"])
    for svg in svgs.values():  # no NaN or inf leaked into a coordinate, a path or a size
        for e in svg.iter():
            bad = {k: v for k, v in e.attrib.items() if k != "aria-label" and re.search(r"\b(nan|inf)\b", v, re.I)}
            assert not bad, (e.tag, bad)


def test_inf_values_are_shown_not_plotted():
    page = render(_inf_report())
    svgs = figures(page)
    assert "latency not plottable: p50 = inf ms" in text_of(svgs["plot-latency"])
    tips = [e.text for e in svgs["plot-tradeoff"].iter("{http://www.w3.org/2000/svg}title")]
    assert any(re.fullmatch(r"m/tflite/fp32 \(pass\): p50 5\.\d\d ms, worst cosine nan, drawn at the top of the axis, .*", t) for t in tips)
    assert "m/onnx/fp32" not in " ".join(tips)  # p50 = inf has no place on the x axis


def test_write_html_is_atomic_and_matches_render(tmp_path):
    path = write_html(sample_report(), tmp_path / "run" / "index.html")
    assert path.read_text() == render(sample_report())
    assert [p.name for p in path.parent.iterdir()] == ["index.html"]


def _matching(img: np.ndarray, colour: str, tol: int = 3) -> int:
    rgb = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(img[:, :, :3].astype(int) - rgb).max(axis=2) <= tol).sum())


def test_chromium_draws_the_plots(tmp_path):
    if not CHROMIUM.exists():
        pytest.skip("chromium not installed: apt-get install chromium")
    from PIL import Image

    page, png = write_html(sample_report(), tmp_path / "index.html"), tmp_path / "shot.png"
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
           "--hide-scrollbars", "--window-size=1280,2400", f"--screenshot={png}", page.resolve().as_uri()]
    start = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert png.is_file(), done.stderr[-2000:]
    assert time.monotonic() - start < 30
    img = np.asarray(Image.open(png).convert("RGB"))
    assert img.shape[:2] == (2400, 1280)
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 300  # text, bars, markers: not a blank page
    for target in ("onnx", "tflite", "coreml"):  # coreml only has a size bar: it cannot be timed on Linux
        assert _matching(img, TARGET_COLOURS[target]) > 800, target
    assert _matching(img, "#d1242f", tol=10) > 100  # the failed cell's red ring and the parity limit line
