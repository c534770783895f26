"""What `list`, `info`, `doctor` compute, and the human-readable text of every command."""

from __future__ import annotations

import importlib
import importlib.util
import os
from pathlib import Path

from edgevt.envinfo import environment, package_version
from edgevt.errors import UsageError, first_line
from edgevt.parity import digits_apart

# Runtimes of optional targets and of targets that other issues will add; doctor reports them so users can prepare.
TARGET_RUNTIMES = {
    "coremltools": ("coreml export, MIL interpreter", "pip install coremltools"),
    "litert_torch": ("tflite export (litert-torch, formerly ai-edge-torch)", "pip install litert-torch ai-edge-litert ai-edge-quantizer"),
    "ai_edge_litert": ("tflite runtime (XNNPACK)", "pip install litert-torch ai-edge-litert ai-edge-quantizer"),
    "ai_edge_quantizer": ("tflite fp16/int8", "pip install litert-torch ai-edge-litert ai-edge-quantizer"),
}

PARITY_ENGINES = {"onnx": "onnxruntime-cpu", "tflite": "ai-edge-litert-xnnpack"}

DIST_NAMES = {"PIL": "pillow", "yaml": "PyYAML", "litert_torch": "litert-torch", "ai_edge_litert": "ai-edge-litert",
              "ai_edge_quantizer": "ai-edge-quantizer", "skimage": "scikit-image"}


def _parity_engine(target: str) -> str | None:
    if target == "coreml":
        from edgevt.exporters.coreml_runtime import ENGINE_ENV, binding_error

        if os.environ.get(ENGINE_ENV) == "interpreter":
            return f"mil-interpreter ({ENGINE_ENV}=interpreter)"
        error = binding_error()
        return "coreml-runtime" if error is None else f"mil-interpreter ({'Core ML runtime needs macOS' if error == 'needs macOS' else error})"
    return PARITY_ENGINES.get(target)


def preflight_payload(artifact: Path, compute_units: str | None, log) -> dict:
    from edgevt.exporters import require, target_for_artifact
    from edgevt.exporters.coreml_runtime import compute_plan
    from edgevt.mil.interpreter import load_program
    from edgevt.mil.preflight import preflight

    if not artifact.exists():
        raise UsageError(f"artifact {artifact} does not exist", "pass the .mlpackage that `edgevt export --target coreml` wrote")
    target = target_for_artifact(artifact)
    if target.name != "coreml":
        raise UsageError(f"{artifact.name} is not a Core ML package", "the ANE pre-flight reads .mlpackage files")
    require(target)
    log(f"reading the program in {artifact.name}")
    _, program = load_program(artifact)
    return {"artifact": str(artifact), "preflight": preflight(program).to_dict(), "compute_plan": compute_plan(artifact, compute_units)}


def preflight_text(payload: dict) -> str:
    from edgevt.mil.preflight import markdown

    return f"{payload['artifact']}\n\n{markdown(payload['preflight'])}\n\n{compute_plan_text(payload['compute_plan'])}"


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def compute_plan_text(plan: dict) -> str:
    """MLComputePlan's placement: the ANE's share of Core ML's estimated cost first (a few heavy ops off the ANE
    matter more than many light ones), then of the op count, the heaviest ops off the ANE, and this Mac's devices."""
    if plan["status"] != "measured":
        return f"Core ML compute plan: skipped: {plan['reason']}"
    if not plan["ops"]:
        lines = [f"Core ML compute plan ({plan['compute_units']}): the plan places no ops, so there is no ANE share"]
    else:
        lines = [f"Core ML compute plan ({plan['compute_units']}): {plan['ops']} ops {plan['by_device']}; ANE share "
                 f"{_share(plan.get('ane_cost_share'))} of Core ML's estimated cost, {_share(plan['ane_share'])} of ops"]
        heavy = list((plan.get("off_ane_cost") or {}).items())[:5]
        if heavy:
            lines.append("  heaviest off the ANE: " + ", ".join(f"{op} ({weight:.1%} of the cost)" for op, weight in heavy))
    devices = plan.get("compute_devices") or {}
    if devices.get("available") is not None:
        lines.append(f"  compute devices on this Mac: {', '.join(devices['available']) or 'none reported'}")
    lines += [f"  note: {note}" for note in plan.get("notes") or []]
    return "\n".join(lines)


def _target_rows() -> list[dict]:
    from edgevt.exporters import get_target, missing_requirements, target_names

    rows = []
    for name in target_names():
        target = get_target(name)
        missing = missing_requirements(target)
        rows.append({
            "name": name,
            "suffix": target.suffix,
            "precisions": [p.value for p in target.precisions],
            "available": not missing,
            "missing": missing,
            "install": target.install_hint if missing else None,
            "parity_engine": _parity_engine(name),
            "options": {k: {"default": o.default, "help": o.help} for k, o in target.options.items()},
        })
    return rows


