"""Protocol vs alone: does edgevt's timing protocol measure each runtime as it runs alone, at its library defaults?

    python benchmarks/timing_alone.py                                  # swiftformer-xs and swin-tiny; ~10 min
    python benchmarks/timing_alone.py --models swiftformer-xs --rounds 10

Alone: each runtime (ONNX Runtime, LiteRT/XNNPACK, torch eager) in its own process at library defaults, nothing else
in it. Protocol: an artifact and torch eager in one process, each block timed by edgevt.bench's protocol state (a
pause until the other runtime's threads are idle, an untimed wake-up run, then the block), as `edgevt export` and
`edgevt bench --model` do. The processes are workers (_timing.Worker) that the benchmark asks in turn for one block
each (about 0.5 s of runs), waiting for the previous worker's threads to go idle: a round is
alone-artifact, protocol-torch, protocol-artifact, alone-torch (reversed every other round). This host changes speed
for seconds at a time (reports/host-modes.md), so blocks are only compared within a round, seconds apart: per round
the ratio protocol / alone of each runtime; reported is the median over the rounds.
Pass: every median ratio within ±10%. For swiftformer-xs the real commands `edgevt export --target onnx` and
`edgevt bench --model` are run too: their speed-up over torch eager must be within 20% of the speed-up alone (the
median over rounds of alone torch eager / alone ONNX Runtime). Writes reports/timing-alone.md (+ .json).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import NAMES, ROOT, Worker, artifact, edgevt_json, host_line, load_note, ratio_ok, write_report  # noqa: E402

PAIRS = (("ort", "torch"), ("litert", "torch"))
BOUND, SPEEDUP_BOUND = 0.10, 0.20


def measure_pair(model: str, pair: tuple[str, str], args) -> list[dict]:
    """ROUNDS rounds of four blocks; per round the block medians of each runtime alone and under the protocol."""
    art, base = pair
    for runtime in pair:
        if runtime != "torch":
            artifact(model, runtime, args.runs_dir)  # exported once, before the workers start
    alone_art, proto, alone_base = (Worker("alone", [art], model, args.runs_dir, args.threads),
                                    Worker("protocol", [art, base], model, args.runs_dir, args.threads),
                                    Worker("alone", [base], model, args.runs_dir, args.threads))
    rounds = []
    try:
        for r in range(args.rounds):
            seq = [("alone", alone_art, 0, art), ("protocol", proto, 1, base), ("protocol", proto, 0, art), ("alone", alone_base, 0, base)]
            got, prev = {}, None
            for kind, worker, i, runtime in (seq if r % 2 == 0 else seq[::-1]):
                if prev is not None and prev is not worker:
                    prev.wait_idle()
                got[f"{kind}/{runtime}"] = worker.block(i)
                prev = worker
            rounds.append(got)
    finally:
        for w in (alone_art, proto, alone_base):
            w.close()
    return rounds


def _commands(args, res: dict) -> None:
    """The user-facing commands on swiftformer-xs: their speed-up vs torch eager."""
    out = args.runs_dir / "swiftformer-xs" / "export-check"
    rep = edgevt_json("export", "swiftformer-xs", "--target", "onnx", "--weights", "random", "--threads", str(args.threads), "--out", str(out))
    res["commands"].setdefault("edgevt export swiftformer-xs --target onnx", []).append(_speedups(rep["latency"]))
    art = artifact("swiftformer-xs", "ort", args.runs_dir)
    rep = edgevt_json("bench", str(art), "--model", "swiftformer-xs", "--weights", "random", "--threads", str(args.threads))
    res["commands"].setdefault("edgevt bench ARTIFACT --model swiftformer-xs", []).append(_speedups(rep["latency"]))


def _speedups(latency: dict) -> dict:
    """A command's speed-up over every round, and over the rounds in which both runtimes ran at full speed."""
    return {"all": latency["speedup_vs_torch_eager"], "full": latency["speedup"]["full_speed"]["median"]}


def measure_all(args) -> dict:
    res: dict = {"pairs": {}, "commands": {}}
    for model in args.models.split(","):
        for pair in PAIRS:
            res["pairs"][f"{model}/{'+'.join(pair)}"] = measure_pair(model, pair, args)
            print(f"{model} {'+'.join(pair)} done", file=sys.stderr)
        if model == "swiftformer-xs":
            for _ in range(args.command_repeats):
                _commands(args, res)
    return res


def _med(values: list[float]) -> float:
    return statistics.median(values)


def _x(value: float | None) -> str:
    return f"{value:.2f}×" if value else "— (no round with both at full speed)"


