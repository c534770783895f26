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


def node_kind(entry: dict) -> str | None:
    """The machine class a cell ran on (executors.machine_kind); None for cells that did not run or predate hosts."""
    host = entry.get("host")
    return host.get("kind") if isinstance(host, dict) else None


def by_kind(entries: list) -> list[tuple[str | None, list]]:
    """Cells grouped by the machine class that ran them, in order of appearance; cells without one last.
    Latency is only comparable within a group, so reports show and rank each group on its own."""
    groups: dict[str | None, list] = {}
    for e in entries:
        groups.setdefault(node_kind(e), []).append(e)
    return sorted(groups.items(), key=lambda kv: kv[0] is None)


def hostnames(entries: list) -> list[str]:
    """Each machine that ran these cells: its hostname, and on a Ray cluster the node's id (short)."""
    def name(host: dict) -> str:
        node = host.get("node") if isinstance(host.get("node"), dict) else {}
        return f"{host.get('hostname')}" + (f" node {str(node['id'])[:8]}" if node.get("id") else "")

    return sorted({name(e["host"]) for e in entries if isinstance(e.get("host"), dict)})


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


def ranking_ms(lat: dict | None) -> float | None:
    """What ship candidates are ranked by: the p50 at the host's full speed where the cell records it (cells timed while
    the host changed speed are then compared in one state), else the p50 over every block."""
    from edgevt.report import full_speed

    return (full_speed(lat).get("p50_ms") or (lat.get("warm") or {}).get("p50_ms")) if lat else None


def ship_candidates(entries: list[dict]) -> dict[str, str]:
    """Per model: the passing cell with the lowest p50 here (at full speed where recorded), or why there is none."""
    from edgevt.report import full_speed

    out = {}
    for model, choice in ship_choices(entries, lambda e: e["model"], lambda e: e["status"], lambda e: ranking_ms(_measured(e))).items():
        untimed = ", ".join(f"{e['target']} {e['precision']}" for e in choice.untimed)
        if choice.best:
            best, lat = choice.best, _measured(choice.best)
            ratio, eff = lat.get("speedup_vs_torch_eager"), lat.get("efficiency")
            full = full_speed(lat).get("p50_ms")
            out[model] = (f"{best['target']} {best['precision']}: p50 {lat['warm']['p50_ms']:.3f} ms"
                          f"{f' ({full:.3f} at full speed)' if full else ''}"
                          f"{f', {ratio:.2f}× torch eager' if ratio else ''}{f', efficiency {eff:.1%}' if eff else ''}"
                          f", cosine {_num(worst_cosine(best), '.7f')}"
                          + (f" (also passing, latency not measured here: {untimed})" if untimed else ""))
        elif choice.passed:
            out[model] = "passing, latency not measured here: " + untimed
        else:
            out[model] = "not run yet (cells pending)" if choice.pending else "no cell passed"
    return out


def timing_summary(cells: list[dict]) -> dict | None:
    """How the cells were timed, from their latency sections: protocol, threading, sampling reached, the GEMM peak."""
    measured = [lat for lat in (_measured(e) for e in cells) if lat]
    if not measured:
        return None
    protos = [lat.get("protocol") or {} for lat in measured]
    stops = [(p.get("sampling") or {}).get("stopped_by") for p in protos]
    reached = [x for p in protos for x in ((p.get("sampling") or {}).get("reached_ci95_rel") or [])
               if isinstance(x, (int, float)) and math.isfinite(x)]
    bounds = [lat["compute_bound"] for lat in measured if (lat.get("compute_bound") or {}).get("status") == "measured"]
    threading = next((lat["threading"] for lat in measured if lat.get("threading")), {})
    return {"protocols": sorted({str(p["name"]) for p in protos if p.get("name")}), "cells": len(measured),
            "unrecorded": sum(not p.get("name") for p in protos), "by_ci": stops.count("ci"), "by_max_time": stops.count("max_time"),
            "worst_ci": max(reached, default=None), "omp": threading.get("OMP_WAIT_POLICY"), "bounds": len(bounds),
            "peak": bounds[0]["peak_gflops"] if bounds else None, "peak_by": bounds[0]["peak_by"] if bounds else None,
            "gemm": bounds[0]["gemm_gflops"] if bounds else None,
            "unsteady": sum(bool((p.get("host") or {}).get("unsteady")) for p in protos),
            "paired": sum(bool((lat.get("speedup") or {}).get("rounds")) for lat in measured)}


