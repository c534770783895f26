"""`edgevt matrix`: models × targets × precisions, each cell exported, checked and timed in its own process."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from edgevt.bench import QUICK_DEFAULTS as MATRIX_BENCH_DEFAULTS  # like `edgevt export`: a short run per cell
from edgevt.errors import UsageError
from edgevt.images import ImageOptions
from edgevt.matrix.plan import MatrixPlan, check_precisions, expand, plan_digest, resolve_models, split_list, split_options


def make_plan(models: str | None, targets: str | None, precisions: str | None, profile: str | None, weights: str, seed: int,
              options: dict[str, Any], tolerances: dict[str, float], bench: dict[str, Any], cell_timeout_s: float | None,
              exclude: tuple[str, ...] = (), shard: str | None = None, images: ImageOptions | None = None,
              log: Callable[[str], None] | None = None, rewrites: str | tuple[str, ...] | None = None) -> MatrixPlan:
    """Command line over profile over defaults; everything is validated here, before the first cell runs.
    shard "K/N": only the K-th of N cost-balanced shares of the cells (edgevt.matrix.shard). The photos are read once
    here too: a missing or empty folder is exit 2, and their digests go into the cells' cache keys and the plan's digest."""
    from edgevt.exporters import get_target, require
    from edgevt.images import scan
    from edgevt.limits import check_seed, check_tolerances
    from edgevt.profiles import bench_settings, image_options, load_profile

    weights = weights or "pretrained"
    seed = 0 if seed is None else seed
    check_seed(seed)
    tolerances = check_tolerances(tolerances)
    check_weights(weights)
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
    threads_auto = settings.threads is None
    settings = replace(settings, threads=settings.threads or os.cpu_count() or 1)
    plan = MatrixPlan(specs=resolve_models(model_names, weights), targets=target_names, precisions=list(dict.fromkeys(precision_texts)),
                      weights=weights, seed=seed, bench=settings, tolerances={**(prof.tolerances if prof else {}), **tolerances},
                      profile=prof.name if prof else None, cell_timeout_s=cell_timeout_s, exclude=list(exclude), threads_auto=threads_auto,
                      rewrites=rewrites or (prof.rewrites if prof else None) or "default")
    plan.cells = expand(plan, per_target)
    images = images or ImageOptions()
    plan.images = image_options(prof, images.images, images.calibration, images.samples)
    if log and (plan.images.images or plan.images.calibration):
        log("reading the photos (their content digests go into the cache keys)")
    plan.evaluation, plan.calibration = scan(plan.images, plan.calibrates)
    plan.digest = plan_digest(plan)
    if shard:
        from edgevt.matrix.shard import Shard, select

        plan = select(plan, Shard.parse(shard))
    return plan


def check_weights(weights: str) -> None:
    """A weights path that is not there would fail every cell, each cached as an error: refuse it before any cell runs."""
    if weights not in ("pretrained", "random") and not Path(weights).exists():
        raise UsageError(f"weights path {weights!r} does not exist", "pass pretrained, random, or a local HF model directory or .safetensors file")


def check_writable(out_dir: Path, cache_dir: Path) -> None:
    from edgevt.fsio import writable_problem

    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out_dir} is a file", "pass a directory for the matrix's reports")
    for flag, directory in (("--out", out_dir), ("--cache-dir", cache_dir)):
        problem = writable_problem(directory)
        if problem:
            raise UsageError(f"{flag} {directory}: {problem}", f"pass {flag} with a directory you can write to")


class Progress:
    """One bar over the cells on a terminal; one line per finished cell otherwise (CI logs)."""

    def __init__(self, echo: Callable[..., None] | None, tty: bool):
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
        if self.tty:  # echo(text, nl): the CLI's terminal stream, which other libraries' output never reaches
            self.echo("\r\033[K" + text, keep)
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
        retry_failed: bool = False, fresh: bool = False, remeasure: bool = False, executor: str = "local",
        ray_address: str | None = None, ray_labels: tuple[str, ...] = ()):
    """Run the plan; the four report files in out_dir are rewritten after every cell. Returns (report, exit code)."""
    from edgevt.envinfo import environment
    from edgevt.matrix import reports
    from edgevt.matrix.cache import Cache, default_root
    from edgevt.matrix.executors import get_executor
    from edgevt.matrix.runner import exit_code, run_matrix

    check_writable(out_dir, cache_dir or default_root())
    chosen = get_executor(executor, ray_address, _labels(ray_labels), out_dir / "logs")
    cache = Cache(cache_dir or default_root())
    env = environment(plan.bench.threads)
    state: dict = {}

    def write(entries: list[dict]) -> None:
        state["report"] = reports.build({**plan.describe(), "executor": chosen.describe()}, entries, env)
        reports.write_all(state["report"], out_dir)

    try:
        with chosen:
            entries = run_matrix(plan, cache, out_dir, write, Progress(echo, tty), retry_failed=retry_failed, fresh=fresh,
                                 remeasure=remeasure, executor=chosen)
    except KeyboardInterrupt:
        if echo:
            echo(f"\ninterrupted: finished cells are cached and {out_dir}/report.json lists the rest as pending; "
                 "run the same command again to resume")
        raise
    return state["report"], exit_code(entries)


def _labels(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise UsageError(f"--ray-label {pair!r} is not KEY=VALUE", "e.g. --ray-label edgevt-kind=m7i-2xlarge")
        out[key.strip()] = value.strip()
    return out
