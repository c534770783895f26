"""name -> ModelSpec -> torch module + samples -> exporter -> artifact -> runner -> parity + latency -> report."""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from edgevt import report as reports
from edgevt.bench import BenchSettings, measure_interleaved
from edgevt.envinfo import environment
from edgevt.errors import EXIT_OK, EXIT_PARITY, RuntimeUnavailable, UsageError
from edgevt.fsio import place, sha256_file, size_bytes, staging_dir
from edgevt.parity import DEFAULT_THRESHOLDS, ParityReport, Precision, compare

Log = Callable[[str], None]


@dataclass
class Outcome:
    report: dict
    exit_code: int
    report_path: Path | None = None
    messages: list[str] = field(default_factory=list)


@dataclass
class Reference:
    """The PyTorch model, the samples and its outputs on them: what every export is checked against."""

    loaded: object
    samples: object
    outputs: dict[str, np.ndarray]


def default_threads() -> int:
    return os.cpu_count() or 1


def make_reference(model, weights: str, seed: int, log: Log) -> Reference:
    """model: a name (resolved here) or an already resolved ModelSpec (a matrix worker gets one from its parent)."""
    from edgevt.exporters.base import run_batched
    from edgevt.exporters.torch_eager import TorchEagerRunner
    from edgevt.inputs import parity_samples
    from edgevt.models.loading import load_model, resolve_spec

    spec = resolve_spec(model) if isinstance(model, str) else model
    log(f"loading {spec.name} ({weights} weights{f', seed {seed}' if weights == 'random' else ''})")
    loaded = load_model(spec, weights, seed)
    samples = parity_samples(spec.preprocess, seed)
    log(f"running the PyTorch reference on {len(samples)} samples")
    outputs = run_batched(TorchEagerRunner(loaded.module), samples.batch)
    return Reference(loaded, samples, outputs)


def check_parity(target, artifact: Path, ref: Reference, precision: Precision, tolerances: dict, threads: int, log: Log,
                 runner_options: dict | None = None) -> ParityReport:
    from edgevt.exporters.base import run_batched

    runner = target.open_runner(artifact, threads, **(runner_options or {}))
    log(f"checking parity of {artifact.name} on {len(ref.samples)} samples ({runner.engine})")
    t0 = time.perf_counter()
    candidate = run_batched(runner, ref.samples.batch)
    seconds = time.perf_counter() - t0
    thresholds = DEFAULT_THRESHOLDS[precision].override(**tolerances)
    parity = compare(ref.outputs, candidate, thresholds, ref.samples.is_photo, runner.engine, precision.value,
                     sample_names=ref.samples.names)
    parity.engine_seconds = round(seconds, 3)
    if target.diagnose is not None and precision is not Precision.FP32 and parity.status != "skipped":
        worst = _worst_sample(ref.outputs, candidate)
        log(f"locating the ops that lose the most precision (sample {ref.samples.names[worst]})")
        parity.diagnosis = {"sample": ref.samples.names[worst], **target.diagnose(artifact, ref.samples.batch[worst : worst + 1])}
    return parity


def _worst_sample(reference: dict, candidate: dict) -> int:
    """Index of the sample with the largest relative error on the first common output."""
    name = next(n for n in reference if n in candidate)
    ref, cand = reference[name].reshape(len(reference[name]), -1), candidate[name].reshape(len(candidate[name]), -1)
    with np.errstate(invalid="ignore", divide="ignore"):
        err = np.nan_to_num(np.linalg.norm(cand - ref, axis=1) / np.maximum(np.linalg.norm(ref, axis=1), 1e-12), nan=np.inf)
    return int(np.argmax(err))


