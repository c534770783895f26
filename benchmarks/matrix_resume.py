"""What the matrix cache buys: a first run, a repeated run, and a run killed mid-way then resumed (issue 5's Done criteria).

    python benchmarks/matrix_resume.py [--repeats 3]    -> reports/matrix-resume.md (+ .json)

The matrix is swiftformer-xs × {onnx, tflite} × fp32 with random weights, in a fresh cache each repeat. Every
number is the wall time of a whole `edgevt matrix` process. The kill is SIGKILL as soon as the first cell's
result is in the cache, the harshest way a run can stop; the resumed run must compute only the other cell.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edgevt.envinfo import environment  # noqa: E402

ARGS = ["matrix", "-m", "swiftformer-xs", "-t", "onnx,tflite", "-p", "fp32", "--weights", "random", "--json"]


def edgevt(cache: Path, out: Path) -> tuple[float, dict]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "edgevt", *ARGS, "--cache-dir", str(cache), "--out", str(out)],
                          capture_output=True, text=True, check=True)
    return time.perf_counter() - t0, json.loads(proc.stdout)


def parity_of(report: dict) -> list:
    return [(c["id"], c["status"], c["parity"]["outputs"]) for c in report["cells"]]


def killed_then_resumed(cache: Path, out: Path) -> dict:
    cmd = [sys.executable, "-m", "edgevt", *ARGS, "--cache-dir", str(cache), "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.perf_counter()
    while not list(cache.glob("results/*/*.json")):
        time.sleep(0.1)
        if proc.poll() is not None:
            raise RuntimeError("the run ended before any cell finished")
    finished = {p: p.stat().st_mtime_ns for p in cache.glob("results/*/*.json")}
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_after = time.perf_counter() - t0
    resume_s, report = edgevt(cache, out)
    untouched = all(p.stat().st_mtime_ns == m for p, m in finished.items())
    return {"killed_after_s": killed_after, "resume_s": resume_s, "cached_on_resume": report["summary"]["cached"],
            "computed_on_resume": sum(not c["cached"] for c in report["cells"]), "finished_cells_untouched": untouched,
            "statuses": [c["status"] for c in report["cells"]]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "matrix-resume.md")
    args = ap.parse_args()
    rows = []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            first_s, first = edgevt(tmp / "cache", tmp / "run")
            again_s, again = edgevt(tmp / "cache", tmp / "run")
            kill = killed_then_resumed(tmp / "cache2", tmp / "run2")
        rows.append({"first_s": first_s, "rerun_s": again_s, "rerun_cached": again["summary"]["cached"],
                     "identical_parity": parity_of(first) == parity_of(again), **kill})
        print(json.dumps(rows[-1]))
    env = environment()
    med = {k: statistics.median(r[k] for r in rows) for k in ("first_s", "rerun_s", "killed_after_s", "resume_s")}
    per_repeat = ", ".join(f"{r['cached_on_resume']}/{r['computed_on_resume']}" for r in rows)
    lines = [
        "# Matrix cache: repeat and resume",
        "",
        f"Produced by `python benchmarks/matrix_resume.py --repeats {args.repeats}` on {env['host_cpu']} ({env['logical_cpus']} "
        f"logical CPUs, shared), edgevt {env['edgevt']}. Matrix: `edgevt {' '.join(ARGS[:-1])}`, a fresh cache per repeat; "
        "wall time of the whole process.",
        "",
        f"- First run: median **{med['first_s']:.1f} s**. The same command again: median **{med['rerun_s']:.2f} s** "
        f"({med['rerun_s'] / med['first_s']:.1%} of the first), every cell from the cache, parity identical in "
        f"{sum(r['identical_parity'] for r in rows)}/{len(rows)} repeats.",
        f"- Killed with SIGKILL {med['killed_after_s']:.1f} s in (median; as soon as the first cell was cached), then resumed: "
        f"the resumed run took {med['resume_s']:.1f} s (median). Cells served from the cache / recomputed on resume, per repeat: "
        f"{per_repeat} (the finished cell / the one in flight); "
        f"the finished cell's cache entry was left untouched in {sum(r['finished_cells_untouched'] for r in rows)}/{len(rows)}.",
        "",
        "| repeat | first s | rerun s | rerun cached | identical parity | killed after s | resume s | cached on resume | "
        "recomputed on resume | statuses after resume |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(rows, 1):
        lines.append(f"| {i} | {r['first_s']:.1f} | {r['rerun_s']:.2f} | {r['rerun_cached']}/2 | {r['identical_parity']} "
                     f"| {r['killed_after_s']:.1f} | {r['resume_s']:.1f} | {r['cached_on_resume']} | {r['computed_on_resume']} "
                     f"| {', '.join(r['statuses'])} |")
    args.out.write_text("\n".join(lines) + "\n")
    args.out.with_suffix(".json").write_text(json.dumps({"environment": env, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
