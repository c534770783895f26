"""Fine-tuned-style checkpoints on tiny configs, as users bring them: save_pretrained of seeded weights scaled to give
outputs of ordinary size, their own class count, and their own preprocessor_config.json (non-ImageNet mean/std,
bilinear resizing; for CvT a size that only the processor states)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from edgevt.models.loading import build_random
from edgevt.models.registry import get_spec, with_changes

HALF = [0.5, 0.5, 0.5]
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
FAMILIES = ("swiftformer", "swin", "swinv2", "cvt")
CVT_SIZE = 96  # CvtConfig has no image_size: this size lives only in the processor


def processor_config(family: str, mean=HALF, std=HALF) -> dict:
    if family == "cvt":  # ConvNext: shortest edge int(96 / 0.875) = 109, centre crop 96, bilinear
        return {"image_processor_type": "ConvNextImageProcessor", "do_resize": True, "size": {"shortest_edge": CVT_SIZE},
                "crop_pct": 0.875, "resample": 2, "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
                "image_mean": mean, "image_std": std}
    return {"image_processor_type": "ViTImageProcessor", "do_resize": True, "size": {"height": 64, "width": 64}, "resample": 2,
            "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True, "image_mean": mean, "image_std": std}


def fine_tuned(root: Path, family: str, num_labels: int = 5, backbone: bool = False, seed: int = 0, **config) -> Path:
    """A directory as save_pretrained writes it, for the tiny config of `family`."""
    spec = get_spec(f"tiny-{family}")
    cfg = {**spec.config, **config}
    if family == "swiftformer":
        cfg.pop("image_size", None)  # HF SwiftFormer ignores image_size; a fine-tune keeps the default 224
    if not backbone:
        cfg.update(num_labels=num_labels, id2label={str(i): f"class_{i}" for i in range(num_labels)},
                   label2id={f"class_{i}": i for i in range(num_labels)})
    arch = spec.family.backbone_class if backbone else spec.family.model_class
    module = build_random(with_changes(spec, config=cfg, architecture=arch), seed)
    path = root / f"{family}-{'backbone' if backbone else 'finetuned'}-{seed}"
    module.save_pretrained(path)
    (path / "preprocessor_config.json").write_text(json.dumps(processor_config(family), indent=2))
    return path


def with_processor(src: Path, dst: Path, **changes) -> Path:
    """The same weights and config with another preprocessor_config.json (e.g. ImageNet mean/std)."""
    shutil.copytree(src, dst)
    cfg = json.loads((src / "preprocessor_config.json").read_text())
    (dst / "preprocessor_config.json").write_text(json.dumps({**cfg, **changes}))
    return dst
