"""What the timing benchmarks share: artifacts, runners, and child processes that time runtimes.

    python benchmarks/_timing.py alone ort swiftformer-xs --seconds 5 --threads 2       # JSON on stdout
    python benchmarks/_timing.py protocol ort,torch swiftformer-xs                      # edgevt.bench.measure
    python benchmarks/_timing.py interleaved ort,ort swiftformer-xs --seconds 5         # run by run, for contrast
    python benchmarks/_timing.py serve alone ort swiftformer-xs                          # a worker driven block by block

Workers (`serve`) are how the benchmarks pair measurements on a host whose speed changes for seconds at a time
(benchmarks/host_modes.py): the parent keeps one process per way of timing and asks them, in turn, for one block of
runs each, waiting until the previous worker's threads are idle, so blocks that are compared ran seconds apart.

"Alone" is how a user runs one runtime: its own process, library defaults (no OMP_WAIT_POLICY, ORT spinning
on), the runs back to back with nothing else in the process. The parent benchmarks compare it with edgevt's
protocol (edgevt.bench.measure).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RUNTIMES = ("ort", "litert", "torch")
NAMES = {"ort": "ONNX Runtime", "litert": "LiteRT (XNNPACK)", "torch": "torch eager"}
SUFFIX = {"ort": ("onnx", ".onnx"), "litert": ("tflite", ".tflite")}


def clean_env() -> dict:
    """Library defaults: whatever OMP_WAIT_POLICY a shell may have set is dropped for the children."""
    return {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}


def artifact(model: str, runtime: str, runs_dir: Path) -> Path:
    """The fp32 artifact of MODEL for ort/litert, exported once with the real CLI (no latency)."""
    target, suffix = SUFFIX[runtime]
    out = runs_dir / model / target
    found = sorted(out.glob(f"*{suffix}"))
    if found:
        return found[0]
    cmd = [sys.executable, "-m", "edgevt", "-q", "export", model, "--target", target, "--weights", "random", "--no-bench",
           "--out", str(out), "--json"]
    report = json.loads(subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=clean_env()).stdout)
    if "error" in report:
        raise SystemExit(f"{model} {target}: {report['error']}")
    return Path(report["artifact"]["path"])


def batch_for(path: Path):
    """A seeded N x C x H x W input of the artifact's shape (every runner takes NCHW)."""
    import numpy as np

    from edgevt.exporters import target_for_artifact

    shape = [d if isinstance(d, int) and d > 0 else 1 for d in target_for_artifact(path).input_shape(path)]
    return np.random.default_rng(0).standard_normal(shape, dtype=np.float32)


def opener(runtime: str, model: str, runs_dir: Path, threads: int):
    """A zero-argument function that loads the runner (what edgevt.bench.measure takes)."""
    if runtime == "torch":
        from edgevt.exporters.torch_eager import TorchEagerRunner
        from edgevt.models.loading import load_model, resolve_spec

        module = load_model(resolve_spec(model), "random", 0).module
        return lambda: TorchEagerRunner(module, threads)
    path = artifact(model, runtime, runs_dir)
    if runtime == "ort":
        from edgevt.exporters.onnx import OrtRunner

        return lambda: OrtRunner(path, threads)
    from edgevt.exporters.tflite import LiteRTRunner

    return lambda: LiteRTRunner(path, threads)


def input_for(model: str, runs_dir: Path):
    return batch_for(artifact(model, "ort", runs_dir))


def time_alone(runtime: str, model: str, runs_dir: Path, threads: int, seconds: float, warmup: int = 5) -> dict:
    """Back-to-back runs of one runtime for `seconds`, in this process, nothing else running in it."""
    import numpy as np

    batch = input_for(model, runs_dir)
    runner = opener(runtime, model, runs_dir, threads)()
    for _ in range(warmup):
        runner.run(batch)
    samples, start = [], time.perf_counter()
    while time.perf_counter() - start < seconds or len(samples) < 10:
        t0 = time.perf_counter()
        runner.run(batch)
        samples.append((time.perf_counter() - t0) * 1e3)
    return {"runtime": runtime, "engine": runner.engine, "p50_ms": float(np.median(samples)), "runs": len(samples)}


