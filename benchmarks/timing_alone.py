"""Protocol vs alone: does edgevt's timing protocol measure each runtime as it runs alone, at its library defaults?

    python benchmarks/timing_alone.py                                  # swiftformer-xs and swin-tiny; ~6 min
    python benchmarks/timing_alone.py --models swiftformer-xs --repeats 1

Alone: each runtime (ONNX Runtime, LiteRT/XNNPACK, torch eager) in its own fresh process at library defaults, runs
back to back. Protocol: an artifact and torch eager timed together by edgevt.bench.measure in one process, as
`edgevt export` and `edgevt bench --model` do (so torch eager is timed twice, next to ORT and next to LiteRT).
Pass: every protocol median within ±10% of the runtime's median alone. For swiftformer-xs the real commands
`edgevt export --target onnx` and `edgevt bench --model` are run too: their speed-up over torch eager must be within
20% of the ratio of the two runtimes' medians alone. Writes reports/timing-alone.md (+ .json).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import NAMES, ROOT, alone, artifact, edgevt_json, host_line, load_note, protocol, ratio_ok, write_report  # noqa: E402

PAIRS = (("ort", "torch"), ("litert", "torch"))
BOUND, SPEEDUP_BOUND = 0.10, 0.20


def _alone_all(model: str, args, res: dict) -> None:
    for runtime in ("ort", "litert", "torch"):
        res["alone"].setdefault(f"{model}/{runtime}", []).append(alone(runtime, model, args.runs_dir, args.threads, args.seconds)["p50_ms"])


def _protocol_all(model: str, args, res: dict) -> None:
    for pair in PAIRS:
        got = protocol(list(pair), model, args.runs_dir, args.threads, args.min_time, args.max_time)
        for runtime, p50 in zip(pair, got["p50_ms"]):
            res["protocol"].setdefault(f"{model}/{runtime}/{'+'.join(pair)}", []).append(p50)


def _commands(args, res: dict) -> None:
    """The user-facing commands on swiftformer-xs: their speed-up vs torch eager."""
    out = args.runs_dir / "swiftformer-xs" / "export-check"
    rep = edgevt_json("export", "swiftformer-xs", "--target", "onnx", "--weights", "random", "--threads", str(args.threads), "--out", str(out))
    res["commands"].setdefault("edgevt export swiftformer-xs --target onnx", []).append(rep["latency"]["speedup_vs_torch_eager"])
    art = artifact("swiftformer-xs", "ort", args.runs_dir)
    rep = edgevt_json("bench", str(art), "--model", "swiftformer-xs", "--weights", "random", "--threads", str(args.threads))
    res["commands"].setdefault("edgevt bench ARTIFACT --model swiftformer-xs", []).append(rep["latency"]["speedup_vs_torch_eager"])


def measure_all(args) -> dict:
    res: dict = {"alone": {}, "protocol": {}, "commands": {}}
    models = args.models.split(",")
    for rep in range(args.repeats):
        for model in models:
            steps = [_alone_all, _protocol_all] if rep % 2 == 0 else [_protocol_all, _alone_all]  # drift hits both alike
            for step in steps:
                step(model, args, res)
            print(f"{model} repeat {rep} done", file=sys.stderr)
        if "swiftformer-xs" in models:
            _commands(args, res)
    return res


def _med(values: list[float]) -> float:
    return statistics.median(values)


def write(res: dict, args, command: str, started: str) -> Path:
    rows, worst = [], 0.0
    for key, values in res["protocol"].items():
        model, runtime, pair = key.split("/")
        ratio = _med(values) / _med(res["alone"][f"{model}/{runtime}"])
        worst = max(worst, abs(ratio - 1))
        rows.append(f"| {model} | {NAMES[runtime]} | next to {' + '.join(NAMES[r] for r in pair.split('+') if r != runtime) or 'itself'} "
                    f"| {_med(res['alone'][f'{model}/{runtime}']):.2f} | {_med(values):.2f} | {ratio_ok(ratio, BOUND)} |")
    lines = ["# Protocol vs alone: each runtime timed by edgevt's protocol against the same runtime alone", "",
             f"Produced by `{command}` (started {started}) on {host_line()}, {args.threads} threads, random weights; {load_note()}.", "",
             f"Alone: a fresh process per runtime at library defaults, {args.seconds:g} s of back-to-back runs. Protocol: the artifact "
             f"and torch eager in one process, edgevt.bench.measure ({args.min_time:g}–{args.max_time:g} s, until each median is "
             f"known to ±2%). Medians of {args.repeats} repeats. Pass: protocol / alone within ±{BOUND:.0%}.", "",
             f"**Result: worst |protocol / alone − 1| = {worst:.1%}: {'PASS' if worst <= BOUND else 'FAIL'}.**", "",
             "| model | runtime | timed | alone p50 ms | protocol p50 ms | protocol / alone |", "|---|---|---|---|---|---|", *rows]
    if res["commands"]:
        alone_ratio = _med(res["alone"]["swiftformer-xs/torch"]) / _med(res["alone"]["swiftformer-xs/ort"])
        lines += ["", f"## Speed-up over torch eager reported by the commands (swiftformer-xs, ONNX fp32)", "",
                  f"Ratio of the medians alone (torch eager / ONNX Runtime): **{alone_ratio:.2f}×**. Pass: each command's speed-up "
                  f"within ±{SPEEDUP_BOUND:.0%} of it.", "", "| command | speed-ups | median / alone ratio |", "|---|---|---|"]
        for cmd, values in res["commands"].items():
            lines.append(f"| `{cmd}` | {', '.join(f'{v:.2f}×' for v in values)} | {ratio_ok(_med(values) / alone_ratio, SPEEDUP_BOUND)} |")
    return write_report(args.out, lines, {"command": command, "started": started, **res})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="swiftformer-xs,swin-tiny")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=5.0, help="sampling time of each runtime alone")
    ap.add_argument("--min-time", type=float, default=2.0)
    ap.add_argument("--max-time", type=float, default=15.0)
    ap.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "timing")
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "timing-alone.json")
    args = ap.parse_args()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    command = ("python benchmarks/timing_alone.py " + " ".join(sys.argv[1:])).strip()
    print(write(measure_all(args), args, command, started))


if __name__ == "__main__":
    main()
