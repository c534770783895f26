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


def model_lines(model: dict, inputs: dict) -> list[str]:
    """What was checked: the checkpoint's class and outputs, and the preprocessing (with its source) the samples went through."""
    lines = []
    if model.get("architecture"):
        where = f" from `{model['checkpoint']}`" if model.get("checkpoint") else ""
        lines.append(f"- model: {model['architecture']}{where}; outputs {', '.join(model.get('outputs') or [])}"
                     + (f" ({model['num_labels']} classes)" if model.get("num_labels") else ""))
    pre = model.get("preprocessing")
    if pre:
        cfg = pre.get("config") or {}
        norm = f"mean {cfg.get('image_mean')}, std {cfg.get('image_std')}" if cfg.get("do_normalize") else "no normalisation"
        lines.append(f"- preprocessing: {pre.get('processor')} from the {pre.get('source')} ({pre.get('origin')}): "
                     f"{'x'.join(map(str, pre.get('input_size') or []))}, resample {cfg.get('resample')}, "
                     f"rescale {cfg.get('rescale_factor') if cfg.get('do_rescale') else 'off'}, {norm}")
        if pre.get("input_size_note"):
            lines.append(f"- input size: {pre['input_size_note']}")
    if inputs.get("kind") == "image":
        lines.append("- input: RGB pixels 0..255 (the checkpoint's rescale and normalisation are inside the artifact); parity "
                     "compares the artifact on the processor's pixels with the HF processor + PyTorch model")
    return lines


def _skipped_text(skipped: list[dict], limit: int | None) -> str:
    shown = skipped if limit is None else skipped[:limit]
    more = f"; and {len(skipped) - len(shown)} more" if len(skipped) > len(shown) else ""
    return "; ".join(f"{s['file']} ({s['reason']})" for s in shown) + more


def photo_lines(inputs: dict, skipped_limit: int | None = None) -> list[str]:
    """Which photos parity (and int8 calibration) ran on, what was skipped, and how much the two sets share: for
    report.md and the CLI summary."""
    images = inputs.get("images")
    if not images:
        return []

    def where(section: dict) -> str:
        if section.get("source") == "builtin":
            return "the built-in set"
        return f"{section.get('source')}"

    def cap(section: dict) -> str:
        if not section.get("not_selected"):
            return ""
        return f" (at most {section.get('cap')}, from {section.get('cap_from')}; {section['not_selected']} not selected)"

    noise = inputs.get("noise")
    lines = [f"photos: {images['used']} from {where(images)}{cap(images)}" + (f" + {noise} seeded noise samples" if noise else "")]
    if images.get("recipe"):
        lines[-1] += f" — {images['recipe']}"
    if images.get("skipped"):
        lines.append(f"skipped {len(images['skipped'])} file(s): {_skipped_text(images['skipped'], skipped_limit)}")
    cal = inputs.get("calibration")
    if cal:
        shared = cal.get("shared_with_evaluation")
        lines.append(f"int8 calibration: {cal.get('used')} photos from {where(cal)}{cap(cal)}"
                     + (f", {shared} of them also evaluation photos" if shared is not None else "") + f" — {cal.get('note')}")
        if cal.get("skipped"):
            lines.append(f"calibration skipped {len(cal['skipped'])} file(s): {_skipped_text(cal['skipped'], skipped_limit)}")
    return lines


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
    lines += model_lines(model, report.get("inputs") or {})
    lines += [f"- {line}" for line in photo_lines(report.get("inputs") or {})]
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
        loaded = export.get("ops_at_load")
        if loaded and "error" not in loaded:
            top = ", ".join(f"{op} ×{n}" for op, n in list(loaded.items())[:8])
            lines.append(f"- as ONNX Runtime runs it (after its load-time optimisations): {sum(loaded.values())} nodes "
                         f"(in the file: {sum((export.get('ops') or {}).values())}); {top}")
        if export.get("compression"):
            lines.append(f"- compression: {export['compression'].get('weights')}, {export['compression'].get('compute')} compute")
    lines += ["", "## Parity", ""]
    if parity.get("status") == "skipped":
        lines.append(f"**skipped**: {parity.get('reason')}")
    elif parity:
        from edgevt.parity import top1_text

        top1 = top1_text(parity, flips=None)
        lines.append(
            f"**{parity['status']}** — engine `{parity.get('engine')}` vs `{parity.get('reference')}`, "
            f"{parity.get('samples')} samples ({parity.get('photos')} photos); "
            + (f"{top1[0]}, top-5 overlap {_fmt(parity.get('top5_agreement'), '.1%')}" if top1 else "no class output: no top-1 agreement")
        )
        lines += ["", "| output | max abs | max rel | cosine (worst) | PSNR dB | SNR dB | NaN/inf |", "|---|---|---|---|---|---|---|"]
        for o in parity.get("outputs", []):
            lines.append(
                f"| {o['name']} | {_fmt(o['max_abs'], '.3g')} | {_fmt(o['max_rel'], '.3g')} | {_fmt(o['cosine'], '.7f')} "
                f"| {_fmt(o['psnr_db'], '.1f')} | {_fmt(o['snr_db'], '.1f')} | {o['nonfinite']} |"
            )
        if parity.get("failures"):
            lines += ["", "Failures:", *[f"- {f}" for f in parity["failures"]]]
        if len(top1) > 1:
            lines += ["", *[f"- {line}" for line in top1[1:]]]
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
        lines += latency_markdown(latency)
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


