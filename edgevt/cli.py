"""edgevt command line. Each command is a few lines calling the library; heavy imports happen inside them."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from edgevt import __version__, failures
from edgevt.capture import Capture, terminal_err, terminal_out
from edgevt.errors import EdgevtError
from edgevt.options import (
    bench_options,
    compute_units_option,
    device_options,
    export_images_options,
    finite,
    images_option,
    input_size_option,
    json_option,
    parse_precision,
    pass_log,
    precision_option,
    profile_option,
    rewrites_option,
    samples_option,
    target_option_option,
    threads_option,
    tolerance_option,
    weights_options,
)

EXIT_CODES_HELP = """
\b
Exit codes:
  0  success
  1  parity failed (the export does not compute what PyTorch computes)
  2  bad usage or input (unknown model, bad value or profile, missing file,
     an artifact that is empty, truncated or not of its format)
  3  export or runtime error (a converter failed, a runtime is missing, an
     unexpected error: its traceback is saved to the log)
"""


def _emit(ctx, payload: dict, human: str) -> None:
    if ctx.obj["json"]:
        from edgevt.report import to_json

        click.echo(to_json(payload), file=terminal_out())
    else:
        click.echo(human, file=terminal_out())


@click.group(epilog=EXIT_CODES_HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgevt")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing on stderr unless the command fails.")
@click.option("-v", "--verbose", is_flag=True,
              help="Show other libraries' output (warnings, converter logs) and tracebacks on stderr instead of the log file.")
@click.pass_context
def cli(ctx, quiet, verbose):
    """Export vision transformers for phones and prove the exports still compute the same thing.

    \b
    edgevt list                                   variants, targets, what runs here
    edgevt export swiftformer-xs --target onnx    export + parity + latency
    edgevt validate ARTIFACT --model NAME         parity of an existing artifact
    edgevt bench ARTIFACT                         latency of an existing artifact
    """
    if quiet and verbose:
        raise click.UsageError("-q and -v contradict each other; pass one of them")
    start = time.perf_counter()

    def log(msg: str) -> None:
        if not quiet:
            click.echo(f"[edgevt {time.perf_counter() - start:6.1f}s] {msg}", file=terminal_err())

    ctx.obj = {"log": log, "json": False, "quiet": quiet, "verbose": verbose, "capture": None}


def _begin(as_json: bool) -> None:
    """Every command starts here, after its arguments parsed: other libraries' output goes to a log from now on."""
    ctx = click.get_current_context()
    ctx.obj["json"] = as_json
    ctx.obj["capture"] = ctx.with_resource(Capture(ctx.info_name, enabled=not ctx.obj["verbose"]))


def _keep_log(ctx, path: Path | None) -> Path | None:
    """Move the command's log to path when it ends (report.json -> report.log); path if other libraries said anything."""
    capture = ctx.obj["capture"]
    if path is None or capture is None or not capture.active:
        return None
    capture.keep_as = path
    return path if capture.has_output() else None


@cli.command("list")
@click.argument("pattern", default="*")
@json_option
@click.pass_context
def list_cmd(ctx, pattern, as_json):
    """List registered variants (glob PATTERN, e.g. 'swin*') and targets."""
    _begin(as_json)
    from edgevt.commands import list_payload, list_text

    payload = list_payload(pattern)
    _emit(ctx, payload, list_text(payload))


@cli.command()
@click.argument("model")
@json_option
@weights_options
@input_size_option
@click.pass_context
def info(ctx, model, as_json, weights, seed, input_size):
    """Class, parameters, MACs, inputs/outputs, config and preprocessing (with its source) of MODEL.

    MODEL is a registered name, a local model directory or an HF id. A checkpoint's own config and
    preprocessor_config.json are read whatever the weights; weights are random unless --weights is given.
    """
    _begin(as_json)
    from edgevt.commands import info_payload, info_text

    payload = info_payload(model, weights, seed, input_size)
    _emit(ctx, payload, info_text(payload))


def _profile_and_target(profile, target, precision):
    from edgevt.profiles import load_profile

    prof = load_profile(profile) if profile else None
    target = target or (prof.target if prof else None) or "onnx"
    precision = parse_precision(precision, target) or (prof.precision if prof else None)
    return prof, target, precision


