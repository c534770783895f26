"""Export every registered variant to TFLite at every precision through the real CLI; time XNNPACK, ORT and torch eager.

    python benchmarks/tflite_all_variants.py                          # 13 variants x fp32/fp16/int8-dynamic/int8-static
    python benchmarks/tflite_all_variants.py --models swin-tiny --precisions int8-static --update

Per model, the ONNX fp32 artifact is exported once (`edgevt export --target onnx --no-bench`). Per cell, one
`edgevt export --target tflite --no-bench --json` subprocess gives the artifact and its parity; a second subprocess
(this script with --time) times the .tflite on ai-edge-litert XNNPACK, the ONNX fp32 file on ORT CPU and the model
in torch eager, in one process by edgevt's timing protocol (bench.measure), so all three ratios come from the same load.
Results are rewritten after every cell to reports/tflite-all-variants.{json,md}.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(ROOT / "benchmarks"))

from _matrix import arg_parser, changed_text, flip_note, fmt, inputs_text, median, not_run, record, save_json, selected_models, start, times  # noqa: E402


PRECISIONS = ["fp32", "fp16", "int8-dynamic", "int8-static"]
EDGEVT = [sys.executable, "-m", "edgevt", "-q"]
XNNPACK, ORT, EAGER = "ai-edge-litert-xnnpack", "onnxruntime-cpu", "torch-eager"


def bench_counts(gmacs: float) -> tuple[int, int]:
    """(runs, warmup): fewer for the heavy variants so the matrix fits a shared 2-core machine."""
    return (3, 1) if gmacs > 50 else (10, 2) if gmacs > 10 else (20, 3)


def time_three(tflite: str, onnx: str, model: str, runs: int, warmup: int, threads: int) -> dict:
    """Runs inside a subprocess: XNNPACK, ORT and torch eager timed by edgevt's protocol (bench.measure), as `export` times."""
    import numpy as np

    from edgevt.bench import QUICK_DEFAULTS, BenchSettings, measure
    from edgevt.exporters import get_target
    from edgevt.exporters.torch_eager import TorchEagerRunner
    from edgevt.models.loading import load_model, resolve_spec

    spec = resolve_spec(model, "random")
    module = load_model(spec, "random", 0).module
    batch = np.random.default_rng(0).standard_normal(spec.input_shape, dtype=np.float32)
    openers = [lambda: get_target("tflite").open_runner(Path(tflite), threads), lambda: TorchEagerRunner(module, threads)]
    if onnx:
        openers.insert(1, lambda: get_target("onnx").open_runner(Path(onnx), threads))
    seconds = {**QUICK_DEFAULTS, "max_time_s": 20.0 if runs <= 3 else QUICK_DEFAULTS["max_time_s"]}  # heavy variants: one slow round
    timing = measure(openers, batch, BenchSettings(runs=runs, threads=threads, **{**seconds, "warmup": warmup}))
    paired = timing.protocol["paired"]  # per runtime: its block median / XNNPACK's in the same round (runtime 0)
    return {r.engine: {"cold": r.cold, "warm": r.warm, "peak_rss_mb": r.peak_rss_mb, "protocol": timing.protocol["name"],
                       "vs_xnnpack": paired["ratios"][i], "vs_xnnpack_full_speed": paired["full_speed"][i],
                       "host_unsteady": timing.protocol["host"]["unsteady"]}
            for i, r in enumerate(timing.reports)}


def _json_run(cmd: list[str], env: dict | None = None) -> tuple[dict | None, str, int]:
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, **(env or {})})
    try:
        return json.loads(proc.stdout), proc.stderr, proc.returncode
    except json.JSONDecodeError:
        return None, (proc.stderr.strip().splitlines() or ["no output"])[-1][:500], proc.returncode


def onnx_fp32(model, runs_dir: Path, threads: int) -> str | None:
    out = runs_dir / model.name / "onnx-fp32"
    existing = out / f"{model.name}-fp32.onnx"
    if existing.is_file():
        return str(existing)
    report, _, _ = _json_run([*EDGEVT, "export", model.name, "--target", "onnx", "--weights", "random", "--no-bench",
                              "--threads", str(threads), "--out", str(out), "--json"])
    return (report or {}).get("artifact", {}).get("path")


def run_cell(model, precision: str, runs_dir: Path, threads: int, onnx: str | None) -> dict:
    cmd = [*EDGEVT, "export", model.name, "--target", "tflite", "--precision", precision, "--weights", "random", "--seed", "0",
           "--threads", str(threads), "--no-bench", "--out", str(runs_dir / model.name / f"tflite-{precision}"), "--json"]
    t0 = time.perf_counter()
    report, err, code = _json_run(cmd)
    cell = {"model": model.name, "precision": precision, "exit_code": code, "command": shlex.join(["edgevt", *cmd[4:]])}
    if report is None or "error" in report:
        cell["error"] = report["error"] if report else err
        cell["wall_s"] = round(time.perf_counter() - t0, 1)
        return cell
    cell["report"] = report
    runs, warmup = bench_counts(model.paper_gmacs)
    timing, err, _ = _json_run([sys.executable, __file__, "--time", report["artifact"]["path"], onnx or "", model.name,
                                str(runs), str(warmup), str(threads)])
    cell["timing"] = timing if timing is not None else {"error": err}
    cell["wall_s"] = round(time.perf_counter() - t0, 1)
    return cell


