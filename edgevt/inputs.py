"""Sample inputs: photos (the user's or the built-in set) through the checkpoint's own HF image processor, and seeded noise."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from edgevt.errors import RuntimeUnavailable
from edgevt.images import NOISE_SAMPLES, Folder, ImageOptions, ImageSet, builtin_views

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
    artifact takes for the same samples: RGB 0..255 at the model's size, before rescaling and normalisation. `images`
    says which photos these are; `calibration`, when set, is a separate set int8-static calibrates on."""

    names: list[str]
    batch: np.ndarray  # N x 3 x H x W float32
    is_photo: np.ndarray  # N bools
    pixels: np.ndarray | None = None  # N x 3 x H x W float32, integer-valued 0..255
    images: ImageSet | None = None
    calibration: "SampleSet | None" = None

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
        calibration = self.calibration.as_artifact_samples(input_kind) if self.calibration is not None else None
        return SampleSet(self.names, self.feed(input_kind), self.is_photo, images=self.images, calibration=calibration)

    def calibration_batch(self) -> np.ndarray:
        """What int8-static calibrates on: the separate calibration set when there is one, else these samples' photos."""
        return self.calibration.batch if self.calibration is not None else self.batch[self.is_photo]

    def calibration_images(self) -> ImageSet | None:
        return self.calibration.images if self.calibration is not None else self.images


def photo_dir() -> Path:
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeUnavailable("scikit-image is not installed; its bundled photos are edgevt's sample images", "pip install scikit-image")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def photo_images(count: int | None = None) -> list[tuple[str, object]]:
    """(name, PIL RGB image) for the bundled photos."""
    from PIL import Image

    from edgevt.images import to_rgb

    root = photo_dir()
    out = []
    for name in PHOTOS[:count] if count else PHOTOS:
        with Image.open(root / name) as img:
            out.append((name, to_rgb(img)))
    return out


def preprocess(spec, named: Iterable[tuple[str, object]], with_pixels: bool = True, chunk: int = 16) -> SampleSet:
    """(name, RGB image) pairs through the checkpoint's processor, a few at a time (user photos can be large)."""
    from edgevt.preprocessing import pixels, tensors

    names: list[str] = []
    batches, pixel_batches = [], []

    def flush(group: list) -> None:
        images = [img for _, img in group]
        names.extend(n for n, _ in group)
        batches.append(tensors(spec.processor, images))
        if with_pixels:
            pixel_batches.append(pixels(spec.processor, images))

    group: list = []
    for item in named:
        group.append(item)
        if len(group) == chunk:
            flush(group)
            group = []
    if group:
        flush(group)
    return SampleSet(names, np.concatenate(batches), np.ones(len(names), bool), np.concatenate(pixel_batches) if with_pixels else None)


def photos(spec, count: int | None = None) -> SampleSet:
    """The bundled photos as they are, through the checkpoint's processor (`batch`), and its pixels before normalisation."""
    return preprocess(spec, photo_images(count))


def photo_set(spec, options: ImageOptions, input_kind: str = "tensor") -> SampleSet:
    """The evaluation photos: the user's folder (--images), else the built-in set; capped by --samples."""
    cap, cap_from = options.cap()
    if options.images:
        folder = Folder(options.images, "--images", cap, cap_from)
        samples = preprocess(spec, folder.photos(), input_kind == "image")
        samples.images = folder.set
        return samples
    image_set, views = builtin_views(cap, cap_from)
    samples = preprocess(spec, views, input_kind == "image")
    samples.images = image_set
    return samples


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


def parity_samples(spec, seed: int = 0, n_noise: int = NOISE_SAMPLES, input_kind: str = "tensor", options: ImageOptions | None = None,
                   calibrate: bool = False) -> SampleSet:
    """The evaluation photos plus a few seeded noise samples (tensor noise, or pixel noise for an image-input artifact).

    Every folder is checked first (a missing or empty one is exit 2 before any work). With `calibrate`, a separate
    --calibration-images folder is read too and carried as `calibration`; without one, int8-static calibrates on the
    evaluation photos."""
    options = options or ImageOptions()
    calibration_folder = Folder(options.calibration, "--calibration-images", *options.cap()) if options.calibration else None
    p = photo_set(spec, options, input_kind)
    n = pixel_noise(spec, seed, n_noise) if input_kind == "image" else noise(spec.input_shape, seed, n_noise)
    image = input_kind == "image"
    out = SampleSet(p.names + n.names, np.concatenate([p.batch, n.batch]), np.concatenate([p.is_photo, n.is_photo]),
                    np.concatenate([p.pixels, n.pixels]) if image else None, images=p.images)
    if calibrate and calibration_folder is not None:
        out.calibration = preprocess(spec, calibration_folder.photos(), image)
        out.calibration.images = calibration_folder.set
    return out


def labels() -> list[str]:
    text = (Path(__file__).parent / "data" / "imagenet1k_labels.txt").read_text()
    return [line.split(",")[0] for line in text.splitlines()]
