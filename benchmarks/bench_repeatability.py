"""Repeatability of `edgevt bench`: identical runs must agree on the median within 5%.

    python benchmarks/bench_repeatability.py                      # swiftformer-xs ONNX and TFLite, 3 runs each; ~3 min
    python benchmarks/bench_repeatability.py --models swin-tiny --runtimes ort --repeats 2

Each run is the real command, `edgevt bench ARTIFACT --model MODEL --weights random --json`, in a fresh process at
library defaults and bench's default sampling (until each median is known to ±2%, 2–30 s). The spread is the
largest median over the smallest, minus 1, for the artifact, torch eager and the speed-up, over every block and at
full speed (edgevt.bench: the blocks of the host's faster state).
The last column is how much each runtime's block medians varied within the run (p90/p10): above 1.2 the host changed
speed during it (reports/host-modes.md). Writes reports/bench-repeatability.md (+ .json).
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import NAMES, ROOT, artifact, edgevt_json, host_line, load_note, write_report  # noqa: E402

BOUND = 0.05


def measure_all(args) -> list[dict]:
    runs = []
    for model in args.models.split(","):
        for runtime in args.runtimes.split(","):
            art = artifact(model, runtime, args.runs_dir)
            for rep in range(args.repeats):
                lat = edgevt_json("bench", str(art), "--model", model, "--weights", "random", "--threads", str(args.threads))["latency"]
                sampling = lat["protocol"]["sampling"]
                runs.append({"model": model, "runtime": runtime, "repeat": rep, "p50_ms": lat["warm"]["p50_ms"],
                             "torch_p50_ms": lat["baseline"]["warm"]["p50_ms"], "speedup": lat["speedup_vs_torch_eager"],
                             "runs": [lat["warm"]["runs"], lat["baseline"]["warm"]["runs"]], "stopped_by": sampling["stopped_by"],
                             "seconds": sampling["seconds"], "reached_ci95_rel": sampling["reached_ci95_rel"],
                             "efficiency": lat.get("efficiency"),
                             "block_spread_p90_p10": lat["protocol"].get("host", {}).get("block_spread_p90_p10"),
                             "full_p50_ms": lat["warm"]["full_speed"]["p50_ms"],
                             "full_torch_p50_ms": lat["baseline"]["warm"]["full_speed"]["p50_ms"],
                             "full_speedup": lat["speedup"]["full_speed"]["median"] or float("nan"),  # nan: no round both at full speed
                             "full_blocks": [f"{x['blocks']}/{x['of_blocks']}" for x in
                                             (lat["warm"]["full_speed"], lat["baseline"]["warm"]["full_speed"])]})
                print(f"{model} {runtime} #{rep}: {runs[-1]['p50_ms']:.2f} ms, {runs[-1]['speedup']:.2f}x", file=sys.stderr)
    return runs


def spread(values: list[float]) -> float:
    """Largest / smallest − 1; a missing figure (nan: no round at full speed) makes the spread infinite, a fail."""
    if not all(math.isfinite(v) for v in values):
        return math.inf
    return max(values) / min(values) - 1


def pairs_within(values: list[float]) -> tuple[int, int]:
    """How many of the pairs of runs agree within BOUND (larger / smaller − 1), of how many pairs."""
    pairs = list(itertools.combinations(values, 2))
    return sum(1 for a, b in pairs if math.isfinite(a) and math.isfinite(b) and max(a, b) / min(a, b) - 1 <= BOUND), len(pairs)


def write(runs: list[dict], args, command: str, started: str) -> Path:
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        groups.setdefault((r["model"], r["runtime"]), []).append(r)
    summary, worst = [], {"all": 0.0, "full": 0.0}
    for (model, runtime), rs in groups.items():
        for kind, keys in (("all", ("p50_ms", "torch_p50_ms", "speedup")),
                           ("full", ("full_p50_ms", "full_torch_p50_ms", "full_speedup"))):
            s = {k: spread([r[k] for r in rs]) for k in keys}
            worst[kind] = max(worst[kind], *s.values())
            pairs = [pairs_within([r[k] for r in rs]) for k in keys]
            summary.append(f"| {model} | {NAMES[runtime]} | {'every block' if kind == 'all' else 'at full speed'} | {len(rs)} | "
                           + " | ".join(f"{v:.1%} {'✅' if v <= BOUND else '❌'}" for v in s.values()) + " | "
                           + ", ".join(f"{ok}/{n}" for ok, n in pairs) + " |")
    lines = ["# Repeatability of `edgevt bench`: identical runs, one after another", "",
             f"Produced by `{command}` (started {started}) on {host_line()}, {args.threads} threads, random weights; {load_note()}.", "",
             f"Each run: `edgevt bench ARTIFACT --model MODEL --weights random` in a fresh process, bench's default sampling. "
             f"Spread = largest median / smallest − 1. Pass: every spread ≤ {BOUND:.0%}. Pairs: of all pairs of runs, "
             f"how many agree within {BOUND:.0%} (artifact, torch eager, speed-up).", "",
             "Two sets of figures: over every block (bench's p50 and paired speed-up), and at full speed (each runtime's "
             "blocks within 10% of its fastest tenth, and the rounds in which both ran at full speed; `warm.full_speed` "
             "and `speedup.full_speed` in bench's JSON). On a host that changes speed (reports/host-modes.md) the first "
             "set moves with the share of time the host spent in its slow state; the second should not.", "",
             f"**Result over every block: worst spread {worst['all']:.1%}: {'PASS' if worst['all'] <= BOUND else 'FAIL'}. "
             f"At full speed: worst spread {worst['full']:.1%}: {'PASS' if worst['full'] <= BOUND else 'FAIL'}.**", "",
             "| model | artifact runtime | figures | runs | artifact p50 spread | torch eager p50 spread | speed-up spread "
             f"| pairs within {BOUND:.0%} |",
             "|---|---|---|---|---|---|---|---|",
             *summary, "", "| model | runtime | run | artifact p50 ms | torch eager p50 ms | speed-up (paired per round) "
             "| at full speed: artifact, torch eager p50 ms, speed-up (blocks kept) | efficiency | runs | stopped by | reached "
             "| block medians p90/p10 |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        eff = f"{r['efficiency']:.1%}" if r["efficiency"] else "—"
        lines.append(f"| {r['model']} | {NAMES[r['runtime']]} | {r['repeat']} | {r['p50_ms']:.2f} | {r['torch_p50_ms']:.2f} | {r['speedup']:.2f}× "
                     f"| {r['full_p50_ms']:.2f}, {r['full_torch_p50_ms']:.2f}, {r['full_speedup']:.2f}× ({', '.join(r['full_blocks'])}) "
                     f"| {eff} | {r['runs'][0]}, {r['runs'][1]} | {r['stopped_by']} ({r['seconds']:.1f} s) "
                     f"| {', '.join(f'±{x:.1%}' for x in r['reached_ci95_rel'])} "
                     f"| {', '.join(f'{x:.2f}' if x else '–' for x in r.get('block_spread_p90_p10') or [])} |")
    return write_report(args.out, lines, {"command": command, "started": started, "runs": runs})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="swiftformer-xs")
    ap.add_argument("--runtimes", default="ort,litert")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "timing")
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "bench-repeatability.json")
    args = ap.parse_args()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    command = ("python benchmarks/bench_repeatability.py " + " ".join(sys.argv[1:])).strip()
    print(write(measure_all(args), args, command, started))


if __name__ == "__main__":
    main()
