"""Latency by one timing protocol, the same for `export`, `bench` and `matrix`: cold (load, first inference) and warm
statistics per runtime, each runtime timed at its library defaults and never while another runtime's threads are awake.

ONNX Runtime's intra-op threads spin for about a million pause instructions after every run (tens of ms of a core)
and torch's OpenMP workers spin too; both are their libraries' defaults and kept, because that is how users run them.
Timed run by run next to each other, one runtime loses cores to the other's spinning threads. So runtimes are timed
in blocks (PROTOCOL): before each switch to another runtime the protocol waits until every other thread of the
process is idle, runs once untimed (the wake-up), then times a block of about BLOCK_S seconds. The order of the
blocks alternates (A B B A A B ...), so a change in machine load hits every runtime alike and their ratio stays
fair. Sampling goes on until each runtime's median is known to ±target_ci (95% CI over its block medians, at least
MIN_BLOCKS_CI of them: samples seconds apart on a host that changes speed are not independent, so a CI over the
samples claims too much) and min_time has passed, or until max_time. benchmarks/timing_aa.py and timing_alone.py
check it against an A/A test and each runtime timed alone.

Ratios (the speed-up over torch eager) are paired: each round's blocks run back to back, so the ratio of their
medians compares the runtimes under the same machine state, and the reported ratio is the median of those per-round
ratios. A shared host can change speed for seconds at a time (benchmarks/host_modes.py: on a 2-vCPU VM the two vCPUs
at times share one physical core, and every 2-thread runtime slows by up to 1.8x); a median over all samples then
depends on how many samples fell in each state, while adjacent blocks mostly share one. The spread of the block
medians is recorded, and a note says when the host changed speed during the run.

Beside the figures over every block, each runtime gets figures "at full speed": over its blocks whose median is within
FULL_SPEED_BAND of the fastest tenth of its block medians (on a steady host nearly every block; on a host that changed
speed, the blocks of its faster state), and the speed-up over the rounds in which both runtimes ran at full speed.
They are what repeats from run to run on such a host (benchmarks/bench_repeatability.py), where a median over all
samples moves with the share of time the host spent in each state.
"""

from __future__ import annotations

import math
import os
import resource
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np

from edgevt.errors import UsageError

PROTOCOL = "alternating-blocks/2"  # /2: ratios paired per round (median of per-round ratios)
BLOCK_S = 0.5  # timed wall time per block; a block has at least one run
MAX_BLOCK_RUNS = 500
PAUSE_MIN_S = 0.02  # every switch waits at least this long ...
PAUSE_MAX_S = 1.0  # ... and at most this long for the other threads to go idle
IDLE_WINDOW_S = 0.01  # the other threads are idle when, over such a window, ...
IDLE_BUSY = 0.05  # ... they used less than this fraction of one core
PAUSE_FALLBACK_S = 0.25  # where per-thread CPU clocks cannot be read (not Linux): a fixed pause
MIN_BLOCKS_CI = 5  # sampling may stop on the CI only once every runtime has this many blocks
UNSTEADY_SPREAD = 1.2  # block medians whose p90/p10 exceeds this: the host changed speed during the run
FULL_SPEED_BAND = 1.1  # a block ran at the host's full speed when its median is within 10% of the fastest decile's
QUICK_DEFAULTS = {"warmup": 3, "min_time_s": 1.0, "max_time_s": 10.0}  # export and matrix; `edgevt bench` uses BenchSettings'


@dataclass(frozen=True)
class BenchSettings:
    runs: int = 10  # at least this many timed runs per runtime
    warmup: int = 5  # untimed runs per runtime before sampling
    min_time_s: float = 2.0  # sample at least this long ...
    max_time_s: float = 30.0  # ... and stop here even if the median is not yet known to ±target_ci
    threads: int | None = None
    target_ci: float = 0.02  # stop once the 95% CI of every runtime's median is within ±2%

    def __post_init__(self):
        if self.max_time_s < self.min_time_s:
            raise UsageError(f"--max-time {self.max_time_s:g} s is shorter than --min-time {self.min_time_s:g} s",
                             "pass a --max-time at least as long as --min-time")