def ratio_vs_xnnpack(timing: dict, engine: str, full_speed: bool = False) -> float | None:
    """engine's time over XNNPACK's: paired per round (edgevt.bench) when the cell recorded it, else of the p50s."""
    t = timing.get(engine) or {}
    if "vs_xnnpack" in t:
        return ((t.get("vs_xnnpack_full_speed" if full_speed else "vs_xnnpack")) or {}).get("median")
    if full_speed:
        return None
    lite, other = ((timing.get(XNNPACK) or {}).get("warm") or {}).get("p50_ms"), (t.get("warm") or {}).get("p50_ms")
    return other / lite if lite and other else None


def row(cell: dict) -> str:
    if "report" not in cell:
        return f"| {cell['model']} | {cell['precision']} | — | **error** (exit {cell['exit_code']}): {cell.get('error', '')[:160]} | | | | | | | | | | | |"
    r = cell["report"]
    p, exp, t = r["parity"], r.get("export") or {}, cell.get("timing") or {}
    out = p["outputs"][0] if p.get("outputs") else {}
    xnn = exp.get("xnnpack") or {}
    left = ", ".join(f"{k}×{v}" for k, v in list((xnn.get("not_delegated") or {}).items())[:4])
    warm = {k: v.get("warm") or {} for k, v in t.items() if isinstance(v, dict)}
    p50 = {k: w.get("p50_ms") for k, w in warm.items()}
    full = {k: (w.get("full_speed") or {}).get("p50_ms") for k, w in warm.items()}
    mark = " †" if any(isinstance(v, dict) and v.get("host_unsteady") for v in t.values()) else ""
    return (f"| {cell['model']} | {cell['precision']} | {r['artifact']['bytes'] / 1e6:.1f} | {p['status']} "
            f"| {fmt(out.get('cosine'), '.6f')} | {fmt(out.get('psnr_db'), '.1f')} | {fmt(p.get('top1_agreement'), '.1%')}{flip_note(p)} "
            f"| {xnn.get('nodes_delegated')}/{xnn.get('nodes_total')}{f' (left: {left})' if left else ''} "
            f"| {fmt(p50.get(XNNPACK), '.2f')}{mark} | {fmt(p50.get(ORT), '.2f')} | {fmt(p50.get(EAGER), '.2f')} "
            f"| {times(ratio_vs_xnnpack(t, ORT))} | {times(ratio_vs_xnnpack(t, EAGER))} "
            f"| {fmt(full.get(XNNPACK), '.2f')} | {times(ratio_vs_xnnpack(t, ORT, True))} | {times(ratio_vs_xnnpack(t, EAGER, True))} |")


def summary(cells: list[dict]) -> list[str]:
    lines = ["| precision | exported | parity pass | median XNNPACK vs ORT fp32 | median XNNPACK vs torch eager "
             "| the same at full speed |", "|---|---|---|---|---|---|"]
    for precision in PRECISIONS:
        mine = [c for c in cells if c["precision"] == precision]
        if not mine:
            continue
        done = [c for c in mine if "report" in c]
        timings = [c.get("timing") or {} for c in done]
        ort, eager = (median([ratio_vs_xnnpack(t, e) for t in timings]) for e in (ORT, EAGER))
        ort_full, eager_full = (median([ratio_vs_xnnpack(t, e, True) for t in timings]) for e in (ORT, EAGER))
        passed = sum(c["report"]["parity"]["status"] == "pass" for c in done)
        lines.append(f"| {precision} | {len(done)}/{len(mine)} | {passed}/{len(mine)} | {times(ort)} | {times(eager)} "
                     f"| {times(ort_full)}, {times(eager_full)} |")
    return lines + [""]


