"""Verified rewrites: module substitutions that compute the same function in ops devices run better.

A rewrite is a name (like a model): one small module per rewrite registers it with the families it applies to,
the targets it is meant for, and the targets where `--rewrites default` turns it on (chosen by measurement,
see benchmarks/rewrites.py). Rewrites act on a deep copy of the PyTorch module that goes to the exporter; the
parity reference stays the unrewritten module, so every rewritten artifact is checked against the original.
Importing this package does not import torch: the rewrite modules import it inside `apply`.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
from dataclasses import dataclass
from typing import Callable

from edgevt.errors import UsageError

TARGETS = ("onnx", "coreml", "tflite")

# Application order: a rewrite listed later may rely on an earlier one having run (none does today).
_MODULES = (
    "bn_fold",
    "cvt_matmul",
    "swiftformer_attention",
    "l2norm_rsqrt",
    "gelu_erf",
    "swin_shift_slices",
    "swin_window_rank4",
    "swin_constant_bias",
    "swin_patch_merging",
    "swin_window_gather",
    "layernorm_fold",
    "attention_scale",
    "fused_qkv",
)


@dataclass(frozen=True)
class Rewrite:
    name: str
    summary: str  # what it substitutes, one line (README, reports)
    families: tuple[str, ...]
    targets: tuple[str, ...]  # the targets it is meant for
    default_targets: tuple[str, ...]  # where `--rewrites default` applies it (measured; README "Rewrites")
    apply: Callable  # (module) -> number of submodules it changed; acts in place on edgevt's copy

    def describe(self) -> dict:
        return {"name": self.name, "summary": self.summary, "families": list(self.families), "targets": list(self.targets),
                "default_targets": list(self.default_targets)}


_REGISTRY: dict[str, Rewrite] = {}


def register(name: str, summary: str, families: tuple[str, ...], default_targets: tuple[str, ...] = (),
             targets: tuple[str, ...] = TARGETS):
    """Decorator on a rewrite's apply function; a name registered twice is a programming error."""

    def wrap(apply: Callable) -> Callable:
        if name in _REGISTRY:
            raise ValueError(f"rewrite {name!r} registered twice")
        unknown = set(default_targets) - set(targets)
        if unknown:
            raise ValueError(f"rewrite {name!r}: default targets {sorted(unknown)} are not among its targets")
        _REGISTRY[name] = Rewrite(name, summary, tuple(families), tuple(targets), tuple(default_targets), apply)
        return apply

    return wrap


def _load() -> None:
    for module in _MODULES:
        importlib.import_module(f"edgevt.rewrites.{module}")


def list_rewrites(pattern: str = "*") -> list[Rewrite]:
    _load()
    return [rw for name, rw in _REGISTRY.items() if fnmatch.fnmatch(name, pattern)]


def get_rewrite(name: str) -> Rewrite:
    _load()
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.5)
        raise UsageError(f"unknown rewrite {name!r}",
                         f"did you mean {', '.join(close)}?" if close else f"rewrites: none, default, {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def parse_choice(text: str | list | tuple | None) -> str | tuple[str, ...]:
    """`none`, `default`, or rewrite names (comma-separated text or a list, e.g. from a profile), validated."""
    if text is None:
        return "default"
    items = [t.strip() for t in (text.split(",") if isinstance(text, str) else map(str, text)) if t.strip()]
    if items in (["none"], ["default"]):
        return items[0]
    if not items or "none" in items or "default" in items:
        raise UsageError(f"--rewrites {','.join(items)!r}: use none, default, or a comma-separated list of rewrite names",
                         "`edgevt list` lists them")
    for name in items:
        get_rewrite(name)
    order = [rw.name for rw in list_rewrites()]
    return tuple(sorted(dict.fromkeys(items), key=order.index))


def choice_text(choice: str | tuple[str, ...]) -> str:
    return choice if isinstance(choice, str) else ",".join(choice)


def select(choice: str | tuple[str, ...], family: str, target: str) -> tuple[list[Rewrite], list[dict]]:
    """The rewrites to apply to a model of `family` exported to `target`, and the requested ones left out (why)."""
    if choice == "none":
        return [], []
    if choice == "default":
        return [rw for rw in list_rewrites() if family in rw.families and target in rw.default_targets], []
    chosen, skipped = [], []
    for name in choice:
        rw = get_rewrite(name)
        if family not in rw.families:
            skipped.append({"name": name, "reason": f"does not apply to {family} (only {', '.join(rw.families)})"})
        elif target not in rw.targets:
            skipped.append({"name": name, "reason": f"not meant for the {target} target (only {', '.join(rw.targets)})"})
        else:
            chosen.append(rw)
    return chosen, skipped


def resolved_names(choice: str | tuple[str, ...], family: str, target: str) -> list[str]:
    """What a (family, target) cell actually gets: part of the matrix cache key."""
    return [rw.name for rw in select(choice, family, target)[0]]


__all__ = ["Rewrite", "register", "list_rewrites", "get_rewrite", "parse_choice", "choice_text", "select", "resolved_names"]
