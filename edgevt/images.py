"""Which photos parity and calibration run on: the user's folders (--images, --calibration-images) or the built-in set.

A photo is opened the way a Hugging Face pipeline opens one: PIL, EXIF orientation applied, then transformers'
own `convert_to_rgb` (grayscale, palette and CMYK to RGB; transparency composited on white). Photos are compared by
content (a digest of those RGB pixels), never by file name, so a photo copied under another name into the
calibration folder still counts as shared with the evaluation set.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from edgevt.errors import UsageError, first_line

NOISE_SAMPLES = 2  # seeded noise tensors added to every parity set: they probe what photos never reach
SAMPLES_ENV = "EDGEVT_SAMPLES"  # default for --samples (e.g. a CI job on tiny models); reports say where a cap came from

# The built-in set: every bundled photo seen whole, mirrored, and cropped at several scales and positions (crops keep
# the photo's aspect ratio). Crops and mirroring are exact pixel operations on the original photo; each view then
# goes through the checkpoint's own processor like any photo. 8 photos x 13 views = 104 images.
POSITIONS = {"c": (0.5, 0.5), "tl": (0.0, 0.0), "tr": (1.0, 0.0), "bl": (0.0, 1.0), "br": (1.0, 1.0)}
VIEWS = (
    ("full", 1.0, "c", False), ("mirror", 1.0, "c", True),
    ("crop80-c", 0.8, "c", False), ("crop80-c-mirror", 0.8, "c", True),
    *((f"crop60-{p}", 0.6, p, False) for p in ("c", "tl", "tr", "bl", "br")),
    *((f"crop40-{p}", 0.4, p, False) for p in ("tl", "tr", "bl", "br")),
)
BUILTIN_RECIPE = (f"the {{photos}} photos edgevt ships, {len(VIEWS)} views each: whole, mirrored, centre crop at 80% "
                  "(and mirrored), crops at 60% (centre and corners) and at 40% (corners)")


@dataclass(frozen=True)
class ImageOptions:
    """What the user chose: evaluation and calibration folders, and a cap on how many photos each set uses."""

    images: str | None = None
    calibration: str | None = None
    samples: int | None = None  # None: $EDGEVT_SAMPLES, else every photo

    def cap(self) -> tuple[int | None, str | None]:
        """(cap, where it came from)."""
        if self.samples is not None:
            return self.samples, "--samples"
        text = os.environ.get(SAMPLES_ENV, "").strip()
        if not text:
            return None, None
        if not text.isdigit() or int(text) < 1:
            raise UsageError(f"${SAMPLES_ENV}={text!r} is not a positive whole number", f"unset {SAMPLES_ENV} or set it to e.g. 100")
        return int(text), f"${SAMPLES_ENV}"

    def to_dict(self) -> dict:
        return {"images": self.images, "calibration": self.calibration, "samples": self.samples}


@dataclass
class ImageSet:
    """The photos one set used (names and content digests, in order), and what it left out and why."""

    source: str  # "builtin" or the folder's absolute path
    names: list[str] = field(default_factory=list)
    digests: list[str] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)  # {"file": relative path, "reason": ...}
    not_selected: int = 0  # readable photos left out by the cap
    cap: int | None = None
    cap_from: str | None = None

    @property
    def builtin(self) -> bool:
        return self.source == "builtin"

    def digest(self) -> str:
        """One digest of the whole set: the photos' content in order (what a cache key needs)."""
        h = hashlib.sha256()
        for name, d in zip(self.names, self.digests):
            h.update(f"{name}\0{d}\n".encode())
        return h.hexdigest()

    def describe(self) -> dict:
        out = {"source": self.source, "used": len(self.names), "skipped": list(self.skipped), "not_selected": self.not_selected,
               "cap": self.cap, "cap_from": self.cap_from, "digest": self.digest()}
        if self.builtin:
            out["recipe"] = BUILTIN_RECIPE.format(photos=len({n.split("#")[0] for n in self.names}) or "bundled")
        return out


def content_digest(image) -> str:
    """sha256 of an RGB image's size and pixels: equal for the same photo under any name or lossless format."""
    h = hashlib.sha256(f"{image.width}x{image.height}:".encode())
    h.update(image.tobytes())
    return h.hexdigest()


