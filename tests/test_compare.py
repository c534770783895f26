"""`edgevt compare`: the CI gate passes on noise and fails on real latency or parity regressions."""

from __future__ import annotations

import copy
import json
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from matrix_fixtures import cell, latency, parity, report, sample_report, scaled

from edgevt.cli import cli, main

MEASURED = ["swiftformer-xs/onnx/fp32", "swiftformer-xs/onnx/int8-dynamic", "swiftformer-xs/tflite/fp32",
            "swiftformer-xs/tflite/int8-dynamic", "swin-tiny/onnx/fp32"]


@pytest.fixture
def write(tmp_path):
    def put(name: str, data) -> str:
        path = tmp_path / name
        path.write_text(data if isinstance(data, str) else json.dumps(data))
        return str(path)

    return put


def compare(*args):
    return CliRunner().invoke(cli, ["compare", *args])


def by_id(payload: dict) -> dict:
    return {c["id"]: c for c in payload["cells"]}


def find(rep: dict, cell_id: str) -> dict:
    return next(c for c in rep["cells"] if c["id"] == cell_id)


@pytest.fixture
def run_main(monkeypatch):
    """Through main(), which maps EdgevtErrors (bad input) to their exit codes, as the console script does."""

    def invoke(*args):
        monkeypatch.setattr(sys, "argv", ["edgevt", "compare", *args])
        with pytest.raises(SystemExit) as info:
            main()
        return info.value.code

    return invoke


def test_a_report_against_itself_passes(write):
    path = write("a.json", sample_report())
    result = compare(path, path)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("✅ no regression") and "❌" not in result.output


def test_25_percent_slower_regresses_and_names_the_cells(write):
    base = sample_report()
    result = compare(write("a.json", base), write("b.json", scaled(base, 1.25)))
    assert result.exit_code == 1
    first = result.output.splitlines()[0]
    assert first.startswith(f"❌ {len(MEASURED)} regressions")
    for cell_id in MEASURED:
        assert f"`{cell_id}`" in first
    assert "`swiftformer-xs/coreml/fp16`" not in first  # latency skipped there: never a latency regression
    assert "+25.0%" in result.output


def test_20_percent_faster_is_an_improvement_not_a_failure(write):
    base = sample_report()
    result = compare(write("a.json", base), write("b.json", scaled(base, 0.8)), "--json")
    assert result.exit_code == 0
    cells = by_id(json.loads(result.stdout))
    assert {i for i, c in cells.items() if c["verdict"] == "improvement"} == set(MEASURED)
    assert cells["swin-tiny/onnx/fp32"]["latency"]["ratio"] == pytest.approx(0.8, rel=1e-3)
    text = compare(write("a.json", base), write("b.json", scaled(base, 0.8))).output
    assert text.startswith("✅ no regression") and f"{len(MEASURED)} improved" in text and "✅ improvement" in text


def test_a_change_below_the_threshold_passes_even_when_significant(write):
    base = sample_report()
    result = compare(write("a.json", base), write("b.json", scaled(base, 1.05)), "--json")
    assert result.exit_code == 0
    lat = by_id(json.loads(result.stdout))["swiftformer-xs/onnx/fp32"]["latency"]
    assert lat["p_slower"] < 0.01 and lat["verdict"] == "unchanged"  # the threshold, not only the test, holds it back
    assert compare(write("a.json", base), write("b.json", scaled(base, 1.05)), "--threshold", "0.03").exit_code == 1


def _noise_report(seed: int) -> dict:
    return report([cell("m", "onnx", "fp32", p50=10.0, seed=seed), cell("m", "tflite", "fp32", p50=5.0, seed=seed + 1),
                   cell("n", "onnx", "fp32", p50=50.0, seed=seed + 2)])


@pytest.mark.parametrize("seeds", [(10, 20), (30, 40), (50, 60)])
def test_independent_draws_of_the_same_latency_do_not_regress(write, seeds):
    base, cand = write("a.json", _noise_report(seeds[0])), write("b.json", _noise_report(seeds[1]))
    assert compare(base, cand).exit_code == 0
    # Even with no threshold at all, the significance test alone keeps noise from failing the gate.
    assert compare(base, cand, "--threshold", "0").exit_code == 0


