"""index.html for a matrix run: one self-contained page (inline CSS, hand-drawn SVG) that opens from disk, offline.

No plotting library, so edgevt grows no dependency for it. Every report string is escaped and every number read
through `_num`: report.json writes inf/NaN as strings, and partial runs leave whole sections out.
"""

from __future__ import annotations

import math
from pathlib import Path

from edgevt.fsio import atomic_write_text
from edgevt.svgplot import SHAPES, W, Scale, clip, esc, legend, marker, svg_root

STATUSES = ("pass", "fail", "skipped", "error", "crashed", "timeout", "unsupported", "pending")  # report.json's summary order
STATUS_COLOURS = {"pass": "#1a7f37", "fail": "#cf222e", "skipped": "#656d76", "error": "#bc4c00", "crashed": "#8250df",
                  "timeout": "#9a6700", "unsupported": "#6e7781", "pending": "#8c959f"}  # skipped: parity not checkable here, not a verdict
TARGET_COLOURS = {"onnx": "#3b6fd8", "tflite": "#ef8a17", "coreml": "#20a39e"}
PALETTE = ("#d6457a", "#7b5cd6", "#8c6d3f", "#5aa02c", "#3aa0c8")  # for targets edgevt may grow later
ROW, GROUP = 24, 30  # SVG user units, on svgplot's canvas W wide
ERROR_FLOOR, ERROR_CEIL = 1e-9, 2.0  # 1 - cosine of an exact match would sit at -inf on a log axis
COLUMNS = ("model", "target", "precision", "status", "cached", "size MB", "worst cosine", "top-1", "p50 ms", "p90 ms",
           "vs torch eager", "efficiency", "engine")


def _d(value) -> dict:
    return value if isinstance(value, dict) else {}


