"""`edgevt compare`: did a candidate run get slower or less faithful than a baseline run? A CI regression gate.

Latency is judged on the raw timing samples, not on two p50 numbers, because one noisy p50 would make the
gate flaky: a cell regresses only when the change is both large (ratio of medians beyond the threshold) and
unlikely to be noise (one-sided Mann–Whitney U, p < alpha). Parity gates on status: a cell that passed and
no longer passes is a regression; smaller drifts (cosine, top-1) are reported but do not gate.

When both reports record their timing blocks (edgevt.bench's protocol), the samples judged are those of the blocks
that ran at the host's full speed (edgevt.bench.full_speed_blocks), on both sides: a shared host that spends seconds
in a slower state would otherwise turn the share of time each run spent slow into a "regression". An artifact that
is slower in every block is slower at full speed too; one that slows only some blocks looks like the host.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import numpy as np

from edgevt import REPORT_SCHEMA_VERSION
from edgevt.bench import FULL_SPEED_BAND, full_speed_blocks
from edgevt.errors import UsageError
from edgevt.parity import worst_cosine

SINGLE_COMMANDS = ("export", "validate", "bench")
FAILED = ("fail", "error", "crashed", "timeout")  # the cell ran and did not pass
MIN_SAMPLES = 5
MACHINE_KEYS = ("host_cpu", "logical_cpus", "machine", "threads")
BASIS_FULL_SPEED = "full speed"  # both sides' samples of their blocks at the host's full speed
BASIS_ALL = "all samples"  # a side does not record its blocks (a report older than the full-speed figures)
REPORT_HINT = "pass a report.json written by `edgevt matrix`, `export`, `validate` or `bench`, or the run directory holding it"


class Verdict(Enum):
    REGRESSION = "regression"
    IMPROVEMENT = "improvement"
    UNCHANGED = "unchanged"
    NOT_COMPARABLE = "not comparable"
    MISSING = "missing"
    NEW = "new"


@dataclass(frozen=True)
class Rule:
    """What counts as a regression; checked here too because the library is callable without the CLI."""

    threshold: float = 0.10  # relative change of the median latency
    alpha: float = 0.01  # significance level of the one-sided Mann–Whitney U test
    allow_missing: bool = False  # a baseline cell absent (or no longer checked) in the candidate does not gate
    min_samples: int = MIN_SAMPLES
    normalize: str | None = None  # "speedup" or "efficiency": gate on a figure that travels between machines

    def __post_init__(self):
        from edgevt.normalize import KINDS

        if self.normalize is not None and self.normalize not in KINDS:
            raise UsageError(f"cannot normalize by {self.normalize!r}", f"use one of {', '.join(KINDS)}")
        if not self.threshold >= 0:
            raise UsageError(f"threshold {self.threshold} is negative", "pass a relative change such as 0.10 for 10%")
        if not 0 < self.alpha < 1:
            raise UsageError(f"alpha {self.alpha} is not between 0 and 1", "pass a significance level such as 0.01")


@dataclass
class RunReport:
    """One report.json reduced to what compare needs: cells by id, in the matrix cell shape."""

    path: Path
    command: str
    created: str | None
    environment: dict
    cells: dict[str, dict]


@dataclass
class LatencyComparison:
    verdict: Verdict
    baseline_p50_ms: float | None = None
    candidate_p50_ms: float | None = None
    ratio: float | None = None  # candidate median / baseline median, from samples_ms
    ratio_ci95: tuple[float, float] | None = None  # bootstrap of the ratio of medians
    shift_ms: float | None = None  # Hodges–Lehmann: median of all candidate - baseline differences
    p_slower: float | None = None  # one-sided Mann–Whitney U, H1: candidate slower
    p_faster: float | None = None  # the other tail
    p_value: float | None = None  # the tail of the observed direction, the one a reader wants to see
    reason: str | None = None  # why it is not comparable
    normalized: str | None = None  # --normalize: ratio and tests are on samples / torch eager's median or / the compute bound
    basis: str | None = None  # which samples were judged: BASIS_FULL_SPEED or BASIS_ALL
    baseline_figure: float | None = None  # the speed-up or efficiency of each side
    candidate_figure: float | None = None


@dataclass
class ParityComparison:
    verdict: Verdict
    before: str | None
    after: str | None
    cosine_delta: float | None = None  # worst cosine over outputs, candidate - baseline
    top1_delta: float | None = None


@dataclass
class CellComparison:
    id: str
    verdict: Verdict
    regressed: bool
    latency: LatencyComparison | None = None
    parity: ParityComparison | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class Comparison:
    baseline: RunReport
    candidate: RunReport
    rule: Rule
    cells: list[CellComparison]
    warnings: list[str]

    @property
    def regressions(self) -> list[CellComparison]:
        return [c for c in self.cells if c.regressed]

    @property
    def regressed(self) -> bool:
        return bool(self.regressions)

    def to_dict(self) -> dict:
        def side(run: RunReport) -> dict:
            return {"path": str(run.path), "command": run.command, "created": run.created, "environment": run.environment}

        cells = [json.loads(json.dumps(dataclasses.asdict(c), default=lambda v: v.value)) for c in self.cells]  # enums to strings
        return {"schema": "edgevt.compare", "schema_version": 1, "command": "compare", "regressed": self.regressed,
                "regressions": [c.id for c in self.regressions], "rule": dataclasses.asdict(self.rule),
                "baseline": side(self.baseline), "candidate": side(self.candidate), "warnings": self.warnings, "cells": cells}


def _report_file(path: Path) -> Path:
    if not path.exists():
        raise UsageError(f"{path} does not exist", REPORT_HINT)
    if not path.is_dir() or (path / "report.json").is_file():
        return path / "report.json" if path.is_dir() else path
    if (path / "report.failed.json").is_file():
        raise UsageError(f"{path} has no report.json, only report.failed.json (a run that failed parity)",
                         f"pass {path / 'report.failed.json'} explicitly to compare the failed run")
    raise UsageError(f"{path} has no report.json", REPORT_HINT)


def _check_schema(file: Path, data) -> None:
    if not isinstance(data, dict) or data.get("schema") != "edgevt.report":
        raise UsageError(f"{file} is not an edgevt report (no \"schema\": \"edgevt.report\")", REPORT_HINT)
    version = data.get("schema_version")
    if not isinstance(version, int) or version > REPORT_SCHEMA_VERSION:
        raise UsageError(f"{file} has report schema_version {version!r}; this edgevt reads up to {REPORT_SCHEMA_VERSION}",
                         "upgrade edgevt (pip install -U edgevt) to compare reports written by a newer version")
    if data.get("command") not in ("matrix", *SINGLE_COMMANDS):
        raise UsageError(f"{file} is a report of command {data.get('command')!r}, which compare cannot read", REPORT_HINT)


def _single_cell(file: Path, data: dict) -> dict:
    """An export/validate/bench report as one cell; a bench without a model falls back to the artifact's name."""
    model = (data.get("model") or {}).get("name") or Path((data.get("artifact") or {}).get("path") or "unknown").name
    target, precision = data.get("target") or "unknown", data.get("precision") or "unknown"
    parity = data.get("parity")
    return {"id": f"{model}/{target}/{precision}", "model": model, "target": target, "precision": precision,
            "status": parity.get("status") if isinstance(parity, dict) else None, "parity": parity, "latency": data.get("latency")}


