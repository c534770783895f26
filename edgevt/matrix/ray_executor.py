"""`edgevt matrix --executor ray`: every cell a Ray task on whichever node of a cluster has room (pip install 'edgevt[ray]').

A task asks for a CPU per runtime thread and memory estimated from the model (cost.py), optionally only on nodes
with given labels (Ray's label selector, e.g. `ray start --labels edgevt-kind=m7i`). On its node it runs the same
worker as the local executor, in its own process, against a node-local scratch copy of the cache entry; the
artifact's bytes, the log and the result travel back through Ray's object store into the driver's cache and reports,
so the nodes need no shared filesystem. Ray runs a task again elsewhere when its worker or node dies (RETRIES
times); after that the cell is reported as crashed — never dropped, never passed — and not cached.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import tarfile
import tempfile
import time
from pathlib import Path

from edgevt.errors import RuntimeUnavailable, UsageError, first_line
from edgevt.matrix.executors import CellTask, Finished, Started, describe_host, machine_kind

RETRIES = 2  # runs of a cell after its worker or node was lost, before it is reported as crashed
STRANDED_AFTER_S = 120.0  # cells no live node can take any more (labels, CPUs) are reported as crashed after this long
FORWARDED_ENV = ("EDGEVT_", "HF_")  # prefixes of driver variables the cells see on every node (besides PYTHONPATH, OMP_WAIT_POLICY)
INSTALL = "pip install 'edgevt[ray]'"


def forwarded_env() -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV) and k != "EDGEVT_CACHE_DIR"}
    keep.update({k: os.environ[k] for k in ("PYTHONPATH", "OMP_WAIT_POLICY") if k in os.environ})
    return keep


def pack(directory: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(directory, arcname=".")
    return buf.getvalue()


def unpack(data: bytes, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(dest, filter="data") if hasattr(tarfile, "data_filter") else tar.extractall(dest)  # noqa: S202


def run_on_node(job: dict, shipped: bytes | None, timeout: float | None, shown_log: str) -> dict:
    """The Ray task: the worker in its own process on this node, against a node-local copy of the cell's cache entry."""
    import ray

    from edgevt.matrix.cache import Cache
    from edgevt.matrix.executors import run_cell_process
    from edgevt.matrix.worker import ENTRY

    node_cache = Cache(Path(tempfile.gettempdir()) / "edgevt-ray")
    node_cache.clean_stale()  # scratch of tasks whose worker was killed (cancelled, or lost with its node)
    scratch = node_cache.scratch()
    try:
        artifact_dir, work, log = scratch / "artifact", scratch / "work", scratch / "cell.log"
        work.mkdir()
        if shipped is not None:
            unpack(shipped, artifact_dir)
        # the driver's cache paths mean nothing here: the node's own (its host's GEMM probe, if the worker keeps one, too)
        node_job = {**job, "artifact_dir": str(artifact_dir), "cache_root": str(node_cache.root)}
        result = run_cell_process(node_job, work, log, timeout, Path(shown_log))
        made = pack(artifact_dir) if shipped is None and (artifact_dir / ENTRY).is_file() else None
        return {"result": result, "artifact": made, "log": log.read_bytes() if log.is_file() else b"",
                "node": {**describe_host("ray"), "node_id": ray.get_runtime_context().get_node_id()}}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _check_reachable(address: str | None, timeout: float = 5.0) -> None:
    """ray.init waits for an unreachable head for minutes, printing native warnings: a HOST:PORT that does not answer
    is refused up front."""
    import socket

    host, sep, port = (address or "").rpartition(":")
    if not sep or not port.isdigit() or "://" in address:
        return  # "auto", or an address form Ray resolves itself
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise UsageError(f"nothing answers at --ray-address {address} ({exc.strerror or exc})",
                         "pass the head's address as `ray start --head` printed it (HOST:PORT), or `auto` on a node of the cluster") from None


def _lost(exc: BaseException, why: str, hint: str) -> dict:
    return {"status": "crashed", "seconds": None, "host": None, "error": {
        "type": "NodeLost", "message": f"{why} ({type(exc).__name__}: {first_line(exc)})" if exc else why, "hint": hint,
        "exit_code": 3, "signal": None, "log_tail": ""}}


