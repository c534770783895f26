"""Reusable Click options; cross-option checks raise click.BadParameter (exit 2)."""

from __future__ import annotations

import functools

import click

from edgevt.parity import Precision, Thresholds

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
        default="pretrained",
        show_default=True,
        metavar="pretrained|random|PATH",
        help="pretrained: from_pretrained via the HF cache (honours HF_HUB_OFFLINE); random: seeded weights "
        "scaled to give logits of ordinary size; PATH: a local HF model directory or .safetensors file.",
    ),
    click.option("--seed", default=0, show_default=True, type=int, help="Seed for random weights and noise inputs."),
)

profile_option = click.option(
    "--profile", metavar="NAME|PATH", help="A deployment recipe from profiles/ (e.g. onnx-cpu-int8) or a YAML file. Flags given on the command line win."
)

precision_option = click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    help="fp32, fp16, int8-dynamic or int8-static (ONNX; calibrated on the sample photos), int8-weights or palettize "
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

        out[key.strip()] = yaml.safe_load(raw)
    return out


def _parse_tolerances(ctx, param, values):
    pairs = _parse_pairs(ctx, param, values)
    for key, value in pairs.items():
        if key not in Thresholds.keys():
            raise click.BadParameter(f"unknown tolerance {key!r}; allowed: {', '.join(Thresholds.keys())}", ctx=ctx, param=param)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise click.BadParameter(f"tolerance {key} needs a number, got {value!r}", ctx=ctx, param=param)
    return pairs


tolerance_option = click.option(
    "--tolerance",
    "tolerances",
    multiple=True,
    callback=_parse_tolerances,
    metavar="KEY=VALUE",
    help=f"Override a parity threshold ({', '.join(Thresholds.keys())}); repeatable.",
)

target_option_option = click.option(
    "--option",
    "target_options",
    multiple=True,
    callback=_parse_pairs,
    metavar="KEY=VALUE",
    help="A target option, e.g. opset=17, exporter=torchscript, dynamic_batch=true; repeatable.",
)

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
    click.option("--runs", type=click.IntRange(min=1), help="Timed runs after warmup (default 100; export: 20)."),
    click.option("--warmup", type=click.IntRange(min=0), help="Untimed runs before timing (default 10; export: 3)."),
    click.option("--min-time", "min_time_s", type=click.FloatRange(min=0), help="Keep timing until this many seconds have passed."),
    click.option("--threads", type=click.IntRange(min=1), help="Runtime threads (default: all logical CPUs)."),
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
                 help="The Android benchmark_model binary (for --device android)."),
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
