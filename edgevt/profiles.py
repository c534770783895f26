"""Deployment recipes: YAML files naming target, precision, export options, tolerances and bench settings."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from edgevt.bench import BenchSettings
from edgevt.errors import ProfileError, UsageError
from edgevt.limits import bench_value, tolerance_value
from edgevt.parity import Precision

TOP_KEYS = {"description", "target", "precision", "options", "tolerances", "bench", "matrix", "images", "calibration_images", "samples",
            "rewrites"}
IMAGE_KEYS = ("images", "calibration_images")  # folders; a relative path is relative to the profile file
MATRIX_KEYS = ("models", "targets", "precisions", "options")


@dataclass
class Profile:
    name: str
    source: str
    description: str = ""
    target: str | None = None
    precision: Precision | None = None
    options: dict[str, Any] = field(default_factory=dict)
    tolerances: dict[str, float] = field(default_factory=dict)
    bench: dict[str, Any] = field(default_factory=dict)
    # `edgevt matrix --profile`: models, targets and precisions lists, and options per target
    matrix: dict[str, Any] = field(default_factory=dict)
    images: str | None = None  # folder of evaluation photos (--images)
    calibration_images: str | None = None  # folder of int8-static calibration photos (--calibration-images)
    samples: int | None = None  # cap on photos per set (--samples)
    rewrites: str | tuple[str, ...] | None = None  # none, default or rewrite names (edgevt.rewrites.parse_choice)


def bundled_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("edgevt._profiles").iterdir() if p.name.endswith(".yaml"))


def _locate(name_or_path: str) -> tuple[str, str]:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if path.is_dir():
            raise UsageError(f"profile {name_or_path} is a directory", "pass a YAML file or the name of a bundled profile")
        if not path.is_file():
            raise UsageError(f"profile file {name_or_path} does not exist", f"bundled profiles: {', '.join(bundled_names())}")
        try:
            return str(path), path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ProfileError(str(path), "<file>", "not UTF-8 text; a profile is a YAML file") from None
        except OSError as exc:
            raise UsageError(f"cannot read profile {name_or_path}: {exc.strerror}") from None
    names = bundled_names()
    if name_or_path not in names:
        close = difflib.get_close_matches(name_or_path, names, n=3)
        raise UsageError(f"unknown profile {name_or_path!r}", f"did you mean {', '.join(close)}?" if close else f"profiles: {', '.join(names)}")
    res = resources.files("edgevt._profiles") / f"{name_or_path}.yaml"
    return f"profiles/{name_or_path}.yaml", res.read_text()


def _checked(src: str, key: str, result: tuple) -> Any:
    """The CLI's rules (edgevt.limits) for a profile value: the same value is refused the same way in both places."""
    value, problem = result
    if problem:
        raise ProfileError(src, key, problem)
    return value


