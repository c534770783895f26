"""Does an export compute what the reference computes? Every output checked, every failure collected."""

from __future__ import annotations

import enum
import math
from dataclasses import asdict, dataclass, field, fields, replace

import numpy as np


class Precision(str, enum.Enum):
    FP32 = "fp32"
    FP16 = "fp16"
    INT8_DYNAMIC = "int8-dynamic"
    INT8_STATIC = "int8-static"
    INT8_WEIGHTS = "int8-weights"  # Core ML: int8 weights, fp16 compute
    PALETTIZE = "palettize"  # Core ML: k-means palettized weights, fp16 compute

    @classmethod
    def parse(cls, text: str, target: str | None = None) -> "Precision":
        """`int8` is shorthand for the target's weight-int8 mode: int8-weights on Core ML, int8-dynamic elsewhere."""
        if text == "int8":
            text = "int8-weights" if target == "coreml" else "int8-dynamic"
        return cls(text)


@dataclass(frozen=True)
class Thresholds:
    """A None threshold is not checked. Starting points from practitioners (shared FACTS.md)."""

    atol: float | None = None
    rtol: float | None = None
    min_cosine: float | None = None
    min_psnr_db: float | None = None
    min_top1: float | None = None  # fraction of photos whose top-1 class agrees

    def override(self, **values) -> "Thresholds":
        return replace(self, **{k: v for k, v in values.items() if v is not None})

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in fields(cls)]


DEFAULT_THRESHOLDS = {
    Precision.FP32: Thresholds(atol=1e-4, rtol=1e-4, min_cosine=0.99999, min_top1=1.0),
    Precision.FP16: Thresholds(atol=5e-2, rtol=1e-2, min_cosine=0.999, min_top1=0.99),
    Precision.INT8_DYNAMIC: Thresholds(min_cosine=0.99, min_psnr_db=25.0, min_top1=0.97),
    Precision.INT8_STATIC: Thresholds(min_cosine=0.98, min_top1=0.95),
    # Weight-only compression, fp16 compute: FACTS' "int8 dynamic (weights)" row.
    Precision.INT8_WEIGHTS: Thresholds(min_cosine=0.99, min_psnr_db=25.0, min_top1=0.97),
    Precision.PALETTIZE: Thresholds(min_cosine=0.99, min_psnr_db=25.0, min_top1=0.97),
}


@dataclass
class OutputParity:
    name: str
    shape: list[int]
    max_abs: float
    max_rel: float  # max_abs / max |reference|: the error relative to the output's scale
    mean_abs: float
    cosine: float  # worst per-sample cosine similarity
    psnr_db: float  # peak = max |reference|
    snr_db: float
    nonfinite: int  # NaN or inf in the candidate
    allclose_violations: int  # elements outside atol + rtol*|ref| (0 when not checked)


@dataclass
class ParityReport:
    status: str  # "pass" | "fail" | "skipped"
    engine: str | None = None  # what ran the export (e.g. "onnxruntime-cpu")
    reference: str = "torch-eager"
    precision: str | None = None
    thresholds: dict = field(default_factory=dict)
    outputs: list[OutputParity] = field(default_factory=list)
    samples: int = 0
    photos: int = 0
    top1_agreement: float | None = None
    top1_ci95: list[float] | None = None  # Wilson score interval of top-1 agreement over the photos
    top5_agreement: float | None = None  # mean overlap of the top-5 class sets on photos
    # Each photo whose top-1 changed, with the reference's top-1 minus top-2 logit: a near-tie flips easily.
    top1_disagreements: list[dict] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    reason: str | None = None  # why it was skipped
    engine_seconds: float | None = None  # wall time the engine took for all samples
    diagnosis: dict | None = None  # target-specific: e.g. Core ML ops that add the most fp16 error

    @classmethod
    def skipped(cls, reason: str, engine: str | None = None) -> "ParityReport":
        return cls(status="skipped", engine=engine, reason=reason)

    def to_dict(self) -> dict:
        return asdict(self)


def _safe_db(num: float, den: float) -> float:
    if den == 0.0:
        return float("inf")
    if num == 0.0:
        return float("-inf")
    with np.errstate(divide="ignore"):
        return float(10.0 * np.log10(num / den))


