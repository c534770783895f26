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

Besides the medians, every candidate records how much CPU the other runtime's threads burned while a runtime was
being timed (per-thread CPU clocks; a share of one core): the interference itself, which a busy machine blurs less
than it blurs milliseconds. It also records how much CPU each runtime's threads burn in the 300 ms after its last run
(its spin-wait). Writes reports/timing-protocols.md (+ .json).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import NAMES, ROOT, alone, host_line, input_for, interleave, load_note, opener, write_report  # noqa: E402

SECONDS = 8.0  # sampling time per candidate and pair


def settings(threads: int):
    from edgevt.bench import BenchSettings

    return BenchSettings(runs=10, warmup=5, min_time_s=SECONDS, max_time_s=SECONDS, threads=threads, target_ci=0.0)


def _thread_cpu() -> dict[int, float]:
    out = {}
    for t in os.listdir("/proc/self/task"):
        try:
            out[int(t)] = time.clock_gettime(((~int(t)) << 3) | 6)
        except OSError:
            pass
    return out


class Tracked:
    """A runner that notes which threads are its own (those that first appear while it loads or runs) and how much
    CPU the threads of the *other* runtimes burn while it runs: their spinning steals its cores."""

    owners: dict[int, str] = {}
    unowned = set(_thread_cpu())  # threads older than every runtime (the interpreter's): never counted
    main = threading.get_native_id()

    def __init__(self, name: str, open_runner):
        self.name = name
        self.inner = open_runner()
        self.engine = self.inner.engine
        self.foreign_s = self.wall_s = 0.0
        self._claim()

    def _claim(self) -> None:
        for tid in _thread_cpu():
            if tid != self.main and tid not in Tracked.unowned:
                Tracked.owners.setdefault(tid, self.name)

    def run(self, batch):
        before, t0 = _thread_cpu(), time.perf_counter()
        out = self.inner.run(batch)
        wall, after = time.perf_counter() - t0, _thread_cpu()
        self._claim()
        self.wall_s += wall
        self.foreign_s += sum(after[t] - before.get(t, after[t]) for t in after if Tracked.owners.get(t) not in (None, self.name))
        return out

    def foreign_share(self) -> float:
        return self.foreign_s / self.wall_s if self.wall_s else 0.0


def _tracked_openers(pair, model, runs_dir, threads):
    made = []

    def make(name, open_runner):
        def open_tracked():
            made.append(Tracked(name, open_runner))
            return made[-1]
        return open_tracked

    openers = []
    for i, r in enumerate(pair):
        before = set(_thread_cpu())
        openers.append(make(f"{r}#{i}", opener(r, model, runs_dir, threads)))  # torch's OpenMP pool starts as its model loads
        for tid in set(_thread_cpu()) - before:
            Tracked.owners.setdefault(tid, f"{r}#{i}")
    return openers, made


def interleaved(pair, model, runs_dir, threads) -> tuple[list[float], list[float]]:
    openers, made = _tracked_openers(pair, model, runs_dir, threads)
    samples = interleave([o() for o in openers], input_for(model, runs_dir), SECONDS)
    return [statistics.median(s) for s in samples], [r.foreign_share() for r in made]


def blocks(pair, model, runs_dir, threads, wait: bool) -> tuple[list[float], list[float]]:
    from edgevt.bench import measure, wait_until_idle

    pause = wait_until_idle if wait else (lambda: {"ms": 0.0, "idle": None})
    openers, made = _tracked_openers(pair, model, runs_dir, threads)
    timing = measure(openers, input_for(model, runs_dir), settings(threads), pause=pause)
    return [r.warm["p50_ms"] for r in timing.reports], [r.foreign_share() for r in made]


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


def processes(pair, model, runs_dir, threads) -> tuple[list[float], list[float]]:
    from edgevt.bench import BLOCK_S

    ctx = mp.get_context("spawn")
    links = [ctx.Pipe() for _ in pair]
    procs = [ctx.Process(target=_worker, args=(child, r, model, runs_dir, threads)) for (_, child), r in zip(links, pair)]
    for p in procs:
        p.start()
    conns = [parent for parent, _ in links]
    for c in conns:
        if c.recv() != "ready":
            raise SystemExit("a worker did not start")
    sizes = []
    for c in conns:
        c.send(5)
        sizes.append(max(1, round(BLOCK_S * 1e3 / statistics.median(c.recv()))))
    samples: list[list[float]] = [[] for _ in pair]
    foreign, wall = [0.0] * len(pair), [0.0] * len(pair)
    clocks = [((~p.pid) << 3) | 2 for p in procs]  # each worker process's CPU-time clock
    start, rnd, last = time.perf_counter(), 0, None
    while time.perf_counter() - start < SECONDS:
        for i in (range(len(pair)) if rnd % 2 == 0 else reversed(range(len(pair)))):
            if last is not None and last != i:
                _process_idle(procs[last].pid)
            others = [time.clock_gettime(c) for j, c in enumerate(clocks) if j != i]
            conns[i].send(sizes[i] + (last != i))
            got = conns[i].recv()
            foreign[i] += sum(time.clock_gettime(c) for j, c in enumerate(clocks) if j != i) - sum(others)
            wall[i] += sum(got) / 1e3
            samples[i] += got[1:] if last != i else got  # the first run after a switch is the wake-up
            last = i
        rnd += 1
    for c, p in zip(conns, procs):
        c.send(None)
        p.join()
    return [statistics.median(s) for s in samples], [f / w if w else 0.0 for f, w in zip(foreign, wall)]


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
        p50, foreign = CANDIDATES[name](pair, model, runs_dir, threads)
        print(json.dumps({"p50_ms": p50, "foreign": foreign}))