def time_protocol(runtimes: list[str], model: str, runs_dir: Path, threads: int, min_time: float, max_time: float) -> dict:
    """The runtimes (a name twice = one artifact against itself) timed together by edgevt's protocol, in this process."""
    from edgevt.bench import BenchSettings, measure

    openers = {r: opener(r, model, runs_dir, threads) for r in dict.fromkeys(runtimes)}
    timing = measure([openers[r] for r in runtimes], input_for(model, runs_dir),
                     BenchSettings(min_time_s=min_time, max_time_s=max_time, threads=threads))
    return {"runtimes": runtimes, "p50_ms": [r.warm["p50_ms"] for r in timing.reports], "runs": [r.warm["runs"] for r in timing.reports],
            "stopped_by": timing.protocol["sampling"]["stopped_by"], "seconds": timing.protocol["sampling"]["seconds"],
            "reached_ci95_rel": timing.protocol["sampling"]["reached_ci95_rel"], "pause_median_ms": timing.protocol["pause"]["median_ms"],
            "paired": [r and {k: r[k] for k in ("median", "ci95", "rounds")} for r in timing.protocol["paired"]["ratios"]],
            "block_spread_p90_p10": timing.protocol["host"]["block_spread_p90_p10"]}


def serve(kind: str, runtimes: list[str], model: str, runs_dir: Path, threads: int) -> None:
    """A worker: loads the runtimes, then answers each stdin line "I" with the median ms of one block of runtime I.
    kind "alone": one runtime, nothing else in the process; a block is an untimed wake-up run then BLOCK_S of runs.
    kind "protocol": the runtimes together in one process, each block by edgevt.bench's own protocol state
    (_Protocol.block: a pause until the others' threads are idle, an untimed wake-up run, then the block)."""
    import numpy as np

    from edgevt.bench import _block_runs, _Protocol, wait_until_idle

    batch = input_for(model, runs_dir)
    runners = [opener(r, model, runs_dir, threads)() for r in runtimes]
    p = _Protocol(runners, batch, wait_until_idle if kind == "protocol" else (lambda: {"ms": 0.0, "idle": True}), time.perf_counter)
    sizes = []
    for i, runner in enumerate(runners):
        for _ in range(3):
            runner.run(batch)
        sizes.append(_block_runs(float(np.median([p.timed(i) for _ in range(5)]))))
    print(json.dumps({"ready": True, "engines": [r.engine for r in runners]}), flush=True)
    for line in sys.stdin:
        i = int(line)
        if kind == "alone":
            p.current = None  # every block starts with an untimed wake-up run, as after the protocol's pause
        p.block(i, sizes[i])
        _, a, b = p.blocks[-1]
        print(json.dumps({"median_ms": float(np.median(p.samples[i][a:b])), "runs": b - a}), flush=True)


