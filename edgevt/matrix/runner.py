"""Run a matrix: every cell in a subprocess, results cached and the reports rewritten after each cell."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from edgevt.errors import EXIT_OK, EXIT_PARITY, EXIT_RUNTIME
from edgevt.matrix.cache import Cache, artifact_key, result_key, weights_identity
from edgevt.matrix.plan import Cell, MatrixPlan

RETRYABLE = ("error", "crashed")  # what --retry-failed recomputes
NOT_CACHED = ("timeout", "pending")  # may pass next time without any change: never served from the cache


def exit_code(entries: list[dict]) -> int:
    """3 if a cell could not run (error, crash, timeout), else 1 if a cell failed parity, else 0."""
    statuses = {e["status"] for e in entries}
    if statuses & {"error", "crashed", "timeout"}:
        return EXIT_RUNTIME
    return EXIT_PARITY if "fail" in statuses else EXIT_OK


def _host(threads: int) -> dict:
    from edgevt.envinfo import cpu_model

    return {"cpu": cpu_model(), "logical_cpus": os.cpu_count(), "threads": threads, "platform": sys.platform,
            "omp_wait_policy": worker_env()["OMP_WAIT_POLICY"]}


def worker_env() -> dict:
    """torch's OpenMP threads spin while idle; interleaved with another runtime on few cores they starve it and make
    the speed-up vs torch eager look several times larger than it is. Passive waiting keeps the comparison fair."""
    return {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}


def _keys(plan: MatrixPlan, cell: Cell, weights_ids: dict, host: dict) -> tuple[str | None, str | None]:
    from edgevt.exporters import get_target
    from edgevt.models.registry import spec_to_dict

    wid = weights_ids[cell.model]
    if wid is None:
        return None, None
    akey = artifact_key(spec_to_dict(plan.specs[cell.model]), wid, get_target(cell.target), cell.precision, cell.options, cell.rewrites)
    return akey, result_key(akey, plan.seed, plan.tolerances, asdict(plan.bench), host)


def new_entry(cell: Cell, status: str, akey: str | None = None, rkey: str | None = None) -> dict:
    return {"id": cell.id, "model": cell.model, "target": cell.target, "precision": cell.precision, "options": cell.options,
            "rewrites": list(cell.rewrites),
            "status": status, "cached": False, "seconds": None, "key": rkey, "artifact_key": akey, "model_info": None,
            "artifact": None, "export": None, "parity": None, "latency": None,
            "error": {"type": "Unsupported", "message": cell.unsupported, "hint": None, "exit_code": None, "signal": None}
            if cell.unsupported else None}


def _from_result(entry: dict, result: dict, cached: bool, log_path: str | None) -> dict:
    keep = ("status", "seconds", "model_info", "artifact", "artifact_reused", "export", "parity", "latency", "error")
    return {**entry, **{k: result.get(k) for k in keep}, "cached": cached, "log": log_path}


def _die_with_parent() -> None:
    """Linux: the cell's process is killed if the matrix process dies (kill -9 included), so no orphan goes on."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(code).name
    except ValueError:
        return f"signal {code}"


