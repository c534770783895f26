"""name -> ModelSpec -> torch module + samples -> exporter -> artifact -> runner -> parity + latency -> report."""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from edgevt import report as reports
from edgevt.bench import BenchSettings
from edgevt.envinfo import environment
from edgevt.errors import EXIT_OK, EXIT_PARITY, RuntimeCannotLoad, RuntimeUnavailable, UsageError
from edgevt.fsio import place, remove_path, remove_stale_staging, sha256_file, size_bytes, staging_dir, writable_problem
from edgevt.images import ImageOptions
from edgevt.limits import check_seed, check_tolerances
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
    """The PyTorch model, the samples and its outputs on them: what every export is checked against.

    For an image-input artifact the samples carry the processor's pixels too: the artifact is fed those, the reference
    is the checkpoint's HF processor + the PyTorch model, so a wrong normalisation baked into the artifact fails parity."""

    loaded: object
    samples: object
    outputs: dict[str, np.ndarray]
    input_kind: str = "tensor"
    seed: int = 0

    @property
    def feed(self) -> np.ndarray:
        """What the artifact is given for each sample."""
        return self.samples.feed(self.input_kind)

    def describe_inputs(self) -> dict:
        """report.json "inputs": what parity ran on (the photos' source, what was skipped) and how many samples."""
        s = self.samples
        photos = int(np.sum(s.is_photo))
        return {"kind": self.input_kind, "seed": self.seed, "samples": len(s), "photos": photos, "noise": len(s) - photos,
                "images": s.images.describe() if s.images else None, "names": list(s.names)}

    def describe_calibration(self, recorded: dict | None = None) -> dict:
        """The calibration set of an int8-static export and how many of its photos parity also ran on (by content).
        `recorded`: the calibration section of an earlier report (validate re-checks the overlap with today's photos)."""
        from edgevt.images import calibration_section

        return calibration_section(self.samples.images, self.samples.calibration_images(), recorded)


def default_threads() -> int:
    return os.cpu_count() or 1


REFERENCE_CHUNK = 8  # the PyTorch reference is batch-agnostic: run it a few samples at a time


def make_reference(model, weights: str, seed: int, log: Log, input_kind: str = "tensor",
                   input_size: tuple[int, int] | None = None, images: ImageOptions | None = None,
                   calibrate: bool = False) -> Reference:
    """model: a name, directory or Hub id (resolved here with the weights), or an already resolved ModelSpec (a matrix
    worker gets one from its parent). The photos are read before the model is loaded: a missing or empty folder is
    exit 2 before any work. `calibrate`: also read --calibration-images (int8-static)."""
    from edgevt.exporters.base import run_batched
    from edgevt.exporters.torch_eager import TorchEagerRunner
    from edgevt.inputs import parity_samples
    from edgevt.models.loading import load_model, resolve_spec

    spec = resolve_spec(model, weights, input_size) if isinstance(model, str) else model
    samples = parity_samples(spec, seed, input_kind=input_kind, options=images, calibrate=calibrate)
    log(f"parity samples: {samples_text(samples)}")
    log(f"loading {spec.name} ({spec.model_class}, {weights} weights{f', seed {seed}' if weights == 'random' else ''})")
    loaded = load_model(spec, weights, seed)
    h, w = spec.input_hw
    log(f"running the PyTorch reference on {len(samples)} samples ({h}x{w}, {spec.processor_source} preprocessing)")
    outputs = run_batched(TorchEagerRunner(loaded.module, output_names=loaded.output_names), samples.batch, REFERENCE_CHUNK)
    return Reference(loaded, samples, outputs, input_kind, seed)


def samples_text(samples) -> str:
    """'104 photos (built-in set) + 2 noise; 1 file skipped' for the log."""
    photos = int(np.sum(samples.is_photo))
    images = samples.images
    where = "built-in set" if images is None or images.builtin else images.source
    skipped = f"; {len(images.skipped)} file(s) skipped" if images and images.skipped else ""
    text = f"{photos} photos ({where}) + {len(samples) - photos} noise{skipped}"
    if samples.calibration is not None:
        text += f"; calibration: {len(samples.calibration)} photos ({samples.calibration.images.source})"
    return text


