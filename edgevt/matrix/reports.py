"""The matrix run's four files: report.json (versioned schema, one entry per cell), report.md, junit.xml, index.html."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from edgevt.fsio import atomic_write_text

STATUSES = ("pass", "fail", "skipped", "error", "crashed", "timeout", "unsupported", "pending")
FILES = ("report.json", "report.md", "junit.xml", "index.html")


def build(plan_info: dict, entries: list[dict], environment: dict) -> dict:
    from edgevt.report import new_report

    summary = {"cells": len(entries), **{s: sum(e["status"] == s for e in entries) for s in STATUSES},
               "cached": sum(bool(e.get("cached")) for e in entries)}
    return new_report("matrix", matrix=plan_info, summary=summary, environment=environment, cells=entries)


def worst_cosine(entry: dict) -> float | None:
    from edgevt.parity import worst_cosine as of_parity

    return of_parity(entry.get("parity"))


def _measured(entry: dict) -> dict | None:
    lat = entry.get("latency") or {}
    return lat if lat.get("status") == "measured" and (lat.get("warm") or {}).get("p50_ms") is not None else None


def _num(value, spec: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return format(value, spec)


def _why(entry: dict) -> str:
    err = entry.get("error") or {}
    if entry["status"] == "fail":
        return "; ".join((entry.get("parity") or {}).get("failures", []))
    return err.get("message") or ""


def _flips(entry: dict, limit: int | None) -> list[str]:
    """Each photo whose top-1 changed, with the reference's top-1/top-2 margin (a near-tie flips easily)."""
    from edgevt.parity import top1_text

    return top1_text(entry.get("parity") or {}, limit)[1:]


def _top1(parity: dict) -> str:
    """'99.0% (94.8–99.8)': top-1 agreement and its 95% Wilson interval."""
    ci = parity.get("top1_ci95")
    value = _num(parity.get("top1_agreement"), ".1%")
    return value + (f" ({ci[0]:.1%}–{ci[1]:.1%})" if ci and parity.get("top1_agreement") is not None else "")


@dataclass
class ShipChoice:
    """Per model: the passing cell with the lowest p50 here (best), passing cells without a measured p50, and
    whether cells are still pending. Cells are whatever the caller renders (report entries or derived rows)."""

    best: Any = None
    untimed: list = field(default_factory=list)
    passed: bool = False
    pending: bool = False


def ship_choices(cells: list, model_of: Callable, status_of: Callable, p50_of: Callable) -> dict[str, ShipChoice]:
    out = {}
    for model in dict.fromkeys(model_of(c) for c in cells):
        mine = [c for c in cells if model_of(c) == model]
        passed = [c for c in mine if status_of(c) == "pass"]
        timed = [c for c in passed if p50_of(c) is not None]
        out[model] = ShipChoice(min(timed, key=p50_of) if timed else None, [c for c in passed if p50_of(c) is None],
                                bool(passed), any(status_of(c) == "pending" for c in mine))
    return out


def ship_candidates(entries: list[dict]) -> dict[str, str]:
    """Per model: the passing cell with the lowest p50 here, or why there is none."""
    def p50(e: dict):
        return _measured(e)["warm"]["p50_ms"] if _measured(e) else None

    out = {}
    for model, choice in ship_choices(entries, lambda e: e["model"], lambda e: e["status"], p50).items():
        untimed = ", ".join(f"{e['target']} {e['precision']}" for e in choice.untimed)
        if choice.best:
            best, lat = choice.best, _measured(choice.best)
            ratio = lat.get("speedup_vs_torch_eager")
            out[model] = (f"{best['target']} {best['precision']}: p50 {lat['warm']['p50_ms']:.3f} ms"
                          f"{f', {ratio:.2f}× torch eager' if ratio else ''}, cosine {_num(worst_cosine(best), '.7f')}"
                          + (f" (also passing, latency not measured here: {untimed})" if untimed else ""))
        elif choice.passed:
            out[model] = "passing, latency not measured here: " + untimed
        else:
            out[model] = "not run yet (cells pending)" if choice.pending else "no cell passed"
    return out