@cli.command(epilog=EXIT_CODES_HELP)
@click.argument("model")
@click.option("--target", "-t", metavar="onnx|coreml|tflite", help="Export target (default onnx, or the profile's).")
@precision_option
@weights_options
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), help="Output directory (default runs/MODEL/TARGET-PRECISION).")
@profile_option
@target_option_option
@rewrites_option
@tolerance_option
@click.option("--bench/--no-bench", default=True, show_default=True, help="Measure latency (artifact and torch eager) after parity.")
@bench_options
@input_size_option
@export_images_options
@json_option
@click.pass_context
@pass_log
def export(ctx, model, target, precision, weights, seed, out_dir, profile, target_options, rewrites, tolerances, bench, runs, warmup,
           min_time_s, max_time_s, threads, input_size, images, calibration_images, samples, as_json, log):
    """Export MODEL, check parity against PyTorch, time it, and write report.json + report.md beside it.

    The artifact is only moved into place when it is complete and passes parity; a failing export is
    kept as NAME.rejected.SUFFIX with report.failed.json, and earlier results are left untouched.

    Parity and top-1/top-5 agreement run on your photos (--images DIR) or on the built-in set (104
    views of 8 bundled photos: whole, mirrored and cropped), plus 2 seeded noise tensors; the report
    gives top-1 agreement with its 95% Wilson interval and every photo whose top-1 changed.

    \b
    Targets and the precisions each makes:
      onnx    fp32, fp16, int8-dynamic, int8-static; onnxruntime CPU runs parity and latency
      coreml  fp16 (default), fp32, int8-weights, palettize (.mlpackage); parity through edgevt's
              MIL interpreter off macOS, Core ML itself on a Mac; latency on a Mac only
      tflite  fp32, fp16, int8-dynamic, int8-static (LiteRT); ai-edge-litert with XNNPACK runs
              parity and latency
    Options (--option KEY=VALUE), e.g. opset=17 (onnx), compute_units=CPU_AND_NE (coreml),
    static_ops=compute (tflite): `edgevt doctor` lists every target's options with their defaults.
    Other libraries' output goes to report.log beside the report (-v shows it instead).
    """
    _begin(as_json)
    from edgevt import pipeline
    from edgevt.exporters import get_target
    from edgevt.profiles import bench_settings, image_options

    prof, target, precision = _profile_and_target(profile, target, precision)
    precision = precision or get_target(target).default_precision
    out_dir = out_dir or Path("runs") / model.replace("/", "--") / f"{target}-{precision.value}"
    # export times a short run by default; `edgevt bench` is the command for long ones.
    from edgevt.bench import QUICK_DEFAULTS

    settings = bench_settings(prof, QUICK_DEFAULTS, runs=runs, warmup=warmup, min_time_s=min_time_s, max_time_s=max_time_s,
                              threads=threads) if bench else None
    options = {**(prof.options if prof else {}), **target_options}
    tol = {**(prof.tolerances if prof else {}), **tolerances}
    rewrites = rewrites or (prof.rewrites if prof else None) or "default"
    outcome = pipeline.export(model, target, precision, weights, seed, out_dir, options, tol, settings, log, input_size,
                              image_options(prof, images, calibration_images, samples), rewrites=rewrites)
    _finish(ctx, outcome)


@cli.command(epilog=EXIT_CODES_HELP)
@click.argument("artifact", type=click.Path(path_type=Path))
@click.option("--model", "-m", help="The model the artifact was exported from (default: from report.json beside it).")
@precision_option
@weights_options
@profile_option
@tolerance_option
@threads_option
@compute_units_option
@input_size_option
@images_option
@samples_option
@json_option
@click.pass_context
@pass_log
def validate(ctx, artifact, model, precision, weights, seed, profile, tolerances, threads, compute_units, input_size, images, samples,
             as_json, log):
    """Check that ARTIFACT computes what the PyTorch reference computes; exit 1 if it does not.

    Without flags, the reference is rebuilt as the report beside the artifact records it: model (name,
    directory or HF id), weights, seed, input size and the checkpoint's preprocessing. --model, --weights,
    --seed and --input-size override it, so validating against another seed or tampered weights fails.
    The photos are the report's too (its --images folder if still there, else the built-in set) unless
    --images is given. An image-input artifact is fed the processor's RGB pixels and compared with HF
    processor + PyTorch. Thresholds follow the precision (and profile, and --tolerance).
    """
    _begin(as_json)
    from edgevt import pipeline
    from edgevt.profiles import image_options

    prof, _, precision = _profile_and_target(profile, None, precision)
    tol = {**(prof.tolerances if prof else {}), **tolerances}
    options = image_options(prof, images, None, samples)
    outcome = pipeline.validate(artifact, model, precision, weights, seed, tol, threads, log, {"compute_units": compute_units},
                                input_size, options)
    _finish(ctx, outcome)