def test_a_large_change_that_is_not_significant_does_not_regress(write):
    base, cand = sample_report(), sample_report()
    noisy = [10.0, 20.0, 11.0, 19.0, 15.0]
    find(base, "swin-tiny/onnx/fp32")["latency"]["samples_ms"] = noisy
    find(cand, "swin-tiny/onnx/fp32")["latency"]["samples_ms"] = [s * 1.15 for s in noisy[1:]] + [15.0 * 1.15]
    result = compare(write("a.json", base), write("b.json", cand), "--json")
    lat = by_id(json.loads(result.stdout))["swin-tiny/onnx/fp32"]["latency"]
    assert lat["ratio"] == pytest.approx(1.15) and lat["p_slower"] > 0.01
    assert result.exit_code == 0 and lat["verdict"] == "unchanged"


def test_too_few_samples_is_not_comparable_rather_than_a_regression(write):
    base, cand = sample_report(), sample_report()
    find(base, "swin-tiny/onnx/fp32")["latency"]["samples_ms"] = [80.0, 81.0, 79.0]
    find(cand, "swin-tiny/onnx/fp32")["latency"]["samples_ms"] = [160.0, 161.0, 159.0]
    result = compare(write("a.json", base), write("b.json", cand), "--json")
    assert result.exit_code == 0
    cmp_cell = by_id(json.loads(result.stdout))["swin-tiny/onnx/fp32"]
    assert cmp_cell["latency"]["verdict"] == "not comparable" and "too few timing samples" in cmp_cell["latency"]["reason"]


def test_latency_skipped_on_one_side_is_noted(write):
    base, cand = sample_report(), sample_report()
    find(cand, "swin-tiny/onnx/fp32")["latency"] = {"status": "skipped", "reason": "--no-bench"}
    result = compare(write("a.json", base), write("b.json", cand))
    assert result.exit_code == 0
    assert "latency not measured on one side (candidate: --no-bench)" in result.output


def test_parity_pass_to_fail_regresses_with_equal_latency(write):
    base = sample_report()
    cand = copy.deepcopy(base)
    broken = find(cand, "swin-tiny/onnx/fp32")
    broken["status"], broken["parity"] = "fail", parity("fail", cosine=0.95, top1=0.5)
    result = compare(write("a.json", base), write("b.json", cand))
    assert result.exit_code == 1
    assert result.output.splitlines()[0] == "❌ 1 regression: `swin-tiny/onnx/fp32`"
    assert "pass → fail" in result.output


def test_parity_fail_to_pass_is_an_improvement(write):
    base = sample_report()
    cand = copy.deepcopy(base)
    fixed = find(cand, "swiftformer-xs/tflite/int8-dynamic")
    fixed["status"], fixed["parity"] = "pass", parity("pass")
    result = compare(write("a.json", base), write("b.json", cand), "--json")
    assert result.exit_code == 0
    assert by_id(json.loads(result.stdout))["swiftformer-xs/tflite/int8-dynamic"]["parity"]["verdict"] == "improvement"


def test_top1_drop_that_still_passes_is_noted_but_does_not_gate(write):
    base = sample_report()
    cand = copy.deepcopy(base)
    find(cand, "swin-tiny/onnx/fp32")["parity"]["top1_agreement"] = 0.875
    result = compare(write("a.json", base), write("b.json", cand))
    assert result.exit_code == 0
    assert "top-1 agreement fell 100.0% → 87.5%" in result.output


def test_a_missing_cell_regresses_unless_allowed(write):
    base = sample_report()
    cand = copy.deepcopy(base)
    cand["cells"] = [c for c in cand["cells"] if c["id"] != "swin-tiny/onnx/fp32"]
    a, b = write("a.json", base), write("b.json", cand)
    result = compare(a, b)
    assert result.exit_code == 1
    assert "### Missing cells" in result.output and "`swin-tiny/onnx/fp32`" in result.output.splitlines()[0]
    assert compare(a, b, "--allow-missing").exit_code == 0


def test_a_new_cell_is_listed_but_does_not_gate(write):
    base = sample_report()
    cand = copy.deepcopy(base)
    cand["cells"].append(cell("swin-tiny", "onnx", "int8-dynamic", p50=40.0, seed=9))
    result = compare(write("a.json", base), write("b.json", cand))
    assert result.exit_code == 0
    assert "### New cells" in result.output and "`swin-tiny/onnx/int8-dynamic`" in result.output


