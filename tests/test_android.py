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
    assert p["inference"] == {"runs": 10, "mean_ms": 1.2, "std": 0.0, "min": 1.2, "max": 1.2, "p5": None, "median": None, "p95": None}


def test_parser_all_same_stat_line_with_percentiles():
    text = ("INFO: count=3 curr=1500(all same) p5=1500 median=1500 p95=1500\n"
            "INFO: count=10 curr=1200(all same) p5=1200 median=1200 p95=1200\n"
            "INFO: Inference timings in us: Init: 900, First inference: 1500, Warmup (avg): 1500, Inference (avg): 1200\n")
    p = android.parse_benchmark_output(text)
    assert p["inference"]["median"] == 1.2 and p["inference"]["runs"] == 10 and p["warmup"]["runs"] == 3


def test_parser_failed_run_raises_with_the_tool_errors():
    with pytest.raises(ExportError, match="not a valid Flatbuffer"):
        android.parse_benchmark_output((DATA / "bad_model.txt").read_text())


def test_latency_says_which_engine_and_device():
    p = android.parse_benchmark_output((DATA / "xnnpack_pixel.txt").read_text())
    lat = android.to_latency(p, {"serial": "R5CT", "model": "Pixel 8"}, {"runs": 50, "warmup": 5, "threads": None}, None)
    assert lat["engine"] == "tflite-benchmark_model-android" and lat["device"]["model"] == "Pixel 8"
    assert lat["cold"]["load_ms"] == pytest.approx(58.373) and lat["warm"]["p50_ms"] is None
    assert lat["settings"]["threads"] == 4 and lat["peak_rss_mb"] == pytest.approx(44.0195)
    assert "no percentiles" in lat["notes"][0]


FAKE_ADB = r'''#!{python}
import json, os, sys, shutil, time
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
elif rest == ["shell", "nproc"]:
    print(os.environ.get("FAKE_ADB_NPROC", "8"))
elif rest[0] == "shell" and "--graph=" in rest[1]:  # the benchmark run: its output went to the remote log
    time.sleep(float(os.environ.get("FAKE_ADB_SLEEP", "0")))
    sys.exit(int(os.environ.get("FAKE_ADB_RUN_STATUS", "0")))
elif rest[0] == "pull":
    shutil.copy(os.environ["FAKE_ADB_BENCH_LOG"], rest[2])
elif rest[0] == "push":
    print(rest[1] + ": 1 file pushed, 0 skipped.")
'''

# Stand-ins for the two tools: an ELF header and the strings each binary prints (edgevt reads them to pick flags).
INTERPRETER_BINARY = b"\x7fELF\x02\x01\x01 ... Inference timings in us: ... use_xnnpack ..."
COMPILED_BINARY = b"\x7fELF\x02\x01\x01 ... \n========== BENCHMARK RESULTS ========== ... use_npu ..."


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
    for name in ("FAKE_ADB_NPROC", "FAKE_ADB_SLEEP", "FAKE_ADB_RUN_STATUS"):
        monkeypatch.delenv(name, raising=False)
    binary = tmp_path / "android_aarch64_benchmark_model"
    binary.write_bytes(INTERPRETER_BINARY)
    compiled = tmp_path / "benchmark_model"
    compiled.write_bytes(COMPILED_BINARY)
    artifact = tmp_path / "model" / "tiny-fp32.tflite"
    artifact.parent.mkdir()
    artifact.write_bytes(b"TFL3 fake")
    return {"calls": calls, "binary": binary, "compiled": compiled, "artifact": artifact}


def _calls(fake):
    return [json.loads(line) for line in fake["calls"].read_text().splitlines()]


def _run_command(fake) -> str:
    return next(c[3] for c in _calls(fake) if c[2:3] == ["shell"] and "--graph=" in c[3])


def _bench(fake, binary=None, **settings):
    # the CLI passes min_time_s=0 and max_time_s=MAX_SECS for a phone unless --min-time/--max-time are given
    defaults = {"min_time_s": 0.0, "max_time_s": android.MAX_SECS}
    return android.run_on_device(fake["artifact"], "", str(binary or fake["binary"]), BenchSettings(**{**defaults, **settings}),
                                 lambda m: None)


