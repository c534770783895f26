"""Reusable Click options; cross-option checks raise click.BadParameter (exit 2)."""

from __future__ import annotations

import functools
import math

import click

from edgevt.limits import SEED_MAX, THREADS_MAX, TOLERANCE_RANGES, tolerance_value
from edgevt.parity import Precision

PRECISIONS = ["fp32", "fp16", "int8", "int8-dynamic", "int8-static", "int8-weights", "palettize"]


def _stack(*decorators):
    def apply(func):
        for dec in reversed(decorators):
            func = dec(func)
        return func

    return apply


json_option = click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout (progress stays on stderr).")

weights_options = _stack(
    click.option(
        "--weights",
        metavar="pretrained|random|PATH",
        help="pretrained (default): the checkpoint's own weights, from a model directory or from_pretrained via the HF "
        "cache (honours HF_HUB_OFFLINE); random: seeded weights scaled to give logits of ordinary size; PATH: a local "
        "HF model directory (checked to hold this model) or a .safetensors file.",
    ),
    click.option("--seed", type=click.IntRange(0, SEED_MAX),
                 help="Seed for random weights and noise inputs, 0 .. 2**64-1 (default 0; validate: the report's)."),
)

profile_option = click.option(
    "--profile", metavar="NAME|PATH", help="A deployment recipe from profiles/ (e.g. onnx-cpu-int8) or a YAML file. Flags given on the command line win."
)

precision_option = click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    help="fp32, fp16, int8-dynamic or int8-static (ONNX, TFLite; calibrated on the evaluation photos or --calibration-images), "
    "int8-weights or palettize "
    "(Core ML weight compression). `int8` is short for the target's weight-int8 mode. Default: fp32, fp16 for coreml.",
)

compute_units_option = click.option(
    "--compute-units",
    type=click.Choice(["ALL", "CPU_AND_NE", "CPU_ONLY", "CPU_AND_GPU"]),
    help="Core ML on macOS: run on these compute units instead of the ones stored in the model.",
)


def _parse_pairs(ctx, param, values):
    out = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", ctx=ctx, param=param)
        import yaml

        try:
            out[key.strip()] = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise click.BadParameter(f"{item!r}: cannot read the value {raw!r} (a number, true/false or text)", ctx=ctx, param=param) from None
    return out


def _parse_tolerances(ctx, param, values):
    """Finite and within their meaning (edgevt.limits): a NaN or a cosine of 1.1 would make parity meaningless."""
    out = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", ctx=ctx, param=param)
        number, problem = tolerance_value(key.strip(), raw)
        if problem:
            raise click.BadParameter(problem, ctx=ctx, param=param)
        out[key.strip()] = number
    return out


def finite(ctx, param, value):
    """Click's FloatRange lets nan and inf through."""
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a finite number", ctx=ctx, param=param)
    return value


tolerance_option = click.option(
    "--tolerance",
    "tolerances",
    multiple=True,
    callback=_parse_tolerances,
    metavar="KEY=VALUE",
    help=f"Override a parity threshold ({', '.join(TOLERANCE_RANGES)}); repeatable. atol, rtol >= 0; min_cosine and "
    "min_top1 between 0 and 1.",
)

target_option_option = click.option(
    "--option",
    "target_options",
    multiple=True,
    callback=_parse_pairs,
    metavar="KEY=VALUE",
    help="A target option, e.g. opset=17, exporter=torchscript, dynamic_batch=true; repeatable.",
)

threads_option = click.option("--threads", type=click.IntRange(1, THREADS_MAX), help="Runtime threads (default: all logical CPUs).")
def _parse_rewrites(ctx, param, value):
    if value is None:
        return None
    from edgevt.errors import UsageError
    from edgevt.rewrites import parse_choice

    try:
        return parse_choice(value)
    except UsageError as exc:
        raise click.BadParameter(f"{exc.message}; {exc.hint}" if exc.hint else exc.message, ctx=ctx, param=param) from None


