"""`edgevt matrix --shard K/N` and `edgevt merge`: a cost-balanced, deterministic partition, and shards that merge back
into the report a single run writes; merge refuses what cannot be one plan's report (exit 2, nothing written)."""

from __future__ import annotations

import json
import socket
from dataclasses import replace
from pathlib import Path

import matrix_fixtures as fx
import pytest
from test_matrix import edgevt, env, matrix  # noqa: F401 — env is a fixture

from edgevt.errors import UsageError
from edgevt.matrix import make_plan
from edgevt.matrix.cost import cell_cost, model_size
from edgevt.matrix.shard import Shard, cell_costs, partition

# 4 cells: an ONNX export, a converter error, and two cells neither target can make
ARGS = ["-m", "tiny-swiftformer", "-t", "onnx,broken", "-p", "fp32,int8-weights"]


def full_plan(**kw):
    return make_plan("all", "onnx,coreml,tflite", "default,int8", None, "random", 0, {}, {}, kw.pop("bench", {}), None, **kw)


# --- the partition ------------------------------------------------------------------------------------------

def test_shards_cover_every_cell_once_and_balance_expected_cost_not_position():
    plan = full_plan()
    costs = cell_costs(plan)
    for count in (2, 3, 4, 8):
        shards = partition(costs, count)
        assert sorted(i for s in shards for i in s) == list(range(len(costs)))
        mean = sum(costs) / count
        loads = [sum(costs[i] for i in s) for s in shards]
        in_order = [sum(costs[i * len(costs) // count:(i + 1) * len(costs) // count]) for i in range(count)]
        assert max(loads) <= 1.05 * mean, (count, loads)  # cvt-w24's cells alone are 500 of ~3900
        assert max(in_order) > 1.4 * mean  # cutting the plan into runs of cells would not balance it


def test_the_partition_depends_on_the_command_line_only(monkeypatch):
    first = [c.id for c in full_plan(shard="2/3").cells]
    monkeypatch.setattr("os.cpu_count", lambda: 64)  # another runner: more cores, so more threads by default
    again = full_plan(shard="2/3")
    assert [c.id for c in again.cells] == first
    assert again.digest == full_plan().digest and again.shard["plan_cells"] == [c.id for c in full_plan().cells]


def test_the_plan_digest_changes_with_what_the_cells_compute():
    base = full_plan().digest
    assert full_plan(bench={"threads": 1}).digest != base  # asked for explicitly: part of the plan
    assert make_plan("all", "onnx,coreml,tflite", "default,int8", None, "random", 1, {}, {}, {}, None).digest != base
    assert make_plan("all", "onnx,coreml,tflite", "default", None, "random", 0, {}, {}, {}, None).digest != base
    assert make_plan("all", "onnx,coreml,tflite", "default,int8", None, "random", 0, {"opset": 17}, {}, {}, None).digest != base


def test_cost_follows_the_documented_model():
    plan = full_plan()
    cost = {c.id: cell_cost(c, plan.specs[c.model]) for c in plan.cells}
    assert cost["cvt-w24/onnx/int8-dynamic"] == pytest.approx((6 + 193.2) * 2.5)
    assert cost["swiftformer-xs/coreml/fp16"] == pytest.approx((6 + 0.6) * 1.6)
    assert cost["swiftformer-xs/tflite/fp32"] == pytest.approx(6.6)
    unsupported = make_plan("tiny-cvt", "onnx", "int8-weights", None, "random", 0, {}, {}, {}, None).cells[0]
    assert unsupported.unsupported and cell_cost(unsupported, plan.specs["swin-tiny"]) == 0


def test_an_unregistered_model_is_counted_on_the_meta_device():
    spec = full_plan().specs["swin-tiny"]
    counted = model_size(replace(spec, paper_gmacs=None, paper_params_m=None))
    assert counted == pytest.approx((spec.paper_gmacs, spec.paper_params_m), rel=0.02)  # FACTS: 4.35–4.5 G, 28 M


@pytest.mark.parametrize("text", ["0/2", "3/2", "1/0", "a/b", "2", "1/2/3"])
def test_a_bad_shard_is_a_usage_error(text):
    with pytest.raises(UsageError, match="--shard"):
        Shard.parse(text)


def test_a_bad_shard_exits_2_before_anything_is_written(env):
    out = env / "out"
    result = edgevt("matrix", "--weights", "random", "--out", str(out), *ARGS, "--shard", "3/2")
    assert result.exit_code == 2 and "K must be between 1 and N" in result.stderr
    assert not out.exists() and not (env / "cache").exists()


def test_ray_options_without_the_ray_executor_exit_2_before_anything_is_written(env):
    out = env / "out"
    result = edgevt("matrix", "--weights", "random", "--out", str(out), *ARGS, "--ray-label", "edgevt-kind=m7i")
    assert result.exit_code == 2 and "need --executor ray" in result.stderr and not out.exists()


def test_the_ray_executor_without_ray_exits_3_with_the_install_hint(env, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError, as where it is not installed
    out = env / "out"
    result = edgevt("matrix", "--weights", "random", "--out", str(out), *ARGS, "--executor", "ray")
    assert result.exit_code == 3 and "pip install 'edgevt[ray]'" in result.stderr and not out.exists()


# --- shards run, then merged --------------------------------------------------------------------------------

def _comparable(report: dict) -> list[tuple]:
    def cosines(c):
        return [round(o["cosine"], 6) for o in (c["parity"] or {}).get("outputs", [])]

    return [(c["id"], c["status"], (c["error"] or {}).get("type"), cosines(c), (c["artifact"] or {}).get("bytes")) for c in report["cells"]]


def test_two_shards_merged_equal_a_single_run(env, monkeypatch):
    single_result, single = matrix(env / "single", *ARGS)
    assert single_result.exit_code == 3  # the broken converter's cells error
    shards = []
    for k in (1, 2):
        monkeypatch.setenv("EDGEVT_CACHE_DIR", str(env / f"cache-{k}"))  # another machine: its own, empty cache
        result, rep = matrix(env / f"shard-{k}", *ARGS, "--shard", f"{k}/2")
        assert rep["matrix"]["shard"]["index"] == k and rep["summary"]["cached"] == 0
        shards.append((result.exit_code, [(c["id"], c["status"]) for c in rep["cells"]]))
    assert shards == [(0, [("tiny-swiftformer/onnx/fp32", "pass"), ("tiny-swiftformer/onnx/int8-weights", "unsupported")]),
                      (3, [("tiny-swiftformer/broken/fp32", "error"), ("tiny-swiftformer/broken/int8-weights", "unsupported")])]

    merged = edgevt("-q", "merge", str(env / "shard-1"), str(env / "shard-2"), "--out", str(env / "merged"), "--json")
    rep = json.loads(merged.output)
    assert merged.exit_code == single_result.exit_code
    assert _comparable(rep) == _comparable(single)
    assert rep["summary"] == single["summary"]
    assert rep["matrix"]["digest"] == single["matrix"]["digest"] and rep["matrix"]["shard"] is None
    assert [s["index"] for s in rep["matrix"]["shards"]] == [1, 2] and rep["matrix"]["missing_shards"] == []
    for cell in rep["cells"]:
        host = cell["host"]
        assert (host is None) == (cell["status"] == "unsupported")
        if host:
            assert host["hostname"] == socket.gethostname() and host["executor"] == "local" and host["kind"]
            assert Path(cell["log"]).parent == env / "merged" / "logs" and Path(cell["log"]).is_file()
    assert sorted(p.name for p in (env / "merged").iterdir()) == ["index.html", "junit.xml", "logs", "report.json", "report.md"]
    assert "Merged from 2 of 2 shards" in (env / "merged" / "report.md").read_text()


# --- merge refuses what is not one plan's shards (synthetic reports: nothing runs) ---------------------------

PLAN = ["m/onnx/fp32", "m/onnx/int8-dynamic", "m/tflite/fp32", "m/tflite/int8-dynamic"]


def _shard(root: Path, name: str, index: int, count: int, ids: list[str], digest: str = "ab" * 32, status: str = "pass") -> str:
    cells = [fx.cell(*i.split("/"), status=status) for i in ids]
    for c in cells:
        c["host"] = {"executor": "local", "hostname": f"runner-{index}", "cpu": "Test CPU", "logical_cpus": 2, "kind": "Test CPU, 2"}
        c["log"] = f"/home/runner/work/{name}/logs/{c['id'].replace('/', '__')}.log"
    rep = fx.report(cells)
    rep["matrix"].update(digest=digest, shard={"index": index, "count": count, "plan_cells": PLAN})
    (root / name / "logs").mkdir(parents=True)
    (root / name / "report.json").write_text(json.dumps(rep))
    (root / name / "logs" / "m__onnx__fp32.log").write_text("a cell's log\n")
    return str(root / name)


@pytest.fixture
def cli_env(tmp_path, monkeypatch, capsys):
    from test_matrix import CAPTURE

    CAPTURE["capsys"], CAPTURE["monkeypatch"] = capsys, monkeypatch
    return tmp_path


def test_merge_keeps_each_cells_host_and_copies_the_logs(cli_env):
    a = _shard(cli_env, "a", 1, 2, PLAN[:2])
    b = _shard(cli_env, "b", 2, 2, PLAN[2:], status="fail")
    result = edgevt("-q", "merge", b, a, "--out", str(cli_env / "out"), "--json")
    rep = json.loads(result.output)
    assert result.exit_code == 1  # a merged cell failed parity: the gate sees it
    assert [c["id"] for c in rep["cells"]] == PLAN  # plan order, whatever order the shards came in
    assert [c["host"]["hostname"] for c in rep["cells"]] == ["runner-1", "runner-1", "runner-2", "runner-2"]
    assert rep["cells"][0]["log"] == str(cli_env / "out" / "logs" / "m__onnx__fp32.log")
    assert (cli_env / "out" / "logs" / "m__onnx__fp32.log").read_text() == "a cell's log\n"


@pytest.mark.parametrize("case, message", [
    ("different plans", "shards of different plans"),
    ("shard twice", "is given twice"),
    ("overlap", "is in two shards"),
    ("missing shard", "shard(s) 2/2 missing"),
    ("not a matrix report", "is not a matrix report"),
    ("out is a shard", "is one of the shards"),
])
def test_merge_refuses_with_exit_2_and_writes_nothing(cli_env, case, message):
    a = _shard(cli_env, "a", 1, 2, PLAN[:2])
    others = {
        "different plans": lambda: [_shard(cli_env, "b", 2, 2, PLAN[2:], digest="cd" * 32)],
        "shard twice": lambda: [_shard(cli_env, "b", 1, 2, PLAN[2:])],
        "overlap": lambda: [_shard(cli_env, "b", 2, 2, PLAN[1:])],
        "missing shard": lambda: [],
        "not a matrix report": lambda: [str(cli_env / "export.json")],
        "out is a shard": lambda: [_shard(cli_env, "b", 2, 2, PLAN[2:])],
    }[case]()
    (cli_env / "export.json").write_text(json.dumps({"schema": "edgevt.report", "schema_version": 1, "command": "export"}))
    out = cli_env / ("b" if case == "out is a shard" else "out")
    before = sorted(p.name for p in out.rglob("*")) if out.exists() else None
    result = edgevt("merge", a, *others, "--out", str(out))
    assert result.exit_code == 2 and message in result.stderr, result.stderr
    assert (sorted(p.name for p in out.rglob("*")) if out.exists() else None) == before


def test_allow_missing_lists_the_missing_cells_as_pending(cli_env):
    a = _shard(cli_env, "a", 1, 3, PLAN[:2])
    result = edgevt("merge", a, "--out", str(cli_env / "out"), "--allow-missing")
    assert result.exit_code == 0 and "missing shards: 2/3, 3/3" in result.output
    rep = json.loads((cli_env / "out" / "report.json").read_text())
    assert [c["status"] for c in rep["cells"]] == ["pass", "pass", "pending", "pending"]
    assert rep["cells"][2]["error"]["type"] == "MissingShard" and rep["matrix"]["missing_shards"] == [2, 3]
    assert "(missing: 2/3, 3/3)" in (cli_env / "out" / "report.md").read_text()


def test_merging_imports_no_converter(cli_env):
    """The merge job of a CI workflow installs edgevt without its converters (docs/examples/matrix-shards.yml)."""
    import subprocess
    import sys

    a = _shard(cli_env, "a", 1, 1, PLAN)
    code = ("import sys; from edgevt.cli import main; sys.argv = ['edgevt', '-q', 'merge', sys.argv[1], '--out', sys.argv[2]]\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
            "heavy = {'torch', 'transformers', 'onnx', 'onnxruntime', 'coremltools', 'scipy', 'ai_edge_litert'} & set(sys.modules)\n"
            "assert not heavy, heavy")
    done = subprocess.run([sys.executable, "-c", code, a, str(cli_env / "out")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (cli_env / "out" / "index.html").is_file()


def test_the_example_workflow_runs_every_shard_once_with_a_valid_command():
    import yaml

    from edgevt.cli import matrix as matrix_command

    root = Path(__file__).parent.parent
    workflow = yaml.safe_load((root / "docs" / "examples" / "matrix-shards.yml").read_text())
    shard_job, merge_job = workflow["jobs"]["shard"], workflow["jobs"]["merge"]
    shards = shard_job["strategy"]["matrix"]["shard"]
    assert shards == list(range(1, len(shards) + 1)) and shard_job["strategy"]["fail-fast"] is False
    command = next(step["run"] for step in shard_job["steps"] if "edgevt matrix" in step.get("run", ""))
    assert f"--shard ${{{{ matrix.shard }}}}/{len(shards)}" in command
    args = command.replace("${{ matrix.shard }}", "1").split()[2:]
    ctx = matrix_command.make_context("matrix", args)  # every option exists and parses
    assert ctx.params["shard"] == f"1/{len(shards)}"
    assert merge_job["needs"] == "shard" and any("edgevt merge shards/shard-*" in step.get("run", "") for step in merge_job["steps"])
