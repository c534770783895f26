"""Android device benchmark without a device: benchmark_model logs in their real format, and a fake adb on PATH."""

import json
import os
import stat
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgevt import android
from edgevt.bench import BenchSettings
from edgevt.cli import cli
from edgevt.errors import ExportError, RuntimeUnavailable, UsageError

DATA = Path(__file__).parent / "data" / "benchmark_model"


def test_parser_reads_timings_memory_and_delegation():
    p = android.parse_benchmark_output((DATA / "xnnpack_pixel.txt").read_text())
    assert p["init_ms"] == pytest.approx(58.373) and p["first_inference_ms"] == pytest.approx(24.870)
    assert p["warmup"] == {"runs": 54, "mean_ms": pytest.approx(9.3187)}
    assert p["inference"]["runs"] == 108 and p["inference"]["mean_ms"] == pytest.approx(9.18643)
    assert p["inference"]["std"] == pytest.approx(0.263) and p["inference"]["min"] == pytest.approx(8.811)
    assert p["memory_mb"] == {"init_delta": 31.2734, "overall_delta": 38.6719, "peak": 44.0195}
    assert p["threads"] == 4 and p["model_mb"] == pytest.approx(12.2054)
    assert p["delegation"] == {"delegate": "TfLiteXNNPackDelegate", "nodes_delegated": 264, "nodes_total": 264, "partitions": 1}


def test_parser_partial_delegation_and_no_memory_lines():
    p = android.parse_benchmark_output((DATA / "partial_delegation.txt").read_text())
    assert p["delegation"]["nodes_delegated"] == 1874 and p["delegation"]["nodes_total"] == 2104
    assert p["memory_mb"] is None and p["inference"]["mean_ms"] == pytest.approx(139.877)


def test_parser_all_same_stat_line():
    text = ("INFO: count=3 curr=1500(all same)\nINFO: count=10 curr=1200(all same)\n"
            "INFO: Inference timings in us: Init: 900, First inference: 1500, Warmup (avg): 1500, Inference (avg): 1200\n")
    p = android.parse_benchmark_output(text)
    assert p["inference"] == {"runs": 10, "mean_ms": 1.2, "std": 0.0, "min": 1.2, "max": 1.2}


def test_parser_failed_run_raises_with_the_tool_errors():
    with pytest.raises(ExportError, match="not a valid Flatbuffer"):
        android.parse_benchmark_output((DATA / "bad_model.txt").read_text())


def test_latency_says_which_engine_and_device():
    p = android.parse_benchmark_output((DATA / "xnnpack_pixel.txt").read_text())
    lat = android.to_latency(p, {"serial": "R5CT", "model": "Pixel 8"}, {"runs": 50, "warmup": 5, "threads": None}, None)
    assert lat["engine"] == "tflite-benchmark_model-android" and lat["device"]["model"] == "Pixel 8"
    assert lat["cold"]["load_ms"] == pytest.approx(58.373) and lat["warm"]["p50_ms"] is None
    assert lat["settings"]["threads"] == 4 and lat["peak_rss_mb"] == pytest.approx(44.0195)


FAKE_ADB = r'''#!{python}
import json, os, sys, shutil
args = sys.argv[1:]
with open(os.environ["FAKE_ADB_LOG"], "a") as f:
    f.write(json.dumps(args) + "\n")
devices = os.environ.get("FAKE_ADB_DEVICES", "")
if args == ["devices"]:
    print("List of devices attached")
    for serial in filter(None, devices.split(",")):
        print(serial + "\tdevice")
    sys.exit(0)
rest = args[2:]  # after -s SERIAL
props = {{"ro.product.manufacturer": "Google", "ro.product.model": "Pixel 8", "ro.soc.model": "Tensor G3",
          "ro.build.version.release": "15", "ro.product.cpu.abi": "arm64-v8a"}}
if rest[:2] == ["shell", "getprop"]:
    print(props.get(rest[2], ""))
elif rest[0] == "pull":
    shutil.copy(os.environ["FAKE_ADB_BENCH_LOG"], rest[2])
elif rest[0] == "push":
    print(rest[1] + ": 1 file pushed, 0 skipped.")
'''