@cli.command(epilog=EXIT_CODES_HELP)
@click.argument("artifact", type=click.Path(path_type=Path))
@bench_options
@profile_option
@click.option("--model", "-m", help="Also time this model in torch eager in the same run (speed-up ratio).")
@weights_options
@compute_units_option
@device_options
@json_option
@click.pass_context
@pass_log
def bench(ctx, artifact, runs, warmup, min_time_s, max_time_s, threads, profile, model, weights, seed, compute_units, device, benchmark_model,
          as_json, log):
    """Latency of ARTIFACT: cold (load, first inference) and warm (p50/p90/p99, std, 95% CI of the median).

    Timed like `export` and `matrix` time: each runtime at its library defaults, in alternating blocks with idle
    threads between runtimes, until each median is known to ±2% (--min-time/--max-time). --model adds torch eager
    (the speed-up: the median over rounds of the two blocks' ratio in each round); the host's compute bound (MACs
    from --model or the export's report) gives the efficiency. When the host changed speed during the run, the
    figures at full speed (the blocks of its faster state; JSON: warm.full_speed, speedup.full_speed) are shown too.

    With --device android[:SERIAL], a .tflite is pushed with adb and timed on the phone by LiteRT's
    benchmark_model, android_aarch64_benchmark_model (init, first inference, median/p5/p95, mean/std,
    memory). A Core ML package is timed by Core ML itself, which needs macOS.
    """
    _begin(as_json)
    from edgevt import pipeline
    from edgevt.profiles import bench_settings, load_profile

    prof = load_profile(profile) if profile else None
    if device and device.startswith("android"):
        from edgevt.android import MAX_SECS

        if min_time_s is None:
            min_time_s = 0.0  # benchmark_model runs exactly --runs unless a --min-time is asked for
        if max_time_s is None:
            max_time_s = max(MAX_SECS, min_time_s)  # ... and is not cut short unless a --max-time is asked for
    settings = bench_settings(prof, runs=runs, warmup=warmup, min_time_s=min_time_s, max_time_s=max_time_s, threads=threads)
    outcome = pipeline.bench_artifact(artifact, settings, model, weights, seed, log, {"compute_units": compute_units},
                                      device=device, benchmark_model=benchmark_model)
    _finish(ctx, outcome)


@cli.command(epilog=EXIT_CODES_HELP)
@click.argument("artifact", type=click.Path(path_type=Path))
@compute_units_option
@json_option
@click.pass_context
@pass_log
def preflight(ctx, artifact, compute_units, as_json, log):
    """Neural Engine pre-flight of a Core ML ARTIFACT (.mlpackage): what will keep ops off the ANE, and why.

    Static checks of the saved program (rank > 5, gather, dynamic shapes, fp32 islands, unsupported ops,
    large tensors) with a hint per finding and the estimated share of ops on the ANE. On a Mac the
    placement Core ML actually plans (MLComputePlan) is added.
    """
    _begin(as_json)
    from edgevt.commands import preflight_payload, preflight_text

    payload = preflight_payload(artifact, compute_units, log)
    _emit(ctx, payload, preflight_text(payload))


@cli.command()
@json_option
@click.pass_context
def doctor(ctx, as_json):
    """Versions, which runtimes import, what is missing and how to install it. Exit 3 if a core piece is missing."""
    _begin(as_json)
    from edgevt.commands import doctor_payload, doctor_text

    payload = doctor_payload()
    _emit(ctx, payload, doctor_text(payload))
    ctx.exit(0 if payload["ok"] else 3)