@dataclass
class LatencyReport:
    engine: str
    cold: dict  # load_ms, first_inference_ms
    warm: dict  # p50_ms, p90_ms, p99_ms, mean_ms, std_ms, min_ms, median_ci95_ms, median_ci95_rel, runs, warmup
    peak_rss_mb: float
    settings: dict = field(default_factory=dict)
    samples_ms: list[float] = field(default_factory=list)
    runtime: dict | None = None  # what the runtime reports about itself (Core ML: compute devices, how it was timed)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        out = asdict(self)
        for key in ("runtime", "notes"):
            if not out[key]:
                del out[key]
        return out


@dataclass
class Timing:
    """What measure() returns: a report per runtime (in the openers' order) and how the protocol ran."""

    reports: list[LatencyReport]
    protocol: dict


def peak_rss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def median_ci(samples) -> tuple[float, float]:
    """Distribution-free 95% CI of the median: the order statistics n/2 ± 1.96·√n/2 (the binomial interval)."""
    x = np.sort(np.asarray(samples, dtype=np.float64))
    n = len(x)
    half = 1.96 * math.sqrt(n) / 2
    lo, hi = max(int(math.floor(n / 2 - half)), 0), min(int(math.ceil(n / 2 + half)), n - 1)
    return float(x[lo]), float(x[hi])


def ci_rel(samples) -> float:
    """Half-width of the median's 95% CI relative to the median (the wider side): 0.02 means ±2%."""
    if len(samples) < 2:
        return math.inf
    lo, hi = median_ci(samples)
    med = float(np.median(samples))
    return max(med - lo, hi - med) / med if med > 0 else math.inf


def summarize(samples_ms) -> dict:
    a = np.asarray(samples_ms, dtype=np.float64)
    lo, hi = median_ci(a)
    return {
        "runs": int(len(a)),
        "p50_ms": float(np.percentile(a, 50)),
        "p90_ms": float(np.percentile(a, 90)),
        "p99_ms": float(np.percentile(a, 99)),
        "mean_ms": float(np.mean(a)),
        "std_ms": float(np.std(a, ddof=1)) if len(a) > 1 else 0.0,
        "min_ms": float(np.min(a)),
        "median_ci95_ms": [lo, hi],
        "median_ci95_rel": ci_rel(a),
    }


def other_threads_cpu_s() -> float | None:
    """CPU seconds used so far by this process's threads other than the caller; None where that cannot be read.
    Linux gives every thread a CPU-time clock, addressed by its id (the kernel's MAKE_THREAD_CPUCLOCK)."""
    me = threading.get_native_id()
    try:
        tids = [int(t) for t in os.listdir("/proc/self/task")]
    except (OSError, ValueError):
        return None
    total = 0.0
    for tid in tids:
        if tid != me:
            try:
                total += time.clock_gettime(((~tid) << 3) | 6)
            except OSError:  # the thread has just exited
                pass
    return total


def wait_until_idle(clock: Callable[[], float] = time.perf_counter, sleep: Callable[[float], None] = time.sleep,
                    cpu: Callable[[], float | None] = other_threads_cpu_s) -> dict:
    """Pause until no other thread of the process burns CPU (spin-waits ended), at least PAUSE_MIN_S, at most PAUSE_MAX_S."""
    t0 = clock()
    sleep(PAUSE_MIN_S)
    last = cpu()
    if last is None:
        sleep(max(PAUSE_FALLBACK_S - PAUSE_MIN_S, 0))
        return {"ms": (clock() - t0) * 1e3, "idle": None}
    while clock() - t0 < PAUSE_MAX_S:
        start = clock()
        sleep(IDLE_WINDOW_S)
        now = cpu()
        if (now - last) / max(clock() - start, 1e-6) < IDLE_BUSY:
            return {"ms": (clock() - t0) * 1e3, "idle": True}
        last = now
    return {"ms": (clock() - t0) * 1e3, "idle": False}


