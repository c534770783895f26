"""Sample inputs: real photos preprocessed as each variant's HF image processor does, and seeded noise."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgevt.errors import RuntimeUnavailable
from edgevt.models.registry import Preprocess

# Colour photographs that scikit-image ships inside its wheel (no network needed).
PHOTOS = (
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "hubble_deep_field.jpg",
    "retina.jpg",
    "ihc.png",
)


@dataclass
class SampleSet:
    """Model inputs for parity/calibration; `is_photo[i]` marks real photos (top-k agreement is on those)."""

    names: list[str]
    batch: np.ndarray  # N x 3 x H x W float32
    is_photo: np.ndarray  # N bools

    def __len__(self) -> int:
        return len(self.names)


def photo_dir() -> Path:
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeUnavailable("scikit-image is not installed; its bundled photos are edgevt's sample images", "pip install scikit-image")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def load_photo(path: Path, pre: Preprocess) -> np.ndarray:
    from PIL import Image

    resample = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR}[pre.resample]
    with Image.open(path) as img:
        img = img.convert("RGB")
        if pre.resize_shortest is None:
            img = img.resize((pre.size, pre.size), resample)
        else:
            w, h = img.size
            scale = pre.resize_shortest / min(w, h)
            img = img.resize((max(pre.size, round(w * scale)), max(pre.size, round(h * scale))), resample)
            left, top = (img.width - pre.size) // 2, (img.height - pre.size) // 2
            img = img.crop((left, top, left + pre.size, top + pre.size))
        arr = np.asarray(img, dtype=np.float32) / 255.0
    arr = (arr - np.asarray(pre.mean, np.float32)) / np.asarray(pre.std, np.float32)
    return arr.transpose(2, 0, 1).copy()


def photos(pre: Preprocess, count: int | None = None) -> SampleSet:
    root = photo_dir()
    names = list(PHOTOS[:count] if count else PHOTOS)
    batch = np.stack([load_photo(root / n, pre) for n in names]).astype(np.float32)
    return SampleSet(names, batch, np.ones(len(names), bool))


def noise(shape: tuple[int, ...], seed: int, count: int) -> SampleSet:
    rng = np.random.default_rng(seed)
    batch = rng.standard_normal((count, *shape[1:]), dtype=np.float32)
    return SampleSet([f"noise-{seed}-{i}" for i in range(count)], batch, np.zeros(count, bool))


def parity_samples(pre: Preprocess, seed: int = 0, n_noise: int = 2) -> SampleSet:
    """The photos plus a few seeded noise tensors (noise probes regions photos never reach)."""
    p = photos(pre)
    n = noise((1, 3, pre.size, pre.size), seed, n_noise)
    return SampleSet(p.names + n.names, np.concatenate([p.batch, n.batch]), np.concatenate([p.is_photo, n.is_photo]))


def labels() -> list[str]:
    text = (Path(__file__).parent / "data" / "imagenet1k_labels.txt").read_text()
    return [line.split(",")[0] for line in text.splitlines()]
