"""Synthetic matrix reports in the exact shape `edgevt matrix` writes (report.json, command "matrix").

Used by the report-writer and compare tests so they do not need a real (slow) matrix run. The shape:

    {schema, schema_version, created, command: "matrix", argv,
     matrix: {models, targets, precisions, weights, seed, profile, bench, tolerances},
     summary: {cells, pass, fail, skipped, error, crashed, timeout, unsupported, pending, cached},
     environment: {...},
     cells: [cell, ...]}

    cell = {id: "MODEL/TARGET/PRECISION", model, target, precision, options,
            status: pass | fail | skipped | error | crashed | timeout | unsupported | pending,
            cached: bool, seconds, key, artifact_key,
            model_info: {name, family, weights, seed, weights_sha256, ...} | None,
            artifact: {path, bytes, sha256} | None, artifact_reused: bool (cached artifact, new parity/latency),
            export: {...} | None,
            parity: ParityReport.to_dict() | None,
            latency: {status: measured, engine, cold, warm: {p50_ms, p90_ms, ...}, samples_ms, settings,
                      baseline: {same for torch eager, efficiency}, speedup_vs_torch_eager,
                      compute_bound: {status, macs, bound_ms, gemm_gflops, ...}, efficiency}
                     | {status: skipped, reason} | None,
            error: {type, message, hint, exit_code, signal, log_tail} | None}
"""

from __future__ import annotations

import copy

import numpy as np

from edgevt import REPORT_SCHEMA_VERSION
from edgevt.bench import PROTOCOL


def _warm(samples: list[float]) -> dict:
    a = np.asarray(samples)
    return {
        "runs": len(a), "warmup": 3, "p50_ms": float(np.percentile(a, 50)), "p90_ms": float(np.percentile(a, 90)),
        "p99_ms": float(np.percentile(a, 99)), "mean_ms": float(a.mean()), "std_ms": float(a.std(ddof=1)),
        "min_ms": float(a.min()), "median_ci95_ms": [float(np.percentile(a, 40)), float(np.percentile(a, 60))],
    }


def compute_bound(bound_ms: float, macs: float = 0.6e9) -> dict:
    gflops = 2 * macs / (bound_ms / 1e3) / 1e9
    return {"status": "measured", "macs": macs, "gflop": 2 * macs / 1e9, "gemm_gflops": {"onnxruntime": gflops, "torch": gflops / 2},
            "peak_gflops": gflops, "peak_by": "onnxruntime", "bound_ms": bound_ms, "threads": 2,
            "probe": {"n": 2048, "probed": "2026-11-21T10:00:00+00:00", "cache": None, "cached": True, "source": "probe"},
            "note": "fp32 GEMM bound"}


def _efficiencies(lat: dict) -> None:
    bound = (lat.get("compute_bound") or {}).get("bound_ms")
    for side in (lat, lat.get("baseline")):
        if side and bound:
            side["efficiency"] = bound / side["warm"]["p50_ms"]
    if lat.get("baseline"):
        lat["speedup_vs_torch_eager"] = lat["baseline"]["warm"]["p50_ms"] / lat["warm"]["p50_ms"]


def latency(p50: float, engine: str = "onnxruntime-cpu", torch_p50: float | None = None, runs: int = 30, seed: int = 0,
            bound_ms: float | None = 4.0) -> dict:
    rng = np.random.default_rng(seed)
    samples = [round(float(p50 * (1 + 0.05 * rng.standard_normal())), 4) for _ in range(runs)]
    lat = {"status": "measured", "engine": engine, "cold": {"load_ms": 40.0, "first_inference_ms": 2 * p50},
           "warm": _warm(samples), "samples_ms": samples, "peak_rss_mb": 500.0,
           "settings": {"runs": runs, "warmup": 3, "min_time_s": 0.0, "max_time_s": 10.0, "threads": 2}}
    lat["protocol"] = {"name": PROTOCOL, "engines": [engine, "torch-eager"] if torch_p50 else [engine],
                       "sampling": {"stopped_by": "ci", "seconds": 3.2, "target_ci95_rel": 0.02, "min_time_s": 1.0, "max_time_s": 10.0,
                                    "reached_ci95_rel": [0.015, 0.018] if torch_p50 else [0.015]}}
    lat["threading"] = {"threads": 2, "OMP_WAIT_POLICY": "unset (library default)"}
    if bound_ms:
        lat["compute_bound"] = compute_bound(bound_ms)
    if torch_p50:
        base = [round(float(torch_p50 * (1 + 0.05 * rng.standard_normal())), 4) for _ in range(runs)]
        lat["baseline"] = {"engine": "torch-eager", "cold": {"load_ms": 0.1, "first_inference_ms": torch_p50},
                           "warm": _warm(base), "samples_ms": base, "peak_rss_mb": 500.0, "settings": lat["settings"]}
    _efficiencies(lat)
    return lat