def _num(value, finite: bool = False) -> float | None:
    """A float from a report value: JSON carries inf/NaN as the strings "inf"/"nan"; anything else unreadable is None."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        x = float(value)
    except ValueError:
        return None
    return None if finite and not math.isfinite(x) else x


def _fmt(value, spec: str = "sig", suffix: str = "") -> str:
    """spec "sig": three significant digits that keep their zeros (7.00 ms above 11.9 ms reads as a column)."""
    x = _num(value)
    if x is None or not math.isfinite(x):
        return "—" if x is None else str(x)
    if spec == "sig":
        spec = ".0f" if abs(x) >= 100 else ".1f" if abs(x) >= 10 else ".2f" if abs(x) >= 1 else ".3g"
    return format(x, spec) + suffix


def _facts(cell: dict) -> dict:
    """The numbers every view needs, read once from the nested cell so the views stay simple."""
    from edgevt.matrix.reports import ranking_ms

    lat, parity, art = _d(cell.get("latency")), _d(cell.get("parity")), _d(cell.get("artifact"))
    warm, base = _d(lat.get("warm")), _d(_d(lat.get("baseline")).get("warm"))
    measured = lat.get("status") == "measured"
    cosines = [c for c in (_num(_d(o).get("cosine")) for o in parity.get("outputs") or []) if c is not None]
    cos = None if not cosines else math.nan if any(map(math.isnan, cosines)) else min(cosines)  # min() with a NaN depends on order
    p50, size = _num(warm.get("p50_ms"), finite=True) if measured else None, _num(art.get("bytes"), finite=True)
    return {
        "id": str(cell.get("id") or f"{cell.get('model')}/{cell.get('target')}/{cell.get('precision')}"),
        "model": str(cell.get("model")), "target": str(cell.get("target")), "precision": str(cell.get("precision")),
        "status": str(cell.get("status") or "pending"), "cached": bool(cell.get("cached")),
        "mb": None if size is None else size / 1e6, "cos": cos, "top1": parity.get("top1_agreement"),
        "err": None if cos is None else min(max(1 - cos, ERROR_FLOOR), ERROR_CEIL) if math.isfinite(cos) else ERROR_CEIL,
        "p50": p50 if p50 is not None and p50 > 0 else None, "p50_raw": warm.get("p50_ms"),
        "rank": ranking_ms(lat) if measured and p50 is not None and p50 > 0 else None, "p90": _num(warm.get("p90_ms"), finite=True),
        "base": _num(base.get("p50_ms"), finite=True) if measured else None, "speedup": lat.get("speedup_vs_torch_eager"),
        "eff": _num(lat.get("efficiency"), finite=True) if measured else None,
        "engine": lat.get("engine") or parity.get("engine"), "lat": lat or None, "error": _d(cell.get("error")),
        "min_cos": _num(_d(parity.get("thresholds")).get("min_cosine"), finite=True), "failures": parity.get("failures") or [],
        "lat_note": (f"latency not plottable: p50 = {_fmt(warm.get('p50_ms'))} ms" if measured else
                     f"latency {lat.get('status') or 'skipped'}: {lat.get('reason') or 'no reason recorded'}"),
    }


def _bar_svg(facts: list[dict], models: list[str], row, colours: dict[str, str], unit: str, empty: str) -> str:
    """Horizontal bars grouped by model: long names get their own line, and "target precision" labels stay readable.

    row(cell) gives None (not drawn), ("note", text), or ("bar", value, whisker, eager tick, tooltip, value label)."""
    rows = []
    for model in models:
        mine = [(f, r) for f, r in ((f, row(f)) for f in facts if f["model"] == model) if r]
        rows += [(None, ("group", model))] * bool(mine) + mine
    bars = [(f, r) for f, r in rows if r[0] == "bar"]
    label_w = min(250, 24 + 7 * max([len(f["target"] + f["precision"]) + 1 for f, _ in rows if f] + [8]))
    scale = Scale([v for _, r in bars for v in r[1:4]], label_w, W - 130) if bars else None
    y = top = 34
    body = []
    for f, r in rows:
        if r[0] == "group":
            body.append(f'<text x="8" y="{y + 20}" class="group">{esc(clip(r[1], 110))}<title>{esc(r[1])}</title></text>')
            y += GROUP
            continue
        name = f"{f['target']} {f['precision']}"
        body.append(f'<text x="{label_w - 10}" y="{y + 16}" text-anchor="end">{esc(clip(name, 32))}<title>{esc(name)}</title></text>')
        body.append(f'<text x="{label_w + 6}" y="{y + 16}" class="note">{esc(clip(r[1], 100))}<title>{esc(r[1])}</title></text>'
                    if r[0] == "note" else _bar(r, colours[f["target"]], scale, y))
        y += ROW
    if scale is None:
        return svg_root(y + 10, f'<text x="8" y="20" class="empty">{esc(empty)}</text>' + "".join(body), unit)
    used = {f["target"] for f, _ in bars}
    keys = [(f'<rect y="-6" width="11" height="11" rx="2" fill="{c}"/>', t) for t, c in colours.items() if t in used]
    keys += [('<path d="M-3 -5h11M2.5 -5v10M-3 5h11" class="whisker"/>', "p50 … p90")] * any(r[2] for _, r in bars)
    keys += [('<path d="M5 -8V8" class="base"/>', "torch eager p50")] * any(r[3] for _, r in bars)
    axis = scale.axis(y + 6, f"{unit}{' (log scale)' if scale.log else ''}", top)
    return svg_root(y + 52, legend(keys, 12, 14) + axis + "".join(body), unit)


def _bar(r: tuple, colour: str, scale: Scale, y: float) -> str:
    _, value, whisker, base, tooltip, text = r
    end = right = scale(value)
    out = [f'<rect x="{scale.px0}" y="{y + 5}" width="{max(end - scale.px0, 1.5):.1f}" height="15" fill="{colour}" rx="2">'
           f"<title>{esc(tooltip)}</title></rect>"]
    if whisker is not None and whisker > value:
        right = scale(whisker)
        out.append(f'<path d="M{end:.1f} {y + 12.5}H{right:.1f}M{right:.1f} {y + 8}V{y + 17}" class="whisker"/>')
    tx = right + 7
    if base is not None:
        mx = scale(base)
        out.append(f'<path d="M{mx:.1f} {y + 2}V{y + 23}" class="base"><title>torch eager p50 {base:.3g} ms</title></path>')
        out += [f'<path d="M{right + 3:.1f} {y + 12.5}H{mx - 3:.1f}" class="gap"/>'] if mx > right + 8 else []
        tx = max(tx, mx + 7)  # past the eager tick, so the label never sits on it
    return "".join(out) + f'<text x="{tx:.1f}" y="{y + 16}" class="val">{esc(text)}</text>'


def _latency_row(f: dict) -> tuple | None:
    if not f["lat"] or f["p50"] is None:
        return ("note", f["lat_note"]) if f["lat"] else None
    speed = _num(f["speedup"], finite=True)
    tip = f"{f['id']}: p50 {_fmt(f['p50'])} ms, p90 {_fmt(f['p90'])} ms, torch eager p50 {_fmt(f['base'])} ms"
    text = _fmt(f["p50"], suffix=" ms") + (f" · {speed:.2f}× vs eager" if speed is not None else "")
    return ("bar", f["p50"], f["p90"], f["base"], tip, text)


def _latency_svg(facts: list[dict], models: list[str], colours: dict[str, str]) -> str:
    return _bar_svg(facts, models, _latency_row, colours, "warm latency, ms", "no measured latency")


def _size_svg(facts: list[dict], models: list[str], colours: dict[str, str]) -> str:
    def row(f: dict) -> tuple | None:
        return None if f["mb"] is None else ("bar", f["mb"], None, None, f"{f['id']}: {f['mb']:.4g} MB", _fmt(f["mb"], suffix=" MB"))

    return _bar_svg(facts, models, row, colours, "artifact size, MB", "no artifacts")


def _tradeoff_svg(facts: list[dict], colours: dict[str, str], shapes: dict[str, str]) -> str:
    """Each cell where it lands between fast and faithful; hollow red-ringed points failed parity."""
    pts = sorted((f for f in facts if f["p50"] is not None and f["err"] is not None), key=lambda f: f["p50"])
    if not pts:
        return svg_root(40, '<text x="8" y="24" class="empty">no measured latency (no cell has both latency and parity)</text>', "tradeoff")
    x0, x1, y0, y1 = 92, 700, 14, 380  # right of x1: the limits' labels, then the legend
    limits: dict[float, dict] = {}  # each precision's own limit: int8 is held to a looser cosine than fp32
    for f in pts:
        if f["min_cos"] is not None and f["min_cos"] < 1:
            limits.setdefault(min(max(1 - f["min_cos"], ERROR_FLOOR), ERROR_CEIL), {})[f["precision"]] = None
    xs, ys = Scale([f["p50"] for f in pts], x0, x1, log=True), Scale([f["err"] for f in pts] + list(limits), y1, y0, log=True)
    out = [xs.axis(y1, "warm p50 latency, ms (log scale)", y0), ys.axis(x0, "1 − worst cosine (log scale)", x1, vertical=True)]
    for limit, precisions in limits.items():
        out.append(f'<line x1="{x0}" x2="{x1}" y1="{ys(limit):.1f}" y2="{ys(limit):.1f}" class="thr"/><text x="{x1 + 6}" '
                   f'y="{ys(limit) + 4:.1f}" class="thrlabel">cos ≥ {1 - limit:.7g}<title>parity limit for {esc(", ".join(precisions))}'
                   "</title></text>")
    spots: list[tuple[float, float]] = []
    for f in pts:
        x, y = xs(f["p50"]), ys(f["err"])
        while any(abs(x - a) < 5 and abs(y - b) < 5 for a, b in spots):
            x += 9  # identical numbers: side by side rather than hidden under each other
        spots.append((x, y))
        out.append(_point(f, x, y, colours[f["target"]], shapes[f["precision"]]))
    out += _point_labels(pts, spots, x0, x1)
    out.append(_tradeoff_legend(pts, colours, shapes, bool(limits), x1 + 105, y0 + 10))
    return svg_root(y1 + 46, "".join(out), "latency vs parity error")


def _point_labels(pts: list[dict], spots: list[tuple[float, float]], x0: float, x1: float) -> list[str]:
    """The model's name beside its point, right or left, wherever it has room; the tooltip always has it."""
    out, taken = [], [(a - 9, b - 9, a + 9, b + 9) for a, b in spots]
    for f, (x, y) in zip(pts, spots):
        name, gap = clip(f["model"], 24), 16 if f["status"] == "fail" else 11
        for box in [(x + gap, y - 8, x + gap + 6.4 * len(name), y + 8), (x - gap - 6.4 * len(name), y - 8, x - gap, y + 8)]:
            if x0 < box[0] and box[2] < x1 and not any(box[0] < o[2] and o[0] < box[2] and box[1] < o[3] and o[1] < box[3] for o in taken):
                taken.append(box)
                out.append(f'<text x="{box[0]:.1f}" y="{y + 4:.1f}" class="ptlabel">{esc(name)}</text>')
                break
    return out


