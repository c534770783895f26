"""The host's compute bound for a model: 2 × MACs divided by the fp32 GEMM throughput this host reaches at the same
thread count, and the efficiency of a runtime (bound / its p50).

Milliseconds do not travel between machines; the share of the host's GEMM peak that a runtime reaches mostly does.
The throughput is probed with ONNX Runtime's MatMul and torch.mm on 2048 × 2048 fp32 matrices (the best of several
runs of each; both are recorded, the faster one sets the bound) once per host, thread count and library versions,
and cached under the edgevt cache directory (`gemm/`). A probe on a busy host reads low: it is repeated when the host
is clearly quieter than it was, keeping the best rate; deleting the cached file forces a new probe. EDGEVT_GEMM_GFLOPS
pins the rates instead (e.g. on CI runners, measured once on a quiet machine of the same type).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import time
from pathlib import Path
from typing import Callable

from edgevt.fsio import atomic_write_text

GEMM_N = 2048
PROBE_S = 1.0  # timed seconds per library (at least PROBE_RUNS runs)
PROBE_RUNS = 5
PROBE_VERSION = 1
ENV = "EDGEVT_GEMM_GFLOPS"  # skips the probe: GFLOP/s measured once, e.g. on a quiet machine of the same type
NOTE = "fp32 GEMM bound: an fp16 or int8 artifact can beat it (efficiency above 100%)"


def cache_root() -> Path:
    from edgevt.matrix.cache import default_root

    return default_root()


def _key(threads: int) -> dict:
    from edgevt.envinfo import cpu_model, package_version

    return {"probe": PROBE_VERSION, "n": GEMM_N, "threads": threads, "cpu": cpu_model(), "logical_cpus": os.cpu_count(),
            "machine": platform.machine(), "onnxruntime": package_version("onnxruntime"), "torch": package_version("torch")}


def cache_file(threads: int, root: Path | None = None) -> Path:
    from edgevt.matrix.cache import digest

    return (root or cache_root()) / "gemm" / f"{digest(_key(threads))[:20]}.json"


def _best_gflops(run: Callable[[], object], n: int) -> float:
    """2·N³ over the fastest run: the peak the host can reach, which a run slowed by other work does not lower."""
    for _ in range(2):
        run()
    times, start = [], time.perf_counter()
    while len(times) < PROBE_RUNS or time.perf_counter() - start < PROBE_S:
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / min(times) / 1e9


def probe_onnxruntime(threads: int, n: int = GEMM_N) -> float:
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper

    mat = lambda name: helper.make_tensor_value_info(name, TensorProto.FLOAT, [n, n])  # noqa: E731
    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "gemm", [mat("a"), mat("b")], [mat("c")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = min(model.ir_version, 9)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1  # as edgevt's ORT runner: spinning left at its default
    session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feed = {name: rng.standard_normal((n, n), dtype=np.float32) for name in ("a", "b")}
    return _best_gflops(lambda: session.run(None, feed), n)


def probe_torch(threads: int, n: int = GEMM_N) -> float:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a, b = torch.randn(n, n), torch.randn(n, n)
        with torch.inference_mode():
            return _best_gflops(lambda: torch.mm(a, b), n)
    finally:
        torch.set_num_threads(before)


def _probe(threads: int, pause: Callable[[], object]) -> dict:
    out = {}
    for name, probe in (("onnxruntime", probe_onnxruntime), ("torch", probe_torch)):
        pause()  # the probes follow the timing protocol: nothing else awake
        try:
            out[name] = round(probe(threads), 1)
        except ImportError as exc:
            out[name] = None
            out[f"{name}_error"] = str(exc)
    return out


def _parse_pinned(text: str) -> dict:
    """EDGEVT_GEMM_GFLOPS: "377" or "onnxruntime=377,torch=170"."""
    from edgevt.errors import UsageError

    try:
        if "=" not in text:
            return {"pinned": float(text)}
        return {k.strip(): float(v) for k, v in (item.split("=", 1) for item in text.split(","))}
    except ValueError:
        raise UsageError(f"{ENV}={text!r} is not a number or a list like onnxruntime=377,torch=170",
                         f"fix or unset {ENV}") from None


def _quieter_now(cached: dict) -> bool:
    """A probe is re-run when the host is clearly quieter than when it was probed: a busy host lowers the peak."""
    then = (cached.get("load_average") or [0.0])[0]
    return os.getloadavg()[0] < then - 0.5


def gemm_throughput(threads: int, log: Callable[[str], None], root: Path | None = None,
                    pause: Callable[[], object] | None = None, force: bool = False) -> dict:
    """GFLOP/s of fp32 GEMM on this host at `threads` threads: the cached probe, or a new one (about 3 s) merged into it
    keeping the best rate per library, so the cache converges on the host's peak. `force` probes even when a cached
    rate exists (it can still only rise)."""
    pinned = os.environ.get(ENV)
    if pinned:
        return {"gflops": _parse_pinned(pinned), "source": ENV, "cache": None, "cached": False, "probed": None}
    path = cache_file(threads, root)
    try:
        cached = json.loads(path.read_text())
    except (OSError, ValueError):
        cached = None
    if cached is not None and not force and not _quieter_now(cached):
        return {**cached, "cache": str(path), "cached": True}
    if pause is None:
        from edgevt.bench import wait_until_idle as pause
    log(f"probing fp32 GEMM throughput ({GEMM_N}², {threads} threads; cached per host in {path.parent})")
    rates = _probe(threads, pause)
    for name, old in ((cached or {}).get("gflops") or {}).items():
        if isinstance(old, (int, float)) and (not isinstance(rates.get(name), (int, float)) or old > rates[name]):
            rates[name] = old
    found = {**_key(threads), "gflops": rates, "probed": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
             "load_average": list(os.getloadavg())}
    try:
        atomic_write_text(path, json.dumps(found, indent=1) + "\n")
    except OSError as exc:  # a read-only cache costs a probe per run, not the run
        log(f"could not cache the GEMM probe in {path}: {exc}")
    return {**found, "cache": str(path), "cached": False}


def bound(macs: float | None, threads: int, log: Callable[[str], None], root: Path | None = None) -> dict:
    """The compute-bound section of a latency report: what 2·MACs take at the host's fp32 GEMM peak."""
    if not macs:
        return {"status": "skipped", "reason": "the model's MACs are unknown here (pass --model, or time an artifact edgevt exported)"}
    gemm = gemm_throughput(threads, log, root)
    rates = {k: v for k, v in gemm["gflops"].items() if isinstance(v, (int, float)) and v > 0}
    if not rates:
        return {"status": "skipped", "reason": "no GEMM probe could run (neither onnxruntime nor torch is usable)"}
    peak_by = max(rates, key=rates.get)
    return {"status": "measured", "macs": float(macs), "gflop": 2 * macs / 1e9, "gemm_gflops": gemm["gflops"], "peak_gflops": rates[peak_by],
            "peak_by": peak_by, "bound_ms": 2 * macs / (rates[peak_by] * 1e9) * 1e3, "threads": threads,
            "probe": {"n": GEMM_N, "probed": gemm.get("probed"), "cache": gemm["cache"], "cached": gemm["cached"],
                      "source": gemm.get("source", "probe")}, "note": NOTE}