@pytest.fixture
def fake_adb(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    adb = bin_dir / "adb"
    adb.write_text(FAKE_ADB.format(python=sys.executable))
    adb.chmod(adb.stat().st_mode | stat.S_IEXEC)
    calls = tmp_path / "adb-calls.jsonl"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_ADB_LOG", str(calls))
    monkeypatch.setenv("FAKE_ADB_DEVICES", "R5CT")
    monkeypatch.setenv("FAKE_ADB_BENCH_LOG", str(DATA / "xnnpack_pixel.txt"))
    binary = tmp_path / "benchmark_model"
    binary.write_bytes(b"\x7fELF fake")
    artifact = tmp_path / "model" / "tiny-fp32.tflite"
    artifact.parent.mkdir()
    artifact.write_bytes(b"TFL3 fake")
    return {"calls": calls, "binary": binary, "artifact": artifact}


def _calls(fake):
    return [json.loads(line) for line in fake["calls"].read_text().splitlines()]


def test_adb_sequence_pushes_runs_pulls_and_cleans_up(fake_adb):
    lat = android.run_on_device(fake_adb["artifact"], "", str(fake_adb["binary"]), BenchSettings(runs=50, warmup=5, threads=4), lambda m: None)
    calls = [c for c in _calls(fake_adb) if c[3:4] != ["getprop"]]
    remote = "/data/local/tmp/edgevt"
    assert calls[0] == ["devices"]
    assert calls[1:5] == [["-s", "R5CT", "shell", "mkdir", "-p", remote],
                          ["-s", "R5CT", "push", str(fake_adb["binary"]), f"{remote}/benchmark_model"],
                          ["-s", "R5CT", "shell", "chmod", "755", f"{remote}/benchmark_model"],
                          ["-s", "R5CT", "push", str(fake_adb["artifact"]), f"{remote}/tiny-fp32.tflite"]]
    run = calls[5]
    assert run[:3] == ["-s", "R5CT", "shell"] and run[3].startswith(f"{remote}/benchmark_model --graph={remote}/tiny-fp32.tflite")
    assert "--num_runs=50" in run[3] and "--warmup_runs=5" in run[3] and "--num_threads=4" in run[3] and "--use_xnnpack=true" in run[3]
    assert calls[6][2:4] == ["pull", f"{remote}/benchmark.log"] and calls[7] == ["-s", "R5CT", "shell", "rm", "-rf", remote]
    assert lat["device"] == {"serial": "R5CT", "manufacturer": "Google", "model": "Pixel 8", "soc": "Tensor G3", "android": "15", "abi": "arm64-v8a"}
    assert lat["warm"]["mean_ms"] == pytest.approx(9.18643) and Path(lat["log"]).is_file()


def test_cli_bench_android_writes_the_report(fake_adb):
    result = CliRunner().invoke(cli, ["-q", "bench", str(fake_adb["artifact"]), "--device", "android:R5CT",
                                      "--benchmark-model", str(fake_adb["binary"]), "--json"])
    assert result.exit_code == 0, result.output
    lat = json.loads(result.stdout)["latency"]
    assert lat["engine"] == "tflite-benchmark_model-android" and lat["device"]["serial"] == "R5CT"
    saved = json.loads((fake_adb["artifact"].parent / "report.json").read_text())
    assert saved["latency"]["cold"]["load_ms"] == pytest.approx(58.373)
    assert "Pixel 8" in (fake_adb["artifact"].parent / "report.md").read_text()


def test_missing_binary_no_device_unknown_serial_and_ambiguity(fake_adb, monkeypatch):
    run = lambda serial, binary: android.run_on_device(fake_adb["artifact"], serial, binary, BenchSettings(), lambda m: None)  # noqa: E731
    monkeypatch.delenv(android.ENV_VAR, raising=False)
    with pytest.raises(RuntimeUnavailable, match="benchmark_model") as err:
        run("", None)
    assert android.ENV_VAR in err.value.hint and err.value.exit_code == 3
    monkeypatch.setenv("FAKE_ADB_DEVICES", "")
    with pytest.raises(RuntimeUnavailable, match="no Android device"):
        run("", str(fake_adb["binary"]))
    monkeypatch.setenv("FAKE_ADB_DEVICES", "A1,B2")
    with pytest.raises(RuntimeUnavailable, match="C3 is not connected"):
        run("C3", str(fake_adb["binary"]))
    with pytest.raises(UsageError, match="2 devices"):
        run("", str(fake_adb["binary"]))


def _main(monkeypatch, *args) -> int:
    from edgevt.cli import main

    monkeypatch.setattr(sys, "argv", ["edgevt", *args])
    with pytest.raises(SystemExit) as info:
        main()
    return info.value.code


def test_no_adb_on_path_is_exit_3_with_install_hint(fake_adb, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    code = _main(monkeypatch, "bench", str(fake_adb["artifact"]), "--device", "android", "--benchmark-model", str(fake_adb["binary"]), "--json")
    error = json.loads(capsys.readouterr().out)
    assert code == 3 and "adb" in error["error"] and "platform-tools" in error["hint"]


def test_bad_device_value_is_a_usage_error(monkeypatch, capsys):
    assert _main(monkeypatch, "bench", "x.tflite", "--device", "iphone") == 2
    assert "android:SERIAL" in capsys.readouterr().err