NOTES = """\
Parity: ai-edge-litert (XNNPACK) against torch eager on {inputs}, with the spine's default
thresholds (fp32: atol/rtol 1e-4, cosine ≥ 0.99999, top-1 100%; fp16: atol 5e-2 + rtol 1e-2, cosine ≥ 0.999,
top-1 ≥ 99%; int8-dynamic: cosine ≥ 0.99, PSNR ≥ 25 dB, top-1 ≥ 97%; int8-static: cosine ≥ 0.98, top-1 ≥ 95%).
Random-weight logits have small top-1 margins, so flips are listed with the largest reference top-1 minus top-2
logit among them.

Precisions (ai-edge-quantizer on litert-torch's fp32 flatbuffer): fp16 = float16 weights of FULLY_CONNECTED,
CONV_2D and DEPTHWISE_CONV_2D (float_casting), compute in fp32; int8-dynamic = `dynamic_wi8_afp32` (int8
per-channel weights, activations quantized on the fly); int8-static = `static_wi8_ai8` on all supported ops
(full integer, int8 input and output), calibrated on the evaluation photos with a global min/max per tensor (edgevt merges
per-photo statistics itself: the quantizer's own 0.95 moving average lets the first photo set every range).

Full-integer int8-static is the hard case. SwiftFormer fails at run time: TFLite's int8 DIV rejects the
`F.normalize` divisor once it quantizes to zero. CvT and Swin V2 lose accuracy in the integer LayerNorms
(SQUARED_DIFFERENCE/RSQRT/SUB, which XNNPACK does not take either). The table keeps the defaults. Run by hand with
`--option static_ops=compute` (int8 only for FULLY_CONNECTED, CONV_2D, DEPTHWISE_CONV_2D and BATCH_MATMUL; float
edges), both pass: swiftformer-xs cosine 0.998596 with top-1 100%, all 389 nodes on XNNPACK, 4.5 MB; cvt-13
cosine 0.999100 with top-1 100%, 1226/1251 nodes on XNNPACK (BATCH_MATMUL ×25 left).

XNNPACK column: nodes the default XNNPACK delegate took / nodes in the graph, and the ops left on TFLite's
built-in CPU kernels, read from the interpreter's node list (each DELEGATE node's boundary tensors).

Latency: batch 1, 2 threads, p50. The .tflite on ai-edge-litert XNNPACK, the **fp32** ONNX export of the same
weights on ONNX Runtime CPU, and torch eager are timed in one process by edgevt's timing protocol (`edgevt.bench.measure`,
the loop of `export`, `bench` and `matrix`): each runtime at its library defaults, in alternating blocks, with a wait
for the other runtimes' spinning threads to go idle before each switch (see reports/timing-alone.md). ORT is fp32 in
every row, so a row's "ORT ÷ XNNPACK" shows what the TFLite precision buys over the ONNX fp32 baseline. The ratios
are paired: the median over rounds of the other runtime's block median / XNNPACK's in the same round (rows timed
before edgevt recorded them: the ratio of the p50s). At least 20 runs below 10 GMACs, 10 up to 50, 3 above, sampled
1–10 s (20 s for the heaviest) until each median is known to ±2%. This host changes speed for seconds at a time
(reports/host-modes.md); † marks the cells in which it did, whose p50 over all blocks mixes the two states. The last
three columns are at full speed: over the blocks within 10% of the fastest tenth of each runtime's block medians, and
the ratios over the rounds in which both runtimes ran at full speed.
"""


def write(cells: list[dict], out: Path, meta: dict) -> None:
    save_json(cells, out, meta)
    env = meta["environment"]
    pkgs = ", ".join(f"{k} {v}" for k, v in env["packages"].items())
    lines = [
        "# TFLite/LiteRT export of every variant: parity, XNNPACK delegation and latency", "",
        f"Produced by `{meta['command']}` (started {meta['started']}), random weights (seed 0), on {env['host_cpu']}, "
        f"{env['logical_cpus']} logical CPUs, {env['os']}; {pkgs}.", "",
        NOTES.format(inputs=inputs_text([c["report"] for c in cells if "report" in c])), *summary(cells),
        *[f"Cells added or re-run later with `{u['command']}` ({u['at']}{changed_text(u)}): {', '.join(u['cells'])}." for u in meta.get("updates", [])], "",
        *not_run(cells, PRECISIONS, "tflite_all_variants.py"),
        "| model | precision | MB | parity | cosine (worst) | PSNR dB | top-1 | XNNPACK nodes | XNNPACK p50 ms | ORT fp32 p50 ms "
        "| torch p50 ms | ORT ÷ XNNPACK | torch ÷ XNNPACK | XNNPACK p50 ms, full speed | ORT ÷ XNNPACK, full speed "
        "| torch ÷ XNNPACK, full speed |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        *[row(c) for c in cells], "",
    ]
    out.with_suffix(".md").write_text("\n".join(lines))


def main() -> int:
    if sys.argv[1:2] == ["--time"]:
        tflite, onnx, model, runs, warmup, threads = sys.argv[2:8]
        print(json.dumps(time_three(tflite, onnx, model, int(runs), int(warmup), int(threads))))
        return 0
    args = arg_parser(__doc__, ",".join(PRECISIONS), ROOT / "runs" / "bench-tflite", ROOT / "reports" / "tflite-all-variants.json").parse_args()
    cells, meta = start(args, "tflite_all_variants.py")
    if not args.render_only:
        for model in selected_models(args):
            onnx = onnx_fp32(model, args.runs_dir, args.threads)
            for precision in args.precisions.split(","):
                cell = run_cell(model, precision, args.runs_dir, args.threads, onnx)
                record(cells, meta, cell, args.update)
                print(row(cell), flush=True)
                write(cells, args.out, meta)
    write(cells, args.out, meta)
    return 0


if __name__ == "__main__":
    sys.exit(main())