def to_rgb(image):
    """EXIF orientation applied, then transformers' convert_to_rgb (transparency composited on white)."""
    from PIL import Image, ImageOps
    from transformers.image_transforms import convert_to_rgb

    image = ImageOps.exif_transpose(image)
    return Image.fromarray(convert_to_rgb(image, return_numpy=True))


def open_rgb(path: Path):
    """The decoded RGB photo; any failure to read or decode it (truncated file, unknown format) raises OSError/ValueError."""
    from PIL import Image

    with Image.open(path) as img:
        img.load()  # decode now: a truncated file fails here, not later inside the processor
        return to_rgb(img)


def select_evenly(count: int, cap: int | None) -> list[int]:
    """Indices of `cap` items spread evenly over `count` (all of them without a cap): deterministic, and a cap on a
    folder sorted by class sub-folder still takes photos from every class."""
    if cap is None or cap >= count:
        return list(range(count))
    return [i * count // cap for i in range(cap)]


class Folder:
    """A folder of the user's photos (searched recursively, in sorted order). Files PIL cannot identify are skipped
    with the reason; of the rest, the cap picks evenly; the chosen ones are decoded by `photos()`, and a file that fails
    to decode (e.g. truncated) is skipped then."""

    def __init__(self, path: str | os.PathLike, option: str, cap: int | None = None, cap_from: str | None = None):
        root = Path(path).expanduser()
        if not root.exists():
            raise UsageError(f"{option} {path}: no such folder", f"pass a folder of photos (jpg, png, webp, ...) to {option}")
        if not root.is_dir():
            raise UsageError(f"{option} {path} is a file, not a folder", f"put the photos in a folder and pass that to {option}")
        self.root, self.option = root.resolve(), option
        self.set = ImageSet(str(self.root), cap=cap, cap_from=cap_from)
        readable, self.unreadable = [], []
        for file in sorted((p for p in self.root.rglob("*") if p.is_file()), key=lambda p: p.relative_to(self.root).as_posix()):
            reason = _identify(file)
            if reason:
                self.unreadable.append({"file": self._name(file), "reason": reason})
            else:
                readable.append(file)
        self.chosen = [readable[i] for i in select_evenly(len(readable), cap)]
        self.set.not_selected = len(readable) - len(self.chosen)
        self.set.skipped = list(self.unreadable)
        if not self.chosen:
            raise UsageError(f"{option} {path}: no photos to use{self._skips()}",
                             "pass a folder with jpg, png or webp photos (any format PIL opens)")

    def _name(self, file: Path) -> str:
        return file.relative_to(self.root).as_posix()

    def _skips(self) -> str:
        if not self.set.skipped:
            return " (the folder is empty)"
        listed = "; ".join(f"{s['file']}: {s['reason']}" for s in self.set.skipped[:5])
        more = f"; and {len(self.set.skipped) - 5} more" if len(self.set.skipped) > 5 else ""
        return f" ({len(self.set.skipped)} file(s) skipped: {listed}{more})"

    def photos(self) -> Iterator[tuple[str, object]]:
        """(name, RGB image) of each chosen photo that decodes; names and digests are recorded in `self.set`."""
        self.set.names, self.set.digests, self.set.skipped = [], [], list(self.unreadable)
        for file in self.chosen:
            try:
                image = open_rgb(file)
            except (OSError, ValueError, SyntaxError) as exc:  # PIL's decoders raise these for broken files
                self.set.skipped.append({"file": self._name(file), "reason": f"cannot be decoded: {first_line(exc)}"})
                continue
            self.set.names.append(self._name(file))
            self.set.digests.append(content_digest(image))
            yield self._name(file), image
        if not self.set.names:
            raise UsageError(f"{self.option} {self.root}: none of the photos could be decoded{self._skips()}",
                             "check the files (a truncated download, a wrong extension)")

    def scan(self) -> ImageSet:
        """Decode every chosen photo once for its digest (what the matrix's cache keys need), keeping no pixels."""
        for _ in self.photos():
            pass
        return self.set


def _identify(file: Path) -> str | None:
    """None if PIL recognises the file as an image (header only), else why not."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(file):  # parses the header only
            pass
    except UnidentifiedImageError:
        return "not an image PIL can read"
    except Image.DecompressionBombError as exc:
        return f"too large: {first_line(exc)}"
    except (OSError, ValueError, SyntaxError) as exc:
        return f"cannot be read: {first_line(exc)}"
    return None


def builtin_views(cap: int | None = None, cap_from: str | None = None) -> tuple[ImageSet, Iterator[tuple[str, object]]]:
    """The built-in set (the bundled photos x VIEWS), evenly capped: its ImageSet and the (name, RGB image) pairs."""
    from edgevt.inputs import photo_images

    originals = photo_images()
    names = [f"{name}#{view[0]}" for name, _ in originals for view in VIEWS]
    chosen = select_evenly(len(names), cap)
    image_set = ImageSet("builtin", not_selected=len(names) - len(chosen), cap=cap, cap_from=cap_from)

    def views() -> Iterator[tuple[str, object]]:
        image_set.names, image_set.digests = [], []
        for index in chosen:
            photo = originals[index // len(VIEWS)][1]
            image = derive(photo, VIEWS[index % len(VIEWS)])
            image_set.names.append(names[index])
            image_set.digests.append(content_digest(image))
            yield names[index], image

    return image_set, views()


def derive(photo, view: tuple[str, float, str, bool]):
    """One view of a photo: a crop of `scale` x its width and height at a position, optionally mirrored."""
    from PIL import Image

    _, scale, position, mirror = view
    width, height = max(1, round(photo.width * scale)), max(1, round(photo.height * scale))
    fx, fy = POSITIONS[position]
    left, top = round((photo.width - width) * fx), round((photo.height - height) * fy)
    out = photo.crop((left, top, left + width, top + height))
    return out.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if mirror else out


def calibration_section(evaluation: ImageSet | None, calibration: ImageSet | None, recorded: dict | None = None) -> dict | None:
    """report.json "inputs.calibration": the photos int8-static was calibrated on (their digests, so a later validate
    can tell the overlap with its own photos), and how many of them parity also ran on. `recorded` is that section
    from an earlier report (validate: the artifact was calibrated then, on that set)."""
    if recorded is not None:
        section = {k: v for k, v in recorded.items() if k not in ("shared_with_evaluation", "note")}
        digests = list(recorded.get("digests") or [])
    elif calibration is not None:
        section = {**calibration.describe(), "digests": list(calibration.digests)}
        digests = calibration.digests
    else:
        return None
    unique = list(dict.fromkeys(digests))
    seen = set(evaluation.digests) if evaluation is not None else set()
    count = sum(d in seen for d in unique)
    section["shared_with_evaluation"] = count if unique else None
    if not unique:
        section["note"] = "the calibration photos are not recorded: their overlap with the evaluation photos is unknown"
    elif count == len(unique) and len(unique) == len(seen):
        section["note"] = ("calibrated on the evaluation photos themselves: the int8 check is optimistic; "
                           "pass --calibration-images DIR with other photos for an unbiased one")
    elif count:
        section["note"] = (f"{count} of the {len(unique)} distinct calibration photos are also evaluation photos: the int8 check is "
                           "optimistic on those")
    else:
        section["note"] = "no calibration photo is an evaluation photo"
    return section


def scan(options: ImageOptions, calibrate: bool) -> tuple[ImageSet, ImageSet | None]:
    """The evaluation set and (with `calibrate` and --calibration-images) the calibration set, decoded once for their
    digests and nothing kept: what a matrix plan needs before any cell runs. Folders are checked first (exit 2)."""
    cap, cap_from = options.cap()
    calibration = Folder(options.calibration, "--calibration-images", cap, cap_from) if options.calibration else None
    if options.images:
        evaluation = Folder(options.images, "--images", cap, cap_from).scan()
    else:
        evaluation, views = builtin_views(cap, cap_from)
        for _ in views:
            pass
    return evaluation, (calibration.scan() if calibrate and calibration is not None else None)