def timing_lines(cells: list[dict]) -> list[str]:
    """One paragraph for report.md and index.html: how the latency columns were measured, and what they can be compared with."""
    t = timing_summary(cells)
    if t is None:
        return []
    text = "Latency: "
    if t["protocols"]:
        text += (f"protocol {', '.join(f'`{p}`' for p in t['protocols'])} (edgevt.bench.measure, as in `export` and `bench`): each "
                 f"runtime at its library defaults (OMP_WAIT_POLICY {t['omp'] or 'unrecorded'}, ORT spinning on), timed in alternating "
                 f"blocks with a wait for idle threads between runtimes. {t['by_ci']} of {t['cells']} timed cells reached the ±2% "
                 f"target on the median's 95% CI, {t['by_max_time']} stopped at --max-time (worst ±{_num(t['worst_ci'], '.1%')}). ")
        if t["paired"]:
            text += ("Speed-ups are the median over rounds of torch eager's block median / the artifact's in the same round. ")
        if t["unsteady"]:
            text += (f"In {t['unsteady']} of {t['cells']} timed cells the host changed speed during the timing (a runtime's block "
                     "medians varied by more than 1.2×, p90/p10): compare their milliseconds with care, their paired speed-ups less so. "
                     "The full-speed column keeps the blocks of the host's faster state: the artifact's p50 over its blocks within "
                     "10% of the fastest tenth of its block medians, and the speed-up over the rounds in which both runtimes ran at "
                     "full speed (report.json: `warm.full_speed`, `speedup.full_speed`). ")
    if t["unrecorded"]:
        text += (f"{t['unrecorded']} of {t['cells']} timed cells record no timing protocol: they were timed before edgevt's protocol, "
                 "and their speed-ups may be biased by other runtimes' spinning threads (re-time them with `edgevt matrix --remeasure`). ")
    if t["peak"]:
        rates = ", ".join(f"{k} {v:.0f}" for k, v in (t["gemm"] or {}).items() if isinstance(v, (int, float)))
        text += (f"Efficiency = compute bound / p50, the bound being 2·MACs at this host's fp32 GEMM peak ({t['peak']:.0f} GFLOP/s by "
                 f"{t['peak_by']}; GFLOP/s: {rates}); int8 and fp16 cells can exceed 100%.")
    else:
        text += "No cell records a compute bound, so there is no efficiency."
    return [text.rstrip(), ""]


def _full_speed_cell(lat: dict) -> str:
    """'12.468, 2.17× (3 of 7 blocks)': the artifact's p50 over its blocks at the host's full speed and the speed-up over
    the rounds in which both runtimes ran at full speed (edgevt.bench); '—' for cells timed before edgevt recorded them."""
    from edgevt.report import full_speed, full_speed_speedup

    full, ratio = full_speed(lat), full_speed_speedup(lat).get("median")
    if full.get("p50_ms") is None:
        return "—"
    return (f"{full['p50_ms']:.3f}{f', {ratio:.2f}×' if ratio else ''} ({full.get('blocks')} of {full.get('of_blocks')} blocks)")


