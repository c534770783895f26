"""Turn a resolved ModelSpec and a weights choice into a torch module: one input tensor -> the checkpoint's outputs.

A classifier gives `logits`; a backbone gives what HF's model class returns (`last_hidden_state`, `pooler_output`,
`cls_token_value`, `feature_maps_<i>`), named as HF names them. No tensor of a checkpoint is ever initialised at random:
missing, unexpected or mis-shaped tensors exit 2 naming them.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgevt.errors import WeightsError, first_line
from edgevt.models.checkpoint import PRETRAINED, RANDOM, resolve_spec  # noqa: F401  (resolve_spec: public entry point)
from edgevt.models.registry import ModelSpec

INPUT_NAME = "pixel_values"
SKIPPED_OUTPUTS = ("loss", "hidden_states", "attentions", "reshaped_hidden_states")


@dataclass
class LoadedModel:
    spec: ModelSpec
    module: Any  # torch.nn.Module in eval mode: one input tensor -> a tensor, or a tuple in output_names order
    weights: str  # "random" | "pretrained" | a path
    seed: int | None
    weights_sha256: str
    output_names: tuple[str, ...] = ("logits",)
    input_name: str = INPUT_NAME
    extra: dict = field(default_factory=dict)

    def describe(self) -> dict:
        from edgevt.preprocessing import describe

        spec = self.spec
        return {
            "name": spec.name,
            "source": spec.source,
            "family": spec.family.name,
            "hf_id": spec.hf_id,
            "architecture": spec.model_class,
            "checkpoint": spec.checkpoint if self.weights != RANDOM else None,
            "weights": self.weights,
            "seed": self.seed,
            "weights_sha256": self.weights_sha256,
            "input_name": self.input_name,
            "input_shape": list(spec.input_shape),
            "outputs": list(self.output_names),
            "num_labels": self.extra.get("num_labels"),
            "preprocessing": describe(spec),
        }


class _ForExport:
    """Namespace for the wrapper class (built lazily: torch is imported only when a model is loaded)."""

    cls = None


def _outputs_module(model, names: tuple[str, ...]):
    import torch

    if _ForExport.cls is None:

        class HFOutputs(torch.nn.Module):
            """One tensor in; HF's named outputs out, in a fixed order: what every exporter and runtime expects."""

            def __init__(self, inner, output_names):
                super().__init__()
                self.model = inner
                self.output_names = tuple(output_names)

            def forward(self, pixel_values):
                out = self.model(pixel_values=pixel_values, return_dict=True)
                values = tuple(_pick(out, name) for name in self.output_names)
                return values[0] if len(values) == 1 else values

        _ForExport.cls = HFOutputs
    return _ForExport.cls(model, names).eval()


def _pick(out, name: str):
    if name.startswith("feature_maps_"):
        return out.feature_maps[int(name.rsplit("_", 1)[1])]
    return getattr(out, name)


def output_names(model, shape) -> tuple[str, ...]:
    """The tensors HF's forward returns for this checkpoint, in order (one probe forward on zeros)."""
    import torch

    with torch.no_grad():
        out = model(pixel_values=torch.zeros(shape), return_dict=True)
    names: list[str] = []
    for key, value in out.items():
        if key in SKIPPED_OUTPUTS:
            continue
        if isinstance(value, torch.Tensor):
            names.append(key)
        elif isinstance(value, (tuple, list)) and all(isinstance(v, torch.Tensor) for v in value):
            names += [f"{key}_{i}" for i in range(len(value))]
    return tuple(names)


def load_model(spec: ModelSpec, weights: str = PRETRAINED, seed: int = 0) -> LoadedModel:
    """weights: "pretrained" (the checkpoint's own: a directory, or from_pretrained through the HF cache), "random",
    or a path (an HF model directory or a weights file)."""
    import torch

    torch.manual_seed(seed)
    if weights == RANDOM:
        model = build_random(spec, seed)
    elif weights == PRETRAINED:
        model = from_pretrained(spec, spec.checkpoint or spec.hf_id)
    else:
        model = _from_path(spec, Path(weights))
    names = output_names(model, spec.input_shape)
    module = _outputs_module(model, names)
    num_labels = getattr(model.config, "num_labels", None) if "logits" in names else None
    return LoadedModel(spec, module, weights, seed if weights == RANDOM else None, state_digest(module), names,
                       extra={"num_labels": num_labels})


def _classes(spec: ModelSpec):
    import transformers

    return getattr(transformers, spec.family.config_class), getattr(transformers, spec.model_class)


def build_random(spec: ModelSpec, seed: int):
    """Seeded random weights whose outputs are of ordinary scale and depend on the input.

    HF's own init gives SwiftFormer logits of ~1e-4 (layer scale 1e-5) and CvT logits that ignore the
    input; parity on either proves nothing. Fan-in scaled weights, non-trivial norm affine parameters
    and BatchNorm statistics (so BN folding is exercised) give logits with std of about 1-3.
    """
    import torch

    config_cls, model_cls = _classes(spec)
    module = model_cls(config_cls.from_dict(dict(spec.config))).eval()
    gen = torch.Generator().manual_seed(seed)

    def normal(t, std):
        return torch.randn(t.shape, generator=gen) * std

    with torch.no_grad():
        for mod in module.modules():
            if isinstance(mod, (torch.nn.Linear, torch.nn.Conv2d)):
                mod.weight.copy_(normal(mod.weight, 1.0 / math.sqrt(mod.weight[0].numel())))
                if mod.bias is not None:
                    mod.bias.copy_(normal(mod.bias, 0.02))
            elif isinstance(mod, (torch.nn.LayerNorm, torch.nn.BatchNorm2d, torch.nn.GroupNorm)):
                if mod.weight is not None:
                    mod.weight.copy_(1.0 + normal(mod.weight, 0.1))
                    mod.bias.copy_(normal(mod.bias, 0.1))
                if isinstance(mod, torch.nn.BatchNorm2d):
                    mod.running_mean.copy_(normal(mod.running_mean, 0.1))
                    mod.running_var.copy_(torch.rand(mod.running_var.shape, generator=gen) + 0.5)
        if spec.family.layer_scale_init is not None:
            scale = spec.family.layer_scale_init
            for name, param in module.named_parameters():
                if "layer_scale" in name:
                    param.copy_(scale + normal(param, scale * 0.1))
    return module


