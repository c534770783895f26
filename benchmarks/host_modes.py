"""Does this host give a 2-thread runtime two cores, all the time? The two states behind the timing reports.

    python benchmarks/host_modes.py                      # swiftformer-xs ONNX fp32, 60 s; ~1.5 min
    python benchmarks/host_modes.py --seconds 120

In blocks of about 0.5 s, in turn: ONNX Runtime with 1 intra-op thread pinned to each logical CPU, then with all of
them (the library default pool). A single thread shows each CPU's own speed; the pool shows whether the CPUs run at
the same time. When the pool is barely faster than one thread while each CPU alone is at full speed, the virtual
CPUs were sharing a physical core at that moment (a hypervisor's decision, invisible to the guest: no steal time,
every thread at 100% of its CPU). Writes reports/host-modes.md (+ .json): the share of blocks in each state and a
timeline. Every timing benchmark that compares medians taken at different moments is exposed to these states.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import ROOT, host_line, input_for, load_note, opener, write_report  # noqa: E402

SHARED_BELOW = 1.25  # pool speed-up over one thread below this: the CPUs were not running side by side


def block(runner, batch, cpus: set[int], seconds: float) -> float:
    os.sched_setaffinity(0, cpus)
    time.sleep(0.05)  # the previous block's spinning threads end
    runner.run(batch)
    samples, start = [], time.perf_counter()
    while time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        runner.run(batch)
        samples.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(samples)


def measure(args) -> list[dict]:
    import numpy as np

    cpus = sorted(os.sched_getaffinity(0))
    one, pool = opener("ort", args.model, args.runs_dir, 1)(), opener("ort", args.model, args.runs_dir, len(cpus))()
    batch = input_for(args.model, args.runs_dir)
    rows, start = [], time.perf_counter()
    while time.perf_counter() - start < args.seconds:
        singles = [block(one, batch, {c}, args.block) for c in cpus]
        both = block(pool, batch, set(cpus), args.block)
        rows.append({"t_s": round(time.perf_counter() - start, 2), "single_ms": singles, "pool_ms": both,
                     "pool_speedup": float(np.median(singles)) / both})
    os.sched_setaffinity(0, set(cpus))
    return rows


def write(rows: list[dict], args, command: str, started: str) -> Path:
    shared = [r for r in rows if r["pool_speedup"] < SHARED_BELOW]
    side = [r for r in rows if r["pool_speedup"] >= SHARED_BELOW]
    med = lambda xs: f"{statistics.median(xs):.2f}" if xs else "–"  # noqa: E731
    n_cpu = len(rows[0]["single_ms"]) if rows else 0
    lines = ["# Host modes: does a 2-thread runtime get two cores?", "",
             f"Produced by `{command}` (started {started}) on {host_line()}; {load_note()}.", "",
             f"{args.model} ONNX fp32 in ONNX Runtime, blocks of {args.block:g} s in turn: 1 intra-op thread pinned to each of the "
             f"{n_cpu} logical CPUs, then a pool of {n_cpu} threads (the library default), for {args.seconds:g} s. "
             f"A block set counts as *shared* when the pool is less than {SHARED_BELOW}× faster than one thread.", "",
             f"**{len(shared)} of {len(rows)} block sets ({len(shared) / max(len(rows), 1):.0%}) shared.**", "",
             "| state | block sets | 1 thread p50 ms (median over CPUs) | pool p50 ms | pool speed-up |", "|---|---|---|---|---|",
             f"| side by side | {len(side)} | {med([statistics.median(r['single_ms']) for r in side])} | {med([r['pool_ms'] for r in side])} "
             f"| {med([r['pool_speedup'] for r in side])}× |",
             f"| shared | {len(shared)} | {med([statistics.median(r['single_ms']) for r in shared])} | {med([r['pool_ms'] for r in shared])} "
             f"| {med([r['pool_speedup'] for r in shared])}× |", "",
             "Each CPU alone keeps its speed in both states; the pool loses its second core. A median over samples taken at "
             "different moments mixes the two states in whatever share the moment gave, which is why edgevt pairs its ratios "
             "per round (edgevt.bench) and the timing benchmarks compare within rounds.", "",
             "Timeline (s: pool ms, speed-up):", "",
             "```", *[", ".join(f"{r['t_s']:.0f}: {r['pool_ms']:.1f} ({r['pool_speedup']:.2f}×)" for r in rows[i:i + 6])
                      for i in range(0, len(rows), 6)], "```"]
    return write_report(args.out, lines, {"command": command, "started": started, "shared_below": SHARED_BELOW, "rows": rows})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="swiftformer-xs")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--block", type=float, default=0.5)
    ap.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "timing")
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "host-modes.json")
    args = ap.parse_args()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    command = ("python benchmarks/host_modes.py " + " ".join(sys.argv[1:])).strip()
    print(write(measure(args), args, command, started))


if __name__ == "__main__":
    main()