def _point(f: dict, x: float, y: float, colour: str, shape: str) -> str:
    failed = f["status"] == "fail"
    attrs = f'fill="#fff" stroke="{colour}" stroke-width="2.5"' if failed else f'fill="{colour}" stroke="#fff" stroke-width="1"'
    ring = f'<circle cx="{x:.1f}" cy="{y:.1f}" r="12" class="ring"/>' if failed else ""
    err = f"1 − cosine {f['err']:.2g}" if math.isfinite(f["cos"]) else "drawn at the top of the axis"
    tip = (f"{f['id']} ({f['status']}): p50 {_fmt(f['p50'], suffix=' ms')}, worst cosine {_fmt(f['cos'], '.7f')}, {err}, "
           f"top-1 {_fmt(f['top1'], '.1%')}")
    return f'<g class="pt">{ring}{marker(shape, x, y, 7, attrs)}<title>{esc(tip)}</title></g>'


def _tradeoff_legend(pts: list[dict], colours: dict[str, str], shapes: dict[str, str], limits: bool, x: float, y: float) -> str:
    hollow = marker("circle", 5, 0, 6, 'fill="#fff" stroke="#6e7781" stroke-width="2"') + marker("circle", 5, 0, 10, 'class="ring"')
    parity = [(hollow, "failed parity")] * any(f["status"] == "fail" for f in pts)
    parity += [('<path d="M-4 0h18" class="thr"/>', "parity limit")] * limits
    targets, precisions = {f["target"] for f in pts}, {f["precision"] for f in pts}
    sections = [("target", [(f'<circle cx="5" r="6" fill="{c}"/>', t) for t, c in colours.items() if t in targets]),
                ("precision", [(marker(s, 5, 0, 6, 'fill="#6e7781"'), p) for p, s in shapes.items() if p in precisions]),
                ("parity", parity)]
    out = []
    for title, items in [s for s in sections if s[1]]:
        out.append(f'<text x="{x}" y="{y}" class="title">{title}</text>' + legend(items, x, y + 20, column=True))
        y += 30 + 22 * len(items)
    return "".join(out)


