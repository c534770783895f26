"""What a parity check costs per target on the default set (104 built-in photos + 2 noise samples).

    python benchmarks/parity_cost.py                                    # swiftformer-xs and swin-tiny, all three targets
    python benchmarks/parity_cost.py --models swiftformer-xs --targets onnx,tflite

For each model (random weights) the artifacts are exported once with the real CLI (target default precision: fp32 for
ONNX and TFLite, fp16 for Core ML, checked off a Mac by edgevt's MIL interpreter), then, in this process:
the sample set is built (photos through the checkpoint's processor), the PyTorch reference runs on it (chunks of 8, and
one sample at a time for comparison), and `pipeline.check_parity` runs on each artifact exactly as `edgevt export`
does (runner load, every sample at batch 1, the comparison, and for Core ML fp16 the diagnosis of where precision is
lost). Writes reports/parity-cost.{json,md}. Timings depend on the machine's load: the report records the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.pop("EDGEVT_SAMPLES", None)  # the default set a user gets

from edgevt.envinfo import environment  # noqa: E402

PRECISIONS = {"onnx": "fp32", "tflite": "fp32", "coreml": "fp16"}


def export(model: str, target: str, runs_dir: Path) -> Path:
    out = runs_dir / model / target
    cmd = [sys.executable, "-m", "edgevt", "-q", "export", model, "--target", target, "--precision", PRECISIONS[target],
           "--weights", "random", "--no-bench", "--samples", "1", "--out", str(out), "--json"]
    report = json.loads(subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT).stdout)
    if "error" in report:
        raise SystemExit(f"{model} {target}: {report['error']}")
    return Path(report["artifact"]["path"])


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn()
    return value, time.perf_counter() - wall, time.process_time() - cpu


def reference_cost(model: str, threads: int) -> tuple[object, dict]:
    from edgevt.exporters.base import run_batched
    from edgevt.exporters.torch_eager import TorchEagerRunner
    from edgevt.inputs import parity_samples
    from edgevt.models.loading import load_model, resolve_spec
    from edgevt.pipeline import REFERENCE_CHUNK, Reference

    spec = resolve_spec(model, "random")
    samples, build_s, build_cpu = timed(lambda: parity_samples(spec, 0))
    loaded = load_model(spec, "random", 0)
    runner = TorchEagerRunner(loaded.module, threads, output_names=loaded.output_names)
    outputs, chunked_s, chunked_cpu = timed(lambda: run_batched(runner, samples.batch, REFERENCE_CHUNK))
    _, single_s, single_cpu = timed(lambda: run_batched(runner, samples.batch, 1))
    n = len(samples)
    row = {"samples": n, "photos_to_tensors_s": build_s, "photos_to_tensors_cpu_s": build_cpu,
           "reference_chunk": REFERENCE_CHUNK, "reference_s": chunked_s, "reference_cpu_s": chunked_cpu,
           "reference_s_per_sample": chunked_s / n, "reference_batch1_s_per_sample": single_s / n,
           "reference_batch1_cpu_s": single_cpu}
    return Reference(loaded, samples, outputs, "tensor", 0), row


def check_cost(target_name: str, artifact: Path, ref, threads: int) -> dict:
    from edgevt.exporters import get_target
    from edgevt.parity import Precision
    from edgevt.pipeline import check_parity

    target = get_target(target_name)
    parity, check_s, check_cpu = timed(lambda: check_parity(target, artifact, ref, Precision(PRECISIONS[target_name]), {}, threads,
                                                            lambda m: None))
    n = len(ref.samples)
    return {"target": target_name, "precision": PRECISIONS[target_name], "engine": parity.engine, "status": parity.status,
            "samples": n, "check_s": check_s, "check_cpu_s": check_cpu, "engine_s": parity.engine_seconds,
            "s_per_sample": parity.engine_seconds / n, "other_s": check_s - parity.engine_seconds}


def interpreter_blas_threads(artifact: Path, ref, runs: int) -> dict:
    """The interpreter runs numpy's BLAS on one thread; time that against two threads, interleaved sample by sample."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    from edgevt.exporters.coreml_runtime import MilInterpreterRunner

    runner = MilInterpreterRunner(artifact)
    times: dict[int, list[float]] = {1: [], 2: []}
    for i in range(runs):
        feeds = {runner.input_name: ref.feed[i : i + 1]}
        for threads in (1, 2):
            with threadpool_limits(limits=threads, user_api="blas"):
                t0 = time.perf_counter()
                runner.interpreter._run(feeds, None)  # bypasses run()'s own one-thread limit
                times[threads].append(time.perf_counter() - t0)
    return {f"blas_{k}_thread_s_per_sample": float(np.median(v)) for k, v in times.items()} | {"blas_runs": runs}


