"""`edgevt matrix --executor ray`: cells as Ray tasks, on a local Ray instance and on a two-node cluster of this
machine's own; a node killed mid-run loses no cell. Skipped, saying so, where Ray is not installed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("ray", reason="Ray is not installed: the Ray executor's tests need `pip install 'edgevt[ray]'`")

from ray_cluster import Cluster  # noqa: E402
from test_matrix import FAULTS, edgevt, env  # noqa: E402,F401 — env is a fixture

RUN = ["--weights", "random", "--runs", "3", "--warmup", "1", "--threads", "1", "--executor", "ray", "--json"]


@pytest.fixture
def ray_env(env, monkeypatch):
    """The fault targets and a slow ONNX target; Ray without token auth (Ray would otherwise write ~/.ray/auth_token);
    a local Ray instance's session files in a short temp dir of the test's own (Ray's sockets need short paths)."""
    monkeypatch.setenv("EDGEVT_EXTRA_TARGETS", FAULTS + ",slow=slow_onnx")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    ray_tmp = tempfile.mkdtemp(prefix="evl", dir="/tmp")
    monkeypatch.setenv("RAY_TMPDIR", ray_tmp)
    (env / "nodes-tmp").mkdir()
    monkeypatch.setenv("TMPDIR", str(env / "nodes-tmp"))  # the nodes' scratch (a killed node leaves its cell's behind)
    yield env
    shutil.rmtree(ray_tmp, ignore_errors=True)


@pytest.fixture
def cluster(ray_env):
    c = Cluster()
    try:
        yield c
    finally:
        c.close()  # every process of the cluster, whatever the test did


def run(out: Path, *args: str, quiet: bool = True):
    result = edgevt(*["-q"] * quiet, "matrix", "--out", str(out), *RUN, *args)
    assert result.output.strip().startswith("{"), (result.output[-3000:], result.stderr[-3000:])
    return result, json.loads(result.output)


def test_a_local_ray_instance_runs_the_cells_and_a_rerun_is_served_from_the_cache(ray_env):
    out = ray_env / "run"
    result, rep = run(out, "-m", "tiny-swiftformer", "-t", "segfault,broken", quiet=False)
    assert result.exit_code == 3, result.stderr
    by_id = {c["id"]: c for c in rep["cells"]}
    crashed, broken = by_id["tiny-swiftformer/segfault/fp32"], by_id["tiny-swiftformer/broken/fp32"]
    assert crashed["status"] == "crashed" and crashed["error"]["signal"] == "SIGSEGV"  # a crash in the cell, not a lost node
    assert broken["status"] == "error" and "aten::imaginary" in broken["error"]["message"]
    for cell in rep["cells"]:
        assert cell["host"]["executor"] == "ray" and len(cell["host"]["node"]["id"]) == 56 and cell["host"]["kind"]
        assert Path(cell["log"]).is_file() and "[cell " in Path(cell["log"]).read_text()  # the node's log, brought back
    assert rep["matrix"]["executor"] == {"name": "ray", "address": "local", "labels": {}, "retries": 2}
    assert "Started a local Ray instance" in (out / "logs" / "ray.log").read_text()
    assert "matrix: 2 cells" in result.stderr and "Ray" not in result.stderr  # progress, but none of Ray's own messages

    t0 = time.perf_counter()
    again, rep2 = run(out, "-m", "tiny-swiftformer", "-t", "segfault,broken")
    assert again.exit_code == 3 and rep2["summary"]["cached"] == 2
    assert [c["host"] for c in rep2["cells"]] == [c["host"] for c in rep["cells"]]  # where it was measured, not where it was read
    assert time.perf_counter() - t0 < 10  # served from the cache without starting Ray


def _kill_when_started(cluster: Cluster, node: str, markers: Path, killed: dict, done: threading.Event) -> None:
    """Kill `node` as soon as a cell's export has begun on it (the slow target writes PID.started, then waits)."""
    while not done.is_set():
        for marker in markers.glob("*.started"):
            if cluster.owns(int(marker.name.split(".")[0]), node):
                killed["model"] = marker.read_text()
                cluster.kill(node)
                return
        time.sleep(0.2)


def test_a_node_lost_mid_run_loses_no_cell(cluster, ray_env, monkeypatch):
    markers = ray_env / "markers"
    markers.mkdir()
    monkeypatch.setenv("EDGEVT_TEST_SLOW_DIR", str(markers))
    monkeypatch.setenv("EDGEVT_TEST_SLOW_S", "2")
    address = cluster.start_head(cpus=1)
    cluster.add_node("doomed", cpus=1, labels="edgevt-kind=doomed")
    head = next(n["NodeID"] for n in cluster.wait_for(2) if "edgevt-kind" not in n["Labels"])

    killed, done = {}, threading.Event()
    watcher = threading.Thread(target=_kill_when_started, args=(cluster, "doomed", markers, killed, done), daemon=True)
    watcher.start()
    # two cells, one CPU per node: Ray runs one on each node, and the one on the doomed node dies with it
    try:
        result, rep = run(ray_env / "run", "-m", "tiny-swiftformer,tiny-cvt", "-t", "slow", "--ray-address", address)
    finally:
        done.set()
        watcher.join()
    assert killed, "no cell started on the second node"
    assert result.exit_code == 0, result.stderr
    assert [c["status"] for c in rep["cells"]] == ["pass", "pass"]
    assert {c["host"]["node"]["id"] for c in rep["cells"]} == {head}  # the lost node's cell ran again on the head
    assert len(list(markers.glob("*.started"))) == 3  # two cells, one of them started twice
    text = (ray_env / "run" / "report.md").read_text()
    assert "Cells ran on" in text and head[:8] in text  # the report names the node


def test_a_cell_pinned_to_a_lost_machine_class_is_crashed_not_lost(cluster, ray_env, monkeypatch):
    from edgevt.matrix import ray_executor

    markers = ray_env / "markers"
    markers.mkdir()
    monkeypatch.setenv("EDGEVT_TEST_SLOW_DIR", str(markers))
    monkeypatch.setenv("EDGEVT_TEST_SLOW_S", "30")
    monkeypatch.setattr(ray_executor, "STRANDED_AFTER_S", 3.0)
    address = cluster.start_head(cpus=1)
    cluster.add_node("timing", cpus=1, labels="edgevt-kind=timing")
    cluster.wait_for(2)

    killed, done = {}, threading.Event()
    watcher = threading.Thread(target=_kill_when_started, args=(cluster, "timing", markers, killed, done), daemon=True)
    watcher.start()
    try:
        result, rep = run(ray_env / "run", "-m", "tiny-swiftformer", "-t", "slow", "--ray-address", address, "--ray-label",
                          "edgevt-kind=timing")
    finally:
        done.set()
        watcher.join()
    assert killed == {"model": "tiny-swiftformer"}
    cell = rep["cells"][0]
    assert result.exit_code == 3 and cell["status"] == "crashed" and cell["error"]["type"] == "NodeLost"
    assert "no live node" in cell["error"]["message"]
    assert not list((ray_env / "cache").glob("results/*/*.json"))  # a lost machine says nothing about the cell: not cached


def _sigint_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_cancels_the_cells_in_flight_and_stops_the_local_ray(ray_env):
    import psutil

    from test_matrix import TESTS

    markers, out = ray_env / "markers", ray_env / "run"
    markers.mkdir()
    args = ["matrix", "-m", "tiny-swiftformer", "-t", "slow", "--out", str(out), *RUN[:-1]]
    script = f"import sys; sys.path.insert(0, {str(TESTS)!r}); import conftest; from edgevt.cli import main; sys.argv = ['edgevt'] + {args!r}; main()"
    env = {**os.environ, "EDGEVT_TEST_SLOW_DIR": str(markers), "EDGEVT_TEST_SLOW_S": "300"}
    # SIGINT at its default in the run, whatever this process inherited: a shell script's background job (`.ci/run &`)
    # starts with SIGINT ignored, and Python then keeps it ignored; Ctrl-C would never reach the run
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                            preexec_fn=_sigint_default)
    try:
        deadline = time.time() + 120
        while not list(markers.glob("*.started")) and time.time() < deadline and proc.poll() is None:
            time.sleep(0.3)
        cells = [int(m.name.split(".")[0]) for m in markers.glob("*.started")]
        assert cells, "the cell did not start"
        proc.send_signal(signal.SIGINT)
        # about 4 s on a quiet machine
        assert proc.wait(180) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
    time.sleep(1)
    alive = [p for p in psutil.process_iter(["cmdline"]) if any(os.environ["RAY_TMPDIR"] in a for a in p.info["cmdline"] or [])]
    assert not [c for c in cells if psutil.pid_exists(c) and psutil.Process(c).status() != psutil.STATUS_ZOMBIE]
    assert alive == []  # the local Ray instance went down with the run
    assert "run the same command again to resume" in proc.stderr.read().decode()
    assert json.loads((out / "report.json").read_text())["cells"][0]["status"] == "pending"


def test_an_address_where_nothing_answers_exits_2_and_writes_nothing(ray_env):
    from ray_cluster import free_port

    out = ray_env / "run"
    result = edgevt("matrix", "--out", str(out), *RUN, "-m", "tiny-swiftformer", "-t", "broken", "--ray-address", f"127.0.0.1:{free_port()}")
    assert result.exit_code == 2 and "nothing answers at --ray-address" in result.stderr
    assert not out.exists()
