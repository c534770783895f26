"""Photos made with PIL inside the tests (no binary files in the repository): noise photos and a mixed-format folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np

RED, BLUE = (220, 20, 20), (20, 20, 220)


def noise_photo(size=(48, 32), seed=0):
    """A seeded RGB noise photo (width, height): different seeds give different content."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB")


def photo_folder(folder: Path, seeds: dict[str, int], size=(64, 48)) -> Path:
    """file name -> seed: a folder of noise photos (the format follows the file's extension)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, seed in seeds.items():
        noise_photo(size, seed).save(folder / name)
    return folder


def rotated_jpeg(path: Path) -> None:
    """Stored 40x20, left half red, right half blue, EXIF orientation 6: shown upright it is 20x40, red on top."""
    from PIL import Image

    img = Image.new("RGB", (40, 20), BLUE)
    img.paste(RED, (0, 0, 20, 20))
    exif = Image.Exif()
    exif[0x0112] = 6
    img.save(path, "JPEG", quality=95, exif=exif.tobytes())


def mixed_folder(root: Path) -> Path:
    """Photos in every common shape of trouble (grayscale, RGBA, EXIF-rotated, webp, CMYK in a sub-folder), a text file
    and a truncated JPEG. Readable in sorted order: gray.png, photo.webp, rgba.png, rotated.jpg, sub/cmyk.jpg."""
    from PIL import Image

    (root / "sub").mkdir(parents=True)
    Image.fromarray(np.tile(np.arange(0, 240, 5, dtype=np.uint8), (32, 1)), "L").save(root / "gray.png")
    rgba = np.zeros((32, 48, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:, 24:, 3] = 255  # left half fully transparent
    Image.fromarray(rgba, "RGBA").save(root / "rgba.png")
    rotated_jpeg(root / "rotated.jpg")
    noise_photo(seed=1).save(root / "photo.webp", "WEBP")
    noise_photo(seed=2).convert("CMYK").save(root / "sub" / "cmyk.jpg", "JPEG")
    (root / "notes.txt").write_text("not a photo\n")
    whole = root / "whole.jpg"
    noise_photo((256, 256), seed=3).save(whole, "JPEG", quality=95)
    data = whole.read_bytes()
    (root / "broken.jpg").write_bytes(data[: len(data) // 2])  # a header, then half the data: opens, fails to decode
    whole.unlink()
    return root


def natural_folder(folder: Path, count: int = 3, view: str = "crop60-tl") -> Path:
    """`count` real photos as PNG files: one view (a crop by default) of each of the first bundled photos. Calibrating
    int8 on noise photos would skew the ranges; these are natural images, and none equals one of the 8 originals."""
    from edgevt.images import VIEWS, derive
    from edgevt.inputs import photo_images

    folder.mkdir(parents=True, exist_ok=True)
    spec = next(v for v in VIEWS if v[0] == view)
    for name, photo in photo_images(count):
        derive(photo, spec).save(folder / f"{Path(name).stem}-{view}.png")
    return folder