def _names(keys, limit: int = 4) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:limit]) + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def from_pretrained(spec: ModelSpec, source: str):
    """from_pretrained of the checkpoint's own class; every tensor must come from the checkpoint."""
    from edgevt.models.checkpoint import hub_offline

    _, model_cls = _classes(spec)
    local = Path(source).is_dir()
    try:
        module, info = model_cls.from_pretrained(source, output_loading_info=True)
    except OSError as exc:
        if local:
            raise WeightsError(f"cannot load the weights in {source}: {first_line(exc)}",
                               "the directory needs model.safetensors (or pytorch_model.bin) as save_pretrained writes it") from None
        raise WeightsError(
            f"cannot load pretrained weights for {spec.name} from {source!r}{' (HF_HUB_OFFLINE is set)' if hub_offline() else ''}: "
            f"{first_line(exc)}",
            "the Hugging Face Hub is unreachable and the weights are not cached: use `--weights random --seed N` for parity "
            "work, or `--weights PATH` with a local model directory or .safetensors file"
            + ("" if hub_offline() else "; set HF_HUB_OFFLINE=1 to skip the Hub's network retries"),
        ) from None
    except Exception as exc:  # a corrupt or untrusted weights file: safetensors/torch raise their own types
        raise WeightsError(f"cannot read the weights of {source}: {type(exc).__name__}: {first_line(exc)}",
                           "re-save the checkpoint with save_pretrained (safetensors); edgevt never unpickles code") from None
    _check_loading(source, info, spec.model_class)
    return module.eval()


def _check_loading(source: str, info: dict, cls: str) -> None:
    missing = [k for k in info.get("missing_keys", []) if not k.endswith("num_batches_tracked")]
    unexpected = list(info.get("unexpected_keys", []))
    mismatched = [f"{k[0]} {tuple(k[1])} vs {tuple(k[2])}" if isinstance(k, (tuple, list)) and len(k) == 3 else str(k)
                  for k in info.get("mismatched_keys", [])]
    problems = []
    if missing:
        problems.append(f"{len(missing)} tensors of {cls} are missing from it ({_names(missing)})")
    if unexpected:
        problems.append(f"{len(unexpected)} of its tensors are not part of {cls} ({_names(unexpected)})")
    if mismatched:
        problems.append(f"{len(mismatched)} tensors have other shapes ({_names(mismatched)})")
    if problems:
        raise WeightsError(f"{source} does not fit {cls}: " + "; ".join(problems),
                           "edgevt never exports randomly initialised tensors: pass the complete checkpoint "
                           "(and, for a network without its head, one saved as the base model, e.g. SwinModel)")


def _from_path(spec: ModelSpec, path: Path):
    if not path.exists():
        raise WeightsError(f"weights path {str(path)!r} does not exist", "pass a local HF model directory or a .safetensors file")
    if path.is_dir():
        return from_pretrained(spec, str(path))
    module = build_random(spec, 0)
    state = _read_state_dict(path)
    missing, unexpected = module.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise WeightsError(
            f"{path} does not fit {spec.name} ({spec.model_class}): {len(missing)} missing tensors"
            f"{f' ({_names(missing)})' if missing else ''}, {len(unexpected)} unexpected"
            f"{f' ({_names(unexpected)})' if unexpected else ''}",
            "check that the file holds weights of this variant (same config) in HF naming",
        )
    return module.eval()


def _read_state_dict(path: Path) -> dict:
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as exc:  # safetensors raises SafetensorError (and OSError) for files that are not safetensors
            raise WeightsError(f"{path} is not a readable .safetensors file ({type(exc).__name__}: {first_line(exc)})",
                               "re-save the weights with safetensors (model.save_pretrained or safetensors.torch.save_file)") from None
    if suffix in (".bin", ".pt", ".pth"):
        import torch

        try:
            return torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as exc:  # weights_only refuses arbitrary pickles: that is the point
            raise WeightsError(
                f"{path} is not a plain tensor checkpoint ({type(exc).__name__}); edgevt never unpickles code",
                "convert it to .safetensors",
            ) from None
    raise WeightsError(f"unsupported weights file {path.name}", "use a .safetensors file or an HF model directory")


def state_digest(module) -> str:
    """sha256 over every parameter and buffer: identifies the exact reference a report was made against."""
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def for_artifact(loaded: LoadedModel, input_kind: str) -> LoadedModel:
    """The module an exporter converts: for an image-input artifact, behind the checkpoint's own normalisation."""
    from dataclasses import replace

    from edgevt.preprocessing import IMAGE_INPUT, image_input_module

    if input_kind != "image":
        return loaded
    return replace(loaded, module=image_input_module(loaded.module, loaded.spec.processor), input_name=IMAGE_INPUT)