def test_run_directories_holding_report_json_work(tmp_path):
    base = sample_report()
    for name, rep in (("base", base), ("cand", scaled(base, 1.3))):
        (tmp_path / name).mkdir()
        (tmp_path / name / "report.json").write_text(json.dumps(rep))
    assert compare(str(tmp_path / "base"), str(tmp_path / "base")).exit_code == 0
    assert compare(str(tmp_path / "base"), str(tmp_path / "cand")).exit_code == 1


def _export_report(factor: float = 1.0) -> dict:
    """The shape pipeline.export writes: one artifact, its sections at the top level."""
    c = scaled(report([cell("swiftformer-xs", "onnx", "fp32", p50=12.0)]), factor)["cells"][0]
    top = {k: v for k, v in report([c]).items() if k not in ("matrix", "summary", "cells")}
    return {**top, "command": "export", "argv": ["export"], "model": c["model_info"], "target": "onnx", "precision": "fp32",
            "artifact": c["artifact"], "export": c["export"], "parity": c["parity"], "latency": c["latency"]}


def test_single_export_reports_compare_as_one_cell(write):
    base = write("a.json", _export_report())
    result = compare(base, write("b.json", _export_report(1.25)), "--json")
    assert result.exit_code == 1
    assert [c["id"] for c in json.loads(result.stdout)["cells"]] == ["swiftformer-xs/onnx/fp32"]
    assert compare(base, base).exit_code == 0


def test_single_export_report_matches_its_matrix_cell(write):
    result = compare(write("a.json", _export_report()), write("b.json", sample_report()), "--json")
    cells = by_id(json.loads(result.stdout))
    assert cells["swiftformer-xs/onnx/fp32"]["verdict"] == "unchanged"  # matched, and the same seeded samples
    assert cells["swiftformer-xs/onnx/fp32"]["latency"]["ratio"] == pytest.approx(1.0)
    assert sum(c["verdict"] == "new" for c in cells.values()) == len(cells) - 1 and result.exit_code == 0


@pytest.mark.parametrize("content, message", [
    (None, "does not exist"),
    ("{not json", "is not valid JSON"),
    (json.dumps({"schema": "something.else", "cells": []}), "is not an edgevt report"),
    (json.dumps({**sample_report(), "schema_version": 99}), "upgrade edgevt"),
    (json.dumps({**sample_report(), "cells": "oops"}), "needs a \"cells\" list"),
    (json.dumps({**sample_report(), "command": "list"}), "which compare cannot read"),
])
def test_bad_input_exits_2_with_a_message(write, run_main, capsys, tmp_path, content, message):
    good = write("good.json", sample_report())
    bad = write("bad.json", content) if content is not None else str(tmp_path / "nope.json")
    assert run_main(good, bad) == 2
    err = capsys.readouterr().err
    assert message in err and ("bad.json" in err or "nope.json" in err)
    assert "hint:" in err


def test_a_directory_without_report_json_exits_2(run_main, capsys, write, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "report.failed.json").write_text("{}")
    assert run_main(write("good.json", sample_report()), str(tmp_path / "run")) == 2
    assert "report.failed.json" in capsys.readouterr().err


def test_json_output_has_per_cell_verdicts_and_statistics(write):
    base = sample_report()
    result = compare(write("a.json", base), write("b.json", scaled(base, 1.25)), "--json")
    payload = json.loads(result.stdout)
    assert payload["regressed"] is True and sorted(payload["regressions"]) == sorted(MEASURED)
    cells = by_id(payload)
    lat = cells["swin-tiny/onnx/fp32"]["latency"]
    assert cells["swin-tiny/onnx/fp32"]["verdict"] == "regression"
    assert lat["ratio"] == pytest.approx(1.25, rel=1e-3) and lat["p_value"] < 1e-6
    assert lat["ratio_ci95"][0] < 1.25 < lat["ratio_ci95"][1] and lat["shift_ms"] > 0
    assert cells["swin-tiny/tflite/fp32"]["verdict"] == "unchanged"  # error -> error: not a regression
    assert cells["swiftformer-xs/coreml/fp16"]["latency"]["verdict"] == "not comparable"


