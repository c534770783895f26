"""Export every registered variant to ONNX at every precision through the real CLI and tabulate the reports.

    python benchmarks/onnx_all_variants.py                    # all 13 variants x fp32/fp16/int8-dynamic/int8-static
    python benchmarks/onnx_all_variants.py --models swiftformer-xs --precisions fp32

Each cell is one `edgevt export ... --weights random --json` subprocess (a crash costs one cell). Results
are rewritten after every cell to reports/onnx-all-variants.{json,md}. Latency: ORT CPU and torch eager
timed in the same process by edgevt's timing protocol (edgevt.bench.measure), so the speed-up ratio is measured
under the same machine load with each runtime at its library defaults.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(ROOT / "benchmarks"))

from _matrix import arg_parser, changed_text, flip_note, fmt, inputs_text, median, not_run, record, save_json, selected_models, start, times  # noqa: E402

from edgevt.report import full_speed, full_speed_speedup, host_changed_speed  # noqa: E402

PRECISIONS = ["fp32", "fp16", "int8-dynamic", "int8-static"]


def bench_args(gmacs: float) -> list[str]:
    """Fewer timed runs (floors of the adaptive sampling) but a longer --max-time for the heavy variants."""
    if gmacs > 50:
        return ["--runs", "5", "--warmup", "1", "--max-time", "90"]
    if gmacs > 10:
        return ["--runs", "10", "--warmup", "2", "--max-time", "30"]
    return ["--runs", "30", "--warmup", "5"]


def run_cell(model, precision: str, runs_dir: Path, threads: int, target: str = "onnx", extra: list[str] | None = None) -> dict:
    """One `edgevt export --json` subprocess; its report (raw latency samples dropped) or its error."""
    cmd = [sys.executable, "-m", "edgevt", "-q", "export", model.name, "--target", target, "--precision", precision,
           "--weights", "random", "--seed", "0", "--threads", str(threads), "--out", str(runs_dir / target / model.name / precision),
           "--json", *(bench_args(model.paper_gmacs) if extra is None else extra)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    cell = {"model": model.name, "precision": precision, "exit_code": proc.returncode, "wall_s": round(time.perf_counter() - t0, 1),
            "command": shlex.join(["edgevt", *cmd[3:]])}
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        cell["error"] = (proc.stderr.strip().splitlines() or ["no output"])[-1][:500]
        return cell
    if "error" in report:
        cell["error"] = report["error"]
        return cell
    for lat in (report.get("latency") or {}, (report.get("latency") or {}).get("baseline") or {}):
        lat.pop("samples_ms", None)
    cell["report"] = report
    return cell


def row(cell: dict) -> str:
    if "report" not in cell:
        return f"| {cell['model']} | {cell['precision']} | — | — | **error** (exit {cell['exit_code']}): {cell.get('error', '')[:120]} | | | | | | | | | |"
    r = cell["report"]
    p, lat, exp = r["parity"], r.get("latency") or {}, r.get("export") or {}
    out = p["outputs"][0] if p.get("outputs") else {}
    warm = lat.get("warm", {})
    base = (lat.get("baseline") or {}).get("warm", {})
    return (f"| {cell['model']} | {cell['precision']} | {exp.get('exporter')} | {r['artifact']['bytes'] / 1e6:.1f} | {p['status']} "
            f"| {fmt(out.get('cosine'), '.6f')} | {fmt(out.get('max_abs'), '.2g')} | {fmt(out.get('psnr_db'), '.1f')} "
            f"| {fmt(p.get('top1_agreement'), '.1%')}{flip_note(p)} | {fmt(warm.get('p50_ms'), '.2f')}{' †' if host_changed_speed(lat) else ''} "
            f"| {fmt(base.get('p50_ms'), '.2f')} | {times(lat.get('speedup_vs_torch_eager'))} "
            f"| {fmt(full_speed(lat).get('p50_ms'), '.2f')} | {fmt(full_speed(lat.get('baseline')).get('p50_ms'), '.2f')} "
            f"| {times(full_speed_speedup(lat).get('median'))} |")


def summary(cells: list[dict]) -> list[str]:
    """Per precision: how many variants passed, and the median ORT-vs-torch-eager speed-up (all rounds; full speed)."""
    lines = ["| precision | parity pass | median speed-up vs torch eager | at full speed |", "|---|---|---|---|"]
    for precision in PRECISIONS:
        done = [c["report"] for c in cells if c["precision"] == precision and "report" in c]
        if not done:
            continue
        passed = sum(r["parity"]["status"] == "pass" for r in done)
        lats = [r.get("latency") or {} for r in done]
        paired = median([lat.get("speedup_vs_torch_eager") for lat in lats])
        full = median([full_speed_speedup(lat).get("median") for lat in lats])
        errors = sum(1 for c in cells if c["precision"] == precision and "report" not in c)
        lines.append(f"| {precision} | {passed}/{len(done) + errors} | {times(paired)} | {times(full)} |")
    return lines + [""]


def write(cells: list[dict], out: Path, meta: dict) -> None:
    save_json(cells, out, meta)
    env, started = meta["environment"], meta["started"]
    pkgs = ", ".join(f"{k} {v}" for k, v in env["packages"].items())
    lines = [
        "# ONNX export of every variant: parity and latency",
        "",
        f"Produced by `{meta['command']}` (started {started}), random weights (seed 0), on "
        f"{env['host_cpu']}, {env['logical_cpus']} logical CPUs, {env['os']}; {pkgs}.",
        "",
        f"Parity: onnxruntime CPU against torch eager on {inputs_text([c['report'] for c in cells if 'report' in c])}; "
        "thresholds per precision (fp32: atol/rtol 1e-4, cosine ≥ 0.99999, top-1 100%; fp16: atol 5e-2 + rtol 1e-2, "
        "cosine ≥ 0.999, top-1 ≥ 99%; int8-dynamic: cosine ≥ 0.99, PSNR ≥ 25 dB, top-1 ≥ 97%; int8-static: cosine ≥ 0.98, "
        "top-1 ≥ 95%). Random-weight logits have small top-1 margins, so int8 flips here are a harsher test than trained "
        "weights give; flips are listed with the largest reference top-1 minus top-2 logit among them.",
        "",
        "fp16 on ONNX Runtime CPU: the CPU provider lacks fp16 kernels for most ops and inserts casts to fp32, so "
        "fp16 parity here is mostly weight rounding and fp16 latency says nothing about a phone's fp16 units.",
        "",
        "Latency: batch 1, 2 threads. ORT and torch eager are timed in the same process by edgevt's timing protocol "
        "(`edgevt.bench.measure`, the loop of `export`, `bench` and `matrix`: each runtime at its library defaults, "
        "alternating blocks with a wait for idle threads between runtimes, sampled until each median is known to ±2% "
        "or --max-time). Run floors: 30 runs below 10 GMACs, 10 up to 50 (30 s cap), 5 above (90 s cap). The speed-up is "
        "paired: the median over rounds of torch eager's block median / ORT's in the same round. This host changes "
        "speed for seconds at a time (reports/host-modes.md); † marks the cells in which it did (a runtime's block "
        "medians spread more than 1.2×, p90/p10): their p50 over all blocks mixes the two states. The last three "
        "columns are at full speed: over the blocks within 10% of the fastest tenth of each runtime's block medians, "
        "and the speed-up over the rounds in which both ran at full speed; they are what repeats between runs here "
        "(reports/bench-repeatability.md).",
        "",
        *summary(cells),
        *[f"Cells re-run later with `{u['command']}` ({u['at']}{changed_text(u)}): {', '.join(u['cells'])}." for u in meta["updates"]],
        "",
        *not_run(cells, PRECISIONS, "onnx_all_variants.py"),
        "| model | precision | exporter | MB | parity | cosine (worst) | max abs | PSNR dB | top-1 | ORT p50 ms | torch p50 ms "
        "| speed-up | ORT p50 ms, full speed | torch p50 ms, full speed | speed-up, full speed |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        *[row(c) for c in cells],
        "",
    ]
    out.with_suffix(".md").write_text("\n".join(lines))


def main() -> int:
    args = arg_parser(__doc__, ",".join(PRECISIONS), ROOT / "runs" / "bench", ROOT / "reports" / "onnx-all-variants.json").parse_args()
    cells, meta = start(args, "onnx_all_variants.py")
    if not args.render_only:
        for model in selected_models(args):
            for precision in args.precisions.split(","):
                cell = run_cell(model, precision, args.runs_dir, args.threads)
                record(cells, meta, cell, args.update)
                print(row(cell), flush=True)
                write(cells, args.out, meta)
    write(cells, args.out, meta)
    return 0


if __name__ == "__main__":
    sys.exit(main())