def check_parity(target, artifact: Path, ref: Reference, precision: Precision, tolerances: dict, threads: int, log: Log,
                 runner_options: dict | None = None) -> ParityReport:
    from edgevt.exporters.base import run_batched

    runner = target.open_runner(artifact, threads, **(runner_options or {}))
    what = "pixels" if ref.input_kind == "image" else "samples"
    log(f"checking parity of {artifact.name} on {len(ref.samples)} {what} ({runner.engine})")
    t0 = time.perf_counter()
    candidate = run_batched(runner, ref.feed)
    seconds = time.perf_counter() - t0
    thresholds = DEFAULT_THRESHOLDS[precision].override(**tolerances)
    parity = compare(ref.outputs, candidate, thresholds, ref.samples.is_photo, runner.engine, precision.value,
                     class_output="logits" if "logits" in ref.outputs else None, sample_names=ref.samples.names)
    parity.reference = "hf-processor + torch-eager" if ref.input_kind == "image" else "torch-eager"
    parity.engine_seconds = round(seconds, 3)
    if target.diagnose is not None and precision is not Precision.FP32 and parity.status != "skipped":
        worst = _worst_sample(ref.outputs, candidate)
        log(f"locating the ops that lose the most precision (sample {ref.samples.names[worst]})")
        parity.diagnosis = {"sample": ref.samples.names[worst], **target.diagnose(artifact, ref.feed[worst : worst + 1])}
    return parity


def _worst_sample(reference: dict, candidate: dict) -> int:
    """Index of the sample with the largest relative error on the first common output."""
    name = next(n for n in reference if n in candidate)
    ref, cand = reference[name].reshape(len(reference[name]), -1), candidate[name].reshape(len(candidate[name]), -1)
    with np.errstate(invalid="ignore", divide="ignore"):
        err = np.nan_to_num(np.linalg.norm(cand - ref, axis=1) / np.maximum(np.linalg.norm(ref, axis=1), 1e-12), nan=np.inf)
    return int(np.argmax(err))


def benchmark(target, artifact: Path, batch: np.ndarray, settings: BenchSettings, log: Log, baseline_module=None,
              runner_options: dict | None = None, macs: float | None = None, fp32_artifact: bool = False) -> dict:
    """Latency of the artifact by edgevt.bench's protocol; with a module, torch eager too (the speed-up's denominator),
    and the host's compute bound with each runtime's efficiency. `fp32_artifact`: the artifact computes in fp32, so
    (like torch eager) it cannot beat the fp32 bound; if a runtime does, the GEMM probe is re-run."""
    from edgevt import compute_bound
    from edgevt.bench import PROTOCOL, measure, threading_settings

    reason = target.latency_unavailable()
    if reason:
        log(f"latency skipped: {reason}")
        return {"status": "skipped", "reason": reason}
    threads = settings.threads or default_threads()
    settings = replace(settings, threads=threads)  # every report records the count actually used
    openers = [lambda: target.open_runner(artifact, threads, **(runner_options or {}))]
    if baseline_module is not None:
        from edgevt.commands import count_macs
        from edgevt.exporters.torch_eager import TorchEagerRunner

        openers.append(lambda: TorchEagerRunner(baseline_module, threads))
        macs = macs or count_macs(baseline_module, tuple(batch.shape))
    bound = compute_bound.bound(macs, threads, log)
    log(f"timing {artifact.name}{' and torch eager' if baseline_module is not None else ''} ({PROTOCOL}: blocks, idle "
        f"threads between them), {threads} threads, until the median is known to ±{settings.target_ci:.0%} "
        f"({settings.min_time_s:g}–{settings.max_time_s:g} s)")
    timing = measure(openers, batch, settings)
    reports_ = [r.to_dict() for r in timing.reports]
    fp32 = [r["warm"]["p50_ms"] for i, r in enumerate(reports_) if i > 0 or fp32_artifact]
    bound = compute_bound.recheck(bound, fp32, threads, log)
    lat = {**reports_[0], "status": "measured", "protocol": timing.protocol,
           "threading": threading_settings(threads, [r.engine for r in timing.reports]), "compute_bound": bound,
           "efficiency": compute_bound.efficiency(bound, reports_[0]["warm"]["p50_ms"])}
    if len(reports_) > 1:
        lat["baseline"] = {**reports_[1], "efficiency": compute_bound.efficiency(bound, reports_[1]["warm"]["p50_ms"])}
        lat["speedup_vs_torch_eager"], lat["speedup"] = speedup(timing.protocol, reports_)
    if timing.protocol["host"].get("note"):
        log(f"note: {timing.protocol['host']['note']}")
    sampling = timing.protocol["sampling"]
    log(f"sampled {sampling['seconds']:.1f} s, stopped by {sampling['stopped_by']}: median ±"
        + ", ".join(f"{x:.1%}" for x in sampling["reached_ci95_rel"]))
    return lat