def output_metrics(name: str, ref: np.ndarray, cand: np.ndarray, th: Thresholds) -> OutputParity:
    ref64 = ref.astype(np.float64)
    cand64 = cand.astype(np.float64)
    nonfinite = int(np.size(cand64) - np.isfinite(cand64).sum())
    diff = np.where(np.isfinite(cand64), cand64 - ref64, np.inf)
    absdiff = np.abs(diff)
    peak = float(np.abs(ref64).max()) if ref64.size else 0.0
    mse = float(np.mean(np.square(np.where(np.isfinite(diff), diff, 0.0)))) if nonfinite == 0 else float("inf")
    r2 = ref64.reshape(ref64.shape[0], -1)
    c2 = np.nan_to_num(cand64, nan=0.0, posinf=0.0, neginf=0.0).reshape(r2.shape)
    norms = np.linalg.norm(r2, axis=1) * np.linalg.norm(c2, axis=1)
    cos = np.where(norms > 0, (r2 * c2).sum(axis=1) / np.where(norms > 0, norms, 1.0), 0.0)
    violations = 0
    if th.atol is not None or th.rtol is not None:
        bound = (th.atol or 0.0) + (th.rtol or 0.0) * np.abs(ref64)
        violations = int((absdiff > bound).sum())
    max_abs = float(absdiff.max()) if absdiff.size else 0.0
    return OutputParity(
        name=name,
        shape=list(ref.shape),
        max_abs=max_abs,
        max_rel=max_abs / peak if peak > 0 else float("inf"),
        mean_abs=float(absdiff.mean()) if absdiff.size else 0.0,
        cosine=float(cos.min()) if cos.size else 0.0,
        psnr_db=_safe_db(peak * peak, mse),
        snr_db=_safe_db(float(np.mean(np.square(ref64))), mse),
        nonfinite=nonfinite,
        allclose_violations=violations,
    )


def digits_apart(value: float, limit: float, decimals: int) -> str:
    """value with enough decimals to tell it from limit: "cosine 0.99999994 < 1.0", never "cosine 1.0000000 < 1.0"."""
    if value != limit and math.isfinite(value) and math.isfinite(limit):
        while decimals < 17 and f"{value:.{decimals}f}" == f"{limit:.{decimals}f}":
            decimals += 1
    return f"{value:.{decimals}f}"


def _output_failures(m: OutputParity, th: Thresholds) -> list[str]:
    out = []
    if m.nonfinite:
        out.append(f"{m.name}: {m.nonfinite} NaN/inf values")
    if m.allclose_violations:
        out.append(
            f"{m.name}: {m.allclose_violations} elements outside atol={th.atol} rtol={th.rtol} (max_abs {m.max_abs:.3g})"
        )
    if th.min_cosine is not None and not m.cosine >= th.min_cosine:
        out.append(f"{m.name}: cosine {digits_apart(m.cosine, th.min_cosine, 7)} < {th.min_cosine}")
    if th.min_psnr_db is not None and not m.psnr_db >= th.min_psnr_db:
        out.append(f"{m.name}: PSNR {digits_apart(m.psnr_db, th.min_psnr_db, 1)} dB < {th.min_psnr_db} dB")
    return out


def topk_agreement(ref: np.ndarray, cand: np.ndarray, k: int) -> float:
    """k=1: share of samples with the same argmax; k>1: mean overlap of the top-k class sets.

    Ties break towards the lower class index, as argmax does (int8 outputs can tie exactly): a tie that
    argmax would resolve differently from the reference counts as a disagreement, consistently.
    """
    ref_top = np.argsort(-ref, axis=-1, kind="stable")[:, :k]
    cand_top = np.argsort(-np.nan_to_num(cand, nan=-np.inf), axis=-1, kind="stable")[:, :k]
    if k == 1:
        return float(np.mean(ref_top[:, 0] == cand_top[:, 0]))
    return float(np.mean([len(set(r) & set(c)) / k for r, c in zip(ref_top, cand_top)]))


def top1_disagreements(ref: np.ndarray, cand: np.ndarray, names: list[str]) -> list[dict]:
    top2 = np.sort(ref, axis=-1)[:, -2:]
    out = []
    for i, (r, c) in enumerate(zip(ref.argmax(-1), np.nan_to_num(cand, nan=-np.inf).argmax(-1))):
        if r != c:
            out.append({"sample": names[i], "reference_class": int(r), "candidate_class": int(c),
                        "reference_margin": float(top2[i, 1] - top2[i, 0])})
    return out


