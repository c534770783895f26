"""`edgevt matrix`: planning, cells in subprocesses, the cache, crashes, timeouts, kill and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from edgevt import bench
from edgevt.cli import main
from edgevt.errors import UsageError
from edgevt.matrix import make_plan

TESTS = Path(__file__).parent
PLUGINS = TESTS / "plugins"
FAULTS = "segfault=fault_segfault,broken=fault_broken,sleepy=fault_sleepy"


@pytest.fixture
def env(tmp_path, monkeypatch, capsys):
    """An empty cache, and the fault-injecting targets importable by this process and by the cell workers."""
    monkeypatch.setenv("EDGEVT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("EDGEVT_EXTRA_TARGETS", FAULTS)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(PLUGINS), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.syspath_prepend(str(PLUGINS))
    CAPTURE["capsys"], CAPTURE["monkeypatch"] = capsys, monkeypatch
    return tmp_path


CAPTURE: dict = {}


class Result:
    def __init__(self, exit_code: int, output: str, stderr: str):
        self.exit_code, self.output, self.stderr = exit_code, output, stderr


def edgevt(*args: str) -> Result:
    """The real entry point (EdgevtErrors become exit codes), in this process so the tiny test models are registered."""
    CAPTURE["monkeypatch"].setattr(sys, "argv", ["edgevt", *args])
    with pytest.raises(SystemExit) as info:
        main()
    captured = CAPTURE["capsys"].readouterr()
    return Result(info.value.code, captured.out, captured.err)


def matrix(out: Path, *args: str):
    result = edgevt("-q", "matrix", "--weights", "random", "--runs", "3", "--warmup", "1", "--min-time", "0", "--max-time", "0.5",
                    "--out", str(out), "--json", *args)
    report = json.loads(result.output) if result.output.strip().startswith("{") else None
    return result, report


def cells(report):
    return {c["id"]: c for c in report["cells"]}


def parity_numbers(report):
    return {c["id"]: (c["status"], c["parity"]["outputs"] if c["parity"] else None) for c in report["cells"]}


# --- planning: fast, nothing runs -------------------------------------------------------------------------

def plan(models="tiny-swiftformer", targets="onnx", precisions="fp32", options=None, profile=None):
    return make_plan(models, targets, precisions, profile, "random", 0, options or {}, {}, {}, None)


def test_int8_resolves_per_target_and_a_precision_a_target_lacks_is_unsupported():
    p = plan(targets="onnx,coreml", precisions="int8,int8-static")
    got = {(c.target, c.precision): c.unsupported for c in p.cells}
    assert got[("onnx", "int8-dynamic")] is None and got[("coreml", "int8-weights")] is None
    assert got[("onnx", "int8-static")] is None and "coreml does not make int8-static" in got[("coreml", "int8-static")]


def test_default_precision_is_each_targets_own_and_globs_expand():
    p = plan(models="tiny-swin*", targets="onnx,coreml", precisions="default")
    assert {c.model for c in p.cells} == {"tiny-swin", "tiny-swinv2"}
    assert {(c.target, c.precision) for c in p.cells} == {("onnx", "fp32"), ("coreml", "fp16")}


def test_exclude_leaves_out_matching_cells():
    p = make_plan("tiny-swiftformer,tiny-cvt", "onnx,tflite", "fp32,int8", None, "random", 0, {}, {}, {}, None,
                  exclude=("tiny-cvt/*/int8*", "*/tflite/fp32"))
    assert sorted(c.id for c in p.cells) == ["tiny-cvt/onnx/fp32", "tiny-swiftformer/onnx/fp32", "tiny-swiftformer/onnx/int8-dynamic",
                                              "tiny-swiftformer/tflite/int8-dynamic"]
    assert p.describe()["exclude"] == ["tiny-cvt/*/int8*", "*/tflite/fp32"]
    with pytest.raises(UsageError, match="leaves no cell"):
        make_plan("tiny-cvt", "onnx", "fp32", None, "random", 0, {}, {}, {}, None, exclude=("*",))


def test_options_go_to_the_targets_that_have_them():
    p = plan(targets="onnx,coreml", options={"coreml.compute_units": "CPU_AND_NE", "opset": 17})
    by_target = {c.target: c.options for c in p.cells}
    assert by_target["coreml"]["compute_units"] == "CPU_AND_NE" and by_target["onnx"]["opset"] == 17
    with pytest.raises(UsageError, match="no target in this matrix has an option 'compute_units'"):
        plan(targets="onnx", options={"compute_units": "ALL"})
    with pytest.raises(UsageError, match="scoped to 'coreml'"):
        plan(targets="onnx", options={"coreml.compute_units": "ALL"})


@pytest.mark.parametrize("args, message", [
    (["-m", "tiny-swiftformr", "-t", "onnx"], "did you mean tiny-swiftformer"),
    (["-m", "tiny-swiftformer", "-t", "onnxx"], "unknown target"),
    (["-m", "tiny-swiftformer", "-p", "fp8"], "unknown precision"),
    (["-m", "nothing-*"], "no registered model matches"),
    (["-t", "onnx"], "no models given"),
])
def test_bad_input_exits_2_and_writes_nothing(env, args, message):
    out = env / "out"
    result = edgevt("matrix", "--weights", "random", "--out", str(out), *args)
    assert result.exit_code == 2 and message in result.stderr
    assert not out.exists() and not (env / "cache").exists()


# --- running cells ------------------------------------------------------------------------------------------

def test_matrix_writes_four_reports_and_a_rerun_reuses_every_cell(env):
    out = env / "run"
    t0 = time.perf_counter()
    first, rep = matrix(out, "-m", "tiny-swiftformer", "-t", "onnx,tflite", "-p", "fp32")
    first_s = time.perf_counter() - t0
    assert first.exit_code == 0, first.output
    assert sorted(p.name for p in out.iterdir()) == ["index.html", "junit.xml", "logs", "report.json", "report.md"]
    assert rep["command"] == "matrix" and rep["summary"]["pass"] == 2 and rep["summary"]["cached"] == 0
    for c in rep["cells"]:
        lat = c["latency"]
        assert c["status"] == "pass" and Path(c["artifact"]["path"]).exists()
        assert len(lat["samples_ms"]) >= 3 and lat["warm"]["p50_ms"] > 0 and lat["baseline"]["engine"] == "torch-eager"
        assert lat["protocol"]["name"] == bench.PROTOCOL and lat["threading"]["OMP_WAIT_POLICY"] == (os.environ.get("OMP_WAIT_POLICY") or "unset (library default)")
    suite = ET.parse(out / "junit.xml").getroot().find("testsuite")
    assert [tc.get("name") for tc in suite.findall("testcase")] == ["onnx/fp32", "tflite/fp32"] and suite.get("failures") == "0"
    assert "| tiny-swiftformer | tflite | fp32 | pass |" in (out / "report.md").read_text()

    t0 = time.perf_counter()
    again, rep2 = matrix(out, "-m", "tiny-swiftformer", "-t", "onnx,tflite", "-p", "fp32")
    assert again.exit_code == 0 and rep2["summary"]["cached"] == 2
    assert parity_numbers(rep2) == parity_numbers(rep)
    assert time.perf_counter() - t0 < first_s / 5

    _, rep3 = matrix(out, "-m", "tiny-swiftformer", "-t", "onnx,tflite", "-p", "fp32", "--remeasure")
    assert [(c["cached"], c["artifact_reused"]) for c in rep3["cells"]] == [(False, True), (False, True)]
    assert [c["artifact"]["sha256"] for c in rep3["cells"]] == [c["artifact"]["sha256"] for c in rep["cells"]]


def test_a_segfaulting_converter_fails_its_cell_only_and_errors_are_cached(env):
    out = env / "run"
    result, rep = matrix(out, "-m", "tiny-swiftformer", "-t", "segfault,broken,onnx", "-p", "fp32")
    assert result.exit_code == 3, result.output
    by_id = cells(rep)
    crashed, broken = by_id["tiny-swiftformer/segfault/fp32"], by_id["tiny-swiftformer/broken/fp32"]
    assert crashed["status"] == "crashed" and crashed["error"]["signal"] == "SIGSEGV"
    assert broken["status"] == "error" and "aten::imaginary" in broken["error"]["message"] and broken["error"]["hint"]
    assert by_id["tiny-swiftformer/onnx/fp32"]["status"] == "pass"
    errors = ET.parse(out / "junit.xml").getroot().find("testsuite").findall("testcase/error")
    assert sorted(e.get("type") for e in errors) == ["Crash", "ExportError"]

    _, rep2 = matrix(out, "-m", "tiny-swiftformer", "-t", "segfault,broken,onnx", "-p", "fp32")
    assert rep2["summary"]["cached"] == 3  # a deterministic crash is not retried on every run...
    _, rep3 = matrix(out, "-m", "tiny-swiftformer", "-t", "segfault,broken,onnx", "-p", "fp32", "--retry-failed")
    assert [c["cached"] for c in rep3["cells"]] == [False, False, True]  # ...unless asked


def test_a_hanging_cell_times_out_and_is_not_cached(env):
    out = env / "run"
    result, rep = matrix(out, "-m", "tiny-swiftformer", "-t", "sleepy", "-p", "fp32", "--cell-timeout", "5")
    assert result.exit_code == 3 and rep["cells"][0]["status"] == "timeout"
    assert not list((env / "cache").glob("results/*/*.json"))


def test_a_parity_failure_is_recorded_with_its_numbers(env):
    out = env / "run"
    # atol = rtol = 0: any difference fails (a cosine above 1, which used to force this, is now refused as bad input)
    result, rep = matrix(out, "-m", "tiny-swiftformer", "-t", "onnx", "-p", "fp32", "--tolerance", "atol=0", "--tolerance", "rtol=0")
    assert result.exit_code == 1 and rep["cells"][0]["status"] == "fail"
    failure = ET.parse(out / "junit.xml").getroot().find("testsuite/testcase/failure")
    assert "worst cosine" in failure.get("message") and "min_cosine" in failure.text


def _workers_of(cache: Path) -> list[int]:
    import psutil

    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if "edgevt.matrix.worker" in cmd and str(cache) in cmd:
            found.append(proc.pid)
    return found


def test_killing_a_run_loses_only_the_cell_in_flight(env):
    cache, out = env / "cache", env / "run"
    args = ["matrix", "-m", "tiny-swiftformer,tiny-cvt,tiny-swin", "-t", "onnx", "-p", "fp32", "--weights", "random",
            "--runs", "3", "--warmup", "1", "--min-time", "0", "--max-time", "0.5", "--out", str(out)]
    script = f"import sys; sys.path.insert(0, {str(TESTS)!r}); import conftest; from edgevt.cli import main; sys.argv = ['edgevt'] + {args!r}; main()"
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
    deadline = time.time() + 240

    def passed() -> int:  # the run's report.json, rewritten after every cell while the run goes on
        try:
            return json.loads((out / "report.json").read_text())["summary"].get("pass", 0)
        except (OSError, ValueError, KeyError):
            return 0

    while passed() < 1 and time.time() < deadline:
        time.sleep(0.2)
    finished = list(cache.glob("results/*/*.json"))
    assert len(finished) == 1, "no cell finished in time"
    mtime = finished[0].stat().st_mtime_ns
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(1.0)
    assert _workers_of(cache) == []  # the cell in flight died with the run
    partial = json.loads((out / "report.json").read_text())
    assert partial["summary"]["pass"] == 1 and partial["summary"]["pending"] == 2  # written cell by cell

    result, rep = matrix(out, "-m", "tiny-swiftformer,tiny-cvt,tiny-swin", "-t", "onnx", "-p", "fp32")
    assert result.exit_code == 0, result.output
    assert [c["cached"] for c in rep["cells"]] == [True, False, False] and rep["summary"]["pass"] == 3
    assert finished[0].stat().st_mtime_ns == mtime  # the finished cell was not recomputed
    assert not [p for p in (cache / "tmp").iterdir()]  # the killed cell's scratch was cleaned up


# --- cache keys ---------------------------------------------------------------------------------------------

def _keys(**changes):
    from dataclasses import asdict

    from edgevt.exporters import get_target
    from edgevt.matrix.cache import artifact_key, result_key, weights_identity
    from edgevt.models.registry import spec_to_dict

    args = {"model": "tiny-swiftformer", "target": "onnx", "precision": "fp32", "options": {}, "seed": 0, "weights": "random",
            "tolerances": {}, "threads": 2, **changes}
    p = plan(args["model"], args["target"], args["precision"], args["options"])
    cell = p.cells[0]
    spec = p.specs[args["model"]]
    akey = artifact_key(spec_to_dict(spec), weights_identity(spec, args["weights"], args["seed"]), get_target(cell.target),
                        cell.precision, cell.options)
    return akey, result_key(akey, args["seed"], args["tolerances"], asdict(p.bench), {"threads": args["threads"]})


def test_cache_keys_change_with_everything_an_artifact_or_result_depends_on(monkeypatch):
    base = _keys()
    assert _keys() == base  # deterministic
    for change in ({"model": "tiny-cvt"}, {"precision": "int8"}, {"options": {"opset": 17}}, {"seed": 1}, {"target": "tflite"}):
        akey, rkey = _keys(**change)
        assert akey != base[0] and rkey != base[1], change
    akey, rkey = _keys(tolerances={"min_cosine": 0.9})  # a new threshold re-checks the same artifact
    assert akey == base[0] and rkey != base[1]
    akey, rkey = _keys(threads=4)
    assert akey == base[0] and rkey != base[1]

    from edgevt import envinfo

    real = envinfo.package_version
    monkeypatch.setattr(envinfo, "package_version", lambda d: "999" if d == "onnxruntime" else real(d))
    assert _keys()[0] != base[0]  # a new runtime version: a new artifact


def test_weights_from_a_file_are_keyed_by_content(tmp_path):
    from edgevt.matrix.cache import weights_identity
    from edgevt.models import get_spec

    spec = get_spec("tiny-swiftformer")
    path = tmp_path / "w.safetensors"
    path.write_bytes(b"one")
    first = weights_identity(spec, str(path), 0)
    path.write_bytes(b"two")
    assert weights_identity(spec, str(path), 0) != first
    assert weights_identity(spec, "pretrained", 0) is None  # not in the local HF cache: cannot be pinned, never served from cache
