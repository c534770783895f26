"""`edgevt matrix`: models × targets × precisions, each cell exported, checked and timed in its own process."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from edgevt.errors import UsageError
from edgevt.matrix.plan import MatrixPlan, check_precisions, expand, resolve_models, split_list, split_options

MATRIX_BENCH_DEFAULTS = {"runs": 20, "warmup": 3}  # like `edgevt export`: a short run per cell


def make_plan(models: str | None, targets: str | None, precisions: str | None, profile: str | None, weights: str, seed: int,
              options: dict[str, Any], tolerances: dict[str, float], bench: dict[str, Any], cell_timeout_s: float | None,
              exclude: tuple[str, ...] = (), rewrites: str | tuple[str, ...] | None = None) -> MatrixPlan:
    """Command line over profile over defaults; everything is validated here, before the first cell runs."""
    from edgevt.exporters import get_target, require
    from edgevt.profiles import bench_settings, load_profile

    prof = load_profile(profile) if profile else None
    section = prof.matrix if prof else {}
    model_names = split_list(models) or section.get("models") or []
    target_names = split_list(targets) or section.get("targets") or ([prof.target] if prof and prof.target else ["onnx"])
    precision_texts = split_list(precisions) or section.get("precisions") or ([prof.precision.value] if prof and prof.precision else ["default"])
    check_precisions(precision_texts)
    target_names = list(dict.fromkeys(target_names))
    for name in target_names:
        require(get_target(name))
    per_target = {t: {} for t in target_names}
    if prof and prof.target in per_target:
        per_target[prof.target].update(prof.options)
    for t, values in section.get("options", {}).items():
        if t in per_target:
            per_target[t].update(values)
    for t, values in split_options(options, target_names).items():
        per_target[t].update(values)
    settings = bench_settings(prof, MATRIX_BENCH_DEFAULTS, **bench)
    settings = replace(settings, threads=settings.threads or os.cpu_count() or 1)
    plan = MatrixPlan(specs=resolve_models(model_names), targets=target_names, precisions=list(dict.fromkeys(precision_texts)),
                      weights=weights, seed=seed, bench=settings, tolerances={**(prof.tolerances if prof else {}), **tolerances},
                      profile=prof.name if prof else None, cell_timeout_s=cell_timeout_s, exclude=list(exclude),
                      rewrites=rewrites or (prof.rewrites if prof else None) or "default")
    plan.cells = expand(plan, per_target)
    return plan


class Progress:
    """One bar over the cells on a terminal; one line per finished cell otherwise (CI logs)."""

    def __init__(self, echo: Callable[[str], None] | None, tty: bool):
        self.echo, self.tty = echo, tty
        self.total = self.done = 0
        self.started = time.perf_counter()
        self.computed: list[float] = []

    def _bar(self, current: str | None = None) -> str:
        width = 24
        filled = int(width * self.done / max(self.total, 1))
        elapsed = time.perf_counter() - self.started
        left = self.total - self.done
        eta = f", ~{_clock(left * sum(self.computed) / len(self.computed))} left" if self.computed and left else ""
        now = f" · running {current}" if current else ""
        return f"[{'█' * filled}{'·' * (width - filled)}] {self.done}/{self.total} cells · {_clock(elapsed)} elapsed{eta}{now}"

    def _show(self, text: str, keep: bool) -> None:
        if self.echo is None:
            return
        if self.tty:
            sys.stderr.write("\r\033[K" + text + ("\n" if keep else ""))
            sys.stderr.flush()
        elif keep:
            self.echo(text)

    def begin(self, entries: list[dict]) -> None:
        self.total = len(entries)
        self.done = sum(e["status"] != "pending" for e in entries)
        cached = sum(bool(e.get("cached")) for e in entries)
        self._show(f"matrix: {self.total} cells, {cached} from the cache, {self.total - self.done} to run", keep=True)

    def start(self, cell) -> None:
        self._show(self._bar(cell.id), keep=not self.tty)

    def finish(self, entry: dict) -> None:
        self.done += 1
        if entry.get("seconds"):
            self.computed.append(entry["seconds"])
        self._show(f"  {entry['id']}: {_outcome(entry)}", keep=True)
        if self.tty:
            self._show(self._bar(), keep=False)

    def end(self, entries: list[dict]) -> None:
        self._show(self._bar(), keep=True)


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"{seconds // 60}:{seconds % 60:02d}"


def _outcome(entry: dict) -> str:
    lat = entry.get("latency") or {}
    timing = f", p50 {lat['warm']['p50_ms']:.3f} ms" if lat.get("status") == "measured" else ""
    err = (entry.get("error") or {}).get("message")
    return f"{entry['status']} in {entry.get('seconds') or 0:.1f} s{timing}{f' — {err}' if err and entry['status'] != 'pass' else ''}"


def run(plan: MatrixPlan, out_dir: Path, cache_dir: Path | None, echo: Callable[[str], None] | None, tty: bool = False,
        retry_failed: bool = False, fresh: bool = False, remeasure: bool = False):
    """Run the plan; the four report files in out_dir are rewritten after every cell. Returns (report, exit code)."""
    from edgevt.envinfo import environment
    from edgevt.matrix import reports
    from edgevt.matrix.cache import Cache, default_root
    from edgevt.matrix.runner import exit_code, run_matrix

    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out_dir} is a file", "pass a directory for the matrix's reports")
    cache = Cache(cache_dir or default_root())
    env = environment(plan.bench.threads)
    state: dict = {}

    def write(entries: list[dict]) -> None:
        state["report"] = reports.build(plan.describe(), entries, env)
        reports.write_all(state["report"], out_dir)

    try:
        entries = run_matrix(plan, cache, out_dir, write, Progress(echo, tty), retry_failed=retry_failed, fresh=fresh,
                             remeasure=remeasure)
    except KeyboardInterrupt:
        if echo:
            echo(f"\ninterrupted: finished cells are cached and {out_dir}/report.json lists the rest as pending; "
                 "run the same command again to resume")
        raise
    return state["report"], exit_code(entries)
