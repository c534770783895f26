"""The checkpoint's input contract: its own HF image processor, the input size, and what an image-input artifact bakes in.

edgevt never re-implements a processor's semantics: parity and calibration tensors come from the transformers image
processor that the checkpoint's `preprocessor_config.json` (or a registered variant's published one) names, on its
PIL backend, so they are HF's by construction whether or not torchvision is installed.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
from typing import Any, Mapping

import numpy as np

from edgevt.errors import UsageError, first_line

PROCESSOR_FILE = "preprocessor_config.json"
TENSOR_INPUT = "pixel_values"  # the artifact takes the processor's output (normalised float tensor)
IMAGE_INPUT = "image"  # the artifact takes resized RGB pixels 0..255; the checkpoint's normalisation is inside it
INPUT_KINDS = {"tensor": TENSOR_INPUT, "image": IMAGE_INPUT}


def canonical(config: Mapping[str, Any]) -> str:
    return json.dumps(dict(config), sort_keys=True, default=str)


def build_processor(config: Mapping[str, Any]):
    """The HF image processor (PIL backend) for a preprocessor_config.json's content."""
    return _build(canonical(config))


@functools.lru_cache(maxsize=16)
def _build(text: str):
    from transformers import AutoImageProcessor

    with tempfile.TemporaryDirectory(prefix="edgevt-processor-") as tmp:
        path = os.path.join(tmp, PROCESSOR_FILE)
        with open(path, "w") as f:
            f.write(text)
        try:
            return AutoImageProcessor.from_pretrained(path, backend="pil")
        except Exception as exc:  # transformers raises ValueError/KeyError/TypeError for configs it cannot use
            raise UsageError(f"transformers cannot build an image processor from this {PROCESSOR_FILE}: {first_line(exc)}",
                             "check the checkpoint's preprocessor_config.json (image_processor_type, size)") from None


def processor_dict(processor) -> dict:
    """The processor's full, explicit config (defaults filled in): what reports record."""
    data = processor.to_dict()
    data.pop("processor_class", None)
    return json.loads(json.dumps(data, default=lambda v: int(v) if hasattr(v, "__int__") else str(v)))


def output_hw(config: Mapping[str, Any]) -> tuple[int, int]:
    """The size the processor produces, read off its output on a landscape and a portrait image (they must agree)."""
    from PIL import Image

    processor = build_processor(config)
    shapes = {tuple(_run(processor, [Image.new("RGB", size)]).shape[-2:]) for size in ((640, 480), (480, 640))}
    if len(shapes) != 1:
        raise UsageError(f"this image processor produces inputs of varying size ({sorted(shapes)}); an exported model needs "
                         "one fixed size", "pass --input-size H[xW]")
    return next(iter(shapes))


def with_input_size(config: Mapping[str, Any], hw: tuple[int, int]) -> dict:
    """The processor config changed to produce H x W, keeping its recipe (crop ratio, resample, normalisation)."""
    cfg = dict(config)
    height, width = hw
    size = cfg.get("size")
    crop = cfg.get("crop_size") if cfg.get("do_center_crop") else None
    if crop is not None:
        crop_h = crop["height"] if isinstance(crop, dict) else crop
        short = size.get("shortest_edge") if isinstance(size, dict) else size
        cfg["crop_size"] = {"height": height, "width": width}
        if short:
            cfg["size"] = {"shortest_edge": int(round(short * max(height, width) / crop_h))}
        return cfg
    if "ConvNext" in str(cfg.get("image_processor_type") or cfg.get("feature_extractor_type")):
        if height != width:
            raise UsageError(f"the ConvNext image processor makes square inputs only; {height}x{width} is not square",
                             "pass --input-size N")
        cfg["size"] = {"shortest_edge": height}
        return cfg
    if isinstance(size, dict) and set(size) - {"height", "width"}:
        raise UsageError(f"--input-size cannot be applied to this processor's size {size}", "pass a checkpoint whose processor warps to a fixed size")
    cfg["size"] = {"height": height, "width": width}
    return cfg


def _run(processor, images, **overrides) -> np.ndarray:
    return np.asarray(processor(images=images, return_tensors="np", **overrides)["pixel_values"], dtype=np.float32)


def tensors(config: Mapping[str, Any], images: list) -> np.ndarray:
    """What the checkpoint's processor gives the model: N x 3 x H x W float32."""
    return _run(build_processor(config), images)


def pixels(config: Mapping[str, Any], images: list) -> np.ndarray:
    """The processor's resized (and cropped) RGB pixels before rescaling and normalisation: what a camera pipeline hands
    an image-input artifact. Integer-valued float32 0..255, N x 3 x H x W."""
    out = _run(build_processor(config), images, do_rescale=False, do_normalize=False)
    return np.rint(out).astype(np.float32)


def normalize_pixels(config: Mapping[str, Any], batch: np.ndarray) -> np.ndarray:
    """Pixels already at the model's size -> the model's input, by the processor's own rescale and normalise steps."""
    images = [np.ascontiguousarray(x.transpose(1, 2, 0)).astype(np.uint8) for x in batch]
    return _run(build_processor(config), images, do_resize=False, do_center_crop=False)


def normalization(config: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (scale, bias) with model_input = pixels * scale + bias: the processor's rescale and normalise."""
    processor = build_processor(config)
    scale = np.full(3, float(processor.rescale_factor) if processor.do_rescale else 1.0)
    bias = np.zeros(3)
    if processor.do_normalize:
        mean = np.broadcast_to(np.asarray(processor.image_mean, dtype=np.float64), (3,))
        std = np.broadcast_to(np.asarray(processor.image_std, dtype=np.float64), (3,))
        scale, bias = scale / std, -mean / std
    return scale.astype(np.float32), bias.astype(np.float32)


def describe(spec) -> dict:
    """The preprocessing section of reports and `edgevt info`: what was used, and where it came from."""
    processor = build_processor(spec.processor)
    return {"source": spec.processor_source, "origin": spec.processor_origin, "processor": type(processor).__name__,
            "input_size": list(spec.input_hw), "input_size_note": spec.input_size_note, "config": processor_dict(processor)}


def image_input_module(module, config: Mapping[str, Any]):
    """`module` behind the checkpoint's rescale + normalisation: the artifact then takes RGB pixels 0..255."""
    import torch

    scale, bias = normalization(config)

    class ImageInput(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner
            self.register_buffer("scale", torch.from_numpy(scale).view(1, 3, 1, 1))
            self.register_buffer("bias", torch.from_numpy(bias).view(1, 3, 1, 1))

        def forward(self, image):
            return self.inner(image * self.scale + self.bias)

    return ImageInput(module).eval()