class _Protocol:
    """The state of one measurement: which runtime ran last, every pause, the samples."""

    def __init__(self, runners, batch, pause, clock):
        self.runners, self.batch, self.pause, self.clock = runners, batch, pause, clock
        self.current: int | None = None
        self.pauses: list[dict] = []
        self.samples: list[list[float]] = [[] for _ in runners]
        self.engine_ms: list[list[float]] = [[] for _ in runners]  # the runtime's own time of each timed run, if it reports one
        self.blocks: list[tuple[int, int, int]] = []  # (runtime, first sample, end) of every sampling block, in time order

    def timed(self, i: int) -> float:
        runner = self.runners[i]
        own = getattr(runner, "engine_ms", None)
        before = len(own) if own is not None else 0
        t0 = self.clock()
        runner.run(self.batch)
        ms = (self.clock() - t0) * 1e3
        if own is not None and len(own) > before:  # this run's own time, when the runtime reported one
            self.engine_ms[i].append(own[-1])
        return ms

    def switch_to(self, i: int) -> None:
        """Wait for the other runtime's threads to go idle, then wake this one with an untimed run."""
        if self.current != i:
            self.pauses.append(self.pause())
            if self.current is not None:
                self.runners[i].run(self.batch)
            self.current = i

    def block(self, i: int, runs: int) -> None:
        self.switch_to(i)
        first = len(self.samples[i])
        self.samples[i].extend(self.timed(i) for _ in range(runs))
        self.blocks.append((i, first, len(self.samples[i])))

    def block_samples(self) -> list[list[list[float]]]:
        """Per runtime, the samples of each of its blocks, in time order."""
        out: list[list[list[float]]] = [[] for _ in self.runners]
        for i, a, b in self.blocks:
            out[i].append(self.samples[i][a:b])
        return out

    def block_medians(self) -> list[list[float]]:
        """Per runtime, the median of each of its blocks, in time order."""
        return [[float(np.median(b)) for b in blocks] for blocks in self.block_samples()]


def full_speed_blocks(meds: list[float]) -> list[bool]:
    """Which of a runtime's blocks ran at the host's full speed: block median <= FULL_SPEED_BAND x the 10th percentile
    of its block medians. With fewer than 3 blocks there is nothing to tell states apart by: every block counts."""
    if len(meds) < 3:
        return [True] * len(meds)
    ref = float(np.percentile(meds, 10))
    return [m <= ref * FULL_SPEED_BAND for m in meds]


def _block_runs(estimate_ms: float) -> int:
    return int(min(max(round(BLOCK_S * 1e3 / max(estimate_ms, 1e-3)), 1), MAX_BLOCK_RUNS))


def _open(openers, batch, pause, clock) -> tuple[list, list[dict], list[dict]]:
    runners, colds, pauses = [], [], []
    for opener in openers:
        pauses.append(pause())
        t0 = clock()
        runner = opener()
        load_ms = (clock() - t0) * 1e3
        t0 = clock()
        runner.run(batch)
        runners.append(runner)
        # a runner that times its own stages (Core ML: compile, load) refines the wall times with `cold_details`
        cold = {"load_ms": load_ms, "first_inference_ms": (clock() - t0) * 1e3, **getattr(runner, "cold_details", {})}
        if getattr(runner, "engine_ms", None):
            cold["first_inference_predict_only_ms"] = runner.engine_ms[0]
        colds.append(cold)
    return runners, colds, pauses


def blocks_ci_rel(meds: list[float]) -> float:
    """The median's 95% CI relative to it, over a runtime's block medians: the samples within a block are not
    independent of each other (a host state lasts seconds), the blocks much less so. Infinite below MIN_BLOCKS_CI."""
    return ci_rel(meds) if len(meds) >= MIN_BLOCKS_CI else math.inf


def _stop_reason(p: _Protocol, settings: BenchSettings, elapsed: float) -> str | None:
    if elapsed >= settings.max_time_s:
        return "max_time"
    enough = all(len(s) >= settings.runs for s in p.samples) and elapsed >= settings.min_time_s
    return "ci" if enough and all(blocks_ci_rel(m) <= settings.target_ci for m in p.block_medians()) else None