def benchmark(target, artifact: Path, batch: np.ndarray, settings: BenchSettings, log: Log, baseline_module=None,
              runner_options: dict | None = None) -> dict:
    """Latency of the artifact; with a module, torch eager is timed in alternation with it (same run, same load)."""
    reason = target.latency_unavailable()
    if reason:
        log(f"latency skipped: {reason}")
        return {"status": "skipped", "reason": reason}
    threads = settings.threads or default_threads()
    settings = replace(settings, threads=threads)  # every report records the count actually used
    openers = [lambda: target.open_runner(artifact, threads, **(runner_options or {}))]
    if baseline_module is not None:
        from edgevt.exporters.torch_eager import TorchEagerRunner

        openers.append(lambda: TorchEagerRunner(baseline_module, threads))
    names = " and torch eager, interleaved" if baseline_module is not None else ""
    log(f"timing {artifact.name}{names}: {settings.warmup} warmup + {settings.runs} runs, {threads} threads")
    reports_ = [r.to_dict() for r in measure_interleaved(openers, batch, settings)]
    lat = {**reports_[0], "status": "measured"}
    if len(reports_) > 1:
        lat["baseline"] = reports_[1]
        lat["speedup_vs_torch_eager"] = reports_[1]["warm"]["p50_ms"] / lat["warm"]["p50_ms"]
    return lat


def artifact_name(model_name: str, precision: Precision, suffix: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "--", model_name).strip("-") + f"-{precision.value}{suffix}"


def artifact_info(path: Path) -> dict:
    return {"path": str(path), "bytes": size_bytes(path), "sha256": sha256_file(path)}


def export(
    model: str,
    target_name: str,
    precision: Precision | None,
    weights: str,
    seed: int,
    out_dir: Path,
    options: dict,
    tolerances: dict,
    bench: BenchSettings | None,
    log: Log,
    rewrites: str | tuple[str, ...] = "none",
) -> Outcome:
    from edgevt.exporters import get_target, require
    from edgevt.rewrites.apply import prepare

    target = get_target(target_name)
    require(target)
    precision = precision or target.default_precision
    if precision not in target.precisions:
        raise UsageError(f"target {target.name} does not support {precision.value}", f"choose one of {', '.join(p.value for p in target.precisions)}")
    opts = target.parse_options(options)
    ref = make_reference(model, weights, seed, log)
    spec = ref.loaded.spec
    final = out_dir / artifact_name(spec.name, precision, target.suffix)
    # The exporter gets a rewritten copy; parity and the torch-eager baseline use the unrewritten reference.
    to_export, rewrites_record = prepare(ref.loaded, rewrites, target.name, ref.samples.batch[:1], log)
    with staging_dir(out_dir) as tmp:
        result = target.export(to_export, ref.samples, precision, opts, tmp, log)
        staged = result.artifact.rename(tmp / final.name)
        threads = (bench.threads if bench else None) or default_threads()
        parity = check_parity(target, staged, ref, precision, tolerances, threads, log)
        latency = (
            benchmark(target, staged, ref.samples.batch[:1], bench, log, ref.loaded.module)
            if bench
            else {"status": "skipped", "reason": "--no-bench"}
        )
        failed = parity.status == "fail"
        dest = final.with_name(final.stem + ".rejected" + final.suffix) if failed else final
        place(staged, dest)
    rep = reports.new_report(
        "export",
        model=ref.loaded.describe(),
        target=target.name,
        precision=precision.value,
        artifact=artifact_info(dest),
        export={**result.details, "options": opts, "rewrites": rewrites_record},
        parity=parity.to_dict(),
        latency=latency,
        environment=environment(threads),
    )
    json_path, _ = reports.write(rep, out_dir, failed=failed)
    messages = []
    if failed:
        messages.append(f"parity failed: the export was kept as {dest} and {final.name} was left as it was")
    return Outcome(rep, EXIT_PARITY if failed else EXIT_OK, json_path, messages)


def _existing_for(artifact: Path) -> dict | None:
    existing = reports.load_existing(artifact.parent)
    if existing and Path(existing.get("artifact", {}).get("path", "")).name == artifact.name:
        return existing
    return None


def _merge_and_write(artifact_path: Path, command: str, failed: bool, **sections) -> tuple[dict, Path]:
    """validate/bench update the artifact's report.json section by section; a parity failure goes to report.failed.json."""
    base = _existing_for(artifact_path) or {}
    keep = {k: v for k, v in base.items() if k in ("model", "target", "precision", "export", "parity", "latency")}
    rep = reports.new_report(command, **{**keep, **sections})
    json_path, _ = reports.write(rep, artifact_path.parent, failed=failed)
    return rep, json_path


