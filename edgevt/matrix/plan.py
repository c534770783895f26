"""What a matrix run covers: models × targets × precisions, resolved and validated before any cell runs."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any

from edgevt.bench import BenchSettings
from edgevt.errors import UsageError
from edgevt.images import NOISE_SAMPLES, ImageOptions, ImageSet
from edgevt.parity import Precision


@dataclass(frozen=True)
class Cell:
    model: str
    target: str
    precision: str  # resolved (int8 -> int8-weights on coreml); the text as given when unknown to the target
    options: dict = field(default_factory=dict, hash=False, compare=False)  # parsed, defaults filled in
    unsupported: str | None = None  # why this target cannot make this precision
    rewrites: tuple[str, ...] = ()  # the rewrites this cell's export gets (resolved for its family and target)

    @property
    def id(self) -> str:
        return f"{self.model}/{self.target}/{self.precision}"


@dataclass
class MatrixPlan:
    specs: dict[str, Any]  # model name -> ModelSpec
    targets: list[str]
    precisions: list[str]  # as the user wrote them
    weights: str
    seed: int
    bench: BenchSettings
    tolerances: dict[str, float] = field(default_factory=dict)
    profile: str | None = None
    cell_timeout_s: float | None = None
    exclude: list[str] = field(default_factory=list)  # globs over cell ids (MODEL/TARGET/PRECISION) left out of the run
    cells: list[Cell] = field(default_factory=list)
    threads_auto: bool = False  # bench.threads came from this host's CPU count, not from the command line or profile
    digest: str = ""  # plan_digest() of the whole plan, set once its cells are expanded (before any shard is taken)
    shard: dict | None = None  # {index, count, plan_cells}: this run covers one shard of the plan (shard.py)
    images: ImageOptions = field(default_factory=ImageOptions)  # --images, --calibration-images, --samples
    evaluation: ImageSet | None = None  # the photos every cell checks parity on (scanned once, for the cache keys)
    calibration: ImageSet | None = None  # a separate int8-static calibration set, when given and used
    rewrites: str | tuple[str, ...] = "default"  # none, default or names (edgevt.rewrites.parse_choice)

    def describe(self) -> dict:
        from dataclasses import asdict

        from edgevt.rewrites import choice_text

        return {"models": list(self.specs), "targets": self.targets, "precisions": self.precisions, "weights": self.weights,
                "seed": self.seed, "profile": self.profile, "bench": asdict(self.bench), "tolerances": self.tolerances,
                "cell_timeout_s": self.cell_timeout_s, "exclude": self.exclude, "images": self.images.to_dict(),
                "inputs": self.describe_inputs(), "digest": self.digest, "shard": self.shard, "rewrites": choice_text(self.rewrites)}

    def describe_inputs(self) -> dict:
        """The photos of the run, as an export report's "inputs" section: used, skipped, calibration overlap."""
        from edgevt.images import calibration_section

        if self.evaluation is None:
            return {}
        out = {"images": self.evaluation.describe(), "noise": NOISE_SAMPLES}
        if self.calibrates:
            out["calibration"] = calibration_section(self.evaluation, self.calibration or self.evaluation)
        return out

    @property
    def calibrates(self) -> bool:
        """Does any cell calibrate (int8-static)?"""
        return any(c.precision == Precision.INT8_STATIC.value and not c.unsupported for c in self.cells)

    def calibration_digest(self) -> str | None:
        """What an int8-static artifact depends on besides the model: the photos it was calibrated on."""
        chosen = self.calibration or self.evaluation
        return chosen.digest() if chosen is not None else None


def plan_digest(plan: MatrixPlan) -> str:
    """The same on every machine given the same command line (and edgevt): what `edgevt merge` checks shards by.
    Threads taken from the host's CPU count are left out, so runners with different core counts still agree."""
    from dataclasses import asdict

    from edgevt import __version__
    from edgevt.matrix.cache import digest
    from edgevt.models.registry import spec_to_dict
    from edgevt.rewrites import choice_text

    bench = {**asdict(plan.bench), "threads": None if plan.threads_auto else plan.bench.threads}
    return digest({"edgevt": __version__, "specs": {n: spec_to_dict(s) for n, s in plan.specs.items()}, "targets": plan.targets,
                   "precisions": plan.precisions, "weights": plan.weights, "seed": plan.seed, "profile": plan.profile, "bench": bench,
                   "tolerances": plan.tolerances, "cell_timeout_s": plan.cell_timeout_s, "exclude": plan.exclude,
                   "photos": plan.evaluation.digest() if plan.evaluation is not None else None,
                   "calibration_photos": plan.calibration_digest() if plan.calibrates else None,
                   "rewrites": choice_text(plan.rewrites), "cells": [[c.id, c.options, c.unsupported, list(c.rewrites)] for c in plan.cells]})


