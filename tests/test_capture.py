"""Quiet by default: other libraries' output goes to a log file, edgevt's own to the terminal; -q means quiet."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from contract_fixtures import TRACEBACK, check_contract, edgevt, env
from edgevt.capture import Capture, saved_traceback, terminal_err, terminal_out

TESTS = Path(__file__).parent


def _chatter():
    """What torch, absl and the converters do: a Python print, a warning, a logging line, and raw writes to fd 1 and 2."""
    print("python print on stdout")
    print("python print on stderr", file=sys.stderr)
    warnings.warn("a library's FutureWarning", FutureWarning, stacklevel=1)
    logging.getLogger("some.library").warning("a library's logging warning")
    os.write(1, b"native stdout line\n")
    os.write(2, b"I0000 native stderr line\n")


def test_other_output_goes_to_the_log_and_edgevts_to_the_terminal(tmp_path, capfd):
    with env(EDGEVT_LOG_DIR=str(tmp_path / "logs")), Capture("test") as cap:
        _chatter()
        terminal_err().write("edgevt progress\n")
        terminal_out().write("edgevt result\n")
        log = cap.path
        cap.keep_as = tmp_path / "report.log"
    seen = capfd.readouterr()
    assert "edgevt progress" in seen.err and "edgevt result" in seen.out
    for text in ("python print", "FutureWarning", "logging warning", "native stdout", "I0000"):
        assert text not in seen.out + seen.err
    kept = (tmp_path / "report.log").read_text()
    for text in ("python print on stdout", "python print on stderr", "a library's FutureWarning", "a library's logging warning",
                 "native stdout line", "I0000 native stderr line"):
        assert text in kept
    assert not log.exists()  # moved beside the report
    os.write(2, b"after the capture\n")  # descriptors are restored
    assert "after the capture" in capfd.readouterr().err


def test_an_empty_log_is_dropped_with_the_stale_one_beside_the_report(tmp_path):
    (tmp_path / "report.log").write_text("an older run's log")
    with env(EDGEVT_LOG_DIR=str(tmp_path / "logs")), Capture("test") as cap:
        cap.keep_as = tmp_path / "report.log"
    assert not (tmp_path / "report.log").exists() and not list((tmp_path / "logs").glob("*.log"))


def test_an_unexpected_error_leaves_its_traceback_in_the_log(tmp_path):
    error = ValueError("deep inside a library")
    with env(EDGEVT_LOG_DIR=str(tmp_path / "logs")), pytest.raises(ValueError):
        with Capture("test") as cap:
            cap.keep_as = tmp_path / "report.log"
            raise error
    log = saved_traceback(error)
    assert log and log.parent == tmp_path / "logs" and not (tmp_path / "report.log").exists()
    assert TRACEBACK in log.read_text() and "deep inside a library" in log.read_text()


def test_verbose_leaves_everything_on_the_terminal(tmp_path, capfd):
    with env(EDGEVT_LOG_DIR=str(tmp_path / "logs")), Capture("test", enabled=False) as cap:
        os.write(2, b"I0000 native stderr line\n")
    assert cap.path is None and "I0000" in capfd.readouterr().err


def test_the_boundary_turns_an_unexpected_error_into_exit_3_and_one_line(monkeypatch, tmp_path):
    from edgevt import pipeline

    def broken(*args, **kwargs):
        os.write(2, b"native noise before the crash\n")
        raise KeyError("a bug")

    monkeypatch.setattr(pipeline, "export", broken)
    with env(EDGEVT_LOG_DIR=str(tmp_path / "logs")):
        result = edgevt("export", "tiny-swin", "--weights", "random", "--out", str(tmp_path / "o"), "--json")
        verbose = edgevt("-v", "export", "tiny-swin", "--weights", "random", "--out", str(tmp_path / "o"))
    check_contract(result, as_json=True)
    error = result.json()
    assert result.code == 3 and error["type"] == "KeyError" and "unexpected KeyError: 'a bug'" in error["error"]
    log = Path(error["log"])
    assert TRACEBACK in log.read_text() and "native noise before the crash" in log.read_text()
    assert f"log: {log}" in result.err and "-v" in result.err
    assert verbose.code == 3 and TRACEBACK in verbose.err  # -v asks for the traceback on stderr


def _tiny_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The real entry point in a fresh process (descriptor-level output is only visible there), with the tiny models."""
    code = f"import sys; sys.path.insert(0, {str(TESTS)!r}); import conftest; from edgevt.cli import main; sys.argv = ['edgevt', *sys.argv[1:]]; main()"
    environment = {**os.environ, "EDGEVT_LOG_DIR": str(cwd / "logs")}
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True, env=environment, timeout=900)


def test_quiet_export_prints_nothing_on_stderr_and_json_alone_on_stdout(tmp_path):
    proc = _tiny_cli("-q", "export", "tiny-swiftformer", "--target", "tflite", "--weights", "random", "--runs", "2", "--warmup", "0",
                     "--out", "o", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    report = json.loads(proc.stdout)
    assert report["parity"]["status"] == "pass"
    log = (tmp_path / "o" / "report.log").read_text()
    assert "# edgevt export" in log  # the converters' and torch's chatter is kept there, not lost


def test_on_a_real_terminal_edgevts_lines_pass_and_native_ones_do_not(tmp_path):
    """sys.stderr is descriptor 2 itself here (not a test buffer): edgevt writes through a duplicate of it."""
    code = ("import os, sys\nfrom edgevt.capture import Capture, terminal_err, terminal_out\n"
            "with Capture('t'):\n"
            "    os.write(2, b'native noise\\n'); print('python noise'); print('more', file=sys.stderr)\n"
            "    print('[edgevt] progress', file=terminal_err()); print('result', file=terminal_out())\n"
            "print('after', file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "EDGEVT_LOG_DIR": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "[edgevt] progress\nafter\n" and proc.stdout == "result\n"
    assert "native noise" in next(tmp_path.glob("*.log")).read_text()


@pytest.mark.slow
def test_done_criterion_quiet_tflite_export_of_swiftformer_xs(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "edgevt", "-q", "export", "swiftformer-xs", "--target", "tflite", "--weights", "random"],
                          cwd=tmp_path, capture_output=True, text=True, env={**os.environ, "EDGEVT_LOG_DIR": str(tmp_path / "logs")},
                          timeout=1800)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert "export: swiftformer-xs -> tflite fp32" in proc.stdout
