"""Which timing protocol measures each runtime as it runs alone? The evidence behind edgevt.bench's choice.

    python benchmarks/timing_protocols.py                       # swiftformer-xs, ORT+torch and LiteRT+torch, ~4 min
    python benchmarks/timing_protocols.py --models swin-tiny --repeats 1

Per pair of runtimes (an artifact and torch eager, as `edgevt export` times them), each candidate protocol gives
both medians, compared with each runtime timed alone in its own process at library defaults:

- interleaved: run by run (a b a b …) in one process: what edgevt did before;
- blocks, no pause: blocks of about 0.5 s in alternating order, in one process, switching at once;
- blocks + idle wait (edgevt's protocol, edgevt.bench.measure): the same blocks, and before each switch a wait until
  every other thread of the process is idle, then one untimed run;
- processes: each runtime in its own worker process, the same blocks, waiting for the other process to go idle.

It also records how long each runtime's threads keep a core busy after its last run (per-thread CPU clocks).
Writes reports/timing-protocols.md (+ .json).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import NAMES, ROOT, alone, host_line, input_for, load_note, opener  # noqa: E402

SECONDS = 8.0  # sampling time per candidate and pair


def settings(threads: int):
    from edgevt.bench import BenchSettings

    return BenchSettings(runs=10, warmup=5, min_time_s=SECONDS, max_time_s=SECONDS, threads=threads, target_ci=0.0)


def interleaved(pair, model, runs_dir, threads) -> list[float]:
    batch = input_for(model, runs_dir)
    runners = [opener(r, model, runs_dir, threads)() for r in pair]
    samples: list[list[float]] = [[] for _ in runners]
    for r in runners:
        for _ in range(5):
            r.run(batch)
    start = time.perf_counter()
    while time.perf_counter() - start < SECONDS:
        for r, bucket in zip(runners, samples):
            t0 = time.perf_counter()
            r.run(batch)
            bucket.append((time.perf_counter() - t0) * 1e3)
    return [statistics.median(s) for s in samples]


def blocks(pair, model, runs_dir, threads, wait: bool) -> list[float]:
    from edgevt.bench import measure, wait_until_idle

    pause = wait_until_idle if wait else (lambda: {"ms": 0.0, "idle": None})
    timing = measure([opener(r, model, runs_dir, threads) for r in pair], input_for(model, runs_dir), settings(threads), pause=pause)
    return [r.warm["p50_ms"] for r in timing.reports]


def _worker(conn, runtime, model, runs_dir, threads) -> None:
    batch = input_for(model, runs_dir)
    runner = opener(runtime, model, runs_dir, threads)()
    conn.send("ready")
    while (n := conn.recv()) is not None:
        out = []
        for _ in range(n):
            t0 = time.perf_counter()
            runner.run(batch)
            out.append((time.perf_counter() - t0) * 1e3)
        conn.send(out)


def _process_idle(pid: int) -> None:
    """Until the process uses < 5% of a core over 10 ms (at most 1 s): its spinning threads have gone to sleep."""
    clock, t0 = ((~pid) << 3) | 2, time.perf_counter()  # the process's CPU-time clock
    time.sleep(0.02)
    last = time.clock_gettime(clock)
    while time.perf_counter() - t0 < 1.0:
        start = time.perf_counter()
        time.sleep(0.01)
        now = time.clock_gettime(clock)
        if (now - last) / (time.perf_counter() - start) < 0.05:
            return
        last = now


def processes(pair, model, runs_dir, threads) -> list[float]:
    from edgevt.bench import BLOCK_S

    ctx = mp.get_context("spawn")
    links = [ctx.Pipe() for _ in pair]
    procs = [ctx.Process(target=_worker, args=(child, r, model, runs_dir, threads)) for (_, child), r in zip(links, pair)]
    for p in procs:
        p.start()
    conns = [parent for parent, _ in links]
    for c in conns:
        assert c.recv() == "ready"
    sizes = []
    for c in conns:
        c.send(5)
        warm = c.recv()
        sizes.append(max(1, round(BLOCK_S * 1e3 / statistics.median(warm))))
    samples: list[list[float]] = [[] for _ in pair]
    start, rnd, last = time.perf_counter(), 0, None
    while time.perf_counter() - start < SECONDS:
        for i in (range(len(pair)) if rnd % 2 == 0 else reversed(range(len(pair)))):
            if last is not None and last != i:
                _process_idle(procs[last].pid)
            conns[i].send(sizes[i] + (last != i))
            got = conns[i].recv()
            samples[i] += got[1:] if last != i else got  # the first run after a switch is the wake-up
            last = i
        rnd += 1
    for c, p in zip(conns, procs):
        c.send(None)
        p.join()
    return [statistics.median(s) for s in samples]


def spin_after(runtime, model, runs_dir, threads) -> float:
    """ms of CPU the runtime's other threads burn in the 300 ms after its last run."""
    from edgevt.bench import other_threads_cpu_s

    batch = input_for(model, runs_dir)
    runner = opener(runtime, model, runs_dir, threads)()
    burned = []
    for _ in range(5):
        for _ in range(10):
            runner.run(batch)
        c0 = other_threads_cpu_s()
        time.sleep(0.3)
        burned.append((other_threads_cpu_s() - c0) * 1e3)
    return statistics.median(burned)


