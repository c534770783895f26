"""Latency on an Android phone: push a .tflite and LiteRT's `benchmark_model` with adb, run it, parse its log.

The tool edgevt asks for is the Interpreter-API benchmark (tflite/tools/benchmark, prebuilt as
`android_aarch64_benchmark_model`): it runs the model as an app's `Interpreter` + XNNPACK does. LiteRT's newer
CompiledModel-API tool (litert/tools/benchmark_model) is also accepted; its report says which one ran.
Both report init time, first inference, warmup and timed-run statistics in µs (current builds add p5, median and
p95), and the memory footprint. See `edgevt.benchmark_log` for the formats.
"""

from __future__ import annotations

import mmap
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from edgevt.benchmark_log import COMPILED_MODEL, INTERPRETER, parse_benchmark_output
from edgevt.errors import ExportError, RuntimeUnavailable, UsageError
from edgevt.fsio import sha256_file

ENGINE = "tflite-benchmark_model-android"  # the Interpreter-API tool
ENGINE_COMPILED = "litert-compiledmodel-benchmark_model-android"
ENGINES = {INTERPRETER: ENGINE, COMPILED_MODEL: ENGINE_COMPILED}
TOOL_NAMES = {INTERPRETER: "TFLite Interpreter-API benchmark_model (tflite/tools/benchmark)",
              COMPILED_MODEL: "LiteRT CompiledModel-API benchmark_model (litert/tools/benchmark_model)"}
ENV_VAR = "EDGEVT_BENCHMARK_MODEL"
REMOTE_DIR = "/data/local/tmp/edgevt"
INTERPRETER_URL = ("https://storage.googleapis.com/tensorflow-nightly-public/prod/tensorflow/release/lite/tools/nightly/"
                   "latest/android_aarch64_benchmark_model")
INSTALL_ADB = "install Android SDK platform-tools (https://developer.android.com/tools/releases/platform-tools) and put adb on PATH"
GET_BINARY = (f"download the Interpreter-API tool android_aarch64_benchmark_model ({INTERPRETER_URL}; not the .apk, and not "
              "litert/binaries/.../benchmark_model, the CompiledModel-API tool) or build //tflite/tools/benchmark:benchmark_model "
              f"with --config=android_arm64, then pass --benchmark-model PATH or set {ENV_VAR}")
MAX_SECS = 1800.0  # benchmark_model stops a phase after --max_secs (its default is 150 s); edgevt asks for exact run counts
# and, without --max-time, allows this long for them
THREADS_FALLBACK = 4  # when `adb shell nproc` gives no answer


