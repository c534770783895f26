"""`edgevt merge DIR... --out DIR`: the outputs of `edgevt matrix --shard K/N` jobs as one matrix report.

Every check runs before anything is written: shards of different plans, a shard given twice, a cell in two
shards, or shards (cells) missing without --allow-missing are bad input, and --out is left untouched.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from edgevt import REPORT_SCHEMA_VERSION
from edgevt.errors import UsageError

HINT = "pass the output directories of `edgevt matrix --shard K/N` runs (or their report.json files)"


@dataclass
class ShardRun:
    path: Path  # the report.json
    report: dict

    @property
    def shard(self) -> dict:
        """A run without --shard is the only shard of its plan."""
        return self.report["matrix"].get("shard") or {"index": 1, "count": 1, "plan_cells": [c["id"] for c in self.report["cells"]]}

    @property
    def name(self) -> str:
        return f"{self.path.parent if self.path.name == 'report.json' else self.path} (shard {self.shard['index']}/{self.shard['count']})"


def load(path: Path) -> ShardRun:
    file = path / "report.json" if path.is_dir() else path
    try:
        data = json.loads(file.read_text())
    except FileNotFoundError:
        raise UsageError(f"{path} has no report.json" if path.is_dir() else f"{path} does not exist", HINT) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"cannot read {file}: {exc}", HINT) from None
    if not isinstance(data, dict) or data.get("schema") != "edgevt.report" or data.get("command") != "matrix":
        raise UsageError(f"{file} is not a matrix report (schema edgevt.report, command matrix)", HINT)
    if not isinstance(data.get("schema_version"), int) or data["schema_version"] > REPORT_SCHEMA_VERSION:
        raise UsageError(f"{file} has report schema_version {data.get('schema_version')!r}; this edgevt reads up to "
                         f"{REPORT_SCHEMA_VERSION}", "merge with the edgevt version that wrote the shards")
    if not (data.get("matrix") or {}).get("digest") or not isinstance(data.get("cells"), list):
        raise UsageError(f"{file} records no plan digest (written by an edgevt without --shard support)", "re-run the shards with this edgevt")
    return ShardRun(file, data)


def check(runs: list[ShardRun], allow_missing: bool) -> tuple[list[str], list[int]]:
    """(the plan's cell ids, missing shard numbers); a UsageError for anything that cannot be merged."""
    first = runs[0]
    for run in runs[1:]:
        if run.report["matrix"]["digest"] != first.report["matrix"]["digest"] or run.shard["count"] != first.shard["count"]:
            raise UsageError(f"{run.name} and {first.name} are shards of different plans (plan digest "
                             f"{run.report['matrix']['digest'][:12]} vs {first.report['matrix']['digest'][:12]})",
                             "merge shards run with the same command line (models, targets, precisions, options, seed, bench, "
                             "--shard K/N) and the same edgevt")
    seen: dict[int, ShardRun] = {}
    owner: dict[str, ShardRun] = {}
    plan = first.shard["plan_cells"]
    for run in runs:
        if run.shard["index"] in seen:
            raise UsageError(f"shard {run.shard['index']}/{run.shard['count']} is given twice: {seen[run.shard['index']].path} and "
                             f"{run.path}", "pass each shard's directory once")
        seen[run.shard["index"]] = run
        for cell in run.report["cells"]:
            if cell["id"] in owner:
                raise UsageError(f"cell {cell['id']} is in two shards: {owner[cell['id']].name} and {run.name}",
                                 "the shards overlap; re-run them with the same command line and --shard 1/N … N/N")
            if cell["id"] not in plan:
                raise UsageError(f"{run.name} has a cell {cell['id']} that is not in the plan", "the report was edited; re-run that shard")
            owner[cell["id"]] = run
    missing_shards = sorted(set(range(1, first.shard["count"] + 1)) - set(seen))
    missing_cells = [c for c in plan if c not in owner]
    if missing_cells and not allow_missing:
        count = first.shard["count"]
        what = (f"shard(s) {', '.join(f'{k}/{count}' for k in missing_shards)} missing" if missing_shards
                else f"{len(missing_cells)} cell(s) of the plan in no shard")
        raise UsageError(f"{what}: {len(missing_cells)} of {len(plan)} cells have no result (e.g. {missing_cells[0]})",
                         "pass every shard's directory, or --allow-missing to list the missing cells as pending")
    return plan, missing_shards


def _missing_entry(cell_id: str) -> dict:
    from edgevt.matrix.plan import Cell
    from edgevt.matrix.runner import new_entry

    model, target, precision = cell_id.rsplit("/", 2)
    entry = new_entry(Cell(model, target, precision), "pending")
    entry["error"] = {"type": "MissingShard", "message": "not in any merged shard (merged with --allow-missing)", "hint": None,
                      "exit_code": None, "signal": None}
    return entry


def _copy_log(entry: dict, run: ShardRun, out_dir: Path) -> dict:
    """A shard's cell log, when its directory came along, is copied beside the merged report."""
    name = Path(entry["log"]).name if entry.get("log") else None
    src = run.path.parent / "logs" / name if name else None
    if not (src and src.is_file()):
        return entry
    dest = out_dir / "logs" / name
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)
    return {**entry, "log": str(dest)}


def merge(paths: list[Path], out_dir: Path, allow_missing: bool = False) -> tuple[dict, int, list[int]]:
    """Write the merged report.json, report.md, junit.xml and index.html; (report, exit code, missing shard numbers)."""
    from edgevt.matrix import reports
    from edgevt.matrix.runner import exit_code

    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out_dir} is a file", "pass a directory for the merged reports")
    runs = sorted((load(Path(p)) for p in paths), key=lambda r: r.shard["index"])
    if any(out_dir.resolve() == r.path.parent.resolve() for r in runs):
        raise UsageError(f"--out {out_dir} is one of the shards being merged", "write the merged report to a new directory")
    plan, missing_shards = check(runs, allow_missing)
    cells = {c["id"]: (c, run) for run in runs for c in run.report["cells"]}
    entries = [_copy_log(*cells[i], out_dir) if i in cells else _missing_entry(i) for i in plan]
    first = runs[0].report
    info = {**first["matrix"], "shard": None, "missing_shards": missing_shards,
            "shards": [{"index": r.shard["index"], "count": r.shard["count"], "path": str(r.path), "created": r.report.get("created"),
                        "argv": r.report.get("argv"), "executor": r.report["matrix"].get("executor"),
                        "environment": r.report.get("environment")} for r in runs]}
    report = reports.build(info, entries, first.get("environment") or {})
    reports.write_all(report, out_dir)
    return report, exit_code(entries), missing_shards