def write(meta: dict, results: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({**meta, "results": results}, indent=1) + "\n")
    env = meta["environment"]
    load = "; ".join(f"{k} {v[0]:.1f}" for k, v in meta["load_average"].items())
    lines = [
        "# What a parity check costs, per target",
        "",
        f"Produced by `{meta['command']}` ({meta['started']}) on {env['host_cpu']}, {env['logical_cpus']} logical CPUs, "
        f"{meta['threads']} threads; " + ", ".join(f"{k} {v}" for k, v in env["packages"].items()) + ".",
        "",
        f"**{meta['conditions']}** (1-minute load average: {load}). Wall-clock seconds; CPU seconds of this process "
        "beside them (they include threads that spin while waiting, so they are no cleaner a measure).",
        "",
        "The default set: 104 built-in photos (crops and flips of the 8 bundled photos) + 2 seeded noise tensors = 106 "
        "samples. Artifacts run at batch 1, one sample after another; the PyTorch reference runs 8 samples at a time, "
        "once per export, whatever the target. A check's time beyond its engine time is the runner's load, the "
        "comparison and, for Core ML fp16, the diagnosis (two more interpreter runs of the worst sample).",
        "",
        "| model | step | engine | s per sample | samples | seconds (wall) | CPU s |",
        "|---|---|---|---|---|---|---|",
    ]
    for model, r in results.items():
        ref = r["reference"]
        lines.append(f"| {model} | photos → tensors (the checkpoint's processor) | — | {ref['photos_to_tensors_s'] / 104:.4f} | 104 "
                     f"| {ref['photos_to_tensors_s']:.1f} | {ref['photos_to_tensors_cpu_s']:.1f} |")
        lines.append(f"| {model} | reference, {ref['reference_chunk']} at a time | torch-eager | {ref['reference_s_per_sample']:.3f} "
                     f"| {ref['samples']} | {ref['reference_s']:.1f} | {ref['reference_cpu_s']:.1f} |")
        lines.append(f"| {model} | (reference, one at a time) | torch-eager | {ref['reference_batch1_s_per_sample']:.3f} "
                     f"| {ref['samples']} | {ref['reference_batch1_s_per_sample'] * ref['samples']:.1f} | {ref['reference_batch1_cpu_s']:.1f} |")
        for c in r["checks"]:
            lines.append(f"| {model} | parity check, {c['target']} {c['precision']} | {c['engine']} | {c['s_per_sample']:.3f} "
                         f"| {c['samples']} | {c['check_s']:.1f} (engine {c['engine_s']:.1f}, other {c['other_s']:.1f}) "
                         f"| {c['check_cpu_s']:.1f} |")
    blas = {m: r["interpreter"] for m, r in results.items() if r.get("interpreter")}
    if blas:
        lines += ["", "The MIL interpreter runs numpy's BLAS on one thread: its matrix products are small (one sample, op by "
                  "op) and thread hand-offs cost more than they save. The same samples, interleaved, with 1 and 2 BLAS threads:",
                  "", "| model | s per sample, 1 BLAS thread | 2 BLAS threads | samples |", "|---|---|---|---|"]
        lines += [f"| {m} | {b['blas_1_thread_s_per_sample']:.3f} | {b['blas_2_thread_s_per_sample']:.3f} | {b['blas_runs']} |"
                  for m, b in blas.items()]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="swiftformer-xs,swin-tiny")
    ap.add_argument("--targets", default="onnx,tflite,coreml")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "parity-cost")
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "parity-cost")
    ap.add_argument("--blas-runs", type=int, default=5, help="samples for the interpreter's 1- vs 2-BLAS-thread comparison (0: skip)")
    ap.add_argument("--conditions", default="Measured on a quiet machine",
                    help="how loaded the machine was, in words (goes into the report's heading)")
    args = ap.parse_args()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    loads = {"start": os.getloadavg()}
    results = {}
    for model in args.models.split(","):
        artifacts = {t: export(model, t, args.runs_dir) for t in args.targets.split(",")}
        ref, row = reference_cost(model, args.threads)
        results[model] = {"reference": row, "checks": [check_cost(t, a, ref, args.threads) for t, a in artifacts.items()]}
        if "coreml" in artifacts and args.blas_runs:
            results[model]["interpreter"] = interpreter_blas_threads(artifacts["coreml"], ref, args.blas_runs)
        print(json.dumps({model: results[model]}, indent=1), flush=True)
    loads["end"] = os.getloadavg()
    meta = {"command": f"python benchmarks/parity_cost.py {shlex.join(sys.argv[1:])}".strip(), "started": started,
            "threads": args.threads, "conditions": args.conditions, "load_average": loads, "environment": environment(args.threads)}
    write(meta, results, args.out)
    print(f"wrote {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