def _rows(res: dict) -> tuple[list[str], float, dict]:
    rows, worst, speedup_alone = [], 0.0, {}
    for key, rounds in res["pairs"].items():
        model, pair = key.split("/")
        art, base = pair.split("+")
        for runtime, other in ((art, base), (base, art)):
            ratio = _med([r[f"protocol/{runtime}"] / r[f"alone/{runtime}"] for r in rounds])
            worst = max(worst, abs(ratio - 1))
            rows.append(f"| {model} | {NAMES[runtime]} | next to {NAMES[other]} | {_med([r[f'alone/{runtime}'] for r in rounds]):.2f} "
                        f"| {_med([r[f'protocol/{runtime}'] for r in rounds]):.2f} | {ratio_ok(ratio, BOUND)} | {len(rounds)} |")
        speedup_alone[key] = {"alone": _med([r[f"alone/{base}"] / r[f"alone/{art}"] for r in rounds]),
                              "protocol": _med([r[f"protocol/{base}"] / r[f"protocol/{art}"] for r in rounds]),
                              "alone_full": _full_speed_ratio(rounds, art, base)}
    return rows, worst, speedup_alone


def _full_speed_ratio(rounds: list[dict], art: str, base: str) -> float | None:
    """The speed-up alone over the rounds in which both alone blocks ran at the host's full speed, by the rule the
    commands use (edgevt.bench.full_speed_blocks)."""
    from edgevt.bench import full_speed_blocks, paired_ratios

    meds = [[r[f"alone/{x}"] for r in rounds] for x in (art, base)]
    ratios = paired_ratios(meds, [full_speed_blocks(m) for m in meds])[1]
    return _med(ratios) if ratios else None


def write(res: dict, args, command: str, started: str) -> Path:
    rows, worst, speedups = _rows(res)
    lines = ["# Protocol vs alone: each runtime timed by edgevt's protocol against the same runtime alone", "",
             f"Produced by `{command}` (started {started}) on {host_line()}, {args.threads} threads, random weights; {load_note()}.", "",
             "Alone: each runtime in its own process at library defaults. Protocol: the artifact and torch eager in one process, "
             "each block by edgevt.bench's protocol (pause until the other's threads are idle, untimed wake-up run, block). "
             f"Four worker processes' blocks (about 0.5 s each) per round, {args.rounds} rounds; between workers the benchmark "
             "waits for the previous one's threads to go idle. This host changes speed for seconds at a time "
             "(reports/host-modes.md), so each ratio is taken within a round and the median over rounds is reported. "
             f"Pass: protocol / alone within ±{BOUND:.0%}.", "",
             f"**Result: worst |protocol / alone − 1| = {worst:.1%}: {'PASS' if worst <= BOUND else 'FAIL'}.**", "",
             "| model | runtime | timed | alone p50 of block medians, ms | protocol p50 of block medians, ms | median per-round protocol / alone | rounds |",
             "|---|---|---|---|---|---|---|", *rows, "",
             "Speed-up over torch eager within the same rounds (median over rounds of torch eager's block / the artifact's block):", "",
             "| model | artifact | alone | protocol | protocol / alone |", "|---|---|---|---|---|"]
    for key, s in speedups.items():
        model, pair = key.split("/")
        lines.append(f"| {model} | {NAMES[pair.split('+')[0]]} | {s['alone']:.2f}× | {s['protocol']:.2f}× | {ratio_ok(s['protocol'] / s['alone'], BOUND)} |")
    if res["commands"]:
        alone = speedups["swiftformer-xs/ort+torch"]
        full = alone["alone_full"]
        lines += ["", "## Speed-up over torch eager reported by the commands (swiftformer-xs, ONNX fp32)", "",
                  f"Speed-up alone (above): **{alone['alone']:.2f}×** over every round; **{_x(full)}** over the rounds in "
                  "which both alone runtimes ran at the host's full speed (edgevt.bench.full_speed_blocks). The commands "
                  "report the median of their per-round ratios (`speedup_vs_torch_eager`) and the same over the rounds in "
                  f"which both ran at full speed (`speedup.full_speed`). Pass: each command's median within "
                  f"±{SPEEDUP_BOUND:.0%} of the speed-up alone, compared like with like.", "",
                  "| command | speed-ups, every round | median / alone | speed-ups at full speed | median / alone at full speed |",
                  "|---|---|---|---|---|"]
        for cmd, values in res["commands"].items():
            every, at_full = [v["all"] for v in values], [v["full"] for v in values if v["full"]]
            lines.append(f"| `{cmd}` | {', '.join(f'{v:.2f}×' for v in every)} | {ratio_ok(_med(every) / alone['alone'], SPEEDUP_BOUND)} "
                         f"| {', '.join(f'{v:.2f}×' for v in at_full) or '—'} "
                         f"| {ratio_ok(_med(at_full) / full, SPEEDUP_BOUND) if at_full and full else '—'} |")
    return write_report(args.out, lines, {"command": command, "started": started, **res})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="swiftformer-xs,swin-tiny")
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--command-repeats", type=int, default=3, help="runs of each real command (swiftformer-xs)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "timing")
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "timing-alone.json")
    args = ap.parse_args()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    command = ("python benchmarks/timing_alone.py " + " ".join(sys.argv[1:])).strip()
    print(write(measure_all(args), args, command, started))


if __name__ == "__main__":
    main()