def test_out_writes_the_markdown(write, tmp_path):
    base = sample_report()
    out = tmp_path / "comment" / "compare.md"
    result = compare(write("a.json", base), write("b.json", scaled(base, 1.25)), "--out", str(out), "--json")
    assert result.exit_code == 1
    text = out.read_text()
    assert text.startswith("❌ 5 regressions") and "| cell | baseline p50 |" in text
    json.loads(result.stdout)  # stdout stays JSON


def test_different_machines_are_warned_about(write):
    base = sample_report()
    cand = copy.deepcopy(base)
    cand["environment"]["host_cpu"] = "Other CPU"
    cand["environment"]["packages"]["torch"] = "2.14.0"
    result = compare(write("a.json", base), write("b.json", cand))
    assert result.exit_code == 0
    assert "### Warnings" in result.output and "different machines" in result.output and "'Other CPU'" in result.output
    assert "torch 2.13.0 → 2.14.0" in result.output
    assert "### Warnings" not in compare(write("c.json", base), write("d.json", base)).output


def test_engine_change_makes_latency_not_comparable(write):
    base = sample_report()
    cand = scaled(base, 2.0)
    find(cand, "swin-tiny/onnx/fp32")["latency"] = latency(160.0, engine="onnxruntime-coreml")
    result = compare(write("a.json", base), write("b.json", cand), "--json")
    assert "swin-tiny/onnx/fp32" not in json.loads(result.stdout)["regressions"]


# --- --normalize: gating across machines on a machine-independent figure ---------------------------------------------

def test_a_slower_machine_regresses_in_milliseconds_but_not_normalized(write):
    from matrix_fixtures import other_machine

    base = sample_report()
    a, b = write("a.json", base), write("b.json", other_machine(base, 2.0))
    assert compare(a, b).exit_code == 1  # raw ms: everything looks 100% slower
    for how in ("speedup", "efficiency"):
        result = compare(a, b, "--normalize", how)
        assert result.exit_code == 0, result.output
        assert f"gated on the {how}" in result.output and f"`--normalize {how}`" in result.output


@pytest.mark.parametrize("how", ["speedup", "efficiency"])
def test_a_real_regression_on_another_machine_is_caught_normalized(write, how):
    from matrix_fixtures import other_machine

    base = sample_report()
    cand = other_machine(base, 0.5)  # a machine twice as fast ...
    slow = find(cand, "swin-tiny/onnx/fp32")["latency"]  # ... on which one artifact got 30% slower than the machine explains
    slow["samples_ms"] = [s * 1.3 for s in slow["samples_ms"]]
    result = compare(write("a.json", base), write("b.json", cand), "--normalize", how, "--json")
    assert result.exit_code == 1
    cells = by_id(json.loads(result.stdout))
    assert json.loads(result.stdout)["regressions"] == ["swin-tiny/onnx/fp32"]
    lat = cells["swin-tiny/onnx/fp32"]["latency"]
    assert lat["normalized"] == how and lat["ratio"] == pytest.approx(1.3, rel=0.02)
    assert lat["candidate_figure"] == pytest.approx(lat["baseline_figure"] / 1.3, rel=0.03)
    assert lat["baseline_p50_ms"] == pytest.approx(find(base, "swin-tiny/onnx/fp32")["latency"]["warm"]["p50_ms"], rel=0.01)  # raw ms


def test_normalized_figures_are_shown_as_speedups_and_efficiencies(write):
    base = sample_report()
    text = compare(write("a.json", base), write("b.json", base), "--normalize", "speedup").output
    assert "| baseline speedup | candidate speedup |" in text and "×" in text.split("`swin-tiny/onnx/fp32`")[1].splitlines()[0]
    text = compare(write("a.json", base), write("b.json", base), "--normalize", "efficiency").output
    assert "| baseline efficiency | candidate efficiency |" in text and "%" in text.split("`swin-tiny/onnx/fp32`")[1].splitlines()[0]


