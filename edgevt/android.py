"""Latency on an Android phone: push a .tflite and TFLite's `benchmark_model` with adb, run it, parse its log.

benchmark_model reports init time, first inference, warmup and steady-state count/avg/std/min/max in
microseconds, and memory footprint. It reports no percentiles, so p50/p90/p99 stay empty and `mean_ms` is
the number to compare.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from edgevt.errors import ExportError, RuntimeUnavailable, UsageError

ENGINE = "tflite-benchmark_model-android"
ENV_VAR = "EDGEVT_BENCHMARK_MODEL"
REMOTE_DIR = "/data/local/tmp/edgevt"
INSTALL_ADB = "install Android SDK platform-tools (https://developer.android.com/tools/releases/platform-tools) and put adb on PATH"
GET_BINARY = ("download the prebuilt android_aarch64_benchmark_model from the TFLite/LiteRT nightly builds (or build "
              "//tensorflow/lite/tools/benchmark:benchmark_model for android_arm64) and pass --benchmark-model PATH "
              f"or set {ENV_VAR}")

_STAT = re.compile(r"count=(?P<count>\d+)(?: first=(?P<first>[\d.]+))? curr=(?P<curr>[\d.]+)"
                   r"(?: min=(?P<min>[\d.]+) max=(?P<max>[\d.]+) avg=(?P<avg>[\d.eE+-]+) std=(?P<std>[\d.eE+-]+))?")
_PATTERNS = {
    "init_ms": re.compile(r"Initialized session in ([\d.eE+-]+)ms"),
    "model_mb": re.compile(r"The input model file size \(MB\): ([\d.eE+-]+)"),
    "threads": re.compile(r"Num threads: \[(-?\d+)\]"),
    "timings": re.compile(r"Inference timings in us: Init: ([\d.eE+-]+), First inference: ([\d.eE+-]+), "
                          r"Warmup \(avg\): ([\d.eE+-]+|nan), Inference \(avg\): ([\d.eE+-]+|nan)"),
    "memory": re.compile(r"Memory footprint delta from the start of the tool \(MB\): init=([\d.eE+-]+) overall=([\d.eE+-]+)"),
    "peak": re.compile(r"Overall peak memory footprint \(MB\) via periodic monitoring: ([\d.eE+-]+)"),
    "replacing": re.compile(r"Replacing (\d+) out of (\d+) node\(s\) with delegate \((\w+)\) node, yielding (\d+) partitions"),
    "applied": re.compile(r"Explicitly applied (\w+) delegate, and the model graph will be (completely|partially) executed"
                          r"(?: by the delegate w/ (\d+) delegate kernels)?"),
}


def _stat(line: str) -> dict | None:
    m = _STAT.search(line)
    if not m:
        return None
    curr = float(m["curr"])
    if m["avg"] is None:  # "count=N curr=X(all same)": every run took the same time
        return {"count": int(m["count"]), "first": curr, "min": curr, "max": curr, "avg": curr, "std": 0.0}
    return {"count": int(m["count"]), "first": float(m["first"]), "min": float(m["min"]), "max": float(m["max"]),
            "avg": float(m["avg"]), "std": float(m["std"])}


def parse_benchmark_output(text: str) -> dict:
    """benchmark_model's log -> the fields edgevt reports (times in ms). Raises ExportError if the run failed."""
    found: dict = {}
    stats = []
    for line in text.splitlines():
        if (s := _stat(line)) is not None:
            stats.append(s)
        for key, pattern in _PATTERNS.items():
            m = pattern.search(line)
            if m and key not in found:
                found[key] = m.groups()
    if "timings" not in found:
        errors = [line.strip() for line in text.splitlines() if line.lstrip().startswith(("ERROR", "E tflite", "Aborted"))]
        raise ExportError("benchmark_model did not finish: " + ("; ".join(errors[:3]) or "no 'Inference timings' line in its output"),
                          "the full log is kept next to the artifact; check the model path and the binary's ABI")
    init_us, first_us, warmup_avg_us, avg_us = (float(v) for v in found["timings"])
    warmup, steady = (stats[-2], stats[-1]) if len(stats) >= 2 else (None, stats[-1] if stats else None)
    out = {
        "init_ms": init_us / 1e3,
        "first_inference_ms": first_us / 1e3,
        "warmup": {"runs": warmup["count"] if warmup else None, "mean_ms": warmup_avg_us / 1e3},
        "inference": {"runs": steady["count"] if steady else None, "mean_ms": avg_us / 1e3,
                      **({k: steady[k] / 1e3 for k in ("std", "min", "max")} if steady else {})},
        "model_mb": float(found["model_mb"][0]) if "model_mb" in found else None,
        "threads": int(found["threads"][0]) if "threads" in found else None,
        "memory_mb": None,
        "delegation": None,
    }
    if "memory" in found:
        out["memory_mb"] = {"init_delta": float(found["memory"][0]), "overall_delta": float(found["memory"][1]),
                            "peak": float(found["peak"][0]) if "peak" in found else None}
    if "replacing" in found:
        done, total, name, parts = found["replacing"]
        out["delegation"] = {"delegate": name, "nodes_delegated": int(done), "nodes_total": int(total), "partitions": int(parts)}
    elif "applied" in found:
        name, how, kernels = found["applied"]
        out["delegation"] = {"delegate": name, "complete": how == "completely", "partitions": int(kernels) if kernels else 1}
    return out