CANDIDATES = {"interleaved": interleaved, "blocks, no pause": lambda *a: blocks(*a, wait=False),
              "blocks + idle wait (edgevt)": lambda *a: blocks(*a, wait=True), "processes": processes}


def child_main(kind: str, name: str, pair: list[str], model: str, runs_dir: Path, threads: int) -> None:
    if kind == "spin":
        print(json.dumps({"spin_ms": spin_after(pair[0], model, runs_dir, threads)}))
    else:
        print(json.dumps({"p50_ms": CANDIDATES[name](pair, model, runs_dir, threads)}))


def run_child(kind, name, pair, model, args) -> dict:
    from _timing import child

    return child([__file__, "--child", kind, "--candidate", name, "--pair", ",".join(pair), "--models", model,
                  "--runs-dir", str(args.runs_dir), "--threads", str(args.threads)])


def measure_all(args) -> dict:
    pairs = [p.split("+") for p in args.pairs.split(",")]
    out = {"alone": {}, "spin": {}, "candidates": {}}
    for model in args.models.split(","):
        for rep in range(args.repeats):
            for runtime in sorted({r for p in pairs for r in p}):
                out["alone"].setdefault(f"{model}/{runtime}", []).append(alone(runtime, model, args.runs_dir, args.threads, SECONDS / 2)["p50_ms"])
                if rep == 0:
                    out["spin"][f"{model}/{runtime}"] = run_child("spin", "", [runtime], model, args)["spin_ms"]
            names = list(CANDIDATES) if rep % 2 == 0 else list(reversed(CANDIDATES))
            for name in names:
                for pair in pairs:
                    got = run_child("candidate", name, pair, model, args)["p50_ms"]
                    for runtime, p50 in zip(pair, got):
                        out["candidates"].setdefault(f"{model}/{name}/{'+'.join(pair)}/{runtime}", []).append(p50)
    return out


def write(results: dict, args, command: str, started: str) -> Path:
    md = args.out.with_suffix(".md")
    lines = ["# Timing protocols compared: which one times each runtime as it runs alone?", "",
             f"Produced by `{command}` (started {started}) on {host_line()}, {args.threads} threads, random weights.",
             f"**The machine was shared with other work while this ran** ({load_note()}): read the ratios, not the ms.", "",
             "Each cell: the runtime's median under the protocol ÷ its median timed alone in its own process at library "
             "defaults (1.00 = as alone). Medians of the repeats.", ""]
    pairs = args.pairs.split(",")
    for model in args.models.split(","):
        lines += [f"## {model}", "", "| protocol | " + " | ".join(f"{p}: {r}" for p in pairs for r in p.split("+")) + " |",
                  "|---|" + "---|" * sum(len(p.split("+")) for p in pairs)]
        for name in CANDIDATES:
            cells = []
            for p in pairs:
                for r in p.split("+"):
                    got = statistics.median(results["candidates"][f"{model}/{name}/{p}/{r}"])
                    cells.append(f"{got / statistics.median(results['alone'][f'{model}/{r}']):.2f}")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        alone_ms = ", ".join(f"{NAMES[r.split('/')[1]]} {statistics.median(v):.1f} ms" for r, v in results["alone"].items() if r.startswith(model + "/"))
        spin = ", ".join(f"{NAMES[r.split('/')[1]]} {v:.1f} ms" for r, v in results["spin"].items() if r.startswith(model + "/"))
        lines += ["", f"Alone: {alone_ms}.", "", f"CPU the other threads burn in the 300 ms after a runtime's last run: {spin}.", ""]
    md.parent.mkdir(parents=True, exist_ok=True)
    md.write_text("\n".join(lines) + "\n")
    args.out.with_suffix(".json").write_text(json.dumps({"command": command, "started": started, **results}, indent=1) + "\n")
    return md


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="swiftformer-xs")
    ap.add_argument("--pairs", default="ort+torch,litert+torch")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "timing")
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "timing-protocols.json")
    ap.add_argument("--child", choices=["spin", "candidate"], help=argparse.SUPPRESS)
    ap.add_argument("--candidate", default="", help=argparse.SUPPRESS)
    ap.add_argument("--pair", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child_main(args.child, args.candidate, args.pair.split(","), args.models, args.runs_dir, args.threads)
        return
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    command = "python benchmarks/timing_protocols.py " + " ".join(sys.argv[1:])
    print(write(measure_all(args), args, command.strip(), started))


if __name__ == "__main__":
    main()
