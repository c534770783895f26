"""What `list`, `info`, `doctor` compute, and the human-readable text of every command."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import os
import warnings
from pathlib import Path

from edgevt.envinfo import environment, package_version
from edgevt.errors import UsageError, first_line

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
        from edgevt.exporters.coreml_runtime import runtime_available

        return "coreml-runtime" if runtime_available() else "mil-interpreter (Core ML runtime needs macOS)"
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

    plan = payload["compute_plan"]
    if plan["status"] == "measured":
        tail = f"Core ML compute plan ({plan['compute_units']}): {plan['by_device']}, ANE share {plan['ane_share']:.0%}"
    else:
        tail = f"Core ML compute plan: skipped: {plan['reason']}"
    return f"{payload['artifact']}\n\n{markdown(payload['preflight'])}\n\n{tail}"


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


def info_payload(model: str, weights: str, seed: int) -> dict:
    import torch

    from edgevt.models.loading import load_model, resolve_spec

    spec = resolve_spec(model)
    loaded = load_model(spec, weights, seed)
    with torch.no_grad():
        out = loaded.module(torch.zeros(spec.input_shape))
    pre = spec.preprocess
    return {
        "name": spec.name,
        "family": spec.family.name,
        "hf_id": spec.hf_id,
        "hf_class": spec.family.model_class,
        "config": dict(spec.config),
        "preprocess": {"processor": spec.family.processor, "size": pre.size, "resize_shortest": pre.resize_shortest,
                       "resample": pre.resample, "mean": list(pre.mean), "std": list(pre.std)},
        "labels": spec.labels,
        "params": sum(p.numel() for p in loaded.module.parameters()),
        "gmacs": count_macs(loaded.module, spec.input_shape) / 1e9,
        "paper": {"params_m": spec.paper_params_m, "gmacs": spec.paper_gmacs},
        "inputs": [{"name": "pixel_values", "shape": list(spec.input_shape), "dtype": "float32"}],
        "outputs": [{"name": "logits", "shape": list(out.shape), "dtype": "float32"}],
        "weights": weights,
        "notes": spec.notes,
    }


def info_text(p: dict) -> str:
    paper = p["paper"]
    return "\n".join([
        f"{p['name']}  ({p['family']}, {p['hf_class']}, {p['hf_id']})",
        f"  params   {p['params'] / 1e6:.2f} M (paper: {paper['params_m']} M)",
        f"  MACs     {p['gmacs']:.2f} G (paper: {paper['gmacs']} G)",
        f"  input    pixel_values {p['inputs'][0]['shape']} float32",
        f"  output   logits {p['outputs'][0]['shape']} float32 ({p['labels']})",
        f"  preprocess {p['preprocess']}",
        f"  config   {p['config']}",
    ] + ([f"  notes    {p['notes']}"] if p["notes"] else []))


def _import_check(module: str) -> str | None:
    """None if the module imports, else the error (a package can be installed and still fail to import)."""
    if importlib.util.find_spec(module) is None:
        return "not installed"
    try:
        # Runtimes announce themselves on import (coremltools off macOS, torchao, absl): keep doctor's output readable.
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            importlib.import_module(module)
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
    android = p["android"]
    lines += ["", "android device benchmark (edgevt bench ARTIFACT --device android[:SERIAL]):",
              f"  adb: {android['adb'] or 'not on PATH (install Android platform-tools)'}",
              f"  benchmark_model: {android['benchmark_model'] or 'not set (--benchmark-model PATH or ' + android['env_var'] + ')'}"]
    lines.append("" if p["ok"] else "\nsomething required is missing: install it with the command shown")
    return "\n".join(lines)


def summary_text(report: dict, report_path: Path | None) -> str:
    parity, latency = report.get("parity") or {}, report.get("latency") or {}
    art = report.get("artifact", {})
    lines = [f"{report['command']}: {report.get('model', {}).get('name')} -> {report.get('target')} {report.get('precision') or ''}".rstrip()]
    lines.append(f"  artifact  {art.get('path')} ({art.get('bytes', 0) / 1e6:.2f} MB)")
    if parity and report["command"] != "bench":
        if parity.get("status") == "skipped":
            lines.append(f"  parity    skipped: {parity.get('reason')}")
        else:
            worst = min((o["cosine"] for o in parity.get("outputs", [])), default=float("nan"))
            top1 = parity.get("top1_agreement")
            lines.append(f"  parity    {parity['status'].upper()} ({parity.get('engine')}): cosine {worst:.7f}, "
                         f"top-1 agreement {'n/a' if top1 is None else f'{top1:.1%}'}")
            for failure in parity.get("failures", []):
                lines.append(f"            - {failure}")
    if latency.get("status") == "measured":
        warm = latency["warm"]
        ratio = latency.get("speedup_vs_torch_eager")
        # benchmark_model (Android) reports mean and std, no percentiles.
        stats = (f"p50 {warm['p50_ms']:.3f} ms, p90 {warm['p90_ms']:.3f} ms" if warm.get("p50_ms") is not None
                 else f"mean {warm['mean_ms']:.3f} ms, std {warm['std_ms'] or 0:.3f} ms")
        device = latency.get("device")
        where = f", {device.get('manufacturer')} {device.get('model')} {device.get('serial')}" if device else ""
        lines.append(f"  latency   {stats} ({latency['engine']}{where}, "
                     f"{latency['settings']['threads']} threads){f', {ratio:.2f}x torch eager' if ratio else ''}")
    elif latency.get("status") == "skipped":
        lines.append(f"  latency   skipped: {latency.get('reason')}")
    pre = (report.get("export") or {}).get("ane_preflight")
    if pre:
        off = ", ".join(f"{f['op_type']} x{f['count']}" for f in pre["findings"] if f["off_ane"]) or "nothing flagged"
        lines.append(f"  ANE       ~{pre['ane_share_estimate']:.0%} of ops expected on the Neural Engine; off it: {off}")
    if report_path:
        lines.append(f"  report    {report_path}")
    return "\n".join(lines)