def test_adb_sequence_pushes_runs_pulls_and_cleans_up(fake_adb):
    lat = _bench(fake_adb, runs=50, warmup=5, threads=4)
    calls = [c for c in _calls(fake_adb) if c[3:4] != ["getprop"]]
    remote = "/data/local/tmp/edgevt"
    assert calls[0] == ["devices"]
    assert calls[1:5] == [["-s", "R5CT", "shell", "mkdir", "-p", remote],
                          ["-s", "R5CT", "push", str(fake_adb["binary"]), f"{remote}/benchmark_model"],
                          ["-s", "R5CT", "shell", "chmod", "755", f"{remote}/benchmark_model"],
                          ["-s", "R5CT", "push", str(fake_adb["artifact"]), f"{remote}/tiny-fp32.tflite"]]
    run = calls[5]
    assert run[:3] == ["-s", "R5CT", "shell"] and run[3].startswith(f"{remote}/benchmark_model --graph={remote}/tiny-fp32.tflite")
    flags = run[3].split(" > ")[0].split()[1:]
    assert flags == [f"--graph={remote}/tiny-fp32.tflite", "--use_xnnpack=true", "--num_threads=4", "--num_runs=50",
                     "--warmup_runs=5", "--min_secs=0", "--warmup_min_secs=0", "--max_secs=1800",
                     "--report_peak_memory_footprint=true"]
    assert calls[6][2:4] == ["pull", f"{remote}/benchmark.log"] and calls[7] == ["-s", "R5CT", "shell", "rm", "-rf", remote]
    assert lat["device"] == {"serial": "R5CT", "manufacturer": "Google", "model": "Pixel 8", "soc": "Tensor G3", "android": "15", "abi": "arm64-v8a"}
    assert lat["warm"]["mean_ms"] == pytest.approx(9.18643) and Path(lat["log"]).is_file()
    assert lat["binary"]["file"] == "android_aarch64_benchmark_model" and lat["binary"]["tool"] == "interpreter"


def test_without_threads_the_phone_core_count_is_passed_and_recorded(fake_adb, monkeypatch):
    # benchmark_model's default (-1) gives XNNPACK one thread and prints no "Num threads" line: always pass a count
    monkeypatch.setenv("FAKE_ADB_BENCH_LOG", str(DATA / "litert_interpreter_pixel8.txt"))
    lat = _bench(fake_adb)
    assert "--num_threads=8" in _run_command(fake_adb)
    assert lat["settings"]["threads"] == 8 and "nproc" in lat["settings"]["threads_source"]
    monkeypatch.setenv("FAKE_ADB_NPROC", "")
    fake_adb["calls"].write_text("")
    lat = _bench(fake_adb)
    assert f"--num_threads={android.THREADS_FALLBACK}" in _run_command(fake_adb)
    assert "nproc" in lat["settings"]["threads_source"] and lat["settings"]["threads_source"].startswith("edgevt's default")


def test_current_litert_log_fills_p50_from_the_median(fake_adb, monkeypatch):
    monkeypatch.setenv("FAKE_ADB_BENCH_LOG", str(DATA / "litert_interpreter_pixel8.txt"))
    lat = _bench(fake_adb, runs=50, warmup=5)
    warm = lat["warm"]
    assert lat["engine"] == android.ENGINE
    assert (warm["p50_ms"], warm["p5_ms"], warm["p95_ms"]) == (pytest.approx(8.392), pytest.approx(8.314), pytest.approx(8.648))
    assert warm["p90_ms"] is None and warm["runs"] == 50 and warm["warmup"] == 5 and warm["percentiles"]
    assert warm["mean_ms"] == pytest.approx(8.44558) and warm["std_ms"] == pytest.approx(0.291)
    assert lat["cold"] == {"load_ms": pytest.approx(61.207), "first_inference_ms": pytest.approx(25.112)}
    assert lat["notes"] == []


def test_compiledmodel_tool_is_run_without_interpreter_flags_and_parsed(fake_adb, monkeypatch):
    monkeypatch.setenv("FAKE_ADB_BENCH_LOG", str(DATA / "litert_compiledmodel_pixel8.txt"))
    lat = _bench(fake_adb, binary=fake_adb["compiled"], runs=50, warmup=5, threads=8)
    command = _run_command(fake_adb)
    assert "--use_xnnpack" not in command and "--num_threads=8" in command and "--warmup_min_secs=0" in command
    assert lat["engine"] == android.ENGINE_COMPILED and "CompiledModel" in lat["binary"]["name"]
    assert lat["cold"]["load_ms"] == pytest.approx(74.918) and lat["cold"]["first_inference_ms"] == pytest.approx(25.112)
    assert lat["warm"]["p50_ms"] == pytest.approx(8.392) and lat["warm"]["runs"] == 50
    assert lat["memory_mb"] == {"init_delta": 33.42, "overall_delta": 40.18, "peak": 45.37}


def test_compiledmodel_results_block_alone_is_enough():
    text = (DATA / "litert_compiledmodel_pixel8.txt").read_text()
    without_stats = "\n".join(line for line in text.splitlines() if "count=" not in line)
    p = android.parse_benchmark_output(without_stats)
    assert p["tool"] == "compiled-model" and p["inference"]["runs"] == 50 and p["inference"]["mean_ms"] == pytest.approx(8.45)
    assert p["inference"]["median"] is None and p["warmup"] == {"runs": 5, "mean_ms": pytest.approx(12.39)}


def test_binary_kind_and_a_non_executable(tmp_path, fake_adb):
    assert android.binary_kind(fake_adb["binary"]) == "interpreter"
    assert android.binary_kind(fake_adb["compiled"]) == "compiled-model"
    apk = tmp_path / "android_aarch64_benchmark_model.apk"
    apk.write_bytes(b"PK\x03\x04 an android app")
    with pytest.raises(UsageError, match="not an executable") as err:
        android.binary_kind(apk)
    assert "android_aarch64_benchmark_model" in err.value.hint


