"""edgevt command line. Each command is a few lines calling the library; heavy imports happen inside them."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from edgevt import __version__
from edgevt.errors import EXIT_USAGE, EdgevtError
from edgevt.options import (
    bench_options,
    compute_units_option,
    device_options,
    json_option,
    parse_precision,
    pass_log,
    precision_option,
    profile_option,
    rewrites_option,
    target_option_option,
    tolerance_option,
    weights_options,
)

EXIT_CODES_HELP = """
\b
Exit codes:
  0  success
  1  parity failed (the export does not compute what PyTorch computes)
  2  bad usage or input (unknown model, bad profile, missing file)
  3  export or runtime error (a converter failed, a runtime is missing)
"""


def _emit(ctx, payload: dict, human: str) -> None:
    if ctx.obj["json"]:
        from edgevt.report import to_json

        click.echo(to_json(payload))
    else:
        click.echo(human)


@click.group(epilog=EXIT_CODES_HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgevt")
@click.option("-q", "--quiet", is_flag=True, help="No progress output on stderr.")
@click.pass_context
def cli(ctx, quiet):
    """Export vision transformers for phones and prove the exports still compute the same thing.

    \b
    edgevt list                                   variants, targets, what runs here
    edgevt export swiftformer-xs --target onnx    export + parity + latency
    edgevt validate ARTIFACT --model NAME         parity of an existing artifact
    edgevt bench ARTIFACT                         latency of an existing artifact
    """
    start = time.perf_counter()

    def log(msg: str) -> None:
        if not quiet:
            click.echo(f"[edgevt {time.perf_counter() - start:6.1f}s] {msg}", err=True)

    ctx.obj = {"log": log, "json": False, "quiet": quiet}


def _set_json(as_json: bool) -> None:
    click.get_current_context().obj["json"] = as_json


@cli.command("list")
@click.argument("pattern", default="*")
@json_option
@click.pass_context
def list_cmd(ctx, pattern, as_json):
    """List registered variants (glob PATTERN, e.g. 'swin*') and targets."""
    _set_json(as_json)
    from edgevt.commands import list_payload, list_text

    payload = list_payload(pattern)
    _emit(ctx, payload, list_text(payload))


@cli.command()
@click.argument("model")
@json_option
@weights_options
@click.pass_context
def info(ctx, model, as_json, weights, seed):
    """Parameters, MACs, input/output shapes and config of MODEL (random weights unless --weights is given)."""
    _set_json(as_json)
    from edgevt.commands import info_payload, info_text

    # Architecture facts do not depend on weights: random unless --weights was given explicitly.
    explicit = ctx.get_parameter_source("weights") is not click.core.ParameterSource.DEFAULT
    payload = info_payload(model, weights if explicit else "random", seed)
    _emit(ctx, payload, info_text(payload))


def _profile_and_target(profile, target, precision):
    from edgevt.profiles import load_profile

    prof = load_profile(profile) if profile else None
    target = target or (prof.target if prof else None) or "onnx"
    precision = parse_precision(precision, target) or (prof.precision if prof else None)
    return prof, target, precision


@cli.command(epilog=EXIT_CODES_HELP)
@click.argument("model")
@click.option("--target", "-t", help="Export target (default onnx, or the profile's).")
@precision_option
@weights_options
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), help="Output directory (default runs/MODEL/TARGET-PRECISION).")
@profile_option
@target_option_option
@rewrites_option
@tolerance_option
@click.option("--bench/--no-bench", default=True, show_default=True, help="Measure latency (artifact and torch eager) after parity.")
@bench_options
@json_option
@click.pass_context
@pass_log
def export(ctx, model, target, precision, weights, seed, out_dir, profile, target_options, rewrites, tolerances, bench, runs, warmup,
           min_time_s, threads, as_json, log):
    """Export MODEL, check parity against PyTorch, time it, and write report.json + report.md beside it.

    The artifact is only moved into place when it is complete and passes parity; a failing export is
    kept as NAME.rejected.SUFFIX with report.failed.json, and earlier results are left untouched.

    \b
    Targets: onnx (onnxruntime CPU runs parity and latency) and coreml (.mlpackage; parity through
    edgevt's MIL interpreter off macOS, Core ML itself on a Mac; latency on a Mac only).
    Core ML options: --option compute_units=CPU_AND_NE, deployment_target=iOS17, input_type=image,
    flexible_batch=true, palettize_bits=4; every target's options are listed by `edgevt doctor`
    and in the README.
    """
    _set_json(as_json)
    from edgevt import pipeline
    from edgevt.exporters import get_target
    from edgevt.profiles import bench_settings

    prof, target, precision = _profile_and_target(profile, target, precision)
    precision = precision or get_target(target).default_precision
    out_dir = out_dir or Path("runs") / model.replace("/", "--") / f"{target}-{precision.value}"
    # export times a short run by default; `edgevt bench` is the command for long ones.
    export_defaults = {"runs": 20, "warmup": 3}
    settings = bench_settings(prof, export_defaults, runs=runs, warmup=warmup, min_time_s=min_time_s, threads=threads) if bench else None
    options = {**(prof.options if prof else {}), **target_options}
    tol = {**(prof.tolerances if prof else {}), **tolerances}
    rewrites = rewrites or (prof.rewrites if prof else None) or "default"
    outcome = pipeline.export(model, target, precision, weights, seed, out_dir, options, tol, settings, log, rewrites=rewrites)
    _finish(ctx, outcome)


@cli.command(epilog=EXIT_CODES_HELP)
@click.argument("artifact", type=click.Path(path_type=Path))
@click.option("--model", "-m", help="The model the artifact was exported from (default: from report.json beside it).")
@precision_option
@weights_options
@profile_option
@tolerance_option
@click.option("--threads", type=click.IntRange(min=1), help="Runtime threads.")
@compute_units_option
@json_option
@click.pass_context
@pass_log
def validate(ctx, artifact, model, precision, weights, seed, profile, tolerances, threads, compute_units, as_json, log):
    """Check that ARTIFACT computes what the PyTorch reference computes; exit 1 if it does not.

    The reference is rebuilt from --model/--weights/--seed, so validating against another seed or
    tampered weights fails. Thresholds follow the precision (and profile, and --tolerance).
    """
    _set_json(as_json)
    from edgevt import pipeline

    prof, _, precision = _profile_and_target(profile, None, precision)
    tol = {**(prof.tolerances if prof else {}), **tolerances}
    outcome = pipeline.validate(artifact, model, precision, weights, seed, tol, threads, log, {"compute_units": compute_units})
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
def bench(ctx, artifact, runs, warmup, min_time_s, threads, profile, model, weights, seed, compute_units, device, benchmark_model,
          as_json, log):
    """Latency of ARTIFACT: cold (load, first inference) and warm (p50/p90/p99, std, 95% CI of the median).

    With --device android[:SERIAL], a .tflite is pushed with adb and timed on the phone by TFLite's
    benchmark_model (init, first inference, warmup and steady-state mean/std, memory). A Core ML
    package is timed by Core ML itself, which needs macOS.
    """
    _set_json(as_json)
    from edgevt import pipeline
    from edgevt.profiles import bench_settings, load_profile

    prof = load_profile(profile) if profile else None
    settings = bench_settings(prof, runs=runs, warmup=warmup, min_time_s=min_time_s, threads=threads)
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
    _set_json(as_json)
    from edgevt.commands import preflight_payload, preflight_text

    payload = preflight_payload(artifact, compute_units, log)
    _emit(ctx, payload, preflight_text(payload))


@cli.command()
@json_option
@click.pass_context
def doctor(ctx, as_json):
    """Versions, which runtimes import, what is missing and how to install it. Exit 3 if a core piece is missing."""
    _set_json(as_json)
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
@click.option("--cell-timeout", type=click.FloatRange(min=1), default=3600, show_default=True, help="Seconds before a cell is stopped.")
@click.option("--retry-failed", is_flag=True, help="Recompute cells whose cached result is an error or a crash.")
@click.option("--fresh", is_flag=True, help="Ignore the cache: re-export and re-measure every cell (the cache is then updated).")
@click.option("--remeasure", is_flag=True, help="Reuse cached artifacts but check parity and time every cell again (e.g. on a quieter machine).")
@json_option
@click.pass_context
def matrix(ctx, models, targets, precisions, weights, seed, profile, target_options, rewrites, tolerances, runs, warmup, min_time_s,
           threads, out_dir, cache_dir, exclude, cell_timeout, retry_failed, fresh, remeasure, as_json):
    """Export, check and time every model × target × precision; write report.json, report.md, junit.xml, index.html.

    Each cell runs in its own process, so a converter that crashes (segfault, abort) fails its cell only.
    Finished cells are cached by content (model config, weights digest, target, precision, options, tool
    and edgevt versions): a repeated or interrupted run reuses them and computes only what is missing.

    \b
    edgevt matrix -m swiftformer-xs,swin-tiny -t onnx,tflite -p fp32,int8 --weights random
    edgevt matrix --profile android-cpu -m 'swiftformer-*' --weights random
    Options: KEY=VALUE goes to every target that has KEY, TARGET.KEY=VALUE to one (coreml.compute_units=ALL).
    """
    _set_json(as_json)
    from edgevt import matrix as mx

    plan = mx.make_plan(models, targets, precisions, profile, weights, seed, target_options, tolerances,
                        {"runs": runs, "warmup": warmup, "min_time_s": min_time_s, "threads": threads}, cell_timeout, exclude,
                        rewrites=rewrites)
    echo = None if ctx.obj.get("quiet") else (lambda line: click.echo(line, err=True))
    report, code = mx.run(plan, out_dir, cache_dir, echo, tty=sys.stderr.isatty(), retry_failed=retry_failed, fresh=fresh,
                          remeasure=remeasure)
    s = report["summary"]
    human = (f"matrix: {s['cells']} cells — " + ", ".join(f"{s[k]} {k}" for k in ("pass", "fail", "skipped", "error", "crashed", "timeout",
                                                                                  "unsupported") if s[k])
             + f" ({s['cached']} from the cache)\nreports: {out_dir}/report.md, report.json, junit.xml, index.html")
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
@click.option("--threshold", type=click.FloatRange(min=0), default=0.10, show_default=True,
              help="Relative change of the median latency that matters (0.10 = 10%).")
@click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.01, show_default=True,
              help="Significance level of the one-sided Mann–Whitney U test on the raw timing samples.")
@click.option("--allow-missing", is_flag=True,
              help="A baseline cell absent (or no longer checked) in the candidate does not fail the gate.")
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path), help="Also write the Markdown summary to FILE.")
@json_option
@click.pass_context
def compare_cmd(ctx, baseline, candidate, threshold, alpha, allow_missing, out_file, as_json):
    """Compare two runs cell by cell (a CI gate): exit 1 on a regression (latency or parity), 2 on bad input.

    BASELINE and CANDIDATE are report.json files (or run directories holding one) from `edgevt matrix`,
    `export`, `validate` or `bench`; cells are matched by MODEL/TARGET/PRECISION.

    \b
    Latency regresses when both hold: the candidate's median is more than --threshold above the
    baseline's, and a one-sided Mann–Whitney U test on the raw samples (candidate slower) gives
    p < --alpha. An improvement is the mirror image. Fewer than 5 samples a side, a different
    engine, or latency measured on one side only is "not comparable", never a regression.
    Parity regresses when a cell that passed fails, errors, crashes or times out; drift that
    still passes (cosine, top-1) is reported but does not gate. A baseline cell missing from the
    candidate regresses unless --allow-missing. Latency is only comparable on one machine: a
    warning says when the environments differ.

    Prints a Markdown summary for a pull-request comment (or the comparison as JSON with --json).
    """
    _set_json(as_json)
    from edgevt.compare import Rule, compare_paths, markdown
    from edgevt.errors import EXIT_OK, EXIT_PARITY
    from edgevt.fsio import atomic_write_text

    comparison = compare_paths(baseline, candidate, Rule(threshold, alpha, allow_missing))
    text = markdown(comparison)
    if out_file:
        atomic_write_text(out_file, text)
    _emit(ctx, comparison.to_dict(), text.rstrip("\n"))
    ctx.exit(EXIT_PARITY if comparison.regressed else EXIT_OK)
# --- end compare command ---


def _finish(ctx, outcome) -> None:
    from edgevt.commands import summary_text

    _emit(ctx, outcome.report, summary_text(outcome.report, outcome.report_path))
    for msg in outcome.messages:
        click.echo(msg, err=True)
    ctx.exit(outcome.exit_code)


def main() -> None:
    """Entry point: EdgevtErrors become a message on stderr (and JSON on stdout with --json) and their exit code."""
    try:
        code = cli.main(standalone_mode=False)  # returns ctx.exit()'s code in this mode
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code if exc.exit_code else EXIT_USAGE)
    except click.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except EdgevtError as exc:
        ctx_json = "--json" in sys.argv[1:]
        if ctx_json:
            click.echo(json.dumps({"error": exc.message, "hint": exc.hint, "exit_code": exc.exit_code, "type": type(exc).__name__}))
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