# --- matrix command (owned by the matrix work) ---
MATRIX_EXIT_HELP = """
\b
Exit codes:
  0  every cell passed (cells a target cannot make are listed as unsupported)
  1  a cell failed parity
  2  bad usage or input (unknown model, target, precision or option; bad profile)
  3  a cell could not run (converter error, crash, timeout) or a target is not installed
"""


@cli.command(epilog=MATRIX_EXIT_HELP)
@click.option("--models", "-m", metavar="A,B|GLOB|all", help="Variants, comma-separated; globs like 'swin*' or 'all' (default: the profile's).")
@click.option("--targets", "-t", metavar="onnx,coreml,tflite", help="Targets, comma-separated (default: the profile's, else onnx).")
@click.option("--precisions", "-p", metavar="fp32,fp16,int8,...",
              help="Precisions, comma-separated; int8 means each target's weight-int8 mode; 'default' each target's default "
                   "(fp16 for coreml, fp32 elsewhere). A precision a target cannot make is listed as unsupported.")
@weights_options
@profile_option
@target_option_option
@rewrites_option
@tolerance_option
@bench_options
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("runs/matrix"), show_default=True,
              help="Where report.json, report.md, junit.xml and index.html go (rewritten after every cell).")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), envvar="EDGEVT_CACHE_DIR", show_envvar=True,
              help="Content-addressed cache of artifacts and cell results (default: $XDG_CACHE_HOME/edgevt or ~/.cache/edgevt).")
@click.option("--exclude", multiple=True, metavar="GLOB", help="Leave out cells whose MODEL/TARGET/PRECISION id matches, e.g. 'cvt-w24/*/int8*'; repeatable.")
@click.option("--cell-timeout", type=click.FloatRange(min=1), callback=finite, default=3600, show_default=True, help="Seconds before a cell is stopped.")
@click.option("--retry-failed", is_flag=True, help="Recompute cells whose cached result is an error or a crash.")
@click.option("--fresh", is_flag=True, help="Ignore the cache: re-export and re-measure every cell (the cache is then updated).")
@click.option("--remeasure", is_flag=True, help="Reuse cached artifacts but check parity and time every cell again (e.g. on a quieter machine).")
@click.option("--shard", metavar="K/N", help="Run only shard K of N: the cells split into N shares of about equal expected cost (model "
              "GMACs x target and precision), the same on every machine for the same command line. `edgevt merge` combines them.")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: one cell after another on this machine; ray: each cell a Ray task on a cluster (pip install 'edgevt[ray]').")
@click.option("--ray-address", metavar="HOST:PORT|auto", help="The Ray cluster's address (auto: the cluster this machine is in). "
              "Without it, a local Ray instance is started for the run.")
@click.option("--ray-label", "ray_labels", multiple=True, metavar="KEY=VALUE",
              help="Run cells only on Ray nodes with this label (ray start --labels KEY=VALUE), e.g. edgevt-kind=m7i to time "
                   "every cell on one machine class; repeatable.")
