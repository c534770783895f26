"""Name + weights -> the ModelSpec actually exported: the checkpoint's own architecture, config, processor and input size.

Every place where a checkpoint states something (its class, its config, its preprocessor_config.json, its size) the
checkpoint wins; the registry fills in only what a checkpoint cannot state (random weights, a bare weights file).
A weights directory given for a registered name must hold that variant: anything else exits 2 naming what differs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from edgevt.errors import UsageError, WeightsError, first_line
from edgevt.models.registry import (
    FROM_CHECKPOINT,
    FROM_FAMILY,
    FROM_REGISTRY,
    ModelSpec,
    family_for_model_type,
    family_processor,
    get_spec,
    supported_model_types,
    with_changes,
)

# Config keys that do not change what a model computes in eval mode (or are bookkeeping).
NOT_IDENTITY = {"_name_or_path", "transformers_version", "architectures", "dtype", "torch_dtype", "id2label", "label2id",
                "return_dict", "output_hidden_states", "output_attentions", "chunk_size_feed_forward", "is_encoder_decoder",
                "problem_type", "initializer_range", "layer_scale_init_value", "tie_word_embeddings", "use_cache",
                "out_features", "out_indices", "stage_names", "model_type", "num_labels"}
RANDOM, PRETRAINED = "random", "pretrained"


def read_json(path: Path, what: str) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path} is not a readable {what} ({type(exc).__name__}: {first_line(exc)})",
                         "a model directory is what save_pretrained writes: config.json, the weights and preprocessor_config.json")
    if not isinstance(data, dict):
        raise UsageError(f"{path} is not a {what}: expected a JSON object")
    return data


def model_dir(text: str) -> Path | None:
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise UsageError(f"{path} is a directory without config.json", "pass a model directory written by save_pretrained")
        return path.resolve()
    return None


def _family_of(config: dict, where: str):
    model_type = config.get("model_type")
    family = family_for_model_type(str(model_type))
    if family is None:
        arch = ", ".join(config.get("architectures") or []) or "no architecture named"
        raise UsageError(f"{where} holds a {model_type!r} model ({arch}); edgevt exports {supported_model_types()} models")
    return family


def architecture(config: dict, family, where: str) -> str:
    """The HF class the checkpoint was saved as; a checkpoint that names none is taken as the family's classifier."""
    named = config.get("architectures") or []
    if not named:
        return family.model_class
    supported = [a for a in named if a in family.classes]
    if not supported:
        raise UsageError(f"{where} is a {named[0]}; edgevt exports {', '.join(family.classes)}",
                         "save the checkpoint as one of those classes (save_pretrained of the model you trained)")
    return supported[0]


def _normalized(family, config: dict) -> dict:
    import transformers

    cls = getattr(transformers, family.config_class)
    clean = {k: v for k, v in config.items() if k not in ("architectures", "model_type", "transformers_version", "_name_or_path")}
    data = json.loads(json.dumps(cls.from_dict(clean).to_dict(), default=str))
    data["num_labels"] = len(config.get("id2label") or {}) or config.get("num_labels", 2)
    return data


def identity_differences(spec: ModelSpec, config: dict) -> list[str]:
    """Every config field that changes what the network computes and differs between the registered variant and a
    checkpoint's config (architecture-shaping fields, activations, eps, image size, class count)."""
    import transformers

    family = spec.family
    known = set(getattr(transformers, family.config_class)().to_dict())
    mine, theirs = _normalized(family, dict(spec.config)), _normalized(family, config)
    ignored = NOT_IDENTITY - {"num_labels"} | ({"image_size"} if not family.sized_by_config else set())  # SwiftFormer ignores it
    keys = sorted(k for k in (known | {"num_labels"}) if k not in ignored and "drop" not in k)
    return [f"{k} {theirs.get(k)!r} (a {spec.name} has {mine.get(k)!r})" for k in keys if mine.get(k) != theirs.get(k)]


def check_identity(spec: ModelSpec, directory: Path, config: dict) -> str:
    """A weights directory for a registered name holds that variant, as its classifier; returns its class."""
    family = _family_of(config, str(directory))
    hint = f"to export your own checkpoint as it is, pass the directory as MODEL: edgevt export {directory}"
    if family.name != spec.family.name:
        raise UsageError(f"{directory} holds a {family.name} model; {spec.name} is a {spec.family.name} model", hint)
    arch = architecture(config, family, str(directory))
    if arch != spec.family.model_class:
        raise UsageError(f"{directory} holds a {arch}; {spec.name} is registered as {spec.family.model_class}", hint)
    differences = identity_differences(spec, config)
    if differences:
        raise UsageError(f"{directory} does not hold {spec.name}: " + "; ".join(differences), hint)
    return arch


def _hub_file(hf_id: str, filename: str, download: bool) -> Path | None:
    """A file of a Hub repository from the local HF cache (and, if `download`, from the Hub); None if it has none."""
    from huggingface_hub import hf_hub_download, try_to_load_from_cache
    from huggingface_hub.errors import EntryNotFoundError

    cached = try_to_load_from_cache(hf_id, filename)
    if isinstance(cached, str):
        return Path(cached)
    if not download:
        return None
    try:
        return Path(hf_hub_download(hf_id, filename))
    except EntryNotFoundError:
        return None
    except Exception as exc:  # offline, unreachable, private: the checkpoint's contract cannot be read
        raise WeightsError(f"cannot read {filename} of {hf_id!r} (no network and not in the HF cache): {first_line(exc)}",
                           "use a registered name (`edgevt list`) or a local model directory") from None


