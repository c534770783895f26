"""Export every registered variant to Core ML through the real CLI; parity through edgevt's MIL interpreter.

    python benchmarks/coreml_all_variants.py                                   # all 13 x fp16, fp32
    python benchmarks/coreml_all_variants.py --models 'swiftformer-*' --precisions int8-weights,palettize --update

Each cell is one `edgevt export ... --target coreml --weights random --json` subprocess; results are
rewritten after every cell to reports/coreml-all-variants.{json,md}. No latency: Core ML latency needs
Apple's runtime (macOS); the interpreter's wall time is reported only to show what parity costs here.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _matrix import arg_parser, changed_text, flip_note, fmt, record, save_json, selected_models, start  # noqa: E402
from onnx_all_variants import run_cell  # noqa: E402

PRECISIONS = ["fp16", "fp32", "int8-weights", "palettize"]


def _worst_op(parity: dict) -> str:
    diag = parity.get("diagnosis") or {}
    worst = (diag.get("worst_ops") or [None])[0]
    if not worst:
        return "—"
    over = diag.get("first_overflow")
    return f"{worst['op']} (+{worst['added']:.2g})" + (f"; overflow at {over['op']}" if over else "")


def row(cell: dict) -> str:
    if "report" not in cell:
        return f"| {cell['model']} | {cell['precision']} | — | **error** (exit {cell['exit_code']}): {cell.get('error', '')[:160]} | | | | | | | |"
    r = cell["report"]
    p, exp = r["parity"], r.get("export") or {}
    out = p["outputs"][0] if p.get("outputs") else {}
    pre = exp.get("ane_preflight") or {}
    findings = ", ".join(f"{f['op_type']}×{f['count']}" for f in pre.get("findings", []) if f["off_ane"] and f["check"] != "fp32 program")
    return (f"| {cell['model']} | {cell['precision']} | {r['artifact']['bytes'] / 1e6:.1f} | {p['status']} "
            f"| {fmt(out.get('cosine'), '.7f')} | {fmt(out.get('max_abs'), '.2g')} | {fmt(out.get('psnr_db'), '.1f')} "
            f"| {fmt(p.get('top1_agreement'), '.0%')}{flip_note(p)} | {_worst_op(p)} | {fmt(p.get('engine_seconds'), '.1f')} "
            f"| {fmt(pre.get('ane_share_estimate'), '.0%')} {findings} |")


def summary(cells: list[dict]) -> list[str]:
    lines = ["| precision | parity pass | worst cosine | interpreter s per sample (median) |", "|---|---|---|---|"]
    for precision in PRECISIONS:
        mine = [c for c in cells if c["precision"] == precision]
        done = [c["report"] for c in mine if "report" in c]
        if not mine:
            continue
        passed = sum(r["parity"]["status"] == "pass" for r in done)
        cosines = [r["parity"]["outputs"][0]["cosine"] for r in done if r["parity"].get("outputs")]
        per_sample = sorted(r["parity"]["engine_seconds"] / r["parity"]["samples"] for r in done if r["parity"].get("engine_seconds"))
        median = per_sample[len(per_sample) // 2] if per_sample else None
        lines.append(f"| {precision} | {passed}/{len(mine)} | {fmt(min(cosines) if cosines else None, '.7f')} | {fmt(median, '.2f')} |")
    return lines + [""]


def write(cells: list[dict], out: Path, meta: dict) -> None:
    save_json(cells, out, meta)
    env = meta["environment"]
    pkgs = ", ".join(f"{k} {v}" for k, v in env["packages"].items())
    lines = [
        "# Core ML export of every variant: parity through the MIL interpreter",
        "",
        f"Produced by `{meta['command']}` (started {meta['started']}), random weights (seed 0), on {env['host_cpu']}, "
        f"{env['logical_cpus']} logical CPUs, {env['os']}; {pkgs}.",
        "",
        "Engine: every parity number below comes from **edgevt's MIL interpreter** (`mil-interpreter`), which runs the "
        "saved .mlpackage op by op in numpy, rounding every fp16 op output to float16 as the device stores it. Apple's "
        "Core ML runtime exists only on macOS and was not available; there is **no latency** here (Core ML latency needs a Mac).",
        "",
        "Thresholds: fp32 atol/rtol 1e-4, cosine ≥ 0.99999, top-1 100%; fp16 atol 5e-2 + rtol 1e-2, cosine ≥ 0.999, "
        "top-1 ≥ 99%; int8-weights and palettize (weights compressed, fp16 compute) cosine ≥ 0.99, PSNR ≥ 25 dB, "
        "top-1 ≥ 97%. Top-1 is over 8 photos (one flip = 12.5 points). 'fp16 error added most by' names the op whose "
        "fp16 rounding adds the most relative error (interpreter run with rounding on vs off, worst sample). "
        "'ANE' is the pre-flight's estimated share of ops on the Neural Engine and what keeps the rest off.",
        "",
        "Interpreter seconds are wall time on a shared machine and only say what parity costs here. The first run's "
        "fp16 cells (12:08-12:30 UTC) predate the single-GEMM `linear` kernel, which made the interpreter about 3× "
        "faster; current per-sample costs are in [mil-interpreter-speed.md](mil-interpreter-speed.md).",
        "",
        *summary(cells),
        *[f"Cells re-run or added later with `{u['command']}` ({u['at']}{changed_text(u)}): {', '.join(u['cells'])}." for u in meta["updates"]],
        "",
        "| model | precision | MB | parity | cosine (worst) | max abs | PSNR dB | top-1 | fp16 error added most by | interpreter s (10 samples) | ANE |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *[row(c) for c in cells],
        "",
    ]
    out.with_suffix(".md").write_text("\n".join(lines))


def main() -> int:
    args = arg_parser(__doc__, "fp16,fp32", ROOT / "runs" / "bench", ROOT / "reports" / "coreml-all-variants.json").parse_args()
    cells, meta = start(args, "coreml_all_variants.py")
    if not args.render_only:
        for precision in args.precisions.split(","):
            for model in sorted(selected_models(args), key=lambda m: m.paper_gmacs):
                cell = run_cell(model, precision, args.runs_dir, args.threads, target="coreml", extra=["--no-bench"])
                record(cells, meta, cell, args.update)
                print(row(cell), flush=True)
                write(cells, args.out, meta)
    write(cells, args.out, meta)
    return 0


if __name__ == "__main__":
    sys.exit(main())
