"""A throwaway Ray cluster on this machine for the Ray executor's tests: a head and worker nodes, each a `ray start
--block` process of its own (a node dies with its process tree), all under one short temp dir.

`close()` kills every process of the cluster: each node's process tree, and any process whose command line names
the cluster's temp dir (Ray's daemons). Never `ray stop`: that would stop every Ray cluster on the machine.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

RAY = str(Path(sys.executable).parent / "ray")  # the ray CLI of this venv: nodes run this Python and this edgevt
# The GCS marks a silent node dead after 3 missed 1-second health checks (Ray's default: 5 missed 3-second ones)
FAST_NODE_DEATH = {"health_check_period_ms": 1000, "health_check_timeout_ms": 1000, "health_check_failure_threshold": 3}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self):
        self.temp = Path(tempfile.mkdtemp(prefix="evr", dir="/tmp"))  # Ray's socket paths must stay short
        self.nodes: dict[str, subprocess.Popen] = {}
        self.address: str | None = None

    def _start(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.temp / f"{name}.out", "w")
        proc = subprocess.Popen([RAY, "start", "--block", "--node-ip-address=127.0.0.1", "--disable-usage-stats", *args],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                                env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
        self.nodes[name] = proc
        return proc

    def start_head(self, cpus: int) -> str:
        port = free_port()
        self._start("head", ["--head", f"--port={port}", f"--num-cpus={cpus}", f"--temp-dir={self.temp}", "--include-dashboard=false",
                             f"--dashboard-port={free_port()}", f"--system-config={json.dumps(FAST_NODE_DEATH)}"])
        self.address = f"127.0.0.1:{port}"
        return self.address

    def add_node(self, name: str, cpus: int, labels: str = "") -> subprocess.Popen:
        return self._start(name, [f"--address={self.address}", f"--num-cpus={cpus}", *([f"--labels={labels}"] if labels else [])])

    def wait_for(self, alive: int, timeout: float = 90.0) -> list[dict]:
        """Until `alive` nodes are up; their ray.nodes() records (the test's own connection is closed again)."""
        import ray

        deadline = time.time() + timeout
        while time.time() < deadline:
            for name, proc in self.nodes.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"ray node {name} exited: {(self.temp / f'{name}.out').read_text()[-2000:]}")
            if not (self.temp / "ray_current_cluster").is_file():  # the head is up (ray.init would block until it is)
                time.sleep(0.5)
                continue
            try:
                ray.init(address=self.address, log_to_driver=False, logging_level="ERROR")
                nodes = [n for n in ray.nodes() if n["Alive"]]
            except ConnectionError:
                nodes = []
            finally:
                ray.shutdown()
            if len(nodes) >= alive:
                return nodes
            time.sleep(1.0)
        raise TimeoutError(f"the Ray cluster did not reach {alive} nodes in {timeout:.0f} s")

    def owns(self, pid: int, name: str) -> bool:
        """Whether process pid runs on node `name` (is a descendant of that node's `ray start`)."""
        try:
            return self.nodes[name].pid in [p.pid for p in psutil.Process(pid).parents()]
        except psutil.NoSuchProcess:
            return False

    def kill(self, name: str) -> None:
        """The node dies at once, as a machine that loses power: SIGKILL to its whole process tree."""
        _kill_trees([psutil.Process(self.nodes[name].pid)])
        self.nodes[name].wait()

    def close(self) -> None:
        roots = []
        for proc in self.nodes.values():
            try:
                roots.append(psutil.Process(proc.pid))
            except psutil.NoSuchProcess:
                pass
        for proc in psutil.process_iter(["cmdline"]):
            if any(str(self.temp) in arg for arg in proc.info["cmdline"] or []):
                roots.append(proc)
        _kill_trees(roots)
        for proc in self.nodes.values():
            proc.wait()
        shutil.rmtree(self.temp, ignore_errors=True)


def _kill_trees(roots: list[psutil.Process]) -> None:
    found: dict[int, psutil.Process] = {}
    for root in roots:
        try:
            found.update({p.pid: p for p in [root, *root.children(recursive=True)]})
        except psutil.NoSuchProcess:
            pass
    for proc in found.values():
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(list(found.values()), timeout=10)
