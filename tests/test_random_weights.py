"""Random weights must give parity something to measure: ordinary-scale logits that depend on the input."""

import numpy as np
import pytest
import torch

from edgevt.inputs import photos
from edgevt.models import get_spec
from edgevt.models.loading import load_model


def logits_on_photos(name, seed=0):
    spec = get_spec(name)
    model = load_model(spec, "random", seed)
    with torch.no_grad():
        return model, model.module(torch.from_numpy(photos(spec).batch)).numpy()


@pytest.mark.parametrize("name", ["swiftformer-xs", "tiny-swin", "tiny-swinv2", "tiny-cvt"])
def test_logits_are_of_ordinary_scale_and_depend_on_the_photo(name):
    _, y = logits_on_photos(name)
    assert y.std() > 0.1  # HF's own init gives SwiftFormer ~1e-4
    assert (y - y.mean(0)).std() > 0.05  # not one vector for every photo
    assert len(set(y.argmax(1))) >= 3  # at least three different top-1 classes over 8 photos


def test_same_seed_same_weights_other_seed_other_weights():
    a, ya = logits_on_photos("tiny-swiftformer", 0)
    b, yb = logits_on_photos("tiny-swiftformer", 0)
    c, yc = logits_on_photos("tiny-swiftformer", 1)
    assert a.weights_sha256 == b.weights_sha256 != c.weights_sha256
    np.testing.assert_array_equal(ya, yb)
    assert not np.allclose(ya, yc)