def test_fewer_runs_than_asked_are_noted():
    p = android.parse_benchmark_output((DATA / "litert_interpreter_pixel8.txt").read_text())
    lat = android.to_latency(p, {}, {"runs": 200, "warmup": 5, "threads": 8, "max_secs": 1800.0}, None)
    assert any("50 of 200 runs" in note and "--max_secs" in note for note in lat["notes"])


@pytest.mark.parametrize("log, shown", [("not_executable.txt", "not executable: 32-bit ELF file"),
                                        ("cannot_link.txt", "libLiteRtGpuAccelerator.so")])
def test_loader_errors_are_in_the_message(fake_adb, monkeypatch, log, shown):
    monkeypatch.setenv("FAKE_ADB_BENCH_LOG", str(DATA / log))
    monkeypatch.setenv("FAKE_ADB_RUN_STATUS", "126")
    with pytest.raises(ExportError) as err:
        _bench(fake_adb, threads=4)
    assert shown in err.value.message and "exit status 126" in err.value.message
    assert _calls(fake_adb)[-1][2:5] == ["shell", "rm", "-rf"]


def test_adb_timeout_is_an_error_and_the_phone_is_cleaned_up(fake_adb, monkeypatch):
    monkeypatch.setattr(android, "run_timeout", lambda settings: 0.5)
    monkeypatch.setenv("FAKE_ADB_SLEEP", "5")
    with pytest.raises(ExportError, match="did not finish within 0.5 s") as err:
        _bench(fake_adb, threads=4)
    assert err.value.exit_code == 3 and "adb shell" in err.value.message
    assert _calls(fake_adb)[-1][2:5] == ["shell", "rm", "-rf"]


def test_wireless_serial_gives_a_portable_log_name(fake_adb, monkeypatch):
    monkeypatch.setenv("FAKE_ADB_DEVICES", "192.168.1.5:5555")
    lat = _bench(fake_adb, threads=4)
    assert Path(lat["log"]).name == "tiny-fp32.benchmark_model-192.168.1.5_5555.log"
    assert lat["device"]["serial"] == "192.168.1.5:5555"


def test_cli_bench_android_writes_the_report(fake_adb, monkeypatch):
    monkeypatch.setenv("FAKE_ADB_BENCH_LOG", str(DATA / "litert_interpreter_pixel8.txt"))
    result = CliRunner().invoke(cli, ["bench", str(fake_adb["artifact"]), "--device", "android:R5CT",
                                      "--benchmark-model", str(fake_adb["binary"]), "--runs", "50", "--warmup", "5"])
    assert result.exit_code == 0, result.output
    assert "p50 8.392 ms, p95 8.648 ms (tflite-benchmark_model-android, Google Pixel 8 R5CT, 8 threads)" in result.stdout
    saved = json.loads((fake_adb["artifact"].parent / "report.json").read_text())
    assert saved["latency"]["cold"]["load_ms"] == pytest.approx(61.207) and saved["latency"]["warm"]["p50_ms"] == pytest.approx(8.392)
    md = (fake_adb["artifact"].parent / "report.md").read_text()
    assert "Pixel 8" in md and "Interpreter-API benchmark_model" in md and "median 8.392 ms (p5 8.314, p95 8.648)" in md
    assert "8 threads (adb shell nproc" in md and "`android_aarch64_benchmark_model`" in md


def test_missing_binary_no_device_unknown_serial_and_ambiguity(fake_adb, monkeypatch):
    run = lambda serial, binary: android.run_on_device(fake_adb["artifact"], serial, binary, BenchSettings(), lambda m: None)  # noqa: E731
    monkeypatch.delenv(android.ENV_VAR, raising=False)
    with pytest.raises(RuntimeUnavailable, match="benchmark_model") as err:
        run("", None)
    assert android.ENV_VAR in err.value.hint and err.value.exit_code == 3
    assert "android_aarch64_benchmark_model" in err.value.hint and android.INTERPRETER_URL in err.value.hint
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


@pytest.mark.parametrize("extra, max_secs", [([], "1800"), (["--max-time", "45"], "45"), (["--min-time", "40", "--max-time", "45"], "80")])
def test_cli_bench_android_passes_max_time_to_benchmark_model(fake_adb, monkeypatch, extra, max_secs):
    # --max-time caps the phone's run as it caps the host's; without it exact run counts are not cut short
    monkeypatch.setenv("FAKE_ADB_BENCH_LOG", str(DATA / "litert_interpreter_pixel8.txt"))
    result = CliRunner().invoke(cli, ["bench", str(fake_adb["artifact"]), "--device", "android:R5CT",
                                      "--benchmark-model", str(fake_adb["binary"]), "--runs", "50", *extra])
    assert result.exit_code == 0, result.output
    run = next(c for c in _calls(fake_adb) if len(c) > 3 and "benchmark_model --graph" in c[3])
    assert f"--max_secs={max_secs}" in run[3].split()