def measure(openers: list[Callable[[], object]], batch: np.ndarray, settings: BenchSettings,
            pause: Callable[[], dict] = wait_until_idle, clock: Callable[[], float] = time.perf_counter) -> Timing:
    """Time every runner by the protocol (module docstring); openers[i]() loads runner i (its cold load time)."""
    runners, colds, open_pauses = _open(openers, batch, pause, clock)
    p = _Protocol(runners, batch, pause, clock)
    estimates = []
    for i in range(len(runners)):
        p.switch_to(i)
        warm = [p.timed(i) for _ in range(settings.warmup)]
        estimates.append(float(np.median(warm)) if warm else colds[i]["first_inference_ms"])
    p.engine_ms = [[] for _ in runners]  # the warmup runs are not samples
    sizes = [_block_runs(e) for e in estimates]
    start, rounds, stopped = clock(), 0, None
    while stopped is None:
        order = range(len(runners)) if rounds % 2 == 0 else reversed(range(len(runners)))
        for i in order:
            p.block(i, sizes[i])
        rounds += 1
        stopped = _stop_reason(p, settings, clock() - start)
    meds = p.block_medians()
    full = [full_speed_blocks(m) for m in meds]
    protocol = _describe(p, sizes, rounds, stopped, clock() - start, open_pauses, settings, meds, full)
    reports = [_report(r, c, s, own, settings) for r, c, s, own in zip(runners, colds, p.samples, p.engine_ms)]
    for report, blocks, keep in zip(reports, p.block_samples(), full):
        report.warm["full_speed"] = _full_speed(blocks, keep)
    return Timing(reports, protocol)


def _full_speed(blocks: list[list[float]], keep: list[bool]) -> dict:
    """The warm figures over the blocks that ran at the host's full speed (full_speed_blocks)."""
    kept = [x for block, k in zip(blocks, keep) if k for x in block]
    stats = summarize(kept) if kept else {}
    return {"rule": f"blocks whose median is within {FULL_SPEED_BAND - 1:.0%} of the p10 of the block medians",
            "blocks": sum(keep), "of_blocks": len(keep),
            **{k: stats.get(k) for k in ("runs", "p50_ms", "p90_ms", "median_ci95_ms", "median_ci95_rel")}}


def _report(runner, cold: dict, samples: list[float], engine_ms: list[float], settings: BenchSettings) -> LatencyReport:
    """Runners may add their own view: `engine_ms` (the runtime's own time per run, beside the wall time),
    `threads_note` (a runtime that picks its own threads), `runtime_info` and `notes`."""
    warm = {**summarize(samples), "warmup": settings.warmup}
    if engine_ms and len(engine_ms) == len(samples):
        warm["predict_only"] = {"source": runner.engine_ms_source, **summarize(engine_ms)}
    recorded = asdict(settings)
    if getattr(runner, "threads_note", None):
        recorded.update(threads=None, threads_note=runner.threads_note)
    return LatencyReport(engine=runner.engine, cold=cold, warm=warm, peak_rss_mb=peak_rss_mb(), settings=recorded,
                         samples_ms=[round(x, 4) for x in samples], runtime=getattr(runner, "runtime_info", None),
                         notes=list(getattr(runner, "notes", [])))


def paired_ratio(ratios: list[float]) -> dict:
    """The median of per-round ratios with its distribution-free 95% CI."""
    if not ratios:
        return {"median": None, "ci95": [None, None], "ci95_rel": None, "rounds": 0}
    lo, hi = median_ci(ratios)
    return {"median": float(np.median(ratios)), "ci95": [lo, hi], "ci95_rel": ci_rel(ratios), "rounds": len(ratios)}


def paired_ratios(meds: list[list[float]], keep: list[list[bool]] | None = None) -> list[list[float] | None]:
    """From each runtime's block medians (one per round, `_Protocol.block_medians`): per runtime j > 0, the ratio of
    its block median to runtime 0's in the same round, per round (None for runtime 0 itself). With `keep` (per runtime,
    per block), only the rounds in which both blocks are kept."""
    rounds = min(len(m) for m in meds)
    kept = keep or [[True] * len(m) for m in meds]
    return [None] + [[m[r] / meds[0][r] for r in range(rounds) if meds[0][r] > 0 and kept[0][r] and k[r]]
                     for m, k in zip(meds[1:], kept[1:])]


