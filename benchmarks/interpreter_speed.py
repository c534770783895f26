"""What Core ML parity through edgevt's MIL interpreter costs: seconds per sample, next to torch eager and ONNX Runtime.

    python benchmarks/interpreter_speed.py                         # swiftformer-xs and swin-tiny, fp16 and fp32
    python benchmarks/interpreter_speed.py --models swiftformer-xs --runs 3

For each model the Core ML packages (fp16, fp32) and an fp32 ONNX file are exported with the real CLI
(no latency), then the interpreter, torch eager and ONNX Runtime are timed on one photo in one process by
edgevt's timing protocol (bench.measure: alternating blocks, idle threads between runtimes), so their ratios are
measured under the same machine load. Writes reports/mil-interpreter-speed.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edgevt.bench import BenchSettings  # noqa: E402
from edgevt.bench import measure as time_by_protocol  # noqa: E402
from edgevt.envinfo import environment  # noqa: E402


def export(model: str, target: str, precision: str, runs_dir: Path) -> Path:
    out = runs_dir / model / f"{target}-{precision}"
    cmd = [sys.executable, "-m", "edgevt", "-q", "export", model, "--target", target, "--precision", precision,
           "--weights", "random", "--no-bench", "--out", str(out), "--json"]
    report = json.loads(subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT).stdout)
    if "error" in report:
        raise SystemExit(f"{model} {target} {precision}: {report['error']}")
    return Path(report["artifact"]["path"])


def measure(model: str, runs_dir: Path, settings: BenchSettings) -> dict:
    from edgevt.exporters.coreml_runtime import MilInterpreterRunner
    from edgevt.exporters.onnx import OrtRunner
    from edgevt.exporters.torch_eager import TorchEagerRunner
    from edgevt.inputs import parity_samples
    from edgevt.models.loading import load_model, resolve_spec

    spec = resolve_spec(model, "random")
    photo = parity_samples(spec, 0).batch[:1]
    module = load_model(spec, "random", 0).module
    artifacts = {p: export(model, "coreml", p, runs_dir) for p in ("fp16", "fp32")}
    onnx_path = export(model, "onnx", "fp32", runs_dir)
    openers = [lambda: MilInterpreterRunner(artifacts["fp16"]), lambda: MilInterpreterRunner(artifacts["fp32"]),
               lambda: TorchEagerRunner(module, settings.threads), lambda: OrtRunner(onnx_path, settings.threads)]
    names = ["mil-interpreter fp16", "mil-interpreter fp32", "torch-eager fp32", "onnxruntime-cpu fp32"]
    reports = time_by_protocol(openers, photo, settings).reports
    return {name: {"p50_ms": r.warm["p50_ms"], "min_ms": r.warm["min_ms"], "load_ms": r.cold["load_ms"], "runs": r.warm["runs"]}
            for name, r in zip(names, reports)}


def write(results: dict, out: Path, meta: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({**meta, "results": results}, indent=1) + "\n")
    env = meta["environment"]
    lines = [
        "# MIL interpreter: what Core ML parity costs off a Mac",
        "",
        f"Produced by `{meta['command']}` ({meta['started']}) on {env['host_cpu']}, {env['logical_cpus']} logical CPUs "
        f"(shared machine), {meta['threads']} threads; " + ", ".join(f"{k} {v}" for k, v in env["packages"].items()) + ".",
        "",
        "One photo, batch 1; the four engines are timed in one process by edgevt's timing protocol (same load), so compare ratios. "
        "A parity check runs 106 samples by default (104 photos + 2 noise), so it costs about 106× the per-sample time, plus model loading (reports/parity-cost.md measures whole checks). The interpreter "
        "is a correctness tool, not a latency proxy: its times say nothing about a phone.",
        "",
        "| model | engine | p50 ms per sample | min ms | load ms | × torch eager (p50) |",
        "|---|---|---|---|---|---|",
    ]
    for model, engines in results.items():
        base = engines["torch-eager fp32"]["p50_ms"]
        for name, r in engines.items():
            lines.append(f"| {model} | {name} | {r['p50_ms']:.1f} | {r['min_ms']:.1f} | {r['load_ms']:.0f} | {r['p50_ms'] / base:.1f}× |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="swiftformer-xs,swin-tiny")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "interpreter-speed")
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "mil-interpreter-speed.json")
    args = ap.parse_args()
    meta = {"command": "python benchmarks/interpreter_speed.py " + " ".join(sys.argv[1:]), "threads": args.threads,
            "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "environment": environment(args.threads)}
    settings = BenchSettings(runs=args.runs, warmup=1, threads=args.threads, min_time_s=0, max_time_s=3600)  # --runs decides
    results = {}
    for model in args.models.split(","):
        results[model] = measure(model, args.runs_dir, settings)
        print(model, json.dumps(results[model]), flush=True)
        write(results, args.out, meta)
    return 0


if __name__ == "__main__":
    sys.exit(main())
