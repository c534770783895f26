"""What killed or superseded runs leave in an output directory is cleaned up by the next run, which says so."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from contract_fixtures import check_contract, copy_export, edgevt, exported  # noqa: F401
from edgevt.fsio import STAGING_PREFIX, remove_stale_staging


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_staging_of_a_killed_run_is_removed_and_a_live_runs_is_kept(tmp_path):
    dead = tmp_path / f"{STAGING_PREFIX}{_dead_pid()}-abc"
    legacy = tmp_path / f"{STAGING_PREFIX}k3j2h1"  # older edgevt: no process id in the name
    live = tmp_path / f"{STAGING_PREFIX}{os.getpid()}-xyz"
    for d in (dead, legacy, live):
        (d / "inner").mkdir(parents=True)
        (d / "inner" / "big.onnx").write_bytes(b"x" * 1000)
    assert remove_stale_staging(tmp_path) == sorted([dead.name, legacy.name])
    assert live.exists() and not dead.exists() and not legacy.exists()


def test_a_passing_export_removes_what_earlier_runs_left_and_the_report_says_so(exported, tmp_path):
    out = tmp_path / "out"
    artifact = copy_export(exported("tiny-swiftformer", "onnx"), out)
    stale = out / f"{STAGING_PREFIX}{_dead_pid()}-q1w2e3"
    stale.mkdir()
    (stale / "half.onnx").write_bytes(b"half an export")
    rejected = out / artifact.name.replace(".onnx", ".rejected.onnx")
    rejected.write_bytes(b"an export that failed parity")
    (out / "report.failed.json").write_text(json.dumps({"schema": "edgevt.report", "artifact": {"path": str(rejected)}}))
    (out / "report.failed.md").write_text("failed")
    (out / "report.failed.log").write_text("log of the failed run")
    result = edgevt("export", "tiny-swiftformer", "--weights", "random", "--no-bench", "--out", str(out))
    check_contract(result, as_json=False)
    assert result.code == 0
    left = sorted(p.name for p in out.iterdir())
    assert not [n for n in left if n.startswith(STAGING_PREFIX) or ".rejected." in n or n.startswith("report.failed")], left
    report = json.loads((out / "report.json").read_text())
    assert report["cleanup"]["stale_staging"] == [stale.name]
    assert sorted(report["cleanup"]["superseded"]) == sorted([rejected.name, "report.failed.json", "report.failed.log", "report.failed.md"])
    assert "left by a killed run" in result.err and f"removed   {stale.name}" in result.out


def test_a_failed_report_about_another_artifact_is_left_alone(exported, tmp_path):
    out = tmp_path / "out"
    copy_export(exported("tiny-swiftformer", "onnx"), out)
    other = json.dumps({"schema": "edgevt.report", "artifact": {"path": str(out / "something-else.onnx")}})
    (out / "report.failed.json").write_text(other)
    result = edgevt("-q", "export", "tiny-swiftformer", "--weights", "random", "--no-bench", "--out", str(out), "--json")
    check_contract(result, as_json=True)
    assert result.code == 0 and "cleanup" not in result.json()
    assert (out / "report.failed.json").read_text() == other