def list_payload(pattern: str) -> dict:
    from edgevt.models import list_models

    models = [
        {
            "name": s.name,
            "family": s.family.name,
            "hf_id": s.hf_id,
            "input_size": s.input_size,
            "paper_params_m": s.paper_params_m,
            "paper_gmacs": s.paper_gmacs,
        }
        for s in list_models(pattern)
    ]
    from edgevt.rewrites import list_rewrites

    return {"models": models, "targets": _target_rows(), "rewrites": [rw.describe() for rw in list_rewrites()]}


def list_text(payload: dict) -> str:
    lines = [f"{'model':<16} {'family':<12} {'input':>5} {'params(M)':>9} {'GMACs':>6}  hf id"]
    for m in payload["models"]:
        lines.append(f"{m['name']:<16} {m['family']:<12} {m['input_size']:>5} {m['paper_params_m']:>9} {m['paper_gmacs']:>6}  {m['hf_id']}")
    if not payload["models"]:
        lines.append("(no variant matches)")
    lines += ["", "params/GMACs: as published (paper); `edgevt info NAME` counts the HF implementation.", "", "targets:"]
    for t in payload["targets"]:
        state = "available" if t["available"] else f"missing {', '.join(t['missing'])} ({t['install']})"
        lines.append(f"  {t['name']:<8} {t['suffix']:<8} {', '.join(t['precisions'])}: {state}")
    lines += ["", "rewrites (--rewrites none|default|NAME,...; default: on for the targets in brackets):"]
    for rw in payload.get("rewrites", []):
        lines.append(f"  {rw['name']:<22} {'/'.join(rw['families']):<18} [{', '.join(rw['default_targets']) or 'opt-in'}] {rw['summary']}")
    return "\n".join(lines)