def parity(status: str = "pass", cosine: float = 0.9999999, top1: float = 1.0, max_abs: float = 1e-5,
           engine: str = "onnxruntime-cpu", precision: str = "fp32", failures: list[str] | None = None) -> dict:
    return {
        "status": status, "engine": engine, "reference": "torch-eager", "precision": precision,
        "thresholds": {"atol": 1e-4, "rtol": 1e-4, "min_cosine": 0.99999, "min_top1": 1.0},
        "outputs": [{"name": "logits", "max_abs": max_abs, "max_rel": max_abs / 5, "mean_abs": max_abs / 4, "cosine": cosine,
                     "psnr_db": 90.0, "snr_db": 85.0, "nonfinite": 0, "allclose_violations": 0}],
        "samples": 10, "photos": 8, "top1_agreement": top1, "top5_agreement": 1.0, "top1_disagreements": [],
        "failures": failures or ([] if status == "pass" else [f"logits: cosine {cosine:.6f} < 0.99999"]),
        "reason": None, "engine_seconds": 0.5, "diagnosis": None,
    }


def cell(model: str, target: str, precision: str, status: str = "pass", p50: float | None = 10.0, torch_p50: float | None = 30.0,
         size: int = 5_000_000, cosine: float = 0.9999999, top1: float = 1.0, cached: bool = False, seed: int = 0,
         error: dict | None = None) -> dict:
    engines = {"onnx": "onnxruntime-cpu", "tflite": "tflite-xnnpack", "coreml": "mil-interpreter"}
    suffix = {"onnx": ".onnx", "tflite": ".tflite", "coreml": ".mlpackage"}[target]
    ran = status in ("pass", "fail")
    out = {
        "id": f"{model}/{target}/{precision}", "model": model, "target": target, "precision": precision, "options": {},
        "status": status, "cached": cached, "seconds": 12.5, "key": f"{seed:02d}" + "ab" * 31, "artifact_key": "cd" * 32,
        "model_info": {"name": model, "family": model.split("-")[0], "weights": "random", "seed": 0,
                       "weights_sha256": "ef" * 32, "input_shape": [1, 3, 224, 224]} if status != "unsupported" else None,
        "artifact": {"path": f"/cache/artifacts/cd/{model}-{precision}{suffix}", "bytes": size, "sha256": "12" * 32} if ran else None,
        "artifact_reused": False if ran else None,
        "export": {"seconds": 3.0} if ran else None,
        "parity": parity(status, cosine, top1, engine=engines[target], precision=precision) if ran else None,
        "latency": None,
        "error": error,
    }
    if ran:
        if target == "coreml":
            out["latency"] = {"status": "skipped", "reason": "Core ML runs only on macOS; this is Linux"}
        elif p50 is not None:
            out["latency"] = latency(p50, engines[target], torch_p50, seed=seed)
    if status == "error" and error is None:
        out["error"] = {"type": "ExportError", "message": "converter failed: unsupported op aten::foo", "hint": "try another precision",
                        "exit_code": 3, "signal": None, "log_tail": "Traceback ...\nExportError: converter failed"}
    if status == "crashed" and error is None:
        out["error"] = {"type": "Crash", "message": "the cell's process was killed by SIGSEGV", "hint": None, "exit_code": None,
                        "signal": "SIGSEGV", "log_tail": "Fatal Python error: Segmentation fault"}
    return out


def report(cells: list[dict]) -> dict:
    statuses = ("pass", "fail", "skipped", "error", "crashed", "timeout", "unsupported", "pending")
    summary = {"cells": len(cells), **{s: sum(c["status"] == s for c in cells) for s in statuses},
               "cached": sum(bool(c.get("cached")) for c in cells)}
    return {
        "schema": "edgevt.report", "schema_version": REPORT_SCHEMA_VERSION, "created": "2026-11-21T10:00:00+00:00",
        "command": "matrix", "argv": ["matrix"],
        "matrix": {"models": sorted({c["model"] for c in cells}), "targets": sorted({c["target"] for c in cells}),
                   "precisions": sorted({c["precision"] for c in cells}), "weights": "random", "seed": 0, "profile": None,
                   "bench": {"runs": 30, "warmup": 3, "min_time_s": 0.0, "threads": 2}, "tolerances": {}},
        "summary": summary,
        "environment": {"edgevt": "0.1.0", "host_cpu": "Test CPU", "logical_cpus": 2, "machine": "x86_64", "os": "Linux 6",
                        "python": "3.11.7", "threads": 2, "packages": {"torch": "2.13.0"}},
        "cells": cells,
    }


