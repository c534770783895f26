"""report.json (versioned schema) and report.md, written next to the artifact."""

from __future__ import annotations

import datetime as _dt
import json
import math
import sys
from pathlib import Path

from edgevt import REPORT_SCHEMA_VERSION
from edgevt.fsio import atomic_write_text

REPORT_JSON = "report.json"
REPORT_MD = "report.md"
FAILED_SUFFIX = ".failed"  # report.failed.json: a run that failed parity never overwrites report.json


def new_report(command: str, **sections) -> dict:
    return {
        "schema": "edgevt.report",
        "schema_version": REPORT_SCHEMA_VERSION,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "argv": sys.argv[1:],
        **sections,
    }


def _clean(value):
    """JSON has no inf/NaN: write them as strings so the file stays standard JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return "inf" if value > 0 else ("-inf" if value < 0 else "nan")
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def to_json(report: dict) -> str:
    return json.dumps(_clean(report), indent=2, sort_keys=False)


def load_existing(directory: Path) -> dict | None:
    path = directory / REPORT_JSON
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if data.get("schema") == "edgevt.report" else None


def write(report: dict, directory: Path, failed: bool = False) -> tuple[Path, Path]:
    stem = "report" + (FAILED_SUFFIX if failed else "")
    json_path, md_path = directory / f"{stem}.json", directory / f"{stem}.md"
    atomic_write_text(json_path, to_json(report) + "\n")
    atomic_write_text(md_path, markdown(report))
    return json_path, md_path


def _fmt(value, spec: str = ".4g") -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return format(value, spec)


def markdown(report: dict) -> str:
    model, parity, latency = report.get("model", {}), report.get("parity") or {}, report.get("latency") or {}
    art = report.get("artifact") or {}
    lines = [
        f"# edgevt {report['command']}: {model.get('name')} → {report.get('target')} {report.get('precision')}",
        "",
        f"- artifact: `{art.get('path')}` ({_fmt(art.get('bytes', 0) / 1e6, '.2f')} MB)",
        f"- weights: {model.get('weights')} (seed {model.get('seed')}), sha256 `{str(model.get('weights_sha256'))[:16]}…`",
        f"- created: {report['created']} · edgevt {report.get('environment', {}).get('edgevt')}",
    ]
    export = report.get("export")
    if export and export.get("converter"):  # tflite
        xnn = export.get("xnnpack") or {}
        left = ", ".join(f"{op} ×{n}" for op, n in (xnn.get("not_delegated") or {}).items()) or "none"
        lines.append(f"- export: {export['converter']}, {export.get('layout')} input, {export.get('seconds')} s")
        lines.append(f"- XNNPACK: {xnn.get('nodes_delegated')} of {xnn.get('nodes_total')} nodes in {xnn.get('partitions')} "
                     f"partition(s); on the built-in kernels: {left}")
    elif export:
        via = export.get("exporter")
        fallback = f" (fallback: {export['fallback_reason']})" if export.get("fallback_reason") else ""
        how = f"opset {export.get('opset')}" if export.get("opset") else (
            f"{export.get('format')}, {export.get('deployment_target')}, compute units {export.get('compute_units')}, "
            f"{export.get('input_type')} input")
        lines.append(f"- export: {via}, {how}, {export.get('seconds')} s{fallback}")
        if export.get("compression"):
            lines.append(f"- compression: {export['compression'].get('weights')}, {export['compression'].get('compute')} compute")
    lines += ["", "## Parity", ""]
    if parity.get("status") == "skipped":
        lines.append(f"**skipped**: {parity.get('reason')}")
    elif parity:
        lines.append(
            f"**{parity['status']}** — engine `{parity.get('engine')}` vs `{parity.get('reference')}`, "
            f"{parity.get('samples')} samples ({parity.get('photos')} photos); top-1 agreement "
            f"{_fmt(parity.get('top1_agreement'), '.1%')}, top-5 overlap {_fmt(parity.get('top5_agreement'), '.1%')}"
        )
        lines += ["", "| output | max abs | max rel | cosine (worst) | PSNR dB | SNR dB | NaN/inf |", "|---|---|---|---|---|---|---|"]
        for o in parity.get("outputs", []):
            lines.append(
                f"| {o['name']} | {_fmt(o['max_abs'], '.3g')} | {_fmt(o['max_rel'], '.3g')} | {_fmt(o['cosine'], '.7f')} "
                f"| {_fmt(o['psnr_db'], '.1f')} | {_fmt(o['snr_db'], '.1f')} | {o['nonfinite']} |"
            )
        if parity.get("failures"):
            lines += ["", "Failures:", *[f"- {f}" for f in parity["failures"]]]
        for d in parity.get("top1_disagreements") or []:
            lines.append(f"- top-1 changed on `{d['sample']}`: class {d['reference_class']} → {d['candidate_class']} "
                         f"(reference top-1/top-2 margin {d['reference_margin']:.3g})")
        diag = parity.get("diagnosis")
        if diag:
            lines += ["", f"Where the reduced precision loses accuracy ({diag.get('engine')}, sample `{diag.get('sample')}`):", "",
                      "| op | name | rel. error of output | error added by this op |", "|---|---|---|---|"]
            for d in diag.get("worst_ops", []):
                lines.append(f"| {d['op']} | `{d['name']}` | {_fmt(d['rel_error'], '.3g')} | {_fmt(d['added'], '.3g')} |")
            over = diag.get("first_overflow")
            lines.append("\nFirst fp16 overflow: " + (f"`{over['name']}` ({over['op']}), |x| reaches {over['max_abs_fp32']:.4g} > 65504"
                                                       if over else "none (every fp16 tensor stays within ±65504)"))
    lines += ["", "## Latency", ""]
    if latency.get("status") == "skipped" or not latency:
        lines.append(f"**skipped**: {latency.get('reason', 'not measured')}")
    else:
        lines += ["| engine | load ms | first ms | p50 ms | p90 ms | p99 ms | std ms | median 95% CI | runs |", "|---|---|---|---|---|---|---|---|---|"]
        for entry in [latency, latency.get("baseline")]:
            if not entry:
                continue
            cold, warm = entry["cold"], entry["warm"]
            ci = warm.get("median_ci95_ms", [None, None])
            lines.append(
                f"| {entry['engine']} | {_fmt(cold['load_ms'], '.1f')} | {_fmt(cold['first_inference_ms'], '.2f')} "
                f"| {_fmt(warm['p50_ms'], '.3f')} | {_fmt(warm['p90_ms'], '.3f')} | {_fmt(warm['p99_ms'], '.3f')} "
                f"| {_fmt(warm['std_ms'], '.3f')} | {_fmt(ci[0], '.3f')}–{_fmt(ci[1], '.3f')} | {warm['runs']} |"
            )
        if latency.get("device"):
            dev, warm, mem = latency["device"], latency["warm"], latency.get("memory_mb") or {}
            lines.append(f"\nOn {dev.get('manufacturer')} {dev.get('model')} (serial {dev.get('serial')}, SoC {dev.get('soc')}, Android "
                         f"{dev.get('android')}): mean {_fmt(warm.get('mean_ms'), '.3f')} ms ± {_fmt(warm.get('std_ms'), '.3f')} "
                         f"(min {_fmt(warm.get('min_ms'), '.3f')}, max {_fmt(warm.get('max_ms'), '.3f')}); benchmark_model reports "
                         f"no percentiles. Memory (MB): init +{_fmt(mem.get('init_delta'))}, overall +{_fmt(mem.get('overall_delta'))}, "
                         f"peak {_fmt(mem.get('peak'))}. Log: `{latency.get('log')}`")
        if latency.get("speedup_vs_torch_eager"):
            lines.append(f"\nSpeed-up vs torch eager (p50 ratio, same run): **{latency['speedup_vs_torch_eager']:.2f}×**")
        lines.append(f"\nPeak RSS {_fmt(latency.get('peak_rss_mb'), '.0f')} MB, {latency.get('settings', {}).get('threads')} threads")
    if export and export.get("rewrites"):
        from edgevt.rewrites.apply import markdown as rewrites_markdown

        lines += ["", "## Rewrites", "", rewrites_markdown(export["rewrites"])]
    if export and export.get("ane_preflight"):
        from edgevt.mil.preflight import markdown as preflight_markdown

        lines += ["", "## Neural Engine pre-flight", "", preflight_markdown(export["ane_preflight"])]
    env = report.get("environment", {})
    lines += ["", "## Environment", "", f"{env.get('host_cpu')} ({env.get('logical_cpus')} logical CPUs), {env.get('os')}, Python {env.get('python')}", ""]
    lines.append(", ".join(f"{k} {v}" for k, v in env.get("packages", {}).items()))
    return "\n".join(lines) + "\n"