def split_list(text: str | None) -> list[str]:
    return [item.strip() for item in (text or "").split(",") if item.strip()]


def resolve_models(names: list[str], weights: str = "pretrained") -> dict[str, Any]:
    """Names, globs (`swin*`) or `all`; each resolved to its ModelSpec now (with the checkpoint's own architecture,
    config and preprocessing) so a typo or a mismatched checkpoint fails before any cell runs."""
    from edgevt.models import list_models
    from edgevt.models.loading import resolve_spec

    specs: dict[str, Any] = {}
    for name in names:
        if name == "all" or any(ch in name for ch in "*?["):
            matched = [s for s in list_models("*") if name == "all" or fnmatch.fnmatch(s.name, name)]
            if not matched:
                raise UsageError(f"no registered model matches {name!r}", "run `edgevt list` to see every registered variant")
            specs.update({s.name: resolve_spec(s.name, weights) for s in matched})
        else:
            spec = resolve_spec(name, weights)
            specs[spec.name] = spec
    if not specs:
        raise UsageError("no models given", "pass --models swiftformer-xs,swin-tiny (or a profile with a matrix.models list)")
    return specs


def split_options(options: dict[str, Any], targets: list[str]) -> dict[str, dict[str, Any]]:
    """KEY=VALUE goes to every target that has KEY; TARGET.KEY=VALUE to that target only."""
    from edgevt.exporters import get_target

    out: dict[str, dict[str, Any]] = {t: {} for t in targets}
    for key, value in options.items():
        scope, dot, name = key.partition(".")
        if dot:
            if scope not in out:
                raise UsageError(f"option {key!r} is scoped to {scope!r}, which is not in this matrix's targets ({', '.join(targets)})")
            out[scope][name] = value
            continue
        owners = [t for t in targets if key in get_target(t).options]
        if not owners:
            raise UsageError(f"no target in this matrix has an option {key!r}", "`edgevt doctor` lists every target's options")
        for t in owners:
            out[t][key] = value
    return out


def expand(plan: MatrixPlan, options: dict[str, dict[str, Any]]) -> list[Cell]:
    """Every model × target × precision, in that order; a precision a target cannot make is kept as `unsupported`."""
    from edgevt.exporters import get_target
    from edgevt.rewrites import resolved_names

    cells = []
    for target_name in plan.targets:
        target = get_target(target_name)
        parsed = target.parse_options(options.get(target_name, {}))
        for text in plan.precisions:
            precision = target.default_precision if text == "default" else Precision.parse(text, target_name)
            reason = None if precision in target.precisions else (
                f"{target_name} does not make {precision.value} (it offers {', '.join(p.value for p in target.precisions)})")
            for model, spec in plan.specs.items():
                rewrites = tuple(resolved_names(plan.rewrites, spec.family.name, target_name))
                cells.append(Cell(model, target_name, precision.value, parsed, reason, rewrites))
    order = {m: i for i, m in enumerate(plan.specs)}
    cells = [c for c in cells if not any(fnmatch.fnmatch(c.id, pattern) for pattern in plan.exclude)]
    if not cells:
        raise UsageError("--exclude leaves no cell to run", "cell ids look like swin-tiny/tflite/int8-dynamic")
    return sorted(cells, key=lambda c: order[c.model])  # stable: model-major, then target and precision as given


def check_precisions(texts: list[str]) -> None:
    allowed = ["default", "int8", *(p.value for p in Precision)]
    bad = [t for t in texts if t not in allowed]
    if bad:
        raise UsageError(f"unknown precision(s) {', '.join(bad)}", f"choose from {', '.join(allowed)}")