def run_child(kind, name, pair, model, args) -> dict:
    from _timing import child

    return child([__file__, "--child", kind, "--candidate", name, "--pair", ",".join(pair), "--models", model,
                  "--runs-dir", str(args.runs_dir), "--threads", str(args.threads)])


def measure_all(args) -> dict:
    pairs = [p.split("+") for p in args.pairs.split(",")]
    out = {"alone": {}, "spin": {}, "candidates": {}, "foreign": {}}
    for model in args.models.split(","):
        for rep in range(args.repeats):
            for runtime in sorted({r for p in pairs for r in p}):
                out["alone"].setdefault(f"{model}/{runtime}", []).append(alone(runtime, model, args.runs_dir, args.threads, SECONDS / 2)["p50_ms"])
                if rep == 0:
                    out["spin"][f"{model}/{runtime}"] = run_child("spin", "", [runtime], model, args)["spin_ms"]
            names = list(CANDIDATES) if rep % 2 == 0 else list(reversed(CANDIDATES))
            for name in names:
                for pair in pairs:
                    got = run_child("candidate", name, pair, model, args)
                    for runtime, p50, foreign in zip(pair, got["p50_ms"], got["foreign"]):
                        out["candidates"].setdefault(f"{model}/{name}/{'+'.join(pair)}/{runtime}", []).append(p50)
                        out["foreign"].setdefault(f"{model}/{name}/{'+'.join(pair)}/{runtime}", []).append(foreign)
    return out


def _table(results: dict, model: str, pairs: list[str], cell) -> list[str]:
    lines = ["| protocol | " + " | ".join(f"{p}: {NAMES[r]}" for p in pairs for r in p.split("+")) + " |",
             "|---|" + "---|" * sum(len(p.split("+")) for p in pairs)]
    for name in CANDIDATES:
        lines.append(f"| {name} | " + " | ".join(cell(f"{model}/{name}/{p}/{r}", r) for p in pairs for r in p.split("+")) + " |")
    return lines + [""]


def write(results: dict, args, command: str, started: str) -> Path:
    lines = ["# Timing protocols compared: which one times each runtime as it runs alone?", "",
             f"Produced by `{command}` (started {started}) on {host_line()}, {args.threads} threads, random weights; {load_note()}.",
             "If the load average was above about 1, the machine was shared with other work: the ratios then say little.", ""]
    pairs = args.pairs.split(",")
    for model in args.models.split(","):
        alone = {r: statistics.median(results["alone"][f"{model}/{r}"]) for r in {r for p in pairs for r in p.split("+")}}
        lines += [f"## {model}", "", "Each runtime's median under the protocol ÷ its median timed alone in its own process at "
                  "library defaults (1.00 = as alone; medians of the repeats):", ""]
        lines += _table(results, model, pairs, lambda key, r: f"{statistics.median(results['candidates'][key]) / alone[r]:.2f}")
        lines += ["CPU burned by the other runtime's threads while this runtime ran, per second of its runs (a core-share; 0 = "
                  "nothing else awake). Spinning threads left by the other runtime show up here:", ""]
        lines += _table(results, model, pairs, lambda key, r: f"{statistics.median(results['foreign'][key]):.1%}")
        spin = ", ".join(f"{NAMES[r.split('/')[1]]} {v:.1f} ms" for r, v in results["spin"].items() if r.startswith(model + "/"))
        lines += [f"Alone: {', '.join(f'{NAMES[r]} {v:.1f} ms' for r, v in sorted(alone.items()))}. CPU a runtime's own worker "
                  f"threads burn in the 300 ms after its last run (its spin-wait): {spin}.", ""]
    return write_report(args.out, lines, {"command": command, "started": started, **results})


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
