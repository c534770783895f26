"""A model is a name: each variant is a small ModelSpec registered by its family module.

A registered spec carries the published checkpoint's configuration and its published image-processor config (the
`preprocessor_config.json` of its Hub repository). `edgevt.models.checkpoint.resolve_spec` turns a name, directory or
Hub id plus a weights choice into the spec actually used: the checkpoint's own architecture, config and processor
wherever the checkpoint states them.
"""

from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Mapping

from edgevt.errors import UnknownModelError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Where a spec's image-processor config came from (reports say which).
FROM_CHECKPOINT = "checkpoint"  # the checkpoint's own preprocessor_config.json
FROM_REGISTRY = "registry"  # the published config of a registered variant (random weights, a bare weights file)
FROM_FAMILY = "family-default"  # an ad-hoc checkpoint without a processor config: the family's published recipe


def vit_processor(size: int, resample: int | None = None, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> dict:
    """A ViTImageProcessor config: warp to size x size. No `resample` key means the class default (bilinear)."""
    cfg = {"image_processor_type": "ViTImageProcessor", "do_resize": True, "size": {"height": size, "width": size},
           "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True, "image_mean": list(mean), "image_std": list(std)}
    if resample is not None:
        cfg["resample"] = resample
    return cfg


def convnext_processor(size: int, crop_pct: float = 0.875, resample: int = 3, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> dict:
    """A ConvNextImageProcessor config: below 384 px, shortest edge to int(size / crop_pct) and centre-crop; else warp."""
    return {"image_processor_type": "ConvNextImageProcessor", "do_resize": True, "size": {"shortest_edge": size},
            "crop_pct": crop_pct, "resample": resample, "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
            "image_mean": list(mean), "image_std": list(std)}


@dataclass(frozen=True)
class Family:
    """One architecture as `transformers` implements it."""

    name: str
    model_type: str  # HF config.model_type, used to accept any HF id / local dir of this architecture
    config_class: str
    model_class: str  # the classifier: what a registered variant is
    backbone_class: str  # the same network without a head (e.g. SwinModel): exported as the feature extractor it is
    processor: str  # HF image processor class of the published checkpoints: "ViTImageProcessor" | "ConvNextImageProcessor"
    resample: int | None = None  # the published processors' resample (None: the class default)
    layer_scale_init: float | None = None  # random weights: value for layer-scale parameters
    extra_classes: tuple[str, ...] = ()  # further supported HF classes (e.g. SwinBackbone)
    sized_by_config: bool = False  # the config's image_size shapes the network (Swin's patch grid), so it sets the input size

    @property
    def classes(self) -> tuple[str, ...]:
        return (self.model_class, self.backbone_class, *self.extra_classes)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: Family
    hf_id: str
    config: Mapping[str, Any]  # differences from the HF config class defaults (a checkpoint's: its whole config)
    processor: Mapping[str, Any]  # an HF preprocessor_config.json
    input_hw: tuple[int, int]  # the fixed input size the artifact takes (H, W)
    paper_params_m: float | None = None
    paper_gmacs: float | None = None
    labels: str = "imagenet-1k"
    notes: str = ""
    registered: bool = True  # False for ad-hoc specs built from an HF id or local directory
    architecture: str | None = None  # HF class; None: the family's classifier
    processor_source: str = FROM_REGISTRY
    processor_origin: str | None = None  # the file or Hub id the processor config came from
    checkpoint: str | None = None  # absolute directory or Hub id the weights and config come from
    input_size_note: str | None = None  # how the input size was chosen when sources disagree or it was overridden

    @property
    def input_size(self) -> int:
        return self.input_hw[0]

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (1, 3, *self.input_hw)

    @property
    def model_class(self) -> str:
        return self.architecture or self.family.model_class

    @property
    def source(self) -> str:
        """What names this model on the command line: a registered name, an absolute directory or a Hub id."""
        return self.name if self.registered else (self.checkpoint or self.name)


@dataclass
class _Registry:
    families: dict[str, Family] = field(default_factory=dict)
    models: dict[str, ModelSpec] = field(default_factory=dict)


_REGISTRY = _Registry()


def family_processor(family: Family, size: int) -> dict:
    """The family's published recipe at another size: for ad-hoc checkpoints that ship no processor config."""
    if family.processor == "ConvNextImageProcessor":
        return convnext_processor(size, resample=family.resample or 3)
    return vit_processor(size, family.resample)


def register_family(family: Family) -> Family:
    if family.name in _REGISTRY.families:
        raise ValueError(f"family {family.name!r} registered twice")
    _REGISTRY.families[family.name] = family
    return family


def register(
    name: str,
    family: Family,
    hf_id: str,
    processor: Mapping[str, Any],
    config: Mapping[str, Any] | None = None,
    input_size: int = 224,
    **extra: Any,
) -> ModelSpec:
    """Register a variant; a name registered twice is a programming error.

    `processor` is the checkpoint's published preprocessor_config.json; `input_size` what it produces (a test pins
    that the HF processor built from it does)."""
    if name in _REGISTRY.models:
        raise ValueError(f"model {name!r} registered twice")
    cfg = {"num_labels": 1000, **(config or {})}
    spec = ModelSpec(name, family, hf_id, MappingProxyType(cfg), MappingProxyType(dict(processor)), (input_size, input_size),
                     processor_origin=f"{hf_id} (published preprocessor_config.json)", **extra)
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


def supported_model_types() -> str:
    return ", ".join(f.model_type for f in families().values())


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

    skip = ("config", "family", "processor", "input_hw")
    out = {f.name: getattr(spec, f.name) for f in fields(spec) if f.name not in skip}
    return {**out, "config": dict(spec.config), "family": asdict(spec.family), "processor": dict(spec.processor),
            "input_hw": list(spec.input_hw)}


def spec_from_dict(data: dict) -> ModelSpec:
    family = dict(data["family"])
    family["extra_classes"] = tuple(family.get("extra_classes") or ())
    rest = {k: v for k, v in data.items() if k not in ("config", "family", "processor", "input_hw")}
    return ModelSpec(**rest, family=Family(**family), config=MappingProxyType(dict(data["config"])),
                     processor=MappingProxyType(dict(data["processor"])), input_hw=tuple(data["input_hw"]))


def with_changes(spec: ModelSpec, **changes: Any) -> ModelSpec:
    for key in ("config", "processor"):
        if key in changes:
            changes[key] = MappingProxyType(dict(changes[key]))
    return replace(spec, **changes)