def speedup(protocol: dict, reports_: list[dict]) -> tuple[float, dict]:
    """torch eager's time over the artifact's: the median of the per-round ratios of adjacent blocks (edgevt.bench),
    and how it was found, with the plain ratio of the two medians beside it."""
    of_p50s = reports_[1]["warm"]["p50_ms"] / reports_[0]["warm"]["p50_ms"]
    paired = protocol["paired"]["ratios"][1]
    if not paired or paired["median"] is None:  # no complete round (cannot happen after a sampling loop; kept safe)
        return of_p50s, {"method": "ratio of the medians", "ratio_of_p50s": of_p50s}
    full = (protocol["paired"].get("full_speed") or [None, None])[1] or {}
    return paired["median"], {"method": "median over rounds of torch eager's block median / the artifact's block median "
                                        "in the same round", "ci95": paired["ci95"], "ci95_rel": paired["ci95_rel"],
                              "rounds": paired["rounds"], "ratio_of_p50s": of_p50s,
                              "full_speed": {"median": full.get("median"), "ci95": full.get("ci95"),
                                             "rounds": full.get("rounds", 0),
                                             "rule": "the rounds in which both runtimes' blocks ran at full speed"}}


def artifact_name(model_name: str, precision: Precision, suffix: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "--", model_name).strip("-") + f"-{precision.value}{suffix}"


def artifact_info(path: Path) -> dict:
    return {"path": str(path), "bytes": size_bytes(path), "sha256": sha256_file(path)}


def check_makes(target, precision: Precision) -> None:
    if precision not in target.precisions:
        raise UsageError(f"target {target.name} does not support {precision.value}",
                         f"{target.name} makes {', '.join(p.value for p in target.precisions)}")


def _check_out_dir(out_dir: Path) -> None:
    """Probed before the reference is built: a read-only --out fails in a second, not after the export."""
    problem = writable_problem(out_dir)
    if problem:
        raise UsageError(f"--out {out_dir}: {problem}", "pass --out with a directory you can write to")


def _superseded(final: Path, rejected: Path) -> list[Path]:
    """What a passing export makes stale: the artifact's rejected twin, and a failed report about either of them."""
    stale = [rejected] if rejected.exists() else []
    failed_json = final.parent / f"report{reports.FAILED_SUFFIX}.json"
    try:
        about = Path(json.loads(failed_json.read_text()).get("artifact", {}).get("path", "")).name
    except (OSError, ValueError, AttributeError):
        about = None  # no failed report, or one edgevt cannot read: leave it alone
    if about in (final.name, rejected.name):
        stale += sorted(final.parent.glob(f"report{reports.FAILED_SUFFIX}.*"))
    return stale


def _remove_superseded(final: Path, rejected: Path, log: Log) -> list[str]:
    stale = _superseded(final, rejected)
    for path in stale:
        remove_path(path)
    if stale:
        log(f"removed what this export supersedes: {', '.join(p.name for p in stale)}")
    return [p.name for p in stale]