def run_cell_process(job: dict, scratch: Path, log_path: Path, timeout: float | None) -> dict:
    """Run the worker; a crash, a timeout or a worker that wrote nothing become results too."""
    job = {**job, "scratch": str(scratch), "result_path": str(scratch / "result.json")}
    job_path = scratch / "job.json"
    job_path.write_text(json.dumps(job, default=str))
    log_path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with open(log_path, "w") as log_file:
        proc = subprocess.Popen([sys.executable, "-m", "edgevt.matrix.worker", str(job_path)], stdin=subprocess.DEVNULL, stdout=log_file,
                                stderr=subprocess.STDOUT, start_new_session=True, env=worker_env(),
                                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return {"status": "timeout", "seconds": round(time.perf_counter() - t0, 2), "error": {
                "type": "Timeout", "message": f"the cell ran past --cell-timeout ({timeout:g} s) and was stopped", "exit_code": 3,
                "hint": "raise --cell-timeout, or drop this cell", "signal": None, "log_tail": _tail(log_path)}}
        except BaseException:  # Ctrl-C: stop the cell with the run
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
    seconds = round(time.perf_counter() - t0, 2)
    result_path = scratch / "result.json"
    if rc == 0 and result_path.is_file():
        return json.loads(result_path.read_text())
    crashed = rc < 0
    why = f"killed by {_signal_name(-rc)}" if crashed else f"exited with code {rc} without a result"
    return {"status": "crashed" if crashed else "error", "seconds": seconds, "error": {
        "type": "Crash" if crashed else "WorkerError", "message": f"the cell's process was {why} (a crash inside a converter or runtime)",
        "hint": f"the native trace, if any, is in {log_path}", "exit_code": 3, "signal": _signal_name(-rc) if crashed else None,
        "log_tail": _tail(log_path)}}


def _cacheable(result: dict) -> bool:
    """SIGKILL is usually the kernel's OOM killer on a busy machine, and a timeout says nothing about the cell."""
    error = result.get("error") or {}
    return result["status"] not in NOT_CACHED and error.get("signal") != "SIGKILL"


def _job(plan: MatrixPlan, cell: Cell, cache: Cache, akey: str | None, out_dir: Path, fresh: bool) -> dict:
    """Weights that cannot be pinned (Hub weights not in the local cache) get their artifact in the run's folder, remade every run."""
    from edgevt.models.registry import spec_to_dict

    art_dir = cache.artifact_dir(akey) if akey else out_dir / "artifacts" / log_name(cell)[:-4]
    return {"reuse_artifact": bool(akey) and not fresh,
            "cell": {"model": cell.model, "target": cell.target, "precision": cell.precision, "options": cell.options,
                     "rewrites": list(cell.rewrites)},
            "spec": spec_to_dict(plan.specs[cell.model]), "weights": plan.weights, "seed": plan.seed,
            "tolerances": plan.tolerances, "bench": asdict(plan.bench), "artifact_dir": str(art_dir)}


def log_name(cell: Cell) -> str:
    return cell.id.replace("/", "__").replace(os.sep, "_") + ".log"


def plan_entries(plan: MatrixPlan, cache: Cache, out_dir: Path, retry_failed: bool, use_cache: bool) -> list[dict]:
    """An entry per cell: unsupported, served from the cache, or pending."""
    host = _host(plan.bench.threads)
    weights_ids = {name: weights_identity(spec, plan.weights, plan.seed) for name, spec in plan.specs.items()}
    entries = []
    for cell in plan.cells:
        if cell.unsupported:
            entries.append(new_entry(cell, "unsupported"))
            continue
        akey, rkey = _keys(plan, cell, weights_ids, host)
        entry = new_entry(cell, "pending", akey, rkey)
        cached = cache.get_result(rkey) if (rkey and use_cache) else None
        if cached and not (retry_failed and cached["status"] in RETRYABLE):
            log_path = out_dir / "logs" / log_name(cell)
            entry = _from_result(entry, cached, True, str(log_path) if log_path.is_file() else None)
        entries.append(entry)
    return entries


def run_matrix(plan: MatrixPlan, cache: Cache, out_dir: Path, write: Callable[[list[dict]], None], progress,
               retry_failed: bool = False, fresh: bool = False, remeasure: bool = False) -> list[dict]:
    """Every pending cell in turn; `write(entries)` after each, so a killed run loses at most the cell in flight."""
    cache.clean_stale()
    entries = plan_entries(plan, cache, out_dir, retry_failed, not (fresh or remeasure))
    write(entries)
    progress.begin(entries)
    for i, (cell, entry) in enumerate(zip(plan.cells, entries)):
        if entry["status"] != "pending":
            continue
        progress.start(cell)
        scratch = cache.scratch()
        try:
            log_path = out_dir / "logs" / log_name(cell)
            result = run_cell_process(_job(plan, cell, cache, entry["artifact_key"], out_dir, fresh), scratch, log_path, plan.cell_timeout_s)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        if entry["key"] and _cacheable(result):
            cache.put_result(entry["key"], result)
        entries[i] = _from_result(entry, result, False, str(log_path))
        write(entries)
        progress.finish(entries[i])
    progress.end(entries)
    return entries