def to_latency(parsed: dict, device: dict, settings: dict, log_path: Path | None) -> dict:
    """The spine's latency schema. Percentiles are None: benchmark_model does not report them."""
    inf = parsed["inference"]
    return {
        "status": "measured",
        "engine": ENGINE,
        "device": device,
        "cold": {"load_ms": parsed["init_ms"], "first_inference_ms": parsed["first_inference_ms"]},
        "warm": {"runs": inf["runs"], "mean_ms": inf["mean_ms"], "std_ms": inf.get("std"), "min_ms": inf.get("min"),
                 "max_ms": inf.get("max"), "p50_ms": None, "p90_ms": None, "p99_ms": None, "median_ci95_ms": [None, None],
                 "warmup": parsed["warmup"]["runs"], "warmup_mean_ms": parsed["warmup"]["mean_ms"]},
        "peak_rss_mb": (parsed["memory_mb"] or {}).get("peak"),
        "memory_mb": parsed["memory_mb"],
        "delegation": parsed["delegation"],
        "settings": {**settings, "threads": parsed["threads"] if parsed["threads"] and parsed["threads"] > 0 else settings.get("threads")},
        "log": str(log_path) if log_path else None,
    }


def parse_device(text: str) -> str | None:
    """'android' -> '' (the only device), 'android:SERIAL' -> SERIAL, 'host' -> None."""
    kind, _, serial = text.partition(":")
    if kind == "host" and not serial:
        return None
    if kind != "android":
        raise UsageError(f"unknown device {text!r}", "use host (default), android, or android:SERIAL")
    return serial


def find_binary(explicit: str | None) -> Path:
    path = explicit or os.environ.get(ENV_VAR)
    if not path:
        raise RuntimeUnavailable("no TFLite benchmark_model binary given", GET_BINARY)
    if not Path(path).is_file():
        raise RuntimeUnavailable(f"benchmark_model binary {path} does not exist", GET_BINARY)
    return Path(path)


def tools_status() -> dict:
    return {"adb": shutil.which("adb"), "benchmark_model": os.environ.get(ENV_VAR), "env_var": ENV_VAR}


@dataclass
class Adb:
    exe: str
    serial: str

    def __call__(self, *args: str, check: bool = True, timeout: float = 600) -> str:
        proc = subprocess.run([self.exe, "-s", self.serial, *args], capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise ExportError(f"adb {' '.join(args[:2])} failed (exit {proc.returncode}): {(proc.stderr or proc.stdout).strip()[:300]}")
        return proc.stdout

    def prop(self, name: str) -> str | None:
        return self("shell", "getprop", name, check=False).strip() or None


def connect(serial: str) -> Adb:
    exe = shutil.which("adb")
    if exe is None:
        raise RuntimeUnavailable("adb is not on PATH: it is needed to reach an Android device", INSTALL_ADB)
    out = subprocess.run([exe, "devices"], capture_output=True, text=True, timeout=60).stdout
    ready = [line.split()[0] for line in out.splitlines()[1:] if line.strip().endswith("\tdevice") or line.split()[1:2] == ["device"]]
    if not ready:
        raise RuntimeUnavailable("no Android device is connected (`adb devices` lists none in state 'device')",
                                 "connect a phone with USB debugging on and accept its prompt, then check `adb devices`")
    if serial and serial not in ready:
        raise RuntimeUnavailable(f"device {serial} is not connected", f"connected: {', '.join(ready)}")
    if not serial and len(ready) > 1:
        raise UsageError(f"{len(ready)} devices are connected", f"pick one: {', '.join('android:' + s for s in ready)}")
    return Adb(exe, serial or ready[0])


def describe(adb: Adb) -> dict:
    return {"serial": adb.serial, "manufacturer": adb.prop("ro.product.manufacturer"), "model": adb.prop("ro.product.model"),
            "soc": adb.prop("ro.soc.model") or adb.prop("ro.board.platform"), "android": adb.prop("ro.build.version.release"),
            "abi": adb.prop("ro.product.cpu.abi")}


def benchmark_args(remote_model: str, settings) -> list[str]:
    args = [f"--graph={remote_model}", "--use_xnnpack=true", "--report_peak_memory_footprint=true",
            f"--num_runs={settings.runs}", f"--warmup_runs={settings.warmup}"]
    if settings.threads:
        args.append(f"--num_threads={settings.threads}")
    if settings.min_time_s:
        args.append(f"--min_secs={settings.min_time_s}")
    return args


def run_on_device(artifact: Path, serial: str, binary: str | None, settings, log) -> dict:
    """push binary + model, run, pull the log, clean up; the log is kept beside the artifact as evidence."""
    if artifact.suffix != ".tflite":
        raise UsageError(f"{artifact.name}: --device android runs .tflite files only")
    exe = find_binary(binary)
    adb = connect(serial)
    device = describe(adb)
    log(f"benchmarking {artifact.name} on {device['manufacturer']} {device['model']} ({adb.serial}) with benchmark_model")
    remote_bin, remote_model, remote_log = f"{REMOTE_DIR}/benchmark_model", f"{REMOTE_DIR}/{artifact.name}", f"{REMOTE_DIR}/benchmark.log"
    adb("shell", "mkdir", "-p", REMOTE_DIR)
    adb("push", str(exe), remote_bin)
    adb("shell", "chmod", "755", remote_bin)
    adb("push", str(artifact), remote_model)
    command = shlex.join([remote_bin, *benchmark_args(remote_model, settings)]) + f" > {remote_log} 2>&1"
    adb("shell", command, check=False)  # a failing run still leaves its log; the parser reports its errors
    local_log = artifact.with_name(f"{artifact.stem}.benchmark_model-{adb.serial}.log")
    try:
        adb("pull", remote_log, str(local_log))
    finally:
        adb("shell", "rm", "-rf", REMOTE_DIR, check=False)
    parsed = parse_benchmark_output(local_log.read_text(errors="replace"))
    settings_dict = {"runs": settings.runs, "warmup": settings.warmup, "min_time_s": settings.min_time_s, "threads": settings.threads}
    return to_latency(parsed, device, settings_dict, local_log)