def _matrix_cells(file: Path, data: dict) -> list[dict]:
    cells = data.get("cells")
    if not isinstance(cells, list) or not all(isinstance(c, dict) and isinstance(c.get("id"), str) for c in cells):
        raise UsageError(f"{file}: a matrix report needs a \"cells\" list whose entries each have an \"id\"",
                         "the file looks truncated or edited; re-run `edgevt matrix`")
    return cells


def load_run(path: Path | str) -> RunReport:
    """A report.json (or a run directory holding one); anything else is a UsageError that says what to pass."""
    file = _report_file(Path(path))
    try:
        data = json.loads(file.read_text())
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror or exc}", REPORT_HINT) from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{file} is not valid JSON ({exc})", REPORT_HINT) from exc
    _check_schema(file, data)
    cells = _matrix_cells(file, data) if data["command"] == "matrix" else [_single_cell(file, data)]
    by_id: dict[str, dict] = {}
    for cell in cells:
        if cell["id"] in by_id:
            raise UsageError(f"{file}: cell {cell['id']!r} appears twice", "re-run `edgevt matrix`; a report has each cell once")
        by_id[cell["id"]] = cell
    env = data.get("environment") if isinstance(data.get("environment"), dict) else {}
    return RunReport(file, data["command"], data.get("created"), env, by_id)