class RayExecutor:
    name = "ray"

    def __init__(self, address: str | None, labels: dict[str, str], log_dir: Path | None):
        try:
            import ray  # noqa: F401
        except ImportError:
            raise RuntimeUnavailable("--executor ray needs Ray, which is not installed", INSTALL) from None
        self.address, self.labels = address, dict(labels)
        self.log_dir = log_dir or Path("runs/matrix/logs")
        self._owned = False
        self._caps: dict[int, int] = {}
        self._handler: logging.Handler | None = None
        self._nodes: dict[str, dict] = {}

    def describe(self) -> dict:
        return {"name": self.name, "address": self.address or "local", "labels": self.labels, "retries": RETRIES}

    def cache_host(self, threads: int) -> dict:
        """Where a cell lands is Ray's choice: results are keyed by the cluster and labels asked for, not by a node."""
        where = self.address or {k: v for k, v in describe_host("ray").items() if k != "hostname"}
        from edgevt.bench import PROTOCOL

        return {"executor": "ray", "cluster": where, "labels": self.labels, "threads": threads,
                "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY") or "unset", "timing_protocol": PROTOCOL}

    def known_host(self) -> None:
        return None

    def __enter__(self) -> "RayExecutor":
        return self  # Ray starts (or is connected to) only when a cell has to run: a run served from the cache needs none

    def _connect(self) -> None:
        """Ray's own messages go to DIR/logs/ray.log, not to the user's terminal: its loggers, and what its driver
        thread prints to stdout (errors such as a node's raylet dying; edgevt itself prints nothing there during a run,
        so --json stays clean). ray.init clears the "ray" logger's handlers while it starts, so during that call its
        messages reach logging.lastResort: pointed at the file too."""
        import ray

        if not ray.is_initialized():
            _check_reachable(self.address)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_dir / "ray.log", "a", buffering=1)
        self._stdout = contextlib.redirect_stdout(self._log)
        self._stdout.__enter__()
        self._handler = logging.StreamHandler(self._log)
        self._handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        ray_logger = logging.getLogger("ray")
        self._saved = ray_logger.handlers[:], ray_logger.propagate
        if ray.is_initialized():
            ray_logger.handlers, ray_logger.propagate = [self._handler], False
            return  # a caller's own Ray session: use it, and leave it running
        last_resort, logging.lastResort = logging.lastResort, self._handler
        try:
            ray.init(address=self.address or "local", include_dashboard=False, log_to_driver=False, configure_logging=False,
                     runtime_env={"env_vars": forwarded_env()}, namespace="edgevt")
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise UsageError(f"cannot connect to the Ray cluster at {self.address}: {first_line(exc)}",
                             "pass the head's GCS address (HOST:6379) with --ray-address, or leave it out to start a local Ray") from None
        finally:
            logging.lastResort = last_resort
            ray_logger.handlers, ray_logger.propagate = [self._handler], False
        self._owned = True

    def __exit__(self, *exc) -> None:
        import ray

        if self._owned:
            ray.shutdown()
            self._owned = False
        if self._handler:
            ray_logger = logging.getLogger("ray")
            ray_logger.handlers, ray_logger.propagate = self._saved
            self._stdout.__exit__(None, None, None)
            self._log.close()
            self._handler = None

    def _alive_nodes(self) -> list[dict]:
        import ray

        nodes = ray.nodes()
        self._nodes.update({n["NodeID"]: n for n in nodes})
        return [n for n in nodes if n.get("Alive")]

    def _fits(self, node: dict, threads: int) -> bool:
        labels = node.get("Labels") or {}
        return node["Resources"].get("CPU", 0) >= threads and all(labels.get(k) == v for k, v in self.labels.items())

    def _memory_cap(self, threads: int) -> int:
        """No live node can take a task of this shape: a usage error, before anything is submitted."""
        fitting = [n for n in self._alive_nodes() if self._fits(n, threads)]
        if not fitting:
            wanted = f"{threads} CPUs" + "".join(f", label {k}={v}" for k, v in self.labels.items())
            raise UsageError(f"no node of the Ray cluster offers {wanted}",
                             "pass --threads N with N at most a node's CPUs, fix --ray-label, or add a node that has them")
        return int(max(n["Resources"].get("memory", 0) for n in fitting))

    def prepare(self, tasks: list[CellTask]) -> None:
        """Connect (or start a local Ray) and check that some live node can take these cells."""
        self._connect()
        self._caps = {t: self._memory_cap(t) for t in {task.threads for task in tasks}}

    def run(self, tasks: list[CellTask], cache, started: Started, finished: Finished) -> None:
        import ray

        from edgevt.matrix.cost import cell_resources

        remote = ray.remote(run_on_node)
        pending = {}
        try:
            for task in tasks:
                need = cell_resources(task.spec, task.threads)
                options = {"num_cpus": need["num_cpus"], "memory": min(need["memory"], self._caps[task.threads]),
                           "max_retries": RETRIES, "retry_exceptions": False, "name": f"edgevt-cell {task.cell.id}"}
                if self.labels:
                    options["label_selector"] = self.labels
                ref = remote.options(**options).remote(task.job, self._ship(task), task.timeout, str(task.log_path))
                pending[ref] = task
            self._collect_all(pending, cache, finished)
        except BaseException:  # Ctrl-C: the cells in flight stop with the run
            for ref in pending:
                ray.cancel(ref, force=True)
            raise

    def _ship(self, task: CellTask):
        """The cached artifact, when the cell may reuse it, goes to the node once through the object store."""
        import ray

        from edgevt.matrix.worker import ENTRY

        art = Path(task.job["artifact_dir"])
        return ray.put(pack(art)) if task.job.get("reuse_artifact") and (art / ENTRY).is_file() else None

    def _collect_all(self, pending: dict, cache, finished: Finished) -> None:
        import ray

        stranded_since = None
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1, timeout=2.0)
            for ref in done:
                task = pending.pop(ref)
                finished(task, self._collect(ref, task, cache))
            if done or not pending:
                continue
            threads = min(t.threads for t in pending.values())
            if any(self._fits(n, threads) for n in self._alive_nodes()):
                stranded_since = None
            elif stranded_since is None:
                stranded_since = time.monotonic()
            elif time.monotonic() - stranded_since > STRANDED_AFTER_S:
                for ref, task in list(pending.items()):
                    ray.cancel(ref, force=True)
                    finished(task, _lost(None, "no live node of the Ray cluster can run this cell any more",
                                         "the nodes that could were lost; add one and run the same command again to resume"))
                    del pending[ref]

    def _collect(self, ref, task: CellTask, cache) -> dict:
        import ray
        from ray import exceptions as rex

        try:
            out = ray.get(ref)
        except (rex.WorkerCrashedError, rex.NodeDiedError, rex.ObjectLostError, rex.LocalRayletDiedError) as exc:
            return _lost(exc, f"the Ray worker or node running this cell was lost {RETRIES + 1} times",
                         "check the nodes' health (ray status); run the same command again to resume")
        except rex.RayError as exc:
            return _lost(exc, "Ray could not run this cell", f"see {self.log_dir / 'ray.log'} and the Ray session logs")
        task.log_path.parent.mkdir(parents=True, exist_ok=True)
        task.log_path.write_bytes(out["log"])
        result = out["result"]
        if out["artifact"] is not None and result.get("artifact"):
            self._place(out["artifact"], Path(task.job["artifact_dir"]), cache)
        if result.get("artifact"):
            name = Path(result["artifact"]["path"]).name
            result["artifact"] = {**result["artifact"], "path": str(Path(task.job["artifact_dir"]) / name)}
        return {**result, "host": self._host(out["node"])}

    @staticmethod
    def _place(data: bytes, artifact_dir: Path, cache) -> None:
        from edgevt.fsio import place

        scratch = cache.scratch()
        try:
            unpack(data, scratch / "artifact")
            place(scratch / "artifact", artifact_dir)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _host(self, node: dict) -> dict:
        node_id = node.pop("node_id")
        if node_id not in self._nodes:
            self._alive_nodes()
        info = self._nodes.get(node_id, {})
        labels = {k: v for k, v in (info.get("Labels") or {}).items() if k != "ray.io/node-id"}
        node["kind"] = machine_kind(node, labels)
        node["node"] = {"id": node_id, "ip": info.get("NodeManagerAddress"), "name": info.get("NodeName"),
                        "resources": info.get("Resources"), "labels": labels}
        return node