def count_macs(module, shape) -> float:
    """Multiply-accumulates of one forward pass (torch FlopCounterMode counts matmul/conv FLOPs = 2 x MACs)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        module(torch.zeros(shape))
    return counter.get_total_flops() / 2


def info_payload(model: str, weights: str | None, seed: int | None, input_size: tuple[int, int] | None = None) -> dict:
    """What a model is and takes: class, config, the preprocessing used (and its source), inputs, outputs, params, MACs.
    Weights default to random: architecture facts do not depend on them, and a checkpoint's own processor and
    config are read whatever the weights."""
    from edgevt.models.loading import load_model, resolve_spec

    weights = weights or "random"
    seed = seed or 0
    spec = resolve_spec(model, weights, input_size)
    loaded = load_model(spec, weights, seed)
    described = loaded.describe()
    shapes = _output_shapes(loaded)
    return {
        "name": spec.name,
        "source": spec.source,
        "family": spec.family.name,
        "hf_id": spec.hf_id,
        "hf_class": spec.model_class,
        "registered": spec.registered,
        "config": dict(spec.config),
        "preprocessing": described["preprocessing"],
        "labels": spec.labels,
        "num_labels": described["num_labels"],
        "params": sum(p.numel() for p in loaded.module.parameters()),
        "gmacs": count_macs(loaded.module, spec.input_shape) / 1e9,
        "paper": {"params_m": spec.paper_params_m, "gmacs": spec.paper_gmacs},
        "inputs": [{"name": "pixel_values", "shape": list(spec.input_shape), "dtype": "float32"}],
        "outputs": [{"name": name, "shape": shapes[name], "dtype": "float32"} for name in loaded.output_names],
        "weights": weights,
        "notes": spec.notes,
    }


def _output_shapes(loaded) -> dict[str, list[int]]:
    import torch

    with torch.no_grad():
        out = loaded.module(torch.zeros(loaded.spec.input_shape))
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return {name: list(t.shape) for name, t in zip(loaded.output_names, outs)}


def info_text(p: dict) -> str:
    paper, pre = p["paper"], p["preprocessing"]
    cfg = pre["config"]
    norm = (f"mean {cfg.get('image_mean')} std {cfg.get('image_std')}" if cfg.get("do_normalize") else "no normalisation")
    resample = cfg.get("resample")
    outputs = ", ".join(f"{o['name']} {o['shape']}" for o in p["outputs"])
    return "\n".join([
        f"{p['name']}  ({p['family']}, {p['hf_class']}, {p['hf_id']})",
        f"  params   {p['params'] / 1e6:.2f} M (paper: {paper['params_m']} M)",
        f"  MACs     {p['gmacs']:.2f} G (paper: {paper['gmacs']} G)",
        f"  input    pixel_values {p['inputs'][0]['shape']} float32",
        f"  outputs  {outputs}" + (f" ({p['num_labels']} classes)" if p.get("num_labels") else ""),
        f"  preprocessing  {pre['processor']} from {pre['source']} ({pre['origin']}): {pre['input_size'][0]}x{pre['input_size'][1]}, "
        f"resample {resample}, rescale {cfg.get('rescale_factor') if cfg.get('do_rescale') else 'off'}, {norm}",
    ] + ([f"  note     {pre['input_size_note']}"] if pre.get("input_size_note") else [])
      + [f"  config   {p['config']}"] + ([f"  notes    {p['notes']}"] if p["notes"] else []))


def _import_check(module: str) -> str | None:
    """None if the module imports, else the error (a package can be installed and still fail to import)."""
    if importlib.util.find_spec(module) is None:
        return "not installed"
    try:
        importlib.import_module(module)  # what runtimes print on import goes to the command's log (edgevt -v shows it)
    except Exception as exc:  # report any import failure, never crash doctor
        return f"{type(exc).__name__}: {first_line(exc)}"
    return None


def doctor_payload() -> dict:
    from edgevt.inputs import photo_dir

    checks = []
    for module, purpose, hint in [
        ("torch", "reference models", "pip install torch==2.13.0"),
        ("transformers", "model implementations", "pip install transformers"),
        ("onnx", "onnx target", "pip install onnx"),
        ("onnxruntime", "onnx runtime + quantization", "pip install onnxruntime"),
        ("onnxscript", "dynamo ONNX exporter", "pip install onnxscript"),
        ("safetensors", "--weights PATH", "pip install safetensors"),
        ("PIL", "sample photos", "pip install pillow"),
        ("yaml", "profiles", "pip install pyyaml"),
    ]:
        err = _import_check(module)
        checks.append({"module": module, "for": purpose, "ok": err is None, "error": err, "install": hint if err else None, "required": True})
    for module, (purpose, hint) in TARGET_RUNTIMES.items():
        err = _import_check(module)
        checks.append({"module": module, "for": purpose, "ok": err is None, "error": err, "install": hint if err else None, "required": False})
    try:
        photos = str(photo_dir())
    except Exception as exc:
        photos = None
        checks.append({"module": "skimage", "for": "sample photos", "ok": False, "error": str(exc), "install": "pip install scikit-image", "required": True})
    torch_build = None
    if checks[0]["ok"]:
        import torch

        torch_build = "cuda " + torch.version.cuda if torch.version.cuda else "cpu"
    env = environment()
    from edgevt.android import tools_status

    hf_home = os.environ.get("HF_HOME") or str(Path.home() / ".cache" / "huggingface")
    return {
        "ok": all(c["ok"] for c in checks if c["required"]),
        "checks": checks,
        "targets": _target_rows(),
        "torch_build": torch_build,
        "photos": photos,
        "hf_hub_offline": os.environ.get("HF_HUB_OFFLINE"),
        "hf_home": hf_home,
        "android": tools_status(),
        "environment": env,
    }


def doctor_text(p: dict) -> str:
    env = p["environment"]
    lines = [f"edgevt {env['edgevt']} · Python {env['python']} · {env['os']} · {env['host_cpu']} ({env['logical_cpus']} CPUs)", ""]
    for c in p["checks"]:
        mark = "ok  " if c["ok"] else ("FAIL" if c["required"] else "--  ")
        version = package_version(DIST_NAMES.get(c["module"], c["module"])) or ""
        detail = "" if c["ok"] else f"  {c['error']} -> {c['install']}"
        lines.append(f"  [{mark}] {c['module']:<17} {version:<12} {c['for']}{detail}")
    lines += ["", f"torch build: {p['torch_build']}", f"sample photos: {p['photos']}",
              f"HF cache: {p['hf_home']} (HF_HUB_OFFLINE={p['hf_hub_offline']})", "", "targets:"]
    for t in p["targets"]:
        state = f"available, parity through {t['parity_engine']}" if t["available"] else "missing " + ", ".join(t["missing"])
        lines.append(f"  {t['name']}: {state}")
        lines.append(f"    precisions: {', '.join(t['precisions'])}")
        lines += [f"    --option {key}={_yaml_text(option['default'])}  {option['help']}" for key, option in t["options"].items()]
    android = p["android"]
    lines += ["", "android device benchmark (edgevt bench ARTIFACT --device android[:SERIAL]):",
              f"  adb: {android['adb'] or 'not on PATH (install Android platform-tools)'}",
              f"  benchmark_model: {android['benchmark_model'] or 'not set (--benchmark-model PATH or ' + android['env_var'] + ')'}"]
    lines.append("" if p["ok"] else "\nsomething required is missing: install it with the command shown")
    return "\n".join(lines)


def _headline(report: dict) -> str:
    """export: MODEL -> TARGET PRECISION; an artifact no report describes is named by its file, never "None"."""
    model = (report.get("model") or {}).get("name")
    made = f"{report.get('target')} {report.get('precision') or ''}".rstrip()
    if model:
        return f"{report['command']}: {model} -> {made}"
    return f"{report['command']}: {Path((report.get('artifact') or {}).get('path') or '?').name} ({made})"


def _parity_line(parity: dict) -> str:
    worst = min((o["cosine"] for o in parity.get("outputs", [])), default=float("nan"))
    limit = (parity.get("thresholds") or {}).get("min_cosine")
    cosine = digits_apart(worst, limit, 7) if isinstance(limit, (int, float)) else f"{worst:.7f}"
    from edgevt.parity import top1_text

    top1 = top1_text(parity)
    return (f"  parity    {parity['status'].upper()} ({parity.get('engine')}): cosine {cosine}, "
            f"{top1[0] if top1 else 'top-1 agreement n/a'}")


def _yaml_text(value) -> str:
    """A default as it is typed after --option KEY= (YAML: true, not True)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def summary_text(report: dict, report_path: Path | None, log: Path | None = None) -> str:
    parity, latency = report.get("parity") or {}, report.get("latency") or {}
    art = report.get("artifact", {})
    lines = [_headline(report)]
    lines.append(f"  artifact  {art.get('path')} ({art.get('bytes', 0) / 1e6:.2f} MB)")
    if parity and report["command"] != "bench":
        if parity.get("status") == "skipped":
            lines.append(f"  parity    skipped: {parity.get('reason')}")
        else:
            from edgevt.parity import top1_text
            from edgevt.report import photo_lines

            top1 = top1_text(parity)
            lines.append(_parity_line(parity))
            lines += [f"            {line}" for line in photo_lines(report.get("inputs") or {}, skipped_limit=5)]
            for failure in parity.get("failures", []):
                lines.append(f"            - {failure}")
            lines += [f"            - {line}" for line in top1[1:]]
    if latency.get("status") == "measured":
        warm = latency["warm"]
        ratio = latency.get("speedup_vs_torch_eager")
        # benchmark_model (Android) prints p5/median/p95 (older builds: mean and std only); Core ML picks its threads.
        spread = [f"{name} {warm[key]:.3f} ms" for name, key in (("p50", "p50_ms"), ("p90", "p90_ms"), ("p95", "p95_ms"))
                  if warm.get(key) is not None]
        stats = ", ".join(spread[:2]) if spread else f"mean {warm['mean_ms']:.3f} ms, std {warm['std_ms'] or 0:.3f} ms"
        device = latency.get("device")
        where = f", {device.get('manufacturer')} {device.get('model')} {device.get('serial')}" if device else ""
        settings = latency["settings"]
        threads = f"{settings['threads']} threads" if settings.get("threads") else settings.get("threads_note", "threads not set")
        lines.append(f"  latency   {stats} ({latency['engine']}{where}, {threads})"
                     f"{f', {ratio:.2f}x torch eager' if ratio else ''}")
        lines += [f"            - {note}" for note in latency.get("notes") or []]
        full = _full_speed_text(latency)
        if full:
            lines.append(f"            - {full}")
    elif latency.get("status") == "skipped":
        lines.append(f"  latency   skipped: {latency.get('reason')}")
    pre = (report.get("export") or {}).get("ane_preflight")
    if pre:
        off = ", ".join(f"{f['op_type']} x{f['count']}" for f in pre["findings"] if f["off_ane"]) or "nothing flagged"
        lines.append(f"  ANE       ~{_share(pre['ane_share_estimate'])} of ops expected on the Neural Engine; off it: {off}")
    cleanup = report.get("cleanup") or {}
    removed = [*cleanup.get("stale_staging", []), *cleanup.get("superseded", [])]
    if removed:
        lines.append(f"  removed   {', '.join(removed)} (left by earlier runs)")
    if report_path:
        lines.append(f"  report    {report_path}")
    if log:
        lines.append(f"  log       {log} (other libraries' output)")
    return "\n".join(lines)


def _full_speed_text(latency: dict) -> str | None:
    """One line for the terminal when the host changed speed: the figures over its faster state's blocks."""
    from edgevt.report import full_speed, full_speed_speedup, host_changed_speed

    if not host_changed_speed(latency):
        return None
    full, ratio = full_speed(latency), full_speed_speedup(latency).get("median")
    if full.get("p50_ms") is None:
        return None
    return (f"the host changed speed; at full speed ({full['blocks']} of {full['of_blocks']} blocks): p50 {full['p50_ms']:.3f} ms"
            + (f", {ratio:.2f}x torch eager" if ratio else ""))