def _detail(f: dict) -> str:
    """Why a cell has no numbers: the error and its log tail, or the parity checks that failed."""
    err = f["error"]
    if err or f["status"] in ("error", "crashed", "timeout"):
        parts = [f"<b>{esc(err.get('type') or f['status'])}</b>: {esc(err.get('message') or 'no message recorded')}"]
        parts += [f"signal {esc(err['signal'])}"] if err.get("signal") else []
        parts += [f"exit code {esc(err['exit_code'])}"] if err.get("exit_code") is not None else []
        parts += [f'<span class="muted">hint: {esc(err["hint"])}</span>'] if err.get("hint") else []
        log = f"<details><summary>log tail</summary><pre>{esc(err['log_tail'])}</pre></details>" if err.get("log_tail") else ""
        return " · ".join(parts) + log
    return "parity failed: " + "; ".join(esc(x) for x in f["failures"]) if f["status"] == "fail" and f["failures"] else ""


def _table_html(facts: list[dict]) -> str:
    rows = []
    for f in facts:
        lat = f["lat"] or {}
        p50, p90 = _fmt(f["p50_raw"]), _fmt(f["p90"])
        if lat.get("status") not in (None, "measured"):
            p50 = p90 = f'<span class="muted" title="{esc(f["lat_note"])}">{esc(lat.get("status"))}</span>'
        badge = f'<span class="badge" style="background:{STATUS_COLOURS.get(f["status"], "#57606a")}">{esc(f["status"])}</span>'
        cos = f'<span class="bad">{_fmt(f["cos"], ".7f")}</span>' if f["status"] == "fail" else _fmt(f["cos"], ".7f")
        tds = [f'<td class="m">{esc(f["model"])}</td><td>{esc(f["target"])}</td><td>{esc(f["precision"])}</td><td>{badge}</td>',
               f"<td>{'yes' if f['cached'] else ''}</td>", *(f'<td class="n">{v}</td>' for v in (
                   _fmt(f["mb"]), cos, _fmt(f["top1"], ".1%"), p50, p90, _fmt(f["speedup"], ".2f", "×"), _fmt(f["eff"], ".1%"))),
               f"<td>{esc(f['engine'] or '')}</td>"]
        rows.append(f'<tr data-cell="{esc(f["id"])}">{"".join(tds)}</tr>')
        detail = _detail(f)
        rows += [f'<tr class="detail"><td></td><td colspan="{len(COLUMNS) - 1}">{detail}</td></tr>'] if detail else []
    head = "".join(f'<th{" class=n" * (4 < i < 12)}>{c}</th>' for i, c in enumerate(COLUMNS))
    body = "".join(rows) or f'<tr><td colspan="{len(COLUMNS)}" class="muted">no cells</td></tr>'
    return f'<table id="results"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _ship_html(facts: list[dict], models: list[str]) -> str:
    """Per model, the fastest cell that passed parity: the one to ship, unless a skipped latency hides a faster one."""
    from edgevt.matrix.reports import ShipChoice, ship_choices

    choices = ship_choices(facts, lambda f: f["model"], lambda f: f["status"], lambda f: f["rank"])
    items = []
    for model in models:
        choice = choices.get(model) or ShipChoice()
        b = choice.best
        if b:
            speed = _num(b["speedup"], finite=True)
            text = (f"<b>{esc(b['target'])} {esc(b['precision'])}</b>: p50 {_fmt(b['p50'], suffix=' ms')}"
                    + (f", {_fmt(b['rank'], suffix=' ms')} at full speed" if b["rank"] != b["p50"] else "")
                    + (f" ({speed:.2f}× torch eager)" if speed is not None else "")
                    + (f", efficiency {b['eff']:.1%}" if b["eff"] is not None else "")
                    + f", {_fmt(b['mb'], suffix=' MB')}, worst cosine {_fmt(b['cos'], '.7f')}")
        else:
            text = ("no passing cell has a measured latency" if choice.passed else "not run yet (cells pending)" if choice.pending
                    else '<span class="bad">none passed</span>')
        hidden: dict[str, list[str]] = {}  # one note per reason: Core ML is skipped alike for every precision
        for f in choice.untimed:
            hidden.setdefault(f["lat_note"], []).append(f"{f['target']} {f['precision']}")
        text += "".join(f'<span class="muted"> · {esc(", ".join(ids))} not compared ({esc(note)})</span>' for note, ids in hidden.items())
        items.append(f'<li><span class="m">{esc(model)}</span> → {text}</li>')
    return f'<ul class="ship">{"".join(items)}</ul>' if items else '<p class="muted">no cells</p>'