def load_profile(name_or_path: str) -> Profile:
    import yaml

    src, text = _locate(name_or_path)
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ProfileError(src, "<file>", f"not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ProfileError(src, "<file>", "expected a mapping at the top level")
    for key in data:
        if key not in TOP_KEYS:
            raise ProfileError(src, key, f"unknown key; allowed: {', '.join(sorted(TOP_KEYS))}")
    prof = Profile(name=Path(src).stem, source=src, description=str(data.get("description", "")))
    if "target" in data:
        from edgevt.exporters import get_target

        if not isinstance(data["target"], str):
            raise ProfileError(src, "target", f"expected a target name, got {data['target']!r}")
        try:
            get_target(str(data["target"]))
        except UsageError as exc:
            raise ProfileError(src, "target", exc.message) from None
        prof.target = str(data["target"])
    if "precision" in data:
        try:
            prof.precision = Precision.parse(str(data["precision"]), prof.target)
        except ValueError:
            raise ProfileError(src, "precision", f"{data['precision']!r} is not one of {', '.join(p.value for p in Precision)}") from None
        _check_target_makes(src, prof)
    for section in ("options", "tolerances", "bench"):
        if not isinstance(data.get(section, {}), dict):
            raise ProfileError(src, section, "expected a mapping")
    prof.options = dict(data.get("options") or {})
    if prof.target:
        from edgevt.exporters import get_target

        try:
            get_target(prof.target).parse_options(prof.options)
        except UsageError as exc:
            raise ProfileError(src, "options", exc.message) from None
    for key, value in (data.get("tolerances") or {}).items():
        prof.tolerances[key] = _checked(src, f"tolerances.{key}", tolerance_value(str(key), value))
    for key, value in (data.get("bench") or {}).items():
        prof.bench[key] = _checked(src, f"bench.{key}", bench_value(str(key), value))
    if "matrix" in data:
        prof.matrix = _matrix_section(src, data["matrix"])
    _image_keys(prof, src, data)
    if "rewrites" in data:
        prof.rewrites = _rewrites(src, data["rewrites"])
    return prof


def _image_keys(prof: Profile, src: str, data: dict) -> None:
    for key in IMAGE_KEYS:
        if key in data:
            value = data[key]
            if not isinstance(value, str) or not value.strip():
                raise ProfileError(src, key, f"expected a folder path, got {value!r}")
            path = Path(value).expanduser()
            base = Path(src).parent if Path(src).is_file() else Path.cwd()
            setattr(prof, key, str(path if path.is_absolute() else (base / path).resolve()))
    if "samples" in data:
        value = data["samples"]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ProfileError(src, "samples", f"expected a whole number >= 1, got {value!r}")
        prof.samples = value


def image_options(profile: Profile | None, images: str | None = None, calibration_images: str | None = None,
                  samples: int | None = None):
    """--images, --calibration-images and --samples over the profile's images, calibration_images and samples."""
    from edgevt.images import ImageOptions

    return ImageOptions(images or (profile.images if profile else None),
                        calibration_images or (profile.calibration_images if profile else None),
                        samples if samples is not None else (profile.samples if profile else None))


def _rewrites(src: str, value: Any):
    from edgevt.rewrites import parse_choice

    if not isinstance(value, (str, list)) or (isinstance(value, list) and not all(isinstance(v, str) for v in value)):
        raise ProfileError(src, "rewrites", "expected none, default, or a list of rewrite names")
    try:
        return parse_choice(value)
    except UsageError as exc:
        raise ProfileError(src, "rewrites", exc.message) from None


def _matrix_section(src: str, data: Any) -> dict[str, Any]:
    from edgevt.exporters import get_target

    if not isinstance(data, dict):
        raise ProfileError(src, "matrix", "expected a mapping with models, targets, precisions, options")
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key not in MATRIX_KEYS:
            raise ProfileError(src, f"matrix.{key}", f"unknown key; allowed: {', '.join(MATRIX_KEYS)}")
        if key == "options":
            continue
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise ProfileError(src, f"matrix.{key}", "expected a non-empty list of names")
        out[key] = list(value)
    for name in out.get("targets", []):
        try:
            get_target(name)
        except UsageError as exc:
            raise ProfileError(src, "matrix.targets", exc.message) from None
    for text in out.get("precisions", []):
        if text == "default":
            continue
        try:
            Precision.parse(text)
        except ValueError:
            raise ProfileError(src, "matrix.precisions", f"{text!r} is not one of int8, {', '.join(p.value for p in Precision)}") from None
    options = data.get("options") or {}
    if not isinstance(options, dict):
        raise ProfileError(src, "matrix.options", "expected a mapping of target name to its options")
    for target_name, values in options.items():
        try:
            get_target(target_name).parse_options(values if isinstance(values, dict) else {"<not a mapping>": values})
        except UsageError as exc:
            raise ProfileError(src, f"matrix.options.{target_name}", exc.message) from None
    out["options"] = {t: dict(v) for t, v in options.items()}
    return out


def _check_target_makes(src: str, prof: Profile) -> None:
    """A precision the profile's target cannot make is refused here, as `--precision` is on the command line."""
    if not prof.target or prof.precision is None:
        return
    from edgevt.exporters import get_target

    made = get_target(prof.target).precisions
    if prof.precision not in made:
        raise ProfileError(src, "precision", f"{prof.target} does not make {prof.precision.value}; it makes "
                                             f"{', '.join(p.value for p in made)}")


def bench_settings(profile: Profile | None, defaults: dict | None = None, **cli: Any) -> BenchSettings:
    """CLI values win over the profile, the profile over the command's defaults."""
    merged = {**(defaults or {}), **(profile.bench if profile else {})}
    merged.update({k: v for k, v in cli.items() if v is not None})
    if cli.get("max_time_s") is None and merged.get("min_time_s", 0) > merged.get("max_time_s", BenchSettings.max_time_s):
        merged["max_time_s"] = merged["min_time_s"]  # --min-time alone above the default cap raises the cap with it
    return BenchSettings(**merged)