def test_a_side_without_the_figure_is_not_comparable(write):
    base, cand = sample_report(), sample_report()
    del find(cand, "swin-tiny/onnx/fp32")["latency"]["baseline"]
    del find(base, "swiftformer-xs/onnx/fp32")["latency"]["compute_bound"]
    result = compare(write("a.json", base), write("b.json", cand), "--normalize", "speedup", "--json")
    lat = by_id(json.loads(result.stdout))["swin-tiny/onnx/fp32"]["latency"]
    assert result.exit_code == 0 and lat["verdict"] == "not comparable" and "no torch eager timing" in lat["reason"]
    result = compare(write("a.json", base), write("b.json", cand), "--normalize", "efficiency", "--json")
    lat = by_id(json.loads(result.stdout))["swiftformer-xs/onnx/fp32"]["latency"]
    assert lat["verdict"] == "not comparable" and "baseline: no compute bound" in lat["reason"]


def test_normalize_accepts_only_known_figures(write):
    from edgevt.compare import Rule
    from edgevt.errors import UsageError

    path = write("a.json", sample_report())
    assert compare(path, path, "--normalize", "ms").exit_code == 2
    with pytest.raises(UsageError, match="normalize"):
        Rule(normalize="ms")


def test_the_speedup_unit_follows_the_paired_speedup_when_the_run_recorded_one():
    from matrix_fixtures import latency

    from edgevt.normalize import unit_ms

    lat = latency(10.0, torch_p50=30.0)
    unit, _ = unit_ms(lat, "speedup")  # an older report: torch eager's median
    assert unit == pytest.approx(float(np.median(lat["baseline"]["samples_ms"])))
    lat["speedup_vs_torch_eager"], lat["speedup"] = 2.5, {"rounds": 12}  # paired per round by edgevt.bench
    assert unit_ms(lat, "speedup") == (pytest.approx(lat["warm"]["p50_ms"] * 2.5), None)


def test_parity_on_different_inputs_is_warned_about_per_cell_and_overall(write):
    # a baseline checked on the 8 photos and a candidate on 104 views: a cosine or top-1 change may be the inputs
    base = sample_report()
    for c in base["cells"]:
        c["inputs"] = {"kind": "tensor", "seed": 0, "samples": 10, "photos": 8, "noise": 2, "images": {"digest": "a" * 64}}
    same = copy.deepcopy(base)
    cand = copy.deepcopy(base)
    find(cand, "swin-tiny/onnx/fp32")["inputs"].update(samples=106, photos=104, images={"digest": "b" * 64})
    result = compare(write("a.json", base), write("b.json", same), "--json")
    assert not any("different inputs" in w for w in json.loads(result.stdout)["warnings"])
    result = compare(write("a.json", base), write("c.json", cand), "--json")
    out = json.loads(result.stdout)
    assert any(w.startswith("1 matched cell(s) had parity checked on different inputs") for w in out["warnings"])
    notes = by_id(out)["swin-tiny/onnx/fp32"]["notes"]
    assert any("baseline 8 photos + 2 noise, seed 0, photos aaaaaaaaaaaa; candidate 104 photos + 2 noise" in n for n in notes)
    assert not any("different inputs" in n for n in by_id(out)["swin-tiny/onnx/fp32".replace("swin-tiny", "swiftformer-xs")]["notes"])


# --- a host that changes speed: judged on the blocks at full speed ------------------------------------------------------

MOSTLY_FAST, MOSTLY_SLOW = (False, True, False, True, False), (True, False, True, False, True)
CELL = "swiftformer-xs/onnx/fp32"


def _with_latency(lat: dict) -> dict:
    rep = sample_report()
    find(rep, CELL)["latency"] = lat
    return rep


def _without_blocks(lat: dict) -> dict:
    """The same section as a report older than the full-speed figures records it: no block structure."""
    out = copy.deepcopy(lat)
    del out["protocol"]["blocks"]
    return out