def markdown(report: dict) -> str:
    m, s, env = report["matrix"], report["summary"], report.get("environment", {})
    counts = ", ".join(f"{s[k]} {k}" for k in STATUSES if s.get(k))
    seed = f" (seed {m['seed']})" if m["weights"] == "random" else ""
    profile = f", profile {m['profile']}" if m.get("profile") else ""
    profile += f"; excluded: {', '.join(f'`{x}`' for x in m['exclude'])}" if m.get("exclude") else ""
    from edgevt.report import photo_lines

    lines = [f"# edgevt matrix: {len(m['models'])} model(s) × {', '.join(m['targets'])} × {', '.join(m['precisions'])}", "",
             f"{s['cells']} cells: {counts} ({s['cached']} from the cache). Weights: {m['weights']}{seed}{profile}. "
             f"Host: {env.get('host_cpu')}, {env.get('logical_cpus')} logical CPUs, {m['bench'].get('threads')} threads.", "",
             *[f"- {line}" for line in photo_lines(m.get("inputs") or {}, skipped_limit=10)], "",
             "| model | target | precision | status | size MB | worst cosine | top-1 (95% CI) | p50 ms | p90 ms | vs torch eager | engine |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for e in report["cells"]:
        parity, lat = e.get("parity") or {}, _measured(e)
        size = (e.get("artifact") or {}).get("bytes")
        latency_cells = (f"{lat['warm']['p50_ms']:.3f} | {lat['warm']['p90_ms']:.3f} | {_num(lat.get('speedup_vs_torch_eager'), '.2f')}×"
                         if lat else "skipped | — | —" if (e.get("latency") or {}).get("status") == "skipped" else "— | — | —")
        status = f"**{e['status']}**" if e["status"] not in ("pass", "unsupported") else e["status"]
        lines.append(f"| {e['model']} | {e['target']} | {e['precision']} | {status}{' (cached)' if e.get('cached') else ''} "
                     f"| {_num(size / 1e6 if size else None, '.2f')} | {_num(worst_cosine(e), '.7f')} "
                     f"| {_top1(parity)} | {latency_cells} "
                     f"| {(lat or {}).get('engine') or parity.get('engine') or '—'} |")
    lines += ["", "## Ship candidates (fastest passing cell per model, on this host)", ""]
    lines += [f"- **{model}**: {text}" for model, text in ship_candidates(report["cells"]).items()]
    problems = [e for e in report["cells"] if e["status"] in ("fail", "error", "crashed", "timeout")]
    if problems:
        lines += ["", "## Failures", ""]
        for e in problems:
            lines.append(f"- `{e['id']}` **{e['status']}**: {_why(e)}")
            lines += [f"  - {flip}" for flip in (_flips(e, 10) if e["status"] == "fail" else [])]
    skipped = sorted({(e.get("latency") or {}).get("reason") for e in report["cells"] if (e.get("latency") or {}).get("status") == "skipped"})
    if skipped:
        lines += ["", "Latency skipped: " + "; ".join(r for r in skipped if r) + "."]
    lines += ["", f"edgevt {env.get('edgevt')} · " + ", ".join(f"{k} {v}" for k, v in env.get("packages", {}).items())]
    return "\n".join(lines) + "\n"


def junit(report: dict) -> str:
    """One testcase per cell: a parity failure is a <failure> carrying the numbers, a cell that could not run an <error>."""
    import xml.etree.ElementTree as ET

    cells = report["cells"]
    count = lambda *st: str(sum(e["status"] in st for e in cells))  # noqa: E731
    total = sum(e.get("seconds") or 0 for e in cells)
    suites = ET.Element("testsuites", name="edgevt matrix", tests=str(len(cells)))
    suite = ET.SubElement(suites, "testsuite", name="edgevt.matrix", tests=str(len(cells)), failures=count("fail"),
                          errors=count("error", "crashed", "timeout"), skipped=count("skipped", "unsupported", "pending"),
                          time=f"{total:.2f}", timestamp=report["created"], hostname=report.get("environment", {}).get("host_cpu", ""))
    for e in cells:
        case = ET.SubElement(suite, "testcase", classname=f"edgevt.matrix.{e['model']}", name=f"{e['target']}/{e['precision']}",
                             time=f"{e.get('seconds') or 0:.2f}")
        parity, lat = e.get("parity") or {}, _measured(e)
        numbers = (f"worst cosine {_num(worst_cosine(e), '.7f')}, top-1 agreement {_top1(parity)} of {parity.get('photos')} photos, "
                   f"max abs {_num(max((o['max_abs'] for o in parity.get('outputs', []) if isinstance(o['max_abs'], float)), default=None), '.3g')}"
                   f", engine {parity.get('engine')}")
        if e["status"] == "fail":
            node = ET.SubElement(case, "failure", message=f"parity failed: {numbers}", type="ParityFailure")
            node.text = "\n".join(parity.get("failures", []) + _flips(e, None) + [f"thresholds: {parity.get('thresholds')}"])
        elif e["status"] in ("error", "crashed", "timeout"):
            err = e.get("error") or {}
            node = ET.SubElement(case, "error", message=f"{e['status']}: {err.get('message')}", type=str(err.get("type")))
            node.text = "\n".join(x for x in (err.get("hint"), err.get("log_tail")) if x)
        elif e["status"] in ("skipped", "unsupported", "pending"):
            reason = (e.get("error") or {}).get("message") or parity.get("reason") or "not run (the matrix was interrupted)"
            ET.SubElement(case, "skipped", message=f"{e['status']}: {reason}")
        if e["status"] in ("pass", "fail"):
            out = ET.SubElement(case, "system-out")
            out.text = numbers + (f"; p50 {lat['warm']['p50_ms']:.3f} ms, p90 {lat['warm']['p90_ms']:.3f} ms ({lat['engine']})" if lat
                                  else f"; latency {(e.get('latency') or {}).get('reason') or 'not measured'}")
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def write_all(report: dict, out_dir: Path) -> None:
    from edgevt.html_report import render
    from edgevt.report import to_json

    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "report.json", to_json(report) + "\n")
    atomic_write_text(out_dir / "report.md", markdown(report))
    atomic_write_text(out_dir / "junit.xml", junit(report))
    atomic_write_text(out_dir / "index.html", render(report))