@export_images_options
@json_option
@click.pass_context
def matrix(ctx, models, targets, precisions, weights, seed, profile, target_options, rewrites, tolerances, runs, warmup, min_time_s,
           max_time_s, threads, out_dir, cache_dir, exclude, cell_timeout, retry_failed, fresh, remeasure, shard, executor, ray_address,
           ray_labels, images, calibration_images, samples, as_json):
    """Export, check and time every model × target × precision; write report.json, report.md, junit.xml, index.html.

    Each cell runs in its own process, so a converter that crashes (segfault, abort) fails its cell only.
    Finished cells are cached by content (model config, weights digest, target, precision, options, the
    photos' content, tool and edgevt versions): a repeated or interrupted run reuses them and computes
    only what is missing.
    Across machines: --shard K/N in N CI jobs, then `edgevt merge`; or --executor ray on a Ray cluster.

    \b
    edgevt matrix -m swiftformer-xs,swin-tiny -t onnx,tflite -p fp32,int8 --weights random
    edgevt matrix --profile android-cpu -m 'swiftformer-*' --weights random
    edgevt matrix -m 'swin*' -t onnx,tflite --weights random --shard 2/4 --out runs/shard-2
    Options: KEY=VALUE goes to every target that has KEY, TARGET.KEY=VALUE to one (coreml.compute_units=ALL).
    """
    _begin(as_json)
    from edgevt import matrix as mx
    from edgevt.images import ImageOptions

    echo = None if ctx.obj.get("quiet") else (lambda line, nl=True: click.echo(line, file=terminal_err(), nl=nl))
    plan = mx.make_plan(models, targets, precisions, profile, weights, seed, target_options, tolerances,
                        {"runs": runs, "warmup": warmup, "min_time_s": min_time_s, "max_time_s": max_time_s, "threads": threads},
                        cell_timeout, exclude, shard, ImageOptions(images, calibration_images, samples), echo, rewrites=rewrites)
    report, code = mx.run(plan, out_dir, cache_dir, echo, tty=terminal_err().isatty(), retry_failed=retry_failed, fresh=fresh,
                          remeasure=remeasure, executor=executor, ray_address=ray_address, ray_labels=ray_labels)
    s = report["summary"]
    log = _keep_log(ctx, out_dir / "logs" / "matrix.log")  # beside the cells' logs
    human = (f"matrix: {s['cells']} cells — " + ", ".join(f"{s[k]} {k}" for k in ("pass", "fail", "skipped", "error", "crashed", "timeout",
                                                                                  "unsupported") if s[k])
             + f" ({s['cached']} from the cache)\nreports: {out_dir}/report.md, report.json, junit.xml, index.html"
             + (f"\nlog: {log} (other libraries' output)" if log else ""))
    _emit(ctx, report, human)
    ctx.exit(code)


MERGE_EXIT_HELP = """
\b
Exit codes (of the merged cells, as `edgevt matrix` would give them):
  0  every cell passed (or is unsupported)
  1  a cell failed parity
  2  shards of different plans, a shard given twice, overlapping or missing shards, not a matrix report (nothing is written)
  3  a cell could not run (converter error, crash, timeout)
"""


@cli.command(epilog=MERGE_EXIT_HELP)
@click.argument("dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True, help="Where the merged report.json, report.md, "
              "junit.xml and index.html go (and the shards' cell logs, when their directories hold them).")
@click.option("--allow-missing", is_flag=True, help="Merge even when shards are missing: their cells are listed as pending.")
@json_option
@click.pass_context
def merge(ctx, dirs, out_dir, allow_missing, as_json):
    """Combine the output directories of `edgevt matrix --shard K/N` runs into one matrix report.

    The shards must come from the same plan (same command line and edgevt: report.json records the plan's
    digest), each once, without overlap, and all N of them unless --allow-missing. Each cell keeps the
    host it ran on.

    \b
    edgevt merge runs/shard-1 runs/shard-2 runs/shard-3 --out runs/matrix
    """
    _begin(as_json)
    from edgevt.matrix.merge import merge as merge_shards

    report, code, missing = merge_shards(list(dirs), out_dir, allow_missing)
    s = report["summary"]
    count = report["matrix"]["shards"][0]["count"]
    human = (f"merged {len(report['matrix']['shards'])} of {count} shards: {s['cells']} cells — "
             + ", ".join(f"{s[k]} {k}" for k in ("pass", "fail", "skipped", "error", "crashed", "timeout", "unsupported", "pending") if s[k])
             + (f"\nmissing shards: {', '.join(f'{k}/{count}' for k in missing)} (their cells are pending)" if missing else "")
             + f"\nreports: {out_dir}/report.md, report.json, junit.xml, index.html")
    _emit(ctx, report, human)
    ctx.exit(code)
# --- end matrix command ---


# --- compare command (owned by the compare work) ---
COMPARE_EXIT_HELP = """
\b
Exit codes:
  0  no regression
  1  a regression (latency or parity), or a baseline cell missing from the candidate
  2  bad input (missing file, not JSON, not an edgevt report, newer schema)
"""


