"""A/A check of edgevt's timing protocol: one artifact timed against itself must come out at a ratio of 1.00 ± 5%.

    python benchmarks/timing_aa.py                                 # swiftformer-xs: ORT, LiteRT, torch eager; ~3 min
    python benchmarks/timing_aa.py --models swin-tiny --repeats 2

Each repeat is a fresh process per runtime that opens the same artifact twice (two ONNX Runtime sessions, two LiteRT
interpreters, or the torch module twice) and times both by edgevt.bench.measure, the loop `export`, `bench` and
`matrix` use. For contrast, the same twins timed run by run (a b a b …, what edgevt did before) for a few seconds.
The ratio checked is the one edgevt reports: the median over rounds of B's block median / A's block median in the
same round (edgevt.bench pairs ratios per round). The ratio of the two overall medians is shown beside it.
Writes reports/timing-aa.md (+ .json).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import NAMES, RUNTIMES, ROOT, host_line, interleaved, load_note, protocol, ratio_ok, write_report  # noqa: E402

BOUND = 0.05


def measure_all(args) -> list[dict]:
    rows = []
    for model in args.models.split(","):
        for rep in range(args.repeats):
            for runtime in args.runtimes.split(","):
                got = protocol([runtime, runtime], model, args.runs_dir, args.threads, args.min_time, args.max_time)
                before = interleaved([runtime, runtime], model, args.runs_dir, args.threads, 4.0) if rep == 0 else None
                rows.append({"model": model, "runtime": runtime, "repeat": rep, **got,
                             "ratio": got["paired"][1]["median"], "ratio_of_p50s": got["p50_ms"][1] / got["p50_ms"][0],
                             "interleaved_ratio": before["p50_ms"][1] / before["p50_ms"][0] if before else None})
                print(f"{model} {runtime} #{rep}: B/A {rows[-1]['ratio']:.3f}", file=sys.stderr)
    return rows


def write(rows: list[dict], args, command: str, started: str) -> Path:
    worst = max(abs(r["ratio"] - 1) for r in rows)
    lines = ["# A/A check: one artifact timed against itself by edgevt's timing protocol", "",
             f"Produced by `{command}` (started {started}) on {host_line()}, {args.threads} threads, random weights; {load_note()}.",
             "", f"Each runtime opens the same artifact twice (A and B) and edgevt.bench.measure times both (bench defaults: "
             f"at least {args.min_time:g} s, at most {args.max_time:g} s, until each median is known to ±2%). Pass: B/A within ±{BOUND:.0%}.",
             "", f"**Result: worst |B/A − 1| = {worst:.1%} over {len(rows)} runs: "
             f"{'PASS' if worst <= BOUND else 'FAIL'}.**", "",
             "| model | runtime | repeat | A p50 ms | B p50 ms | B/A (protocol, paired per round) | rounds | B/A of the p50s | block p90/p10 | runs | stopped by | median ±CI reached | B/A run by run (before) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ci = ", ".join(f"±{x:.1%}" for x in r["reached_ci95_rel"])
        before = f"{r['interleaved_ratio']:.3f}" if r["interleaved_ratio"] else ""
        spread = ", ".join(f"{x:.2f}" if x else "–" for x in r["block_spread_p90_p10"])
        lines.append(f"| {r['model']} | {NAMES[r['runtime']]} | {r['repeat']} | {r['p50_ms'][0]:.2f} | {r['p50_ms'][1]:.2f} "
                     f"| {ratio_ok(r['ratio'], BOUND)} | {r['paired'][1]['rounds']} | {r['ratio_of_p50s']:.3f} | {spread} | {r['runs'][0]}, {r['runs'][1]} | {r['stopped_by']} ({r['seconds']:.1f} s) | {ci} | {before} |")
    return write_report(args.out, lines, {"command": command, "started": started, "rows": rows})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="swiftformer-xs")
    ap.add_argument("--runtimes", default=",".join(RUNTIMES))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--min-time", type=float, default=2.0)
    ap.add_argument("--max-time", type=float, default=20.0)
    ap.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "timing")
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "timing-aa.json")
    args = ap.parse_args()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    command = ("python benchmarks/timing_aa.py " + " ".join(sys.argv[1:])).strip()
    print(write(measure_all(args), args, command, started))


if __name__ == "__main__":
    main()