def task_cpu_ns(pid: int) -> int:
    """CPU time of every thread of process PID so far (ns, from /proc/PID/task/*/schedstat)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            total += int(open(f"/proc/{pid}/task/{tid}/schedstat").read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


class Worker:
    """A `serve` child at library defaults, driven block by block."""

    def __init__(self, kind: str, runtimes: list[str], model: str, runs_dir: Path, threads: int):
        self.kind, self.runtimes = kind, runtimes
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__)), "serve", kind, ",".join(runtimes), model,
                                      "--runs-dir", str(runs_dir), "--threads", str(threads)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                     cwd=ROOT, env=clean_env())
        ready = self.proc.stdout.readline()
        if not ready.startswith("{"):
            raise SystemExit(f"worker {kind} {runtimes} {model} did not start (exit {self.proc.wait()})")
        self.engines = json.loads(ready)["engines"]

    def block(self, i: int = 0) -> float:
        self.proc.stdin.write(f"{i}\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())["median_ms"]

    def wait_idle(self) -> dict:
        """Until this worker's threads are idle (its spin-waits ended), by the protocol's own pause rule
        (edgevt.bench.wait_until_idle) applied to the worker's CPU time instead of this process's other threads."""
        from edgevt.bench import wait_until_idle

        return wait_until_idle(cpu=lambda: task_cpu_ns(self.proc.pid) / 1e9)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def interleave(runners: list, batch, seconds: float) -> list[list[float]]:
    """Run by run (a b a b …) for `seconds` after 5 untimed runs each: the ms of every run, per runner."""
    for runner in runners:
        for _ in range(5):
            runner.run(batch)
    samples: list[list[float]] = [[] for _ in runners]
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for runner, bucket in zip(runners, samples):
            t0 = time.perf_counter()
            runner.run(batch)
            bucket.append((time.perf_counter() - t0) * 1e3)
    return samples


def time_interleaved(runtimes: list[str], model: str, runs_dir: Path, threads: int, seconds: float) -> dict:
    """What edgevt did before its protocol: the runtimes run by run (a b a b …) in one process, for contrast."""
    import numpy as np

    openers = {r: opener(r, model, runs_dir, threads) for r in dict.fromkeys(runtimes)}
    samples = interleave([openers[r]() for r in runtimes], input_for(model, runs_dir), seconds)
    return {"runtimes": runtimes, "p50_ms": [float(np.median(s)) for s in samples], "runs": [len(s) for s in samples]}


def write_report(out: Path, lines: list[str], record: dict) -> Path:
    """OUT.md from the Markdown lines and OUT.json from the record; returns the .md path."""
    md = out.with_suffix(".md")
    md.parent.mkdir(parents=True, exist_ok=True)
    md.write_text("\n".join(lines) + "\n")
    out.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    return md


def child(args: list[str], timeout: float = 900) -> dict:
    """Run `python benchmarks/<script> ARGS` in a fresh process at library defaults; its last stdout line is JSON."""
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT, env=clean_env(), timeout=timeout)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _child_args(mode: str, runtimes: list[str], model: str, runs_dir: Path, threads: int, *extra: str) -> list[str]:
    return [str(Path(__file__)), mode, ",".join(runtimes), model, "--runs-dir", str(runs_dir), "--threads", str(threads), *extra]


def alone(runtime: str, model: str, runs_dir: Path, threads: int, seconds: float) -> dict:
    return child(_child_args("alone", [runtime], model, runs_dir, threads, "--seconds", str(seconds)))


def protocol(runtimes: list[str], model: str, runs_dir: Path, threads: int, min_time: float = 2.0, max_time: float = 20.0) -> dict:
    return child(_child_args("protocol", runtimes, model, runs_dir, threads, "--min-time", str(min_time), "--max-time", str(max_time)))


def interleaved(runtimes: list[str], model: str, runs_dir: Path, threads: int, seconds: float) -> dict:
    return child(_child_args("interleaved", runtimes, model, runs_dir, threads, "--seconds", str(seconds)))


def edgevt_json(*args: str) -> dict:
    """A real `edgevt ... --json` run in a fresh process at library defaults."""
    proc = subprocess.run([sys.executable, "-m", "edgevt", "-q", *args, "--json"], capture_output=True, text=True, cwd=ROOT, env=clean_env())
    report = json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else {"error": proc.stderr[-2000:]}
    if "error" in report:
        raise SystemExit(f"edgevt {' '.join(args)}: {report['error']}")
    return report


def ratio_ok(value: float, bound: float) -> str:
    return f"{value:.3f} ({'within' if abs(value - 1) <= bound else '**outside**'} ±{bound:.0%})"


def host_line() -> str:
    from edgevt.envinfo import environment

    env = environment()
    pkgs = ", ".join(f"{k} {v}" for k, v in env["packages"].items() if k in ("torch", "onnxruntime", "ai-edge-litert", "numpy"))
    return f"{env['host_cpu']}, {env['logical_cpus']} logical CPUs, {env['os']}; {pkgs}"


def load_note() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} logical CPUs when the run ended"


def main() -> None:
    ap = argparse.ArgumentParser(description="time runtimes in a child process of the timing benchmarks")
    ap.add_argument("mode", choices=["alone", "protocol", "interleaved", "serve"])
    ap.add_argument("runtimes", help="comma-separated: ort, litert, torch; a name twice times it against itself")
    ap.add_argument("model")
    ap.add_argument("extra", nargs="?", help="serve only: KIND RUNTIMES MODEL (kind alone|protocol)")
    ap.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "timing")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--min-time", type=float, default=2.0)
    ap.add_argument("--max-time", type=float, default=20.0)
    a = ap.parse_args()
    if a.mode == "serve":  # serve KIND RUNTIMES MODEL
        return serve(a.runtimes, a.model.split(","), a.extra, a.runs_dir, a.threads)
    runtimes = a.runtimes.split(",")
    if a.mode == "alone":
        out = time_alone(runtimes[0], a.model, a.runs_dir, a.threads, a.seconds)
    elif a.mode == "protocol":
        out = time_protocol(runtimes, a.model, a.runs_dir, a.threads, a.min_time, a.max_time)
    else:
        out = time_interleaved(runtimes, a.model, a.runs_dir, a.threads, a.seconds)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
