"""Who runs a matrix's cells. The runner hands an executor the pending cells and is told, cell by cell, what came back;
the plan, the cache and the reports are the same whichever executor ran them.

`local` runs them one after another, each in its own process on this machine; `ray` (ray_executor.py) runs each
as a Ray task on whichever node of a cluster has room. Both run the same worker, `python -m edgevt.matrix.worker`.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

from edgevt.matrix.plan import Cell

EXECUTORS = ("local", "ray")
KIND_LABEL = "edgevt-kind"  # a Ray node label that names the node's machine class in reports and compare


@dataclass
class CellTask:
    cell: Cell
    spec: Any  # the cell's ModelSpec (what a scheduler sizes the task by)
    job: dict  # the worker's job; its artifact_dir is in the driver's cache
    log_path: Path  # on the driver
    timeout: float | None
    threads: int


Started = Callable[[CellTask], None]
Finished = Callable[[CellTask, dict], None]


class Executor(Protocol):
    name: str

    def cache_host(self, threads: int) -> dict:
        """What a cached result's key says about where it was measured: a result is reused only under the same value."""

    def known_host(self) -> dict | None:
        """Where every cell runs, when that is known before they run (one machine); None on a cluster."""

    def describe(self) -> dict:
        """The executor as report.json's matrix.executor records it."""

    def prepare(self, tasks: list[CellTask]) -> None:
        """Whatever can fail as bad usage (no such cluster, no node that fits), before the first report is written."""

    def run(self, tasks: list[CellTask], cache, started: Started, finished: Finished) -> None:
        """Run every task; call finished(task, result) on this thread as each one ends (the result carries its "host")."""

    def __enter__(self) -> "Executor": ...

    def __exit__(self, *exc) -> None: ...


def describe_host(executor: str) -> dict:
    """The machine this process runs on, as each cell's report entry records it."""
    from edgevt.envinfo import cpu_model

    host = {"executor": executor, "hostname": socket.gethostname(), "cpu": cpu_model(), "logical_cpus": os.cpu_count(),
            "machine": platform.machine(), "os": f"{platform.system()} {platform.release()}"}
    return {**host, "kind": machine_kind(host)}


def machine_kind(host: dict, labels: dict | None = None) -> str:
    """Latency is only comparable between cells timed on one kind of machine: a node's `edgevt-kind` label, else its CPU."""
    return (labels or {}).get(KIND_LABEL) or f"{host.get('cpu')}, {host.get('logical_cpus')} logical CPUs, {host.get('machine')}"


def _die_with_parent() -> None:
    """Linux: the cell's process is killed if its parent dies (kill -9 included), so no orphan goes on."""
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


def run_cell_process(job: dict, scratch: Path, log_path: Path, timeout: float | None, shown_log: Path | None = None) -> dict:
    """Run the worker; a crash, a timeout or a worker that wrote nothing become results too.
    shown_log: where the log will be for the reader (the driver's copy, when this runs on another node)."""
    job = {**job, "scratch": str(scratch), "result_path": str(scratch / "result.json")}
    job_path = scratch / "job.json"
    job_path.write_text(json.dumps(job, default=str))
    log_path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with open(log_path, "w") as log_file:
        proc = subprocess.Popen([sys.executable, "-m", "edgevt.matrix.worker", str(job_path)], stdin=subprocess.DEVNULL, stdout=log_file,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return {"status": "timeout", "seconds": round(time.perf_counter() - t0, 2), "error": {
                "type": "Timeout", "message": f"the cell ran past --cell-timeout ({timeout:g} s) and was stopped", "exit_code": 3,
                "hint": "raise --cell-timeout, or drop this cell", "signal": None, "log_tail": _tail(log_path)}}
        except BaseException:  # Ctrl-C, or the task cancelled: stop the cell with the run
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
        "hint": f"the native trace, if any, is in {shown_log or log_path}", "exit_code": 3, "signal": _signal_name(-rc) if crashed else None,
        "log_tail": _tail(log_path)}}


class LocalExecutor:
    """One cell after another, each in its own process on this machine."""

    name = "local"

    def __init__(self):
        self.host = describe_host(self.name)

    def __enter__(self) -> "LocalExecutor":
        return self

    def __exit__(self, *exc) -> None:
        return None

    def cache_host(self, threads: int) -> dict:
        """The machine, the threads and the timing protocol (unchanged from before executors, so earlier caches stay valid)."""
        from edgevt.bench import PROTOCOL
        from edgevt.envinfo import cpu_model

        return {"cpu": cpu_model(), "logical_cpus": os.cpu_count(), "threads": threads, "platform": sys.platform,
                "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY") or "unset", "timing_protocol": PROTOCOL}

    def known_host(self) -> dict:
        return self.host

    def describe(self) -> dict:
        return {"name": self.name}

    def prepare(self, tasks: list[CellTask]) -> None:
        return None

    def run(self, tasks: list[CellTask], cache, started: Started, finished: Finished) -> None:
        for task in tasks:
            started(task)
            scratch = cache.scratch()
            try:
                result = run_cell_process(task.job, scratch, task.log_path, task.timeout)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
            finished(task, {**result, "host": self.host})


def get_executor(name: str, ray_address: str | None = None, ray_labels: dict | None = None, log_dir: Path | None = None) -> Executor:
    from edgevt.errors import UsageError

    if name == "local":
        if ray_address or ray_labels:
            raise UsageError("--ray-address and --ray-label need --executor ray", "add --executor ray, or drop the Ray options")
        return LocalExecutor()
    if name == "ray":
        from edgevt.matrix.ray_executor import RayExecutor

        return RayExecutor(ray_address, ray_labels or {}, log_dir)
    raise UsageError(f"unknown executor {name!r}", f"choose from {', '.join(EXECUTORS)}")