rewrites_option = click.option(
    "--rewrites",
    callback=_parse_rewrites,
    metavar="none|default|NAME,...",
    help="Rewrite a copy of the PyTorch model before conversion into the same function in device-friendly ops "
    "(parity is still checked against the unrewritten model). default (unless the profile says otherwise): the "
    "rewrites measured to help on this target; none: convert HF's modules as they are; or names from `edgevt list`.",
)

bench_options = _stack(
    click.option("--runs", type=click.IntRange(min=1), help="At least this many timed runs per runtime (default 10)."),
    click.option("--warmup", type=click.IntRange(min=0), help="Untimed runs per runtime before timing (default 5; export, matrix: 3)."),
    click.option("--min-time", "min_time_s", type=click.FloatRange(min=0), callback=finite,
                 help="Sample at least this many seconds (default 2; export, matrix: 1)."),
    click.option("--max-time", "max_time_s", type=click.FloatRange(min=0), callback=finite,
                 help="Stop sampling after this many seconds even if the median is not yet known to ±2% (default 30; export, matrix: "
                      "10; on --device android, benchmark_model's --max_secs per phase, default 1800)."),
    threads_option,
)


def _check_device(ctx, param, value):
    if value is None:
        return None
    kind, sep, serial = value.partition(":")
    if kind not in ("host", "android") or (sep and not serial) or (kind == "host" and sep):
        raise click.BadParameter(f"{value!r}: use host, android or android:SERIAL", ctx=ctx, param=param)
    return value


device_options = _stack(
    click.option("--device", callback=_check_device, metavar="host|android[:SERIAL]",
                 help="Where to time it: host (default) or an Android phone over adb, with TFLite's benchmark_model."),
    click.option("--benchmark-model", "benchmark_model", metavar="PATH", envvar="EDGEVT_BENCHMARK_MODEL", show_envvar=True,
                 help="LiteRT's Interpreter-API benchmark tool for the phone, android_aarch64_benchmark_model (for --device android)."),
)


def parse_precision(value: str | None, target: str | None = None) -> Precision | None:
    return Precision.parse(value, target) if value else None


def pass_log(func):
    """Inject a `log` callable that writes progress to stderr unless --quiet."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        ctx = click.get_current_context()
        return func(*args, log=ctx.obj["log"], **kwargs)

    return wrapper


def _parse_input_size(ctx, param, value):
    from edgevt.errors import UsageError
    from edgevt.models.checkpoint import parse_input_size

    try:
        return parse_input_size(value)
    except UsageError as exc:
        raise click.BadParameter(exc.message, ctx=ctx, param=param) from None


input_size_option = click.option(
    "--input-size", callback=_parse_input_size, metavar="N|HxW",
    help="Export at this input size instead of the checkpoint's (config image_size for Swin, else what its image "
    "processor makes); the processor is adapted to produce it.")


images_option = click.option(
    "--images", metavar="DIR", type=click.Path(path_type=str),
    help="Check parity and top-1/top-5 agreement on your own photos: a folder (searched recursively, sorted by name) of "
    "jpg, png, webp or anything PIL opens, any size. EXIF orientation is applied, grayscale/RGBA/CMYK become RGB as in "
    "transformers; files that are not images are skipped and listed in the report. Default: the built-in set (104 "
    "views of the 8 bundled photos: whole, mirrored and cropped).")

samples_option = click.option(
    "--samples", type=click.IntRange(min=1), metavar="N",
    help="Use at most N photos per set, spread evenly over the sorted files (default: all of them, or $EDGEVT_SAMPLES). "
    "Two seeded noise samples are always added.")

calibration_images_option = click.option(
    "--calibration-images", metavar="DIR", type=click.Path(path_type=str),
    help="int8-static calibrates on these photos instead of the evaluation photos (--images, else the built-in set). "
    "The report says how many calibration photos are also evaluation photos (compared by content).")

export_images_options = _stack(images_option, calibration_images_option, samples_option)