def _timing_text(report: dict) -> str:
    """The protocol, threading and compute bound, as report.md words them (one source: matrix.reports.timing_lines)."""
    from edgevt.matrix.reports import timing_lines

    lines = timing_lines([c for c in report.get("cells") or [] if isinstance(c, dict)])
    return lines[0].removeprefix("Latency: ").replace("`", "") if lines else "no cell has a measured latency"


def _header_html(report: dict, facts: list[dict]) -> str:
    from edgevt.matrix.reports import by_kind, hostnames

    m, env, summary = _d(report.get("matrix")), _d(report.get("environment")), _d(report.get("summary"))
    bench = _d(m.get("bench"))

    def g(d: dict, key: str):
        return "—" if d.get(key) is None else d[key]

    lists = {k: [str(x) for x in m.get(k) or []] or sorted({f[k[:-1]] for f in facts}) for k in ("models", "targets", "precisions")}
    ran = [f"{kind}: {', '.join(hostnames(cells))}" for kind, cells in by_kind([c for c in report.get("cells") or [] if isinstance(c, dict)]) if kind]
    pkgs = "".join(f", {k} {v}" for k, v in _d(env.get("packages")).items())
    meta = [*((k, ", ".join(v) or "—") for k, v in lists.items()), ("weights", f"{g(m, 'weights')}, seed {g(m, 'seed')}"),
            ("profile", m.get("profile") or "none (built-in defaults)"),
            ("bench", f"{g(bench, 'warmup')} warm-up, then at least {g(bench, 'runs')} runs, {g(bench, 'min_time_s')}–"
                      f"{g(bench, 'max_time_s')} s per cell until the median is known to ±2%, {g(bench, 'threads')} threads"),
            ("timing", _timing_text(report)),
            ("created", g(report, "created")), ("command", " ".join(["edgevt", *[str(a) for a in report.get("argv") or []]])),
            ("machine", f"{g(env, 'host_cpu')} ({g(env, 'logical_cpus')} logical CPUs, {g(env, 'machine')}), {g(env, 'os')}"),
            *(("cells ran on", "; ".join(ran)),) * bool(ran),
            ("software", f"edgevt {g(env, 'edgevt')}, Python {g(env, 'python')}{pkgs}")]
    chips = [f'<span style="background:{STATUS_COLOURS[s]}"{"" if n else " class=zero"}>{s} {esc(n)}</span>'
             for s in STATUSES for n in [summary.get(s, sum(f["status"] == s for f in facts))]]
    n, cached = len(facts), summary.get("cached", sum(f["cached"] for f in facts))
    title = "edgevt matrix: " + " × ".join(f"{len(v)} {k[:-1] if len(v) == 1 else k}" for k, v in lists.items())
    return (f"<header><h1>{esc(title)}</h1><p class=\"muted\">{n} cell{'s' * (n != 1)}, created {esc(g(report, 'created'))}</p>"
            f'<dl class="meta">{"".join(f"<dt>{k}</dt><dd>{esc(v)}</dd>" for k, v in meta)}</dl>'
            f'<div class="chips">{"".join(chips)}<span class="cached">cached {esc(cached)} of {n}</span></div></header>')