def _remove_stale_staging(out_dir: Path, log: Log) -> list[str]:
    stale = remove_stale_staging(out_dir)
    if stale:
        log(f"removed {len(stale)} staging director{'y' if len(stale) == 1 else 'ies'} left by a killed run: {', '.join(stale)}")
    return stale


def export(
    model: str,
    target_name: str,
    precision: Precision | None,
    weights: str | None,
    seed: int | None,
    out_dir: Path,
    options: dict,
    tolerances: dict,
    bench: BenchSettings | None,
    log: Log,
    input_size: tuple[int, int] | None = None,
    images: ImageOptions | None = None,
    rewrites: str | tuple[str, ...] = "none",
) -> Outcome:
    from edgevt.exporters import get_target, require
    from edgevt.models.loading import for_artifact
    from edgevt.rewrites.apply import prepare

    target = get_target(target_name)
    precision = precision or target.default_precision
    check_makes(target, precision)
    opts = target.parse_options(options)
    input_kind = opts.get("input_type", "tensor")
    seed = 0 if seed is None else seed
    check_seed(seed)
    tolerances = check_tolerances(tolerances)
    _check_out_dir(out_dir)
    require(target)
    calibrate = precision is Precision.INT8_STATIC
    if images and images.calibration and not calibrate:
        log(f"--calibration-images is for int8-static; {precision.value} calibrates nothing, so it is not used")
    ref = make_reference(model, weights or "pretrained", seed, log, input_kind, input_size, images, calibrate)
    spec = ref.loaded.spec
    shipped = for_artifact(ref.loaded, input_kind)  # image input: the checkpoint's normalisation goes inside the artifact
    final = out_dir / artifact_name(spec.name, precision, target.suffix)
    rejected = final.with_name(final.stem + ".rejected" + final.suffix)
    stale = _remove_stale_staging(out_dir, log)
    # The exporter gets a rewritten copy; parity and the torch-eager baseline use the unrewritten reference.
    to_export, rewrites_record = prepare(ref.loaded, rewrites, target.name, ref.samples.batch[:1], log)
    with staging_dir(out_dir) as tmp:
        result = target.export(for_artifact(to_export, input_kind), ref.samples.as_artifact_samples(input_kind), precision, opts, tmp, log)
        staged = result.artifact.rename(tmp / final.name)
        threads = (bench.threads if bench else None) or default_threads()
        try:
            parity = check_parity(target, staged, ref, precision, tolerances, threads, log)
        except RuntimeCannotLoad as exc:  # the export is fine, this machine's runtime cannot load it: keep it
            _keep_unverified(staged, final, exc, rep_sections=dict(
                model=shipped.describe(), inputs=ref.describe_inputs(), target=target.name, precision=precision.value,
                export={**result.details, "options": opts}, environment=environment(threads)))
        latency = (
            benchmark(target, staged, ref.feed[:1], bench, log, shipped.module, fp32_artifact=precision is Precision.FP32)
            if bench
            else {"status": "skipped", "reason": "--no-bench"}
        )
        failed = parity.status == "fail"
        dest = rejected if failed else final
        place(staged, dest)
    superseded = [] if failed else _remove_superseded(final, rejected, log)
    cleanup = {"stale_staging": stale, "superseded": superseded} if stale or superseded else {}
    rep = reports.new_report(
        "export",
        model=shipped.describe(),
        inputs={**ref.describe_inputs(), **({"calibration": ref.describe_calibration()} if calibrate else {})},
        target=target.name,
        precision=precision.value,
        artifact=artifact_info(dest),
        export={**result.details, "options": opts, "rewrites": rewrites_record},
        parity=parity.to_dict(),
        latency=latency,
        environment=environment(threads),
        **({"cleanup": cleanup} if cleanup else {}),
    )
    json_path, _ = reports.write(rep, out_dir, failed=failed)
    messages = []
    if failed:
        messages.append(f"parity failed: the export was kept as {dest} and {final.name} was left as it was")
    return Outcome(rep, EXIT_PARITY if failed else EXIT_OK, json_path, messages)


