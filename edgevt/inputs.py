"""Sample inputs: real photos through the checkpoint's own HF image processor, and seeded noise."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgevt.errors import RuntimeUnavailable

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
    """Model inputs for parity/calibration; `is_photo[i]` marks real photos (top-k agreement is on those).

    `batch` is what the PyTorch model takes (the processor's output); `pixels`, when present, is what an image-input
    artifact takes for the same samples: RGB 0..255 at the model's size, before rescaling and normalisation."""

    names: list[str]
    batch: np.ndarray  # N x 3 x H x W float32
    is_photo: np.ndarray  # N bools
    pixels: np.ndarray | None = None  # N x 3 x H x W float32, integer-valued 0..255

    def __len__(self) -> int:
        return len(self.names)

    def feed(self, input_kind: str) -> np.ndarray:
        """What an artifact with this kind of input is given: the pixels for "image", the model's tensors otherwise."""
        if input_kind == "image":
            if self.pixels is None:
                raise ValueError("these samples have no pixels")  # a programming error: image samples are built with them
            return self.pixels
        return self.batch

    def as_artifact_samples(self, input_kind: str) -> "SampleSet":
        return SampleSet(self.names, self.feed(input_kind), self.is_photo)


def photo_dir() -> Path:
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeUnavailable("scikit-image is not installed; its bundled photos are edgevt's sample images", "pip install scikit-image")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def photo_images(count: int | None = None) -> list[tuple[str, object]]:
    """(name, PIL RGB image) for the bundled photos."""
    from PIL import Image

    root = photo_dir()
    out = []
    for name in PHOTOS[:count] if count else PHOTOS:
        with Image.open(root / name) as img:
            out.append((name, img.convert("RGB")))
    return out


def photos(spec, count: int | None = None) -> SampleSet:
    """The photos through the checkpoint's processor (`batch`), and the processor's pixels before normalisation."""
    from edgevt.preprocessing import pixels, tensors

    named = photo_images(count)
    images = [img for _, img in named]
    return SampleSet([n for n, _ in named], tensors(spec.processor, images), np.ones(len(named), bool), pixels(spec.processor, images))


def noise(shape: tuple[int, ...], seed: int, count: int) -> SampleSet:
    """Seeded standard-normal tensors in the model's input space: they probe regions photos never reach."""
    rng = np.random.default_rng(seed)
    batch = rng.standard_normal((count, *shape[1:]), dtype=np.float32)
    return SampleSet([f"noise-{seed}-{i}" for i in range(count)], batch, np.zeros(count, bool))


def pixel_noise(spec, seed: int, count: int) -> SampleSet:
    """Seeded uniform RGB noise at the model's size, and the processor's normalisation of it: noise an image-input
    artifact can be fed."""
    from edgevt.preprocessing import normalize_pixels

    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(count, *spec.input_shape[1:])).astype(np.float32)
    batch = normalize_pixels(spec.processor, pixels)
    return SampleSet([f"pixel-noise-{seed}-{i}" for i in range(count)], batch, np.zeros(count, bool), pixels)


def parity_samples(spec, seed: int = 0, n_noise: int = 2, input_kind: str = "tensor") -> SampleSet:
    """The photos plus a few seeded noise samples (tensor noise, or pixel noise for an image-input artifact)."""
    p = photos(spec)
    n = pixel_noise(spec, seed, n_noise) if input_kind == "image" else noise(spec.input_shape, seed, n_noise)
    pixels = np.concatenate([p.pixels, n.pixels]) if input_kind == "image" else p.pixels
    return SampleSet(p.names + n.names, np.concatenate([p.batch, n.batch]), np.concatenate([p.is_photo, n.is_photo]),
                     pixels if input_kind == "image" else None)


def labels() -> list[str]:
    text = (Path(__file__).parent / "data" / "imagenet1k_labels.txt").read_text()
    return [line.split(",")[0] for line in text.splitlines()]
