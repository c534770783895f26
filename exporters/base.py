"""What every target provides: an exporter that writes an artifact, and a Runner that executes one."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np

from edgevt.errors import UsageError
from edgevt.parity import Precision


@dataclass(frozen=True)
class Option:
    """A target-specific export option; profiles and the CLI are validated against these."""

    type: type
    default: Any
    help: str
    choices: tuple | None = None
    minimum: int | None = None

    def parse(self, key: str, value: Any) -> Any:
        if self.type is bool and not isinstance(value, bool):
            raise UsageError(f"option {key!r} must be true or false, got {value!r}")
        if self.type is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise UsageError(f"option {key!r} must be an integer, got {value!r}")
        if self.type is str and not isinstance(value, str):
            raise UsageError(f"option {key!r} must be a string, got {value!r}")
        if self.minimum is not None and value < self.minimum:
            raise UsageError(f"option {key!r} must be at least {self.minimum}, got {value!r}")
        if self.choices and value not in self.choices:
            raise UsageError(f"option {key!r} must be one of {', '.join(map(str, self.choices))}, got {value!r}")
        return value


@dataclass
class ExportResult:
    artifact: Path  # inside the staging directory; the caller moves it into place
    details: dict = field(default_factory=dict)  # how it was made: exporter path, fallbacks, op counts


class Runner(Protocol):
    engine: str  # e.g. "onnxruntime-cpu", "torch-eager": goes into every report

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """One input (N x C x H x W float32: the model's tensor, or RGB pixels 0..255 for an image-input artifact)
        -> named float32 outputs."""


@dataclass(frozen=True)
class Target:
    name: str
    suffix: str  # artifact file suffix, e.g. ".onnx"
    precisions: tuple[Precision, ...]
    options: dict[str, Option]
    requires: tuple[str, ...]  # importable modules this target needs
    install_hint: str
    export: Callable[..., ExportResult]  # (loaded_model, samples, precision, options, workdir, log)
    open_runner: Callable[..., Runner]  # (artifact, threads) -> Runner
    input_shape: Callable[[Path], list]  # artifact -> input shape (symbolic dims as strings)
    # artifact -> its input's name: "image" for an image-input artifact (RGB 0..255), "pixel_values" for a tensor input
    input_name: Callable[[Path], str] = lambda artifact: "pixel_values"
    default_precision: Precision = Precision.FP32
    # None when latency can be measured here; otherwise the reason (e.g. Core ML off macOS)
    latency_unavailable: Callable[[], str | None] = lambda: None
    runner_options: tuple[str, ...] = ()  # keyword options open_runner accepts (e.g. compute_units)
    # (artifact, one input sample) -> where reduced precision loses accuracy; None when the target has no such tool
    diagnose: Callable[[Path, np.ndarray], dict] | None = None

    def parse_options(self, values: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(values) - set(self.options))
        if unknown:
            raise UsageError(
                f"unknown {self.name} option(s) {', '.join(unknown)}",
                f"{self.name} options are: {', '.join(self.options)}",
            )
        parsed = {k: opt.default for k, opt in self.options.items()}
        parsed.update({k: self.options[k].parse(k, v) for k, v in values.items()})
        return parsed


def run_batched(runner: Runner, batch: np.ndarray, chunk: int = 1) -> dict[str, np.ndarray]:
    """Run `chunk` samples at a time (artifacts have a fixed batch of 1; the PyTorch reference takes any) and stack
    the outputs."""
    outs: dict[str, list[np.ndarray]] = {}
    for i in range(0, len(batch), chunk):
        for name, value in runner.run(batch[i : i + chunk]).items():
            outs.setdefault(name, []).append(np.asarray(value, dtype=np.float32))
    return {name: np.concatenate(values) for name, values in outs.items()}
