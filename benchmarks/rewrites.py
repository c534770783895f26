"""Rewrites: every variant x target exported with and without them; op counts, XNNPACK delegation, ANE pre-flight,
parity, and the latency ratio of the two artifacts timed interleaved.

    python benchmarks/rewrites.py                                  # all 13 variants x onnx, coreml, tflite
    python benchmarks/rewrites.py --models swin-tiny --targets onnx,tflite --ablation
    python benchmarks/rewrites.py --render-only                    # rewrite reports/rewrites.md from the .json

Each export is one `edgevt export --weights random --no-bench --json` subprocess (a crash costs one cell); the
artifacts stay in --runs-dir. Modes: `none` (HF's modules as they are: the plain torch.onnx.export / litert-torch /
coremltools conversion), `default` (the target's default rewrites), `all` (every rewrite meant for the target, when
that differs from the default; not for Core ML), for ONNX also `default+fusions` (plus `--option ort_fusions=true`);
--ablation adds one mode per applicable rewrite alone: the evidence for each rewrite's default targets. Every timing goes through
_time_pair, which times two artifacts against each other; Core ML latency needs macOS and is reported skipped.
The deterministic goals (no reduce_l2_norm / gather, rank <= 5, ANE pre-flight 100%, XNNPACK takes every node)
are checked per row and summarised at the top.
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

from _matrix import changed_text, packages_changed  # noqa: E402

TARGETS = ("onnx", "coreml", "tflite")
PRECISION = {"onnx": "fp32", "coreml": "fp16", "tflite": "fp32"}
BASELINE = "none"


def _time_pair(open_a, open_b, batch, threads: int, runs: int, warmup: int, min_time_s: float = 2.0, max_time_s: float = 30.0) -> dict:
    """The one place this script times anything: artifact A against artifact B by edgevt's timing protocol
    (edgevt.bench.measure: alternating blocks in one process, every runtime's idle threads waited out between blocks).
    Returns {"a_p50_ms", "b_p50_ms", "speedup"} with speedup = A's time / B's time (> 1: B is faster), paired per
    round as edgevt reports speed-ups (1 / the median over rounds of B's block median / A's in the same round); the
    ratio of the two medians is kept as "speedup_of_p50s"."""
    from edgevt.bench import BenchSettings, measure

    settings = BenchSettings(runs=runs, warmup=warmup, threads=threads, min_time_s=min_time_s, max_time_s=max_time_s)
    timing = measure([open_a, open_b], batch, settings)
    a, b = timing.reports
    paired = timing.protocol["paired"]["ratios"][1]["median"]
    full = timing.protocol["paired"]["full_speed"][1]["median"]  # the rounds in which both ran at the host's full speed
    return {"a_p50_ms": a.warm["p50_ms"], "b_p50_ms": b.warm["p50_ms"], "speedup": 1 / paired,
            "speedup_full_speed": 1 / full if full else None, "host_unsteady": timing.protocol["host"]["unsteady"],
            "speedup_of_p50s": a.warm["p50_ms"] / b.warm["p50_ms"],
            "a_ci95_rel": a.warm.get("median_ci95_rel"), "b_ci95_rel": b.warm.get("median_ci95_rel"),
            "runs": [a.warm["runs"], b.warm["runs"]], "threads": threads, "method": "edgevt.bench.measure",
            "protocol": timing.protocol}


# The kernels that carry the MACs on ONNX Runtime's CPU provider: no equal-math rewrite makes their work smaller.
COMPUTE_OPS = ("Gemm", "MatMul", "FusedMatMul", "FusedGemm", "Conv", "FusedConv", "NchwcConv", "Einsum")


def ort_profile(artifact: Path, batch, threads: int, runs: int = 20) -> dict:
    """Kernel time per op type in one ONNX Runtime run (its profiler, median over runs) and the compute kernels' sum.
    A rewrite that keeps the function keeps the matrix products, so no rewrite can make the plain artifact faster than
    its p50 over its compute kernels' time (the ceiling in the report), unless the kernels themselves run faster."""
    import collections
    import statistics

    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads, opts.log_severity_level = threads, 1, 3
    opts.enable_profiling = True
    opts.profile_file_prefix = str(artifact.parent / "ort-profile")
    session = ort.InferenceSession(str(artifact), opts, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: batch}
    for _ in range(runs + 5):
        session.run(None, feed)
    trace = Path(session.end_profiling())
    events = json.loads(trace.read_text())
    trace.unlink()
    per_run: dict[str, list[float]] = collections.defaultdict(lambda: [0.0] * runs)
    model_runs = sorted((e["ts"], e["dur"] / 1000) for e in events if e.get("cat") == "Session" and e["name"] == "model_run")[-runs:]
    starts = [t for t, _ in model_runs]
    for e in events:
        if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time") or e["ts"] < starts[0]:
            continue
        index = sum(1 for t in starts if t <= e["ts"]) - 1
        per_run[e["args"]["op_name"]][index] += e["dur"] / 1000
    by_op = {op: round(statistics.median(v), 3) for op, v in sorted(per_run.items(), key=lambda kv: -sum(kv[1]))}
    compute = [sum(per_run[op][i] for op in per_run if op in COMPUTE_OPS) for i in range(runs)]
    wall = [d for _, d in model_runs]
    return {"runs": runs, "threads": threads, "kernel_ms_by_op": by_op, "compute_ms": round(statistics.median(compute), 3),
            "profiled_run_ms": round(statistics.median(wall), 3)}  # the profiler adds per-node overhead: not a latency


def modes_for(model, target: str, ablation: bool) -> list[tuple[str, list[str]]]:
    """(mode name, extra CLI arguments) for one variant on one target."""
    from edgevt.rewrites import list_rewrites

    from edgevt.rewrites import resolved_names

    modes = [("none", ["--rewrites", "none"]), ("default", ["--rewrites", "default"])]
    declared = [rw.name for rw in list_rewrites() if model.family.name in rw.families and target in rw.targets]
    if target != "coreml" and declared != resolved_names("default", model.family.name, target):
        modes.append(("all", ["--rewrites", ",".join(declared)]))  # every rewrite meant for the target: is more better?
    if target == "onnx":
        modes.append(("default+fusions", ["--rewrites", "default", "--option", "ort_fusions=true"]))
    if ablation:
        modes += [(name, ["--rewrites", name]) for name in declared]
    return modes


def export_cell(model, target: str, mode: str, extra: list[str], runs_dir: Path) -> dict:
    out = runs_dir / target / model.name / mode
    cmd = [sys.executable, "-m", "edgevt", "-q", "export", model.name, "--target", target, "--precision", PRECISION[target],
           "--weights", "random", "--seed", "0", "--no-bench", "--out", str(out), "--json", *extra]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    cell = {"model": model.name, "family": model.family.name, "target": target, "mode": mode, "exit_code": proc.returncode,
            "wall_s": round(time.perf_counter() - t0, 1), "command": shlex.join(["edgevt", *cmd[4:]])}
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        return {**cell, "error": (proc.stderr.strip().splitlines() or ["no output"])[-1][:500]}
    if "error" in report:
        return {**cell, "error": report["error"]}
    return {**cell, **summarize(report)}


def summarize(report: dict) -> dict:
    exp, parity = report["export"], report["parity"]
    ops = exp.get("ops") or {}
    out = {"artifact": report["artifact"]["path"], "mb": round(report["artifact"]["bytes"] / 1e6, 1), "parity": parity["status"],
           "cosine": min(o["cosine"] for o in parity["outputs"]) if parity.get("outputs") else None,
           "ops_total": sum(ops.values()), "ops": ops, "rewrites": [a["name"] for a in (exp.get("rewrites") or {}).get("applied", [])],
           "export_s": exp.get("seconds")}
    if exp.get("xnnpack"):
        x = exp["xnnpack"]
        out["xnnpack"] = {k: x[k] for k in ("nodes_total", "nodes_delegated", "partitions", "not_delegated")}
    if exp.get("ane_preflight"):
        p = exp["ane_preflight"]
        out["ane"] = {"share": p["ane_share_estimate"], "max_rank": p["max_rank"], "off": {f["op_type"]: f["count"] for f in p["findings"] if f["off_ane"]}}
    if exp.get("ort_fusions"):
        out["fused"] = exp["ort_fusions"]["fused"]
    return out


def goals(cell: dict) -> dict[str, bool]:
    """The issue's deterministic goals that apply to this row (rewritten modes only)."""
    if "error" in cell or cell["mode"] == BASELINE:
        return {}
    ops, fam, checks = cell["ops"], cell["family"], {"parity": cell["parity"] == "pass"}
    if cell["target"] == "coreml":
        if fam in ("swiftformer", "swinv2"):
            checks["no reduce_l2_norm"] = ops.get("reduce_l2_norm", 0) == 0
        if fam in ("swin", "swinv2"):
            checks["no gather"] = not any(op.startswith("gather") for op in ops)
        checks["rank <= 5"] = cell["ane"]["max_rank"] <= 5
        if fam in ("swiftformer", "cvt"):
            checks["ANE 100%"] = cell["ane"]["share"] == 1.0
    if cell["target"] == "tflite":
        checks["XNNPACK all nodes"] = cell["xnnpack"]["nodes_delegated"] == cell["xnnpack"]["nodes_total"]
    return checks


def time_cells(model, target: str, cells: list[dict], args) -> None:
    """Each rewritten artifact against the baseline (`none`) artifact of the same variant and target."""
    import numpy as np

    from edgevt.exporters import get_target

    tgt = get_target(target)
    reason = tgt.latency_unavailable()
    base = next((c for c in cells if c["mode"] == BASELINE and "error" not in c), None)
    for cell in cells:
        if cell["mode"] == BASELINE or "error" in cell:
            continue
        if reason or base is None:
            cell["timing"] = {"status": "skipped", "reason": reason or "the baseline export failed"}
            continue
        shape = [1, 3, model.input_size, model.input_size]
        batch = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
        runs = args.runs if model.paper_gmacs < 10 else max(5, args.runs // 4)
        timing = _time_pair(lambda: tgt.open_runner(Path(base["artifact"]), args.threads),
                            lambda: tgt.open_runner(Path(cell["artifact"]), args.threads), batch, args.threads, runs, args.warmup,
                            args.min_time, args.max_time)
        cell["timing"] = {"status": "measured", **timing}
        print(f"  {model.name} {target} {cell['mode']}: {timing['speedup']:.2f}x vs none", flush=True)
    if target == "onnx" and base is not None and not reason:
        shape = [1, 3, model.input_size, model.input_size]
        batch = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
        for cell in cells:
            if "error" not in cell:
                cell["ort_profile"] = ort_profile(Path(cell["artifact"]), batch, args.threads)



def _fmt_goals(cell: dict) -> str:
    g = goals(cell)
    return " ".join(("✓ " if ok else "✗ ") + name for name, ok in g.items()) or "—"


def row(cell: dict) -> str:
    head = f"| {cell['model']} | {cell['target']} | {cell['mode']} |"
    if "error" in cell:
        return f"{head} **error** (exit {cell['exit_code']}): {str(cell['error'])[:160]} | | | | | |"
    detail = ""
    if cell.get("xnnpack"):
        x = cell["xnnpack"]
        left = ", ".join(f"{op}×{n}" for op, n in x["not_delegated"].items())
        detail = f"XNNPACK {x['nodes_delegated']}/{x['nodes_total']}, {x['partitions']} partition(s){f' (left: {left})' if left else ''}"
    if cell.get("ane"):
        a = cell["ane"]
        off = ", ".join(f"{op}×{n}" for op, n in a["off"].items())
        detail = f"ANE ~{a['share']:.0%}, max rank {a['max_rank']}{f' (off: {off})' if off else ''}"
    if cell.get("fused"):
        detail = "fused: " + ", ".join(f"{op}×{n}" for op, n in cell["fused"].items())
    if cell.get("ort_profile"):
        prof = cell["ort_profile"]
        top = ", ".join(f"{op} {ms:.1f}" for op, ms in list(prof["kernel_ms_by_op"].items())[:4])
        detail = "; ".join(x for x in (detail, f"kernels (ms): {top}; matrix products {prof['compute_ms']:.1f}") if x)
    t = cell.get("timing") or {}
    speed = f"{t['speedup']:.2f}×" if t.get("status") == "measured" else ("—" if not t else f"skipped: {t['reason'][:40]}")
    full = f"{t['speedup_full_speed']:.2f}×" if t.get("speedup_full_speed") else "—"
    return (f"{head} {cell['parity']} ({cell['cosine']:.7f}) | {cell['ops_total']} | {detail} | {speed} | {full} "
            f"| {_fmt_goals(cell)} |")


# Kernels that only move or re-lay data: what rewrites can remove without changing the function.
DATA_MOVEMENT_OPS = ("Transpose", "Reshape", "Gather", "GatherElements", "Slice", "Concat", "Split", "Pad", "Expand", "Tile",
                     "Squeeze", "Unsqueeze", "Identity", "Cast", "ReorderInput", "ReorderOutput")


def ceilings(cells: list[dict]) -> list[str]:
    """Per ONNX variant: the default artifact's kernel time split into matrix products, data movement and the rest
    (LayerNorm, softmax, GELU, residual adds: the function itself), and the speed-up over the plain artifact if a
    further rewrite removed every data-movement kernel: the measured speed-up x kernels / (kernels - data movement)."""
    lines = []
    for cell in cells:
        prof, t = cell.get("ort_profile"), cell.get("timing") or {}
        if cell["target"] != "onnx" or cell["mode"] != "default" or not prof or t.get("status") != "measured":
            continue
        by_op = prof["kernel_ms_by_op"]
        total = sum(by_op.values())
        moving = sum(ms for op, ms in by_op.items() if op in DATA_MOVEMENT_OPS)
        rest = total - prof["compute_ms"] - moving
        others = sorted(((ms, op) for op, ms in by_op.items() if op not in COMPUTE_OPS and op not in DATA_MOVEMENT_OPS),
                        reverse=True)
        top = ", ".join(f"{op} {ms:.1f}" for ms, op in others[:4])
        lines.append(f"| {cell['model']} | {t['speedup']:.2f}× | {prof['compute_ms']:.1f} | {moving:.1f} | {rest:.1f} ({top}) "
                     f"| {t['speedup'] * total / (total - moving):.2f}× |")
    if not lines:
        return []
    return ["**How far ONNX could go.** The default artifact's kernel time from ONNX Runtime's profiler (median of 20 "
            "runs, 2 threads), split into the matrix products (Gemm, MatMul, FusedMatMul, Conv, Einsum: every rewrite "
            "that keeps the function keeps them), data movement (Transpose, Reshape, Gather, Slice, Concat, Split, Pad, "
            "Expand, layout reorders: what a rewrite can remove) and the rest (LayerNorm, softmax, GELU, residual adds: "
            "the function itself). The last column is the speed-up over the plain artifact if a further rewrite removed "
            "every data-movement kernel and nothing else changed. The profiler adds per-kernel overhead, which inflates "
            "the small data-movement kernels most, so the real ceiling is lower.", "",
            "| model | default vs none (measured) | matrix products (ms) | data movement (ms) | rest (ms) "
            "| ceiling without data movement |", "|---|---|---|---|---|---|", *lines, ""]


def write(cells: list[dict], out: Path, meta: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({**meta, "cells": cells}, indent=1) + "\n")
    env = meta["environment"]
    checked = [(c, name, ok) for c in cells for name, ok in goals(c).items()]
    failed = [f"{c['model']}/{c['target']}/{c['mode']}: {name}" for c, name, ok in checked if not ok]
    lines = [
        "# Rewrites: with and without, per variant and target",
        "",
        f"Produced by `{meta['command']}` (started {meta['started']}), random weights (seed 0), on {env['host_cpu']}, "
        f"{env['logical_cpus']} logical CPUs, {env['os']}; " + ", ".join(f"{k} {v}" for k, v in env["packages"].items()) + ".",
        "",
        "Precisions: ONNX fp32, Core ML fp16 (the Neural Engine's), TFLite fp32. Parity: every artifact against the "
        "**unrewritten** PyTorch module (fp32 cosine ≥ 0.99999, fp16 ≥ 0.999; Core ML through edgevt's MIL interpreter). "
        "ops: the artifact's op count. Speed-up: the `none` artifact's time over this artifact's, both timed in one "
        f"process by edgevt's protocol (`edgevt.bench.measure`: alternating blocks, every runtime's idle threads waited out "
        f"between blocks; {meta.get('threads')} threads) and paired per round as edgevt reports speed-ups (the median over "
        "rounds of the ratio of the two blocks of a round). Load average when the run started: "
        f"{meta.get('load_average', '?')} on a shared machine whose speed changes for seconds at a time "
        "(reports/host-modes.md), so treat ratios within ±10% as no change. At full speed: the same ratio over the rounds "
        "in which both artifacts' blocks ran at the host's full speed (within 10% of the fastest tenth of each one's "
        "block medians; cells timed before edgevt recorded it show —)."
        + "".join(f" Cells added by `{u['command']}` (started {u['started']}{changed_text(u)}"
                  + (f"; {u['note']}" if u.get("note") else "") + ")." for u in meta.get("updates", []))
        + (f" The timings were taken by `{meta['timing']['command']}` (started {meta['timing']['started']}, load average "
           f"{meta['timing']['load_average']}{changed_text(meta['timing'])})." if meta.get("timing") else ""),
        "",
        f"Deterministic goals: {len(checked) - len(failed)}/{len(checked)} checks hold" + (f"; failing: {'; '.join(failed)}." if failed else "."),
        "",
        "| model | target | mode | parity (worst cosine) | ops | delegation / pre-flight / fusions | speed-up vs none "
        "| at full speed | goals |",
        "|---|---|---|---|---|---|---|---|---|",
        *[row(c) for c in cells],
        "",
        *ceilings(cells),
    ]
    out.with_suffix(".md").write_text("\n".join(lines))


def main() -> int:
    import fnmatch

    from edgevt.envinfo import environment
    from edgevt.models import list_models

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="*", help="comma-separated names or globs (default: all)")
    ap.add_argument("--targets", default=",".join(TARGETS))
    ap.add_argument("--ablation", action="store_true", help="also each applicable rewrite alone")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--min-time", type=float, default=2.0, help="sample each pair at least this long (s)")
    ap.add_argument("--max-time", type=float, default=30.0, help="and at most this long, unless the medians are known to ±2%% earlier")
    ap.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "rewrites")
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "rewrites.json")
    ap.add_argument("--render-only", action="store_true")
    ap.add_argument("--update", action="store_true", help="merge the selected cells into the existing report")
    ap.add_argument("--no-timing", action="store_true", help="export and check only (the timing can run later, on a quiet machine)")
    ap.add_argument("--time-only", action="store_true", help="time the selected cells of the existing report from their artifacts")
    args = ap.parse_args()
    now = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    command = f"python benchmarks/rewrites.py {shlex.join(sys.argv[1:])}".strip()
    if args.render_only or args.update or args.time_only:
        meta = json.loads(args.out.read_text())
        cells = meta.pop("cells")
    else:
        cells, meta = [], {"command": command, "started": now, "threads": args.threads, "environment": environment(args.threads),
                       "load_average": " / ".join(f"{x:.2f}" for x in os.getloadavg())}
    if args.update:
        meta.setdefault("updates", []).append({"command": command, "started": now,
                                               "packages_changed": packages_changed(meta, args.threads)})
    if args.time_only:
        meta["timing"] = {"command": command, "started": now, "load_average": " / ".join(f"{x:.2f}" for x in os.getloadavg()),
                          "packages_changed": packages_changed(meta, args.threads)}
        patterns = args.models.split(",")
        for model in [m for m in list_models() if any(fnmatch.fnmatch(m.name, p) for p in patterns)]:
            for target in args.targets.split(","):
                mine = [c for c in cells if c["model"] == model.name and c["target"] == target]
                if mine:
                    time_cells(model, target, mine, args)
                    write(cells, args.out, meta)
    elif not args.render_only:
        patterns = args.models.split(",")
        for model in [m for m in list_models() if any(fnmatch.fnmatch(m.name, p) for p in patterns)]:
            for target in args.targets.split(","):
                done = [export_cell(model, target, mode, extra, args.runs_dir) for mode, extra in modes_for(model, target, args.ablation)]
                if not args.no_timing:
                    time_cells(model, target, done, args)
                keys = {(c["model"], c["target"], c["mode"]) for c in done}
                cells = [c for c in cells if (c["model"], c["target"], c["mode"]) not in keys] + done
                for c in done:
                    print(row(c), flush=True)
                write(cells, args.out, meta)
    write(cells, args.out, meta)
    return 0


if __name__ == "__main__":
    sys.exit(main())