def latency_markdown(latency: dict) -> list[str]:
    """The measured latency section: a row per runtime, then how it was timed (protocol, threads, what sampling reached)
    and the host's compute bound."""
    lines = ["| engine | load ms | first ms | p50 ms | p90 ms | p99 ms | std ms | median 95% CI | runs | efficiency |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for entry in [latency, latency.get("baseline")]:
        if not entry:
            continue
        cold, warm = entry["cold"], entry["warm"]
        ci = warm.get("median_ci95_ms", [None, None])
        lines.append(
            f"| {entry['engine']} | {_fmt(cold['load_ms'], '.1f')} | {_fmt(cold['first_inference_ms'], '.2f')} "
            f"| {_fmt(warm['p50_ms'], '.3f')} | {_fmt(warm['p90_ms'], '.3f')} | {_fmt(warm['p99_ms'], '.3f')} "
            f"| {_fmt(warm['std_ms'], '.3f')} | {_fmt(ci[0], '.3f')}–{_fmt(ci[1], '.3f')} | {warm['runs']} | {_fmt(entry.get('efficiency'), '.1%')} |"
        )
    if latency.get("device"):
        lines += ["", _device_paragraph(latency)]
    if latency.get("runtime"):
        lines += ["", _runtime_paragraph(latency)]
    if latency.get("speedup_vs_torch_eager"):
        lines.append("\n" + speedup_line(latency))
    full = full_speed_line(latency)
    if full:
        lines.append("\n" + full)
    lines += [""] + [f"- {line}" for line in how_timed(latency)]
    settings = latency.get("settings", {})
    threads = f"{settings['threads']} threads" if settings.get("threads") else settings.get("threads_note", "threads not set")
    lines.append(f"- peak RSS {_fmt(latency.get('peak_rss_mb'), '.0f')} MB, {threads}")
    lines += [f"- {note}" for note in latency.get("notes") or []]
    return lines


def speedup_line(latency: dict) -> str:
    how = latency.get("speedup") or {}
    text = f"Speed-up vs torch eager: **{latency['speedup_vs_torch_eager']:.2f}×**"
    if how.get("rounds"):
        lo, hi = how.get("ci95") or [None, None]
        return (text + f" (median of {how['rounds']} per-round ratios of adjacent blocks, 95% CI {_fmt(lo, '.2f')}–"
                f"{_fmt(hi, '.2f')}; ratio of the two p50s {_fmt(how.get('ratio_of_p50s'), '.2f')})")
    return text + " (p50 ratio, same run)"


def full_speed(section: dict | None) -> dict:
    """A runtime's figures over its blocks at the host's full speed (edgevt.bench's `warm.full_speed`), or {}."""
    return ((section or {}).get("warm") or {}).get("full_speed") or {}


def full_speed_speedup(latency: dict | None) -> dict:
    """The paired speed-up over the rounds in which both runtimes ran at full speed (`speedup.full_speed`), or {}."""
    return ((latency or {}).get("speedup") or {}).get("full_speed") or {}


def host_changed_speed(latency: dict) -> bool:
    """Whether edgevt.bench saw the host change speed during the run (the full-speed figures are then worth showing)."""
    return bool(((latency.get("protocol") or {}).get("host") or {}).get("unsteady"))


def full_speed_line(latency: dict) -> str | None:
    """When the host changed speed during the run: the figures over the blocks of its faster state (edgevt.bench),
    which repeat from run to run where medians over all samples do not."""
    if not host_changed_speed(latency):
        return None
    parts, rule = [], full_speed(latency).get("rule")
    for entry in [latency, latency.get("baseline")]:
        full = full_speed(entry)
        if full.get("p50_ms") is not None:
            lo, hi = full.get("median_ci95_ms") or [None, None]
            parts.append(f"{entry['engine']} p50 {_fmt(full['p50_ms'], '.3f')} ms (95% CI {_fmt(lo, '.3f')}–{_fmt(hi, '.3f')}; "
                         f"{full['blocks']} of {full['of_blocks']} blocks)")
    ratio = full_speed_speedup(latency)
    if ratio.get("median") is not None:
        parts.append(f"speed-up {ratio['median']:.2f}× over the {ratio['rounds']} rounds in which both ran at full speed")
    return (f"At the host's full speed ({rule or 'the blocks of its faster state'}; the host changed speed during the "
            "run): " + "; ".join(parts)) if parts else None


def how_timed(latency: dict) -> list[str]:
    """One line each: the protocol, the threading settings, what the adaptive sampling reached, the compute bound."""
    out = []
    proto, threading, bound = latency.get("protocol") or {}, latency.get("threading") or {}, latency.get("compute_bound") or {}
    if proto:
        blocks, pause, sampling = proto.get("blocks") or {}, proto.get("pause") or {}, proto.get("sampling") or {}
        out.append(f"protocol `{proto.get('name')}` ({proto.get('implementation')}): blocks of about {blocks.get('target_s')} s "
                   f"({', '.join(map(str, blocks.get('runs') or []))} runs), {blocks.get('order')}, {blocks.get('rounds')} rounds; "
                   f"before each switch a pause {pause.get('rule')}: median {_fmt(pause.get('median_ms'), '.0f')} ms, "
                   f"max {_fmt(pause.get('max_ms'), '.0f')} ms, {pause.get('not_idle')} of {pause.get('count')} hit the cap")
        reached = ", ".join(f"±{_fmt(x, '.1%')}" for x in sampling.get("reached_ci95_rel") or [])
        out.append(f"sampling: {_fmt(sampling.get('seconds'), '.1f')} s, stopped by {sampling.get('stopped_by')} "
                   f"(target ±{_fmt(sampling.get('target_ci95_rel'), '.0%')} on the median's 95% CI, min {sampling.get('min_time_s')} s, "
                   f"max {sampling.get('max_time_s')} s); reached {reached}")
        if (proto.get("host") or {}).get("note"):
            out.append(f"note: {proto['host']['note']}")
    if threading:
        parts = [f"{k}: " + ", ".join(f"{a} {b}" for a, b in v.items()) if isinstance(v, dict) else f"{k} {v}" for k, v in threading.items()]
        out.append("threading (library defaults, thread counts set): " + "; ".join(parts))
    if bound.get("status") == "measured":
        rates = ", ".join(f"{k} {_fmt(v, '.0f')}" for k, v in bound["gemm_gflops"].items() if isinstance(v, (int, float)))
        out.append(f"compute bound {_fmt(bound['bound_ms'], '.2f')} ms: {_fmt(bound['gflop'], '.2f')} GFLOP (2 × MACs) at "
                   f"{_fmt(bound['peak_gflops'], '.0f')} GFLOP/s, the fp32 GEMM peak of this host at {bound['threads']} threads "
                   f"({bound['probe']['n']}² MatMul, GFLOP/s: {rates}); efficiency = bound / p50 ({bound.get('note')})")
    elif bound:
        out.append(f"compute bound skipped: {bound.get('reason')}")
    return out


def _device_paragraph(latency: dict) -> str:
    """Android: which phone, which benchmark_model binary, and what it measured."""
    dev, warm, mem = latency["device"], latency["warm"], latency.get("memory_mb") or {}
    binary, settings = latency.get("binary") or {}, latency.get("settings") or {}
    spread = (f"median {_fmt(warm.get('p50_ms'), '.3f')} ms (p5 {_fmt(warm.get('p5_ms'), '.3f')}, p95 {_fmt(warm.get('p95_ms'), '.3f')}), "
              if warm.get("p50_ms") is not None else "no percentiles (an older benchmark_model build), ")
    return (f"On {dev.get('manufacturer')} {dev.get('model')} (serial {dev.get('serial')}, SoC {dev.get('soc')}, Android "
            f"{dev.get('android')}, {dev.get('abi')}), measured by {binary.get('name', 'benchmark_model')} (`{binary.get('file')}`) "
            f"with {settings.get('threads')} threads ({settings.get('threads_source', 'as set')}): {warm.get('runs')} runs, {spread}"
            f"mean {_fmt(warm.get('mean_ms'), '.3f')} ms ± {_fmt(warm.get('std_ms'), '.3f')} (min {_fmt(warm.get('min_ms'), '.3f')}, "
            f"max {_fmt(warm.get('max_ms'), '.3f')}); load is benchmark_model's init time. Memory (MB): init "
            f"+{_fmt(mem.get('init_delta'))}, overall +{_fmt(mem.get('overall_delta'))}, peak {_fmt(mem.get('peak'))}. "
            f"Log: `{latency.get('log')}`")


def _runtime_paragraph(latency: dict) -> str:
    """What the runtime itself reported (Core ML on a Mac): its own timings and the compute devices it had."""
    runtime, warm, cold = latency["runtime"], latency["warm"], latency["cold"]
    parts = [f"Measured by {runtime.get('name', latency['engine'])}."]
    if runtime.get("timing"):
        parts.append(runtime["timing"])
    engine = warm.get("predict_only")
    if engine:
        parts.append(f"{engine['source']}: p50 {_fmt(engine.get('p50_ms'), '.3f')} ms, p90 {_fmt(engine.get('p90_ms'), '.3f')} ms "
                     f"(first prediction {_fmt(cold.get('first_inference_predict_only_ms'), '.2f')} ms).")
    if cold.get("compile_ms") is not None:
        parts.append(f"Cold start: compile {_fmt(cold['compile_ms'], '.1f')} ms, load {_fmt(cold['load_ms'], '.1f')} ms.")
    devices = runtime.get("compute_devices") or {}
    if devices.get("available") is not None:
        parts.append(f"Compute devices on this machine: {', '.join(devices['available']) or 'none reported'}.")
    elif devices.get("reason"):
        parts.append(f"Compute devices: unknown ({devices['reason']}).")
    return " ".join(parts)
