"""What the all-variants benchmark scripts share: their command line, starting or resuming a report, merging a cell."""

from __future__ import annotations

import argparse
import fnmatch
import json
import shlex
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def arg_parser(doc: str, precisions: str, runs_dir: Path, out: Path) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--models", default="*", help="comma-separated names or globs (default: all)")
    ap.add_argument("--precisions", default=precisions)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs-dir", type=Path, default=runs_dir)
    ap.add_argument("--out", type=Path, default=out)
    ap.add_argument("--render-only", action="store_true", help="rewrite the .md from the existing .json, run nothing")
    ap.add_argument("--update", action="store_true", help="run only the selected cells and merge them into the existing report")
    return ap


def start(args, script: str) -> tuple[list[dict], dict]:
    """(cells, meta): a new report, or the existing one with an `updates` entry for this run (--update, --render-only)."""
    from edgevt.envinfo import environment

    now = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    command = f"python benchmarks/{script} {shlex.join(sys.argv[1:])}".strip()
    if not (args.render_only or args.update):
        return [], {"command": command, "started": now, "environment": environment(args.threads), "updates": []}
    meta = json.loads(args.out.read_text())
    cells = meta.pop("cells")
    meta.setdefault("updates", [])
    if args.update:
        meta["updates"].append({"command": command, "at": now, "cells": [],
                                "packages_changed": packages_changed(meta, args.threads)})
    return cells, meta


def packages_changed(meta: dict, threads: int) -> dict:
    """The packages whose versions differ from the ones the report's header names: a later --update or --time-only
    run may come from another venv, and its cells must say so."""
    from edgevt.envinfo import environment

    first, now = meta["environment"]["packages"], environment(threads)["packages"]
    return {name: version for name, version in now.items() if first.get(name) != version}


def changed_text(entry: dict) -> str:
    """What a report line adds for an update whose packages differ from the header's (e.g. ', with transformers 5.25.0')."""
    changed = entry.get("packages_changed") or {}
    return (", with " + ", ".join(f"{k} {v}" for k, v in changed.items())) if changed else ""


def selected_models(args) -> list:
    from edgevt.models import list_models

    patterns = args.models.split(",")
    return [m for m in list_models() if any(fnmatch.fnmatch(m.name, p) for p in patterns)]


def record(cells: list[dict], meta: dict, cell: dict, update: bool) -> None:
    """Put a finished cell in place of an earlier run of the same (model, precision), or append it."""
    key = (cell["model"], cell["precision"])
    at = next((i for i, c in enumerate(cells) if (c["model"], c["precision"]) == key), None)
    if at is None:
        cells.append(cell)
    else:
        cells[at] = cell
    if update:
        meta["updates"][-1]["cells"].append(f"{cell['model']} {cell['precision']}")


def not_run(cells: list[dict], precisions: list[str], script: str) -> list[str]:
    """Cells of the full table that the report does not have yet, with the command that adds them."""
    from edgevt.models import list_models

    have = {(c["model"], c["precision"]) for c in cells}
    lines = []
    for precision in precisions:
        missing = [m.name for m in list_models() if not m.name.startswith("tiny-") and (m.name, precision) not in have]
        if missing:
            lines.append(f"Not run yet at {precision}: {', '.join(missing)} "
                         f"(`python benchmarks/{script} --update --precisions {precision} --models {','.join(missing)}`).")
    return lines + [""] if lines else []


def save_json(cells: list[dict], out: Path, meta: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({**meta, "cells": cells}, indent=1) + "\n")


def fmt(value, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def times(value) -> str:
    """A ratio as '1.23×', or '—'."""
    return "—" if value is None else f"{value:.2f}×"


def flip_note(parity: dict) -> str:
    """' (N flips, ref. margin <= M)' for the photos whose top-1 changed; empty when none did."""
    flips = parity.get("top1_disagreements") or []
    if not flips:
        return ""
    return f" ({len(flips)} flip{'s' if len(flips) > 1 else ''}, ref. margin ≤ {max(d['reference_margin'] for d in flips):.2g})"


def inputs_text(reports: list[dict]) -> str:
    """What parity ran on, from the cells' own reports (their `inputs` section), not from what the script expects."""
    seen = {r["inputs"].get("photos"): r["inputs"] for r in reports if (r.get("inputs") or {}).get("photos")}
    if not seen:
        return "the photos of each cell's report"
    parts = []
    for photos, inputs in seen.items():
        recipe = (inputs.get("images") or {}).get("recipe")
        parts.append(f"{photos} photos{f' ({recipe})' if recipe else ''} + {inputs.get('noise', 0)} seeded noise tensors")
    return " / ".join(parts) + f"; top-1 agreement is over the photos, so one flipped photo is {100 / max(seen):.2g} points or more"


def median(values: list[float | None]) -> float | None:
    """The median of the values that are there, or None."""
    present = [x for x in values if x is not None]
    return statistics.median(present) if present else None