CSS = """
body{margin:0;background:#fff;color:#1f2328;font:14px/1.45 system-ui,-apple-system,"Segoe UI","DejaVu Sans",sans-serif}
main{max-width:1180px;margin:0 auto;padding:24px 28px 48px}h1{font-size:22px;margin:0 0 2px}ul.ship{padding-left:20px}
h2{font-size:17px;margin:30px 0 10px;padding-bottom:4px;border-bottom:1px solid #d1d9e0}h2.kind{font-size:19px;margin-top:44px;border-bottom:2px solid #424a53}ul.ship li{margin:3px 0}.muted{color:#59636e}
.bad{color:#cf222e;font-weight:600}.m{font-weight:600;overflow-wrap:anywhere}dl.meta dd{margin:0;overflow-wrap:anywhere}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 18px;margin:14px 0}dl.meta dt{color:#59636e}
.chips span{display:inline-block;padding:1px 10px;margin:0 6px 6px 0;border-radius:11px;color:#fff;font-weight:600;font-size:13px}
.chips span.zero{background:#eaeef2!important;color:#8c959f}.chips span.cached{background:#fff;color:#424a53;border:1px solid #d1d9e0}
figure{margin:18px 0 26px;padding:12px 16px 10px;border:1px solid #d1d9e0;border-radius:8px}svg{display:block;width:100%;height:auto}
figcaption{font-weight:600;margin-bottom:8px}figcaption span{font-weight:400;color:#59636e}svg .group{font-weight:700;font-size:13px}
svg text{font:12px system-ui,"DejaVu Sans",sans-serif;fill:#1f2328}svg .tick,svg .val,svg .ptlabel{fill:#59636e;font-size:11px}
svg .title{font-weight:600;fill:#424a53}svg .note{fill:#6e7781;font-style:italic}svg .empty{fill:#6e7781;font-size:14px}
svg .axis{stroke:#8c959f}svg .grid{stroke:#eaeef2}svg .whisker{stroke:#24292f;stroke-width:1.4;fill:none}
svg .gap{stroke:#afb8c1;stroke-dasharray:2 3}
svg .base{stroke:#24292f;stroke-width:2.5}svg .ring{fill:none;stroke:#d1242f;stroke-width:2}svg .thrlabel{fill:#d1242f;font-size:11px}
svg .thr{stroke:#d1242f;stroke-width:1.2;stroke-dasharray:5 4;fill:none}table{width:100%;border-collapse:collapse;font-size:13px}
th{text-align:left;background:#f6f8fa;font-weight:600}th.n,td.n{text-align:right;font-variant-numeric:tabular-nums}
th,td{padding:5px 8px;border-bottom:1px solid #d1d9e0;vertical-align:top}
tr.detail td{background:#fff8f5;font-size:12.5px;overflow-wrap:anywhere}
.badge{display:inline-block;padding:0 8px;border-radius:10px;color:#fff;font-size:12px;font-weight:600}
pre{white-space:pre-wrap;margin:6px 0 0;padding:8px;background:#f6f8fa;border-radius:6px;font-size:12px}
"""