def hub_config(hf_id: str) -> dict:
    path = _hub_file(hf_id, "config.json", download=True)
    if path is None:
        raise UsageError(f"{hf_id!r} has no config.json", "pass a Hugging Face model repository or a local model directory")
    return read_json(path, "model config.json")


def _adhoc(source: str, config: dict, checkpoint: str) -> ModelSpec:
    family = _family_of(config, source)
    arch = architecture(config, family, source)
    size = int(config.get("image_size") or 224)
    cfg = {k: v for k, v in config.items() if not k.startswith("_") and k not in ("architectures", "model_type", "transformers_version")}
    return ModelSpec(source, family, checkpoint, cfg, family_processor(family, size), (size, size), registered=False,
                     architecture=arch, processor_source=FROM_FAMILY, processor_origin=f"edgevt's {family.name} default",
                     checkpoint=checkpoint, labels="checkpoint's id2label", notes="")


def _processor_file(spec: ModelSpec, directory: Path | None, weights: str) -> Path | None:
    if directory is not None:
        path = directory / "preprocessor_config.json"
        return path if path.is_file() else None
    if weights == PRETRAINED and spec.checkpoint:
        # a registered variant's published processor is in the registry: only a cached copy is worth a look
        return _hub_file(spec.checkpoint, "preprocessor_config.json", download=not spec.registered)
    return None


def _base(model: str) -> tuple[ModelSpec, Path | None]:
    directory = model_dir(model)
    if directory is not None:
        config = read_json(directory / "config.json", "model config.json")
        return _adhoc(str(directory), config, str(directory)), directory
    if "/" in model and not Path(model).exists():
        try:
            return with_changes(get_spec(model), checkpoint=get_spec(model).hf_id), None
        except UsageError:
            return _adhoc(model, hub_config(model), model), None
    spec = get_spec(model)
    return with_changes(spec, checkpoint=spec.hf_id), None


def _choose_input_size(spec: ModelSpec, override: tuple[int, int] | None) -> ModelSpec:
    """--input-size, else the config's image_size where it shapes the network (Swin), else what the processor makes
    (SwiftFormer ignores its config's image_size, CvT has none); the processor is then made to produce that size."""
    from edgevt.preprocessing import output_hw, with_input_size

    made = output_hw(spec.processor)
    image_size = spec.config.get("image_size") if spec.family.sized_by_config else None
    if override:
        hw, note = tuple(override), f"--input-size {override[0]}x{override[1]} (the processor makes {made[0]}x{made[1]})"
    elif image_size:
        size = image_size if isinstance(image_size, int) else image_size[0]
        hw, note = (int(size), int(size)), None
        if tuple(made) != hw:
            note = f"config image_size {size} disagrees with the processor's {made[0]}x{made[1]}; exported at {size}"
    else:
        hw, note = tuple(made), None
    processor = spec.processor if tuple(made) == hw else with_input_size(spec.processor, hw)
    if output_hw(processor) != hw:
        raise UsageError(f"cannot make this checkpoint's processor produce {hw[0]}x{hw[1]} inputs", "pass another --input-size")
    return with_changes(spec, input_hw=hw, processor=processor, input_size_note=note)


def resolve_spec(model: str, weights: str = PRETRAINED, input_size: tuple[int, int] | None = None) -> ModelSpec:
    """A registered name, HF id or model directory, plus the weights choice -> the spec to export."""
    spec, directory = _base(model)
    weights_dir = model_dir(weights) if weights not in (RANDOM, PRETRAINED) else None
    if weights_dir is not None:
        config = read_json(weights_dir / "config.json", "model config.json")
        if spec.registered:
            check_identity(spec, weights_dir, config)
            spec = with_changes(spec, checkpoint=str(weights_dir))
        else:  # weights for an ad-hoc model: the same network as the model's own config describes
            family = _family_of(config, str(weights_dir))
            differences = identity_differences(spec, config) if family.name == spec.family.name else [f"a {family.name} model"]
            if not differences and architecture(config, family, str(weights_dir)) != spec.model_class:
                differences = [f"a {architecture(config, family, str(weights_dir))}, not a {spec.model_class}"]
            if differences:
                raise UsageError(f"{weights_dir} does not hold the model {spec.name} describes: " + "; ".join(differences))
        directory = weights_dir
    found = _processor_file(spec, directory, weights)
    if found is not None:
        spec = with_changes(spec, processor=read_json(found, PROCESSOR_NAME), processor_source=FROM_CHECKPOINT,
                            processor_origin=str(found) if directory else f"{spec.checkpoint} (cached {found.name})")
    elif spec.registered:
        spec = with_changes(spec, processor_source=FROM_REGISTRY)
    return _choose_input_size(spec, input_size)


PROCESSOR_NAME = "preprocessor_config.json"


def parse_input_size(text: str | None) -> tuple[int, int] | None:
    """'384' or '320x256' (H x W)."""
    if not text:
        return None
    parts = str(text).lower().split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) not in (1, 2) or not all(16 <= v <= 4096 for v in values):
        raise UsageError(f"--input-size {text!r}: expected N or HxW with sides from 16 to 4096", "e.g. --input-size 384")
    return (values[0], values[-1])


def describe_source(spec: ModelSpec, weights: str) -> dict[str, Any]:
    return {"source": spec.source, "checkpoint": spec.checkpoint if weights != RANDOM else None,
            "architecture": spec.model_class, "registered": spec.registered}


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
