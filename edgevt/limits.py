"""The ranges user-given numbers must lie in: one set of rules for the command line, profiles and the library's edge.

Each `*_problem` function returns None for a good value or says what is wrong with it; the callers turn that into
click.BadParameter (command line), ProfileError (profile) or UsageError (library call), so the three never drift.
"""

from __future__ import annotations

import math
from typing import Any

from edgevt.errors import UsageError

# torch.manual_seed takes 0 .. 2**64 - 1 and numpy's default_rng any non-negative integer: what both accept.
SEED_MAX = 2**64 - 1
# A runtime thread count beyond this is a typo (runtimes take a 32-bit int, and nobody has 1024 cores to time on).
THREADS_MAX = 1024

# tolerance -> (lowest, highest, what it means); every value must also be a finite number.
TOLERANCE_RANGES = {
    "atol": (0.0, math.inf, "an absolute error, >= 0"),
    "rtol": (0.0, math.inf, "a relative error, >= 0"),
    "min_cosine": (0.0, 1.0, "a cosine similarity between 0 and 1"),
    "min_psnr_db": (-math.inf, math.inf, "a PSNR in dB"),
    "min_top1": (0.0, 1.0, "a fraction of photos between 0 and 1 (0.97 = 97%)"),
}

# bench setting -> (lowest, highest, integer only)
BENCH_RANGES = {
    "runs": (1, math.inf, True),
    "warmup": (0, math.inf, True),
    "threads": (1, THREADS_MAX, True),
    "min_time_s": (0.0, math.inf, False),
    "max_time_s": (0.0, math.inf, False),
}


def seed_problem(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return f"the seed must be an integer, got {value!r}"
    if not 0 <= value <= SEED_MAX:
        return f"the seed must be between 0 and 2**64-1 ({SEED_MAX}), got {value}"
    return None


def _number(value: Any) -> float | None:
    """A number from YAML or the command line: ints, floats and numeric text (YAML 1.1 reads `1e-4` as text)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def tolerance_value(key: str, value: Any) -> tuple[float | None, str | None]:
    """(the value as a float, None) or (None, what is wrong)."""
    if key not in TOLERANCE_RANGES:
        return None, f"unknown tolerance {key!r}; allowed: {', '.join(TOLERANCE_RANGES)}"
    low, high, meaning = TOLERANCE_RANGES[key]
    number = _number(value)
    if number is None:
        return None, f"tolerance {key} needs a number ({meaning}), got {value!r}"
    if not math.isfinite(number):
        return None, f"tolerance {key} must be a finite number ({meaning}), got {value!r}"
    if not low <= number <= high:
        return None, f"tolerance {key} must be {meaning}, got {value!r}"
    return number, None


def bench_value(key: str, value: Any) -> tuple[float | int | None, str | None]:
    if key not in BENCH_RANGES:
        return None, f"unknown bench setting {key!r}; allowed: {', '.join(BENCH_RANGES)}"
    low, high, integer = BENCH_RANGES[key]
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
        return None, f"{key} needs {'an integer' if integer else 'a number'}, got {value!r}"
    if not math.isfinite(value) or not low <= value <= high:
        upper = "" if math.isinf(high) else f" and at most {high}"
        return None, f"{key} must be at least {low}{upper}, got {value!r}"
    return value, None


def check_seed(seed: Any) -> None:
    problem = seed_problem(seed)
    if problem:
        raise UsageError(problem, "pass --seed N with 0 <= N < 2**64")


def check_tolerances(tolerances: dict) -> dict[str, float]:
    """The tolerances as floats; a UsageError names the first bad one."""
    out = {}
    for key, value in tolerances.items():
        number, problem = tolerance_value(key, value)
        if problem:
            raise UsageError(problem)
        out[key] = number
    return out
