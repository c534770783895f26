"""edgevt's parity and calibration tensors are the checkpoint's own HF image processor's output."""

import json
from pathlib import Path

import numpy as np
import pytest

from edgevt.inputs import PHOTOS, photo_images, photos
from edgevt.models import get_spec, list_models

PUBLISHED = Path(__file__).parent / "data" / "processors"


def _hf_output(config_file: Path, images):
    from transformers import AutoImageProcessor

    processor = AutoImageProcessor.from_pretrained(str(config_file), backend="pil")
    return (processor(images=images, return_tensors="np")["pixel_values"] if images else None), processor


@pytest.fixture(scope="module")
def images():
    return [img for _, img in photo_images()]


@pytest.mark.parametrize("name", [s.name for s in list_models() if not s.name.startswith("tiny-")])
def test_registered_variants_preprocess_exactly_as_their_published_processor(name, images):
    spec = get_spec(name)
    expected, _ = _hf_output(PUBLISHED / (spec.hf_id.replace("/", "--") + ".json"), images)
    got = photos(spec).batch
    assert got.shape == (len(PHOTOS), 3, *spec.input_hw)
    np.testing.assert_array_equal(got, expected.astype(np.float32))


def test_swiftformer_processors_resize_bilinear_because_they_name_no_resample():
    from PIL import Image

    _, processor = _hf_output(PUBLISHED / "MBZUAI--swiftformer-xs.json", [])
    assert "resample" not in json.loads((PUBLISHED / "MBZUAI--swiftformer-xs.json").read_text())
    assert processor.resample == Image.BILINEAR


def test_cvt_truncates_the_long_edge_as_hf_does(images):
    """chelsea is 451x300: shortest edge 256 makes the long edge 384.85 -> int 384 (rounding would give 385)."""
    from PIL import Image

    spec = get_spec("cvt-13")
    chelsea = dict(photo_images())["chelsea.png"]
    assert chelsea.size == (451, 300)
    resized = chelsea.resize((int(451 * 256 / 300), 256), Image.BICUBIC)
    left, top = (resized.width - 224) // 2, (resized.height - 224) // 2
    manual = np.asarray(resized.crop((left, top, left + 224, top + 224)), dtype=np.float32).transpose(2, 0, 1)
    np.testing.assert_array_equal(photos(spec, count=2).pixels[1], manual)


def test_pixels_are_the_processor_output_before_rescale_and_normalise():
    from edgevt.preprocessing import normalize_pixels

    spec = get_spec("swin-tiny")
    s = photos(spec, count=3)
    assert s.pixels.min() >= 0 and s.pixels.max() <= 255 and np.array_equal(s.pixels, np.rint(s.pixels))
    np.testing.assert_allclose(normalize_pixels(spec.processor, s.pixels), s.batch, atol=1e-6)


def test_image_input_normalisation_is_the_processors():
    """The affine an image-input artifact bakes in equals the processor's rescale + normalise, for any mean/std."""
    from edgevt.preprocessing import normalization, normalize_pixels
    from edgevt.models.registry import vit_processor

    config = vit_processor(32, mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.5))
    pixels = np.random.default_rng(0).integers(0, 256, (2, 3, 32, 32)).astype(np.float32)
    scale, bias = normalization(config)
    np.testing.assert_allclose(pixels * scale.reshape(1, 3, 1, 1) + bias.reshape(1, 3, 1, 1), normalize_pixels(config, pixels), atol=1e-5)


def test_input_size_override_keeps_the_recipe():
    from edgevt.preprocessing import output_hw, with_input_size

    spec = get_spec("cvt-13")
    assert output_hw(with_input_size(spec.processor, (160, 160))) == (160, 160)
    swin = get_spec("swin-tiny")
    changed = with_input_size(swin.processor, (192, 160))
    assert output_hw(changed) == (192, 160) and changed["resample"] == 3