def _num(value) -> float | None:
    """Reports write inf/NaN as strings; those (and anything else odd) are not numbers to compare."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool) and bool(np.isfinite(value))
    return float(value) if number else None


def _samples(lat: dict) -> np.ndarray:
    values = [_num(s) for s in lat.get("samples_ms") or []]
    return np.asarray([v for v in values if v is not None], dtype=np.float64)


def _p50(lat: dict | None) -> float | None:
    if not lat or lat.get("status") != "measured":
        return None
    samples = _samples(lat)
    return float(np.median(samples)) if len(samples) else _num((lat.get("warm") or {}).get("p50_ms"))


def _capped(samples: np.ndarray, limit: int = 2000) -> np.ndarray:
    """A seeded subsample of very long runs (--min-time) keeps the estimators below cheap."""
    return np.random.default_rng(0).choice(samples, limit, replace=False) if len(samples) > limit else samples


def _hodges_lehmann(base: np.ndarray, cand: np.ndarray) -> float:
    """Median of all pairwise candidate - baseline differences: a shift estimate robust to outliers."""
    return float(np.median(np.subtract.outer(_capped(cand), _capped(base))))


def _bootstrap_ratio_ci(base: np.ndarray, cand: np.ndarray, n_boot: int = 1000) -> tuple[float, float]:
    rng = np.random.default_rng(0)
    base, cand = _capped(base), _capped(cand)
    mb = np.median(rng.choice(base, (n_boot, len(base))), axis=1)
    mc = np.median(rng.choice(cand, (n_boot, len(cand))), axis=1)
    ratios = mc / np.where(mb > 0, mb, np.nan)
    lo, hi = np.nanpercentile(ratios, [2.5, 97.5])
    return float(lo), float(hi)


def _p(value) -> float:
    return 1.0 if value is None or not np.isfinite(value) else float(value)


def _latency_stats(base: np.ndarray, cand: np.ndarray, rule: Rule) -> LatencyComparison:
    from scipy.stats import mannwhitneyu

    mb, mc = float(np.median(base)), float(np.median(cand))
    out = LatencyComparison(Verdict.UNCHANGED, mb, mc, ratio=mc / mb)
    out.p_slower = _p(mannwhitneyu(cand, base, alternative="greater").pvalue)
    out.p_faster = _p(mannwhitneyu(cand, base, alternative="less").pvalue)
    out.p_value = out.p_slower if out.ratio >= 1 else out.p_faster
    out.shift_ms = _hodges_lehmann(base, cand)
    out.ratio_ci95 = _bootstrap_ratio_ci(base, cand)
    if out.p_slower < rule.alpha and out.ratio - 1 > rule.threshold:
        out.verdict = Verdict.REGRESSION
    elif out.p_faster < rule.alpha and out.ratio < 1 - rule.threshold:
        out.verdict = Verdict.IMPROVEMENT
    return out


def _blocks_at_full_speed(section: dict, protocol: dict) -> list[float] | None:
    """The samples of `section` (one runtime's, in time order) from its blocks at full speed, or None when the
    protocol does not record how they split into blocks."""
    engines, sizes = protocol.get("engines") or [], (protocol.get("blocks") or {}).get("runs") or []
    rounds = (protocol.get("blocks") or {}).get("rounds")
    samples = [s for s in (_num(x) for x in section.get("samples_ms") or []) if s is not None]
    if section.get("engine") not in engines or len(sizes) != len(engines) or not isinstance(rounds, int):
        return None
    size = sizes[engines.index(section.get("engine"))]
    if not isinstance(size, int) or size < 1 or rounds < 1 or len(samples) != size * rounds:
        return None
    blocks = [samples[b * size:(b + 1) * size] for b in range(rounds)]
    keep = full_speed_blocks([float(np.median(b)) for b in blocks])
    return [x for block, k in zip(blocks, keep) if k for x in block]


def full_speed_view(lat: dict) -> dict | None:
    """A measured latency section as it ran at the host's full speed: the artifact's (and torch eager's) samples of
    their full-speed blocks, the p50 over them and the speed-up over the rounds in which both ran at full speed; None
    when the section does not record its blocks."""
    protocol = lat.get("protocol") or {}
    own = _blocks_at_full_speed(lat, protocol)
    if not own:
        return None
    view = {**lat, "samples_ms": own, "warm": {**(lat.get("warm") or {}), "p50_ms": float(np.median(own))}}
    base = lat.get("baseline")
    if isinstance(base, dict):
        theirs = _blocks_at_full_speed(base, protocol)
        view["baseline"] = {**base, "samples_ms": theirs or []}
        full = (lat.get("speedup") or {}).get("full_speed") or {}
        view["speedup_vs_torch_eager"] = full.get("median")
        view["speedup"] = {"rounds": full.get("rounds") or 0} if full.get("median") else {}
    return view


def compare_latency(base: dict | None, cand: dict | None, rule: Rule) -> LatencyComparison:
    """Only raw samples of one engine on both sides are compared (divided by each side's unit with --normalize), at
    full speed when both sides record their blocks; anything less is 'not comparable', never a regression."""
    from edgevt.normalize import figure, normalized

    measured = [bool(lat) and lat.get("status") == "measured" for lat in (base, cand)]
    basis = BASIS_ALL
    if all(measured):
        views = full_speed_view(base), full_speed_view(cand)
        if None not in views:
            (base, cand), basis = views, BASIS_FULL_SPEED
    raw, reason = (_p50(base), _p50(cand)), None
    if not any(measured):
        reason = "latency not measured"
    elif not all(measured):
        side, lat = ("baseline", base) if not measured[0] else ("candidate", cand)
        reason = f"latency not measured on one side ({side}: {(lat or {}).get('reason') or 'no latency'})"
    elif base.get("engine") != cand.get("engine"):
        reason = f"timed by different engines ({base.get('engine')} vs {cand.get('engine')})"
    elif rule.normalize:
        (base, why_b), (cand, why_c) = normalized(base, rule.normalize), normalized(cand, rule.normalize)
        if base is None or cand is None:
            reason = f"cannot normalize by {rule.normalize} ({'baseline' if base is None else 'candidate'}: {why_b or why_c})"
    if reason is None:
        bs, cs = _samples(base), _samples(cand)
        if min(len(bs), len(cs)) < rule.min_samples:
            reason = f"too few timing samples ({len(bs)} and {len(cs)}; need {rule.min_samples} on each side)"
        elif np.median(bs) <= 0:
            reason = "the baseline median is not positive"
        else:
            out = _latency_stats(bs, cs, rule)
            out.basis = basis
            if rule.normalize:  # the statistics are on normalized samples; the ms columns stay raw, for information
                out.normalized, out.baseline_figure, out.candidate_figure = rule.normalize, figure(out.baseline_p50_ms), figure(out.candidate_p50_ms)
                (out.baseline_p50_ms, out.candidate_p50_ms), out.shift_ms = raw, None
            return out
    return LatencyComparison(Verdict.NOT_COMPARABLE, *raw, reason=reason)


def _delta(after: float | None, before: float | None) -> float | None:
    return None if after is None or before is None else after - before


def compare_parity(base: dict, cand: dict, rule: Rule) -> tuple[ParityComparison, list[str]]:
    """Status gates: pass -> fail/error/crashed/timeout regresses; pass -> not checked regresses unless allow_missing."""
    before, after = base.get("status"), cand.get("status")
    bp, cp = (c.get("parity") if isinstance(c.get("parity"), dict) else {} for c in (base, cand))
    out = ParityComparison(Verdict.UNCHANGED, before, after, _delta(worst_cosine(cp), worst_cosine(bp)),
                           _delta(_num(cp.get("top1_agreement")), _num(bp.get("top1_agreement"))))
    notes = []
    if before == "pass" and after in FAILED:
        out.verdict = Verdict.REGRESSION
    elif before == "pass" and after != "pass":
        out.verdict = Verdict.NOT_COMPARABLE if rule.allow_missing else Verdict.REGRESSION
        notes.append(f"parity no longer checked (status {after or 'none'}): a passing cell that is not re-checked could hide a failure")
    elif before != "pass" and after == "pass":
        out.verdict = Verdict.IMPROVEMENT
    elif before != after:
        notes.append(f"status changed {before or 'none'} → {after or 'none'} (neither passes; not gated)")
    differ = _inputs_differ(base, cand)
    if differ:
        notes.append(f"parity checked on different inputs ({differ}): the cosine and top-1 changes compare different samples")
    if before == after == "pass" and out.top1_delta is not None and out.top1_delta < 0:
        notes.append(f"top-1 agreement fell {_num(bp.get('top1_agreement')):.1%} → {_num(cp.get('top1_agreement')):.1%} "
                     "but still within the cell's thresholds (not gated)")
    return out, notes


def _inputs_text(inputs: dict) -> str:
    images = inputs.get("images") or {}
    digest = images.get("digest")
    return (f"{inputs.get('photos', 0)} photos + {inputs.get('noise', 0)} noise, seed {inputs.get('seed')}"
            + (f", photos {digest[:12]}" if digest else ""))


def _inputs_differ(base: dict, cand: dict) -> str | None:
    """How the two cells' parity samples differ (photo set, counts, seed), or None when they match or are not recorded."""
    a, b = (c.get("inputs") if isinstance(c.get("inputs"), dict) else None for c in (base, cand))
    if not a or not b:
        return None
    keys = ("kind", "seed", "samples", "photos", "noise")
    same = all(a.get(k) == b.get(k) for k in keys) and (a.get("images") or {}).get("digest") == (b.get("images") or {}).get("digest")
    return None if same else f"baseline {_inputs_text(a)}; candidate {_inputs_text(b)}"


_RANK = {Verdict.REGRESSION: 3, Verdict.IMPROVEMENT: 2, Verdict.UNCHANGED: 1, Verdict.NOT_COMPARABLE: 0}


def compare_cell(cell_id: str, base: dict, cand: dict, rule: Rule) -> CellComparison:
    from edgevt.matrix.reports import node_kind

    kinds = node_kind(base), node_kind(cand)
    if None not in kinds and kinds[0] != kinds[1]:  # cells record the machine that timed them (shards, Ray nodes)
        latency = LatencyComparison(Verdict.NOT_COMPARABLE, _p50(base.get("latency")), _p50(cand.get("latency")),
                                    reason=f"timed on different kinds of machine ({kinds[0]} vs {kinds[1]})")
    else:
        latency = compare_latency(base.get("latency"), cand.get("latency"), rule)
    parity, notes = compare_parity(base, cand, rule)
    if latency.reason and latency.reason != "latency not measured":
        notes.insert(0, latency.reason)
    b_threads, c_threads = (((lat or {}).get("settings") or {}).get("threads") for lat in (base.get("latency"), cand.get("latency")))
    if latency.ratio is not None and b_threads != c_threads:
        notes.append(f"timed with different thread counts ({b_threads} vs {c_threads})")
    verdict = max((latency.verdict, parity.verdict), key=_RANK.__getitem__)
    return CellComparison(cell_id, verdict, verdict is Verdict.REGRESSION, latency, parity, notes)


def _environment_warnings(base: RunReport, cand: RunReport, normalize: str | None = None) -> list[str]:
    a, b = base.environment, cand.environment
    if not a or not b:
        return ["one report has no environment section: cannot tell whether both were measured on one machine"]
    warnings = []
    machine = [f"{k} {a.get(k)!r} → {b.get(k)!r}" for k in MACHINE_KEYS if a.get(k) != b.get(k)]
    if machine and normalize:
        warnings.append("the reports were measured on different machines or settings (" + "; ".join(machine) + "): latency is "
                        f"gated on the {normalize} (--normalize), which carries across machines better than milliseconds do")
    elif machine:
        warnings.append("the reports were measured on different machines or settings (" + "; ".join(machine) + "): latency across "
                        "machines is not comparable, so latency verdicts may reflect the machine; compare runs measured on one "
                        "machine, or gate on a machine-independent figure with --normalize speedup|efficiency")
    pa, pb = {"edgevt": a.get("edgevt"), **(a.get("packages") or {})}, {"edgevt": b.get("edgevt"), **(b.get("packages") or {})}
    versions = [f"{k} {pa[k]} → {pb[k]}" for k in sorted(set(pa) & set(pb)) if pa[k] != pb[k]]  # listed on both sides only
    if versions:
        warnings.append("different tool versions (" + ", ".join(versions) + "): a change may come from these versions")
    return warnings


def compare(base: RunReport, cand: RunReport, rule: Rule | None = None) -> Comparison:
    rule = rule or Rule()
    cells = [compare_cell(i, base.cells[i], cand.cells[i], rule) for i in base.cells if i in cand.cells]
    gone = "a cell that disappears could hide a failure"
    cells += [CellComparison(i, Verdict.MISSING, not rule.allow_missing, notes=[f"in the baseline only (was {c.get('status')}): {gone}"])
              for i, c in base.cells.items() if i not in cand.cells]
    cells += [CellComparison(i, Verdict.NEW, False, notes=[f"in the candidate only (status {c.get('status')})"])
              for i, c in cand.cells.items() if i not in base.cells]
    warnings = _environment_warnings(base, cand, rule.normalize)
    differ = sum(_inputs_differ(base.cells[i], cand.cells[i]) is not None for i in base.cells if i in cand.cells)
    if differ:
        warnings.append(f"{differ} matched cell(s) had parity checked on different inputs (photo set, sample count or seed; "
                        "see each cell's note): their cosine and top-1 changes compare different samples, and a cell "
                        "that passed on fewer photos may fail on more without the artifact having changed")
    return Comparison(base, cand, rule, cells, warnings)


def compare_paths(baseline: Path | str, candidate: Path | str, rule: Rule | None = None) -> Comparison:
    return compare(load_run(baseline), load_run(candidate), rule)


def _fmt(value: float | None, spec: str, unit: str = "") -> str:
    """'—' for a number that is not there; p-values ('p') below 1e-4 print as <0.0001."""
    if value is None:
        return "—"
    if spec == "p":
        return "<0.0001" if value < 1e-4 else f"{value:.2g}"
    return "0" if value == 0 else format(value, spec) + unit


def _change(lat: LatencyComparison | None) -> str:
    if not lat or lat.ratio is None:
        return "—"
    ci = f" [{(lat.ratio_ci95[0] - 1):+.0%}, {(lat.ratio_ci95[1] - 1):+.0%}]" if lat.ratio_ci95 else ""
    return f"{lat.ratio - 1:+.1%}{ci}"


_MARK = {Verdict.REGRESSION: "❌ regression", Verdict.IMPROVEMENT: "✅ improvement", Verdict.UNCHANGED: "unchanged",
         Verdict.NOT_COMPARABLE: "not comparable", Verdict.MISSING: "missing", Verdict.NEW: "new"}


def _row(c: CellComparison, normalize: str | None = None) -> str:
    from edgevt.normalize import label

    lat, par = c.latency, c.parity
    parity = f"{par.before or '—'} → {par.after or '—'}" if par else "—"
    figures = [label(normalize, lat and f) for f in (lat and lat.baseline_figure, lat and lat.candidate_figure)] if normalize else []
    cells = [f"`{c.id}`", _fmt(lat and lat.baseline_p50_ms, ".2f", " ms"), _fmt(lat and lat.candidate_p50_ms, ".2f", " ms"), *figures,
             _change(lat), _fmt(lat and lat.p_value, "p"), lat.verdict.value if lat else "—", parity,
             _fmt(par and par.cosine_delta, "+.1e"), _MARK[c.verdict]]
    return "| " + " | ".join(s.replace("|", "\\|") for s in cells) + " |"


def _normalize_lines(normalize: str | None) -> list[str]:
    if not normalize:
        return []
    unit = "torch eager's median in the same run" if normalize == "speedup" else "the host's compute bound (2·MACs at its fp32 GEMM peak)"
    return [f"`--normalize {normalize}`: each side's samples are divided by {unit} before the ratio and the test, so runs from "
            f"different machines compare; the p50 columns are raw milliseconds, for information.", ""]


def _basis_lines(comp: Comparison) -> list[str]:
    judged = [c.latency.basis for c in comp.cells if c.latency and c.latency.basis]
    full = judged.count(BASIS_FULL_SPEED)
    if not judged:
        return []
    if not full:
        return ["Samples: all of them (a side does not record its timing blocks, so a host that changed speed during one run "
                "shows as a change; re-run with this edgevt to judge the blocks at full speed).", ""]
    which = "every cell" if full == len(judged) else f"{full} of {len(judged)} cells"
    rest = "" if full == len(judged) else (f"; the other {len(judged) - full} on all samples, as a side does not record its "
                                           "timing blocks")
    return [f"Samples: for {which}, each side's blocks at the host's full speed (within {FULL_SPEED_BAND - 1:.0%} of the "
            "fastest tenth of a runtime's block medians), so a host that spent part of one run in a slower state is not "
            f"taken for a regression; the p50 columns are over the same samples{rest}.", ""]


def _figure_heads(normalize: str | None) -> str:
    return f"baseline {normalize} | candidate {normalize} | " if normalize else ""


def _verdict_line(comp: Comparison) -> str:
    regs = comp.regressions
    if regs:
        names = ", ".join(f"`{c.id}`" for c in regs)
        return f"❌ {len(regs)} regression{'s' if len(regs) != 1 else ''}: {names}"
    improved = sum(c.verdict is Verdict.IMPROVEMENT for c in comp.cells)
    matched = sum(c.verdict not in (Verdict.MISSING, Verdict.NEW) for c in comp.cells)
    return f"✅ no regression ({matched} cell{'s' if matched != 1 else ''} compared, {improved} improved)"


def markdown(comp: Comparison) -> str:
    """A pull-request comment: the verdict first, then a row per matched cell, then warnings and missing/new cells."""
    r = comp.rule
    lines = [_verdict_line(comp), "", f"**edgevt compare** `{comp.baseline.path}` → `{comp.candidate.path}`", "",
             f"Latency regresses when the candidate's median is more than {r.threshold:.0%} above the baseline's and a one-sided "
             f"Mann–Whitney U test on the raw samples gives p < {r.alpha:g}; parity regresses when a passing cell no longer passes.", "",
             *_basis_lines(comp),
             *_normalize_lines(r.normalize),
             f"| cell | baseline p50 | candidate p50 | {_figure_heads(r.normalize)}change [95% CI] | p | latency | parity | worst cosine Δ | verdict |",
             "|---|---|---|---|---|---|---|---|---|" + "---|" * 2 * bool(r.normalize)]
    matched = [c for c in comp.cells if c.verdict not in (Verdict.MISSING, Verdict.NEW)]
    lines += [_row(c, r.normalize) for c in matched]
    if comp.warnings:
        lines += ["", "### Warnings", "", *[f"- ⚠️ {w}" for w in comp.warnings]]
    notes = [f"- `{c.id}`: {n}" for c in matched for n in c.notes]
    if notes:
        lines += ["", "### Notes", "", *notes]
    for verdict, title in ((Verdict.MISSING, "Missing cells"), (Verdict.NEW, "New cells")):
        group = [c for c in comp.cells if c.verdict is verdict]
        if group:
            gate = " (❌ gates)" if verdict is Verdict.MISSING and not r.allow_missing else ""
            lines += ["", f"### {title}{gate}", "", *[f"- `{c.id}`: {c.notes[0]}" for c in group]]
    return "\n".join(lines) + "\n"