def _keep_unverified(staged: Path, final: Path, exc: RuntimeCannotLoad, rep_sections: dict):
    """Place the artifact as NAME.unverified.EXT with report.failed.json saying parity could not run, then re-raise."""
    dest = place(staged, final.with_name(final.stem + ".unverified" + final.suffix))
    reason = f"this machine's runtime cannot load the artifact: {exc.message}"
    rep = reports.new_report("export", artifact=artifact_info(dest), parity={"status": "skipped", "reason": reason},
                             latency={"status": "skipped", "reason": reason}, **rep_sections)
    json_path, _ = reports.write(rep, final.parent, failed=True)
    model = rep_sections["model"]
    same_model = f"{dest} --model {model.get('source') or model.get('name')} --weights {model.get('weights')}" + (
        f" --seed {model['seed']}" if model.get("seed") is not None else "")
    hint = (exc.hint or "").replace(str(staged), same_model)  # the runner named the staged copy, which is gone now
    raise RuntimeCannotLoad(f"{exc.message}. The export was kept, unverified, as {dest} (report: {json_path})", hint) from exc


def _existing_for(artifact: Path) -> dict | None:
    existing = reports.load_existing(artifact.parent)
    if existing and Path(existing.get("artifact", {}).get("path", "")).name == artifact.name:
        return existing
    return None


def _merge_and_write(artifact_path: Path, command: str, failed: bool, **sections) -> tuple[dict, Path]:
    """validate/bench update the artifact's report.json section by section; a parity failure goes to report.failed.json."""
    base = _existing_for(artifact_path) or {}
    keep = {k: v for k, v in base.items() if k in ("model", "inputs", "target", "precision", "export", "parity", "latency")}
    rep = reports.new_report(command, **{**keep, **sections})
    json_path, _ = reports.write(rep, artifact_path.parent, failed=failed)
    return rep, json_path


def require_artifact(path: Path):
    """The artifact's target, once the file is known to be a readable artifact of its format (else exit 2)."""
    from edgevt.artifacts import check_artifact
    from edgevt.exporters import require, target_for_artifact

    if not path.exists():
        raise UsageError(f"artifact {path} does not exist", "pass the path that `edgevt export` printed")
    target = target_for_artifact(path)
    require(target)
    check_artifact(target, path)
    return target


def _runner_options(target, runner_options: dict | None) -> dict:
    options = {k: v for k, v in (runner_options or {}).items() if v is not None}
    unknown = sorted(set(options) - set(target.runner_options))
    if unknown:
        raise UsageError(f"{', '.join('--' + k.replace('_', '-') for k in unknown)} does not apply to {target.name} artifacts")
    return options


def recorded_reference(existing: dict, model: str | None, weights: str | None, seed: int | None,
                       input_size: tuple[int, int] | None) -> tuple[str, str, int, tuple[int, int] | None]:
    """validate without flags rebuilds the reference the report beside the artifact was made against: its model (a
    registered name, a directory or a Hub id), weights, seed and input size. Flags given on the command line win."""
    recorded = existing.get("model") or {}
    model = model or recorded.get("source") or recorded.get("name")
    if not model:
        raise UsageError("no report next to this artifact says which model it is", "pass --model NAME (and --weights, --seed)")
    same_model = model in (recorded.get("source"), recorded.get("name"))
    if weights is None:
        weights = recorded.get("weights", "pretrained") if same_model else "pretrained"
    if seed is None:
        seed = (existing.get("inputs") or {}).get("seed", recorded.get("seed")) if same_model else None
        seed = 0 if seed is None else int(seed)
    if input_size is None and same_model and recorded.get("input_shape"):
        input_size = tuple(recorded["input_shape"][2:4])
    return model, weights, seed, input_size


