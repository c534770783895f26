"""Run a matrix: the pending cells go to an executor, results are cached and the reports rewritten after each cell."""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from edgevt.errors import EXIT_OK, EXIT_PARITY, EXIT_RUNTIME
from edgevt.matrix.cache import Cache, artifact_key, result_key, weights_identity
from edgevt.matrix.executors import CellTask, Executor, LocalExecutor
from edgevt.matrix.plan import Cell, MatrixPlan
from edgevt.parity import Precision

RETRYABLE = ("error", "crashed")  # what --retry-failed recomputes
NOT_CACHED = ("timeout", "pending")  # may pass next time without any change: never served from the cache
TRANSIENT_ERRORS = ("NodeLost",)  # the machine failed, not the cell: never served from the cache


def exit_code(entries: list[dict]) -> int:
    """3 if a cell could not run (error, crash, timeout), else 1 if a cell failed parity, else 0."""
    statuses = {e["status"] for e in entries}
    if statuses & {"error", "crashed", "timeout"}:
        return EXIT_RUNTIME
    return EXIT_PARITY if "fail" in statuses else EXIT_OK


def _keys(plan: MatrixPlan, cell: Cell, weights_ids: dict, host: dict) -> tuple[str | None, str | None]:
    from edgevt.exporters import get_target
    from edgevt.models.registry import spec_to_dict

    wid = weights_ids[cell.model]
    if wid is None:
        return None, None
    calibration = plan.calibration_digest() if cell.precision == Precision.INT8_STATIC.value else None
    akey = artifact_key(spec_to_dict(plan.specs[cell.model]), wid, get_target(cell.target), cell.precision, cell.options, calibration,
                        cell.rewrites)
    photos = plan.evaluation.digest() if plan.evaluation is not None else None
    return akey, result_key(akey, plan.seed, plan.tolerances, asdict(plan.bench), host, photos)


def new_entry(cell: Cell, status: str, akey: str | None = None, rkey: str | None = None) -> dict:
    return {"id": cell.id, "model": cell.model, "target": cell.target, "precision": cell.precision, "options": cell.options,
            "rewrites": list(cell.rewrites),
            "status": status, "cached": False, "seconds": None, "key": rkey, "artifact_key": akey, "model_info": None, "inputs": None,
            "artifact": None, "export": None, "parity": None, "latency": None, "host": None,
            "error": {"type": "Unsupported", "message": cell.unsupported, "hint": None, "exit_code": None, "signal": None}
            if cell.unsupported else None}


def _from_result(entry: dict, result: dict, cached: bool, log_path: str | None) -> dict:
    keep = ("status", "seconds", "model_info", "inputs", "artifact", "artifact_reused", "export", "parity", "latency", "error", "host")
    return {**entry, **{k: result.get(k) for k in keep}, "cached": cached, "log": log_path}


def _cacheable(result: dict) -> bool:
    """SIGKILL is usually the kernel's OOM killer on a busy machine; a timeout or a lost node says nothing about the cell."""
    error = result.get("error") or {}
    return result["status"] not in NOT_CACHED and error.get("signal") != "SIGKILL" and error.get("type") not in TRANSIENT_ERRORS


def _job(plan: MatrixPlan, cell: Cell, cache: Cache, akey: str | None, out_dir: Path, fresh: bool) -> dict:
    """Weights that cannot be pinned (Hub weights not in the local cache) get their artifact in the run's folder, remade every run."""
    from edgevt.models.registry import spec_to_dict

    art_dir = cache.artifact_dir(akey) if akey else out_dir / "artifacts" / log_name(cell)[:-4]
    return {"reuse_artifact": bool(akey) and not fresh,
            "cell": {"model": cell.model, "target": cell.target, "precision": cell.precision, "options": cell.options,
                     "rewrites": list(cell.rewrites)},
            "spec": spec_to_dict(plan.specs[cell.model]), "weights": plan.weights, "seed": plan.seed,
            "tolerances": plan.tolerances, "bench": asdict(plan.bench), "artifact_dir": str(art_dir), "cache_root": str(cache.root),
            "images": plan.images.to_dict(), "photos_digest": plan.evaluation.digest() if plan.evaluation else None,
            "calibration_digest": plan.calibration_digest() if cell.precision == Precision.INT8_STATIC.value else None}


def log_name(cell: Cell) -> str:
    return cell.id.replace("/", "__").replace(os.sep, "_") + ".log"


def plan_entries(plan: MatrixPlan, cache: Cache, out_dir: Path, retry_failed: bool, use_cache: bool, executor: Executor) -> list[dict]:
    """An entry per cell: unsupported, served from the cache, or pending."""
    host = executor.cache_host(plan.bench.threads)
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
            # results cached before cells recorded their host were measured under this same host key, i.e. here
            cached = {**cached, "host": cached.get("host") or executor.known_host()}
            entry = _from_result(entry, cached, True, str(log_path) if log_path.is_file() else None)
        entries.append(entry)
    return entries


def run_matrix(plan: MatrixPlan, cache: Cache, out_dir: Path, write: Callable[[list[dict]], None], progress,
               retry_failed: bool = False, fresh: bool = False, remeasure: bool = False, executor: Executor | None = None) -> list[dict]:
    """Every pending cell through the executor; `write(entries)` after each, so a killed run loses only the cells in flight."""
    executor = executor or LocalExecutor()
    cache.clean_stale()
    entries = plan_entries(plan, cache, out_dir, retry_failed, not (fresh or remeasure), executor)
    position = {cell.id: i for i, cell in enumerate(plan.cells)}
    tasks = [CellTask(cell, plan.specs[cell.model], _job(plan, cell, cache, entry["artifact_key"], out_dir, fresh),
                      out_dir / "logs" / log_name(cell), plan.cell_timeout_s, plan.bench.threads)
             for cell, entry in zip(plan.cells, entries) if entry["status"] == "pending"]
    if tasks:
        executor.prepare(tasks)
    write(entries)
    progress.begin(entries)

    def finished(task: CellTask, result: dict) -> None:
        i = position[task.cell.id]
        if entries[i]["key"] and _cacheable(result):
            cache.put_result(entries[i]["key"], result)
        entries[i] = _from_result(entries[i], result, False, str(task.log_path))
        write(entries)
        progress.finish(entries[i])

    if tasks:
        executor.run(tasks, cache, lambda task: progress.start(task.cell), finished)
    progress.end(entries)
    return entries
