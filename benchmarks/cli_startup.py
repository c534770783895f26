"""How long `edgevt --help` and `edgevt list` take to start (the CLI imports no heavy library for them).

    python benchmarks/cli_startup.py [--runs 20]    -> reports/cli-startup.md
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edgevt.envinfo import environment  # noqa: E402

COMMANDS = [["--help"], ["list"], ["--version"]]


def time_command(args: list[str], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "edgevt", *args], check=True, capture_output=True)
        samples.append((time.perf_counter() - t0) * 1e3)
    return samples


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "cli-startup.md")
    args = ap.parse_args()
    env = environment()
    lines = [
        "# CLI start-up time",
        "",
        f"Produced by `python benchmarks/cli_startup.py --runs {args.runs}` on {env['host_cpu']} "
        f"({env['logical_cpus']} logical CPUs), Python {env['python']}, edgevt {env['edgevt']}. "
        "Wall time of a whole `python -m edgevt ...` process, interpreter start included.",
        "",
        "| command | median ms | min ms | max ms |",
        "|---|---|---|---|",
    ]
    for cmd in COMMANDS:
        s = time_command(cmd, args.runs)
        lines.append(f"| `edgevt {' '.join(cmd)}` | {statistics.median(s):.0f} | {min(s):.0f} | {max(s):.0f} |")
        print(lines[-1])
    args.out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