def recorded_images(existing: dict, images: ImageOptions | None, log: Log) -> ImageOptions:
    """validate without --images re-checks on the photos the report beside the artifact used: its folder (if it is
    still there) and its --samples cap; else the built-in set."""
    images = images or ImageOptions()
    if images.images:
        return images
    recorded = (existing.get("inputs") or {}).get("images") or {}
    source = recorded.get("source")
    if not source or source == "builtin":
        return images
    if not Path(source).is_dir():
        log(f"the photos the report records ({source}) are gone; checking on the built-in set (pass --images DIR)")
        return images
    cap = images.samples if images.samples is not None else (recorded.get("cap") if recorded.get("cap_from") == "--samples" else None)
    log(f"checking on the photos the report records: {source}")
    return ImageOptions(source, None, cap)


def validate(artifact: Path, model: str | None, precision: Precision | None, weights: str | None, seed: int | None, tolerances: dict,
             threads: int | None, log: Log, runner_options: dict | None = None, input_size: tuple[int, int] | None = None,
             images: ImageOptions | None = None) -> Outcome:
    from edgevt.artifacts import check_input_shape
    from edgevt.exporters import artifact_input_kind
    from edgevt.models.loading import for_artifact

    if seed is not None:
        check_seed(seed)
    tolerances = check_tolerances(tolerances)

    target = require_artifact(artifact)
    runner_options = _runner_options(target, runner_options)
    existing = _existing_for(artifact) or {}
    model, weights, seed, input_size = recorded_reference(existing, model, weights, seed, input_size)
    precision = precision or (Precision.parse(existing["precision"]) if existing.get("precision") else target.default_precision)
    check_makes(target, precision)
    input_kind = artifact_input_kind(target, artifact)
    images = recorded_images(existing, images, log)
    ref = make_reference(model, weights, seed, log, input_kind, input_size, images)
    check_input_shape(target, artifact, ref.samples.batch.shape)
    inputs = ref.describe_inputs()
    recorded_calibration = (existing.get("inputs") or {}).get("calibration")
    if precision is Precision.INT8_STATIC and recorded_calibration:
        inputs["calibration"] = ref.describe_calibration(recorded_calibration)
    threads = threads or default_threads()
    parity = check_parity(target, artifact, ref, precision, tolerances, threads, log, runner_options)
    failed = parity.status == "fail"
    rep, path = _merge_and_write(
        artifact,
        "validate",
        failed,
        model=for_artifact(ref.loaded, input_kind).describe(),
        inputs=inputs,
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
    from edgevt.artifacts import check_input_shape

    if seed is not None:
        check_seed(seed)
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
    from edgevt.exporters import artifact_input_kind
    from edgevt.models.loading import for_artifact

    shape = [1 if not isinstance(d, int) or d <= 0 else d for d in target.input_shape(artifact)]
    seed = 0 if seed is None else seed
    rng = np.random.default_rng(seed)
    kind = artifact_input_kind(target, artifact)
    batch = (rng.integers(0, 256, shape).astype(np.float32) if kind == "image"
             else rng.standard_normal(shape, dtype=np.float32))
    baseline = None
    if model:  # torch eager of the same checkpoint: weights and seed as the report beside the artifact records them
        model, weights, seed, _ = recorded_reference(_existing_for(artifact) or {}, model, weights, seed, None)
        from edgevt.models.loading import load_model, resolve_spec

        spec = resolve_spec(model, weights, tuple(shape[2:4]))
        check_input_shape(target, artifact, spec.input_shape)
        log(f"loading {spec.name} ({weights} weights) to time it in torch eager")
        baseline = for_artifact(load_model(spec, weights, seed), kind).module
    existing = _existing_for(artifact) or {}
    known = ((existing.get("latency") or {}).get("compute_bound") or {}).get("macs")  # from its export
    latency = benchmark(target, artifact, batch, settings, log, baseline, runner_options, macs=None if model else known,
                        fp32_artifact=existing.get("precision") == Precision.FP32.value)
    threads = latency["settings"]["threads"]
    rep, path = _merge_and_write(artifact, "bench", False, target=target.name, artifact=artifact_info(artifact),
                                 latency=latency, environment=environment(threads))
    return Outcome(rep, EXIT_OK, path)