def to_latency(parsed: dict, device: dict, settings: dict, log_path: Path | None, binary: dict | None = None) -> dict:
    """The spine's latency schema; p50 is benchmark_model's median where it prints one, p90/p99 stay empty."""
    inf = parsed["inference"]
    tool = parsed.get("tool", INTERPRETER)
    notes = []
    if inf.get("median") is None:
        notes.append("this benchmark_model build prints no percentiles (an older TFLite build): compare mean_ms")
    if settings.get("runs") and inf["runs"] is not None and inf["runs"] < settings["runs"]:
        notes.append(f"benchmark_model stopped after {inf['runs']} of {settings['runs']} runs (its --max_secs cap, "
                     f"{settings.get('max_secs')} s)")
    notes += [f"benchmark_model: {w}" for w in parsed.get("warnings", [])]
    return {
        "status": "measured",
        "engine": ENGINES[tool],
        "device": device,
        "binary": {**(binary or {}), "tool": tool, "name": TOOL_NAMES[tool]},
        "cold": {"load_ms": parsed["init_ms"], "first_inference_ms": parsed["first_inference_ms"]},
        "warm": {"runs": inf["runs"], "mean_ms": inf["mean_ms"], "std_ms": inf.get("std"), "min_ms": inf.get("min"),
                 "max_ms": inf.get("max"), "p50_ms": inf.get("median"), "p90_ms": None, "p99_ms": None,
                 "p5_ms": inf.get("p5"), "p95_ms": inf.get("p95"), "median_ci95_ms": [None, None],
                 "percentiles": "benchmark_model's StatWithPercentiles: p5, median, p95" if inf.get("median") is not None else None,
                 "warmup": parsed["warmup"]["runs"], "warmup_mean_ms": parsed["warmup"]["mean_ms"]},
        "peak_rss_mb": (parsed["memory_mb"] or {}).get("peak"),
        "memory_mb": parsed["memory_mb"],
        "delegation": parsed["delegation"],
        "settings": {**settings, "threads": parsed["threads"] if parsed["threads"] and parsed["threads"] > 0 else settings.get("threads")},
        "notes": notes,
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
        raise RuntimeUnavailable("no LiteRT benchmark_model binary given", GET_BINARY)
    if not Path(path).is_file():
        raise RuntimeUnavailable(f"benchmark_model binary {path} does not exist", GET_BINARY)
    return Path(path)


def binary_kind(path: Path) -> str:
    """Which benchmark_model this is, read from the strings it prints (the two tools take different flags)."""
    with open(path, "rb") as f:
        if f.read(4) != b"\x7fELF":
            raise UsageError(f"{path} is not an executable (ELF) file", GET_BINARY)
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return COMPILED_MODEL if data.find(b"BENCHMARK RESULTS") >= 0 else INTERPRETER


def tools_status() -> dict:
    return {"adb": shutil.which("adb"), "benchmark_model": os.environ.get(ENV_VAR), "env_var": ENV_VAR}


def safe_name(text: str) -> str:
    """A serial as part of a file name: wireless serials (192.168.1.5:5555) hold ':' which Windows forbids."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "device"


@dataclass
class Adb:
    exe: str
    serial: str

    def run(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        return _run([self.exe, "-s", self.serial, *args], timeout)

    def __call__(self, *args: str, check: bool = True, timeout: float = 600) -> str:
        proc = self.run(*args, timeout=timeout)
        if check and proc.returncode != 0:
            raise ExportError(f"adb {' '.join(args[:2])} failed (exit {proc.returncode}): {(proc.stderr or proc.stdout).strip()[:300]}")
        return proc.stdout

    def prop(self, name: str) -> str | None:
        return self("shell", "getprop", name, check=False).strip() or None


def _run(command: list[str], timeout: float) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        shown = " ".join(command[3:5] if command[1:2] == ["-s"] else command[1:3])
        raise ExportError(f"adb {shown} did not finish within {timeout:g} s",
                          "check that the phone is awake and still connected (`adb devices`); for long runs lower --runs") from exc


def connect(serial: str) -> Adb:
    exe = shutil.which("adb")
    if exe is None:
        raise RuntimeUnavailable("adb is not on PATH: it is needed to reach an Android device", INSTALL_ADB)
    out = _run([exe, "devices"], 60).stdout
    ready = [line.split()[0] for line in out.splitlines()[1:] if line.split()[1:2] == ["device"]]
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


def device_threads(adb: Adb, requested: int | None) -> tuple[int, str]:
    """--threads, else every core of the phone (as host runs use every core): benchmark_model's own default (-1)
    gives XNNPACK a single thread."""
    if requested:
        return requested, "--threads"
    answer = adb("shell", "nproc", check=False).strip()
    if answer.isdigit() and int(answer) > 0:
        return int(answer), "adb shell nproc, every core of the phone"
    return THREADS_FALLBACK, f"edgevt's default {THREADS_FALLBACK} (`adb shell nproc` gave no count)"


def benchmark_args(remote_model: str, settings, threads: int, kind: str = INTERPRETER) -> list[str]:
    """Exact run counts: benchmark_model otherwise keeps running for --min_secs (1 s) and --warmup_min_secs (0.5 s)
    and stops after --max_secs (150 s) per phase."""
    args = [f"--graph={remote_model}", f"--num_threads={threads}", f"--num_runs={settings.runs}",
            f"--warmup_runs={settings.warmup}", f"--min_secs={settings.min_time_s or 0:g}", "--warmup_min_secs=0",
            f"--max_secs={max_secs(settings):g}", "--report_peak_memory_footprint=true"]
    if kind == INTERPRETER:
        args.insert(1, "--use_xnnpack=true")  # explicit, so the log says how much of the graph XNNPACK took
    return args


def max_secs(settings) -> float:
    """benchmark_model's --max_secs per phase: the user's --max-time (the CLI defaults it to MAX_SECS on a phone, so
    that exact run counts are not cut short), and never below twice --min-time."""
    return max(settings.max_time_s, 2.0 * (settings.min_time_s or 0))


def run_timeout(settings) -> float:
    """How long adb waits for the whole run: warmup and timed runs may each take --max_secs, plus loading."""
    return 2 * max_secs(settings) + 300


def run_on_device(artifact: Path, serial: str, binary: str | None, settings, log) -> dict:
    """push binary + model, run, pull the log, clean up; the log is kept beside the artifact as evidence."""
    if artifact.suffix != ".tflite":
        raise UsageError(f"{artifact.name}: --device android runs .tflite files only")
    exe = find_binary(binary)
    kind = binary_kind(exe)
    adb = connect(serial)
    device = describe(adb)
    threads, source = device_threads(adb, settings.threads)
    log(f"benchmarking {artifact.name} on {device['manufacturer']} {device['model']} ({adb.serial}) with "
        f"{TOOL_NAMES[kind]}, {threads} threads")
    remote_bin, remote_model, remote_log = f"{REMOTE_DIR}/benchmark_model", f"{REMOTE_DIR}/{artifact.name}", f"{REMOTE_DIR}/benchmark.log"
    local_log = artifact.with_name(f"{artifact.stem}.benchmark_model-{safe_name(adb.serial)}.log")
    adb("shell", "mkdir", "-p", REMOTE_DIR)
    try:
        adb("push", str(exe), remote_bin)
        adb("shell", "chmod", "755", remote_bin)
        adb("push", str(artifact), remote_model)
        command = shlex.join([remote_bin, *benchmark_args(remote_model, settings, threads, kind)]) + f" > {remote_log} 2>&1"
        # a failing run still leaves its log (a loader error too: the shell writes it after the redirection)
        status = adb.run("shell", command, timeout=run_timeout(settings)).returncode
        adb("pull", remote_log, str(local_log))
    finally:
        adb("shell", "rm", "-rf", REMOTE_DIR, check=False)
    text = local_log.read_text(errors="replace")
    try:
        parsed = parse_benchmark_output(text)
    except ExportError as exc:
        raise ExportError(f"{exc.message} (exit status {status}; log: {local_log})", exc.hint) from exc
    settings_dict = {"runs": settings.runs, "warmup": settings.warmup, "min_time_s": settings.min_time_s,
                     "threads": threads, "threads_source": source, "max_secs": max_secs(settings)}
    return to_latency(parsed, device, settings_dict, local_log, {"file": exe.name, "sha256": sha256_file(exe), "exit_status": status})

