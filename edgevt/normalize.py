"""Latency figures that travel between machines, for `edgevt compare --normalize speedup|efficiency`.

- speedup: the artifact's time in units of torch eager's time in the same run (the figure shown is the speed-up over
  torch eager). Reports that pair the speed-up per round (edgevt.bench, protocol alternating-blocks/2) give the unit
  as p50 × that speed-up; older ones torch eager's median;
- efficiency: the artifact's time in units of the host's compute bound (2·MACs at the host's fp32 GEMM peak; the
  figure shown is the efficiency, bound / p50).

Every raw sample of a side is divided by that side's unit, so the gate stays the same (ratio of medians beyond the
threshold, and a one-sided Mann–Whitney U test on the samples). The unit's own noise is not in the test: it is a
median of many runs (or a probed peak), known far better than the threshold.
"""

from __future__ import annotations

import math

import numpy as np

KINDS = ("speedup", "efficiency")


def _median(values) -> float | None:
    nums = [float(v) for v in values or [] if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
    return float(np.median(nums)) if nums else None


def unit_ms(lat: dict, how: str) -> tuple[float | None, str | None]:
    """(the side's unit in ms, None) or (None, why it has none)."""
    if how == "speedup":
        paired, p50 = lat.get("speedup_vs_torch_eager"), (lat.get("warm") or {}).get("p50_ms")
        if (lat.get("speedup") or {}).get("rounds") and _median([paired]) and _median([p50]):
            return float(p50) * float(paired), None  # torch eager's time as paired with this artifact's, round by round
        base = lat.get("baseline") or {}
        unit = _median(base.get("samples_ms")) or _median([(base.get("warm") or {}).get("p50_ms")])
        return (unit, None) if unit else (None, "no torch eager timing in the same run (`export` and `bench --model` record one)")
    bound = lat.get("compute_bound") or {}
    unit = bound.get("bound_ms") if bound.get("status") == "measured" else None
    if isinstance(unit, (int, float)) and unit > 0:
        return float(unit), None
    return None, f"no compute bound ({bound.get('reason') or 'the report was written before edgevt recorded one'})"


def normalized(lat: dict, how: str) -> tuple[dict | None, str | None]:
    """A copy of a measured latency section whose samples are in units of its unit (dimensionless), or why not."""
    unit, reason = unit_ms(lat, how)
    if unit is None:
        return None, reason
    samples = [s / unit for s in lat.get("samples_ms") or [] if isinstance(s, (int, float)) and not isinstance(s, bool)]
    return {**lat, "samples_ms": samples, "unit_ms": unit}, None


def figure(normalized_median: float | None) -> float | None:
    """The speed-up or the efficiency a normalized median stands for."""
    return 1 / normalized_median if normalized_median else None


def label(how: str, value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.2f}×" if how == "speedup" else f"{value:.1%}"