def _steadiness(p: _Protocol, meds: list[list[float]]) -> dict:
    """How much each runtime's block medians varied (p90/p10); above UNSTEADY_SPREAD the host changed speed."""
    spread = [float(np.percentile(m, 90) / np.percentile(m, 10)) if len(m) >= 3 and min(m) > 0 else None for m in meds]
    unsteady = [x is not None and x > UNSTEADY_SPREAD for x in spread]
    out = {"block_medians_ms": [[round(x, 4) for x in m] for m in meds], "block_spread_p90_p10": spread,
           "unsteady": any(unsteady)}
    if any(unsteady):
        worst = max(range(len(spread)), key=lambda i: spread[i] or 0)
        out["note"] = (f"the host changed speed during the run: {p.runners[worst].engine}'s block medians ranged "
                       f"{np.percentile(meds[worst], 10):.3g}–{np.percentile(meds[worst], 90):.3g} ms (p10–p90); medians over "
                       f"all samples mix those states, the paired speed-up compares each round's adjacent blocks, and the "
                       f"figures at full speed keep only the blocks of the faster state")
    return out


def _describe(p: _Protocol, sizes: list[int], rounds: int, stopped: str, elapsed: float, open_pauses: list[dict],
              settings: BenchSettings, meds: list[list[float]], full: list[list[bool]]) -> dict:
    pauses = [x["ms"] for x in p.pauses + open_pauses]
    idle = [x["idle"] for x in p.pauses + open_pauses]
    return {
        "name": PROTOCOL,
        "implementation": "edgevt.bench.measure (the one timing loop of export, bench and matrix)",
        "engines": [r.engine for r in p.runners],
        "blocks": {"target_s": BLOCK_S, "runs": sizes, "order": "alternating (A B B A …)",
                   "rounds": rounds, "untimed_runs_after_a_switch": 1},
        "pause": {"rule": f"until the other threads use < {IDLE_BUSY:.0%} of a core over {IDLE_WINDOW_S * 1e3:.0f} ms "
                          f"(at least {PAUSE_MIN_S * 1e3:.0f} ms, at most {PAUSE_MAX_S * 1e3:.0f} ms)",
                  "count": len(pauses), "median_ms": float(np.median(pauses)) if pauses else 0.0,
                  "max_ms": max(pauses, default=0.0), "not_idle": sum(x is False for x in idle),
                  "fixed": any(x is None for x in idle)},
        "sampling": {"stopped_by": stopped, "seconds": elapsed, "target_ci95_rel": settings.target_ci,
                     "min_time_s": settings.min_time_s, "max_time_s": settings.max_time_s, "min_runs": settings.runs,
                     "ci_over": f"block medians (at least {MIN_BLOCKS_CI} per runtime)",
                     "reached_ci95_rel": [blocks_ci_rel(m) for m in meds]},
        "paired": {"rule": "per round, the ratio of each runtime's block median to the first runtime's block median in "
                           "the same round; reported: the median over rounds, with its 95% CI",
                   "vs": p.runners[0].engine, "ratios": [r if r is None else paired_ratio(r) for r in paired_ratios(meds)],
                   "full_speed": [r if r is None else paired_ratio(r) for r in paired_ratios(meds, full)]},
        "host": _steadiness(p, meds),
    }


def threading_settings(threads: int, engines: list[str]) -> dict:
    """How each timed runtime's threads were set: edgevt sets the thread counts and leaves every wait policy at the
    library's default (ORT's spinning on, torch's OpenMP workers spinning then sleeping), as users run them."""
    omp = os.environ.get("OMP_WAIT_POLICY")
    out: dict = {"threads": threads, "OMP_WAIT_POLICY": omp or "unset (library default)"}
    for engine in dict.fromkeys(engines):
        if engine.startswith("onnxruntime"):
            out[engine] = {"intra_op_num_threads": threads, "inter_op_num_threads": 1,
                           "session.intra_op.allow_spinning": "library default (on)"}
        elif engine == "torch-eager":
            import torch

            backend = next((line.split(":", 1)[1].strip() for line in torch.__config__.parallel_info().splitlines()
                            if line.startswith("ATen parallel backend")), None)
            out[engine] = {"num_threads": torch.get_num_threads(), "interop_threads": torch.get_num_interop_threads(),
                           "parallel_backend": backend, "OMP_WAIT_POLICY": omp or "unset (library default)"}
        elif "litert" in engine or "tflite" in engine:
            out[engine] = {"num_threads": threads, "delegate": "XNNPACK (library default)"}
        else:
            out[engine] = {"threads": threads}
    return out