def _table(cells: list[dict]) -> list[str]:
    lines = [*timing_lines(cells),
             "| model | target | precision | status | size MB | worst cosine | top-1 (95% CI) | p50 ms | p90 ms | vs torch eager | efficiency "
             "| at full speed: p50 ms, vs torch eager | engine |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for e in cells:
        parity, lat = e.get("parity") or {}, _measured(e)
        size = (e.get("artifact") or {}).get("bytes")
        latency_cells = (f"{lat['warm']['p50_ms']:.3f} | {lat['warm']['p90_ms']:.3f} | {_num(lat.get('speedup_vs_torch_eager'), '.2f')}× "
                         f"| {_num(lat.get('efficiency'), '.1%')} | {_full_speed_cell(lat)}"
                         if lat else "skipped | — | — | — | —" if (e.get("latency") or {}).get("status") == "skipped" else "— | — | — | — | —")
        status = f"**{e['status']}**" if e["status"] not in ("pass", "unsupported") else e["status"]
        lines.append(f"| {e['model']} | {e['target']} | {e['precision']} | {status}{' (cached)' if e.get('cached') else ''} "
                     f"| {_num(size / 1e6 if size else None, '.2f')} | {_num(worst_cosine(e), '.7f')} "
                     f"| {_top1(parity)} | {latency_cells} "
                     f"| {(lat or {}).get('engine') or parity.get('engine') or '—'} |")
    return lines


def _ship(cells: list[dict], where: str) -> list[str]:
    return ["", f"## Ship candidates (fastest passing cell per model, {where}; ranked by the p50 at full speed where recorded)", "",
            *[f"- **{model}**: {text}" for model, text in ship_candidates(cells).items()]]


def _shards(m: dict) -> str:
    shard, merged = m.get("shard"), m.get("shards")
    plan = f"plan `{str(m.get('digest'))[:12]}`"
    if shard:
        return f" Shard {shard['index']}/{shard['count']} of {plan}."
    if not merged:
        return ""
    count = merged[0]["count"]
    missing = ", ".join(f"{k}/{count}" for k in m.get("missing_shards") or [])
    return f" Merged from {len(merged)} of {count} shards of {plan}" + (f" (missing: {missing})." if missing else ".")


def markdown(report: dict) -> str:
    m, s, env = report["matrix"], report["summary"], report.get("environment", {})
    counts = ", ".join(f"{s[k]} {k}" for k in STATUSES if s.get(k))
    seed = f" (seed {m['seed']})" if m["weights"] == "random" else ""
    profile = f", profile {m['profile']}" if m.get("profile") else ""
    profile += f"; excluded: {', '.join(f'`{x}`' for x in m['exclude'])}" if m.get("exclude") else ""
    from edgevt.report import photo_lines

    groups = by_kind(report["cells"])
    ran = [(kind, cells) for kind, cells in groups if kind is not None]
    where = (f"Cells ran on {ran[0][0]} ({', '.join(hostnames(ran[0][1]))})" if len(ran) == 1 else
             f"Cells ran on {len(ran)} kinds of machine; latency is compared within a kind only" if ran else
             f"Host: {env.get('host_cpu')}, {env.get('logical_cpus')} logical CPUs")
    lines = [f"# edgevt matrix: {len(m['models'])} model(s) × {', '.join(m['targets'])} × {', '.join(m['precisions'])}", "",
             f"{s['cells']} cells: {counts} ({s['cached']} from the cache). Weights: {m['weights']}{seed}{profile}. "
             f"{where}, {m['bench'].get('threads')} threads.{_shards(m)}", "",
             *[f"- {line}" for line in photo_lines(m.get("inputs") or {}, skipped_limit=10)], ""]
    if len(ran) <= 1:
        lines += _table(report["cells"]) + _ship(report["cells"], "on this host" if not ran else "on this kind of machine")
    else:
        for kind, cells in groups:
            title = f"On {kind} ({', '.join(hostnames(cells))})" if kind else "Not run on any machine (unsupported, pending or cached without a host)"
            lines += [f"## {title}", "", *_table(cells)] + (_ship(cells, "on this kind of machine") if kind else []) + [""]
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