def recheck(bound_section: dict, fp32_p50s: list[float], threads: int, log: Callable[[str], None],
            root: Path | None = None, pause: Callable[[], object] | None = None) -> dict:
    """No fp32 runtime can run the model's MACs faster than the host's fp32 GEMM peak. If one did (a p50 below the
    bound), the cached probe read low, taken while a shared host ran slow: probe again (the cache keeps the best rate)
    and recompute. A pinned rate (EDGEVT_GEMM_GFLOPS) is the user's and is left alone."""
    if bound_section.get("status") != "measured" or bound_section["probe"]["source"] != "probe":
        return bound_section
    fastest = min((p for p in fp32_p50s if isinstance(p, (int, float)) and p > 0), default=None)
    if fastest is None or fastest >= bound_section["bound_ms"]:
        return bound_section
    log(f"an fp32 runtime ran in {fastest:.3g} ms, faster than the cached GEMM probe's bound of "
        f"{bound_section['bound_ms']:.3g} ms: the probe read low, probing again")
    gemm_throughput(threads, log, root, pause, force=True)
    fresh = bound(bound_section["macs"], threads, log, root)
    if fresh.get("status") == "measured":
        fresh["reprobed"] = {"reason": "an fp32 runtime beat the cached probe's bound", "fastest_fp32_p50_ms": fastest,
                             "previous_bound_ms": bound_section["bound_ms"]}
    return fresh


def efficiency(bound_section: dict | None, p50_ms) -> float | None:
    """bound / p50: 1.0 means the runtime ran the model's MACs at the host's fp32 GEMM peak."""
    if not bound_section or bound_section.get("status") != "measured" or not isinstance(p50_ms, (int, float)) or p50_ms <= 0:
        return None
    return bound_section["bound_ms"] / p50_ms
