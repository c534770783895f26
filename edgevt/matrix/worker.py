"""One matrix cell in its own process: `python -m edgevt.matrix.worker JOB.json`.

A converter that segfaults or aborts takes down this process only; the parent records the crash and goes
on. The job names the cache's artifact directory: an artifact already there is reused, a new one is staged
in a scratch directory and renamed into place whole. The result goes to job["result_path"] as JSON.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import traceback
from pathlib import Path

from edgevt.errors import EdgevtError, first_line
from edgevt.images import ImageOptions

ENTRY = "entry.json"  # beside a cached artifact: how it was made


def log(msg: str) -> None:
    print(f"[cell {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _obtain_artifact(target, ref, precision, options: dict, rewrites: list[str], artifact_dir: Path, scratch: Path,
                     reuse: bool) -> tuple[dict, dict, bool]:
    """(artifact info, export details, reused): the cached artifact for this key, or a fresh export moved into the cache whole.
    Its size and sha256 are computed once, when it is made, and kept in entry.json beside it."""
    from edgevt.fsio import place
    from edgevt.models.loading import for_artifact
    from edgevt.pipeline import artifact_info, artifact_name
    from edgevt.rewrites.apply import prepare

    entry = artifact_dir / ENTRY
    if reuse and entry.is_file():
        info = json.loads(entry.read_text())
        log(f"reusing the cached artifact {info['name']}")
        return {"path": str(artifact_dir / info["name"]), "bytes": info["bytes"], "sha256": info["sha256"]}, info["export"], True
    name = artifact_name(ref.loaded.spec.name, precision, target.suffix)
    stage = scratch / "artifact"
    stage.mkdir()
    # The exporter gets a rewritten copy; parity and the torch-eager baseline use the unrewritten reference.
    to_export, rewrites_record = prepare(ref.loaded, tuple(rewrites) or "none", target.name, ref.samples.batch[:1], log)
    result = target.export(for_artifact(to_export, ref.input_kind), ref.samples.as_artifact_samples(ref.input_kind), precision,
                           options, stage, log)
    final = stage / name
    result.artifact.rename(final)
    for leftover in stage.iterdir():  # exporters may leave side files; the cache keeps the artifact only
        if leftover != final:
            shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
    details = {**result.details, "options": options, "rewrites": rewrites_record}
    made = artifact_info(final)
    (stage / ENTRY).write_text(json.dumps({"name": name, "export": details, "bytes": made["bytes"], "sha256": made["sha256"]}, default=str))
    place(stage, artifact_dir)  # one rename; an older entry of the same key (--fresh) is replaced only then
    return {**made, "path": str(artifact_dir / name)}, details, False


def run_job(job: dict) -> dict:
    from edgevt.bench import BenchSettings
    from edgevt.exporters import get_target, require
    from edgevt.models.loading import for_artifact
    from edgevt.models.registry import spec_from_dict
    from edgevt.parity import Precision
    from edgevt.pipeline import benchmark, check_parity, make_reference

    cell = job["cell"]
    target = get_target(cell["target"])
    require(target)
    precision = Precision.parse(cell["precision"], target.name)
    input_kind = cell["options"].get("input_type", "tensor")
    calibrate = precision is Precision.INT8_STATIC
    ref = make_reference(spec_from_dict(job["spec"]), job["weights"], job["seed"], log, input_kind, None,
                         ImageOptions(**job.get("images") or {}), calibrate)
    _same_photos(ref.samples, job)
    shipped = for_artifact(ref.loaded, input_kind)
    info, details, reused = _obtain_artifact(target, ref, precision, cell["options"], cell.get("rewrites", []), Path(job["artifact_dir"]),
                                             Path(job["scratch"]), job.get("reuse_artifact", True))
    artifact = Path(info["path"])
    settings = BenchSettings(**job["bench"])
    parity = check_parity(target, artifact, ref, precision, job["tolerances"], settings.threads, log)
    latency = benchmark(target, artifact, ref.feed[:1], settings, log, shipped.module, fp32_artifact=precision is Precision.FP32)
    inputs = {**ref.describe_inputs(), **({"calibration": ref.describe_calibration()} if calibrate else {})}
    return {"status": parity.status, "model_info": shipped.describe(), "inputs": inputs, "artifact": info,
            "artifact_reused": reused,
            "export": details, "parity": parity.to_dict(), "latency": latency, "error": None}


def _same_photos(samples, job: dict) -> None:
    """The photos this cell read must be the ones the plan's cache keys were made from."""
    from edgevt.errors import UsageError

    pairs = [(samples.images, job.get("photos_digest")), (samples.calibration_images(), job.get("calibration_digest"))]
    for found, expected in pairs:
        if expected and found is not None and found.digest() != expected:
            raise UsageError(f"the photos in {found.source} changed while the matrix ran", "run the matrix again")


def error_result(exc: BaseException) -> dict:
    if isinstance(exc, EdgevtError):
        error = {"type": type(exc).__name__, "message": exc.message, "hint": exc.hint, "exit_code": exc.exit_code}
    else:
        error = {"type": type(exc).__name__, "message": first_line(exc), "hint": "see the cell's log for the traceback", "exit_code": 3}
    return {"status": "error", "error": {**error, "signal": None}}


def main(argv: list[str]) -> int:
    job = json.loads(Path(argv[0]).read_text())
    if job.get("cache_root"):  # the host's GEMM probe (compute bound) is cached beside the matrix's artifacts
        os.environ["EDGEVT_CACHE_DIR"] = job["cache_root"]
    t0 = time.perf_counter()
    try:
        result = run_job(job)
    except Exception as exc:  # noqa: BLE001 — every failure of a cell is data for the report, not a crash of the run
        traceback.print_exc()
        result = error_result(exc)
    result["seconds"] = round(time.perf_counter() - t0, 2)
    from edgevt.report import to_json

    out = Path(job["result_path"])
    tmp = out.with_suffix(".tmp")
    tmp.write_text(to_json(result))
    os.replace(tmp, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
