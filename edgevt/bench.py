"""Latency: cold (load, first inference) and warm (warmup, then timed runs) statistics."""

from __future__ import annotations

import resource
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class BenchSettings:
    runs: int = 100
    warmup: int = 10
    min_time_s: float = 0.0  # keep running past `runs` until this much time has passed
    threads: int | None = None


@dataclass
class LatencyReport:
    engine: str
    cold: dict  # load_ms, first_inference_ms
    warm: dict  # p50_ms, p90_ms, p99_ms, mean_ms, std_ms, min_ms, median_ci95_ms, runs, warmup
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


def peak_rss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def bootstrap_median_ci(samples: np.ndarray, n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% percentile-bootstrap confidence interval of the median."""
    rng = np.random.default_rng(seed)
    medians = np.median(rng.choice(samples, size=(n_boot, len(samples)), replace=True), axis=1)
    lo, hi = np.percentile(medians, [2.5, 97.5])
    return float(lo), float(hi)


def summarize(samples_ms: np.ndarray) -> dict:
    lo, hi = bootstrap_median_ci(samples_ms)
    return {
        "runs": int(len(samples_ms)),
        "p50_ms": float(np.percentile(samples_ms, 50)),
        "p90_ms": float(np.percentile(samples_ms, 90)),
        "p99_ms": float(np.percentile(samples_ms, 99)),
        "mean_ms": float(np.mean(samples_ms)),
        "std_ms": float(np.std(samples_ms, ddof=1)) if len(samples_ms) > 1 else 0.0,
        "min_ms": float(np.min(samples_ms)),
        "median_ci95_ms": [lo, hi],
    }


def _cold(open_runner: Callable[[], object], batch: np.ndarray):
    """Wall times; a runner that times its own stages (Core ML: compile, load) refines them with `cold_details`."""
    t0 = time.perf_counter()
    runner = open_runner()
    load_ms = (time.perf_counter() - t0) * 1e3
    t0 = time.perf_counter()
    runner.run(batch)
    cold = {"load_ms": load_ms, "first_inference_ms": (time.perf_counter() - t0) * 1e3, **getattr(runner, "cold_details", {})}
    if getattr(runner, "engine_ms", None):
        cold["first_inference_predict_only_ms"] = runner.engine_ms[0]
    return runner, cold


def _timed(runner, batch: np.ndarray) -> float:
    t0 = time.perf_counter()
    runner.run(batch)
    return (time.perf_counter() - t0) * 1e3


def _report(runner, cold: dict, samples: list[float], settings: BenchSettings) -> LatencyReport:
    """Runners may add their own view: `engine_ms` (the runtime's own time per run, beside the wall time),
    `threads_note` (a runtime that picks its own threads), `runtime_info` and `notes`."""
    warm = {**summarize(np.asarray(samples)), "warmup": settings.warmup}
    engine_ms = getattr(runner, "engine_ms", None) or []
    if len(engine_ms) >= len(samples) > 0:
        warm["predict_only"] = {"source": runner.engine_ms_source, **summarize(np.asarray(engine_ms[-len(samples):]))}
    recorded = asdict(settings)
    if getattr(runner, "threads_note", None):
        recorded.update(threads=None, threads_note=runner.threads_note)
    return LatencyReport(
        engine=runner.engine,
        cold=cold,
        warm=warm,
        peak_rss_mb=peak_rss_mb(),
        settings=recorded,
        samples_ms=[round(s, 4) for s in samples],
        runtime=getattr(runner, "runtime_info", None),
        notes=list(getattr(runner, "notes", [])),
    )


def measure(open_runner: Callable[[], object], batch: np.ndarray, settings: BenchSettings) -> LatencyReport:
    """open_runner() loads the artifact (timed as cold load); then first inference, warmup, timed runs."""
    return measure_interleaved([open_runner], batch, settings)[0]


def measure_interleaved(openers: list[Callable[[], object]], batch: np.ndarray, settings: BenchSettings) -> list[LatencyReport]:
    """Time several runners in alternation (a, b, a, b, ...) so that a noisy, shared machine slows them alike:
    their ratio is then measured under the same conditions. Cold numbers are taken one runner at a time."""
    runners, colds = zip(*(_cold(op, batch) for op in openers))
    for runner in runners:
        for _ in range(settings.warmup):
            runner.run(batch)
    samples: list[list[float]] = [[] for _ in runners]
    start = time.perf_counter()
    while len(samples[0]) < settings.runs or (time.perf_counter() - start) < settings.min_time_s:
        for runner, bucket in zip(runners, samples):
            bucket.append(_timed(runner, batch))
    return [_report(r, c, s, settings) for r, c, s in zip(runners, colds, samples)]
