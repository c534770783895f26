"""Is a runtime's speed a property of the process it runs in? Fresh processes timed side by side, round by round.

    python benchmarks/between_processes.py                        # swiftformer-xs, LiteRT + torch eager, 8 processes; ~2 min
    python benchmarks/between_processes.py --runtimes ort,torch --processes 4 --rounds 6

When two identical `edgevt bench` runs disagree, either each process drew its own speed (memory placement, thread
layout) or the host changed speed between the runs. This tells the two apart. N workers (_timing.Worker), each one
process holding the runtimes at library defaults as `edgevt bench ARTIFACT --model` holds them, are asked in turn for
one block (about 0.5 s of runs) of each runtime, waiting for the previous worker's threads to go idle; the order is
reversed every other round. Within a round the processes are seconds apart, so a process that is slower in every
round is slower by itself; a round in which all are slower is the host.

Per runtime: the spread of the per-process medians (largest / smallest − 1) and each process's median ratio to
process 0 within rounds: the part of the run-to-run spread that belongs to the process. The spread of the per-round
medians over the whole run: the part that belongs to time. Writes reports/between-processes.md (+ .json).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import NAMES, ROOT, Worker, artifact, host_line, load_note, write_report  # noqa: E402


def measure(args) -> list[list[list[float]]]:
    """blocks[w][i]: the block medians (ms), one per round, of runtime i in worker w."""
    runtimes = args.runtimes.split(",")
    for runtime in runtimes:
        if runtime != "torch":
            artifact(args.model, runtime, args.runs_dir)  # exported once, before the workers start
    workers = []
    try:
        for _ in range(args.processes):
            workers.append(Worker("protocol", runtimes, args.model, args.runs_dir, args.threads))
        blocks = [[[] for _ in runtimes] for _ in workers]
        prev = None
        for r in range(args.rounds):
            order = list(range(len(workers))) if r % 2 == 0 else list(reversed(range(len(workers))))
            for w in order:
                for i in (range(len(runtimes)) if r % 2 == 0 else reversed(range(len(runtimes)))):
                    if prev is not None:
                        workers[prev].wait_idle()
                    blocks[w][i].append(workers[w].block(i))
                    prev = w
            print(f"round {r + 1}/{args.rounds}", file=sys.stderr)
    finally:
        for w in workers:
            w.close()
    return blocks


def spread(values: list[float]) -> float:
    return max(values) / min(values) - 1


def write(blocks, args, command: str, started: str) -> Path:
    runtimes = args.runtimes.split(",")
    rows, record = [], []
    for i, runtime in enumerate(runtimes):
        per_proc = [statistics.median(b[i]) for b in blocks]
        vs0 = [statistics.median([a / z for a, z in zip(b[i], blocks[0][i])]) for b in blocks]
        per_round = [statistics.median(b[i][r] for b in blocks) for r in range(args.rounds)]
        rows.append(f"| {NAMES[runtime]} | {len(blocks)} | {', '.join(f'{m:.2f}' for m in per_proc)} | {spread(per_proc):.1%} "
                    f"| {', '.join(f'{x:.3f}' for x in vs0[1:])} | {spread(per_round):.1%} |")
        record.append({"runtime": runtime, "per_process_median_ms": per_proc, "ratio_to_process_0": vs0,
                       "per_round_median_ms": per_round, "blocks_ms": [b[i] for b in blocks]})
    lines = ["# Between processes: is a runtime's speed a property of its process?", "",
             f"Produced by `{command}` (started {started}) on {host_line()}, {args.threads} threads, {args.model}, "
             f"random weights; {load_note()}.", "",
             f"{args.processes} fresh processes, each holding {' and '.join(NAMES[r] for r in runtimes)} at library defaults "
             f"(as `edgevt bench ARTIFACT --model` does), timed a block (about 0.5 s) at a time in turn for {args.rounds} rounds, "
             "each block after the previous process's threads went idle. Within a round the processes are seconds apart.", "",
             "| runtime | processes | per-process median ms | spread between processes | median ratio to process 0 within rounds "
             "| spread of the per-round medians (time) |",
             "|---|---|---|---|---|---|", *rows]
    return write_report(args.out, lines, {"command": command, "started": started, "model": args.model,
                                          "threads": args.threads, "runtimes": record})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="swiftformer-xs")
    ap.add_argument("--runtimes", default="litert,torch")
    ap.add_argument("--processes", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "timing")
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "between-processes.json")
    args = ap.parse_args()
    if args.processes < 2 or args.rounds < 1:
        ap.error("--processes must be at least 2 and --rounds at least 1")
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    command = ("python benchmarks/between_processes.py " + " ".join(sys.argv[1:])).strip()
    print(write(measure(args), args, command, started))


if __name__ == "__main__":
    main()
