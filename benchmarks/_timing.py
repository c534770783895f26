"""What the timing benchmarks share: artifacts, runners, and a child process that times one runtime alone.

    python benchmarks/_timing.py alone ort swiftformer-xs --seconds 5 --threads 2     # JSON on stdout

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


def child(args: list[str], timeout: float = 900) -> dict:
    """Run `python benchmarks/<script> ARGS` in a fresh process at library defaults; its last stdout line is JSON."""
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT, env=clean_env(), timeout=timeout)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def alone(runtime: str, model: str, runs_dir: Path, threads: int, seconds: float) -> dict:
    return child([str(Path(__file__)), "alone", runtime, model, "--runs-dir", str(runs_dir), "--threads", str(threads),
                  "--seconds", str(seconds)])


def host_line() -> str:
    from edgevt.envinfo import environment

    env = environment()
    pkgs = ", ".join(f"{k} {v}" for k, v in env["packages"].items() if k in ("torch", "onnxruntime", "ai-edge-litert", "numpy"))
    return f"{env['host_cpu']}, {env['logical_cpus']} logical CPUs, {env['os']}; {pkgs}"


def load_note() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} logical CPUs when the run ended"


def main() -> None:
    ap = argparse.ArgumentParser(description="time one runtime alone (a child of the timing benchmarks)")
    ap.add_argument("mode", choices=["alone"])
    ap.add_argument("runtime", choices=RUNTIMES)
    ap.add_argument("model")
    ap.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "timing")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=5.0)
    a = ap.parse_args()
    print(json.dumps(time_alone(a.runtime, a.model, a.runs_dir, a.threads, a.seconds)))


if __name__ == "__main__":
    main()
