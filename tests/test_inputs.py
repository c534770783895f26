import numpy as np

from edgevt.inputs import PHOTOS, labels, noise, parity_samples, photos
from edgevt.models import get_spec


def test_photos_are_preprocessed_to_the_variant_size_and_normalised():
    s = photos(get_spec("swinv2-tiny"))
    assert s.batch.shape == (len(PHOTOS), 3, 256, 256) and s.batch.dtype == np.float32
    assert abs(float(s.batch.mean())) < 1.5 and 0.3 < float(s.batch.std()) < 2.0  # ImageNet-normalised range
    assert s.is_photo.all()


def test_cvt_resizes_shortest_edge_then_centre_crops():
    spec = get_spec("cvt-13")
    assert spec.processor["crop_pct"] == 0.875 and spec.input_hw == (224, 224)
    assert photos(spec, count=2).batch.shape == (2, 3, 224, 224)


def test_noise_is_seeded_and_not_a_photo():
    a, b = noise((1, 3, 8, 8), 3, 2), noise((1, 3, 8, 8), 3, 2)
    np.testing.assert_array_equal(a.batch, b.batch)
    assert not a.is_photo.any()


def test_parity_samples_are_photos_then_noise():
    s = parity_samples(get_spec("tiny-swin"), seed=0, n_noise=2)
    assert len(s) == len(PHOTOS) + 2 and s.is_photo.sum() == len(PHOTOS)


def test_imagenet_labels():
    names = labels()
    assert len(names) == 1000 and names[0] == "tench" and names[281] == "tabby"