def sample_report() -> dict:
    """A mixed matrix: passes, a parity failure, a converter error, a crash, an unsupported precision, Core ML latency skipped."""
    return report([
        cell("swiftformer-xs", "onnx", "fp32", p50=12.0, torch_p50=30.0, size=12_400_000),
        cell("swiftformer-xs", "onnx", "int8-dynamic", p50=8.0, torch_p50=30.0, size=3_400_000, cosine=0.9993, top1=1.0, seed=1),
        cell("swiftformer-xs", "tflite", "fp32", p50=7.0, torch_p50=30.0, size=12_300_000, seed=2),
        cell("swiftformer-xs", "tflite", "int8-dynamic", status="fail", p50=4.0, torch_p50=30.0, size=3_300_000, cosine=0.998,
             top1=0.875, seed=3),
        cell("swiftformer-xs", "coreml", "fp16", size=6_200_000, cosine=0.999998),
        cell("swin-tiny", "onnx", "fp32", p50=80.0, torch_p50=150.0, size=113_000_000, seed=4),
        cell("swin-tiny", "tflite", "fp32", status="error"),
        cell("swin-tiny", "tflite", "int8-static", status="crashed"),
        cell("swin-tiny", "coreml", "int8-dynamic", status="unsupported"),
    ])


def scaled(report_: dict, factor: float) -> dict:
    """A copy whose latency samples (and the statistics derived from them) are `factor` times the original."""
    out = copy.deepcopy(report_)
    for c in out["cells"]:
        lat = c.get("latency") or {}
        if lat.get("status") != "measured":
            continue
        lat["samples_ms"] = [round(s * factor, 4) for s in lat["samples_ms"]]
        lat["warm"] = {**_warm(lat["samples_ms"]), "warmup": lat["warm"]["warmup"]}
        _efficiencies(lat)
    return out


def other_machine(report_: dict, speed: float, cpu: str = "Other CPU") -> dict:
    """The same run on a machine `speed` times slower at everything: the artifact, torch eager and its GEMM peak."""
    out = copy.deepcopy(report_)
    out["environment"]["host_cpu"] = cpu
    for c in out["cells"]:
        lat = c.get("latency") or {}
        if lat.get("status") != "measured":
            continue
        for side in (lat, lat.get("baseline")):
            if side:
                side["samples_ms"] = [round(s * speed, 4) for s in side["samples_ms"]]
                side["warm"] = {**_warm(side["samples_ms"]), "warmup": side["warm"]["warmup"]}
        if lat.get("compute_bound"):
            lat["compute_bound"] = compute_bound(lat["compute_bound"]["bound_ms"] * speed, lat["compute_bound"]["macs"])
        _efficiencies(lat)
    return out


class FakeTarget:
    """A target whose runner echoes its input: for tests of the timing path, not of a runtime."""

    name = "fake"

    @staticmethod
    def latency_unavailable():
        return None

    @staticmethod
    def open_runner(artifact, threads):
        return type("R", (), {"engine": "onnxruntime-cpu", "run": lambda self, x: {"y": x}})()


def timed_latency(art_ms: float, torch_ms: float, slow_pattern: tuple[bool, ...], period_s: float = 1.3,
                  seconds: float = 20.0, slow: tuple[float, float] = (1.8, 1.3), seed: int = 0) -> dict:
    """A latency section in the shape `export` records (edgevt.pipeline.benchmark), timed by edgevt.bench.measure on a
    fake clock and a fake host that is slow in the periods where `slow_pattern` (cycled) is True: there the artifact
    takes slow[0] and torch eager slow[1] times as long (2-thread runtimes slow unequally when two vCPUs share a core)."""
    from edgevt.bench import BenchSettings, measure
    from edgevt.pipeline import speedup

    now, rng = [0.0], np.random.default_rng(seed)

    class Runner:
        def __init__(self, engine: str, ms: float, factor: float):
            self.engine, self.ms, self.factor = engine, ms, factor

        def run(self, batch):
            state = self.factor if slow_pattern[int(now[0] / period_s) % len(slow_pattern)] else 1.0
            now[0] += self.ms * state * (1 + 0.01 * rng.standard_normal()) / 1e3
            return {"y": batch}

    def pause():
        now[0] += 0.03
        return {"ms": 30.0, "idle": True}

    openers = [lambda: Runner("onnxruntime-cpu", art_ms, slow[0]), lambda: Runner("torch-eager", torch_ms, slow[1])]
    timing = measure(openers, np.zeros(1), BenchSettings(runs=10, warmup=0, min_time_s=seconds, max_time_s=seconds),
                     pause=pause, clock=lambda: now[0])
    reports = [r.to_dict() for r in timing.reports]
    lat = {**reports[0], "status": "measured", "protocol": timing.protocol, "baseline": reports[1],
           "compute_bound": compute_bound(4.0)}
    lat["speedup_vs_torch_eager"], lat["speedup"] = speedup(timing.protocol, reports)
    return lat