@cli.command("compare", epilog=COMPARE_EXIT_HELP)
@click.argument("baseline", type=click.Path(path_type=Path))
@click.argument("candidate", type=click.Path(path_type=Path))
@click.option("--threshold", type=click.FloatRange(min=0), callback=finite, default=0.10, show_default=True,
              help="Relative change of the median latency that matters (0.10 = 10%).")
@click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True), callback=finite, default=0.01, show_default=True,
              help="Significance level of the one-sided Mann–Whitney U test on the raw timing samples.")
@click.option("--allow-missing", is_flag=True,
              help="A baseline cell absent (or no longer checked) in the candidate does not fail the gate.")
@click.option("--normalize", type=click.Choice(["speedup", "efficiency"]),
              help="Gate latency on a figure that carries across machines: each side's samples divided by torch eager's median "
                   "in the same run (speedup) or by the host's compute bound (efficiency).")
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path), help="Also write the Markdown summary to FILE.")
@json_option
@click.pass_context
def compare_cmd(ctx, baseline, candidate, threshold, alpha, allow_missing, normalize, out_file, as_json):
    """Compare two runs cell by cell (a CI gate): exit 1 on a regression (latency or parity), 2 on bad input.

    BASELINE and CANDIDATE are report.json files (or run directories holding one) from `edgevt matrix`,
    `export`, `validate` or `bench`; cells are matched by MODEL/TARGET/PRECISION.

    \b
    Latency regresses when both hold: the candidate's median is more than --threshold above the
    baseline's, and a one-sided Mann–Whitney U test on the raw samples (candidate slower) gives
    p < --alpha. An improvement is the mirror image. Fewer than 5 samples a side, a different
    engine, or latency measured on one side only is "not comparable", never a regression. When
    both reports record their timing blocks (this edgevt's protocol), the samples judged on each
    side are those of its blocks at the host's full speed, so a run that a shared host slowed for
    part of its time is not taken for a regression; older reports are judged on all samples.
    Parity regresses when a cell that passed fails, errors, crashes or times out; drift that
    still passes (cosine, top-1) is reported but does not gate. A baseline cell missing from the
    candidate regresses unless --allow-missing. Milliseconds are only comparable on one machine: a
    warning says when the environments differ. With --normalize speedup|efficiency the same test runs
    on samples divided by each side's torch eager median or compute bound, which carry across machines.

    Prints a Markdown summary for a pull-request comment (or the comparison as JSON with --json).
    """
    _begin(as_json)
    from edgevt.compare import Rule, compare_paths, markdown
    from edgevt.errors import EXIT_OK, EXIT_PARITY
    from edgevt.fsio import atomic_write_text

    comparison = compare_paths(baseline, candidate, Rule(threshold, alpha, allow_missing, normalize=normalize))
    text = markdown(comparison)
    if out_file:
        atomic_write_text(out_file, text)
    _emit(ctx, comparison.to_dict(), text.rstrip("\n"))
    ctx.exit(EXIT_PARITY if comparison.regressed else EXIT_OK)
# --- end compare command ---


def _finish(ctx, outcome) -> None:
    from edgevt.commands import summary_text

    log = _keep_log(ctx, outcome.report_path.with_suffix(".log") if outcome.report_path else None)
    _emit(ctx, outcome.report, summary_text(outcome.report, outcome.report_path, log))
    for msg in outcome.messages:
        click.echo(msg, file=terminal_err())
    ctx.exit(outcome.exit_code)


def main() -> None:
    """The one exception boundary: every failure becomes its exit code, a message on stderr and, with --json, one
    error object on stdout. Exit 1 comes only from a parity verdict (or compare's regression verdict)."""
    args = sys.argv[1:]
    try:
        code = cli.main(args=args, prog_name="edgevt", standalone_mode=False)  # ctx.exit(code) returns code in this mode
    except click.Abort:
        click.echo("aborted", err=True)
        code = 130
    except click.ClickException as exc:
        code = failures.usage_failure(exc, args)
    except EdgevtError as exc:
        code = failures.edgevt_failure(exc, args)
    except Exception as exc:  # noqa: BLE001 — the one boundary: an unforeseen error is exit 3 with its traceback logged
        code = failures.unexpected_failure(exc, args)
    sys.exit(code if isinstance(code, int) else 0)
