"""The user's photos (--images, --calibration-images, --samples) and the built-in set: reading, choosing, reporting."""

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest

from edgevt.errors import UsageError
from edgevt.images import VIEWS, Folder, ImageOptions, builtin_views, calibration_section, open_rgb, select_evenly
from photo_fixtures import mixed_folder, noise_photo

@pytest.fixture
def mixed(tmp_path):
    return mixed_folder(tmp_path / "photos")


def test_a_mixed_folder_is_read_in_sorted_order_and_the_unusable_files_are_listed_with_reasons(mixed):
    folder = Folder(mixed, "--images")
    images = dict(folder.photos())
    assert list(images) == ["gray.png", "photo.webp", "rgba.png", "rotated.jpg", "sub/cmyk.jpg"]
    assert all(img.mode == "RGB" for img in images.values())
    reasons = {s["file"]: s["reason"] for s in folder.set.skipped}
    assert set(reasons) == {"notes.txt", "broken.jpg"}
    assert "not an image" in reasons["notes.txt"] and "truncated" in reasons["broken.jpg"]
    gray = np.asarray(images["gray.png"])
    assert (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()
    rgba = np.asarray(images["rgba.png"])
    assert (rgba[:, :24] == 255).all() and (rgba[:, 24:] == [200, 0, 0]).all()  # transparency composited on white


def test_exif_orientation_is_applied(mixed):
    img = open_rgb(mixed / "rotated.jpg")
    assert img.size == (20, 40)
    top, bottom = np.asarray(img)[:15].mean((0, 1)), np.asarray(img)[-15:].mean((0, 1))
    assert top[0] > 150 > top[2] and bottom[2] > 150 > bottom[0]


def test_an_empty_or_missing_folder_or_one_without_photos_is_a_usage_error(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "a.txt").write_text("x")
    with pytest.raises(UsageError, match="empty"):
        Folder(tmp_path / "empty", "--images")
    with pytest.raises(UsageError, match="no such folder"):
        Folder(tmp_path / "missing", "--images")
    with pytest.raises(UsageError, match="a.txt: not an image"):
        Folder(tmp_path / "text", "--images")


def test_the_cap_picks_evenly_over_the_sorted_photos(tmp_path):
    for i in range(5):
        noise_photo(seed=i).save(tmp_path / f"{i}.png")
    assert select_evenly(5, 3) == [0, 1, 3] and select_evenly(5, None) == select_evenly(5, 9) == [0, 1, 2, 3, 4]
    folder = Folder(tmp_path, "--images", cap=3, cap_from="--samples")
    assert [name for name, _ in folder.photos()] == ["0.png", "1.png", "3.png"]
    assert folder.set.describe()["not_selected"] == 2 and folder.set.describe()["cap_from"] == "--samples"


def test_samples_env_is_the_default_cap_and_must_be_a_number(monkeypatch):
    monkeypatch.setenv("EDGEVT_SAMPLES", "5")
    assert ImageOptions().cap() == (5, "$EDGEVT_SAMPLES") and ImageOptions(samples=7).cap() == (7, "--samples")
    monkeypatch.setenv("EDGEVT_SAMPLES", "many")
    with pytest.raises(UsageError, match="EDGEVT_SAMPLES"):
        ImageOptions().cap()


def _builtin_digest_in_a_new_process() -> str:
    code = ("import os; os.environ.pop('EDGEVT_SAMPLES', None); from edgevt.images import builtin_views; "
            "s, views = builtin_views(); [0 for _ in views]; print(s.digest())")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def test_the_builtin_set_has_over_100_views_and_is_the_same_on_every_run():
    from edgevt.inputs import PHOTOS, photo_images

    image_set, views = builtin_views()
    named = dict(views)
    assert len(named) == len(PHOTOS) * len(VIEWS) >= 100 and image_set.not_selected == 0
    assert image_set.digest() == _builtin_digest_in_a_new_process()
    recipe = [(name, scale, pos, mirror) for name, scale, pos, mirror in VIEWS]  # the derivation itself is pinned
    assert hashlib.sha256(repr(recipe).encode()).hexdigest()[:16] == "aa0ff2445f7a2fb5"
    originals = dict(photo_images())
    assert np.array_equal(np.asarray(named["chelsea.png#full"]), np.asarray(originals["chelsea.png"]))
    assert np.array_equal(np.asarray(named["chelsea.png#mirror"]), np.asarray(originals["chelsea.png"])[:, ::-1])
    assert named["coffee.png#crop40-br"].size == (240, 160)  # 40% of 600x400, aspect kept
    assert len(set(image_set.digests)) == len(image_set.digests)  # every view is a different image


def test_the_default_parity_set_is_the_builtin_set_plus_noise(monkeypatch):
    from edgevt.inputs import parity_samples
    from edgevt.models import get_spec

    monkeypatch.delenv("EDGEVT_SAMPLES", raising=False)
    s = parity_samples(get_spec("tiny-swin"))
    assert s.is_photo.sum() == 104 and len(s) == 106 and s.images.builtin
    assert s.names[0] == "astronaut.png#full" and s.names[-1].startswith("noise-")


def test_a_cap_of_8_on_the_builtin_set_takes_the_8_original_photos(monkeypatch):
    from edgevt.inputs import PHOTOS

    image_set, views = builtin_views(8)
    assert [name for name, _ in views] == [f"{p}#full" for p in PHOTOS]


def test_calibration_overlap_is_counted_by_content_not_by_name(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    for i in range(3):
        noise_photo(seed=i).save(a / f"eval-{i}.png")
    noise_photo(seed=0).save(b / "renamed.png")  # the same photo under another name
    noise_photo(seed=0).save(b / "again.bmp")  # ... and in another lossless format
    noise_photo(seed=9).save(b / "other.png")
    evaluation, calibration = Folder(a, "--images").scan(), Folder(b, "--calibration-images").scan()
    section = calibration_section(evaluation, calibration)
    assert section["shared_with_evaluation"] == 1 and "1 of the 2 distinct calibration photos" in section["note"]
    same = calibration_section(evaluation, evaluation)
    assert same["shared_with_evaluation"] == 3 and "evaluation photos themselves" in same["note"]
    c = tmp_path / "c"
    c.mkdir()
    noise_photo(seed=9).save(c / "eval-0.png")  # the same name as an evaluation photo, other content
    assert calibration_section(evaluation, Folder(c, "--calibration-images").scan())["shared_with_evaluation"] == 0
    recorded = calibration_section(evaluation, calibration, recorded=json.loads(json.dumps(section)))
    assert recorded["shared_with_evaluation"] == 1  # validate: the overlap with today's photos, from the report's digests