def render(report: dict) -> str:
    """The whole page as one string; nothing it shows lives outside it."""
    from edgevt.matrix.reports import by_kind, hostnames

    cells = [c for c in report.get("cells") or [] if isinstance(c, dict)]
    facts = [_facts(c) for c in cells]
    matrix = _d(report.get("matrix"))
    targets = dict.fromkeys([str(t) for t in matrix.get("targets") or []] + [f["target"] for f in facts])
    spare = iter(PALETTE * (len(targets) // len(PALETTE) + 1))
    colours = {t: TARGET_COLOURS.get(t) or next(spare) for t in targets}
    precisions = dict.fromkeys([str(p) for p in matrix.get("precisions") or []] + [f["precision"] for f in facts])
    shapes = {p: SHAPES[i % len(SHAPES)] for i, p in enumerate(precisions)}
    groups = by_kind(cells)
    if sum(kind is not None for kind, _ in groups) <= 1:
        body = _sections(facts, colours, shapes, "")
    else:  # latency is only comparable on one kind of machine: each kind gets its own ranking, plots and table
        body = "".join((f'<h2 class="kind">On {esc(kind)} <span class="muted">({esc(", ".join(hostnames(group)))})</span></h2>'
                        if kind else '<h2 class="kind">Not run on any machine <span class="muted">(unsupported, pending, or cached '
                        'without a host)</span></h2>') + _sections([_facts(c) for c in group], colours, shapes, f"-{i}")
                       for i, (kind, group) in enumerate(groups, 1))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>edgevt matrix</title><style>{CSS}</style>"
            f"</head><body><main>{_header_html(report, facts)}{body}</main></body></html>\n")


def _sections(facts: list[dict], colours: dict, shapes: dict, suffix: str) -> str:
    models = list(dict.fromkeys(f["model"] for f in facts))
    figures = "".join(f'<figure id="{i}{suffix}"><figcaption>{c} <span>{n}</span></figcaption>{svg}</figure>' for i, c, n, svg in [
        ("plot-latency", "Warm latency per target and precision", "bar: p50 · whisker: to p90 · black tick: torch eager p50",
         _latency_svg(facts, models, colours)),
        ("plot-tradeoff", "Latency vs parity error", "lower left is better · hover a point for its numbers",
         _tradeoff_svg(facts, colours, shapes)),
        ("plot-size", "Artifact size", "bytes on disk, MB = 10⁶ bytes", _size_svg(facts, models, colours))])
    table = _table_html(facts).replace('<table id="results">', f'<table id="results{suffix}">')
    return f"<h2>Ship candidates</h2>{_ship_html(facts, models)}<h2>Plots</h2>{figures}<h2>Results</h2>{table}"


def write_html(report: dict, path: Path) -> Path:
    """Atomic, so a browser tab reloading mid-run never shows half a page."""
    atomic_write_text(Path(path), render(report))
    return Path(path)