def require_artifact(path: Path):
    from edgevt.exporters import require, target_for_artifact

    if not path.exists():
        raise UsageError(f"artifact {path} does not exist", "pass the path that `edgevt export` printed")
    target = target_for_artifact(path)
    require(target)
    return target


def _runner_options(target, runner_options: dict | None) -> dict:
    options = {k: v for k, v in (runner_options or {}).items() if v is not None}
    unknown = sorted(set(options) - set(target.runner_options))
    if unknown:
        raise UsageError(f"{', '.join('--' + k.replace('_', '-') for k in unknown)} does not apply to {target.name} artifacts")
    return options


def validate(artifact: Path, model: str | None, precision: Precision | None, weights: str, seed: int, tolerances: dict, threads: int | None, log: Log,
             runner_options: dict | None = None) -> Outcome:
    target = require_artifact(artifact)
    runner_options = _runner_options(target, runner_options)
    existing = _existing_for(artifact) or {}
    model = model or existing.get("model", {}).get("name")
    if not model:
        raise UsageError(f"no report next to {artifact.name} says which model it is", "pass --model NAME")
    precision = precision or (Precision.parse(existing["precision"]) if existing.get("precision") else target.default_precision)
    ref = make_reference(model, weights, seed, log)
    threads = threads or default_threads()
    parity = check_parity(target, artifact, ref, precision, tolerances, threads, log, runner_options)
    failed = parity.status == "fail"
    rep, path = _merge_and_write(
        artifact,
        "validate",
        failed,
        model=ref.loaded.describe(),
        target=target.name,
        precision=precision.value,
        artifact=artifact_info(artifact),
        parity=parity.to_dict(),
        environment=environment(threads),
    )
    return Outcome(rep, EXIT_PARITY if failed else EXIT_OK, path)


def bench_artifact(artifact: Path, settings: BenchSettings, model: str | None, weights: str, seed: int, log: Log,
                   runner_options: dict | None = None, device: str | None = None, benchmark_model: str | None = None) -> Outcome:
    """Time an artifact; with --model also torch eager in the same run, for the speed-up ratio.
    With device android[:SERIAL], TFLite's benchmark_model times it on the phone instead."""
    from edgevt.android import parse_device, run_on_device

    serial = parse_device(device) if device else None
    if serial is not None:
        if model:
            raise UsageError("--model times torch eager on this host; it cannot be compared with a phone's numbers",
                             "drop --model when benchmarking on --device android")
        if not artifact.exists():
            raise UsageError(f"artifact {artifact} does not exist", "pass the path that `edgevt export` printed")
        latency = run_on_device(artifact, serial, benchmark_model, settings, log)
        rep, path = _merge_and_write(artifact, "bench", False, target="tflite", artifact=artifact_info(artifact),
                                     latency=latency, environment=environment(latency["settings"]["threads"]))
        return Outcome(rep, EXIT_OK, path)
    target = require_artifact(artifact)
    runner_options = _runner_options(target, runner_options)
    reason = target.latency_unavailable()
    if reason:
        raise RuntimeUnavailable(f"cannot time {artifact.name} here: {reason}",
                                 "run `edgevt bench` on a Mac; `edgevt validate` checks parity here through the MIL interpreter")
    shape = [1 if not isinstance(d, int) or d <= 0 else d for d in target.input_shape(artifact)]
    batch = np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)
    baseline = make_reference(model, weights, seed, log).loaded.module if model else None
    latency = benchmark(target, artifact, batch, settings, log, baseline, runner_options)
    threads = latency["settings"]["threads"]
    rep, path = _merge_and_write(artifact, "bench", False, target=target.name, artifact=artifact_info(artifact),
                                 latency=latency, environment=environment(threads))
    return Outcome(rep, EXIT_OK, path)
