"""Turn a ModelSpec and a weights choice into a torch module that maps pixel_values -> logits."""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgevt.errors import UsageError, WeightsError, first_line
from edgevt.models.registry import ModelSpec, Preprocess, family_for_model_type, get_spec

OUTPUT_NAMES = ("logits",)
INPUT_NAME = "pixel_values"


@dataclass
class LoadedModel:
    spec: ModelSpec
    module: Any  # torch.nn.Module in eval mode: pixel_values -> logits
    weights: str  # "random" | "pretrained" | a path
    seed: int | None
    weights_sha256: str

    @property
    def output_names(self) -> tuple[str, ...]:
        return OUTPUT_NAMES

    def describe(self) -> dict:
        return {
            "name": self.spec.name,
            "family": self.spec.family.name,
            "hf_id": self.spec.hf_id,
            "weights": self.weights,
            "seed": self.seed,
            "weights_sha256": self.weights_sha256,
            "input_shape": list(self.spec.input_shape),
        }


def resolve_spec(name: str) -> ModelSpec:
    """A registered name, or any HF id / local directory whose config is of a supported architecture."""
    path = Path(name)
    if path.is_dir() and (path / "config.json").is_file():
        return _adhoc_spec(name, json.loads((path / "config.json").read_text()))
    if "/" in name and not path.exists():
        try:
            return get_spec(name)
        except UsageError:
            return _adhoc_spec(name, _hub_config(name))
    return get_spec(name)


def _hub_config(hf_id: str) -> dict:
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(hf_id).to_dict()
    except OSError as exc:
        raise WeightsError(
            f"cannot read the config of {hf_id!r} (no network and not in the HF cache): {exc}",
            "use a registered name (`edgevt list`) or a local model directory",
        ) from None


def _adhoc_spec(source: str, config: dict) -> ModelSpec:
    family = family_for_model_type(config.get("model_type", ""))
    if family is None:
        raise UsageError(
            f"{source!r} is a {config.get('model_type')!r} model; edgevt supports "
            "swiftformer, swin, swinv2 and cvt",
        )
    size = int(config.get("image_size", 224))
    cfg = {k: v for k, v in config.items() if not k.startswith("_") and k not in ("architectures", "model_type")}
    return ModelSpec(source, family, source, cfg, Preprocess(size=size), registered=False)


def _classifier(module):
    import torch

    class Classifier(torch.nn.Module):
        """Single-tensor in, single-tensor out: what every exporter and runtime expects."""

        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, pixel_values):
            return self.model(pixel_values=pixel_values).logits

    return Classifier(module).eval()


def _model_class(spec: ModelSpec):
    import transformers

    return getattr(transformers, spec.family.config_class), getattr(transformers, spec.family.model_class)


def load_model(spec: ModelSpec, weights: str = "pretrained", seed: int = 0) -> LoadedModel:
    """weights: "pretrained" (from_pretrained, HF cache, HF_HUB_OFFLINE honoured), "random", or a path."""
    import torch

    torch.manual_seed(seed)
    if weights == "random":
        module = build_random(spec, seed)
    elif weights == "pretrained":
        module = _from_pretrained(spec, spec.hf_id)
    else:
        module = _from_path(spec, Path(weights))
    module = _classifier(module)
    return LoadedModel(spec, module, weights, seed if weights == "random" else None, state_digest(module))


def build_random(spec: ModelSpec, seed: int):
    """Seeded random weights whose logits are of ordinary scale and depend on the input.

    HF's own init gives SwiftFormer logits of ~1e-4 (layer scale 1e-5) and CvT logits that ignore the
    input; parity on either proves nothing. Fan-in scaled weights, non-trivial norm affine parameters
    and BatchNorm statistics (so BN folding is exercised) give logits with std of about 1-3.
    """
    import torch

    config_cls, model_cls = _model_class(spec)
    module = model_cls(config_cls(**dict(spec.config))).eval()
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


def _from_pretrained(spec: ModelSpec, source: str):
    _, model_cls = _model_class(spec)
    try:
        return model_cls.from_pretrained(source, use_safetensors=None).eval()
    except OSError as exc:
        offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
        raise WeightsError(
            f"cannot load pretrained weights for {spec.name} from {source!r}"
            f"{' (HF_HUB_OFFLINE is set)' if offline else ''}: {first_line(exc)}",
            "the Hugging Face Hub is unreachable and the weights are not cached: use "
            "`--weights random --seed N` for parity work, or `--weights PATH` with a local model "
            "directory or .safetensors file"
            + ("" if offline else "; set HF_HUB_OFFLINE=1 to skip the Hub's network retries"),
        ) from None


def _from_path(spec: ModelSpec, path: Path):
    if not path.exists():
        raise WeightsError(f"weights path {str(path)!r} does not exist", "pass a local HF model directory or a .safetensors file")
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise WeightsError(f"{path} has no config.json", "point --weights at an HF model directory (save_pretrained output)")
        return _from_pretrained(spec, str(path))
    module = build_random(spec, 0)
    state = _read_state_dict(path)
    missing, unexpected = module.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise WeightsError(
            f"{path} does not fit {spec.name}: {len(missing)} missing keys (e.g. {missing[:2]}), "
            f"{len(unexpected)} unexpected (e.g. {unexpected[:2]})",
            "check that the file holds weights of this variant (same config) in HF naming",
        )
    return module.eval()


def _read_state_dict(path: Path) -> dict:
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
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