def test_a_run_spent_partly_in_a_slow_host_state_is_not_a_regression(write):
    # the same artifact timed twice on a host slow 40% and then 60% of the time: over all samples the median moves
    # by far more than the 10% threshold (what compare judged before), at full speed it does not
    from matrix_fixtures import timed_latency

    base, cand = timed_latency(10.0, 25.0, MOSTLY_FAST), timed_latency(10.0, 25.0, MOSTLY_SLOW, seed=1)
    old = compare(write("a0.json", _with_latency(_without_blocks(base))), write("b0.json", _with_latency(_without_blocks(cand))), "--json")
    assert old.exit_code == 1 and json.loads(old.stdout)["regressions"] == [CELL]
    assert by_id(json.loads(old.stdout))[CELL]["latency"]["basis"] == "all samples"

    result = compare(write("a.json", _with_latency(base)), write("b.json", _with_latency(cand)), "--json")
    assert result.exit_code == 0, result.output
    lat = by_id(json.loads(result.stdout))[CELL]["latency"]
    assert lat["basis"] == "full speed" and lat["verdict"] == "unchanged" and lat["ratio"] == pytest.approx(1.0, abs=0.03)
    text = compare(write("a.json", _with_latency(base)), write("b.json", _with_latency(cand))).output
    assert "Samples: for 1 of 5 cells, each side's blocks at the host's full speed" in text  # the others record no blocks


def test_an_artifact_slower_in_every_block_still_regresses_at_full_speed(write):
    # the check can fail: 20% slower, and timed mostly in the slow state, is a 20% regression at full speed
    from matrix_fixtures import timed_latency

    base, cand = timed_latency(10.0, 25.0, MOSTLY_FAST), timed_latency(12.0, 25.0, MOSTLY_SLOW, seed=1)
    result = compare(write("a.json", _with_latency(base)), write("b.json", _with_latency(cand)), "--json")
    assert result.exit_code == 1 and json.loads(result.stdout)["regressions"] == [CELL]
    lat = by_id(json.loads(result.stdout))[CELL]["latency"]
    assert lat["basis"] == "full speed" and lat["ratio"] == pytest.approx(1.2, abs=0.03)
    assert lat["candidate_p50_ms"] == pytest.approx(12.0, rel=0.03)  # the p50 shown is over the samples judged


@pytest.mark.parametrize("how", ["speedup", "efficiency"])
def test_normalized_figures_are_judged_at_full_speed_too(write, how):
    from matrix_fixtures import timed_latency

    base = timed_latency(10.0, 25.0, MOSTLY_FAST)
    same, slower = timed_latency(10.0, 25.0, MOSTLY_SLOW, seed=1), timed_latency(13.0, 25.0, MOSTLY_SLOW, seed=1)
    a = write("a.json", _with_latency(base))
    result = compare(a, write("b.json", _with_latency(same)), "--normalize", how, "--json")
    lat = by_id(json.loads(result.stdout))[CELL]["latency"]
    assert result.exit_code == 0 and lat["basis"] == "full speed", result.output
    if how == "speedup":
        assert lat["baseline_figure"] == pytest.approx(2.5, rel=0.03) and lat["candidate_figure"] == pytest.approx(2.5, rel=0.03)
    result = compare(a, write("c.json", _with_latency(slower)), "--normalize", how, "--json")
    assert result.exit_code == 1 and json.loads(result.stdout)["regressions"] == [CELL]


def test_the_full_speed_samples_are_the_ones_the_report_summarised():
    # compare splits the samples into blocks itself; they must be the blocks edgevt.bench kept for warm.full_speed
    from matrix_fixtures import timed_latency

    from edgevt.compare import full_speed_view

    lat = timed_latency(10.0, 25.0, MOSTLY_SLOW)
    view = full_speed_view(lat)
    full = lat["warm"]["full_speed"]
    assert 0 < full["blocks"] < full["of_blocks"] and len(view["samples_ms"]) == full["runs"]
    assert view["warm"]["p50_ms"] == pytest.approx(full["p50_ms"], rel=1e-3)
    assert len(view["baseline"]["samples_ms"]) == lat["baseline"]["warm"]["full_speed"]["runs"]
    assert view["speedup_vs_torch_eager"] == lat["speedup"]["full_speed"]["median"]
    assert full_speed_view(_without_blocks(lat)) is None


def test_one_side_without_blocks_judges_all_samples_on_both_and_says_so(write):
    from matrix_fixtures import timed_latency

    base = timed_latency(10.0, 25.0, MOSTLY_FAST)
    result = compare(write("a.json", _with_latency(_without_blocks(base))), write("b.json", _with_latency(base)))
    assert "Samples: all of them (a side does not record its timing blocks" in result.output
    result = compare(write("a.json", _with_latency(_without_blocks(base))), write("b.json", _with_latency(base)), "--json")
    assert by_id(json.loads(result.stdout))[CELL]["latency"]["basis"] == "all samples"
