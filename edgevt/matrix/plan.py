"""What a matrix run covers: models × targets × precisions, resolved and validated before any cell runs."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any

from edgevt.bench import BenchSettings
from edgevt.errors import UsageError
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
    rewrites: str | tuple[str, ...] = "default"  # none, default or names (edgevt.rewrites.parse_choice)

    def describe(self) -> dict:
        from dataclasses import asdict

        from edgevt.rewrites import choice_text

        return {"models": list(self.specs), "targets": self.targets, "precisions": self.precisions, "weights": self.weights,
                "seed": self.seed, "profile": self.profile, "bench": asdict(self.bench), "tolerances": self.tolerances,
                "cell_timeout_s": self.cell_timeout_s, "exclude": self.exclude, "rewrites": choice_text(self.rewrites)}


def split_list(text: str | None) -> list[str]:
    return [item.strip() for item in (text or "").split(",") if item.strip()]


def resolve_models(names: list[str]) -> dict[str, Any]:
    """Names, globs (`swin*`) or `all`; each resolved to its ModelSpec now so a typo fails before any cell runs."""
    from edgevt.models import list_models
    from edgevt.models.loading import resolve_spec

    specs: dict[str, Any] = {}
    for name in names:
        if name == "all" or any(ch in name for ch in "*?["):
            matched = [s for s in list_models("*") if name == "all" or fnmatch.fnmatch(s.name, name)]
            if not matched:
                raise UsageError(f"no registered model matches {name!r}", "run `edgevt list` to see every registered variant")
            specs.update({s.name: s for s in matched})
        else:
            spec = resolve_spec(name)
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