def wilson_interval(agree: int, total: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion (scipy's): with 104 photos and 0 flips, agreement is >= 96.4% at 95%."""
    from scipy.stats import binomtest

    ci = binomtest(int(agree), int(total)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def top1_text(parity: dict, flips: int | None = 10) -> list[str]:
    """'top-1 agreement 99.0% of 104 photos (95% CI 94.8–99.8%)' and a line per flip with its reference margin (at
    most `flips` of them, then how many more; None lists all): what report.md, the CLI and the matrix reports print."""
    top1 = parity.get("top1_agreement")
    if top1 is None:
        return []
    ci = parity.get("top1_ci95")
    lines = [f"top-1 agreement {top1:.1%} of {parity.get('photos')} photos"
             + (f" (95% CI {ci[0]:.1%}–{ci[1]:.1%})" if ci else "")]
    changed = parity.get("top1_disagreements") or []
    shown = changed if flips is None else changed[:flips]
    lines += [f"top-1 changed on {d['sample']}: class {d['reference_class']} → {d['candidate_class']} "
              f"(reference top-1/top-2 margin {d['reference_margin']:.3g})" for d in shown]
    if len(changed) > len(shown):
        lines.append(f"… and {len(changed) - len(shown)} more top-1 changes (report.json lists them all)")
    return lines


def compare(
    reference: dict[str, np.ndarray],
    candidate: dict[str, np.ndarray],
    thresholds: Thresholds,
    is_photo: np.ndarray,
    engine: str,
    precision: str,
    class_output: str | None = "logits",
    sample_names: list[str] | None = None,
) -> ParityReport:
    """Check every reference output against the candidate; the report lists every failure."""
    report = ParityReport(
        status="pass",
        engine=engine,
        precision=precision,
        thresholds=asdict(thresholds),
        samples=int(len(is_photo)),
        photos=int(np.sum(is_photo)),
    )
    for name, ref in reference.items():
        cand = candidate.get(name)
        if cand is None:
            report.failures.append(f"{name}: missing from the export's outputs ({sorted(candidate)})")
            continue
        if tuple(cand.shape) != tuple(ref.shape):
            report.failures.append(f"{name}: shape {list(cand.shape)} != reference {list(ref.shape)}")
            continue
        metrics = output_metrics(name, ref, cand, thresholds)
        report.outputs.append(metrics)
        report.failures.extend(_output_failures(metrics, thresholds))
    if class_output in reference and class_output in candidate and is_photo.any():
        ref, cand = reference[class_output][is_photo], candidate[class_output][is_photo]
        if ref.ndim == 2 and cand.shape == ref.shape:
            names = [n for n, p in zip(sample_names or [f"#{i}" for i in range(len(is_photo))], is_photo) if p]
            report.top1_disagreements = top1_disagreements(ref, cand, names)
            report.top1_agreement = 1.0 - len(report.top1_disagreements) / len(ref)
            report.top1_ci95 = list(wilson_interval(len(ref) - len(report.top1_disagreements), len(ref)))
            report.top5_agreement = topk_agreement(ref, cand, min(5, ref.shape[-1]))
            if thresholds.min_top1 is not None and report.top1_agreement < thresholds.min_top1:
                lo, hi = report.top1_ci95
                changed = report.top1_disagreements
                margins = f", reference margins ≤ {max(d['reference_margin'] for d in changed):.3g}" if changed else ""
                report.failures.append(
                    f"{class_output}: top-1 agreement {digits_apart(100 * report.top1_agreement, 100 * thresholds.min_top1, 1)}% "
                    f"< {100 * thresholds.min_top1:g}% on {len(ref)} photos (95% CI {lo:.1%}–{hi:.1%}; {len(changed)} changed{margins})"
                )
    report.status = "fail" if report.failures else "pass"
    return report


def worst_cosine(parity: dict | None) -> float | None:
    """The lowest per-output cosine of a parity section as a report stores it; inf/NaN (written as strings) are no number."""
    values = [o.get("cosine") for o in (parity or {}).get("outputs") or [] if isinstance(o, dict)]
    finite = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
    return min(finite, default=None)
