"""A model is a name: each variant is a small ModelSpec registered by its family module."""

from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from edgevt.errors import UnknownModelError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocess:
    """What the variant's HF image processor does to a photo, in that order."""

    size: int  # final square side fed to the model
    resize_shortest: int | None = None  # resize shortest edge to this, then centre-crop `size`; None: warp to size x size
    resample: str = "bicubic"  # "bicubic" | "bilinear"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


@dataclass(frozen=True)
class Family:
    """One architecture as `transformers` implements it."""

    name: str
    model_type: str  # HF config.model_type, used to accept any HF id / local dir of this architecture
    config_class: str
    model_class: str
    processor: str  # HF image processor class the preprocessing mirrors
    layer_scale_init: float | None = None  # random weights: value for layer-scale parameters


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: Family
    hf_id: str
    config: Mapping[str, Any]  # differences from the HF config class defaults
    preprocess: Preprocess
    paper_params_m: float | None = None
    paper_gmacs: float | None = None
    labels: str = "imagenet-1k"
    notes: str = ""
    registered: bool = True  # False for ad-hoc specs built from an HF id or local directory

    @property
    def input_size(self) -> int:
        return self.preprocess.size

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (1, 3, self.input_size, self.input_size)


@dataclass
class _Registry:
    families: dict[str, Family] = field(default_factory=dict)
    models: dict[str, ModelSpec] = field(default_factory=dict)


_REGISTRY = _Registry()


def register_family(family: Family) -> Family:
    if family.name in _REGISTRY.families:
        raise ValueError(f"family {family.name!r} registered twice")
    _REGISTRY.families[family.name] = family
    return family


def register(
    name: str,
    family: Family,
    hf_id: str,
    preprocess: Preprocess,
    config: Mapping[str, Any] | None = None,
    **extra: Any,
) -> ModelSpec:
    """Register a variant; a name registered twice is a programming error."""
    if name in _REGISTRY.models:
        raise ValueError(f"model {name!r} registered twice")
    cfg = {"image_size": preprocess.size, "num_labels": 1000, **(config or {})}
    spec = ModelSpec(name, family, hf_id, MappingProxyType(cfg), preprocess, **extra)
    _REGISTRY.models[name] = spec
    return spec


def _load_families() -> None:
    # Importing the family modules registers their variants (in this order: SwiftFormer first).
    import edgevt.models.swiftformer  # noqa: F401
    import edgevt.models.swin  # noqa: F401
    import edgevt.models.swinv2  # noqa: F401
    import edgevt.models.cvt  # noqa: F401


def list_models(pattern: str = "*") -> list[ModelSpec]:
    _load_families()
    return [s for n, s in _REGISTRY.models.items() if fnmatch.fnmatch(n, pattern)]


def families() -> dict[str, Family]:
    _load_families()
    return dict(_REGISTRY.families)


def family_for_model_type(model_type: str) -> Family | None:
    return next((f for f in families().values() if f.model_type == model_type), None)


def get_spec(name: str) -> ModelSpec:
    _load_families()
    try:
        return _REGISTRY.models[name]
    except KeyError:
        by_id = {s.hf_id.lower(): s for s in _REGISTRY.models.values()}
        if name.lower() in by_id:
            return by_id[name.lower()]
        close = difflib.get_close_matches(name.lower(), list(_REGISTRY.models), n=3, cutoff=0.5)
        raise UnknownModelError(name, close) from None


def spec_to_dict(spec: ModelSpec) -> dict:
    """A spec as plain data, so a worker process can rebuild exactly the variant its parent resolved."""
    from dataclasses import asdict, fields

    out = {f.name: getattr(spec, f.name) for f in fields(spec) if f.name not in ("config", "family", "preprocess")}
    return {**out, "config": dict(spec.config), "family": asdict(spec.family), "preprocess": asdict(spec.preprocess)}


def spec_from_dict(data: dict) -> ModelSpec:
    pre = dict(data["preprocess"])
    pre["mean"], pre["std"] = tuple(pre["mean"]), tuple(pre["std"])
    rest = {k: v for k, v in data.items() if k not in ("config", "family", "preprocess")}
    return ModelSpec(**rest, family=Family(**data["family"]), config=MappingProxyType(dict(data["config"])), preprocess=Preprocess(**pre))
